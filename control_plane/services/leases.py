"""Leader election through the database: a lease row renewed by its holder.

Several control-plane replicas run the same background loops; only the lease holder acts, so
the reconciler runs in one place at a time. A holder that dies stops renewing and another replica
takes over once the lease expires.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_plane.db.tables.leases import Lease


def try_acquire(session: Session, name: str, holder: str, ttl_s: float) -> bool:
    """Take or renew the lease ``name`` for ``holder``; True when ``holder`` holds it now.

    The conditional UPDATE is atomic on SQLite and PostgreSQL, so two replicas never both win.
    """
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=ttl_s)
    result = session.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < now))
        .values(holder=holder, expires_at=expires)
    )
    if result.rowcount:  # type: ignore[attr-defined]
        session.commit()
        return True
    session.rollback()
    if session.get(Lease, name) is not None:
        return False
    try:
        session.add(Lease(name=name, holder=holder, expires_at=expires))
        session.commit()
    except IntegrityError:  # another replica inserted it first
        session.rollback()
        return False
    return True


def release(session: Session, name: str, holder: str) -> None:
    """Give the lease up (on shutdown) so another replica takes over at once."""
    session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(expires_at=datetime(1970, 1, 1, tzinfo=UTC))
    )
    session.commit()
