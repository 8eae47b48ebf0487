"""The routing model as pydantic: agents, groups (queues), hotline numbers and their rules.

One document holds the whole routing (agents are shared by every hotline)::

    version: 1
    calendars: {service: {timezone: Asia/Shanghai, hours: {mon: ["08:00-22:00"]}}}
    offers: {no_answer_delay_s: 30, reject_delay_s: 15, busy_delay_s: 60, max_missed_offers: 3}
    agents:
      li.na: {name: 李娜, languages: [zh], skills: {general: 5}, devices: [{kind: web}]}
    groups:
      zh_service: {strategy: skills_based, members: [li.na], overflow: {callback: true}}
    hotlines:
      - number: "4008001234"
        flow: demo_hotline
        rules:
          - {name: angry, when: {sentiment: negative}, target: {group: senior}}

Field-level checks live on the models; references between sections (a member naming an
unknown agent, an overflow cycle) are found by ``refs.check_refs``, which returns the path of
each problem so the loader can name the file line.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Any, Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.flows.calendar import WEEKDAYS, BusinessCalendar, Weekday, parse_range
from app.routing.region import province_key

STRATEGIES = (
    "sequential", "ring_all", "random", "round_robin", "weighted_random", "longest_idle",
    "fewest_calls", "least_talk_time", "skills_based",
)
Strategy = Literal[
    "sequential", "ring_all", "random", "round_robin", "weighted_random", "longest_idle",
    "fewest_calls", "least_talk_time", "skills_based",
]
DayKind = Literal["workday", "weekend", "holiday", "makeup"]
SentimentLabel = Literal["negative", "neutral", "positive"]
CrmValue = str | int | float | bool

_ID = re.compile(r"^[a-z][a-z0-9_.\-]{0,63}$")
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_SIP_URI = re.compile(r"^sips?:[^@\s]+@[^\s@]+$")
_HOTLINE = re.compile(r"^\+?\d{3,20}$")
_PREFIX = re.compile(r"^\+\d{1,15}$")
Path_ = tuple[str, ...]


def check_id(kind: str, value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"{kind} id {value!r} must be lower-case letters, digits, . _ or - "
                         "(starting with a letter, at most 64)")
    return value


def e164(value: str, what: str) -> str:
    """A phone number in E.164; national Chinese numbers (``010...``/``138...``) accepted."""
    try:
        parsed = phonenumbers.parse(value, "CN")
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{what} {value!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{what} {value!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _as_list(value: Any) -> Any:
    """``intent: complaint`` is ``intent: [complaint]``."""
    return value if isinstance(value, list | dict) or value is None else [value]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Device(_Strict):
    """Where an agent answers: the web desk, a SIP URI, or a phone number via the trunk."""

    kind: Literal["web", "sip", "phone"]
    uri: str | None = None
    number: str | None = None
    trunk: str | None = Field(default=None, description="trunk name for a phone number")

    @field_validator("number")
    @classmethod
    def _number(cls, v: str | None) -> str | None:
        return None if v is None else e164(v, "phone device number")

    @model_validator(mode="after")
    def _fields(self) -> Device:
        if self.kind == "web" and (self.uri or self.number or self.trunk):
            raise ValueError("a web device takes no uri, number or trunk")
        if self.kind == "sip":
            if not self.uri or not _SIP_URI.match(self.uri):
                raise ValueError(f"a sip device needs uri: sip:user@host, got {self.uri!r}")
            if self.number or self.trunk:
                raise ValueError("a sip device takes a uri, not a number or trunk")
        if self.kind == "phone":
            if not self.number:
                raise ValueError("a phone device needs number: (E.164, e.g. +8613800138000)")
            if self.uri:
                raise ValueError("a phone device takes a number, not a uri")
        return self

    @property
    def address(self) -> str:
        return self.uri or self.number or "web"


class Agent(_Strict):
    name: str = Field(min_length=1, max_length=128)
    languages: list[str] = Field(min_length=1)
    skills: dict[str, int] = Field(default_factory=dict, description="skill -> level 1..10")
    max_calls: int = Field(default=1, ge=1, le=10)
    devices: list[Device] = Field(default_factory=lambda: [Device(kind="web")], min_length=1)

    @field_validator("languages")
    @classmethod
    def _languages(cls, v: list[str]) -> list[str]:
        for loc in v:
            if not _LOCALE.match(loc):
                raise ValueError(f"language {loc!r} is not a locale code such as zh or en")
        if len(set(v)) != len(v):
            raise ValueError("a language is listed twice")
        return v

    @field_validator("skills")
    @classmethod
    def _skills(cls, v: dict[str, int]) -> dict[str, int]:
        for skill, level in v.items():
            check_id("skill", skill)
            if isinstance(level, bool) or not 1 <= level <= 10:
                raise ValueError(f"skill {skill!r} level must be 1..10, got {level!r}")
        return v


class Member(_Strict):
    agent: str
    order: int | None = Field(default=None, ge=0, description="default: place in the list")
    weight: int = Field(default=1, ge=1, le=1000, description="for weighted_random")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, raw: Any) -> Any:
        return {"agent": raw} if isinstance(raw, str) else raw


class Split(_Strict):
    group: str
    percent: int = Field(ge=1, le=100)


TargetKind = Literal["group", "agent", "number", "voicemail", "callback", "split"]


class Target(_Strict):
    """Exactly one of: a group, an agent, a phone number, voicemail, a callback offer, or a
    percentage split between groups (``split: [{group: a, percent: 70}, ...]``)."""

    group: str | None = None
    agent: str | None = None
    number: str | None = None
    voicemail: bool = False
    callback: bool = False
    split: list[Split] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, raw: Any) -> Any:
        if raw in ("voicemail", "callback"):
            return {raw: True}
        return raw

    @field_validator("number")
    @classmethod
    def _number(cls, v: str | None) -> str | None:
        return None if v is None else e164(v, "target number")

    @model_validator(mode="after")
    def _one(self) -> Target:
        given = [k for k in ("group", "agent", "number", "split") if getattr(self, k)]
        given += [k for k in ("voicemail", "callback") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("a target is exactly one of group, agent, number, voicemail, "
                             f"callback, split (got {', '.join(given) or 'none'})")
        if self.split is not None:
            total = sum(s.percent for s in self.split)
            if total != 100:
                raise ValueError(f"split percentages add up to {total}, not 100")
            groups = [s.group for s in self.split]
            if len(set(groups)) != len(groups):
                raise ValueError("a group appears twice in the split")
        return self

    @property
    def kind(self) -> TargetKind:
        for k in ("group", "agent", "number", "split"):
            if getattr(self, k):
                return k  # type: ignore[return-value]
        return "voicemail" if self.voicemail else "callback"

    def describe(self) -> str:
        if self.split:
            return "split " + " / ".join(f"{s.group} {s.percent}%" for s in self.split)
        value = self.group or self.agent or self.number
        return f"{self.kind} {value}" if value else self.kind


class Group(_Strict):
    name: str = ""
    strategy: Strategy = "longest_idle"
    members: list[Member] = Field(default_factory=list)
    skills: list[str] = Field(default_factory=list, description="every member needs these")
    match_language: bool = Field(default=True, description="agents must speak the call's locale")
    ring_timeout_s: float = Field(default=20, gt=0, le=300)
    max_wait_s: float = Field(default=120, gt=0, le=86_400)
    wrap_up_s: float = Field(default=10, ge=0, le=3_600)
    priority: int = Field(default=0, ge=-100, le=100)
    calendar: str | None = None
    overflow: Target | None = None
    overflow_if_empty: bool = Field(default=True, description="go on at once when no member "
                                    "is logged in")
    callback_offer_after_s: float | None = Field(default=None, gt=0, description="offer a "
                                                 "callback once the estimated wait passes this")
    callback_priority: int = Field(default=0, ge=-100, le=100)
    callback_expire_after_s: float = Field(default=86_400, gt=0, le=7 * 86_400, description=
                                           "a callback task not served this long after the "
                                           "caller joined ends failed (expired)")
    default_handle_s: float = Field(default=180, gt=0, description="estimated handle time "
                                    "until the group has history")

    @field_validator("skills")
    @classmethod
    def _skills(cls, v: list[str]) -> list[str]:
        return [check_id("skill", s) for s in v]

    @field_validator("overflow")
    @classmethod
    def _overflow(cls, v: Target | None) -> Target | None:
        if v is not None and v.split:
            raise ValueError("overflow cannot be a split")
        return v


_LIST_FIELDS = {
    "province", "city", "caller_prefix", "day", "weekdays", "hours", "dates", "intent",
    "locale", "sentiment", "queue", "skill",
}


class When(_Strict):
    """Conditions of a rule; every field given must hold (AND). No fields: always."""

    province: list[str] | None = None
    city: list[str] | None = None
    caller_prefix: list[str] | None = Field(default=None, description="E.164 prefixes, +86138")
    number_type: Literal["mobile", "fixed", "unknown"] | None = None
    calendar: Literal["open", "closed", "holiday"] | None = None
    day: list[DayKind] | None = None
    weekdays: list[Weekday] | None = None
    hours: list[str] | None = None
    dates: list[date] | None = None
    intent: list[str] | None = None
    slots: dict[str, list[str]] | None = Field(default=None, description='"*": any value')
    locale: list[str] | None = None
    sentiment: list[SentimentLabel] | None = None
    sentiment_below: float | None = Field(default=None, ge=-1, le=1)
    crm: dict[str, list[CrmValue]] | None = None
    queue: list[str] | None = None
    skill: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _lists(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        out = {k: (_as_list(v) if k in _LIST_FIELDS else v) for k, v in raw.items()}
        for key in ("slots", "crm"):
            if isinstance(out.get(key), dict):
                out[key] = {k: _as_list(v) for k, v in out[key].items()}
        return out

    @field_validator("province")
    @classmethod
    def _province(cls, v: list[str] | None) -> list[str] | None:
        for name in v or []:
            if province_key(name) is None:
                raise ValueError(f"unknown province {name!r} (e.g. 北京, 广东, Guangdong)")
        return v

    @field_validator("caller_prefix")
    @classmethod
    def _prefix(cls, v: list[str] | None) -> list[str] | None:
        for p in v or []:
            if not _PREFIX.match(p):
                raise ValueError(f"caller_prefix {p!r} must be + and digits, e.g. +86138")
        return v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: list[str] | None) -> list[str] | None:
        for r in v or []:
            parse_range(r)
        return v

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, v: list[Weekday] | None) -> list[Weekday] | None:
        return None if v is None else sorted(set(v), key=WEEKDAYS.index)

    @model_validator(mode="after")
    def _not_empty_lists(self) -> When:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, list | dict) and not value:
                raise ValueError(f"{name} is empty: give at least one value or drop it")
        return self


class Rule(_Strict):
    name: str = Field(min_length=1, max_length=64)
    when: When = Field(default_factory=When)
    target: Target
    priority: int = Field(default=0, ge=-100, le=100, description="caller priority in queue")
    overflow: Target | None = Field(default=None, description="after an agent or number target"
                                    " does not answer")

    @model_validator(mode="after")
    def _overflow(self) -> Rule:
        if self.overflow is not None:
            if self.target.kind not in ("agent", "number"):
                raise ValueError("a rule's overflow is for agent or number targets (a group "
                                 "has its own overflow)")
            if self.overflow.split:
                raise ValueError("overflow cannot be a split")
        return self


class CrmWebhook(_Strict):
    """Asked about the caller when the bot hands them over (``POST`` JSON: caller and
    hotline numbers, intent, slots); its JSON object answer is the rules' ``crm`` data."""

    url: str = Field(min_length=1, description="absolute, or relative to this server")
    timeout_s: float = Field(default=1.5, gt=0, le=10)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://", "/")):
            raise ValueError(f"crm url {v!r} must start with http://, https:// or /")
        return v


class Hotline(_Strict):
    number: str
    flow: str | None = None
    calendar: str | None = Field(default=None, description="for `calendar:` conditions")
    sticky_window_h: float = Field(default=0, ge=0, le=24 * 90, description="0: off")
    rules: list[Rule] = Field(default_factory=list)
    default: Target | None = Field(default=None, description="when no rule matches")
    crm: CrmWebhook | None = None
    dispositions: dict[str, str] = Field(default_factory=dict, description="wrap-up "
                                         "disposition id -> label; empty: the built-in list")
    handback: dict[str, str] = Field(default_factory=dict, description="flow node -> label: "
                                     "where an agent may hand the caller back to the bot")

    @field_validator("dispositions")
    @classmethod
    def _dispositions(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            check_id("disposition", key)
        return v

    @field_validator("number", mode="before")
    @classmethod
    def _number(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            raise ValueError(f"quote the hotline number: \"{v}\" (a YAML number loses "
                             "leading zeros)")
        if isinstance(v, str) and not _HOTLINE.match(v.replace("-", "").replace(" ", "")):
            raise ValueError(f"hotline number {v!r} must be digits (3 to 20), e.g. 4008001234")
        return v

    @property
    def digits(self) -> str:
        return digits(self.number)


class OfferPolicy(_Strict):
    """Delays before the next offer to the same agent, and when an agent is set away."""

    no_answer_delay_s: float = Field(default=30, ge=0, le=3600)
    reject_delay_s: float = Field(default=15, ge=0, le=3600)
    busy_delay_s: float = Field(default=60, ge=0, le=3600)
    max_missed_offers: int = Field(default=3, ge=1, le=100, description="unanswered in a row")
    agent_ring_timeout_s: float = Field(default=20, gt=0, le=300, description="agent targets")
    number_ring_timeout_s: float = Field(default=30, gt=0, le=300, description="number targets")


class RoutingConfig(_Strict):
    version: Literal[1] = 1
    calendars: dict[str, BusinessCalendar] = Field(default_factory=dict)
    offers: OfferPolicy = Field(default_factory=OfferPolicy)
    agents: dict[str, Agent] = Field(default_factory=dict)
    groups: dict[str, Group] = Field(default_factory=dict)
    hotlines: list[Hotline] = Field(default_factory=list)

    def hotline(self, number: str) -> Hotline | None:
        want = digits(number)
        return next((h for h in self.hotlines if h.digits == want), None)


@lru_cache(maxsize=4096)
def digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())
