"""The Torc API driven by the real ``torc-client==0.8.0`` (the v0.12 API) in its own venv.

Both client generations install as the package ``torc``, so 0.8.0 lives in a venv of its own
(``var/cache/torc-080-venv``, made on first use), like 0.35.0 (``test_torc_client_035.py``).
Each scenario of ``torc080_scenario.py`` runs there as a subprocess, against a fresh control
plane served over real HTTP, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest

from tests.compat.torc_clients import client_python, torc_service_url

SCENARIO = Path(__file__).with_name("torc080_scenario.py")
NAMES = [
    node.name
    for node in ast.parse(SCENARIO.read_text()).body
    if isinstance(node, ast.FunctionDef) and node.name.startswith("scenario_")
]


@pytest.fixture(scope="session", name="torc080_python")
def torc080_python_fixture() -> Path:
    return client_python("torc-080-venv", "torc-client", "0.8.0")


@pytest.mark.parametrize("name", NAMES)
def test_torc_client_080(torc080_python: Path, tmp_path: Path, db_url: str, name: str) -> None:
    with torc_service_url(tmp_path / "data", db_url) as url:
        done = subprocess.run(
            [str(torc080_python), str(SCENARIO), url, name],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["name"] for r in reports] == [name], done.stdout + done.stderr
    assert reports[0]["ok"], reports[0].get("error")
