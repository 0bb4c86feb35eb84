"""TorchServe archives (Ray-free): safe extraction of ``.mar``/``.war`` and their MANIFEST.json.

Extraction refuses absolute paths, ``..`` components, links and device files, and stops when the
uncompressed size passes a limit (zip bombs). Manifest checks reproduce TorchServe 0.12's
messages (``WorkflowArchive``/``ModelArchive`` in its Java frontend).
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
    """An archive is unusable. ``status``/``ts_type`` are what TorchServe answers."""

    def __init__(self, message: str, status: int = 500, ts_type: str = "InvalidModelException"):
        super().__init__(message)
        self.message = message
        self.status = status
        self.ts_type = ts_type


def _check_member(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ArchiveError(
            f"Archive member {name!r} escapes the extraction directory", 400, "BadRequestException"
        )
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
        ArchiveError: not an archive, path traversal, links, or too large.
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
            raise ArchiveError(
                f"{archive.name} is not a valid archive (expected zip or tar.gz)",
                500,
                "InvalidModelException",
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
                raise ArchiveError(
                    f"Archive member {info.filename!r} is a symbolic link",
                    400,
                    "BadRequestException",
                )
            total += info.file_size
            if total > max_bytes:
                raise ArchiveError(
                    f"Archive {archive.name} expands beyond {max_bytes} bytes",
                    413,
                    "BadRequestException",
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
                raise ArchiveError(
                    f"Archive member {member.name!r} is not a regular file",
                    400,
                    "BadRequestException",
                )
            total += member.size
            if total > max_bytes:
                raise ArchiveError(
                    f"Archive {archive.name} expands beyond {max_bytes} bytes",
                    413,
                    "BadRequestException",
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
        raise ArchiveError(f"Invalid MANIFEST.json: {exc}", 500, "InvalidModelException") from exc
    if not isinstance(loaded, dict):
        raise ArchiveError("Invalid MANIFEST.json: not an object", 500, "InvalidModelException")
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
    """Read and validate a workflow manifest (TorchServe's order and messages, all 500).

    Raises:
        ArchiveError: InvalidWorkflowException for each missing field.
    """
    data = _read_json(war_dir / "WAR-INF" / "MANIFEST.json")

    def fail(message: str) -> ArchiveError:
        return ArchiveError(message, 500, "InvalidWorkflowException")

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
        ArchiveError: 400 "Model name is not defined." / invalid runtime; 500 missing handler.
    """
    data = _read_json(model_dir / "MAR-INF" / "MANIFEST.json")
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    assert isinstance(model, dict)
    name = model_name or model.get("modelName")
    if not name:
        raise ArchiveError("Model name is not defined.", 400, "ModelException")
    runtime = str(data.get("runtime") or "python")
    if runtime not in RUNTIMES:
        raise ArchiveError(f"Invalid RuntimeType value: {runtime}", 400, "ModelException")
    handler = model.get("handler")
    if not handler:
        raise ArchiveError("Model handler is not defined.", 500, "InvalidModelException")
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
