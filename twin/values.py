"""One value of a catalogue field type: coercion of scalars and parsing of RFC 3339 instants.

Shared by the whole-frame validation (:mod:`twin.validate`), the stores' SQL builders, CQL2 and the API's
parameters, so a value is accepted or refused with the same message everywhere.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from layers import Field, FieldType

#: An RFC 3339 date-time with a timezone offset (or Z).
RFC3339 = r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2})"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def is_null(value: Any) -> bool:
    """True for ``None``, NaN, ``pd.NA`` and NaT."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating | np.datetime64):
        return bool(pd.isna(value))
    return False


def coerce_value(field: Field, value: Any) -> Any:
    """``value`` as the Python value of ``field``'s type (``None`` for a null); ``ValueError`` says why not."""
    if is_null(value):
        return None
    kind = field.type
    if kind in (FieldType.INTEGER, FieldType.REAL) and isinstance(value, bool | np.bool_):
        raise ValueError(f"expected a number, got the boolean {value!r}")
    if kind is FieldType.INTEGER:
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError(f"{value!r} is not an integer") from None
        if isinstance(value, float | np.floating) and math.isfinite(value) and float(value).is_integer():
            value = int(value)
        if not isinstance(value, int | np.integer):
            raise ValueError(f"{value!r} is not an integer")
        if not -(2**63) <= int(value) < 2**63:
            raise ValueError(f"{value} does not fit in a 64-bit integer")
        return int(value)
    if kind is FieldType.REAL:
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        return number
    if kind is FieldType.TEXT:
        if isinstance(value, str):
            return value
        if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
            return str(int(value))
        raise ValueError(f"expected text, got {type(value).__name__} {value!r}")
    if kind is FieldType.BOOLEAN:
        if isinstance(value, bool | np.bool_):
            return bool(value)
        if isinstance(value, int | np.integer) and int(value) in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        raise ValueError(f"{value!r} is not a boolean (use true/false)")
    if kind is FieldType.DATE:
        return _coerce_date(value)
    return _coerce_datetime(value)


def _coerce_date(value: Any) -> dt.date:
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None or value.time() != dt.time(0):
            raise ValueError(f"expected a calendar date, got the instant {value.isoformat()}")
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date (use YYYY-MM-DD)")


def _coerce_datetime(value: Any) -> pd.Timestamp:
    return parse_instant(value).floor("ms").as_unit("ms")


def parse_instant(value: Any) -> pd.Timestamp:
    """A timezone-aware instant (datetime or RFC 3339 string) as a UTC ``Timestamp`` at full precision."""
    if isinstance(value, str):
        if not re.fullmatch(RFC3339, value.strip()):
            raise ValueError(f"{value!r} is not an RFC 3339 date-time with a timezone (e.g. 2026-11-25T08:00:00Z)")
        try:
            stamp = pd.Timestamp(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a valid date-time") from None
    elif isinstance(value, dt.datetime | np.datetime64):
        stamp = pd.Timestamp(value)
    else:
        raise ValueError(f"expected a date-time, got {type(value).__name__} {value!r}")
    if stamp.tzinfo is None:
        raise ValueError(f"naive date-time {stamp.isoformat()} has no timezone (use Z for UTC)")
    return stamp.tz_convert("UTC")
