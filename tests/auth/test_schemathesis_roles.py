"""schemathesis over the whole OpenAPI of a real ``hotline serve``, signed in as each role
(an API token holding every scope of the role): 0 server errors. The run without
credentials is the bad-input suite's. The server runs without an intent model so it starts
fast; ``/v1/intents/reload`` (503 then, by design) is left out.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.auth import Role
from tests.helpers.auth import token_for_each_role
from tests.helpers.server import free_port, serve_ko, wait_ready
from tests.helpers.speech import have_espeak
from tests.helpers.tools import needs

pytestmark = [needs(have_espeak(), "espeak-ng"), pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("roles")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = serve_ko(tmp, port, HOTLINE_LOG_LEVEL="WARNING", HOTLINE_ASR_MODELS="{}",
                    HOTLINE_INTENT_MODEL_DIR=str(tmp / "no-intent-model"),
                    HOTLINE_AUTH_LOGIN_RATE="1000/minute")
    try:
        asyncio.run(wait_ready(url, proc))
        yield url, tmp
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = next(tmp.glob("server-*.log")).read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]  # no request crashed inside the server


@pytest.fixture(scope="module")
def tokens(server: tuple[str, Path]) -> dict[Role, str]:
    async def make() -> dict[Role, str]:
        async with httpx.AsyncClient(timeout=60) as client:
            return await token_for_each_role(client, server[0])

    return asyncio.run(make())


# the admin last: its run may create, change and revoke accounts and tokens
@pytest.mark.timeout(960)  # schemathesis' own limit (900 s) first: a slow box is not a failure
@pytest.mark.parametrize("role", [Role.AGENT, Role.ANALYST, Role.DEVELOPER, Role.SUPERVISOR,
                                  Role.ADMIN])
def test_no_server_error_as(role: Role, server: tuple[str, Path], tokens: dict[Role, str],
                            tmp_path: Path) -> None:
    url, _ = server
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
         "--checks", "not_a_server_error", "--max-examples", "4", "--workers", "1",
         "--phases", "examples,fuzzing", "--request-timeout", "60",
         "--generation-database", "none", "--seed", "1", "--no-color",
         "--header", f"Authorization: Bearer {tokens[role]}",
         # no intent model here (a fast start): the reload answers 503 by design
         "--exclude-path", "/v1/auth/logout", "--exclude-path", "/v1/intents/reload",
         "--exclude-path", "/v1/inbox/retrain"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    summary = run.stdout.split("SUMMARY")[-1]
    assert "generated" in summary and not re.search(r"\b\d+ (failed|errored)", summary), summary
