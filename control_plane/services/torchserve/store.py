"""The TorchServe stores: where ``.mar``/``.war`` urls resolve, downloads, extraction, pip deps.

Model store = ``<store_root>/model-store``, workflow store = ``<store_root>/wf-store``; extracted
archives live under ``<store_root>/ts-extracted`` so every replica (any node sharing the store)
loads from the store. URL downloads must match ``allowed_urls`` and stay under
``max_download_bytes`` (TorchServe's CVE-2023-43654 hardening).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from control_plane.errors import ArtifactExistsError, BadRequestError, DomainError
from control_plane.services.artifact_store import ArtifactStore
from control_plane.services.torchserve.errors import (
    archive_not_found,
    bad_request,
    from_archive,
    start_failed,
)
from control_plane.settings import Settings
from deployments.contracts.archives import ArchiveError, InvalidArchiveError, safe_extract

_URL_RE = re.compile(r"^(https?|file)://", re.IGNORECASE)
DOWNLOAD_FAILED = "DownloadArchiveException"


@dataclass(frozen=True)
class ResolvedArchive:
    """An archive found in (or copied into) a store."""

    path: Path
    downloaded: bool


class TorchServeStore:
    """Resolves register urls against the model and workflow stores."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = settings.torchserve
        root = settings.store_root
        self.model_store = root / "model-store"
        self.workflow_store = root / "wf-store"
        self.extracted = root / "ts-extracted"  # ``extract`` makes its folders as it needs them

    def resolve(self, url: str, *, workflow: bool) -> ResolvedArchive:
        """Find ``url`` in the store, downloading it first when it is an allowed URL.

        Raises:
            NotFoundError: not allowed, ``..``, not found.
            BadRequestError: the download failed.
            ArtifactExistsError: the downloaded file is already in the store.
        """
        store = self.workflow_store if workflow else self.model_store
        # Made here, not per service: the services are built for every request, on the loop.
        store.mkdir(parents=True, exist_ok=True)
        if _URL_RE.match(url):
            if not any(re.fullmatch(p, url) for p in self.config.allowed_urls):
                raise archive_not_found(
                    f"Given URL {url} does not match any allowed URL(s)", workflow=workflow
                )
            return self._download(url, store, workflow=workflow)
        if ".." in url:
            raise archive_not_found(
                f"Relative path is not allowed in url: {url}", workflow=workflow
            )
        path = store / Path(url).name
        if url and Path(url).name and not path.exists():  # maybe only in the object store
            ArtifactStore.from_settings(self.settings).fetch(
                path.relative_to(self.settings.store_root).as_posix()
            )
        if not url or not Path(url).name or not path.exists():
            if workflow:
                raise archive_not_found(
                    f"Workflow not found in workflow store: {url}", workflow=True
                )
            raise archive_not_found(f"Model not found at: {url}", workflow=False)
        return ResolvedArchive(path, downloaded=False)

    def _download(self, url: str, store: Path, *, workflow: bool) -> ResolvedArchive:
        parsed = urllib.parse.urlparse(url)
        basename = Path(urllib.parse.unquote(parsed.path)).name
        failed = bad_request(f"Failed to download archive from: {url}", DOWNLOAD_FAILED)
        if not basename or basename in (".", ".."):
            raise failed
        target = store / basename
        if target.exists():
            message = basename if workflow else f"Model file already exists {basename}"
            raise ArtifactExistsError(message, ts_type="FileAlreadyExistsException")
        partial = store / f".{basename}.{uuid.uuid4().hex}.part"
        limit = self.config.max_download_bytes
        try:
            if parsed.scheme.lower() == "file":
                source = Path(urllib.parse.unquote(parsed.path))
                if not source.is_file():
                    raise failed
                if source.stat().st_size > limit:
                    raise self._too_large(url, limit)
                shutil.copyfile(source, partial)
            else:
                self._http_get(url, partial, limit, failed)
            partial.rename(target)
        finally:
            partial.unlink(missing_ok=True)
        return ResolvedArchive(target, downloaded=True)

    def _http_get(self, url: str, dest: Path, limit: int, failed: DomainError) -> None:
        try:
            with httpx.stream("GET", url, timeout=60, follow_redirects=False) as resp:
                if resp.status_code != 200:
                    raise failed
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise self._too_large(url, limit)
                received = 0
                with dest.open("wb") as out:
                    for chunk in resp.iter_bytes(1 << 16):
                        received += len(chunk)
                        if received > limit:
                            raise self._too_large(url, limit)
                        out.write(chunk)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, OSError) as exc:
            raise failed from exc

    @staticmethod
    def _too_large(url: str, limit: int) -> BadRequestError:
        # TorchServe calls every failed download a bad request, an oversized one included.
        return bad_request(
            f"Failed to download archive from: {url}: archive exceeds the {limit}-byte limit",
            DOWNLOAD_FAILED,
        )

    def extract(self, archive: Path, kind: str) -> Path:
        """Extract into a fresh directory under ``ts-extracted/<kind>``; a directory is copied.

        Raises:
            DomainError: not an archive, traversal, too large (see ``errors.from_archive``).
        """
        dest = self.extracted / kind / uuid.uuid4().hex
        dest.parent.mkdir(parents=True, exist_ok=True)
        if archive.is_dir():
            shutil.copytree(archive, dest, symlinks=False)
            return dest
        try:
            return safe_extract(archive, dest, self.config.max_extract_bytes)
        except InvalidArchiveError as exc:
            if kind == "workflows":  # TorchServe names a workflow archive's own exception
                exc = InvalidArchiveError(exc.message, ts_type="InvalidWorkflowException")
            raise from_archive(exc) from exc
        except ArchiveError as exc:
            raise from_archive(exc) from exc

    def install_requirements(self, model_dir: Path, requirements: str | None, model: str) -> None:
        """pip-install a model's requirements into ``<model_dir>/.deps`` when enabled.

        Raises:
            StartFailedError: "Custom pip package installation failed for model <m>".
        """
        if not requirements or not self.config.install_py_dep_per_model:
            return
        req = model_dir / Path(requirements).name
        if not req.is_file():
            return
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--target",
                str(model_dir / ".deps"),
                "-r",
                str(req),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise start_failed(
                f"Custom pip package installation failed for model {model}", "ModelException"
            )

    @staticmethod
    def discard(path: str | Path | None) -> None:
        """Remove an extracted directory or a downloaded file (missing is fine)."""
        if not path:
            return
        target = Path(path)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
