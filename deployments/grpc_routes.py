"""Where model replicas serve ``ModelInfer`` themselves: a node-local route book of small files.

Each model replica runs its own gRPC server for unary inference on a loopback port
(:mod:`deployments.grpc_direct`) and writes one file here naming its model, port and pid; the
gRPC ingress on the same node (:mod:`deployments.grpc_front`) reads the book and routes each
``ModelInfer`` to those ports from HAProxy, so a request crosses one Python process, as an HTTP
``/infer`` does. The book is a directory per Ray cluster (named after the GCS address), so
clusters sharing a machine never see each other's replicas; a file whose pid is gone is stale
and dropped when read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import ray

from deployments.contracts.names import is_valid_name

logger = logging.getLogger(__name__)
ROUTES_DIR_ENV = "PLATFORM_GRPC_ROUTES_DIR"
DIRECT_ENV = "PLATFORM_GRPC_DIRECT"  # "0": model replicas run no gRPC server of their own


@dataclass(frozen=True, order=True)
class Route:
    """One model replica's own ``ModelInfer`` server."""

    model: str
    port: int
    pid: int
    host: str = "127.0.0.1"

    @property
    def address(self) -> str:
        """``host:port`` as HAProxy's ``server`` line takes it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def cluster_identity() -> str:
    """This Ray cluster's identity (its GCS address; ``local`` outside Ray)."""
    if not ray.is_initialized():
        return "local"
    return str(ray.get_runtime_context().gcs_address)


def direct_enabled() -> bool:
    """Whether model replicas serve gRPC inference themselves (``PLATFORM_GRPC_DIRECT``)."""
    return os.environ.get(DIRECT_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def routes_dir(identity: str) -> Path:
    """This cluster's route book on this node (``PLATFORM_GRPC_ROUTES_DIR`` overrides its root)."""
    root = Path(os.environ.get(ROUTES_DIR_ENV) or tempfile.gettempdir())
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return root / f"platform-grpc-routes-{digest}"


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def register(directory: Path, route: Route) -> Path:
    """Write ``route`` into the book (atomically: a reader never sees half a file)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{route.model}.{route.pid}.{route.port}.route"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(route), out)
    os.replace(tmp, path)
    return path


def unregister(path: Path) -> None:
    """Take a route out of the book (gone already is fine)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def scan(directory: Path) -> dict[str, tuple[Route, ...]]:
    """The live routes per model; files of dead processes are removed."""
    found: dict[str, list[Route]] = {}
    try:
        entries = sorted(directory.glob("*.route"))
    except OSError:
        return {}
    for path in entries:
        try:
            route = Route(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # being replaced, or not ours
        if not alive(route.pid):
            unregister(path)
            continue
        if not is_valid_name(route.model):
            continue
        found.setdefault(route.model, []).append(route)
    return {model: tuple(sorted(routes)) for model, routes in sorted(found.items())}
