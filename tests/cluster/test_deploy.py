"""The deployment files are consistent with the code: compose parses, names real settings,
gives every node its own identity and ports, and waits for a drain; the systemd env example
names real settings; Kamailio accepts deploy/kamailio/kamailio.cfg."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from app.settings import PROJECT_ROOT, Settings
from tests.helpers.tools import require_tool

DEPLOY = PROJECT_ROOT / "deploy"


def _setting(name: str) -> str:
    assert name.startswith("HOTLINE_"), name
    field = name.removeprefix("HOTLINE_").lower()
    assert field in Settings.model_fields, f"{name} is not a setting"
    return field


def test_compose_runs_nodes_kamailio_postgres_and_redis_consistently() -> None:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"kamailio", "postgres", "redis"} <= set(services)
    nodes = {name: s for name, s in services.items() if s.get("image") == "hotline:latest"}
    assert len(nodes) >= 2
    seen: dict[str, set[str]] = {}
    for name, node in nodes.items():
        env = node["environment"]
        for key in env:
            _setting(key)
        Settings(**{_setting(k): v for k, v in env.items()})  # values valid as settings
        for key in ("HOTLINE_NODE_ID", "HOTLINE_PORT", "HOTLINE_SIP_PORT",
                    "HOTLINE_RTP_PORT_MIN"):
            assert env[key] not in seen.setdefault(key, set()), f"{name} repeats {key}"
            seen[key].add(env[key])
        assert env["HOTLINE_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["HOTLINE_REDIS_URL"].startswith("redis://")
        grace_s = int(node["stop_grace_period"].removesuffix("m")) * 60
        assert node["stop_signal"] == "SIGTERM"
        assert grace_s >= float(env["HOTLINE_DRAIN_TIMEOUT_S"])  # not killed mid-drain
    dispatcher = (DEPLOY / "kamailio" / "compose" / "dispatcher.list").read_text()
    for node in nodes.values():  # Kamailio knows every node's SIP port
        assert f"sip:127.0.0.1:{node['environment']['HOTLINE_SIP_PORT']}" in dispatcher
    for volume in services["kamailio"]["volumes"]:
        source = volume.split(":")[0]
        assert (DEPLOY / source).is_file(), f"compose mounts a missing file {source}"


def test_the_systemd_env_example_names_real_settings() -> None:
    for line in (DEPLOY / "systemd" / "hotline.env.example").read_text().splitlines():
        line = line.lstrip("# ").strip()
        if "=" in line and line.startswith("HOTLINE_"):
            _setting(line.split("=", 1)[0])
    unit = (DEPLOY / "systemd" / "hotline@.service").read_text()
    assert "KillSignal=SIGTERM" in unit and "ExecStart=" in unit


def test_kamailio_accepts_the_config(tmp_path: Path) -> None:
    require_tool("kamailio")
    shutil.copy(DEPLOY / "kamailio" / "kamailio.cfg", tmp_path / "kamailio.cfg")
    (tmp_path / "dispatcher.list").write_text("1 sip:127.0.0.1:5071\n")
    (tmp_path / "trunks.list").write_text("1 127.0.0.1\n")
    (tmp_path / "hotline-local.cfg").write_text(
        "listen=udp:127.0.0.1:5999\n"
        f'#!define DS_LIST "{tmp_path / "dispatcher.list"}"\n'
        f'#!define TRUNKS_LIST "{tmp_path / "trunks.list"}"\n')
    result = subprocess.run(["kamailio", "-c", "-f", str(tmp_path / "kamailio.cfg")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "config file ok" in (result.stdout + result.stderr).lower()
