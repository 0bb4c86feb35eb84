"""TorchServe 0.12 token authorization rules both planes agree on (Ray-free).

Keys are 8 URL-safe base64 characters, sent as ``Authorization: Bearer <key>``; the database
table ``ts_token_keys`` holds only their SHA-256 digests and expiry (one row per key type), so
every control-plane replica and every model or workflow replica checks the same current keys.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Final

from deployments.contracts.security import api_key_digest

TOKEN_TABLE: Final = "ts_token_keys"
MANAGEMENT: Final = "management"
INFERENCE: Final = "inference"
API: Final = "API"
KEY_TYPES: Final = (MANAGEMENT, INFERENCE, API)
# TorchServe's exception type and messages (0.12 TokenAuthorization): the checks say
# "Authorization", the rotation endpoint "Authentication".
INVALID_KEY_TYPE: Final = "InvalidKeyException"
INVALID_KEY_MESSAGE: Final = (
    "Token Authorization failed. Token either incorrect, expired, or not provided correctly"
)
INVALID_ROTATION_MESSAGE: Final = (
    "Token Authentication failed. Token either incorrect, expired, or not provided correctly"
)
_BEARER = re.compile(r"^Bearer\s+(\S+)$")


def generate_key() -> str:
    """A fresh key as TorchServe makes them: 6 random bytes, URL-safe base64 (8 characters)."""
    return secrets.token_urlsafe(6)


def bearer_key(header: str | None) -> str | None:
    """The key of an ``Authorization`` header, matched like TorchServe (``_BEARER``)."""
    if not header:
        return None
    match = _BEARER.match(header)
    return match.group(1) if match else None


def key_digest(key: str) -> str:
    """The digest stored for a key."""
    return api_key_digest(key)


def key_matches(
    header: str | None, digest: str | None, expires_at: datetime | None, now: datetime | None = None
) -> bool:
    """Whether an ``Authorization`` header carries the current, unexpired key of a digest."""
    key = bearer_key(header)
    if key is None or not digest:
        return False
    if expires_at is not None:
        when = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
        if (now or datetime.now(UTC)) >= when:
            return False
    return secrets.compare_digest(key_digest(key), digest)


def expiration_text(expires_at: datetime) -> str:
    """``expiration time`` as TorchServe writes it into key_file.json (ISO-8601, UTC, ``Z``)."""
    when = expires_at.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}000Z"
