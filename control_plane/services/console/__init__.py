"""Admin console sessions and CSRF tokens, stored in the database."""

from control_plane.services.console.sessions import (
    CSRF_HEADER,
    SESSION_COOKIE,
    ConsoleSessionService,
    NewSession,
    console_user_id,
)

__all__ = [
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "ConsoleSessionService",
    "NewSession",
    "console_user_id",
]
