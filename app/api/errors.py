"""Error responses for bad requests: a clear 4xx, never a 500, never the input echoed back.

FastAPI's defaults echo each invalid value back in a 422 (``input``): a 20 MB string comes
back as 20 MB, and a value JSON cannot encode (``1e999`` parsed as infinity, a lone
surrogate) turns the 422 into a 500 that closes the keep-alive connection. These handlers
answer with where and why only, every string made encodable and cut short. The request body
size limit itself is FastAPI's (``FastAPI(max_body_size=...)``: 413 before the body is read).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.status import WS_1008_POLICY_VIOLATION

MAX_DETAIL_CHARS = 500  # an HTTP error's detail
MAX_FIELD_CHARS = 120  # each part of a validation error (location, message)
MAX_CLOSE_REASON_BYTES = 123  # RFC 6455: a close frame's reason is at most 123 bytes
MAX_ERRORS = 20


def safe_text(value: object, max_chars: int) -> str:
    """``value`` as text JSON can carry: lone surrogates replaced, cut to ``max_chars``."""
    text = str(value).encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


def close_reason(text: str) -> str:
    """A WebSocket close reason: at most 123 bytes of UTF-8, cut on a character boundary."""
    raw = safe_text(text, MAX_CLOSE_REASON_BYTES).encode("utf-8")
    if len(raw) <= MAX_CLOSE_REASON_BYTES:
        return raw.decode("utf-8")
    return raw[: MAX_CLOSE_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


def describe_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic errors without the offending input: location, message, type."""
    described = []
    for error in list(errors)[:MAX_ERRORS]:
        loc = [part if isinstance(part, int) else safe_text(part, MAX_FIELD_CHARS)
               for part in error.get("loc", ())]
        described.append({"loc": loc, "msg": safe_text(error.get("msg", ""), MAX_FIELD_CHARS),
                          "type": safe_text(error.get("type", ""), MAX_FIELD_CHARS)})
    return described


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": describe_errors(exc.errors())}, status_code=422)


async def _websocket_validation_error(websocket: WebSocket, exc: Exception) -> None:
    assert isinstance(exc, WebSocketRequestValidationError)
    errors = describe_errors(exc.errors())
    where = ".".join(str(part) for part in errors[0]["loc"]) if errors else "request"
    reason = f"invalid {where}: {errors[0]['msg']}" if errors else "invalid request"
    await websocket.accept()  # a close frame is the only way to tell a WebSocket client why
    await websocket.close(code=WS_1008_POLICY_VIOLATION, reason=close_reason(reason))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = getattr(exc, "headers", None)
    if exc.status_code in (204, 304) or exc.status_code < 200:
        return Response(status_code=exc.status_code, headers=headers)
    detail = safe_text(exc.detail, MAX_DETAIL_CHARS) if isinstance(exc.detail, str) else (
        exc.detail)  # structured details are our own code's
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(WebSocketRequestValidationError, _websocket_validation_error)
    app.add_exception_handler(HTTPException, _http_error)
