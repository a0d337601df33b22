"""Errors as RFC 9457 problem details (``application/problem+json``).

Route code raises :class:`Problem` (or lets a typed locard error through); the
handlers installed by :func:`install_handlers` turn every error, validation failures
and unexpected exceptions included, into a problem document.  Unexpected exceptions
become a 500 whose detail names no internals (the traceback goes to the log).
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexer.errors import CalibrationError, ClusterError, ProbeError, SubjectNotFoundError
from matcher.errors import (EmptyImageError, FailureToEnrol, ImageError, ImageTooLargeError, LocardError,
                            TemplateError, TransactionError, TransactionTooLargeError, UnsupportedFormatError)

from .schemas import ProblemDetail

log = logging.getLogger("locard.api")
MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://locard.invalid/problems/"


class Problem(Exception):
    """An error answer: status, a short title, and a detail saying what to do."""

    def __init__(self, status: int, detail: str, *, title: str | None = None, type_: str | None = None,
                 headers: dict | None = None, **extra):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.type = type_ or "about:blank"
        self.headers = headers
        self.extra = extra


def problem_response(status: int, title: str, detail: str, *, type_: str = "about:blank",
                     instance: str | None = None, headers: dict | None = None, **extra) -> JSONResponse:
    body = ProblemDetail(type=type_, title=title, status=status, detail=detail, instance=instance,
                         **extra).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def locard_error_status(exc: LocardError) -> tuple[int, str]:
    """HTTP status and problem type of a typed locard error."""
    if isinstance(exc, TransactionTooLargeError):
        return 413, "transaction-too-large"
    if isinstance(exc, TransactionError):
        return 422, "unreadable-transaction"
    if isinstance(exc, ImageTooLargeError):
        return 413, "image-too-large"
    if isinstance(exc, (UnsupportedFormatError, EmptyImageError)):
        return 415, "unsupported-image"
    if isinstance(exc, ImageError):
        return 422, "unreadable-image"
    if isinstance(exc, FailureToEnrol):
        return 422, "failure-to-enrol"
    if isinstance(exc, SubjectNotFoundError):
        return 404, "not-found"
    if isinstance(exc, (ProbeError, TemplateError)):
        return 422, "unusable-probe"
    if isinstance(exc, CalibrationError):  # the service's own files are wrong, not the request
        return 503, "calibration-unavailable"
    if isinstance(exc, ClusterError):  # a shard is down or restarting
        return 503, "cluster-unavailable"
    return 422, "unprocessable"


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem_response(exc.status, exc.title, exc.detail, type_=exc.type, instance=request.url.path,
                                headers=exc.headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
        return problem_response(exc.status_code, HTTPStatus(exc.status_code).phrase, detail,
                                instance=request.url.path, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        detail = f"{'.'.join(first['loc'])}: {first['msg']}" if first["loc"] else first["msg"]
        return problem_response(422, "Invalid request", detail, type_=TYPE_BASE + "invalid-request",
                                instance=request.url.path, errors=errors)

    @app.exception_handler(LocardError)
    async def _locard(request: Request, exc: LocardError):
        status, kind = locard_error_status(exc)
        extra = {"quality": exc.quality} if isinstance(exc, FailureToEnrol) else {}
        return problem_response(status, HTTPStatus(status).phrase, str(exc), type_=TYPE_BASE + kind,
                                instance=request.url.path, **extra)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(500, "Internal Server Error",
                                "the service failed unexpectedly; the error was logged", instance=request.url.path)
