"""scripts/run_tests.py: when it splits the suite and how it combines the two statuses."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("run_tests", ROOT / "scripts" / "run_tests.py")
assert _spec is not None
assert _spec.loader is not None
run_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_tests)


def test_named_paths_or_node_ids_run_one_plain_session():
    assert run_tests._names_tests(["tests/unit"])
    assert run_tests._names_tests(["-x", "tests/serve/test_v2_models.py::test_onnx_model_infers"])
    assert not run_tests._names_tests(["-x", "-k", "grpc"])
    assert not run_tests._names_tests([])


def test_either_failure_fails_the_run_and_one_empty_session_does_not():
    assert run_tests._combined(0, 0) == 0
    assert run_tests._combined(1, 0) == 1
    assert run_tests._combined(0, 2) == 2
    assert run_tests._combined(5, 0) == 0  # -k left the no-Ray session nothing
    assert run_tests._combined(0, 5) == 0
    assert run_tests._combined(5, 5) == 5
    assert run_tests._combined(5, 1) == 1
