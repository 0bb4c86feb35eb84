"""Token authorization inside TorchServe model and workflow replicas (/predictions, /wfpredict).

The replica reads the current ``inference`` key digest from the platform database (the table the
control plane writes, ``deployments.contracts.token_auth.TOKEN_TABLE``) and caches it for
``ttl_s``; a key that does not match re-reads at once, so a freshly rotated key works
immediately and an old one at most ``ttl_s`` longer. No row means token authorization is off.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from starlette.responses import Response

from deployments.contracts.app_args import TorchServeKeyStoreArgs
from deployments.contracts.token_auth import (
    INFERENCE,
    INVALID_KEY_MESSAGE,
    INVALID_KEY_TYPE,
    TOKEN_TABLE,
    key_matches,
)

logger = logging.getLogger(__name__)
_QUERY = sa.text(f"SELECT key_digest, expires_at FROM {TOKEN_TABLE} WHERE key_type = :key_type")


def invalid_key_response() -> Response:
    """TorchServe's 400 ``InvalidKeyException`` body, byte for byte."""
    body = {"code": 400, "type": INVALID_KEY_TYPE, "message": INVALID_KEY_MESSAGE}
    return Response(
        json.dumps(body, indent=2) + "\n", status_code=400, media_type="application/json"
    )


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


class InferenceKeyCheck:
    """The inference key of one replica, cached from the database."""

    def __init__(self, args: TorchServeKeyStoreArgs) -> None:
        """Create the engine lazily-connecting to the platform database."""
        url = args.database_url
        connect_args = (
            {"check_same_thread": False, "timeout": 30} if url.startswith("sqlite") else {}
        )
        self.engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        self.ttl_s = args.ttl_s
        self.current: tuple[str, datetime | None] | None = None
        self.loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    def _read(self) -> tuple[str, datetime | None] | None:
        with self.engine.connect() as conn:
            row = conn.execute(_QUERY, {"key_type": INFERENCE}).first()
        return None if row is None else (str(row[0]), _as_datetime(row[1]))

    async def _refresh(self) -> None:
        async with self._lock:
            try:
                self.current = await asyncio.to_thread(self._read)
            except sa.exc.SQLAlchemyError:
                # Fail closed: keep the last digest; with none known, nothing is accepted.
                logger.warning("token keys unreadable; keeping the cached digest", exc_info=True)
                if self.current is None:
                    self.current = ("", None)
            self.loaded_at = time.monotonic()

    def _accepts(self, header: str | None) -> bool:
        if self.current is None:
            return True
        digest, expires_at = self.current
        return key_matches(header, digest, expires_at)

    async def allowed(self, header: str | None) -> bool:
        """Whether a request with this ``Authorization`` header may run."""
        if time.monotonic() - self.loaded_at > self.ttl_s:
            await self._refresh()
        if self._accepts(header):
            return True
        await self._refresh()
        return self._accepts(header)


def key_check(args: TorchServeKeyStoreArgs | None) -> InferenceKeyCheck | None:
    """The replica's key check, or None when its application carries no key store."""
    return InferenceKeyCheck(args) if args is not None else None
