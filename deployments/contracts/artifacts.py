"""The artifact store behind an fsspec URL (``s3://bucket/prefix``, ``gs://``, ``file://``...).

With ``store.url`` set, the control plane publishes every model directory and archive an
application needs under that URL before deploying it, and adds ``<key>_uri`` / ``<key>_token``
next to each path in the application's args. Replicas on any node then materialize those
artifacts from the object store into a node-local cache (:func:`resolve_local`) and never read
the control plane's disk. Without ``store.url`` the store is a plain directory that every node
must see (a shared filesystem), and nothing here is used.

Trees are copied file by file (predictable on every fsspec backend, unlike recursive ``put``
semantics), and a token (digest of relative paths, sizes and modification times) names each
published version, so a changed model gets a new cache directory and a new deployment.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, TypeVar

from deployments.contracts.app_args import StagedArtifacts

logger = logging.getLogger(__name__)

ARTIFACT_KEYS = ("model_dir", "archive", "war_dir")
TOKEN_OBJECT = ".platform-token"
CACHE_ENV = "PLATFORM_ARTIFACT_CACHE"
_LOCK = threading.Lock()


def tree_token(path: Path) -> str:
    """A digest of a file or directory's relative paths, sizes and modification times."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for item in files:
        stat = item.stat()
        rel = item.name if item == path else item.relative_to(path).as_posix()
        digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


class RemoteStore:
    """One fsspec location: publish local trees to it, download trees from it."""

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self.options = dict(options or {})
        self._fs: Any = None

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (created on first use; the backend is an optional extra)."""
        if self._fs is None:
            import fsspec

            self._fs, _ = fsspec.core.url_to_fs(self.url, **self.options)
        return self._fs

    def uri(self, rel: str) -> str:
        """The full URL of ``rel`` under the store."""
        return f"{self.url}/{rel.strip('/')}"

    def _path(self, uri: str) -> str:
        """The backend path of a URL (``bucket/key`` for s3)."""
        return str(self.fs._strip_protocol(uri))

    def exists(self, rel: str) -> bool:
        """True when something is stored at ``rel``."""
        return bool(self.fs.exists(self._path(self.uri(rel))))

    def published_token(self, rel: str) -> str | None:
        """The token of the tree last published at ``rel`` (None if never)."""
        marker = self._path(self.uri(rel)) + "/" + TOKEN_OBJECT
        try:
            return str(self.fs.cat_file(marker).decode())
        except (FileNotFoundError, OSError):
            return None

    def publish(self, local: Path, rel: str) -> str:
        """Upload a file or directory to ``rel`` unless that version is already there.

        Returns:
            The tree's token.
        """
        token = tree_token(local)
        target = self._path(self.uri(rel))
        if local.is_file():
            self._put(local, target)
            return token
        if self.published_token(rel) == token:
            return token
        files = {p.relative_to(local).as_posix(): p for p in local.rglob("*") if p.is_file()}
        for name in sorted(files):
            self._put(files[name], f"{target}/{name}")
        stale = [
            key
            for key in self._find(target)
            if key[len(target) :].lstrip("/") not in files
            and key[len(target) :].lstrip("/") != TOKEN_OBJECT
        ]
        if stale:  # files deleted locally (a removed version) go from the mirror too
            self.fs.rm(stale)
        self.fs.pipe_file(f"{target}/{TOKEN_OBJECT}", token.encode())
        logger.info("published %s to %s (%s)", local, self.uri(rel), token)
        return token

    def _find(self, target: str) -> list[str]:
        try:
            return [str(k) for k in self.fs.find(target)]
        except (FileNotFoundError, OSError):
            return []

    def delete(self, rel: str) -> None:
        """Remove everything stored at ``rel``."""
        target = self._path(self.uri(rel))
        keys = self._find(target)
        if keys:
            self.fs.rm(keys)

    def _put(self, local: Path, target: str) -> None:
        self.fs.makedirs(self.fs._parent(target), exist_ok=True)  # a no-op on object stores
        self.fs.put_file(str(local), target)

    def download(self, uri: str, dest: Path) -> bool:
        """Copy the file or tree at ``uri`` to ``dest``; False when nothing is stored there."""
        source = self._path(uri)
        if not self.fs.exists(source):
            return False
        if self.fs.isfile(source):
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(source, str(dest))
            return True
        for key in self.fs.find(source):
            rel = key[len(source) :].lstrip("/")
            if not rel or rel == TOKEN_OBJECT:
                continue
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(key, str(out))
        return True

    def list_dirs(self, rel: str) -> list[str]:
        """Names of the directories directly under ``rel``."""
        base = self._path(self.uri(rel))
        try:
            entries = self.fs.ls(base, detail=True)
        except (FileNotFoundError, OSError):
            return []
        return sorted(
            str(e["name"]).rstrip("/").rsplit("/", 1)[-1]
            for e in entries
            if e.get("type") == "directory"
        )


def cache_root() -> Path:
    """The node-local artifact cache (``$PLATFORM_ARTIFACT_CACHE`` or the temp directory)."""
    return Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "platform-artifacts")


def materialize(uri: str, token: str, options: dict[str, Any] | None = None) -> Path:
    """A node-local copy of the artifact at ``uri`` (version ``token``), downloaded once.

    Downloads go to a temporary directory renamed into place, so concurrent replicas on one
    node never see a half-written tree. If nothing is stored at ``uri`` (an archive's
    extraction directory that was never published), the would-be cache path is returned for
    the caller to fill.
    """
    key = hashlib.sha256(f"{uri}\0{token}".encode()).hexdigest()[:24]
    name = uri.rstrip("/").rsplit("/", 1)[-1] or "artifact"
    final = cache_root() / key / name
    if final.exists():
        return final
    store = RemoteStore(uri, options)
    with _LOCK:
        if final.exists():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=final.parent))
        try:
            if not store.download(uri, staging / name):
                return final
            try:
                (staging / name).rename(final)
            except OSError:  # another process on this node won the race
                if not final.exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("materialized %s into %s", uri, final)
    return final


def resolve_local(spec: dict[str, Any], options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``spec`` with each published artifact path replaced by its node-local copy.

    Keys named in :data:`ARTIFACT_KEYS` that carry a ``<key>_uri`` sibling are materialized;
    anything else (a shared-filesystem path) is returned unchanged.
    """
    out = dict(spec)
    options = options if options is not None else spec.get("store_options")
    for key in ARTIFACT_KEYS:
        uri = spec.get(f"{key}_uri")
        if uri:
            out[key] = str(materialize(uri, str(spec.get(f"{key}_token", "")), options))
    return out


StagedT = TypeVar("StagedT", bound=StagedArtifacts)


def localized(args: StagedT) -> StagedT:
    """``args`` with each published artifact path replaced by its node-local copy."""
    if not any(getattr(args, f"{key}_uri") for key in ARTIFACT_KEYS):
        return args
    return type(args).model_validate(resolve_local(args.model_dump()))
