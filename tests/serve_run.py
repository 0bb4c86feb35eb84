"""Start and stop ``serve run <config>`` as a user does, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT


def start_serve_run(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``serve run config`` in its own process group, output appended to ``log``."""
    serve = Path(sys.executable).with_name("serve")
    return subprocess.Popen(
        [str(serve), "run", str(config)], cwd=ROOT, env=env,
        stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def wait_http_ok(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve run exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} not ready after {timeout_s}s:\n{log.read_text()[-3000:]}")


def stop_serve_run(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)  # serve run started by a script ignores SIGINT
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
