"""``serve run serve_config.yaml`` starts the gRPC endpoint with nothing else to run.

The config as shipped (only the ports moved: ``CP_GRPC__PORT`` by environment, the HTTP port
in the file); ``tritonclient.grpc`` loads and infers through it.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import yaml
from tritonclient.utils import InferenceServerException

from tests.conftest import ROOT, free_port, ray_test_env
from tests.model_repos import write_add_sub
from tests.serve_run import start_serve_run, stop_serve_run, wait_http_ok

pytestmark = [pytest.mark.compat, pytest.mark.slow]


def test_serve_run_config_serves_grpc(tmp_path):
    port, grpc_port = free_port(), free_port()
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    config["http_options"]["port"] = port
    config["applications"][0]["args"]["data_dir"] = str(tmp_path / "var")
    (tmp_path / "serve_config.yaml").write_text(yaml.safe_dump(config))
    write_add_sub(tmp_path / "var" / "store" / "models")
    ray_tmp = Path(tempfile.mkdtemp(prefix="rsg-", dir="/tmp"))  # AF_UNIX paths stay short
    env = {
        **os.environ,
        **ray_test_env(fast_ingress=True),
        "RAY_TMPDIR": str(ray_tmp),
        "CP_GRPC__PORT": str(grpc_port),
        "CP_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("RAY_ADDRESS", None)
    log = tmp_path / "serve.log"
    proc = start_serve_run(tmp_path / "serve_config.yaml", env, log)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/v2/health/ready", proc, log)
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
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
        client.load_model("add_sub")
        a = np.ones((1, 4), dtype=np.float32)
        inputs = [grpcclient.InferInput(n, [1, 4], "FP32") for n in ("INPUT0", "INPUT1")]
        for tensor in inputs:
            tensor.set_data_from_numpy(a)
        result = client.infer("add_sub", inputs)
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a * 2)
        client.close()
    finally:
        stop_serve_run(proc)
