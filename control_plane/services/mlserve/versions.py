"""Model versions: list, plain or resumable chunked upload with a digest check, delete.

Uploads are assembled under ``<store>/.mlserve-staging/uploads/<model id>/<version>/`` and only
moved into the model directory (where tritons see them) once complete and verified.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.db.tables.mlserve import ModelVersion
from control_plane.db.tables.registered_models import RegisteredModel
from control_plane.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    InvalidStateError,
    NotFoundError,
)
from control_plane.schemas.mlserve.models import VersionRead, VersionUploaded
from control_plane.services.artifact_store import ArtifactStore
from control_plane.services.mlserve.model_files import (
    ByteBudget,
    IncomingFile,
    copy_stream,
    list_files,
    safe_relpath,
    version_dirs,
)
from control_plane.settings import Settings

PART = ".part"
_HEX = re.compile(r"^[0-9a-fA-F]+$")


@dataclass(frozen=True)
class Digest:
    """An expected file digest: algorithm and lower-case hex."""

    algorithm: str
    hexdigest: str

    def matches(self, path: Path) -> bool:
        """True when the file's digest equals the expected one."""
        h = hashlib.new(self.algorithm)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1024 * 1024), b""):
                h.update(block)
        return h.hexdigest() == self.hexdigest


def parse_digest(text: str) -> Digest:
    """``md5:<hex>``, ``sha256:<hex>``, or bare 32-hex (md5) / 64-hex (sha256).

    Raises:
        BadRequestError: anything else.
    """
    text = text.strip()
    algorithm, sep, value = text.partition(":")
    if not sep:
        algorithm, value = {32: "md5", 64: "sha256"}.get(len(text), ""), text
    algorithm = algorithm.lower()
    expected = {"md5": 32, "sha256": 64}.get(algorithm)
    if expected is None or len(value) != expected or not _HEX.match(value):
        raise BadRequestError(
            f"Got check {text!r}; use md5:<32 hex> or sha256:<64 hex>", code="invalid_check"
        )
    return Digest(algorithm, value.lower())


def parse_checks(check: str | None, names: builtins.list[str]) -> dict[str, Digest]:
    """Expected digests per file: one digest for a single file, or a JSON object by name.

    Raises:
        BadRequestError: malformed check, or a JSON key naming no uploaded file.
    """
    if not check:
        return {}
    text = check.strip()
    if text.startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadRequestError(f"check is not valid JSON: {exc}", code="invalid_check") from None
        out = {}
        for key, value in raw.items():
            rel = str(safe_relpath(str(key)))
            if rel not in names:
                raise BadRequestError(
                    f"check names {key!r}, which is not in the upload", code="invalid_check"
                )
            out[rel] = parse_digest(str(value))
        return out
    if len(names) != 1:
        raise BadRequestError(
            "with several files, check must be a JSON object {file: digest}", code="invalid_check"
        )
    return {names[0]: parse_digest(text)}


class VersionService:
    """Versions of one stored model."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.staging_root = settings.store_root / ".mlserve-staging" / "uploads"

    def model_dir(self, model: RegisteredModel) -> Path:
        """The model's store directory."""
        ArtifactStore.from_settings(self.settings).fetch(model.source_dir)
        return self.settings.store_root / model.source_dir

    def staging_dir(self, model: RegisteredModel, version: int) -> Path:
        """Where an upload of ``version`` is assembled."""
        return self.staging_root / str(model.id) / str(version)

    def _rows(self, model: RegisteredModel) -> dict[int, ModelVersion]:
        rows = self.session.scalars(select(ModelVersion).where(ModelVersion.model_id == model.id))
        return {r.version: r for r in rows}

    def list(self, model: RegisteredModel) -> builtins.list[VersionRead]:
        """Ready versions (on disk) and uploads in progress, ascending."""
        rows = self._rows(model)
        out = []
        for version in version_dirs(self.model_dir(model)):
            row = rows.get(version)
            path = self.model_dir(model) / str(version)
            created = row.created_at if row else datetime.fromtimestamp(path.stat().st_mtime, UTC)
            files = [{"name": n, "size": s} for n, s in list_files(path)]
            out.append(VersionRead(version=version, state="ready", files=files, create_at=created))
        ready = {v.version for v in out}
        for version, row in sorted(rows.items()):
            if row.state == "uploading" and version not in ready:
                files = [
                    {"name": n.removesuffix(PART), "size": s, "complete": not n.endswith(PART)}
                    for n, s in list_files(self.staging_dir(model, version))
                ]
                out.append(
                    VersionRead(
                        version=version, state="uploading", files=files, create_at=row.created_at
                    )
                )
        return sorted(out, key=lambda v: v.version)

    def _next_version(self, model: RegisteredModel) -> int:
        used = set(version_dirs(self.model_dir(model))) | set(self._rows(model))
        return max(used, default=0) + 1

    def upload(
        self,
        model: RegisteredModel,
        files: builtins.list[IncomingFile],
        *,
        version: int | None = None,
        offset: int | None = None,
        check: str | None = None,
    ) -> VersionUploaded:
        """Plain upload (a new ready version) or one chunk of a resumable upload.

        Raises:
            BadRequestError: no/unsafe files, bad check, or a digest mismatch.
            AlreadyExistsError: the version exists already.
            ConflictError: the chunk offset differs from the bytes received (``offset`` detail).
            PayloadTooLargeError: over ``store.max_upload_bytes``.
        """
        if not files:
            raise BadRequestError("no Files[] parts in the upload", code="no_files")
        if version is not None and version < 1:
            raise BadRequestError(
                f"Got version {version}; versions start at 1", code="invalid_version"
            )
        if offset is not None:
            return self._chunk(model, files, version, offset, check)
        return self._plain(model, files, version, check)

    def _plain(
        self,
        model: RegisteredModel,
        files: builtins.list[IncomingFile],
        version: int | None,
        check: str | None,
    ) -> VersionUploaded:
        version = version or self._next_version(model)
        if version in version_dirs(self.model_dir(model)) or version in self._rows(model):
            raise AlreadyExistsError(
                f"version {version} of '{model.name}' already exists", code="version_exists"
            )
        names = [str(safe_relpath(f.filename)) for f in files]
        if len(set(names)) != len(names):
            raise BadRequestError("the upload names the same file twice", code="duplicate_file")
        digests = parse_checks(check, names)
        staging = self.staging_dir(model, version)
        shutil.rmtree(staging, ignore_errors=True)
        try:
            budget = ByteBudget(self.settings.store.max_upload_bytes)
            for upload, name in zip(files, names, strict=True):
                copy_stream(upload.stream, staging / name, budget)
            for name, digest in digests.items():
                if not digest.matches(staging / name):
                    raise BadRequestError(
                        f"{digest.algorithm} of {name} does not match check",
                        code="checksum_mismatch",
                    )
            (staging).rename(self._prepare_target(model, version))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.session.add(ModelVersion(model_id=model.id, version=version, state="ready", upload={}))
        self.session.commit()
        return VersionUploaded(version=version, status="ok")

    def _prepare_target(self, model: RegisteredModel, version: int) -> Path:
        target = self.model_dir(model) / str(version)
        if target.exists():
            raise AlreadyExistsError(
                f"version {version} of '{model.name}' already exists", code="version_exists"
            )
        return target

    def _chunk(
        self,
        model: RegisteredModel,
        files: builtins.list[IncomingFile],
        version: int | None,
        offset: int,
        check: str | None,
    ) -> VersionUploaded:
        if len(files) != 1:
            raise BadRequestError(
                "a chunked upload carries exactly one file part", code="one_file_per_chunk"
            )
        if offset < 0:
            raise BadRequestError(f"Got offset {offset}; it must be >= 0", code="invalid_offset")
        rows = self._rows(model)
        if version is None:
            uploading = [v for v, r in rows.items() if r.state == "uploading"]
            version = max(uploading) if uploading else self._next_version(model)
        row = rows.get(version)
        if version in version_dirs(self.model_dir(model)) or (
            row is not None and row.state != "uploading"
        ):
            raise AlreadyExistsError(
                f"version {version} of '{model.name}' already exists", code="version_exists"
            )
        name = str(safe_relpath(files[0].filename))
        staging = self.staging_dir(model, version)
        part = staging / (name + PART)
        current = part.stat().st_size if part.exists() else 0
        if offset != current:
            raise ConflictError(
                f"offset {offset} does not match the {current} bytes received for {name}",
                code="offset_mismatch",
                offset=current,
                version=version,
            )
        if row is None:
            row = ModelVersion(model_id=model.id, version=version, state="uploading", upload={})
            self.session.add(row)
            self.session.commit()
        budget = ByteBudget(self.settings.store.max_upload_bytes - current)
        size = current + copy_stream(files[0].stream, part, budget, append=True)
        row.upload = {**(row.upload or {}), name: size}
        self.session.commit()
        if not check:
            return VersionUploaded(version=version, status="partial", offset=size, file=name)
        digest = parse_digest(check)
        if not digest.matches(part):
            part.unlink()
            progress = dict(row.upload or {})
            progress.pop(name, None)
            row.upload = progress
            if not list_files(staging):
                shutil.rmtree(staging, ignore_errors=True)
                self.session.delete(row)
            self.session.commit()
            raise BadRequestError(
                f"{digest.algorithm} of {name} does not match check; the upload was discarded",
                code="checksum_mismatch",
            )
        part.rename(staging / name)
        if any(n.endswith(PART) for n, _s in list_files(staging)):
            return VersionUploaded(version=version, status="partial", offset=size, file=name)
        staging.rename(self._prepare_target(model, version))
        row.state, row.upload = "ready", {}
        self.session.commit()
        return VersionUploaded(version=version, status="ok", offset=size, file=name)

    def delete(self, model: RegisteredModel, version: int) -> bool:
        """Delete a version (or abandon an upload); returns True when a ready version went.

        Raises:
            NotFoundError: no such version.
            InvalidStateError: it is the only ready version.
        """
        rows = self._rows(model)
        ready = version_dirs(self.model_dir(model))
        row = rows.get(version)
        if version not in ready:
            if row is None:
                raise NotFoundError(
                    f"model '{model.name}' has no version {version}", code="version_not_found"
                )
            shutil.rmtree(self.staging_dir(model, version), ignore_errors=True)
            self.session.delete(row)
            self.session.commit()
            return False
        if len(ready) == 1:
            raise InvalidStateError(
                f"version {version} is the only version of '{model.name}'; "
                "delete the model instead",
                code="last_version",
            )
        trash = (
            self.staging_root.parent / f"trash-{model.id}-{version}-{datetime.now(UTC).timestamp()}"
        )
        trash.parent.mkdir(parents=True, exist_ok=True)
        (self.model_dir(model) / str(version)).rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
        if row is not None:
            self.session.delete(row)
        self.session.commit()
        return True

    def drop_staging(self, model_id: int) -> None:
        """Remove every upload in progress of a deleted model."""
        shutil.rmtree(self.staging_root / str(model_id), ignore_errors=True)
