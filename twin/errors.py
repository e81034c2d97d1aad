"""The domain error hierarchy. The API maps each class to an HTTP status and an OGC exception body in one place."""

from __future__ import annotations


class TwinError(Exception):
    """Base class of every error the twin raises on purpose; ``str(err)`` is safe to show to a user."""

    code = "TwinError"


class NotFound(TwinError):
    """An unknown layer, feature, building or raster."""

    code = "NotFound"


class InvalidQuery(TwinError):
    """A malformed query parameter: bad bbox, unknown CRS, unknown field, unparsable filter."""

    code = "InvalidParameterValue"


class ValidationFailed(TwinError):
    """A write or an import that does not match the catalogue; names the source, row and field."""

    code = "InvalidValue"

    def __init__(self, message: str, *, source: str | None = None, row: int | None = None, field: str | None = None):
        where = (source, f"row {row}" if row is not None else None, f"field {field!r}" if field else None)
        parts = [p for p in where if p]
        super().__init__(f"{', '.join(parts)}: {message}" if parts else message)
        self.source = source
        self.row = row
        self.field = field


class Unauthorized(TwinError):
    """No credentials, or credentials that are not valid."""

    code = "Unauthorized"


class Forbidden(TwinError):
    """Valid credentials whose role may not do this."""

    code = "Forbidden"


class Conflict(TwinError):
    """A write that clashes with what is stored (duplicate key, stale state)."""

    code = "Conflict"


class PayloadTooLarge(TwinError):
    """A request body beyond the configured limit."""

    code = "PayloadTooLarge"


class Unavailable(TwinError):
    """The store cannot be reached right now; the caller may retry later."""

    code = "ServiceUnavailable"

    def __init__(self, message: str, *, retry_after_s: int = 5):
        super().__init__(message)
        self.retry_after_s = retry_after_s
