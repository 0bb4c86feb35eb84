"""The real tritonserver fixture works: explicit load, file-override load, binary infer."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.compat

ADD_SUB = Path(__file__).resolve().parents[2] / "configs" / "models" / "add_sub"


def _infer(client, model: str) -> tuple[np.ndarray, np.ndarray]:
    import tritonclient.http as httpclient

    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    b = np.ones((2, 4), dtype=np.float32)
    inputs = [
        httpclient.InferInput("INPUT0", [2, 4], "FP32"),
        httpclient.InferInput("INPUT1", [2, 4], "FP32"),
    ]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b)
    result = client.infer(model, inputs)
    np.testing.assert_allclose(result.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_allclose(result.as_numpy("OUTPUT1"), a - b)
    return result.as_numpy("OUTPUT0"), result.as_numpy("OUTPUT1")


def test_tritonserver_loads_repo_model_and_infers_binary(tritonserver):
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(tritonserver.url)
    # The server is shared: an earlier test's asynchronous unload may still be in progress, and
    # strict readiness is false until it finishes.
    deadline = time.monotonic() + 60
    while not client.is_server_ready() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert client.is_server_ready(), client.get_model_repository_index()
    client.load_model("add_sub")
    assert client.is_model_ready("add_sub"), tritonserver.log()[-2000:]
    meta = client.get_model_metadata("add_sub")
    assert meta["platform"] == "python"
    assert meta["inputs"][0]["shape"] == [-1, 4]
    _infer(client, "add_sub")
    client.unload_model("add_sub")


def test_tritonserver_loads_model_pushed_as_file_override(tritonserver):
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(tritonserver.url)
    pushed_config = {
        "name": "pushed_add_sub",
        "backend": "python",
        "max_batch_size": 8,
        "input": [
            {"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [4]},
            {"name": "INPUT1", "data_type": "TYPE_FP32", "dims": [4]},
        ],
        "output": [
            {"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [4]},
            {"name": "OUTPUT1", "data_type": "TYPE_FP32", "dims": [4]},
        ],
    }
    files = {"file:1/model.py": (ADD_SUB / "1" / "model.py").read_bytes()}
    client.load_model("pushed_add_sub", config=json.dumps(pushed_config), files=files)
    assert client.is_model_ready("pushed_add_sub"), tritonserver.log()[-2000:]
    _infer(client, "pushed_add_sub")
    client.unload_model("pushed_add_sub")
    assert not client.is_model_ready("missing_model")
