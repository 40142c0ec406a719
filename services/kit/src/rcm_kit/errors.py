"""Domain errors and their problem+json rendering (RFC 9457).

Services raise ``ServiceError`` subclasses; one set of handlers renders every error,
including Starlette's own 404/405, request validation (422 naming every bad field)
and the unexpected (a generic 500, logged with the request id).
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"


class ServiceError(Exception):
    """Base of every domain error: carries the HTTP status and a stable title."""

    status: int = 400
    title: str = "Bad request"
    type: str = "about:blank"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        # Response headers the error carries (e.g. the current ETag with a 412).
        self.headers = dict(headers or {})


class NotFound(ServiceError):
    status = 404
    title = "Not found"


class Conflict(ServiceError):
    status = 409
    title = "Conflict"


class PreconditionFailed(ServiceError):
    status = 412
    title = "Precondition failed"


class Unauthenticated(ServiceError):
    status = 401
    title = "Unauthorized"


class Forbidden(ServiceError):
    status = 403
    title = "Forbidden"


class InvalidInput(ServiceError):
    """A 422 raised by a service: a body or query value breaks a rule the schema cannot state."""

    status = 422
    title = "Unprocessable content"

    def __init__(self, loc: Sequence[str | int], msg: str) -> None:
        super().__init__(f"{'.'.join(str(p) for p in loc)}: {msg}")
        self.errors = [{"loc": list(loc), "msg": msg}]


Loc = Sequence[str | int]


class InvalidFields(InvalidInput):
    """A 422 naming several fields at once, each with its rule."""

    def __init__(self, errors: Sequence[tuple[Loc, str]]) -> None:
        first_loc, first_msg = errors[0]
        super().__init__(first_loc, first_msg)
        self.errors = [{"loc": list(loc), "msg": msg} for loc, msg in errors]
        self.detail = "; ".join(f"{'.'.join(str(p) for p in loc)}: {msg}" for loc, msg in errors)


def raise_if_any(errors: Sequence[tuple[Loc, str]]) -> None:
    """Raise ``InvalidFields`` when validation collected any error."""
    if errors:
        raise InvalidFields(errors)


class PayloadTooLarge(ServiceError):
    status = 413
    title = "Payload too large"


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    extra = dict(exc.extra)
    if isinstance(exc, InvalidInput):
        extra["errors"] = exc.errors
    headers = dict(exc.headers)
    if exc.status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem(
        exc.status, exc.detail, title=exc.title, type_=exc.type, headers=headers or None, **extra
    )


def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No route matches this path."
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        detail = "This route does not accept that method."
    return problem(exc.status_code, detail, headers=dict(exc.headers or {}) or None)


def validation_errors(raw: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors reduced to ``loc`` and ``msg``, never echoing the input back."""
    errors = []
    for item in raw:
        loc = [part for part in item.get("loc", ()) if part != "body" or len(item["loc"]) == 1]
        errors.append(
            {"loc": loc, "msg": str(item.get("msg", "invalid")).removeprefix("Value error, ")}
        )
    return errors


def _request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    names = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in errors)
    return problem(422, f"Invalid request: {names}", errors=errors)


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as problem+json. Unexpected exceptions are caught one level
    up, in ``RequestContextMiddleware``, so their 500 still carries the request id."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
