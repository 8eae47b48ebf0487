"""Signing in and out: ``/v1/auth/login``, ``/logout``, ``/me``, ``/password``.

A browser signs in with a name and password and gets a session cookie (HttpOnly, SameSite,
Secure over HTTPS) and a CSRF token to send back in ``X-CSRF-Token`` with every
state-changing request. Integrations use API tokens instead (``/v1/tokens``).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from app.auth import AuthError, CurrentPrincipal, Principal, client_ip, public, require
from app.auth.service import CSRF_HEADER, SESSION_COOKIE, AuthService

router = APIRouter(prefix="/v1/auth", tags=["auth"])


class Login(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class PasswordChange(BaseModel):
    current: str = Field(min_length=1, max_length=1024)
    new: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    name: str
    role: str
    permissions: list[str]
    via: str
    csrf_token: str | None = Field(default=None, description=f"send it in {CSRF_HEADER}")
    csrf_header: str = CSRF_HEADER


def me_of(principal: Principal) -> Me:
    return Me(name=principal.name, role=principal.role.value if principal.role else "caller",
              permissions=sorted(p.value for p in principal.perms), via=principal.via,
              csrf_token=principal.csrf_token)


def _refused(exc: AuthError) -> HTTPException:
    headers = ({"Retry-After": str(int(exc.retry_after_s + 0.999))}
               if exc.retry_after_s is not None else None)
    return HTTPException(exc.status, exc.detail, headers=headers)


@router.post("/login", response_model=Me, dependencies=[public()])
async def login(body: Login, request: Request, response: Response) -> Me:
    """Sign in: sets the session cookie; the answer carries the CSRF token."""
    auth: AuthService = request.app.state.auth
    try:
        signed = await auth.login(body.name, body.password, client_ip(request),
                                  request.headers.get("user-agent"))
    except AuthError as exc:
        raise _refused(exc) from None
    settings = auth.settings
    secure = {"always": True, "never": False}.get(settings.auth_cookie_secure,
                                                  request.url.scheme == "https")
    response.set_cookie(SESSION_COOKIE, signed.session_token, max_age=signed.max_age_s,
                        path="/", secure=secure, httponly=True,
                        samesite=settings.auth_cookie_samesite)
    return me_of(signed.principal)


@router.post("/logout", status_code=204, dependencies=[require()])
async def logout(request: Request, who: CurrentPrincipal) -> Response:
    """End this browser's session (a token-authenticated call changes nothing)."""
    await request.app.state.auth.logout(who, client_ip(request))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", response_model=Me, dependencies=[require()])
async def me(who: CurrentPrincipal) -> Me:
    """Who this request is signed in as, with the session's CSRF token."""
    return me_of(who)


@router.post("/password", status_code=204, dependencies=[require()])
async def change_password(body: PasswordChange, request: Request,
                          who: CurrentPrincipal) -> Response:
    """Change one's own password (signs out every session of the user)."""
    auth: AuthService = request.app.state.auth
    if who.user_id is None:
        raise HTTPException(400, f"{who.name} has no password to change")
    try:
        await auth.verify_current(who, body.current, client_ip(request))
    except AuthError as exc:
        raise _refused(exc) from None
    try:
        await auth.update_user(who, who.name, password=body.new, ip=client_ip(request))
    except ValueError as exc:
        raise HTTPException(400, f"new password: {exc}") from None
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
