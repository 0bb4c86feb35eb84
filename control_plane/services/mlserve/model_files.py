"""Safe file handling for the model store: relative paths, uploads, zip/tar extraction.

Every name from a client is checked before anything is written: absolute paths, ``..``,
backslashes, NUL bytes, symlinks/hardlinks/devices inside archives are refused with a 400, and
byte limits are enforced while copying (413), so nothing is ever written outside the target.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, cast

from control_plane.errors import BadRequestError, PayloadTooLargeError

CHUNK = 1024 * 1024
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
ROOT_FILES = ("config.pbtxt",)


@dataclass
class IncomingFile:
    """One uploaded multipart part: the client's file name and a readable stream."""

    filename: str
    stream: BinaryIO


def safe_relpath(name: str) -> PurePosixPath:
    """A client-supplied relative path, normalised, or a 400 naming the problem.

    Raises:
        BadRequestError: empty, absolute, ``..``, backslash or NUL in the name.
    """
    if not name or "\x00" in name or "\\" in name:
        raise BadRequestError(f"unsafe file name {name!r}", code="unsafe_path")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise BadRequestError(f"absolute path {name!r} is not allowed", code="unsafe_path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise BadRequestError(f"path {name!r} escapes the model directory", code="unsafe_path")
    return PurePosixPath(*parts)


def ensure_inside(root: Path, path: Path) -> Path:
    """``path`` resolved, provided it stays under ``root``.

    Raises:
        BadRequestError: the path resolves outside ``root``.
    """
    resolved = path.resolve()
    if resolved != root.resolve() and root.resolve() not in resolved.parents:
        raise BadRequestError(f"path {path} escapes the store", code="unsafe_path")
    return resolved


class ByteBudget:
    """Counts bytes written against a limit; exceeding it is a 413."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, n: int) -> None:
        """Account for ``n`` more bytes.

        Raises:
            PayloadTooLargeError: the total passed the limit.
        """
        self.used += n
        if self.used > self.limit:
            raise PayloadTooLargeError(
                f"upload exceeds the limit of {self.limit} bytes",
                code="upload_too_large",
                limit=self.limit,
            )


def copy_stream(stream: BinaryIO, target: Path, budget: ByteBudget, *, append: bool = False) -> int:
    """Copy a stream into ``target`` (creating parents) within the budget; returns bytes written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(target, "ab" if append else "wb") as out:
        while True:
            block = stream.read(CHUNK)
            if not block:
                break
            budget.take(len(block))
            out.write(block)
            written += len(block)
    return written


def is_archive(name: str) -> bool:
    """True for ``.zip``, ``.tar.gz``, ``.tgz`` and ``.tar`` names."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _zip_is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def extract_archive(archive: Path, dest: Path, budget: ByteBudget) -> None:
    """Extract a zip or tar(.gz) into ``dest`` after checking every member.

    Raises:
        BadRequestError: not an archive, or a member is unsafe (traversal, absolute, link).
        PayloadTooLargeError: the uncompressed content passes the budget.
    """
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                if _zip_is_symlink(info):
                    raise BadRequestError(
                        f"archive member {info.filename!r} is a symlink", code="unsafe_path"
                    )
                safe_relpath(info.filename)
            for info in members:
                target = dest / safe_relpath(info.filename)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                with zf.open(info) as src:
                    copy_stream(src, target, budget)  # type: ignore[arg-type]
        return
    try:
        tf = tarfile.open(archive, "r:*")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError):
        raise BadRequestError(
            "upload is neither a zip nor a tar archive", code="bad_archive"
        ) from None
    with tf:
        tar_members = tf.getmembers()
        for member in tar_members:
            if not (member.isfile() or member.isdir()):
                raise BadRequestError(
                    f"archive member {member.name!r} is a link or special file", code="unsafe_path"
                )
            safe_relpath(member.name)
        for member in tar_members:
            tar_target = dest / safe_relpath(member.name)
            if member.isdir():
                tar_target.mkdir(parents=True, exist_ok=True)
                continue
            extracted = tf.extractfile(member)
            if extracted is None:
                raise BadRequestError(
                    f"cannot read archive member {member.name!r}", code="bad_archive"
                )
            with extracted:
                copy_stream(cast(BinaryIO, extracted), tar_target, budget)


def hoist_single_dir(model_dir: Path) -> str | None:
    """When an archive wrapped the model in one top directory, move its content up.

    Returns:
        The wrapper directory's name (a model name hint), or None.
    """
    if (model_dir / "config.pbtxt").exists():
        return None
    entries = [p for p in model_dir.iterdir() if not p.name.startswith(".")]
    if len(entries) != 1 or not entries[0].is_dir() or entries[0].name.isdigit():
        return None
    inner = entries[0]
    for child in list(inner.iterdir()):
        shutil.move(str(child), str(model_dir / child.name))
    inner.rmdir()
    return inner.name


def version_dirs(model_dir: Path) -> list[int]:
    """Numeric version directories Triton would serve (no leading zero), sorted."""
    if not model_dir.is_dir():
        return []
    return sorted(
        int(p.name)
        for p in model_dir.iterdir()
        if p.is_dir() and p.name.isdigit() and not p.name.startswith("0")
    )


def list_files(directory: Path) -> list[tuple[str, int]]:
    """``(relative posix path, size)`` of every regular file under ``directory``, sorted."""
    if not directory.is_dir():
        return []
    out = []
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out.append((path.relative_to(directory).as_posix(), path.stat().st_size))
    return out


def override_files(model_dir: Path, versions: Iterable[int]) -> dict[str, bytes]:
    """``file:<path>`` contents for a repository load override.

    Root files (except config.pbtxt) and every file of the given version directories.
    """
    wanted = {str(v) for v in versions}
    files: dict[str, bytes] = {}
    for rel, _size in list_files(model_dir):
        top = rel.split("/", 1)[0]
        if rel == "config.pbtxt" or rel.endswith(".part"):
            continue
        if "/" not in rel or top in wanted:
            files[f"file:{rel}"] = (model_dir / rel).read_bytes()
    return files


def default_place(rel: PurePosixPath) -> PurePosixPath:
    """Where a bare file name goes in a new model: config and labels at the root, else ``1/``."""
    if len(rel.parts) > 1 or rel.name in ROOT_FILES or rel.suffix == ".txt":
        return rel
    return PurePosixPath("1") / rel
