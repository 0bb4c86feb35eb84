"""Credential rules both planes must agree on: API-key digests and HTTP Basic parsing."""

from __future__ import annotations

import base64
import hashlib


def api_key_digest(key: str) -> str:
    """SHA-256 hex of an API key: keys are high-entropy, so a fast digest is a safe lookup index.

    The control plane stores only this digest; the apps gateway looks consumers up by it.
    """
    return hashlib.sha256(key.encode()).hexdigest()


def parse_basic(header: str) -> tuple[str, str] | None:
    """``(name, password)`` from an ``Authorization: Basic ...`` header, else None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep else None
