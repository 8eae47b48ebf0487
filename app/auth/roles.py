"""Roles and permissions: what each kind of user of the back office may do.

A route declares the permissions it needs (``app.auth.deps.require``); a user has the
permissions of their role; an API token has the scopes it was given, never more than its
owner's role allows (checked again at every use, so a demoted owner's tokens shrink too).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # everything
    SUPERVISOR = "supervisor"  # monitor, reports, agents' states, listen/whisper/barge
    AGENT = "agent"  # own desk and own calls
    ANALYST = "analyst"  # reports, transcripts, recordings, intents; no configuration
    DEVELOPER = "developer"  # integrations: API tokens with scopes


class Perm(StrEnum):
    CALLS_READ = "calls:read"  # CDRs: who called, when, outcome
    TRANSCRIPTS_READ = "transcripts:read"  # a call's transcript, events and flow state
    RECORDINGS_READ = "recordings:read"  # a call's audio
    EVENTS_LIVE = "events:live"  # every call's live events (monitor wall, integrations)
    MONITOR = "monitor"  # supervisor tools: the live wall
    AGENTS_STATE = "agents:state"  # force an agent's state (available, away, offline)
    CALLS_LISTEN = "calls:listen"  # join a call with an agent: listen, whisper, barge
    DESK = "desk"  # the agent desk: take calls, own calls
    REPORTS_READ = "reports:read"
    INTENTS_MANAGE = "intents:manage"  # examples, training, model activation and reload
    CONFIG_WRITE = "config:write"  # numbers, flows, routing, prompts, hours
    USERS_MANAGE = "users:manage"  # accounts, roles, other users' tokens
    AUDIT_READ = "audit:read"
    METRICS_READ = "metrics:read"  # Prometheus /metrics
    TOKENS_CREATE = "tokens:create"  # API tokens for oneself


ROLE_PERMS: dict[Role, frozenset[Perm]] = {
    Role.ADMIN: frozenset(Perm),
    Role.SUPERVISOR: frozenset({
        Perm.CALLS_READ, Perm.TRANSCRIPTS_READ, Perm.RECORDINGS_READ, Perm.EVENTS_LIVE,
        Perm.MONITOR, Perm.CALLS_LISTEN, Perm.DESK, Perm.REPORTS_READ, Perm.METRICS_READ,
        Perm.AGENTS_STATE,
    }),
    Role.AGENT: frozenset({Perm.DESK}),
    Role.ANALYST: frozenset({
        Perm.CALLS_READ, Perm.TRANSCRIPTS_READ, Perm.RECORDINGS_READ, Perm.REPORTS_READ,
        Perm.INTENTS_MANAGE,
    }),
    Role.DEVELOPER: frozenset({
        Perm.CALLS_READ, Perm.TRANSCRIPTS_READ, Perm.EVENTS_LIVE, Perm.METRICS_READ,
        Perm.TOKENS_CREATE,
    }),
}


def parse_role(value: str) -> Role:
    """``value`` as a role; ``ValueError`` naming the roles there are."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise ValueError(
            f"unknown role {value!r}: use one of {', '.join(r.value for r in Role)}"
        ) from None


def parse_scopes(values: list[str] | str) -> frozenset[Perm]:
    """Scopes from a list or a comma-separated string; ``ValueError`` naming a bad one."""
    items = values.split(",") if isinstance(values, str) else values
    scopes: set[Perm] = set()
    for raw in items:
        name = raw.strip()
        if not name:
            continue
        try:
            scopes.add(Perm(name))
        except ValueError:
            raise ValueError(
                f"unknown scope {name!r}: use some of {', '.join(p.value for p in Perm)}"
            ) from None
    if not scopes:
        raise ValueError("a token needs at least one scope")
    return frozenset(scopes)
