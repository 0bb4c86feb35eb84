"""A TorchServe ``.mar`` whose model-config.yaml asks for ``deviceType: gpu`` runs on ``cuda``.

The replica gets one GPU (``CP_TORCHSERVE__GPUS_PER_REPLICA``, default 1), the handler context's
``gpu_id`` is the index Ray gave it, and describe reports the GPU worker.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.ray

HANDLER = '''
import torch


def handle(data, context):
    if data is None:
        return None
    gpu_id = context.system_properties.get("gpu_id")
    device = torch.device(f"cuda:{gpu_id}" if gpu_id is not None and torch.cuda.is_available()
                          else "cpu")
    return [{"gpu_id": gpu_id, "device": str(torch.ones(1, device=device).device)}
            for _ in data]
'''


def test_mar_with_device_type_gpu_runs_its_handler_on_cuda(platform, cluster_gpus, tmp_path):
    store = platform.data_dir / "store" / "model-store"
    store.mkdir(parents=True, exist_ok=True)
    (tmp_path / "handler.py").write_text(HANDLER)
    (tmp_path / "model-config.yaml").write_text("deviceType: gpu\nminWorkers: 1\nmaxWorkers: 1\n")
    subprocess.run(
        [str(Path(sys.executable).parent / "torch-model-archiver"), "--model-name", "ts_gpu",
         "--version", "1.0", "--handler", str(tmp_path / "handler.py"),
         "--config-file", str(tmp_path / "model-config.yaml"), "--export-path", str(store), "-f"],
        check=True,
    )
    params = {"url": "ts_gpu.mar", "initial_workers": "1", "synchronous": "true"}
    resp = httpx.post(platform.url + "/models", params=params, timeout=240)
    assert resp.status_code == 200, resp.text
    try:
        answer = httpx.post(platform.url + "/predictions/ts_gpu", content=b"x", timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["gpu_id"] is not None
        assert answer.json()["device"].startswith("cuda")
        described = httpx.get(platform.url + "/models/ts_gpu", timeout=30).json()[0]
        assert described["deviceType"] == "gpu"
        assert all(worker["gpu"] for worker in described["workers"])
    finally:
        httpx.delete(platform.url + "/models/ts_gpu", timeout=120)
