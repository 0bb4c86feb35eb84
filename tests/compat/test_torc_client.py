"""The Torc API driven by the real ``torc-client==0.8.0`` (the v0.12 API) in its own venv.

Both client generations install as the package ``torc``, so 0.8.0 lives in a venv of its own
(``var/cache/torc-080-venv``, made on first use), like 0.35.0 (``test_torc_client_035.py``).
The scenarios of ``torc080_scenario.py`` run there in one subprocess per database (SQLite and
PostgreSQL), against a control plane served over real HTTP; each scenario works on workflows of
its own and is reported, and asserted, as a test of its own.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.compat.torc_clients import client_python, torc_service_url
from tests.conftest import create_pg_database, drop_pg_database

SCENARIO = Path(__file__).with_name("torc080_scenario.py")
NAMES = [
    node.name
    for node in ast.parse(SCENARIO.read_text()).body
    if isinstance(node, ast.FunctionDef) and node.name.startswith("scenario_")
]


@pytest.fixture(scope="session", name="torc080_python")
def torc080_python_fixture() -> Path:
    return client_python("torc-080-venv", "torc-client", "0.8.0")


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    name="reports",
)
def reports_fixture(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    torc080_python: Path,
) -> dict[str, dict]:
    """Every scenario's report, from one run of the script against a fresh database."""
    work = tmp_path_factory.mktemp(f"torc080-{request.param}")
    admin = ""
    if request.param == "sqlite":
        target = work / "platform.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        url = f"sqlite:///{target}"
    else:
        admin = request.getfixturevalue("postgres_admin_url")
        url = create_pg_database(admin, migrated=True)
    try:
        with torc_service_url(work / "data", url) as base:
            done = subprocess.run(
                [str(torc080_python), str(SCENARIO), base, *NAMES],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
    finally:
        if admin:
            drop_pg_database(admin, url)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {report["name"]: report for report in lines}


@pytest.mark.parametrize("name", NAMES)
def test_torc_client_080(reports: dict[str, dict], name: str) -> None:
    assert name in reports, f"{name} did not run: {sorted(reports)}"
    assert reports[name]["ok"], reports[name].get("error")
