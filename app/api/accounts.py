"""Accounts: ``/v1/users`` (admins), ``/v1/tokens`` (API tokens), ``/v1/audit`` (admins).

Every change is written to the audit log with who, when, before and after.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from app.auth import CurrentPrincipal, Perm, Role, client_ip, require
from app.auth.roles import parse_scopes
from app.auth.service import AuthService
from app.auth.store import AuditPage, TokenOut, UserOut

router = APIRouter(prefix="/v1", tags=["accounts"])


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Role
    password: str = Field(min_length=1, max_length=1024)


class UserChange(BaseModel):
    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=1024,
                                 description="a new password (also unlocks the account)")


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="what the token is for")
    scopes: list[Perm] = Field(min_length=1, max_length=len(Perm))
    expires_days: float | None = Field(default=None, gt=0, le=3650)
    user: str | None = Field(default=None, max_length=64,
                             description="the token's owner (admins only; default: you)")


class CreatedToken(BaseModel):
    token: str = Field(description="shown once: store it now")
    info: TokenOut


def _auth(request: Request) -> AuthService:
    auth: AuthService = request.app.state.auth
    return auth


@router.get("/users", response_model=list[UserOut],
            dependencies=[require(Perm.USERS_MANAGE)])
async def list_users(request: Request) -> list[UserOut]:
    return await asyncio.to_thread(_auth(request).store.users)


@router.post("/users", response_model=UserOut, status_code=201,
             dependencies=[require(Perm.USERS_MANAGE)])
async def create_user(body: NewUser, request: Request, who: CurrentPrincipal) -> UserOut:
    try:
        return await _auth(request).create_user(who, body.name, body.role, body.password,
                                                ip=client_ip(request))
    except ValueError as exc:
        status = 409 if "already exists" in str(exc) else 400
        raise HTTPException(status, str(exc)) from None


@router.patch("/users/{name}", response_model=UserOut,
              dependencies=[require(Perm.USERS_MANAGE)])
async def change_user(name: Annotated[str, Path(max_length=64)], body: UserChange,
                      request: Request, who: CurrentPrincipal) -> UserOut:
    if name == who.name and (body.disabled or body.role not in (None, Role.ADMIN)):
        raise HTTPException(400, "you cannot disable or demote yourself")
    try:
        return await _auth(request).update_user(who, name, role=body.role,
                                                disabled=body.disabled, password=body.password,
                                                ip=client_ip(request))
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/tokens", response_model=list[TokenOut],
            dependencies=[require(Perm.TOKENS_CREATE)])
async def list_tokens(request: Request, who: CurrentPrincipal) -> list[TokenOut]:
    """Your tokens (admins: everyone's)."""
    if who.can(Perm.USERS_MANAGE):
        return await asyncio.to_thread(_auth(request).store.tokens, None)
    if who.user_id is None:
        return []
    owner = who.user_id
    return await asyncio.to_thread(_auth(request).store.tokens, owner)


@router.post("/tokens", response_model=CreatedToken, status_code=201,
             dependencies=[require(Perm.TOKENS_CREATE)])
async def create_token(body: NewToken, request: Request,
                       who: CurrentPrincipal) -> CreatedToken:
    """A new API token with ``scopes`` (at most what its owner's role allows)."""
    owner = body.user or who.name
    if owner != who.name and not who.can(Perm.USERS_MANAGE):
        raise HTTPException(403, "only admins create tokens for other users")
    if who.via == "token":
        raise HTTPException(403, "a token cannot create tokens: sign in")
    try:
        scopes = parse_scopes([s.value for s in body.scopes])
        value, info = await _auth(request).create_token(
            who, owner, body.name, scopes,
            body.expires_days * 86400 if body.expires_days else None, ip=client_ip(request))
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return CreatedToken(token=value, info=info)


@router.delete("/tokens/{token_id}", response_model=TokenOut,
               dependencies=[require(Perm.TOKENS_CREATE)])
async def revoke_token(token_id: Annotated[int, Path(ge=1, le=2**53)], request: Request,
                       who: CurrentPrincipal) -> TokenOut:
    try:
        return await _auth(request).revoke_token(
            who, token_id, any_owner=who.can(Perm.USERS_MANAGE), ip=client_ip(request))
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/audit", response_model=AuditPage, dependencies=[require(Perm.AUDIT_READ)])
async def audit_log(
    request: Request,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=128)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> AuditPage:
    """The audit log, newest first: sign-ins, data accesses, configuration changes."""
    when: dict[str, datetime | None] = {"since": since, "until": until}
    return await asyncio.to_thread(lambda: _auth(request).store.audit_page(
        actor=actor, action=action, target=target, limit=limit, offset=offset, **when))
