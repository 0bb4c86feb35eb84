"""Real TorchServe 0.12 as a side-by-side peer (benchmarks and compat tests).

Runs ``torchserve --start --foreground --ncs --disable-token-auth`` (or, with ``token_auth``,
TorchServe's default token authorization, keys in ``<workdir>/key_file.json``) with a private
TMPDIR (its pid file lives there, so other TorchServe instances on the machine are never
touched), free loopback ports for every listener (REST and gRPC) in a generated
``config.properties``, and stops exactly the process group it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def torchserve_available() -> str | None:
    """Why real TorchServe cannot run here, or None when it can."""
    if shutil.which("java") is None:
        return "java is not installed"
    if not (Path(sys.executable).parent / "torchserve").exists():
        return "the torchserve wheel is not installed (pip install torchserve==0.12.0)"
    return None


class TorchServePeer:
    """One real TorchServe process tree with its own ports, stores and temp dir."""

    def __init__(
        self,
        workdir: Path,
        model_store: Path,
        workflow_store: Path | None = None,
        *,
        token_auth: bool = False,
    ) -> None:
        self.workdir = workdir
        self.token_auth = token_auth
        self.model_store = model_store
        self.workflow_store = workflow_store or model_store
        self.inference_port = free_port()
        self.management_port = free_port()
        self.metrics_port = free_port()
        self.inference_url = f"http://127.0.0.1:{self.inference_port}"
        self.management_url = f"http://127.0.0.1:{self.management_port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._env: dict[str, str] = {}

    def _write_config(self) -> Path:
        config = self.workdir / "config.properties"
        lines = {
            "inference_address": self.inference_url,
            "management_address": self.management_url,
            "metrics_address": f"http://127.0.0.1:{self.metrics_port}",
            "grpc_inference_port": str(free_port()),
            "grpc_management_port": str(free_port()),
            "disable_token_authorization": "false" if self.token_auth else "true",
            "enable_model_api": "true",
            "number_of_netty_threads": "32",
            "job_queue_size": "1000",
            "default_response_timeout": "300",
            "model_store": str(self.model_store),
            "workflow_store": str(self.workflow_store),
            "allowed_urls": "file://.*|http(s)?://.*",
            "vmargs": "-Xmx2g -XX:+ExitOnOutOfMemoryError",
        }
        config.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        return config

    def start(self, timeout_s: float = 180) -> TorchServePeer:
        """Start and wait until ``/ping`` answers.

        Raises:
            RuntimeError: TorchServe exited or did not answer in time (its log tail attached).
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        tmp = self.workdir / "tmp"
        tmp.mkdir(exist_ok=True)
        config = self._write_config()
        self._env = {
            **os.environ,
            "TMPDIR": str(tmp),
            "TEMP": str(tmp),
            "LOG_LOCATION": str(self.workdir / "logs"),
            "METRICS_LOCATION": str(self.workdir / "logs"),
        }
        cmd = [
            str(Path(sys.executable).parent / "torchserve"),
            "--start",
            "--foreground",
            "--ncs",
            *([] if self.token_auth else ["--disable-token-auth"]),
            "--enable-model-api",
            "--model-store",
            str(self.model_store),
            "--workflow-store",
            str(self.workflow_store),
            "--ts-config",
            str(config),
        ]
        log = (self.workdir / "torchserve.out").open("wb")
        self.process = subprocess.Popen(
            cmd,
            cwd=self.workdir,
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()  # whatever went wrong, the JVM this call started does not outlive it
            raise
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"torchserve exited: {self.log_tail()}")
            try:
                ping = httpx.get(f"{self.inference_url}/ping", headers=self.auth("inference"))
                if ping.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"torchserve did not start in {timeout_s}s: {self.log_tail()}")

    def keys(self) -> dict[str, str]:
        """The current keys of ``key_file.json`` by type (empty without token auth)."""
        path = self.workdir / "key_file.json"
        if not self.token_auth or not path.exists():
            return {}
        try:
            loaded = json.loads(path.read_text())
        except json.JSONDecodeError:  # TorchServe is still writing it (seen empty at start)
            return {}
        return {kind: entry["key"] for kind, entry in loaded.items()}

    def auth(self, kind: str) -> dict[str, str]:
        """``Authorization: Bearer <key>`` of a key type (``{}`` without token auth)."""
        key = self.keys().get(kind)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def log_tail(self, chars: int = 3000) -> str:
        """The end of TorchServe's console output."""
        path = self.workdir / "torchserve.out"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        """Stop the process group this object started (the JVM and its Python workers)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # workers run in the same session; make sure none survive the JVM
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                break
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        self.process = None

    def __enter__(self) -> TorchServePeer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
