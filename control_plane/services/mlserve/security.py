"""Password hashing (argon2id), API keys and a short-lived cache of verified credentials."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

API_KEY_BYTES = 32


def _hasher() -> PasswordHasher:
    # OWASP's argon2id profile (19 MiB, 2 passes, 1 lane): ~50 ms here instead of ~0.5 s for the
    # library default, which every uncached Basic check and every fresh database's bootstrap
    # admin would pay. Hashes carry their parameters, so older ones still verify.
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def hash_password(password: str) -> str:
    """A salted argon2id hash of ``password`` (the only form ever stored)."""
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches the stored argon2 hash (constant-time inside argon2)."""
    try:
        return bool(_hasher().verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_api_key() -> str:
    """A fresh 43-character URL-safe random key."""
    return secrets.token_urlsafe(API_KEY_BYTES)


@dataclass
class _Entry:
    expires: float


class VerifiedCache:
    """Remembers successful password verifications briefly (argon2 costs ~0.1 s per check).

    Entries are keyed by an HMAC of (stored hash, password) under a per-process secret, so a
    changed password or hash never matches an old entry, and nothing reversible is kept.
    Concurrent misses for the same credentials run argon2 once (single flight): the others wait
    for that answer instead of each spending ~50 ms of CPU on the same check.
    """

    def __init__(self, ttl_s: float = 60.0, max_entries: int = 4096) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._secret = secrets.token_bytes(32)
        self._entries: dict[bytes, _Entry] = {}
        self._inflight: dict[bytes, Future[bool]] = {}
        self._lock = threading.Lock()
        self.checks = 0  # argon2 verifications run (misses that were not joined)

    def _key(self, password_hash: str, password: str) -> bytes:
        msg = password_hash.encode() + b"\0" + password.encode()
        return hmac.new(self._secret, msg, hashlib.sha256).digest()

    def verify(self, password_hash: str, password: str) -> bool:
        """``verify_password`` with the cache in front."""
        key = self._key(password_hash, password)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires > now:
                return True
            running = self._inflight.get(key)
            if running is None:
                mine: Future[bool] = Future()
                self._inflight[key] = mine
                self.checks += 1
        if running is not None:
            return running.result()  # the same check, already under way in another thread
        try:
            ok = verify_password(password_hash, password)
        except BaseException as exc:
            with self._lock:
                del self._inflight[key]
            mine.set_exception(exc)
            raise
        with self._lock:
            del self._inflight[key]
            if ok:
                self._remember(key, now)
        mine.set_result(ok)
        return ok

    def _remember(self, key: bytes, now: float) -> None:
        """Keep ``key`` for ``ttl_s`` (the lock is held)."""
        if self.ttl_s > 0:
            if len(self._entries) >= self.max_entries:
                self._entries = {k: e for k, e in self._entries.items() if e.expires > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[key] = _Entry(now + self.ttl_s)
