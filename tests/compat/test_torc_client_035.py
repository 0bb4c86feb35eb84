"""The Torc API driven by the real ``torc-client==0.35.0`` (API 0.21) in its own venv.

Both client generations install as the package ``torc``, so 0.35.0 lives in a venv of its
own (``var/cache/torc-035-venv``, made on first use) and runs ``torc035_scenario.py`` as a
subprocess against the control plane served over real HTTP, on SQLite and PostgreSQL.
The same server keeps answering torc-client 0.8.0 (``test_torc_client.py``, its own venv too).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.torc_clients import client_python, torc_service_url

SCENARIO = Path(__file__).with_name("torc035_scenario.py")


@pytest.fixture(scope="session", name="torc035_python")
def torc035_python_fixture() -> Path:
    return client_python("torc-035-venv", "torc-client", "0.35.0")


@pytest.fixture(name="base_url")
def base_url_fixture(tmp_path: Path, db_url: str) -> Iterator[str]:
    with torc_service_url(tmp_path / "data", db_url) as url:
        yield url


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
