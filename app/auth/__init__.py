"""Access control of the back office: users and roles, sessions, API tokens, the audit log.

How a route declares who may use it: ``app.auth.deps`` (``require``, ``public``,
``CurrentPrincipal``). The service behind it: ``app.auth.service.AuthService``.
"""

from app.auth.deps import CurrentPrincipal, client_ip, public, require
from app.auth.roles import ROLE_PERMS, Perm, Role
from app.auth.service import AuthError, AuthService, Principal

__all__ = [
    "ROLE_PERMS",
    "AuthError",
    "AuthService",
    "CurrentPrincipal",
    "Perm",
    "Principal",
    "Role",
    "client_ip",
    "public",
    "require",
]
