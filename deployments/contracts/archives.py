"""TorchServe archives (Ray-free): safe extraction of ``.mar``/``.war`` and their MANIFEST.json.

Extraction refuses absolute paths, ``..`` components, links and device files, and stops when the
uncompressed size passes a limit (zip bombs). Manifest checks reproduce TorchServe 0.12's
messages (``WorkflowArchive``/``ModelArchive`` in its Java frontend). Each kind of problem is its
own exception class; which HTTP status a surface answers for it is decided by that surface.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any


class ArchiveError(Exception):
    """An archive, its manifest or its workflow spec cannot be used; base of the kinds below.

    Attributes:
        message: the text TorchServe answers with.
        ts_type: the TorchServe exception name clients see (``InvalidModelException``...).
    """

    ts_type: str = "InvalidModelException"

    def __init__(self, message: str, *, ts_type: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if ts_type is not None:
            self.ts_type = ts_type


class InvalidArchiveError(ArchiveError):
    """The archive is unusable: not a zip/tar, a broken manifest, spec or missing file."""


class UnsafeArchiveError(ArchiveError):
    """The archive is refused for safety: a member escapes the directory, links, devices."""

    ts_type = "BadRequestException"


class ArchiveTooLargeError(ArchiveError):
    """The archive expands beyond the configured limit (zip bomb guard)."""

    ts_type = "BadRequestException"


class ArchiveRequestError(ArchiveError):
    """The registration request and the archive together name nothing valid (name, runtime)."""

    ts_type = "ModelException"


def _check_member(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UnsafeArchiveError(f"Archive member {name!r} escapes the extraction directory")
    return path


def safe_extract(archive: Path, dest: Path, max_bytes: int) -> Path:
    """Extract a zip or tar(.gz) archive into ``dest`` (replaced if it exists).

    Args:
        archive: the ``.mar``/``.war`` file.
        dest: target directory; created fresh.
        max_bytes: largest total uncompressed size accepted.

    Returns:
        ``dest``.

    Raises:
        InvalidArchiveError: not an archive.
        UnsafeArchiveError: path traversal, links or devices.
        ArchiveTooLargeError: too large.
    """
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, tmp, max_bytes)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, tmp, max_bytes)
        else:
            raise InvalidArchiveError(
                f"{archive.name} is not a valid archive (expected zip or tar.gz)"
            )
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def ensure_extracted(archive: Path, dest: Path, max_bytes: int) -> Path:
    """Extract ``archive`` into ``dest`` unless a previous extraction is already there.

    A directory "archive" (TorchServe's ``no-archive`` format) is used in place.
    """
    if archive.is_dir():
        return archive
    if dest.is_dir():
        return dest
    return safe_extract(archive, dest, max_bytes)


def _extract_zip(archive: Path, dest: Path, max_bytes: int) -> None:
    total = 0
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            rel = _check_member(info.filename)
            mode = (info.external_attr >> 16) & 0o170000
            if mode == 0o120000:
                raise UnsafeArchiveError(f"Archive member {info.filename!r} is a symbolic link")
            total += info.file_size
            if total > max_bytes:
                raise ArchiveTooLargeError(
                    f"Archive {archive.name} expands beyond {max_bytes} bytes"
                )
            target = dest.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out)


def _extract_tar(archive: Path, dest: Path, max_bytes: int) -> None:
    total = 0
    with tarfile.open(archive) as tf:
        for member in tf.getmembers():
            rel = _check_member(member.name)
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(f"Archive member {member.name!r} is not a regular file")
            total += member.size
            if total > max_bytes:
                raise ArchiveTooLargeError(
                    f"Archive {archive.name} expands beyond {max_bytes} bytes"
                )
            target = dest.joinpath(*rel.parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(member)
            if src is None:
                continue
            with src, target.open("wb") as out:
                shutil.copyfileobj(src, out)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}  # TorchServe treats a missing manifest as an empty one
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArchiveError(f"Invalid MANIFEST.json: {exc}") from exc
    if not isinstance(loaded, dict):
        raise InvalidArchiveError("Invalid MANIFEST.json: not an object")
    return loaded


@dataclass(frozen=True)
class WarManifest:
    """``WAR-INF/MANIFEST.json`` of a workflow archive."""

    workflow_name: str
    spec_file: str
    handler: str
    archiver_version: str
    created_on: str
    description: str | None = None


def read_war_manifest(war_dir: Path, workflow_name: str | None = None) -> WarManifest:
    """Read and validate a workflow manifest (TorchServe's order and messages).

    Raises:
        InvalidArchiveError: InvalidWorkflowException for each missing field.
    """
    data = _read_json(war_dir / "WAR-INF" / "MANIFEST.json")

    def fail(message: str) -> InvalidArchiveError:
        return InvalidArchiveError(message, ts_type="InvalidWorkflowException")

    workflow = data.get("workflow")
    if not isinstance(workflow, dict):
        raise fail("Missing Workflow entry in manifest file.")
    name = workflow_name or workflow.get("workflowName")
    if not name:
        raise fail("Workflow name is not defined.")
    if not data.get("archiverVersion"):
        raise fail("Workflow archive version is not defined.")
    if not data.get("createdOn"):
        raise fail("Workflow archive createdOn is not defined.")
    handler = workflow.get("handler")
    if not handler:
        raise fail("Workflow handler is not defined.")
    spec_file = workflow.get("specFile")
    if not spec_file:
        raise fail("Workflow specFile is not defined.")
    return WarManifest(
        workflow_name=str(name),
        spec_file=Path(str(spec_file)).name,
        handler=Path(str(handler)).name,
        archiver_version=str(data["archiverVersion"]),
        created_on=str(data["createdOn"]),
        description=data.get("description"),
    )


@dataclass(frozen=True)
class MarManifest:
    """``MAR-INF/MANIFEST.json`` of a model archive (the fields the server reads)."""

    model_name: str
    model_version: str
    handler: str
    runtime: str = "python"
    serialized_file: str | None = None
    model_file: str | None = None
    requirements_file: str | None = None
    config_file: str | None = None
    envelope: str | None = None
    raw: dict[str, Any] | None = None


RUNTIMES = ("python", "python3", "LSP")


def read_mar_manifest(model_dir: Path, model_name: str | None = None) -> MarManifest:
    """Read and validate a model manifest.

    Raises:
        ArchiveRequestError: "Model name is not defined." / invalid runtime.
        InvalidArchiveError: no handler.
    """
    data = _read_json(model_dir / "MAR-INF" / "MANIFEST.json")
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    assert isinstance(model, dict)
    name = model_name or model.get("modelName")
    if not name:
        raise ArchiveRequestError("Model name is not defined.")
    runtime = str(data.get("runtime") or "python")
    if runtime not in RUNTIMES:
        raise ArchiveRequestError(f"Invalid RuntimeType value: {runtime}")
    handler = model.get("handler")
    if not handler:
        raise InvalidArchiveError("Model handler is not defined.")
    return MarManifest(
        model_name=str(name),
        model_version=str(model.get("modelVersion") or "1.0"),
        handler=str(handler),
        runtime=runtime,
        serialized_file=model.get("serializedFile"),
        model_file=model.get("modelFile"),
        requirements_file=model.get("requirementsFile"),
        config_file=model.get("configFile"),
        envelope=model.get("envelope"),
        raw=data,
    )
