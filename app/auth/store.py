"""``AuthStore``: users, sessions, API tokens and the audit log in the ``Database``.

Methods are synchronous, one transaction each (callers on the event loop use
``asyncio.to_thread``). Bad input raises ``ValueError`` with the reason; a name already taken
says so. Secrets never reach this module in clear except to be hashed by the caller first.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from app.auth.roles import Role
from app.storage.auth_models import ApiTokenRow, AuditRow, SessionRow, UserRow
from app.storage.db import Database

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MAX_AUDIT_PAGE = 500


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"user name {name!r} must be 1-64 letters, digits, '.', '_', '@' or "
                         "'-', starting with a letter or digit")
    return name


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class UserOut(_Out):
    id: int
    name: str
    role: Role
    disabled: bool
    locked_until: datetime | None
    failed_logins: int
    created_at: datetime
    password_changed_at: datetime
    last_login_at: datetime | None


class TokenOut(_Out):
    id: int
    user: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class AuditOut(_Out):
    id: int
    at: datetime
    actor: str
    actor_role: str
    via: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    ip: str | None


class AuditPage(_Out):
    items: list[AuditOut]
    total: int
    limit: int
    offset: int


class UserSecret(_Out):
    """What a login checks: the user and their password hash (never leaves ``app.auth``)."""

    user: UserOut
    password_hash: str


class AuthStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- users ---------------------------------------------------------------------------
    def count_users(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(UserRow)) or 0)

    def create_user(self, name: str, role: Role, password_hash: str, now: datetime) -> UserOut:
        row = UserRow(name=check_name(name), role=role.value, password_hash=password_hash,
                      disabled=False, failed_logins=0, created_at=now, password_changed_at=now)
        try:
            with self.db.session(write=True) as s:
                if s.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
                    raise ValueError(f"user {name!r} already exists")
                s.add(row)
                s.flush()
                return UserOut.model_validate(row)
        except IntegrityError as exc:  # a concurrent create won the race
            raise ValueError(f"user {name!r} already exists") from exc

    def user(self, name: str) -> UserOut | None:
        with self.db.session() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name))
            return None if row is None else UserOut.model_validate(row)

    def user_secret(self, name: str) -> UserSecret | None:
        with self.db.session() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name))
            if row is None:
                return None
            return UserSecret(user=UserOut.model_validate(row), password_hash=row.password_hash)

    def users(self) -> list[UserOut]:
        with self.db.session() as s:
            rows = s.scalars(select(UserRow).order_by(UserRow.name)).all()
            return [UserOut.model_validate(r) for r in rows]

    def update_user(self, name: str, *, role: Role | None = None, disabled: bool | None = None,
                    password_hash: str | None = None, now: datetime) -> tuple[UserOut, UserOut]:
        """Change a user; (before, after). A new password also unlocks the account;
        disabling ends the user's sessions and revokes their tokens."""
        with self.db.session(write=True) as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name).with_for_update())
            if row is None:
                raise LookupError(f"no user {name!r}")
            before = UserOut.model_validate(row)
            if role is not None:
                row.role = role.value
            if password_hash is not None:
                row.password_hash = password_hash
                row.password_changed_at = now
                row.failed_logins = 0
                row.locked_until = None
            if disabled is not None:
                row.disabled = disabled
            if disabled or password_hash is not None:
                s.execute(delete(SessionRow).where(SessionRow.user_id == row.id))
            if disabled:
                s.execute(update(ApiTokenRow)
                          .where(ApiTokenRow.user_id == row.id, ApiTokenRow.revoked_at.is_(None))
                          .values(revoked_at=now))
            s.flush()
            return before, UserOut.model_validate(row)

    def login_failed(self, user_id: int, now: datetime, max_failures: int,
                     lockout_s: float) -> datetime | None:
        """Count a failed login; the time the account is locked until, once it is."""
        with self.db.session(write=True) as s:
            row = s.get(UserRow, user_id, with_for_update=True)
            if row is None:
                return None
            row.failed_logins += 1
            if row.failed_logins >= max_failures:
                row.locked_until = now + timedelta(seconds=lockout_s)
                row.failed_logins = 0
            return row.locked_until

    def login_succeeded(self, user_id: int, now: datetime, new_hash: str | None) -> None:
        with self.db.session(write=True) as s:
            row = s.get(UserRow, user_id, with_for_update=True)
            if row is not None:
                row.failed_logins = 0
                row.locked_until = None
                row.last_login_at = now
                if new_hash is not None:
                    row.password_hash = new_hash

    # -- sessions ------------------------------------------------------------------------
    def create_session(self, session_hash: str, user_id: int, csrf_token: str, now: datetime,
                       expires_at: datetime, ip: str | None, user_agent: str | None) -> None:
        with self.db.session(write=True) as s:
            s.execute(delete(SessionRow).where(SessionRow.expires_at < now))
            s.add(SessionRow(id=session_hash, user_id=user_id, csrf_token=csrf_token,
                             created_at=now, last_seen_at=now, expires_at=expires_at,
                             ip=(ip or "")[:64] or None, user_agent=(user_agent or "")[:256]
                             or None))

    def session(self, session_hash: str) -> tuple[SessionRow, UserOut] | None:
        with self.db.session() as s:
            row = s.get(SessionRow, session_hash)
            if row is None:
                return None
            user = s.get(UserRow, row.user_id)
            if user is None:
                return None
            s.expunge(row)
            return row, UserOut.model_validate(user)

    def touch_session(self, session_hash: str, now: datetime) -> None:
        with self.db.session(write=True) as s:
            s.execute(update(SessionRow).where(SessionRow.id == session_hash)
                      .values(last_seen_at=now))

    def end_session(self, session_hash: str) -> None:
        with self.db.session(write=True) as s:
            s.execute(delete(SessionRow).where(SessionRow.id == session_hash))

    # -- API tokens ----------------------------------------------------------------------
    def create_token(self, user_id: int, name: str, token_hash: str, prefix: str,
                     scopes: list[str], now: datetime, expires_at: datetime | None) -> TokenOut:
        if not name.strip() or len(name) > 64:
            raise ValueError("a token name must be 1-64 characters")
        row = ApiTokenRow(user_id=user_id, name=name, token_hash=token_hash, prefix=prefix,
                          scopes=sorted(scopes), created_at=now, expires_at=expires_at)
        with self.db.session(write=True) as s:
            owner = s.get(UserRow, user_id)
            if owner is None:
                raise LookupError(f"no user with id {user_id}")
            s.add(row)
            s.flush()
            return self._token_out(row, owner.name)

    def token(self, token_hash: str) -> tuple[TokenOut, UserOut] | None:
        with self.db.session() as s:
            row = s.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == token_hash))
            if row is None:
                return None
            owner = s.get(UserRow, row.user_id)
            if owner is None:
                return None
            return self._token_out(row, owner.name), UserOut.model_validate(owner)

    def touch_token(self, token_id: int, now: datetime) -> None:
        with self.db.session(write=True) as s:
            s.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id)
                      .values(last_used_at=now))

    def tokens(self, user_id: int | None = None) -> list[TokenOut]:
        with self.db.session() as s:
            query = select(ApiTokenRow, UserRow.name).join(UserRow,
                                                           UserRow.id == ApiTokenRow.user_id)
            if user_id is not None:
                query = query.where(ApiTokenRow.user_id == user_id)
            rows = s.execute(query.order_by(ApiTokenRow.id)).all()
            return [self._token_out(row, owner) for row, owner in rows]

    def revoke_token(self, token_id: int, now: datetime,
                     owner_id: int | None = None) -> tuple[TokenOut, TokenOut]:
        """Revoke a token (only ``owner_id``'s when given); (before, after)."""
        with self.db.session(write=True) as s:
            row = s.get(ApiTokenRow, token_id, with_for_update=True)
            if row is None or owner_id is not None and row.user_id != owner_id:
                raise LookupError(f"no token {token_id}")
            owner = s.get(UserRow, row.user_id)
            name = owner.name if owner is not None else "?"
            before = self._token_out(row, name)
            if row.revoked_at is None:
                row.revoked_at = now
            return before, self._token_out(row, name)

    @staticmethod
    def _token_out(row: ApiTokenRow, owner: str) -> TokenOut:
        return TokenOut(id=row.id, user=owner, name=row.name, prefix=row.prefix,
                        scopes=list(row.scopes), created_at=row.created_at,
                        expires_at=row.expires_at, last_used_at=row.last_used_at,
                        revoked_at=row.revoked_at)

    # -- audit ---------------------------------------------------------------------------
    def audit(self, *, at: datetime, actor: str, actor_role: str, via: str, action: str,
              target: str, before: dict[str, Any] | None = None,
              after: dict[str, Any] | None = None, ip: str | None = None) -> int:
        row = AuditRow(at=at, actor=actor[:64], actor_role=actor_role[:16], via=via[:16],
                       action=action[:64], target=target[:128], before=before, after=after,
                       ip=(ip or "")[:64] or None)
        with self.db.session(write=True) as s:
            s.add(row)
            s.flush()
            return int(row.id)

    def audit_page(self, *, actor: str | None = None, action: str | None = None,
                   target: str | None = None, since: datetime | None = None,
                   until: datetime | None = None, limit: int = 100,
                   offset: int = 0) -> AuditPage:
        limit = max(1, min(limit, MAX_AUDIT_PAGE))
        conditions: list[Any] = []
        if actor is not None:
            conditions.append(AuditRow.actor == actor)
        if action is not None:
            conditions.append(AuditRow.action == action)
        if target is not None:
            conditions.append(AuditRow.target == target)
        if since is not None:
            conditions.append(AuditRow.at >= since)
        if until is not None:
            conditions.append(AuditRow.at < until)
        with self.db.session() as s:
            total = s.scalar(select(func.count()).select_from(AuditRow).where(*conditions))
            rows = s.scalars(select(AuditRow).where(*conditions)
                             .order_by(AuditRow.id.desc()).limit(limit).offset(offset)).all()
            return AuditPage(items=[AuditOut.model_validate(r) for r in rows],
                             total=int(total or 0), limit=limit, offset=offset)
