import numpy as np

from deployments.backends import InferenceRequest, load_backend
from deployments.contracts.errors import InferenceError
from deployments.contracts.specs import load_model_spec
from tests.model_repos import (
    write_add_sub,
    write_failing_model,
    write_onnx_add,
    write_torchscript_linear,
)


def _req(a, b):
    return InferenceRequest(inputs={"INPUT0": a, "INPUT1": b})


def test_python_backend_runs_triton_python_model(tmp_path):
    model = write_add_sub(tmp_path, versions=(1, 2))
    spec = load_model_spec(model, "add_sub")
    backend = load_backend(spec, model, 2, "cpu")
    a = np.ones((1, 4), np.float32)
    results = backend.execute([_req(a, a), _req(a * 3, a)])
    np.testing.assert_allclose(results[0]["OUTPUT0"], a * 3)  # version 2 doubles INPUT0
    np.testing.assert_allclose(results[1]["OUTPUT1"], a * 5)
    backend.finalize()


def test_python_backend_returns_model_errors(tmp_path):
    model = write_failing_model(tmp_path)
    backend = load_backend(load_model_spec(model, "failing"), model, 1, "cpu")
    [result] = backend.execute([InferenceRequest(inputs={"X": np.ones(1, np.float32)})])
    assert isinstance(result, InferenceError)
    assert "model exploded" in result.message


def test_torchscript_backend_concatenates_a_batch(tmp_path):
    model = write_torchscript_linear(tmp_path)
    backend = load_backend(load_model_spec(model, "linear_ts"), model, 1, "cpu")
    one = InferenceRequest(inputs={"INPUT__0": np.ones((1, 4), np.float32)})
    two = InferenceRequest(inputs={"INPUT__0": np.zeros((2, 4), np.float32)})
    first, second = backend.execute([one, two])
    np.testing.assert_allclose(first["OUTPUT__0"], [[5.0, 7.0]])
    np.testing.assert_allclose(second["OUTPUT__0"], [[1.0, -1.0], [1.0, -1.0]])


def test_onnx_backend_runs(tmp_path):
    model = write_onnx_add(tmp_path)
    backend = load_backend(load_model_spec(model, "add_onnx"), model, 1, "cpu")
    x = np.ones((2, 3), np.float32)
    [out] = backend.execute([InferenceRequest(inputs={"X": x, "Y": x})])
    np.testing.assert_allclose(out["Z"], 2 * x)
