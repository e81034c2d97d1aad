"""Domain errors → HTTP status and OGC exception bodies, in one place."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from twin import errors

log = logging.getLogger("twin.api")

STATUS: dict[type[errors.TwinError], int] = {
    errors.InvalidQuery: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.ValidationFailed: 422,
    errors.Unavailable: 503,
}


def status_of(err: errors.TwinError) -> int:
    """HTTP status of a domain error (the nearest mapped base class wins)."""
    for cls in type(err).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def exception_body(code: str, description: str, status: int) -> dict[str, object]:
    """An OGC API exception body (``code``, ``description``) with the HTTP status repeated."""
    return {"code": code, "description": description, "status": status}


def ogc_error(status: int, code: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON response carrying an OGC exception body."""
    return JSONResponse(exception_body(code, description, status), status_code=status, headers=headers)


async def _twin_error(_: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, errors.TwinError)
    status = status_of(err)
    headers = {}
    if isinstance(err, errors.Unavailable):
        headers["Retry-After"] = str(err.retry_after_s)
    if isinstance(err, errors.Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    return ogc_error(status, err.code, str(err), headers)


async def _request_invalid(_: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, RequestValidationError)
    parts = []
    for problem in err.errors():
        where = ".".join(str(p) for p in problem.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{where}: {problem.get('msg', 'invalid')}" if where else str(problem.get("msg")))
    return ogc_error(400, "InvalidParameterValue", "; ".join(parts) or "invalid request")


async def _http_error(_: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, StarletteHTTPException)
    code = {404: "NotFound", 405: "MethodNotAllowed", 406: "NotAcceptable"}.get(err.status_code, "HTTPError")
    return ogc_error(err.status_code, code, str(err.detail), dict(err.headers or {}))


async def _unexpected(request: Request, err: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=err)
    return ogc_error(500, "ServerError", "internal error; the service log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler on ``app``."""
    app.add_exception_handler(errors.TwinError, _twin_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
