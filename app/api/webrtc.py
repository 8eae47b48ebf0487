"""WebRTC signalling: ``POST /v1/webrtc/offer`` (SDP offer in, SDP answer + call_id out).

The answer carries every host candidate (and STUN/TURN ones when configured): the server
waits for ICE gathering to complete, so no trickle is needed. A bad offer gets a 4xx with a
``detail`` saying what is wrong and leaves nothing open.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from app.auth import public
from app.call.manager import CallLimitError, UnknownHotlineError
from app.log import get_logger
from app.media.sdp_check import OfferError
from app.media.webrtc import WebRtcCallMedia

router = APIRouter(prefix="/v1/webrtc", tags=["webrtc"])

MAX_SDP_CHARS = 64_000


class OfferRequest(BaseModel):
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)  # check_offer names its faults
    type: Literal["offer"]
    hotline_number: str = Field(min_length=1, max_length=64)
    locale: str | None = Field(default=None, max_length=16)
    caller_number: str | None = Field(default=None, max_length=64)


class OfferAnswer(BaseModel):
    sdp: str
    type: Literal["answer"] = "answer"
    call_id: str
    caller_token: str = Field(
        description="the caller's pass to follow this call's events: "
        "/v1/calls/{call_id}/events?caller_token=...")


@router.post("/offer", response_model=OfferAnswer,
             dependencies=[public(rate="webrtc_offer")])
async def offer(body: OfferRequest, request: Request) -> OfferAnswer:
    """Answer a caller's offer and start the call on the dialled hotline number."""
    state = request.app.state
    calls = state.calls
    log = get_logger(component="webrtc_api")
    try:
        calls.hotline(body.hotline_number)
        calls.check_capacity()  # before any ICE work; start_call checks again
    except UnknownHotlineError as exc:
        raise HTTPException(404, str(exc)) from exc
    except CallLimitError as exc:
        raise _busy(exc) from exc
    try:
        media, answer_sdp = await WebRtcCallMedia.accept_offer(state.settings, body.sdp)
    except OfferError as exc:
        log.info("webrtc_offer_refused", status=exc.status_code, reason=exc.detail)
        raise HTTPException(exc.status_code, exc.detail) from exc
    try:
        call_id: str = await calls.start_call(
            media, hotline_number=body.hotline_number, locale=body.locale,
            caller_number=body.caller_number or "anonymous", channel="webrtc",
        )
    except ValueError as exc:  # UnknownHotlineError or a locale the hotline does not speak
        await media.close()
        raise HTTPException(404 if isinstance(exc, UnknownHotlineError) else 400,
                            str(exc)) from exc
    except CallLimitError as exc:  # the node filled up while this offer was answered
        await media.close()
        raise _busy(exc) from exc
    except BaseException:
        await media.close()
        raise
    media.log = media.log.bind(call_id=call_id)
    return OfferAnswer(sdp=answer_sdp, call_id=call_id,
                       caller_token=state.caller_passes.issue(call_id))


def _busy(exc: CallLimitError) -> HTTPException:
    get_logger(component="webrtc_api").warning("webrtc_offer_refused", status=503,
                                                reason=str(exc))
    return HTTPException(503, str(exc), headers={"Retry-After": str(exc.retry_after_s)})


@router.get("/config", dependencies=[public(rate="public")])
async def config(request: Request) -> dict[str, list[dict[str, str]]]:
    """ICE servers for browser callers: the STUN servers from settings (TURN stays server-side,
    its credentials are not handed out)."""
    stun = request.app.state.settings.webrtc_stun_servers
    return {"ice_servers": [{"urls": url} for url in stun]}
