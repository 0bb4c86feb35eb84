"""The Torc API driven by the real ``torc-client==0.35.0`` (API 0.21) in its own venv.

Both client generations install as the package ``torc``, so 0.35.0 lives in a venv of its
own (``var/cache/torc-035-venv``, made on first use) and runs ``torc035_scenario.py`` as a
subprocess against the control plane served over real HTTP, on SQLite and PostgreSQL.
The same server keeps answering torc-client 0.8.0 (``test_torc_client.py``).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from control_plane.settings import Settings
from tests.conftest import ROOT, free_port
from tests.fakes import FakeServeGateway

VENV = ROOT / "var" / "cache" / "torc-035-venv"
SCENARIO = Path(__file__).with_name("torc035_scenario.py")


def _venv_python() -> Path:
    """The venv's python, with torc-client 0.35.0 installed (built once, then reused)."""
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import importlib.metadata as m; print(m.version('torc-client'))"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True, check=False)
        if found.stdout.strip() == "0.35.0":
            return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "torc-client==0.35.0"],
        check=True,
        timeout=600,
    )
    return python


@pytest.fixture(scope="session", name="torc035_python")
def torc035_python_fixture() -> Path:
    return _venv_python()


@pytest.fixture(name="base_url")
def base_url_fixture(tmp_path: Path, db_url: str) -> Iterator[str]:
    """The control plane on a real port."""
    from control_plane.app import create_app

    settings = Settings(data_dir=str(tmp_path / "data"), db={"url": db_url})
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


def test_torc_client_035_scenario_passes(torc035_python: Path, base_url: str) -> None:
    done = subprocess.run(
        [str(torc035_python), str(SCENARIO), base_url],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "scenario passed" in done.stdout
