"""Every failure leaves the server in OpenAI's error shape, with the right
status and never a traceback or a file path."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ponder.core.redaction import redact
from ponder.core.scoring import ScorerFailed
from ponder.server.protocol.common import ErrorInfo, ErrorResponse, lone_surrogate_at
from ponder.strategies import STRATEGIES
from ponder.strategies.base import RequestRejected

logger = logging.getLogger(__name__)

# The status a request ends with, in metrics, when its client left before the
# end (nginx's convention; it never reaches the client).
CLIENT_CLOSED_REQUEST = 499


class PonderError(Exception):
    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    type: str = "server_error"
    code: str | None = None

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.code

    def headers(self) -> dict[str, str] | None:
        return None


class InvalidRequest(PonderError):
    status = HTTPStatus.BAD_REQUEST
    type = "invalid_request_error"


class Unauthorized(PonderError):
    status = HTTPStatus.UNAUTHORIZED
    type = "authentication_error"
    code = "invalid_api_key"


class NotFound(PonderError):
    status = HTTPStatus.NOT_FOUND
    type = "not_found_error"
    code = "model_not_found"


class PayloadTooLarge(PonderError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    type = "invalid_request_error"
    code = "request_too_large"


class Overloaded(PonderError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    type = "rate_limit_error"
    code = "server_overloaded"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class EngineUnavailable(PonderError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    type = "service_unavailable_error"
    code = "engine_unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class ShuttingDown(EngineUnavailable):
    """New requests while the server drains, and those still running when
    its time is up: another replica (or this one, restarted) can serve them."""

    code = "server_shutting_down"


class UpstreamFailed(PonderError):
    status = HTTPStatus.BAD_GATEWAY
    type = "upstream_error"
    code = "upstream_failed"


class GatewayTimeout(PonderError):
    status = HTTPStatus.GATEWAY_TIMEOUT
    type = "timeout_error"


class UpstreamTimeout(GatewayTimeout):
    code = "upstream_timeout"


class RequestTimedOut(GatewayTimeout):
    """--request-timeout passed before the request had any answer."""

    code = "request_timeout"


class ClientClosedRequest(PonderError):
    """The client left before its answer: nobody reads this response, but the
    request ends counted, with one log line rather than a traceback."""

    status = CLIENT_CLOSED_REQUEST  # type: ignore[assignment]
    type = "invalid_request_error"
    code = "client_closed_request"


def error_body(error: PonderError) -> ErrorResponse:
    return ErrorResponse(
        error=ErrorInfo(message=error.message, type=error.type, param=error.param, code=error.code)
    )


_SCORER_ERRORS: dict[str, type[PonderError]] = {
    "failed": UpstreamFailed, "unavailable": EngineUnavailable, "timeout": UpstreamTimeout,
}


def as_ponder_error(exc: BaseException) -> PonderError:
    """The one place where an exception becomes an API error."""
    if isinstance(exc, PonderError):
        return exc
    if isinstance(exc, RequestRejected):
        return InvalidRequest(str(exc), param=exc.param)
    if isinstance(exc, ScorerFailed):
        return _SCORER_ERRORS[exc.reason](str(exc), param="strategy.prm", code=None)
    return PonderError("The server had an error while processing your request.")


def log_failure(error: PonderError, exc: BaseException) -> None:
    """A server-side failure, once: one line for a failure the server knows
    (the engine is gone, a PRM server failed, the server is shutting down),
    the traceback for one it does not. A client's mistake or departure is
    not the operator's problem (the access log has it)."""
    if error.status < 500:
        return
    if exc is error or isinstance(exc, ScorerFailed):
        cause = f" ({redact(repr(exc.__cause__))})" if exc.__cause__ is not None else ""
        logger.warning("request failed with %d: %s%s", error.status, error.message, cause)
    else:
        logger.error("request failed", exc_info=exc)


class ErrorJSONResponse(JSONResponse):
    def render(self, content: object) -> bytes:
        # ASCII escapes: a message that quotes a client's lone surrogate
        # still renders (as \ud800), where UTF-8 encoding would raise.
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


def create_error_response(exc: BaseException) -> JSONResponse:
    error = as_ponder_error(exc)
    log_failure(error, exc)
    return ErrorJSONResponse(
        error_body(error).model_dump(),
        status_code=error.status,
        headers=error.headers(),
    )


def lone_surrogate(value: object) -> InvalidRequest | None:
    """JSON may carry a lone surrogate (``"\\ud800"``), which no tokenizer
    (and no UTF-8 response) can take: the error that names where, if any.
    Checked before any other complaint, as a field's own check may trip on
    it with a vaguer message."""
    path = lone_surrogate_at(value)
    if path is None:
        return None
    return InvalidRequest(
        f"{path}: the text holds a lone UTF-16 surrogate, which is not valid Unicode.",
        param=path,
    )


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    # A tagged union puts the variant's tag in the path: `strategy.cot.n`
    # means the client's `strategy.n`.
    if len(location) > 2 and location[0] == "strategy" and location[1] in STRATEGIES:
        del location[1]
    param = ".".join(location) or None
    message = first.get("msg", "Invalid request")
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON.", None
    return (f"{param}: {message}" if param else message), param


def register_error_handlers(app: FastAPI) -> None:
    async def ponder_error(_: Request, exc: Exception) -> JSONResponse:
        return create_error_response(exc)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        surrogate = lone_surrogate(exc.body)
        if surrogate is not None:
            return create_error_response(surrogate)
        message, param = _validation_message(exc)
        return create_error_response(InvalidRequest(message, param=param))

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == PayloadTooLarge.status:
            return create_error_response(PayloadTooLarge(str(exc.detail)))
        error_class = NotFound if exc.status_code == 404 else InvalidRequest
        error = error_class(str(exc.detail), code="not_found" if exc.status_code == 404 else None)
        error.status = HTTPStatus(exc.status_code)
        return create_error_response(error)

    app.add_exception_handler(PonderError, ponder_error)
    app.add_exception_handler(RequestRejected, ponder_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(ScorerFailed, ponder_error)
    # Any other exception: RequestContextMiddleware answers it, logged once.
