"""`serve run serve_config.yaml` as a user runs it.

Health, a model load, and a full restart (new Ray cluster) that serves the model again with no
load call. The config as shipped also starts the gRPC endpoint (only its port moved, by
``CP_GRPC__PORT``): after the restart ``tritonclient.grpc`` infers the restored model and loads
a second one through it. One platform serves both checks (each ``serve run`` costs a Ray
cluster start).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import yaml
from tritonclient.utils import InferenceServerException

from tests.conftest import ROOT, free_port, ray_test_env
from tests.model_repos import write_add_sub
from tests.serve_run import start_serve_run, stop_serve_run, wait_http_ok

pytestmark = [pytest.mark.compat, pytest.mark.slow]


def test_serve_run_config_serves_and_survives_restart(tmp_path):
    port = free_port()
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    config["http_options"]["port"] = port
    config["applications"][0]["args"]["data_dir"] = str(tmp_path / "var")
    config_path = tmp_path / "serve_config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    write_add_sub(tmp_path / "var" / "store" / "models")
    write_add_sub(tmp_path / "var" / "store" / "models", name="add_sub_grpc")
    ray_tmp = Path(tempfile.mkdtemp(prefix="rsr-", dir="/tmp"))  # AF_UNIX paths stay < 108 bytes
    grpc_port = free_port()
    env = {
        **os.environ,
        **ray_test_env(fast_ingress=True),
        "RAY_TMPDIR": str(ray_tmp),
        "CP_GRPC__PORT": str(grpc_port),
        "CP_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("RAY_ADDRESS", None)
    log = tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"

    proc = start_serve_run(config_path, env, log)
    try:
        wait_http_ok(url + "/v2/health/ready", proc, log)
        assert httpx.get(url + "/healthz").json() == {"status": "ok"}
        assert httpx.get(url + "/docs").status_code == 200
        client = httpclient.InferenceServerClient(f"127.0.0.1:{port}", network_timeout=180)
        client.load_model("add_sub")
        assert client.is_model_ready("add_sub")
    finally:
        stop_serve_run(proc)
    assert (tmp_path / "var" / "platform.db").exists()

    proc = start_serve_run(config_path, env, log)
    try:
        wait_http_ok(url + "/v2/models/add_sub/ready", proc, log)
        client = httpclient.InferenceServerClient(f"127.0.0.1:{port}", network_timeout=180)
        a = np.ones((1, 4), dtype=np.float32)
        inputs = [httpclient.InferInput(n, [1, 4], "FP32") for n in ("INPUT0", "INPUT1")]
        for tensor in inputs:
            tensor.set_data_from_numpy(a)
        np.testing.assert_allclose(client.infer("add_sub", inputs).as_numpy("OUTPUT0"), 2 * a)
        _check_grpc(f"127.0.0.1:{grpc_port}", a)
    finally:
        stop_serve_run(proc)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _check_grpc(address: str, a: np.ndarray) -> None:
    """The shipped config's gRPC app: metadata, the restored model, a load and an infer."""
    client = grpcclient.InferenceServerClient(address)
    deadline = time.monotonic() + 120
    while True:  # the grpc app may come up after the control plane
        try:
            assert client.is_server_live()
            break
        except InferenceServerException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert client.get_server_metadata().name == "rayserve-platform"
    inputs = [grpcclient.InferInput(n, [1, 4], "FP32") for n in ("INPUT0", "INPUT1")]
    for tensor in inputs:
        tensor.set_data_from_numpy(a)
    np.testing.assert_array_equal(client.infer("add_sub", inputs).as_numpy("OUTPUT0"), a * 2)
    client.load_model("add_sub_grpc")
    result = client.infer("add_sub_grpc", inputs)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a * 0)
    client.close()
