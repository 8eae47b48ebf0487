"""``build_services(settings)``: the process's shared parts, loaded once and wired together.

Used by the server (``app.main`` lifespan), the CLI tools and the tests alike, so there is one
wiring of the call pipeline: the database (migrated, calls left in flight by a crash
finalized, spooled records replayed), Vosk, the TTS workers, the intent model, the flows,
and the ``CallManager`` that starts calls on any transport's media leg. A part that fails to
load degrades the service (keypad-only without ASR, no intents without a model) and is named
in ``problems``/``degraded`` for ``/readyz``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from app.alerts.engine import AlertEngine, rolling_service_level
from app.asr.engine import AsrEngine
from app.asr.registry import ModelRegistry
from app.call.bus import EventBus, LiveBus
from app.call.eventlog import replay_spool
from app.call.info import CallDeps
from app.call.manager import CallManager, Hotline
from app.call.recorder import wav_duration_s
from app.cluster.leader import Leadership, LocalLeadership, RedisLeadership
from app.cluster.liveness import NodeLiveness
from app.cluster.redis_bus import RedisEventBus
from app.events import utc_now
from app.flows.engine import FlowEngine
from app.flows.loader import load_flows
from app.handoff.desk import DeskHub
from app.handoff.live import DeskError, LiveRouting
from app.handoff.phones import Phones
from app.handoff.routing_bus import RoutingBus, SharedDeskHub
from app.handoff.service import HandoffService
from app.log import get_logger
from app.media.sdp_check import OfferError
from app.media.webrtc import WebRtcCallMedia
from app.nlu.service import NluService
from app.routing.config import RoutingConfig
from app.routing.engine import CompiledRouting
from app.routing.loader import RoutingFileError
from app.routing.service import RoutingService
from app.routing.shared import RedisState, RoutingState
from app.routing.store import RoutingStore, ensure_seeded
from app.routing.waiting import QueueBoard
from app.settings import Settings
from app.storage.db import Database
from app.storage.handoff_repo import HandoffRepository
from app.storage.repository import CallRepository
from app.tts.service import TtsService


def local_url(host: str, port: int) -> str:
    """Where this process's own HTTP server is reached from inside it."""
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    return f"http://{host}:{port}"


@dataclass
class Services:
    settings: Settings
    db: Database
    repo: CallRepository
    bus: LiveBus
    asr: AsrEngine
    tts: TtsService
    nlu: NluService | None
    flows: dict[str, Any]
    http: httpx.AsyncClient
    calls: CallManager
    degraded: dict[str, str] = field(default_factory=dict)  # part -> why it is degraded
    log: Any = None
    owns_asr: bool = True  # False when the caller lent a loaded engine (tests)
    owns_nlu: bool = True
    liveness: NodeLiveness | None = None
    leadership: Leadership | None = None  # who runs the cluster's singletons (app.cluster.leader)
    handoff: HandoffService | None = None  # routing to agents, the desks
    sip: Any = None  # app.sip.service.SipService when sip_enabled
    alerts: AlertEngine | None = None  # SLA, long wait, sentiment (app/alerts)

    def use_flows(self, flows: dict[str, Any]) -> None:
        """Serve ``flows`` from now on (a flow version was activated): new calls take the
        hotlines' new flows; a call in progress goes on in its flow's new version."""
        self.flows = flows
        self.calls.deps.engine.flows = flows
        self.calls.hotlines = hotlines_of(flows)

    async def aclose(self) -> None:
        """Stop every call (each closes its own record), then the shared parts."""
        if self.sip is not None:  # BYEs leave before the calls' tasks are cancelled
            with contextlib.suppress(Exception):
                await self.sip.aclose()
        await self.calls.shutdown()
        if self.handoff is not None:
            await self.handoff.aclose()
        if self.alerts is not None:
            await self.alerts.aclose()
        if self.liveness is not None:
            await self.liveness.aclose()
        if self.leadership is not None:  # released: a successor leads at once
            await self.leadership.aclose()
        with contextlib.suppress(Exception):
            await self.tts.aclose()
        if self.owns_asr:
            with contextlib.suppress(Exception):
                await self.asr.aclose()
        if self.owns_nlu and self.nlu is not None:
            self.nlu.close()
        await self.http.aclose()
        if isinstance(self.bus, RedisEventBus):
            await self.bus.aclose()
        await asyncio.to_thread(self.db.dispose)


def hotlines_of(flows: dict[str, Any]) -> dict[str, Hotline]:
    hotlines: dict[str, Hotline] = {}
    for flow in flows.values():
        for number in flow.hotline_numbers:
            hotlines[number] = Hotline(
                number=number, flow_id=flow.id, locales=tuple(flow.locales),
                default_locale=flow.default_locale, recording=bool(flow.recording),
            )
    return hotlines


async def open_storage(settings: Settings, degraded: dict[str, str] | None = None
                       ) -> tuple[Database, CallRepository]:
    """The database, migrated, routing seeded on a first start; calls a crash left in flight
    finalized; spooled records replayed. A bad seed routing file is reported in ``degraded``
    (the service starts; handed-over calls then wait in the flow's queue)."""
    log = get_logger()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database.from_settings(settings)
    await asyncio.to_thread(db.migrate)
    try:
        await asyncio.to_thread(ensure_seeded, db, settings.routing_file)
    except (RoutingFileError, OSError) as exc:
        reason = f"routing not seeded from {settings.routing_file}: {exc}"
        log.error("routing_seed_failed", reason=reason)
        if degraded is not None:
            degraded["routing"] = reason
    repo = CallRepository(db)
    replayed, failed = await asyncio.to_thread(replay_spool, repo, settings.spool_dir)
    if replayed:
        log.warning("call_records_replayed", count=len(replayed), call_ids=replayed)
    for name, reason in failed.items():
        log.error("call_record_replay_failed", file=name, reason=reason)
    # this node's calls only (and those naming no node): other nodes sharing the database
    # may have calls up; a lost node's calls are finalized by ``NodeLiveness``
    interrupted = await asyncio.to_thread(
        lambda: repo.finalize_interrupted(
            utc_now(), node_id=settings.node_id, unowned_too=True,
            recording_duration=recording_duration(settings)))
    if interrupted:
        log.warning("calls_finalized_after_restart", count=len(interrupted),
                    call_ids=interrupted)
    return db, repo


def recording_duration(settings: Settings) -> Callable[[str], float | None]:
    """The duration of a recording file on this node's disk (None: not there)."""
    return lambda file: wav_duration_s(settings.recordings_dir / file)


async def load_asr(settings: Settings, degraded: dict[str, str]) -> AsrEngine:
    log = get_logger()
    asr = AsrEngine(settings, ModelRegistry.for_settings(settings))
    for locale, reason in (await asyncio.to_thread(asr.load)).items():
        degraded[f"asr:{locale}"] = reason
        log.warning("asr_model_unavailable", locale=locale, reason=reason,
                    effect="calls in this locale are keypad-only")
    return asr


async def _start_tts(settings: Settings, degraded: dict[str, str]) -> TtsService:
    log = get_logger()
    tts = TtsService(settings)
    try:
        await tts.start()
    except Exception as exc:  # the server still starts; /readyz reports it
        degraded["tts"] = f"speech synthesis failed to start: {exc}"
        log.error("tts_unavailable", reason=degraded["tts"])
    return tts


async def load_nlu(settings: Settings, degraded: dict[str, str]) -> NluService | None:
    log = get_logger()
    try:
        nlu = NluService(settings)
    except ValueError as exc:  # a bad intents file: named with file and line
        degraded["intents"] = f"intents not loaded: {exc}"
        log.error("intents_unavailable", reason=degraded["intents"])
        return None
    problem: str | None = None
    if settings.intent_train_on_start:
        try:
            await asyncio.to_thread(nlu.ensure_trained)
        except Exception as exc:  # reported, calls go on without intents
            problem = f"intent training failed: {exc}"
    problem = problem or await asyncio.to_thread(nlu.load)
    if problem:
        degraded["intents"] = problem
        log.error("intents_unavailable", reason=problem)
    return nlu


async def live_bus(settings: Settings) -> LiveBus:
    """The live event bus: shared through Redis when ``redis_url`` is set (several nodes),
    else in this process."""
    if not settings.redis_url:
        return EventBus()
    bus = RedisEventBus(settings.redis_url, settings.node_id)
    await bus.start()
    return bus


_NO_NLU: Any = object()


async def build_services(settings: Settings, *, http_base_url: str | None = None,
                         asr: AsrEngine | None = None, nlu: NluService | None = _NO_NLU,
                         http: httpx.AsyncClient | None = None,
                         clock: Callable[[], datetime] = utc_now) -> Services:
    """Load and wire everything a Hotline process needs (see the module docstring).

    ``asr``/``nlu``: already loaded parts to use instead of loading them (tests share one
    across many calls; ``nlu=None`` runs without intents); the caller keeps closing them.
    ``http``: the client for flows' webhooks (default: relative URLs against this server);
    ``clock``: the flows' "now" (business hours), for tests and replays.
    """
    log = get_logger()
    degraded: dict[str, str] = {}
    owns_asr, owns_nlu = asr is None, nlu is _NO_NLU
    db, repo = await open_storage(settings, degraded)
    if asr is None:
        asr = await load_asr(settings, degraded)
    tts = await _start_tts(settings, degraded)
    if nlu is _NO_NLU:
        nlu = await load_nlu(settings, degraded)
    catalog = nlu.catalog if nlu is not None else None
    flows = load_flows(settings.flows_dir, catalog.names() if catalog else None)
    # relative webhook URLs in flows (the demo order service) resolve against this server
    if http is None:
        http = httpx.AsyncClient(base_url=http_base_url or local_url(settings.host, settings.port))
    bus = await live_bus(settings)
    deps = CallDeps(
        settings=settings, store=repo, bus=bus, engine=FlowEngine(flows, catalog),
        tts=None if "tts" in degraded else tts, asr=asr,
        nlu=nlu if nlu is not None and "intents" not in degraded else None, http=http,
        queues=QueueBoard(), clock=clock,
    )
    calls = CallManager(deps, hotlines_of(flows))
    leadership: Leadership = (
        RedisLeadership(settings.redis_url, settings.node_id, ttl_s=settings.leader_ttl_s)
        if settings.redis_url else LocalLeadership(settings.node_id))
    await leadership.start()
    liveness = NodeLiveness(repo, settings, recording_duration=recording_duration(settings),
                            clock=utc_now, leadership=leadership)
    services = Services(settings=settings, db=db, repo=repo, bus=bus, asr=asr, tts=tts, nlu=nlu,
                        flows=flows, http=http, calls=calls, degraded=degraded, log=log,
                        owns_asr=owns_asr, owns_nlu=owns_nlu, liveness=liveness,
                        leadership=leadership)
    services.handoff = await start_handoff(services, clock)
    deps.handoff = services.handoff
    liveness.on_lost = services.handoff.nodes_lost  # a lost node's calls, its callbacks
    await liveness.tick()  # this node's heartbeat before its first call (and a first sweep)
    liveness.start()
    if "routing" not in degraded:  # this node's callbacks queued before a restart
        await services.handoff.adopt_callbacks()
    services.alerts = AlertEngine(settings, bus, calls, rolling_service_level(db, settings), http)
    await services.alerts.start()
    if settings.sip_enabled:  # SIP trunk + RTP media (app/sip): calls in, agents' phones out
        from app.sip.service import start_sip

        try:
            services.sip = await start_sip(settings, calls)
        except BaseException:
            await services.aclose()
            raise
    log.info("ready", hotlines=sorted(calls.hotlines), asr_locales=sorted(asr.available_locales()))
    return services


async def start_handoff(services: Services, clock: Callable[[], datetime]) -> HandoffService:
    """The routing (from the database) driven live, the desks, phones and callbacks."""
    settings, degraded = services.settings, services.degraded
    try:
        config = await asyncio.to_thread(RoutingStore(services.db).load)
    except ValueError as exc:  # reported; handed-over calls wait in the flow's queue
        degraded["routing"] = str(exc)[:300]
        config = None
    routing = RoutingService(CompiledRouting(config or RoutingConfig()))

    async def accept_web(sdp: str) -> tuple[Any, str]:
        try:
            return await WebRtcCallMedia.accept_offer(settings, sdp)
        except OfferError as exc:
            raise DeskError(exc.status_code, exc.detail) from exc

    phones = Phones(lambda: services.sip, ring_timeout_s=settings.sip_ring_timeout_s)
    desk, state, bus = await _routing_parts(settings, routing)
    live = LiveRouting(routing, desk, clock=clock, dial_device=phones.ring_device,
                       accept_web=accept_web, state=state, bus=bus)
    if live.remote is not None:  # a desk that never saw a call's offer finds its node here
        repo = services.repo

        async def locate(call_id: str) -> str | None:
            return await asyncio.to_thread(repo.live_node, call_id)

        live.remote.locate = locate
    live.start()
    return HandoffService(live, HandoffRepository(services.db), services.bus, services.http,
                          phones, node_id=settings.node_id)


async def _routing_parts(settings: Settings, routing: RoutingService
                         ) -> tuple[DeskHub, RoutingState | None, RoutingBus | None]:
    """Where the live routing keeps its state and reaches the desks: in this process (one
    node), or in Redis with a bus to the other nodes (``redis_url``)."""
    if not settings.redis_url:
        return DeskHub(), None, None
    bus = RoutingBus(settings.redis_url, settings.node_id)
    await bus.start()
    try:  # Redis down at start: the node starts; the bus subscribes when Redis is back
        await bus.ready(timeout_s=5)
    except TimeoutError:
        get_logger().error("routing_bus_not_ready", node_id=settings.node_id,
                           effect="routing events of other nodes are missed until Redis "
                                  "is reachable")
    state = RedisState(routing, settings.redis_url, settings.node_id)
    return SharedDeskHub(bus), state, bus
