"""One table from domain errors to HTTP statuses, and one renderer per API surface.

Each surface keeps the error body its real clients parse: Triton/KServe v2 ``{"error": msg}``,
TorchServe ``{"code", "type", "message"}``, Torc ``{"error": {"message"}}``, MLServe
``{"error": msg}``; everything else uses the platform envelope ``{"error": {code, message,
details, request_id}}``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from control_plane import errors
from control_plane.api.request_context import get_request_id
from control_plane.schemas.common import INT64_MAX, INT64_MIN, fits_int64

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[errors.DomainError], int] = {
    errors.NotFoundError: 404,
    errors.AlreadyExistsError: 409,
    errors.ConflictError: 409,
    errors.InvalidStateError: 409,
    errors.PermissionDeniedError: 403,
    errors.AuthenticationRequiredError: 401,
    errors.UpstreamUnavailableError: 503,
    errors.UpstreamError: 502,
    errors.ValidationFailedError: 422,
    errors.BadRequestError: 400,
    errors.PayloadTooLargeError: 413,
    errors.ExecutionError: 500,
    errors.TimeoutExceededError: 408,
    errors.InvalidArtifactError: 422,
    errors.ArtifactExistsError: 409,
    errors.StartFailedError: 500,
}

# Columns of the same table for surfaces whose reference server answers differently: TorchServe
# 0.12 answers 500 for an unusable archive and for a download whose file is already in the store.
SURFACE_STATUS_BY_ERROR: dict[str, dict[type[errors.DomainError], int]] = {
    "torchserve": {
        errors.InvalidArtifactError: 500,
        errors.ArtifactExistsError: 500,
    },
}

# TorchServe exception names clients see in the "type" field, by status.
_TORCHSERVE_TYPES = {
    400: "BadRequestException",
    404: "ResourceNotFoundException",
    405: "MethodNotAllowedException",
    408: "RequestTimeoutException",
    409: "ConflictStatusException",
    413: "BadRequestException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}

Renderer = Callable[[int, str, str, dict[str, Any]], dict[str, Any]]


def status_for(exc: errors.DomainError, surface: str | None = None) -> int:
    """The HTTP status of a domain error on a surface, resolved along its MRO."""
    column = SURFACE_STATUS_BY_ERROR.get(surface or "", {})
    for klass in type(exc).__mro__:
        if klass in column:
            return column[klass]
        if klass in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[klass]
    return 500


def _render_platform(
    status: int, code: str, message: str, details: dict[str, Any]
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details,
            "request_id": get_request_id(),
        }
    }


def _render_triton(status: int, code: str, message: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"error": message}


def _render_mlserve(
    status: int, code: str, message: str, details: dict[str, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message, "code": code}
    body.update({k: v for k, v in details.items() if k not in body})
    return body


def _render_torchserve(
    status: int, code: str, message: str, details: dict[str, Any]
) -> dict[str, Any]:
    ts_type = details.get("ts_type") or _TORCHSERVE_TYPES.get(status, "InternalServerException")
    return {"code": status, "type": ts_type, "message": message}


def _render_torc(status: int, code: str, message: str, details: dict[str, Any]) -> dict[str, Any]:
    inner: dict[str, Any] = {"message": message, "code": code}
    inner.update({k: v for k, v in details.items() if k not in inner})
    return {"error": inner}


_TORCHSERVE_PREFIXES = (
    "/workflows",
    "/wfpredict",
    "/models",
    "/predictions",
    "/ping",
    "/token",
)
RENDERERS: list[tuple[tuple[str, ...], Renderer]] = [
    (("/v2",), _render_triton),
    (("/torc-service",), _render_torc),
    (("/api", "/apps"), _render_mlserve),
    (_TORCHSERVE_PREFIXES, _render_torchserve),
]


def _matches(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def surface_for(path: str) -> str | None:
    """The API surface a path belongs to, where it has its own status column."""
    return "torchserve" if _matches(path, _TORCHSERVE_PREFIXES) else None


def renderer_for(path: str) -> Renderer:
    """Pick the error body shape for a request path."""
    for prefixes, renderer in RENDERERS:
        if _matches(path, prefixes):
            return renderer
    return _render_platform


def error_response(path: str, status: int, code: str, message: str, **details: Any) -> JSONResponse:
    """Build the error response a given path's clients expect."""
    body = renderer_for(path)(status, code, message, details)
    return JSONResponse(body, status_code=status, headers={"x-request-id": get_request_id()})


async def _domain_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DomainError)
    status = status_for(exc, surface_for(request.url.path))
    if status >= 500:
        logger.warning("request %s failed: %s", get_request_id(), exc.message)
    response = error_response(request.url.path, status, exc.code, exc.message, **exc.details)
    if status == 401:
        # RFC 9110: a 401 names the scheme (HTTP Basic; API keys go in the apikey header).
        response.headers["WWW-Authenticate"] = 'Basic realm="platform"'
    return response


def _clean_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    cleaned = []
    for err in exc.errors():
        cleaned.append({k: v for k, v in err.items() if k not in ("input", "ctx", "url")})
    return cleaned


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = _clean_validation_errors(exc)
    summary = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in problems
    )
    path = request.url.path
    return error_response(
        path,
        _invalid_input_status(path),
        "invalid_request",
        summary or "invalid request",
        errors=problems,
    )


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    path = request.url.path
    if exc.status_code == 404:
        message = "Requested resource is not found, please refer to API document."
    elif exc.status_code == 405:
        message = "Requested method is not allowed, please refer to API document."
    else:
        message = str(exc.detail)
    code = {404: "route_not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(path, exc.status_code, code, message)


def _invalid_input_status(path: str) -> int:
    # Torc answers rule violations with 422; every other surface calls malformed input a 400.
    return 422 if _matches(path, ("/torc-service",)) else 400


def _bind_names(exc: sa_exc.StatementError) -> list[str]:
    """The bound parameters of a failed statement whose value no 64-bit column holds."""
    params = exc.params
    rows = params if isinstance(params, list | tuple) else [params]
    names = []
    for row in rows:
        items = row.items() if isinstance(row, dict) else enumerate(row or ())
        for key, value in items:
            if isinstance(value, int) and not isinstance(value, bool) and not fits_int64(value):
                names.append(str(key))
    return sorted(set(names))


_BODY_SCAN_LIMIT = 1 << 20  # bytes of a JSON body searched for the offending number


def _out_of_range_in(value: Any, prefix: str) -> list[str]:
    if isinstance(value, dict):
        return [f for k, v in value.items() for f in _out_of_range_in(v, f"{prefix}.{k}")]
    if isinstance(value, list):
        return [f for i, v in enumerate(value) for f in _out_of_range_in(v, f"{prefix}.{i}")]
    if isinstance(value, int) and not isinstance(value, bool) and not fits_int64(value):
        return [prefix]
    return []


async def _request_fields(request: Request, bind_names: list[str]) -> list[str]:
    """Where the offending number came from: path, query or JSON body fields holding one."""
    found = []
    for where, values in (("path", request.path_params), ("query", request.query_params)):
        for key, raw in values.items():
            try:
                number = int(str(raw))
            except ValueError:
                continue
            if not fits_int64(number):
                found.append(f"{where}.{key}")
    if not found and "json" in request.headers.get("content-type", ""):
        body = await request.body()
        if len(body) <= _BODY_SCAN_LIMIT:
            with contextlib.suppress(ValueError):
                found = _out_of_range_in(json.loads(body), "body")
    # Bind names are column names, with SQLAlchemy's ``_1`` suffix on comparisons.
    return found or [f"column {name}" for name in bind_names]


def _is_input_error(exc: Exception) -> bool:
    """True for a database error caused by a value the request supplied (not by the server)."""
    if isinstance(exc, sa_exc.DataError):  # PostgreSQL: out of range, too long, bad literal
        return True
    return isinstance(exc, sa_exc.StatementError) and isinstance(
        exc.orig, OverflowError | ValueError  # SQLite's int overflow, psycopg2's NUL in a str
    )


async def _database_input_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot hold, which slipped past edge validation: a 4xx naming it."""
    assert isinstance(exc, sa_exc.StatementError)
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):  # database unreachable
        logger.warning("request %s: database unavailable: %s", get_request_id(), exc.orig)
        return error_response(request.url.path, 503, "database_unavailable",
                              "the database is unavailable; retry later")
    if not _is_input_error(exc):
        return await _unhandled_error_handler(request, exc)
    path = request.url.path
    fields = await _request_fields(request, _bind_names(exc))
    if fields:
        message = (
            f"Got a value out of range for {', '.join(fields)}; integers must lie in "
            f"[{INT64_MIN}, {INT64_MAX}]"
        )
    else:
        message = f"a request value cannot be stored: {type(exc.orig).__name__}"
    logger.info("request %s: database refused a value: %s", get_request_id(), exc.orig)
    return error_response(path, _invalid_input_status(path), "value_out_of_range", message,
                          fields=fields)


async def _overflow_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A number from the request that overflowed a fixed-size type outside SQL."""
    path = request.url.path
    fields = await _request_fields(request, [])
    logger.info("request %s: overflow: %s", get_request_id(), exc)
    return error_response(
        path, _invalid_input_status(path), "value_out_of_range",
        f"Got a number out of range{' for ' + ', '.join(fields) if fields else ''}: {exc}",
        fields=fields,
    )


async def _decode_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Request bytes that are not the text they must be (a JSON body that is not UTF-8)."""
    assert isinstance(exc, UnicodeDecodeError)
    path = request.url.path
    return error_response(
        path, _invalid_input_status(path), "invalid_encoding",
        f"the request is not valid {exc.encoding}: {exc.reason} at byte {exc.start}",
    )


async def _unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error in request %s", get_request_id())
    return error_response(request.url.path, 500, "internal_error", "Internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Register the one error mapping on the FastAPI app."""
    app.add_exception_handler(errors.DomainError, _domain_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(sa_exc.StatementError, _database_input_error_handler)
    app.add_exception_handler(OverflowError, _overflow_error_handler)
    app.add_exception_handler(UnicodeDecodeError, _decode_error_handler)
    app.add_exception_handler(Exception, _unhandled_error_handler)
