"""Reconciler: makes Ray Serve's applications match the ``serve_apps`` table.

Runs once at start and then every ``serving.reconcile_period_s``. Missing or changed apps are
applied; platform-owned apps that are no longer desired are deleted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from control_plane.errors import DomainError
from control_plane.integrations.serve_types import ServeGateway
from control_plane.services.leases import release, try_acquire
from control_plane.services.serve_apps import MANAGED_APP_PREFIX, ServeAppService

logger = logging.getLogger(__name__)
LEASE_NAME = "reconciler"


@dataclass
class ReconcileReport:
    """What one reconciler pass did."""

    started_at: datetime
    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: bool = False


def reconcile_once(session: Session, gateway: ServeGateway) -> ReconcileReport:
    """One pass: apply what is desired but missing or stale, delete what is not desired."""
    report = ReconcileReport(started_at=datetime.now(UTC))
    service = ServeAppService(session, gateway)
    try:
        running = gateway.status()
    except DomainError as exc:
        report.error = exc.message
        return report
    desired = {record.name: record for record in service.list()}
    for name, record in desired.items():
        state = running.get(name)
        stale = record.applied_hash != record.spec_hash
        if state is None or stale:
            if service.apply_record(record):
                report.applied.append(name)
            else:
                report.failed.append(name)
    for name in running:
        if name.startswith(MANAGED_APP_PREFIX) and name not in desired:
            gateway.delete(name)
            report.deleted.append(name)
    return report


class Reconciler:
    """Periodic reconciliation inside the control-plane replica."""

    def __init__(
        self, session_factory: sessionmaker[Session], gateway: ServeGateway, period_s: float
    ) -> None:
        self.session_factory = session_factory
        self.gateway = gateway
        self.period_s = period_s
        self.last_report: ReconcileReport | None = None
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def run_once(self, *, force: bool = False) -> ReconcileReport:
        """One pass in a fresh session, if this replica holds the reconciler lease.

        Args:
            force: reconcile even without the lease (tests, manual runs).
        """
        with self.session_factory() as session:
            ttl = self.period_s * 2 + 1.0  # renewed every period; a dead holder frees it soon
            if not force and not try_acquire(session, LEASE_NAME, self.holder, ttl):
                report = ReconcileReport(started_at=datetime.now(UTC), skipped=True)
                self.last_report = report
                return report
            report = reconcile_once(session, self.gateway)
        if report.applied or report.deleted or report.failed:
            logger.info(
                "reconciler applied=%s deleted=%s failed=%s",
                report.applied,
                report.deleted,
                report.failed,
            )
        self.last_report = report
        return report

    async def run_forever(self) -> None:
        """Reconcile now and then every period until cancelled (then give the lease up)."""
        try:
            while True:
                try:
                    await asyncio.to_thread(self.run_once)
                except Exception:
                    logger.exception("reconciler pass failed")
                await asyncio.sleep(self.period_s)
        finally:
            try:
                with self.session_factory() as session:
                    release(session, LEASE_NAME, self.holder)
            except Exception:
                logger.warning("could not release the reconciler lease", exc_info=True)
