"""Console sessions: database rows shared by every control-plane replica, with a CSRF token each.

The cookie holds a random token; the table keeps only its SHA-256 digest, the user id, a CSRF
token and an absolute expiry. Any replica can therefore check a session, and logging out (or
deleting the user) ends it everywhere at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookies import CookieError, SimpleCookie

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from control_plane.db.tables.console import ConsoleSession

SESSION_COOKIE = "cp_console"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL = timedelta(hours=8)


@dataclass(frozen=True)
class NewSession:
    """A freshly created session: the cookie value (shown once) and its CSRF token."""

    token: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class SessionInfo:
    """A valid session as the console pages need it."""

    user_id: int
    csrf_token: str
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive (in UTC).
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def session_token(headers: Mapping[str, str]) -> str | None:
    """The console cookie's value in a ``cookie`` header (lower-case names), if any."""
    raw = headers.get("cookie")
    if not raw or SESSION_COOKIE not in raw:
        return None
    try:
        morsel = SimpleCookie(raw).get(SESSION_COOKIE)
    except CookieError:
        return None
    return morsel.value if morsel is not None and morsel.value else None


class ConsoleSessionService:
    """Create, check and end console sessions."""

    def __init__(self, session: Session, *, ttl: timedelta = SESSION_TTL) -> None:
        self.session = session
        self.ttl = ttl

    def create(self, user_id: int) -> NewSession:
        """Start a session for ``user_id`` (already authenticated as an admin).

        Also drops expired sessions, so the table never grows beyond the live ones.
        """
        now = datetime.now(UTC)
        self.session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
        token = secrets.token_urlsafe(32)
        row = ConsoleSession(
            token_digest=_digest(token),
            user_id=user_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + self.ttl,
        )
        self.session.add(row)
        self.session.commit()
        return NewSession(token, row.csrf_token, row.expires_at)

    def get(self, token: str | None) -> SessionInfo | None:
        """The live session named by a cookie value; None when unknown or expired."""
        if not token:
            return None
        row = self.session.get(ConsoleSession, _digest(token))
        if row is None or _aware(row.expires_at) <= datetime.now(UTC):
            return None
        return SessionInfo(row.user_id, row.csrf_token, _aware(row.expires_at))

    def verify(self, token: str | None, csrf_token: str | None) -> SessionInfo | None:
        """The session when ``csrf_token`` matches it (constant-time); None otherwise."""
        info = self.get(token)
        if info is None or not csrf_token:
            return None
        if not hmac.compare_digest(info.csrf_token.encode(), csrf_token.encode()):
            return None
        return info

    def end(self, token: str | None) -> None:
        """Log out: delete the session row (no-op when unknown)."""
        if token:
            self.session.execute(
                delete(ConsoleSession).where(ConsoleSession.token_digest == _digest(token))
            )
            self.session.commit()

    def end_all(self, user_id: int) -> int:
        """End every session of a user; returns how many there were."""
        result = self.session.execute(
            delete(ConsoleSession).where(ConsoleSession.user_id == user_id)
        )
        self.session.commit()
        return int(getattr(result, "rowcount", 0) or 0)

    def live_ids(self) -> list[int]:
        """User ids with a live session (for tests and diagnostics)."""
        now = datetime.now(UTC)
        rows = self.session.scalars(
            select(ConsoleSession.user_id).where(ConsoleSession.expires_at > now)
        )
        return sorted(set(rows))


def console_user_id(session: Session, headers: Mapping[str, str]) -> int | None:
    """The user behind a console cookie on an API call, or None.

    The cookie alone never authenticates an API call: the request must also carry the session's
    CSRF token in ``X-CSRF-Token``. The console sends it on every call, so this check needs no
    request method and protects state-changing calls (and reads) from cross-site requests.
    """
    token = session_token(headers)
    if token is None:
        return None
    info = ConsoleSessionService(session).verify(token, headers.get(CSRF_HEADER))
    return info.user_id if info else None
