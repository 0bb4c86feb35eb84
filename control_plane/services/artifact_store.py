"""The control plane's side of the artifact store (``store.url``; ``contracts.artifacts``).

The store root on local disk stays the working copy every service reads and writes. With a
``store.url`` configured, two more things happen:

- ``stage(args)``: before an application is recorded, every model directory or archive it
  names under the store root is published to the URL, and ``<key>_uri`` / ``<key>_token`` are
  added beside the path, so replicas on any node download it instead of reading this disk.
- ``fetch(rel)``: before a service reads a model from the store, a copy that exists only in the
  object store (put there by an operator, or published by another control-plane replica) is
  mirrored into the local working copy.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from control_plane.errors import UpstreamUnavailableError
from control_plane.settings import Settings
from deployments.contracts.artifacts import ARTIFACT_KEYS, RemoteStore, tree_token

logger = logging.getLogger(__name__)


class ArtifactStore:
    """Publishes and fetches artifacts between the local store root and ``store.url``."""

    def __init__(self, root: Path, url: str = "", options: dict[str, Any] | None = None) -> None:
        self.root = root.resolve()
        self.options = dict(options or {})
        self.remote = RemoteStore(url, self.options) if url else None

    @classmethod
    def from_settings(cls, settings: Settings) -> ArtifactStore:
        """The store the settings describe."""
        return cls(settings.store_root, settings.store.url, settings.store.options)

    def _rel(self, value: Any) -> str | None:
        if not isinstance(value, str) or not value:
            return None
        path = Path(value)
        if not path.is_absolute():
            return None
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None

    def stage(self, args: dict[str, Any]) -> dict[str, Any]:
        """``args`` with every artifact under the store root published and located by URL.

        Raises:
            UpstreamUnavailableError: the object store could not be written.
        """
        if self.remote is None:
            return args
        return self._stage(args)  # type: ignore[no-any-return]

    def _stage(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._stage(v) for v in value]
        if not isinstance(value, dict):
            return value
        out = {k: self._stage(v) for k, v in value.items()}
        assert self.remote is not None
        staged = False
        for key in ARTIFACT_KEYS:
            rel = self._rel(value.get(key))
            if rel is None:
                continue
            local = self.root / rel
            try:
                token = self.remote.publish(local, rel) if local.exists() else tree_token(local)
            except Exception as exc:
                raise UpstreamUnavailableError(
                    f"could not publish {rel} to the artifact store {self.remote.url}: {exc}"
                ) from exc
            out[f"{key}_uri"] = self.remote.uri(rel)
            out[f"{key}_token"] = token
            staged = True
        if staged:
            out["store_options"] = self.options
        return out

    def publish(self, rel: str) -> None:
        """Mirror the local ``rel`` (a model just written or changed) to the object store.

        Raises:
            UpstreamUnavailableError: the object store could not be written.
        """
        local = self.root / rel
        if self.remote is None or not local.exists():
            return
        try:
            self.remote.publish(local, rel)
        except Exception as exc:
            raise UpstreamUnavailableError(
                f"could not publish {rel} to the artifact store {self.remote.url}: {exc}"
            ) from exc

    def delete(self, rel: str) -> None:
        """Remove ``rel`` from the object store (the local copy is the caller's business)."""
        if self.remote is None:
            return
        try:
            self.remote.delete(rel)
        except Exception as exc:  # a leftover object costs storage, not correctness
            logger.warning("could not delete %s from %s: %s", rel, self.remote.url, exc)

    def fetch(self, rel: str) -> bool:
        """Mirror ``rel`` from the object store into the local root when it is only there.

        A local copy always wins (this replica wrote it, or mirrored it before).

        Returns:
            True when the local working copy now has ``rel``.
        """
        local = self.root / rel
        if self.remote is None or local.exists():
            return local.exists()
        try:
            return self.remote.download(self.remote.uri(rel), local)
        except Exception as exc:
            logger.warning("could not fetch %s from %s: %s", rel, self.remote.url, exc)
            return local.exists()

    def list_dirs(self, rel: str) -> list[str]:
        """Directory names under ``rel`` in the local root and the object store."""
        local = self.root / rel
        names = {p.name for p in local.iterdir() if p.is_dir()} if local.is_dir() else set()
        if self.remote is not None:
            try:
                names.update(self.remote.list_dirs(rel))
            except Exception as exc:
                logger.warning("could not list %s in %s: %s", rel, self.remote.url, exc)
        return sorted(names)
