"""Where a triton row is reached: external ``host:port`` or the platform's own public URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from control_plane.db.tables.mlserve import BUILTIN_TRITON_ID, TritonServer
from control_plane.settings import Settings


def builtin_address(settings: Settings) -> tuple[str, int]:
    """Host and port of the built-in server (the platform's HTTP port, from ``public_url``)."""
    parts = urlsplit(settings.public_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "127.0.0.1", port


def triton_address(settings: Settings, triton: TritonServer) -> tuple[str, int]:
    """Host and port of any triton row (the built-in one comes from settings)."""
    if triton.id == BUILTIN_TRITON_ID:
        return builtin_address(settings)
    return triton.host, triton.port


def triton_url(settings: Settings, triton: TritonServer) -> str:
    """``host:port`` as tritonclient wants it (IPv6 hosts bracketed)."""
    host, port = triton_address(settings, triton)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def is_builtin(triton: TritonServer) -> bool:
    """True for the reserved built-in row."""
    return triton.id == BUILTIN_TRITON_ID
