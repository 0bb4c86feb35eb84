"""The layer contracts in pyproject.toml really bite: a deliberate violation fails the linter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("control_plane", "deployments", "entrypoint")


def _lint_imports() -> Path:
    found = Path(sys.executable).with_name("lint-imports")
    if not found.exists():
        pytest.fail("import-linter is not installed: the test extras include it (pyproject.toml)")
    return found


def _copy_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def _run(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the copy shadows the installed packages
    return subprocess.run(
        [str(_lint_imports()), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_tree_as_committed_keeps_every_contract(tmp_path):
    result = _run(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        (
            "deployments/contracts/_probe.py",
            "import ray\n",
            "contracts are Ray-free and web-free and know neither plane BROKEN",
        ),
        (
            "deployments/contracts/_probe.py",
            "from control_plane import errors\n",
            "contracts are Ray-free and web-free and know neither plane BROKEN",
        ),
        (
            "control_plane/services/_probe.py",
            "from deployments import model_server\n",
            "the control plane imports only the contracts package of the data plane BROKEN",
        ),
        (
            "control_plane/services/_probe.py",
            "def f():\n    import ray.serve\n",  # lazy imports count too
            "control_plane never imports ray outside the Serve gateway BROKEN",
        ),
        (
            "deployments/_probe.py",
            "from control_plane.settings import Settings\n",
            "the data plane never imports the control plane BROKEN",
        ),
        (
            "control_plane/db/_probe.py",
            "from control_plane.services import serve_apps\n",
            "control-plane layers: api -> services -> db, contracts at the bottom BROKEN",
        ),
    ],
)
def test_a_deliberate_violation_breaks_its_contract(tmp_path, module, source, broken):
    tree = _copy_tree(tmp_path)
    (tree / module).write_text(f'"""Throw-away violation."""\n\n{source}')
    result = _run(tree)
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout


def test_an_import_cycle_breaks_the_acyclic_contract(tmp_path):
    tree = _copy_tree(tmp_path)
    (tree / "deployments/contracts/_probe_a.py").write_text(
        '"""A."""\n\n\ndef f():\n    from deployments.contracts import _probe_b\n'
    )
    (tree / "deployments/contracts/_probe_b.py").write_text(
        '"""B."""\n\nfrom deployments.contracts import _probe_a\n'
    )
    result = _run(tree)
    assert result.returncode != 0
    assert "no import cycles" in result.stdout
    assert "BROKEN" in result.stdout
