"""``AuthService``: who is calling — sign-in, sessions, API tokens, the bootstrap token, the
first-run administrator — and the audit log.

Passwords are verified in a thread (argon2 is slow on purpose); sessions and tokens are kept
as SHA-256 hashes; every sign-in, failed or not, and every change goes to the audit log.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from app.auth.passwords import (
    check_password,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from app.auth.ratelimit import RateLimits
from app.auth.roles import ROLE_PERMS, Perm, Role
from app.auth.store import AuthStore, TokenOut, UserOut, check_name
from app.events import utc_now
from app.log import get_logger
from app.settings import Settings
from app.storage.db import Database

SESSION_COOKIE = "hotline_session"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_PREFIX = "hlt_"
TOUCH_EVERY_S = 60.0
Via = Literal["session", "token", "bootstrap", "caller", "cli"]


@dataclass(frozen=True)
class Principal:
    """Who a request (or a CLI command) acts as, and what it may do."""

    name: str
    role: Role | None  # None: a caller holding a pass for their own call
    perms: frozenset[Perm]
    via: Via
    user_id: int | None = None
    session_hash: str | None = None
    csrf_token: str | None = None
    token_id: int | None = None
    call_id: str | None = None  # a caller's own call

    def can(self, *perms: Perm) -> bool:
        return set(perms) <= self.perms

    def sees_clear_pii(self, settings: Settings) -> bool:
        return self.role is not None and self.role.value in settings.pii_clear_roles


def cli_principal(os_user: str) -> Principal:
    """The operator at the server's terminal (``hotline users ...``): an admin."""
    return Principal(name=f"cli:{os_user}"[:64], role=Role.ADMIN, perms=ROLE_PERMS[Role.ADMIN],
                     via="cli")


class AuthError(Exception):
    """A refused sign-in or credential: the HTTP status and a reason safe to show."""

    def __init__(self, status: int, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class SignedIn:
    session_token: str  # the cookie's value: given to the browser once, stored hashed
    principal: Principal
    max_age_s: int


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class AuthService:
    settings: Settings
    db: Database
    clock: Callable[[], datetime] = utc_now
    limits: RateLimits | None = None  # default: the settings' (app.state.limits in the app)
    store: AuthStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = AuthStore(self.db)
        if self.limits is None:
            self.limits = RateLimits.for_settings(self.settings)

    # -- sign-in -------------------------------------------------------------------------
    async def login(self, name: str, password: str, ip: str, user_agent: str | None
                    ) -> SignedIn:
        retry = await self.limits.hit("login", ip) if self.limits is not None else None
        if retry is not None:
            raise AuthError(429, "too many sign-in attempts from this address", retry)
        now = self.clock()
        secret = await asyncio.to_thread(self.store.user_secret, name[:64])
        ok = await asyncio.to_thread(verify_password, secret.password_hash if secret else None,
                                     password)
        user = secret.user if secret else None
        if user is not None and user.locked_until is not None and user.locked_until > now:
            wait_s = (user.locked_until - now).total_seconds()
            await self._audit_login(name, "auth.login_locked", ip)
            raise AuthError(429, "account locked after repeated failed sign-ins", wait_s)
        if not ok or user is None or user.disabled:
            if user is not None and not ok:
                await asyncio.to_thread(self.store.login_failed, user.id, now,
                                        self.settings.auth_max_failed_logins,
                                        self.settings.auth_lockout_s)
            await self._audit_login(name, "auth.login_failed", ip)
            raise AuthError(401, "wrong user name or password")
        assert secret is not None
        new_hash = (await asyncio.to_thread(hash_password, password)
                    if needs_rehash(secret.password_hash) else None)
        await asyncio.to_thread(self.store.login_succeeded, user.id, now, new_hash)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        max_s = self.settings.auth_session_max_s
        await asyncio.to_thread(self.store.create_session, sha256(token), user.id, csrf, now,
                                now + timedelta(seconds=max_s), ip, user_agent)
        principal = self._user_principal(user, "session", session_hash=sha256(token),
                                         csrf_token=csrf)
        await self.audit(principal, "auth.login", user.name, ip=ip)
        return SignedIn(token, principal, int(max_s))

    async def verify_current(self, principal: Principal, password: str, ip: str) -> None:
        """Check a signed-in user's password again (before changing it); a wrong one counts
        toward the lockout like a failed sign-in."""
        secret = await asyncio.to_thread(self.store.user_secret, principal.name)
        if secret is None:
            raise AuthError(400, f"{principal.name} has no password")
        if await asyncio.to_thread(verify_password, secret.password_hash, password):
            return
        await asyncio.to_thread(self.store.login_failed, secret.user.id, self.clock(),
                                self.settings.auth_max_failed_logins,
                                self.settings.auth_lockout_s)
        await self._audit_login(principal.name, "auth.password_check_failed", ip)
        raise AuthError(400, "current password is wrong")

    async def _audit_login(self, name: str, action: str, ip: str) -> None:
        await asyncio.to_thread(lambda: self.store.audit(
            at=self.clock(), actor=name[:64] or "?", actor_role="", via="session",
            action=action, target=name[:128] or "?", ip=ip))

    async def logout(self, principal: Principal, ip: str | None) -> None:
        if principal.session_hash is not None:
            await asyncio.to_thread(self.store.end_session, principal.session_hash)
            await self.audit(principal, "auth.logout", principal.name, ip=ip)

    # -- credentials of a request --------------------------------------------------------
    async def from_session(self, cookie: str) -> Principal | None:
        if not cookie or len(cookie) > 256:
            return None
        key = sha256(cookie)
        found = await asyncio.to_thread(self.store.session, key)
        if found is None:
            return None
        row, user = found
        now = self.clock()
        idle = timedelta(seconds=self.settings.auth_session_idle_s)
        if user.disabled or row.expires_at <= now or row.last_seen_at + idle <= now:
            await asyncio.to_thread(self.store.end_session, key)
            return None
        if (now - row.last_seen_at).total_seconds() > TOUCH_EVERY_S:
            await asyncio.to_thread(self.store.touch_session, key, now)
        return self._user_principal(user, "session", session_hash=key,
                                    csrf_token=row.csrf_token)

    async def from_bearer(self, token: str) -> Principal | None:
        boot = self.settings.auth_bootstrap_token
        if boot is not None and hmac.compare_digest(token.encode(),
                                                    boot.get_secret_value().encode()):
            return Principal(name="bootstrap", role=Role.ADMIN, perms=ROLE_PERMS[Role.ADMIN],
                             via="bootstrap")
        if not token.startswith(TOKEN_PREFIX) or len(token) > 256:
            return None
        found = await asyncio.to_thread(self.store.token, sha256(token))
        if found is None:
            return None
        info, user = found
        now = self.clock()
        if user.disabled or info.revoked_at is not None or (
                info.expires_at is not None and info.expires_at <= now):
            return None
        if info.last_used_at is None or (now - info.last_used_at).total_seconds() > TOUCH_EVERY_S:
            await asyncio.to_thread(self.store.touch_token, info.id, now)
        scopes = frozenset(Perm(s) for s in info.scopes if s in Perm.__members__.values())
        return Principal(name=user.name, role=user.role, perms=scopes & ROLE_PERMS[user.role],
                         via="token", user_id=user.id, token_id=info.id)

    @staticmethod
    def _user_principal(user: UserOut, via: Via, **extra: Any) -> Principal:
        return Principal(name=user.name, role=user.role, perms=ROLE_PERMS[user.role], via=via,
                         user_id=user.id, **extra)

    # -- accounts ------------------------------------------------------------------------
    async def create_user(self, actor: Principal, name: str, role: Role, password: str,
                          ip: str | None = None) -> UserOut:
        check_name(name)
        check_password(password, self.settings.auth_password_min_length)
        hashed = await asyncio.to_thread(hash_password, password)
        user = await asyncio.to_thread(self.store.create_user, name, role, hashed, self.clock())
        await self.audit(actor, "user.create", name, after=_public(user), ip=ip)
        return user

    async def update_user(self, actor: Principal, name: str, *, role: Role | None = None,
                          disabled: bool | None = None, password: str | None = None,
                          ip: str | None = None) -> UserOut:
        hashed = None
        if password is not None:
            check_password(password, self.settings.auth_password_min_length)
            hashed = await asyncio.to_thread(hash_password, password)
        before, after = await asyncio.to_thread(
            lambda: self.store.update_user(name, role=role, disabled=disabled,
                                           password_hash=hashed, now=self.clock()))
        changed = _public(after) | ({"password": "changed"} if hashed else {})
        await self.audit(actor, "user.update", name, before=_public(before), after=changed,
                         ip=ip)
        return after

    async def create_token(self, actor: Principal, owner: str, name: str,
                           scopes: frozenset[Perm], expires_s: float | None = None,
                           ip: str | None = None) -> tuple[str, TokenOut]:
        """A new API token for ``owner`` (its value is returned once, stored hashed)."""
        user = await asyncio.to_thread(self.store.user, owner)
        if user is None or user.disabled:
            raise LookupError(f"no active user {owner!r}")
        allowed = ROLE_PERMS[user.role]
        if not scopes <= allowed:
            extra = ", ".join(sorted(s.value for s in scopes - allowed))
            raise ValueError(f"role {user.role.value} of {owner!r} does not allow: {extra}")
        value = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        expires = now + timedelta(seconds=expires_s) if expires_s else None
        info = await asyncio.to_thread(
            self.store.create_token, user.id, name, sha256(value), value[:12],
            [s.value for s in scopes], now, expires)
        await self.audit(actor, "token.create", f"token:{info.id}",
                         after=info.model_dump(mode="json"), ip=ip)
        return value, info

    async def revoke_token(self, actor: Principal, token_id: int, *, any_owner: bool,
                           ip: str | None = None) -> TokenOut:
        before, after = await asyncio.to_thread(
            self.store.revoke_token, token_id, self.clock(),
            None if any_owner else actor.user_id)
        await self.audit(actor, "token.revoke", f"token:{token_id}",
                         before=before.model_dump(mode="json"),
                         after=after.model_dump(mode="json"), ip=ip)
        return after

    async def ensure_first_admin(self) -> tuple[UserOut, str | None] | None:
        """Create the administrator when there is no user at all: (user, the generated
        password or None when it came from settings); None when users exist."""
        if await asyncio.to_thread(self.store.count_users) > 0:
            return None
        configured = self.settings.auth_admin_password
        password = configured.get_secret_value() if configured else generate_password()
        name = self.settings.auth_admin_name
        system = Principal(name="system", role=Role.ADMIN, perms=ROLE_PERMS[Role.ADMIN],
                           via="cli")
        try:
            user = await self.create_user(system, name, Role.ADMIN, password)
        except ValueError as exc:
            if "already exists" in str(exc):  # another node created it first
                return None
            raise
        get_logger().warning("first_admin_created", user=name,
                             password_source="setting" if configured else "generated")
        return user, None if configured else password

    # -- audit ---------------------------------------------------------------------------
    async def audit(self, actor: Principal, action: str, target: str, *,
                    before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
                    ip: str | None = None) -> None:
        """Write one audit entry; raises when it cannot be written (callers fail closed)."""
        await asyncio.to_thread(lambda: self.store.audit(
            at=self.clock(), actor=actor.name, actor_role=actor.role.value if actor.role
            else "caller", via=actor.via, action=action, target=target, before=before,
            after=after, ip=ip))


def _public(user: UserOut) -> dict[str, Any]:
    return {"name": user.name, "role": user.role.value, "disabled": user.disabled}
