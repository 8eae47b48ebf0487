"""The routing's live values as JSON, for the shared (Redis) state: one envelope per value,
``{"v": FORMAT, "data": ...}``, so a node never reads a value written in a format it does
not know (a rolling upgrade that changes the format bumps ``FORMAT``).

Pydantic's ``TypeAdapter`` does the work: it serializes the frozen dataclasses (and the
``RouteRequest``/``RoutePlan`` models a queue entry holds) and validates them back, field
types and ``Literal`` values checked. Decoding raises ``ValueError`` with the reason.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from app.routing.presence import AgentPresence
from app.routing.queue import Offer, QueueEntry

FORMAT = 1

T = TypeVar("T")

_PRESENCE = TypeAdapter(AgentPresence)
_ENTRY = TypeAdapter(QueueEntry)
_OFFER = TypeAdapter(Offer)
_FLOATS = TypeAdapter(list[float])


def _dump(adapter: TypeAdapter[Any], value: Any) -> str:
    data = adapter.dump_python(value, mode="json")
    return json.dumps({"v": FORMAT, "data": data}, ensure_ascii=False, separators=(",", ":"))


def _load(adapter: TypeAdapter[T], raw: str | bytes, what: str) -> T:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{what}: not JSON ({exc})") from exc
    if not isinstance(doc, dict) or "v" not in doc or "data" not in doc:
        raise ValueError(f"{what}: not a routing value (no 'v'/'data')")
    if doc["v"] != FORMAT:
        raise ValueError(f"{what}: format {doc['v']!r}, this node reads format {FORMAT}")
    try:
        return adapter.validate_python(doc["data"])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(value)"
        raise ValueError(f"{what}: {where}: {first['msg']}") from exc


def dump_presence(p: AgentPresence) -> str:
    return _dump(_PRESENCE, p)


def load_presence(raw: str | bytes, key: str = "presence") -> AgentPresence:
    return _load(_PRESENCE, raw, key)


def dump_entry(e: QueueEntry) -> str:
    return _dump(_ENTRY, e)


def load_entry(raw: str | bytes, key: str = "queue entry") -> QueueEntry:
    return _load(_ENTRY, raw, key)


def dump_offer(o: Offer) -> str:
    return _dump(_OFFER, o)


def load_offer(raw: str | bytes, key: str = "offer") -> Offer:
    return _load(_OFFER, raw, key)


def dump_handle_times(times: list[float]) -> str:
    return _dump(_FLOATS, times)


def load_handle_times(raw: str | bytes, key: str = "handle times") -> list[float]:
    return _load(_FLOATS, raw, key)
