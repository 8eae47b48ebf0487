"""Access declarations for routes: every HTTP route and WebSocket says who may use it.

    router = APIRouter(prefix="/v1/desk", dependencies=[require(Perm.DESK)])

    @router.get("/me")
    async def me(who: CurrentPrincipal) -> ...: ...

    @router.websocket("/live", dependencies=[require(Perm.EVENTS_LIVE)])
    async def live(websocket: WebSocket, who: CurrentPrincipal) -> None: ...

``require(*perms)`` authenticates the request (session cookie, or ``Authorization: Bearer``
API token or bootstrap token) and checks the permissions; ``public(rate=...)`` marks a route
open to anyone (callers are the public), rate-limited per client IP. Both check the
``Origin`` of WebSocket handshakes and of state-changing requests (same origin, or one in
settings ``auth_allowed_origins``), and a cookie-authenticated state-changing request must
carry the session's CSRF token in ``X-CSRF-Token``. ``check_access_declared(app)`` refuses to
build an app with a route that declares neither.

Refusals: HTTP 401 (no or bad credentials), 403 (not allowed, bad Origin or CSRF token),
429 with ``Retry-After`` (rate); a refused WebSocket handshake is answered with HTTP 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection
from starlette.routing import Mount
from starlette.status import WS_1008_POLICY_VIOLATION

from app.auth.ratelimit import RateLimits
from app.auth.roles import Perm
from app.auth.service import CSRF_HEADER, SESSION_COOKIE, AuthService, Principal

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CALLER_PASS_PARAM = "caller_token"
DOC_PATHS = ("/docs", "/redoc")  # FastAPIOffline serves the docs as its own routes


def client_ip(conn: HTTPConnection) -> str:
    """The client's address (behind a proxy: as uvicorn's proxy headers set it)."""
    return conn.client.host if conn.client is not None else "unknown"


def origin_allowed(conn: HTTPConnection, allowed: list[str]) -> bool:
    """No ``Origin`` (not a browser), the server's own origin, or a configured one."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    origin = origin.rstrip("/").lower()
    if origin in (o.rstrip("/").lower() for o in allowed):
        return True
    scheme = {"ws": "http", "wss": "https"}.get(conn.url.scheme, conn.url.scheme)
    host = conn.headers.get("host", "")
    return bool(host) and origin == f"{scheme}://{host}".lower()


def _refuse(conn: HTTPConnection, status: int, detail: str,
            headers: dict[str, str] | None = None) -> Exception:
    if conn.scope["type"] == "websocket":
        return WebSocketException(code=WS_1008_POLICY_VIOLATION, reason=detail[:120])
    return HTTPException(status, detail, headers=headers)


async def authenticate(conn: HTTPConnection) -> Principal | None:
    """Who the request is from (cached on the connection), or None."""
    if "principal" in conn.scope.get("state", {}):
        cached: Principal | None = conn.state.principal
        return cached
    auth: AuthService = conn.app.state.auth
    principal: Principal | None = None
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        principal = await auth.from_bearer(value.strip())
        if principal is None:
            raise _refuse(conn, 401, "invalid, expired or revoked token",
                          {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    elif SESSION_COOKIE in conn.cookies:
        principal = await auth.from_session(conn.cookies[SESSION_COOKIE])
    conn.state.principal = principal
    return principal


@dataclass(frozen=True)
class Access:
    """The access rule of a route (a FastAPI dependency); see the module docstring."""

    perms: frozenset[Perm] = frozenset()
    public: bool = False
    rate: str | None = None  # a rate limit of app.state.limits (settings), per client IP
    caller_pass: bool = False  # or: the caller's pass to their own call (path's call_id)
    own_origins: bool = False  # the route applies its own Origin policy (the embeddable chat)

    async def __call__(self, conn: HTTPConnection) -> Principal | None:
        state = conn.app.state  # settings, limits: from create_app; auth: from the lifespan
        method = conn.scope.get("method", "GET")
        websocket = conn.scope["type"] == "websocket"
        if (websocket or method not in SAFE_METHODS) and not self.own_origins and not \
                origin_allowed(conn, state.settings.auth_allowed_origins):
            raise _refuse(conn, 403, f"origin {conn.headers.get('origin')!r} is not allowed")
        if self.rate is not None:
            limits: RateLimits = state.limits
            retry = await limits.hit(self.rate, client_ip(conn))
            if retry is not None:
                raise _refuse(conn, 429, "too many requests from this address",
                              {"Retry-After": str(int(retry + 0.999))})
        if self.public:
            return None
        principal = await authenticate(conn)
        if principal is None and self.caller_pass:
            principal = _caller(conn)
        if principal is None:
            raise _refuse(conn, 401, "sign in, or give an API token (Authorization: Bearer)",
                          {"WWW-Authenticate": "Bearer"})
        if principal.via == "caller":
            return principal
        if not principal.can(*self.perms):
            missing = ", ".join(sorted(p.value for p in self.perms - principal.perms))
            role = principal.role.value if principal.role else "caller"
            raise _refuse(conn, 403, f"{principal.name} ({role}) lacks {missing}")
        if principal.via == "session" and not websocket and method not in SAFE_METHODS:
            sent = conn.headers.get(CSRF_HEADER, "")
            if not sent or sent != principal.csrf_token:
                raise _refuse(conn, 403, f"missing or wrong CSRF token ({CSRF_HEADER} header)")
        return principal


def _caller(conn: HTTPConnection) -> Principal | None:
    call_id = conn.path_params.get("call_id")
    value = conn.query_params.get(CALLER_PASS_PARAM)
    if not call_id or not value or not conn.app.state.caller_passes.valid(call_id, value):
        return None
    principal = Principal(name="caller", role=None, perms=frozenset(), via="caller",
                          call_id=call_id)
    conn.state.principal = principal
    return principal


def require(*perms: Perm, caller_pass: bool = False) -> Any:
    """A dependency: signed in (session or token) with every one of ``perms`` (none: any
    signed-in user). ``caller_pass``: a caller's pass to the path's ``call_id`` also does."""
    return Depends(Access(perms=frozenset(perms), caller_pass=caller_pass))


def public(rate: str | None = None, *, own_origins: bool = False) -> Any:
    """A dependency: open to anyone; ``rate`` names a per-IP limit (settings);
    ``own_origins``: the route checks the Origin itself (its own allow-list, e.g. the chat
    widget embedded on other sites: settings ``chat_allowed_origins``)."""
    return Depends(Access(public=True, rate=rate, own_origins=own_origins))


async def current_principal(conn: HTTPConnection) -> Principal:
    principal: Principal | None = conn.scope.get("state", {}).get("principal")
    if principal is None:
        raise _refuse(conn, 401, "sign in, or give an API token (Authorization: Bearer)")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def access_of(route: Any) -> list[Access]:
    """The access rules a route (a ``fastapi.routing.RouteContext``) declares, its own and
    its routers'."""
    found: list[Access] = []
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Access):
            found.append(dep.call)
        stack.extend(dep.dependencies)
    return found


def declared_routes(app: FastAPI) -> list[tuple[str, str, Access]]:
    """(method or "WS", path, rule) of every route; raises ``RuntimeError`` naming each route
    that declares no access rule or more than one. FastAPI's own documentation routes and
    static mounts are open by design."""
    framework = {app.openapi_url, app.docs_url, app.redoc_url,
                 app.swagger_ui_oauth2_redirect_url, *DOC_PATHS}
    problems: list[str] = []
    rules: list[tuple[str, str, Access]] = []
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        path = str(context.path)
        if path in framework:  # the API docs (no data): open
            continue
        if isinstance(original, APIRoute | APIWebSocketRoute):
            found = access_of(context)
            if len(found) != 1:
                problems.append(f"{path}: {len(found)} access rules")
                continue
            methods = sorted(context.methods or []) if isinstance(original, APIRoute) else ["WS"]
            rules.extend((method, path, found[0]) for method in methods)
        elif not isinstance(original, Mount):
            problems.append(f"{path}: not a FastAPI route")
    if problems:
        raise RuntimeError("routes must declare who may use them (app.auth.require/public): "
                           + "; ".join(problems))
    return rules


def check_access_declared(app: FastAPI) -> None:
    """Refuse an app with a route that says nothing about who may use it."""
    declared_routes(app)
