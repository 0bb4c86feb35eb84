"""A real tritonserver 2.51 (from the ``nvidia-pytriton==0.7.0`` wheel) for compatibility tests.

The wheel bundles a CPU-capable ``tritonserver`` binary, the python backend and its shared libs
(reference §7). It pins ``numpy<2``, so it is NOT installed into the project's environment (that
would downgrade numpy for everyone); instead it is downloaded with pip (``--no-deps``) and unzipped
once into a cache under ``<repo>/var/cache/``, next to a small venv holding ``numpy<2`` for the
python backend stub (with numpy 2 every infer fails: "output tensor shape does not match size").

Usage::

    from tests.compat.tritonserver import start_tritonserver

    triton = start_tritonserver(Path("configs/models"))
    client = tritonclient.http.InferenceServerClient(triton.url)
    ...
    triton.stop()

or the session fixture ``tritonserver`` (re-exported by ``tests/compat/conftest.py``). When the
wheel cannot be fetched or the server does not start, the fixture skips with the reason.

Environment knobs: ``TRITONSERVER_CACHE`` (cache directory), ``TRITONSERVER_WHEEL`` (a local
wheel file instead of downloading one).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
WHEEL_SPEC = "nvidia-pytriton==0.7.0"
EXAMPLE_MODELS = ROOT / "configs" / "models"
_PY = f"{sys.version_info.major}.{sys.version_info.minor}"


class TritonUnavailable(RuntimeError):
    """The real tritonserver cannot be prepared or started here (the reason is the message)."""


def cache_dir() -> Path:
    """Where the unzipped wheel and the numpy<2 venv live."""
    return Path(os.environ.get("TRITONSERVER_CACHE", ROOT / "var" / "cache" / "pytriton-0.7.0"))


def _run(cmd: list[str], what: str, timeout_s: float = 600) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise TritonUnavailable(f"{what} failed: {' | '.join(tail)}")


def _unzip_server(wheel: Path, dest: Path) -> None:
    """Extract the server, backends, stubs and libs, keeping the executable bits."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            if not (
                name.startswith("pytriton/tritonserver/")
                or name.startswith("nvidia_pytriton.libs/")
            ):
                continue
            target = dest / name
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                target.chmod(mode)


def prepare_tritonserver() -> Path:
    """Download/unzip the wheel and build the numpy<2 venv once; returns the cache dir.

    Raises:
        TritonUnavailable: when the platform is unsupported or a step fails.
    """
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        raise TritonUnavailable(f"{WHEEL_SPEC} ships linux x86_64 binaries only")
    root = cache_dir()
    ready = root / f".ready-py{_PY}"
    if ready.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        # Several test sessions (CI shards, other engineers) may prepare the cache at once.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return root
        wheel_env = os.environ.get("TRITONSERVER_WHEEL")
        if wheel_env:
            wheel = Path(wheel_env)
        else:
            dl = root / "download"
            dl.mkdir(exist_ok=True)
            found = sorted(dl.glob("nvidia_pytriton-0.7.0-*.whl"))
            if not found:
                _run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "-q",
                        "--no-deps",
                        "-d",
                        str(dl),
                        WHEEL_SPEC,
                    ],
                    f"pip download {WHEEL_SPEC}",
                )
                found = sorted(dl.glob("nvidia_pytriton-0.7.0-*.whl"))
            if not found:
                raise TritonUnavailable(f"pip download {WHEEL_SPEC} produced no wheel")
            wheel = found[0]
        _unzip_server(wheel, root)
        stub = (
            root / "pytriton/tritonserver/python_backend_stubs" / _PY / "triton_python_backend_stub"
        )
        if not stub.exists():
            raise TritonUnavailable(f"the wheel has no python backend stub for Python {_PY}")
        target = root / "pytriton/tritonserver/backends/python/triton_python_backend_stub"
        shutil.copy2(stub, target)
        target.chmod(0o755)
        venv = root / "pyenv"
        if not (venv / "bin" / "python").exists():
            _run([sys.executable, "-m", "venv", str(venv)], "creating the numpy<2 venv")
        _run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "numpy<2"],
            "pip install numpy<2",
        )
        ready.touch()
    return root


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TritonProcess:
    """A running tritonserver; ``url`` is ``host:port`` as tritonclient wants it."""

    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    metrics_port: int
    model_repo: Path
    log_path: Path
    _log_file: object = field(repr=False, default=None)

    @property
    def url(self) -> str:
        """``127.0.0.1:<http_port>`` (no scheme, tritonclient style)."""
        return f"127.0.0.1:{self.http_port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<http_port>`` for httpx."""
        return f"http://{self.url}"

    def kill_leftovers(self) -> None:
        """SIGKILL what is left of the server's process group once the server itself is gone.

        A crashed tritonserver leaves its python-backend stubs running, and they hold the
        accepted client connections open: a client then waits its whole network timeout.
        """
        if self.process.poll() is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def log(self) -> str:
        """The server's log so far (for assertion messages)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout_s: float = 15) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time; then its leftover backend stubs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.kill_leftovers()
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None


def start_tritonserver(model_repo: Path, *, timeout_s: float = 60) -> TritonProcess:
    """Start a real tritonserver 2.51 on free loopback ports in explicit model-control mode.

    Args:
        model_repo: the Triton model repository directory (may be empty).
        timeout_s: how long to wait for ``/v2/health/ready``.

    Returns:
        The running server (call ``.stop()``).

    Raises:
        TritonUnavailable: when it cannot be prepared or does not become ready.
    """
    root = prepare_tritonserver()
    server = root / "pytriton/tritonserver"
    ports = [_free_port() for _ in range(3)]
    while len(set(ports)) < 3:
        ports = [_free_port() for _ in range(3)]
    http_port, grpc_port, metrics_port = ports
    log_path = Path(tempfile.mkstemp(prefix="tritonserver-", suffix=".log")[1])
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed by TritonProcess.stop
    env = {
        "PATH": f"{root / 'pyenv' / 'bin'}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LD_LIBRARY_PATH": str(root / "nvidia_pytriton.libs"),
        "LANG": "C.UTF-8",
    }
    cmd = [
        str(server / "bin" / "tritonserver"),
        f"--model-repository={Path(model_repo).resolve()}",
        f"--backend-directory={server / 'backends'}",
        "--model-control-mode=explicit",
        "--http-address=127.0.0.1",
        f"--http-port={http_port}",
        "--grpc-address=127.0.0.1",
        f"--grpc-port={grpc_port}",
        f"--metrics-port={metrics_port}",
        "--allow-gpu-metrics=false",
        "--strict-readiness=true",
        "--exit-timeout-secs=5",
    ]
    proc = subprocess.Popen(  # its own process group: the stubs go with it (kill_leftovers)
        cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    triton = TritonProcess(
        proc, http_port, grpc_port, metrics_port, Path(model_repo), log_path, log_file
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            triton.stop()
            raise TritonUnavailable(
                f"tritonserver exited with {proc.returncode}: {triton.log()[-1500:]}"
            )
        try:
            if httpx.get(f"{triton.base_url}/v2/health/ready", timeout=2).status_code == 200:
                return triton
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    triton.stop()
    raise TritonUnavailable(f"tritonserver not ready after {timeout_s}s: {triton.log()[-1500:]}")


@pytest.fixture(scope="session", name="tritonserver")
def tritonserver_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonProcess]:
    """A real tritonserver for the session; its repository holds a copy of configs/models/*.

    Models are not loaded (explicit mode): tests call ``load_model`` themselves.
    """
    repo = tmp_path_factory.mktemp("triton_repo")
    for model_dir in sorted(EXAMPLE_MODELS.iterdir()) if EXAMPLE_MODELS.is_dir() else []:
        if model_dir.is_dir() and (model_dir / "config.pbtxt").exists():
            shutil.copytree(model_dir, repo / model_dir.name)
    try:
        triton = start_tritonserver(repo)
    except (TritonUnavailable, OSError, subprocess.SubprocessError) as exc:
        reason = f"real tritonserver unavailable: {exc}"
        print(reason)
        pytest.skip(reason)
    try:
        yield triton
    finally:
        triton.stop()
