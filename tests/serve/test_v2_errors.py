"""Bad input to the v2 protocol gets a 4xx with a JSON error naming the problem, never a 500."""

from __future__ import annotations

import json
import os
import shutil

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.model_repos import write_add_sub, write_failing_model, write_torchscript_linear

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", name="loaded")
def loaded_fixture(platform):
    repo = platform.data_dir / "store" / "models"
    repo.mkdir(parents=True, exist_ok=True)
    write_add_sub(repo, name="err_add_sub")
    write_failing_model(repo, name="err_failing")
    client = httpclient.InferenceServerClient(platform.host_port, network_timeout=180)
    client.load_model("err_add_sub")
    client.load_model("err_failing")
    yield client
    client.close()


def _post(platform, path, body: bytes, headers=None):
    return httpx.post(platform.url + path, content=body, headers=headers or {}, timeout=30)


def _assert_error(resp, status, *fragments):
    assert resp.status_code == status, resp.text
    message = resp.json()["error"]
    for fragment in fragments:
        assert fragment in message, message


def _req(shape=(1, 4), datatype="FP32", name="INPUT0", data=None):
    count = int(np.prod(shape))
    tensors = [
        {"name": name, "shape": list(shape), "datatype": datatype, "data": data or [1.0] * count},
        {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "data": [1.0] * 4},
    ]
    return json.dumps({"inputs": tensors}).encode()


def test_wrong_shape_is_400(platform, loaded):
    resp = _post(platform, "/v2/models/err_add_sub/infer", _req(shape=(1, 3)))
    _assert_error(resp, 400, "unexpected shape for input 'INPUT0'", "Expected [-1,4], got [1,3]")


def test_wrong_datatype_is_400(platform, loaded):
    resp = _post(
        platform, "/v2/models/err_add_sub/infer", _req(datatype="INT32", data=[1, 2, 3, 4])
    )
    _assert_error(resp, 400, "data-type is 'INT32'", "expects 'FP32'")


def test_unknown_input_is_400(platform, loaded):
    resp = _post(platform, "/v2/models/err_add_sub/infer", _req(name="NOPE"))
    _assert_error(resp, 400, "unexpected inference input 'NOPE'")


def test_missing_input_is_400(platform, loaded):
    body = json.dumps(
        {"inputs": [{"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    )
    resp = _post(platform, "/v2/models/err_add_sub/infer", body.encode())
    _assert_error(resp, 400, "missing required input(s) ['INPUT1']")


def test_batch_too_large_is_400(platform, loaded):
    body = json.dumps(
        {
            "inputs": [
                {"name": n, "shape": [9, 4], "datatype": "FP32", "data": [0.0] * 36}
                for n in ("INPUT0", "INPUT1")
            ]
        }
    )
    resp = _post(platform, "/v2/models/err_add_sub/infer", body.encode())
    _assert_error(resp, 400, "batch-size must be <= 8")


def test_malformed_json_is_400(platform, loaded):
    resp = _post(platform, "/v2/models/err_add_sub/infer", b"{not json")
    _assert_error(resp, 400, "failed to parse the request JSON")


def test_truncated_binary_body_is_400(platform, loaded):
    header = json.dumps({"inputs": [
        {"name": n, "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}
        for n in ("INPUT0", "INPUT1")
    ]}).encode()
    body = header + np.ones(4, dtype=np.float32).tobytes() + b"\x00\x00"
    resp = _post(platform, "/v2/models/err_add_sub/infer", body,
                 {"Inference-Header-Content-Length": str(len(header))})
    _assert_error(resp, 400, "unexpected end of binary data for input 'INPUT1'")


def test_header_length_beyond_body_is_400(platform, loaded):
    resp = _post(
        platform, "/v2/models/err_add_sub/infer", b"{}", {"Inference-Header-Content-Length": "999"}
    )
    _assert_error(resp, 400, "exceeds the body size")


def test_unknown_output_is_400(platform, loaded):
    body = json.loads(_req())
    body["outputs"] = [{"name": "NOPE"}]
    resp = _post(platform, "/v2/models/err_add_sub/infer", json.dumps(body).encode())
    _assert_error(resp, 400, "unexpected inference output 'NOPE'")


def test_unknown_model_is_404(platform, loaded):
    with pytest.raises(InferenceServerException) as err:
        loaded.get_model_metadata("no_such_model")
    assert err.value.status() == "404"
    assert "Request for unknown model: 'no_such_model' is not found" in err.value.message()
    resp = _post(platform, "/v2/models/no_such_model/infer", _req())
    _assert_error(resp, 404, "is not found")


def test_unknown_version_is_404(platform, loaded):
    with pytest.raises(InferenceServerException) as err:
        loaded.get_model_metadata("err_add_sub", model_version="7")
    assert err.value.status() == "404"
    assert "version 7 is not found" in err.value.message()
    assert not loaded.is_model_ready("err_add_sub", "7")


def test_model_execution_error_is_500_with_message(platform, loaded):
    body = json.dumps({"inputs": [{"name": "X", "shape": [1], "datatype": "FP32", "data": [1.0]}]})
    resp = _post(platform, "/v2/models/err_failing/infer", body.encode())
    _assert_error(resp, 500, "model exploded")


def test_stats_of_unknown_model_is_400(platform, loaded):
    with pytest.raises(InferenceServerException) as err:
        loaded.get_inference_statistics("no_such_model")
    assert err.value.status() == "400"


def test_load_of_unparseable_config_is_400(platform, loaded):
    model = platform.data_dir / "store" / "models" / "bad_config"
    (model / "1").mkdir(parents=True, exist_ok=True)
    (model / "config.pbtxt").write_text("backend: python\nmax_batch_size: [oops")
    with pytest.raises(InferenceServerException) as err:
        loaded.load_model("bad_config")
    assert err.value.status() == "400"
    assert "failed to parse config.pbtxt" in err.value.message()


def test_load_of_missing_model_is_400(platform, loaded):
    with pytest.raises(InferenceServerException) as err:
        loaded.load_model("not_in_repo")
    assert err.value.status() == "400"
    assert "failed to poll from model repository" in err.value.message()


@pytest.mark.parametrize("name", ["..", "../etc", "a/b", "%2e%2e"])
def test_model_names_escaping_the_repository_are_refused(platform, loaded, name):
    resp = httpx.post(f"{platform.url}/v2/repository/models/{name}/load", timeout=30)
    assert 400 <= resp.status_code < 500
    assert "error" in resp.json()


def test_symlink_escaping_the_repository_is_refused(platform, loaded, tmp_path):
    outside = tmp_path / "outside"
    write_add_sub(tmp_path, name="outside")
    link = platform.data_dir / "store" / "models" / "linked_model"
    os.symlink(outside, link)
    with pytest.raises(InferenceServerException) as err:
        loaded.load_model("linked_model")
    assert err.value.status() == "400"
    assert "escapes the model repository" in err.value.message()
    inner = platform.data_dir / "store" / "models" / "inner_link"
    write_add_sub(inner.parent, name="inner_link")
    os.symlink("/etc/passwd", inner / "1" / "data.txt")
    with pytest.raises(InferenceServerException) as err:
        loaded.load_model("inner_link")
    assert "symlink leaving its directory" in err.value.message()
    shutil.rmtree(inner)


def test_gpu_model_on_cpu_cluster_reports_reason(platform, loaded):
    repo = platform.data_dir / "store" / "models"
    write_torchscript_linear(repo, name="gpu_linear", kind="KIND_GPU")
    with pytest.raises(InferenceServerException) as err:
        loaded.load_model("gpu_linear")
    assert err.value.status() == "400"
    assert "needs 1 GPU per replica but the cluster has 0 GPUs" in err.value.message()
    entry = next(e for e in loaded.get_model_repository_index() if e["name"] == "gpu_linear")
    assert entry["state"] in ("LOADING", "UNAVAILABLE")
    assert "GPU" in entry["reason"]
    loaded.unload_model("gpu_linear")
