"""The Triton-layout model repository on disk: safe paths and file overrides."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path, PurePosixPath

from control_plane.errors import BadRequestError
from deployments.contracts.names import is_valid_name


def check_model_name(name: str) -> str:
    """Validate a model name (it becomes a directory name).

    Raises:
        BadRequestError: empty, too long, bad characters, or a dot-only name.
    """
    if not is_valid_name(name):
        raise BadRequestError(
            f"invalid model name '{name}': use 1-128 letters, digits, '_', '-' or '.'"
        )
    return name


def safe_relative(path: str) -> PurePosixPath:
    """A relative path that stays inside its base directory.

    Raises:
        BadRequestError: absolute paths, ``..`` components or empty paths.
    """
    candidate = PurePosixPath(path.replace("\\", "/"))
    if not path or candidate.is_absolute() or ".." in candidate.parts or path.startswith("/"):
        raise BadRequestError(f"invalid path '{path}': must be relative and stay inside the model")
    return candidate


def ensure_inside(root: Path, directory: Path) -> Path:
    """Resolve ``directory`` and check that it, and every file under it, stay in ``root``.

    Raises:
        BadRequestError: the directory or a symlink inside it escapes the repository.
    """
    root = root.resolve()
    resolved = directory.resolve()
    if not resolved.is_relative_to(root):
        raise BadRequestError(f"model directory '{directory.name}' escapes the model repository")
    if resolved.is_dir():
        for path in resolved.rglob("*"):
            if path.is_symlink() and not path.resolve().is_relative_to(resolved):
                raise BadRequestError(
                    f"model '{directory.name}' contains a symlink leaving its directory: "
                    f"{path.relative_to(resolved)}"
                )
    return resolved


def write_override_files(target: Path, files: dict[str, str | bytes]) -> None:
    """Write ``file:<version>/<path>`` overrides (base64 strings or raw bytes) into ``target``.

    Raises:
        BadRequestError: bad key, bad path or bad base64.
    """
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for key, content in files.items():
        if not key.startswith("file:"):
            raise BadRequestError(f"unexpected load parameter '{key}'")
        relative = safe_relative(key[len("file:") :])
        if isinstance(content, str):
            try:
                data = base64.b64decode(content, validate=True)
            except ValueError:
                raise BadRequestError(f"parameter '{key}' is not valid base64") from None
        else:
            data = content
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)
