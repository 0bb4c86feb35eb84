"""The real torc clients, each in a virtualenv of its own, against a control plane on a real port.

torc-client 0.8.0 and 0.35.0 both install as the package ``torc``, so neither can live in the
project's venv next to the other: each gets a venv made by the test setup under ``var/cache/``
on first use (reused while it still holds the pinned version), and its scenario script runs
there as a subprocess against the control plane served by uvicorn in this process.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from control_plane.settings import Settings
from tests.conftest import ROOT, free_port
from tests.fakes import FakeServeGateway

CACHE = ROOT / "var" / "cache"


def client_python(venv_name: str, distribution: str, version: str) -> Path:
    """The python of ``var/cache/<venv_name>`` with ``distribution==version`` installed."""
    venv = CACHE / venv_name
    python = venv / "bin" / "python"
    probe = [
        str(python),
        "-c",
        f"import importlib.metadata as m; print(m.version({distribution!r}))",
    ]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True, check=False)
        if found.stdout.strip() == version:
            return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"{distribution}=={version}"],
        check=True,
        timeout=600,
    )
    found = subprocess.run(probe, capture_output=True, text=True, check=True)
    assert found.stdout.strip() == version, f"{venv} holds {distribution} {found.stdout.strip()}"
    return python


@contextmanager
def torc_service_url(data_dir: Path, db_url: str) -> Iterator[str]:
    """The control plane on a free port of 127.0.0.1; yields its ``/torc-service/v1`` URL."""
    from control_plane.app import create_app

    settings = Settings(data_dir=str(data_dir), db={"url": db_url})
    app = create_app(settings, gateway_factory=FakeServeGateway, run_startup_hooks=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/torc-service/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
