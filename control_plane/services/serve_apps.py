"""Desired Serve applications: record them in the DB, then apply them through the gateway.

Every surface (v2 models, TorchServe models, workflows, the app gateway) goes through
``ServeAppService`` so the reconciler can bring the same set back after a restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.db.tables.serve_apps import ServeAppRecord
from control_plane.errors import DomainError
from control_plane.integrations.serve_types import AppSpec, AppState, ServeGateway
from control_plane.services.artifact_store import ArtifactStore
from deployments.contracts.app_args import args_for_builder

logger = logging.getLogger(__name__)

# Every application the platform creates is named "p-<owner>-<name>"; the reconciler only
# deletes applications with this prefix, never ones a user deployed by hand.
MANAGED_APP_PREFIX = "p-"


def app_name(owner: str, name: str) -> str:
    """The Serve application name for a platform-owned resource."""
    return f"{MANAGED_APP_PREFIX}{owner}-{name}"


def spec_hash(spec: AppSpec) -> str:
    """A stable digest of everything that defines the application."""
    payload = json.dumps(
        {"route": spec.route_prefix, "builder": spec.builder, "args": spec.args_json()},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class ServeAppService:
    """Records desired applications and applies them to Ray Serve."""

    def __init__(
        self, session: Session, gateway: ServeGateway, artifacts: ArtifactStore | None = None
    ) -> None:
        self.session = session
        self.gateway = gateway
        self.artifacts = artifacts

    def put(self, spec: AppSpec, *, owner: str, apply: bool = True) -> ServeAppRecord:
        """Upsert the desired app (committing), then apply it unless it is unchanged and applied.

        Args:
            spec: the application.
            owner: the surface that owns it.
            apply: call the gateway now (the reconciler retries on failure).

        Returns:
            The stored record.
        """
        if self.artifacts is not None:  # publish what replicas will download
            staged = self.artifacts.stage(spec.args_json())
            spec = replace(spec, args=type(spec.args).model_validate(staged))
        digest = spec_hash(spec)
        record = self.session.get(ServeAppRecord, spec.name)
        if record is None:
            record = ServeAppRecord(name=spec.name, owner=owner)
            self.session.add(record)
        record.route_prefix = spec.route_prefix
        record.builder = spec.builder
        record.args = spec.args_json()
        record.spec_hash = digest
        self.session.commit()
        if apply:
            self.apply_record(record)
        return record

    def apply_record(self, record: ServeAppRecord) -> bool:
        """Apply one record; remember the outcome. Returns True on success."""
        try:
            args = args_for_builder(record.builder, dict(record.args))
        except (KeyError, ValidationError) as exc:
            message = f"recorded arguments of {record.name} do not fit {record.builder}: {exc}"
            return self._failed(record, message)
        try:
            self.gateway.apply(AppSpec(record.name, record.route_prefix, args))
        except DomainError as exc:
            return self._failed(record, exc.message)
        record.applied_hash = record.spec_hash
        record.applied_at = datetime.now(UTC)
        record.last_error = None
        self.session.commit()
        return True

    def _failed(self, record: ServeAppRecord, message: str) -> bool:
        record.last_error = message[:2000]
        self.session.commit()
        logger.warning("applying %s failed: %s", record.name, message)
        return False

    def remove(self, name: str) -> None:
        """Forget the desired app (committing) and delete it from Serve.

        Returns once no replica of the app answers requests (``ServeGateway.delete``).
        """
        record = self.session.get(ServeAppRecord, name)
        if record is not None:
            self.session.delete(record)
            self.session.commit()
        self.gateway.delete(name)

    def retire(self, name: str, scope: str) -> None:
        """Make the running app's replicas refuse ``scope`` (a version) before it is redeployed.

        A version's deletion redeploys the app without it; until Serve has replaced every old
        replica, the tombstone keeps them from serving that version.
        """
        self.gateway.retire(name, scope)

    def get(self, name: str) -> ServeAppRecord | None:
        """The desired-app record, if any."""
        return self.session.get(ServeAppRecord, name)

    def list(self, owner: str | None = None) -> list[ServeAppRecord]:
        """All desired apps, optionally of one owner."""
        query = select(ServeAppRecord).order_by(ServeAppRecord.name)
        if owner is not None:
            query = query.where(ServeAppRecord.owner == owner)
        return list(self.session.scalars(query))

    def state(self, name: str) -> AppState | None:
        """What Ray reports for the app (None when Serve has no such app)."""
        return self.gateway.status().get(name)
