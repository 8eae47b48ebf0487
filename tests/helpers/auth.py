"""Credentials for tests: the bootstrap admin token, and signing in as each role.

Every test server gets ``auth_bootstrap_token=ADMIN_TOKEN`` (``live_settings``,
``serve_ko``): ``ADMIN`` headers act as an administrator. ``sign_in_as_each_role`` creates a
user per role through the API and signs each in (session cookie + CSRF token);
``token_for_each_role`` gives each an API token: for tests that walk the API as every role
(the RBAC matrix, schemathesis).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from app.auth import ROLE_PERMS, Role

ADMIN_TOKEN = "test-bootstrap-admin-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD = "correct horse battery staple"


@dataclass
class SignedIn:
    """A signed-in browser: its cookies, and the headers a state-changing request needs."""

    role: Role
    name: str
    cookies: httpx.Cookies
    csrf: str
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.headers = {"X-CSRF-Token": self.csrf}


async def create_user(client: httpx.AsyncClient, url: str, name: str, role: Role,
                      password: str = PASSWORD) -> None:
    response = await client.post(f"{url}/v1/users", headers=ADMIN,
                                 json={"name": name, "role": role.value, "password": password})
    assert response.status_code in (201, 409), response.text


async def sign_in(client: httpx.AsyncClient, url: str, name: str,
                  password: str = PASSWORD) -> tuple[httpx.Cookies, str]:
    response = await client.post(f"{url}/v1/auth/login",
                                 json={"name": name, "password": password})
    assert response.status_code == 200, response.text
    return response.cookies, str(response.json()["csrf_token"])


async def sign_in_as_each_role(client: httpx.AsyncClient, url: str) -> dict[Role, SignedIn]:
    """One user per role (``test-<role>``), created with the bootstrap token, signed in."""
    signed: dict[Role, SignedIn] = {}
    for role in Role:
        name = f"test-{role.value}"
        await create_user(client, url, name, role)
        cookies, csrf = await sign_in(client, url, name)
        signed[role] = SignedIn(role, name, cookies, csrf)
    return signed


async def token_for_each_role(client: httpx.AsyncClient, url: str) -> dict[Role, str]:
    """An API token per role holding every scope the role allows (users ``tok-<role>``)."""
    tokens: dict[Role, str] = {}
    for role in Role:
        name = f"tok-{role.value}"
        await create_user(client, url, name, role)
        response = await client.post(f"{url}/v1/tokens", headers=ADMIN, json={
            "name": f"all of {role.value}", "user": name,
            "scopes": sorted(p.value for p in ROLE_PERMS[role])})
        assert response.status_code == 201, response.text
        tokens[role] = str(response.json()["token"])
    return tokens
