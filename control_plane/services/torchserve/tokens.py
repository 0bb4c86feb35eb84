"""TorchServe token authorization: the keys (digests in ``ts_token_keys``), checks, rotation.

TorchServe 0.12 keeps its keys in one process and in ``key_file.json``; here every control-plane
replica and every model/workflow replica checks against the same database rows, so a key made or
rotated by one replica is the key everywhere. The plain keys are written only to the key file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from control_plane import errors
from control_plane.db.tables.ts_tokens import TorchServeTokenKey
from control_plane.settings import Settings
from deployments.contracts.app_args import TorchServeKeyStoreArgs
from deployments.contracts.token_auth import (
    API,
    INFERENCE,
    INVALID_KEY_MESSAGE,
    INVALID_KEY_TYPE,
    INVALID_ROTATION_MESSAGE,
    KEY_TYPES,
    MANAGEMENT,
    expiration_text,
    generate_key,
    key_digest,
    key_matches,
)

logger = logging.getLogger(__name__)
ROTATABLE = (MANAGEMENT, INFERENCE)


def key_store_args(settings: Settings) -> TorchServeKeyStoreArgs:
    """What model and workflow replicas need to check the inference key.

    Always passed: the database rows say whether token authorization is on, so toggling it
    needs no redeploy.
    """
    return TorchServeKeyStoreArgs(
        database_url=settings.database_url, ttl_s=settings.torchserve.token_cache_ttl_s
    )


def invalid_key(message: str = INVALID_KEY_MESSAGE) -> errors.BadRequestError:
    """TorchServe's answer to a missing, wrong or expired key (400 ``InvalidKeyException``)."""
    return errors.BadRequestError(message, code="invalid_token", ts_type=INVALID_KEY_TYPE)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock beside the key file (replicas sharing it generate keys one at a time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class TorchServeTokenService:
    """Token keys of the TorchServe surface."""

    def __init__(self, session: Session, settings: Settings) -> None:
        """Bind the service to a session and the settings."""
        self.session = session
        self.settings = settings

    @property
    def enabled(self) -> bool:
        """Whether token authorization is on."""
        return self.settings.torchserve.token_auth

    def _expiry(self, now: datetime) -> datetime:
        return now + timedelta(minutes=self.settings.torchserve.token_expiration_min)

    def _rows(self) -> dict[str, TorchServeTokenKey]:
        rows = self.session.scalars(select(TorchServeTokenKey)).all()
        return {row.key_type: row for row in rows}

    def _read_file(self) -> dict[str, dict[str, str]]:
        try:
            loaded = json.loads(self.settings.key_file.read_text())
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def _write_file(self, entries: dict[str, dict[str, str]]) -> None:
        path = self.settings.key_file
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(entries, handle, indent=2)
        os.replace(tmp, path)

    def _set_key(self, key_type: str, now: datetime) -> dict[str, str]:
        key = generate_key()
        expires = None if key_type == API else self._expiry(now)
        row = self.session.get(TorchServeTokenKey, key_type)
        if row is None:
            row = TorchServeTokenKey(key_type=key_type, key_digest="")
            self.session.add(row)
        row.key_digest = key_digest(key)
        row.expires_at = expires
        row.updated_at = now
        entry = {"key": key}
        if expires is not None:
            entry["expiration time"] = expiration_text(expires)
        return entry

    def ensure_keys(self) -> bool:
        """At start: keep the keys when the key file matches the database, else make new ones.

        Returns:
            True when new keys were generated (and the key file written).
        """
        if not self.enabled:
            # Replicas read "no rows" as "token authorization off".
            if self._rows():
                self.session.execute(delete(TorchServeTokenKey))
                self.session.commit()
            return False
        with _file_lock(self.settings.key_file):
            rows = self._rows()
            entries = self._read_file()
            matching = all(
                k in rows
                and isinstance(entries.get(k), dict)
                and key_digest(str(entries[k].get("key", ""))) == rows[k].key_digest
                for k in KEY_TYPES
            )
            if matching:
                return False
            now = datetime.now(UTC)
            fresh = {k: self._set_key(k, now) for k in KEY_TYPES}
            self.session.commit()
            self._write_file(fresh)
        logger.info("TorchServe token keys generated in %s", self.settings.key_file)
        return True

    def authorize(self, key_type: str, header: str | None) -> None:
        """Check an ``Authorization`` header against the current key of a type.

        Raises:
            BadRequestError: token authorization is on and the key is missing, wrong or expired.
        """
        if not self.enabled:
            return
        row = self.session.get(TorchServeTokenKey, key_type)
        if row is None or not key_matches(header, row.key_digest, row.expires_at):
            raise invalid_key()

    def rotate(self, key_type: str | None, header: str | None) -> None:
        """``/token?type=``: a new management or inference key, authorised by the API key.

        Raises:
            NotFoundError: token authorization is off (no such endpoint, as TorchServe).
            BadRequestError: a wrong API key, or a type other than management/inference.
        """
        if not self.enabled:
            raise errors.NotFoundError(
                "Requested resource is not found, please refer to API document.",
                ts_type="ResourceNotFoundException",
            )
        api_row = self.session.get(TorchServeTokenKey, API)
        if (
            api_row is None
            or key_type not in ROTATABLE
            or not key_matches(header, api_row.key_digest, api_row.expires_at)
        ):
            raise invalid_key(INVALID_ROTATION_MESSAGE)
        with _file_lock(self.settings.key_file):
            entries = self._read_file()
            entries[key_type] = self._set_key(key_type, datetime.now(UTC))
            self.session.commit()
            self._write_file(entries)
