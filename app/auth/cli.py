"""``hotline users ...`` and ``hotline tokens ...``: accounts and API tokens from the terminal.

They work on the database the settings name (migrated first), with or without a running
server. Each change is audited with the actor ``cli:<os user>``. A password is read from
stdin (``--password-stdin``, first line) or asked twice on a terminal, never taken as an
argument (it would land in the shell history and the process list). Bad input: a one-line
error and exit code 2.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from app.auth.roles import Role, parse_role, parse_scopes
from app.auth.service import AuthService, Principal, cli_principal

T = TypeVar("T")
users_app = typer.Typer(no_args_is_help=True)
tokens_app = typer.Typer(no_args_is_help=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file (HOTLINE_CONFIG)")
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from stdin's first line")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _run(config: Path | None, work: Callable[[AuthService, Principal], Awaitable[T]]) -> T:
    from app.settings import load_settings
    from app.storage.db import Database

    try:
        settings = load_settings(config)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None

    async def main() -> T:
        db = Database.from_settings(settings)
        try:
            await asyncio.to_thread(db.migrate)
            return await work(AuthService(settings, db), cli_principal(_os_user()))
        finally:
            await asyncio.to_thread(db.dispose)

    try:
        return asyncio.run(main())
    except (ValueError, LookupError) as exc:
        raise _fail(str(exc)) from None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise _fail("--password-stdin: nothing on stdin")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise _fail("no terminal to ask for the password: use --password-stdin")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _role(value: str) -> Role:
    try:
        return parse_role(value)
    except ValueError as exc:
        raise _fail(str(exc)) from None


@users_app.command("add")
def add(name: str, role: Annotated[str, typer.Option("--role", "-r", help=", ".join(Role))],
        password_stdin: PasswordStdin = False, config: ConfigOpt = None) -> None:
    """Create a user with a role and a password."""
    parsed = _role(role)
    password = _password(password_stdin)
    user = _run(config, lambda auth, me: auth.create_user(me, name, parsed, password))
    typer.echo(f"created {user.name} ({user.role.value})")


@users_app.command("list")
def list_users(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Every user: role, state, last sign-in."""
    async def users(auth: AuthService, me: Principal) -> list[Any]:
        return await asyncio.to_thread(auth.store.users)

    found = _run(config, users)
    if as_json:
        typer.echo(json.dumps([u.model_dump(mode="json") for u in found], indent=2))
        return
    for u in found:
        state = "disabled" if u.disabled else (
            f"locked until {u.locked_until:%Y-%m-%d %H:%M}Z" if u.locked_until else "active")
        last = f"{u.last_login_at:%Y-%m-%d %H:%M}Z" if u.last_login_at else "never"
        typer.echo(f"{u.name:<24} {u.role.value:<11} {state:<28} last sign-in {last}")


@users_app.command("passwd")
def passwd(name: str, password_stdin: PasswordStdin = False, config: ConfigOpt = None) -> None:
    """Set a user's password (also unlocks the account, signs out their sessions)."""
    password = _password(password_stdin)
    _run(config, lambda auth, me: auth.update_user(me, name, password=password))
    typer.echo(f"password of {name} changed")


@users_app.command("disable")
def disable(name: str, config: ConfigOpt = None) -> None:
    """Disable a user: sessions end, API tokens are revoked."""
    _run(config, lambda auth, me: auth.update_user(me, name, disabled=True))
    typer.echo(f"{name} disabled")


@users_app.command("enable")
def enable(name: str, config: ConfigOpt = None) -> None:
    """Enable a disabled user again (their old tokens stay revoked)."""
    _run(config, lambda auth, me: auth.update_user(me, name, disabled=False))
    typer.echo(f"{name} enabled")


@users_app.command("role")
def set_role(name: str, role: str, config: ConfigOpt = None) -> None:
    """Change a user's role."""
    parsed = _role(role)
    _run(config, lambda auth, me: auth.update_user(me, name, role=parsed))
    typer.echo(f"{name} is now {parsed.value}")


@tokens_app.command("create")
def create_token(
    user: Annotated[str, typer.Option("--user", "-u", help="the token's owner")],
    scopes: Annotated[str, typer.Option("--scopes", "-s",
                                        help="comma-separated, e.g. calls:read,metrics:read")],
    name: Annotated[str, typer.Option("--name", "-n", help="what it is for")] = "cli",
    expires_days: Annotated[float | None, typer.Option(help="default: never")] = None,
    config: ConfigOpt = None,
) -> None:
    """Create an API token; it is printed once (stdout), store it now."""
    try:
        wanted = parse_scopes(scopes)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    expires_s = expires_days * 86400 if expires_days else None
    value, info = _run(config, lambda auth, me: auth.create_token(me, user, name, wanted,
                                                                   expires_s))
    typer.echo(f"token {info.id} for {info.user} ({', '.join(info.scopes)}), shown once:",
               err=True)
    typer.echo(value)


@tokens_app.command("list")
def list_tokens(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Every API token (never their values)."""
    async def tokens(auth: AuthService, me: Principal) -> list[Any]:
        return await asyncio.to_thread(auth.store.tokens, None)

    found = _run(config, tokens)
    if as_json:
        typer.echo(json.dumps([t.model_dump(mode="json") for t in found], indent=2))
        return
    for t in found:
        state = "revoked" if t.revoked_at else "active"
        typer.echo(f"{t.id:>5} {t.prefix}… {t.user:<20} {t.name:<20} {state:<8} "
                   f"{','.join(t.scopes)}")


@tokens_app.command("revoke")
def revoke_token(token_id: int, config: ConfigOpt = None) -> None:
    """Revoke an API token at once."""
    _run(config, lambda auth, me: auth.revoke_token(me, token_id, any_owner=True))
    typer.echo(f"token {token_id} revoked")
