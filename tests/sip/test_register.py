"""REGISTER as a UAC against sipp playing a carrier's registrar (digest checked by sipp)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from app.settings import SipTrunk
from app.sip.register import Registration
from app.sip.simcaller import start_user_agent
from tests.helpers.tools import needs
from tests.sip.conftest import SCENARIOS, free_udp_port


@needs(shutil.which("sipp") is not None, "sipp")
@pytest.mark.parametrize(("password", "registered"), [("s3cret", True), ("wrong", False)])
async def test_register_answers_the_digest_challenge(tmp_path: Path, password: str,
                                                     registered: bool) -> None:
    port = free_udp_port()
    sipp = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(SCENARIOS / "uas_registrar.xml"), "-i", "127.0.0.1", "-p",
        str(port), "-m", "1", "-nostdin", "-timeout", "30s", cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    trunk = SipTrunk(name="carrier", proxy=f"127.0.0.1:{port}", username="hotline",
                     password=password, domain="carrier.example", register_to_proxy=True,
                     register_expires_s=120)
    ua = await start_user_agent(sip_trunks=[trunk])
    registration = Registration(ua, trunk)
    try:
        await asyncio.sleep(0.3)  # sipp binds its port
        response = await registration.register_once()
    finally:
        await ua.aclose()
        await asyncio.wait_for(sipp.wait(), 30)
    if registered:
        assert response.status == 200
        assert response.get("contact", ) and "expires=60" in (response.get("contact") or "")
    else:  # sipp found the digest wrong and never answered the second REGISTER
        assert response.status == 408
