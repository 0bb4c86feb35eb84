"""A fast synchronous ``execute`` runs inline on the loop; a slow one goes back to its thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from deployments.backends import python_backend
from deployments.backends.base import InferenceRequest
from deployments.backends.python_backend import PythonBackend
from deployments.contracts.specs import load_model_spec

MODEL = """
import json
import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.sleep_s = 0.0

    def execute(self, requests):
        out = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            time.sleep(float(x.ravel()[0]))
            name = np.array([threading.current_thread().name.encode()], dtype=object)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("THREAD", name)]))
        return out
"""


def _backend(tmp_path, params=""):
    model = tmp_path / "who"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(
        'name: "who"\nbackend: "python"\nmax_batch_size: 0\n'
        'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 1 ] } ]\n'
        'output [ { name: "THREAD" data_type: TYPE_STRING dims: [ 1 ] } ]\n' + params
    )
    (model / "1" / "model.py").write_text(MODEL)
    return PythonBackend(load_model_spec(model, "who"), model, 1, "cpu")


async def _thread_of(backend, sleep_s=0.0):
    request = InferenceRequest(inputs={"INPUT0": np.array([sleep_s], dtype=np.float32)})
    [result] = await backend.execute_async([request])
    return result["THREAD"].ravel()[0].decode()


@pytest.fixture(autouse=True)
def _generous_limits(monkeypatch):
    # the test machine is loaded: "fast" must not depend on its timing
    monkeypatch.setattr(python_backend, "INLINE_MAX_S", 0.05)
    monkeypatch.setattr(python_backend, "INLINE_BAN_S", 0.2)


async def test_a_fast_model_moves_onto_the_loop_and_a_slow_call_sends_it_back(tmp_path):
    backend = _backend(tmp_path)
    loop_thread = threading.current_thread().name
    first = [await _thread_of(backend) for _ in range(python_backend.INLINE_AFTER)]
    assert all(name.startswith("who-exec") for name in first)
    assert await _thread_of(backend) == loop_thread  # inline now
    assert await _thread_of(backend, sleep_s=0.3) == loop_thread  # this one blocked the loop...
    assert (await _thread_of(backend)).startswith("who-exec")  # ...and sent it back
    backend.finalize()


async def test_strikes_and_the_parameter_keep_a_model_on_its_thread(tmp_path):
    backend = _backend(tmp_path)
    for _ in range(python_backend.INLINE_STRIKES):
        for _ in range(python_backend.INLINE_AFTER):
            await _thread_of(backend)
        await _thread_of(backend, sleep_s=0.3)
    for _ in range(python_backend.INLINE_AFTER + 2):
        assert (await _thread_of(backend)).startswith("who-exec")
    backend.finalize()
    off = _backend(
        tmp_path / "off",
        'parameters { key: "ray_inline_execute" value: { string_value: "false" } }\n',
    )
    for _ in range(python_backend.INLINE_AFTER + 2):
        assert (await _thread_of(off)).startswith("who-exec")
    off.finalize()
