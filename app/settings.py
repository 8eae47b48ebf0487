"""Hotline settings: pydantic-settings, env prefix HOTLINE_, optional YAML file.

Read once (``load_settings``) at the edge (CLI, ``create_app``) and passed down explicitly.
The YAML file is named by ``HOTLINE_CONFIG`` or ``--config``; environment variables win over
the file, the file wins over the defaults.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from pydantic_settings import SettingsError as PydanticSettingsError

from app.pii import PiiKind

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AT_REST_DEFAULT: tuple[PiiKind, ...] = ("card", "cn_id", "bank_account")


class SipTrunk(BaseModel):
    """A carrier, SBC or PBX allowed to send calls (and the route for calls out through it)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    allow: list[str] = Field(default_factory=list, description="source CIDRs, e.g. 10.0.0.0/8")
    username: str | None = Field(default=None, description="digest user (in and REGISTER out)")
    password: str | None = None
    realm: str = "hotline"
    number_header: str | None = Field(
        default=None, description="header carrying the dialled number (Diversion, "
        "P-Called-Party-ID) when the trunk rewrites the Request-URI"
    )
    proxy: str | None = Field(default=None, description="host:port for calls out and REGISTER")
    transport: str = Field(default="UDP", pattern="^(UDP|TCP)$")
    register_to_proxy: bool = Field(default=False, description="REGISTER to proxy as a UAC")
    register_expires_s: int = Field(default=3600, ge=60)
    domain: str | None = Field(default=None, description="From/To domain for calls out")


_CONFIG_FILE: ContextVar[str | None] = ContextVar("hotline_config_file", default=None)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HOTLINE_", env_nested_delimiter="__", extra="forbid"
    )

    # -- where things live
    data_dir: Path = Field(default=PROJECT_ROOT / "data", description="SQLite, recordings, caches")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file under data_dir"
    )
    models_dir: Path = PROJECT_ROOT / "models"
    models_seed_dir: Path | None = Field(
        default=None, description="read-only copy of models/ shipped with the code (the "
        "Docker image's, outside the models volume): its manifest.toml is used when models_dir "
        "has none, its trained intent model is copied in when models_dir has none; default: "
        "the checkout's models/",
    )
    intents_dir: Path = PROJECT_ROOT / "intents"
    flows_dir: Path = PROJECT_ROOT / "ivr_flows"
    routing_file: Path = Field(
        default=PROJECT_ROOT / "routing" / "demo_hotline.yaml",
        description="routing seeded into the database when it has none (agents, groups, rules)",
    )

    # -- server
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool | None = Field(
        default=None, description="JSON log lines; default: coloured lines on a terminal, "
        "JSON when stderr is a pipe or a file",
    )
    event_loop: Literal["auto", "asyncio", "uvloop"] = Field(
        default="auto", description="`hotline serve` event loop (auto: uvloop when installed)"
    )

    # -- speech recognition (Vosk)
    asr_models: dict[str, str] = Field(
        default_factory=lambda: {
            "en": "vosk-model-small-en-us-0.15",
            "zh": "vosk-model-small-cn-0.22",
        },
        description="locale -> Vosk model name (a folder under models/vosk or a package)",
    )
    asr_decoder: Literal["processes", "threads"] = Field(
        default="processes", description="processes: Vosk decodes in asr_processes worker "
        "processes (forked from one process that loads the models once); threads: in this "
        "process on asr_workers threads (the former decoder, kept for comparison)",
    )
    asr_processes: int = Field(default=2, ge=1, le=64, description="ASR worker processes")
    asr_worker_timeout_s: float = Field(
        default=15.0, gt=0, description="an ASR worker with audio pending that answers nothing "
        "for this long is killed and replaced",
    )
    asr_workers: int = Field(default=2, ge=1, description="decoder thread pool size (threads)")
    asr_queue_max_chunks: int = Field(default=250, ge=10, description="per-stream backlog")
    asr_silence_timeout_s: float = Field(default=0.7, gt=0)
    asr_grammar_silence_timeout_s: float = Field(
        default=0.3, gt=0, description="pause ending a menu answer once a listed phrase is heard"
    )
    asr_vad_aggressiveness: int = Field(default=2, ge=0, le=3)
    asr_grammar_min_confidence: float = Field(default=0.6, ge=0, le=1)
    asr_max_alternatives: int = Field(
        default=3, ge=0, le=20, description="free-form finals carry this many recognizer "
        "alternatives (Vosk n-best, Transcript.alternatives); 0: best string only"
    )

    # -- speech synthesis (pyttsx3 + espeak-ng)
    tts_voices: dict[str, str] = Field(
        default_factory=lambda: {"en": "en-us", "zh": "cmn-latn-pinyin"}
    )
    tts_rate_wpm: int = Field(default=165, ge=60, le=400)
    tts_timeout_s: float = Field(default=20.0, gt=0)
    tts_workers: int = Field(default=1, ge=1, le=8, description="espeak worker processes")
    tts_queue_max: int = Field(default=64, ge=1, description="waiting synth requests")

    # -- understanding
    intent_model_dir: Path | None = Field(
        default=None, description="default: models_dir/intents"
    )
    intent_encoder_path: Path | None = Field(
        default=None, description="local Hugging Face encoder dir; default all-MiniLM-L6-v2"
    )
    intent_threshold: float = Field(default=0.4, ge=0, le=1)
    intent_margin: float = Field(default=0.1, ge=0, le=1)
    nlu_encoder_backend: Literal["onnx", "torch"] = Field(
        default="onnx", description="serving encoder: ONNX Runtime export of the torch "
        "encoder (exported once into model_cache_dir), or torch itself; training uses torch"
    )
    model_cache_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "hotline", description="files derived from installed models (the ONNX export of the "
        "intent encoder): shared by every data_dir on this machine",
    )
    intent_fast_threshold: float = Field(
        default=0.9, ge=0, le=1.01, description="skip the sentence encoder when the n-gram "
        "head alone is this sure of an intent (> 1: always run the encoder)"
    )
    intent_train_on_start: bool = True
    intent_min_accuracy: float = Field(
        default=0.88, ge=0, le=1, description="`hotline intents test`: held-out in-scope floor"
    )
    intent_min_oos_recall: float = Field(
        default=0.8, ge=0, le=1, description="`hotline intents test`: held-out oos recall floor"
    )
    nlu_torch_threads: int = Field(
        default=1, ge=1, description="torch intra-op threads (process-wide; 1 is fastest on a "
        "busy box: spinning OpenMP threads fight the other calls' work)"
    )
    sentiment_model_path: Path | None = Field(
        default=None, description="local transformers sentiment model; default lexicon-based"
    )

    # -- calls
    default_locale: str = "zh"
    webrtc_stun_servers: list[str] = Field(default_factory=list)
    webrtc_turn_servers: list[str] = Field(default_factory=list)
    webrtc_turn_username: str | None = None
    webrtc_turn_password: str | None = None
    webrtc_ice_timeout_s: float = Field(
        default=15.0, gt=0, description="a WebRTC call whose ICE never connects ends after this"
    )
    webrtc_media_timeout_s: float = Field(
        default=10.0, gt=0, description="no caller audio for this long = the peer vanished"
    )
    max_calls: int = Field(
        default=16, ge=1, description="concurrent calls this node takes; beyond it a new call "
        "is refused (WebRTC: 503 with Retry-After). Default: what `python -m bench.call_turns` "
        "measured a 2-core node to serve within its turn-latency targets"
    )
    http_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="larger request bodies are refused (413) "
        "before they are read"
    )
    call_max_duration_s: float = Field(default=3600, gt=0)
    record_retry_s: float = Field(
        default=30.0, gt=0, description="after a call ends, keep retrying a failing database "
        "this long before spooling its record to data_dir/spool (replayed on the next start)",
    )
    record_start_timeout_s: float = Field(
        default=5.0, gt=0, description="a call whose record cannot be created this fast gets "
        "an apology and ends",
    )
    nlu_workers: int = Field(default=2, ge=1, le=16, description="intent classifier threads")
    node_id: str = Field(default="node-1", min_length=1, max_length=64,
                         description="this process's name in a multi-node deployment")
    node_heartbeat_s: float = Field(
        default=5.0, gt=0, description="how often this node writes its heartbeat and looks "
        "for lost nodes (several nodes sharing one database)")
    node_stale_after_s: float = Field(
        default=15.0, gt=0, description="a node whose heartbeat is older than this is lost: "
        "a surviving node finalizes its calls (outcome interrupted)")
    drain_timeout_s: float = Field(
        default=600.0, ge=0, description="on SIGTERM the node takes no new call and waits "
        "this long at most for the calls up to finish, then stops (they end interrupted)")
    leader_ttl_s: float = Field(
        default=10.0, ge=1, le=300, description="the leader's lease in Redis (several nodes): "
        "renewed every ttl/3; a lost leader is replaced within about this long")
    redis_url: str | None = Field(
        default=None, description="redis://host:port/db shared by the nodes: live call "
        "events, rate limits and the leader's lease across nodes. None: in this process (one "
        "node)")
    queue_max_wait_s: float = Field(default=120, gt=0)
    queue_position_every_s: float = Field(default=30, gt=0)

    # -- alerts (app/alerts): the monitor's wall highlight, GET /v1/alerts, the webhook
    alert_check_every_s: float = Field(
        default=5.0, gt=0, le=300, description="how often the alert engine evaluates (it "
        "also checks at once on a sentiment turn or a caller leaving a queue)")
    alert_sla_enabled: bool = Field(default=True, description="alert on service level")
    alert_sla_s: float = Field(default=20.0, gt=0, description="answered within this many "
                               "seconds counts for the service level (as the waits report)")
    alert_sla_target_pct: float = Field(
        default=80.0, ge=0, le=100, description="alert when the service level over the "
        "window falls below this")
    alert_sla_clear_pct: float = Field(
        default=85.0, ge=0, le=100, description="the alert clears once the service level is "
        "back at or above this (hysteresis: >= alert_sla_target_pct)")
    alert_sla_window_s: float = Field(default=1800.0, gt=0, le=86_400,
                                      description="rolling window: calls started this long ago")
    alert_sla_min_calls: int = Field(default=10, ge=1, description="no service-level alert "
                                     "with fewer handed-off calls in the window")
    alert_hold_enabled: bool = Field(default=True, description="alert on a long queue wait")
    alert_hold_max_s: float = Field(default=60.0, gt=0,
                                    description="a caller waiting in a queue longer than this")
    alert_sentiment_enabled: bool = Field(default=True,
                                          description="alert on a live call's falling sentiment")
    alert_sentiment_below: float = Field(
        default=-0.5, ge=-1.0, le=1.0, description="a live call's latest sentiment score "
        "(-1..1) below this")
    alert_sentiment_drop: float = Field(
        default=0.8, gt=0, le=2.0, description="or fallen by at least this from the call's "
        "best earlier turn")
    alert_recent_max: int = Field(default=200, ge=1, le=10_000,
                                  description="raised/cleared alerts kept for GET /v1/alerts")
    alert_webhook_url: str | None = Field(
        default=None, description="http(s) URL each raised and cleared alert is POSTed to "
        "as JSON; None: no webhook")
    alert_webhook_secret: SecretStr | None = Field(
        default=None, description="signs the webhook body: X-Hotline-Signature: "
        "sha256=<hex HMAC-SHA256 of the body>")
    alert_webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)
    alert_webhook_retries: int = Field(default=3, ge=0, le=10,
                                       description="tries after the first failure")
    alert_webhook_backoff_s: float = Field(default=1.0, ge=0, le=60, description="wait before "
                                           "the first retry, doubled before each next one")

    # -- web chat (/chat, /v1/chat)
    chat_allowed_origins: list[str] = Field(
        default_factory=list, description="other sites that may embed the chat widget or call "
        "the chat API from a browser (scheme://host[:port], or '*'); this server's own origin "
        "is always allowed",
    )
    chat_message_max_chars: int = Field(default=1000, ge=1, le=20_000)
    chat_messages_per_minute: int = Field(default=30, ge=1, description="per chat session")
    chat_ip_messages_per_minute: int = Field(default=120, ge=1, description="per client IP")
    chat_ip_sessions_per_minute: int = Field(
        default=10, ge=1, description="new chat sessions per client IP")
    chat_no_input_s: float = Field(
        default=300, gt=0, description="a chat question unanswered this long is the flow's "
        "no-input (a reprompt, then its no-input handling)",
    )
    chat_detach_s: float = Field(
        default=120, gt=0, description="a chat with no browser connected this long ends "
        "(outcome connection_lost); a reconnect within it resumes the chat",
    )

    # -- SIP trunk and RTP media (app/sip, app/media/rtp_leg.py)
    sip_enabled: bool = False
    sip_host: str = "127.0.0.1"
    sip_port: int = Field(default=5060, ge=0, le=65535, description="UDP and TCP; 0: any free")
    sip_public_host: str | None = Field(
        default=None, description="address in Contact/Via/SDP when behind NAT; default sip_host"
    )
    sip_trunks: list[SipTrunk] = Field(
        default_factory=lambda: [SipTrunk(name="local", allow=["127.0.0.0/8"])],
        description="who may call in (IP allow-list and/or digest) and routes out",
    )
    sip_max_calls: int = Field(default=100, ge=1, description="beyond it: 503 + Retry-After")
    sip_rate_limit_per_s: float = Field(default=20, gt=0, description="INVITE/REGISTER per "
                                        "source IP; above it requests are dropped and counted")
    sip_rate_limit_burst: int = Field(default=40, ge=1)
    sip_session_expires_s: int = Field(default=1800, ge=90, description="RFC 4028")
    sip_ring_timeout_s: float = Field(default=30, gt=0, description="outbound dial default")
    sip_codecs: list[str] = Field(default_factory=lambda: ["PCMU", "PCMA"])
    rtp_port_min: int = Field(default=20000, ge=1024, le=65534)
    rtp_port_max: int = Field(default=30000, ge=1025, le=65535)
    rtp_timeout_s: float = Field(
        default=30.0, gt=0, description="no RTP for this long (not on hold) ends the call"
    )
    rtp_jitter_min_ms: int = Field(default=40, ge=20)
    rtp_jitter_max_ms: int = Field(default=300, ge=40)

    # -- access control (app/auth) and personal data (app/pii.py); see README "Accounts"
    auth_admin_name: str = Field(default="admin", min_length=1, max_length=64,
                                 description="the first-run administrator's name")
    auth_admin_password: SecretStr | None = Field(
        default=None, description="the first-run administrator's password; unset: one is "
        "generated and printed once to the terminal (never to the logs)",
    )
    auth_bootstrap_token: SecretStr | None = Field(
        default=None, description="a fixed admin bearer token (automation, "
        "tests); every use is audited as actor 'bootstrap'. Leave unset in production",
    )
    auth_cookie_secure: Literal["auto", "always", "never"] = Field(
        default="auto", description="Secure flag of the session cookie: auto = when the "
        "request came over HTTPS (behind a TLS proxy: run uvicorn with proxy headers)",
    )
    auth_cookie_samesite: Literal["lax", "strict"] = "lax"
    auth_session_idle_s: float = Field(default=8 * 3600, gt=0)
    auth_session_max_s: float = Field(default=24 * 3600, gt=0)
    auth_allowed_origins: list[str] = Field(
        default_factory=list, description="origins (scheme://host[:port]) allowed besides "
        "the server's own, for WebSockets, signalling and cookie-authenticated writes",
    )
    auth_password_min_length: int = Field(default=10, ge=8, le=128)
    auth_max_failed_logins: int = Field(default=5, ge=1, description="then the account locks")
    auth_lockout_s: float = Field(default=900, gt=0)
    auth_login_rate: str = Field(default="10/minute", description="login attempts per IP")
    public_rate: str = Field(default="120/minute", description="per IP: the softphone page, "
                             "its files, /v1/hotlines, /v1/webrtc/config")
    webrtc_offer_rate: str = Field(default="30/minute", description="call set-ups per IP")
    pii_redact_at_rest: list[PiiKind] = Field(
        default_factory=lambda: list(AT_REST_DEFAULT),
        description="kinds masked before anything is stored or published (nobody sees them)",
    )
    pii_clear_roles: list[str] = Field(
        default_factory=lambda: ["admin"], description="roles that see the other kinds "
        "(phone numbers) in clear in API and desk output; everyone else sees them masked",
    )

    @field_validator("alert_sla_clear_pct")
    @classmethod
    def _clear_above_target(cls, value: float, info: ValidationInfo) -> float:
        target = info.data.get("alert_sla_target_pct")
        if target is not None and value < target:
            raise ValueError(f"alert_sla_clear_pct ({value:g}) must be at least "
                             f"alert_sla_target_pct ({target:g}), or the alert would flap")
        return value

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"alert_webhook_url must be an absolute http(s) URL, got {value!r}")
        return value

    @field_validator("auth_bootstrap_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("the bootstrap token must be at least 32 characters long")
        return value

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'hotline.db').resolve()}"

    @property
    def intent_model_path(self) -> Path:
        return self.intent_model_dir or (self.models_dir / "intents")

    @property
    def seed_dir(self) -> Path | None:
        """Where shipped models are (``models_seed_dir``, else the checkout's models/)."""
        if self.models_seed_dir is not None:
            return self.models_seed_dir
        checkout = PROJECT_ROOT / "models"
        return checkout if checkout.is_dir() else None

    @property
    def manifest_path(self) -> Path:
        """models_dir/manifest.toml, else the shipped one (a fresh models volume has none)."""
        own = self.models_dir / "manifest.toml"
        seed = self.seed_dir
        if not own.is_file() and seed is not None and (seed / "manifest.toml").is_file():
            return seed / "manifest.toml"
        return own

    @property
    def vosk_models_dir(self) -> Path:
        return self.models_dir / "vosk"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def tts_cache_dir(self) -> Path:
        return self.data_dir / "tts_cache"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = _CONFIG_FILE.get() or os.environ.get("HOTLINE_CONFIG")
        if config:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config))
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read settings once. ``config_file`` (YAML) is used as if HOTLINE_CONFIG named it.

    Every problem is a ``SettingsError`` naming the variable, file:line or key, with a
    "did you mean" for misspelled names (``app.settings_check``); HOTLINE_* variables that
    are not settings are refused when they look like a typo of one, else warned about.
    """
    from app.settings_check import check_env, check_yaml, explain, explain_source_error

    env_config = os.environ.get("HOTLINE_CONFIG")
    origin = "--config" if config_file is not None else "HOTLINE_CONFIG"
    path = config_file if config_file is not None else (Path(env_config) if env_config else None)
    yaml_lines = check_yaml(path, origin) if path is not None else {}
    check_env(os.environ)
    token = _CONFIG_FILE.set(str(path) if path is not None else None)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise explain(exc, path, yaml_lines, os.environ) from None
    except PydanticSettingsError as exc:  # an env value that is not JSON for a dict/list
        raise explain_source_error(exc, os.environ) from None
    finally:
        _CONFIG_FILE.reset(token)
