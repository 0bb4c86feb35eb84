"""Health checks of the control plane's dependencies."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from control_plane.errors import UpstreamUnavailableError


def check_database(session: Session) -> None:
    """Run a trivial query.

    Raises:
        UpstreamUnavailableError: the database did not answer.
    """
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:
        raise UpstreamUnavailableError(f"database unavailable: {type(exc).__name__}") from exc
