"""`serve run serve_config.yaml` as a user runs it.

Health, a model load, and a full restart (new Ray cluster) that serves the model again with no
load call.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
import yaml

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
    ray_tmp = Path(tempfile.mkdtemp(prefix="rsr-", dir="/tmp"))  # AF_UNIX paths stay < 108 bytes
    env = {**os.environ, **ray_test_env(fast_ingress=True), "RAY_TMPDIR": str(ray_tmp)}
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
    finally:
        stop_serve_run(proc)
        shutil.rmtree(ray_tmp, ignore_errors=True)
