"""Password hashing with argon2id (``argon2-cffi``) and the password rules.

Hashing and verifying cost tens of milliseconds of CPU on purpose: callers on the event loop
run them in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (64 MiB, t=3, p=4)
# verified against when the user does not exist, so both answers take as long
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
MAX_PASSWORD_CHARS = 1024


def check_password(password: str, min_length: int) -> str:
    """``password`` if it is acceptable, else ``ValueError`` saying why."""
    if len(password) < min_length:
        raise ValueError(f"password must be at least {min_length} characters long")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"password must be at most {MAX_PASSWORD_CHARS} characters long")
    if password != password.strip():
        raise ValueError("password must not start or end with spaces")
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing user (``None``) costs the same time."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


def generate_password() -> str:
    """A random password for a first-run admin or a reset: 20 URL-safe characters."""
    return secrets.token_urlsafe(15)
