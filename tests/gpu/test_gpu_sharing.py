"""Fractional GPUs: two ``ray_num_gpus: 0.5`` models share one GPU; a third waits for a share."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.gpu.helpers import (
    BackgroundLoad,
    gpus_available,
    index_entry,
    infer,
    load,
    serve_deployment,
    unload,
    wait_for,
)
from tests.model_repos import write_torch_probe

pytestmark = [pytest.mark.ray, pytest.mark.gpu(logical_ok=True)]
MODELS = ("share_a", "share_b", "share_c")


def test_two_half_gpu_models_share_the_gpu_and_a_third_waits_pending(
    platform, gpu_repo, cluster_gpus, gpu_report
):
    if cluster_gpus != 1:
        pytest.skip(f"written for a one-GPU cluster; this one has {cluster_gpus:g} "
                    "(scripts/gpu_check.sh sets CUDA_VISIBLE_DEVICES=0)")
    for name in MODELS:
        write_torch_probe(gpu_repo, name, gpu_report.directory, kind="KIND_GPU",
                          ray_num_gpus="0.5")
    x = np.ones((2, 4), dtype=np.float32)
    try:
        for name in ("share_a", "share_b"):
            resp = load(platform, name)
            assert resp.status_code == 200, resp.text
            infer(platform, name, {"X": x})
        a, b = (gpu_report.wait_probes(n)[0] for n in ("share_a", "share_b"))
        assert len(a["ray_gpu_ids"]) == 1, a
        assert a["ray_gpu_ids"] == b["ray_gpu_ids"], (a, b)  # the same GPU, half each
        wait_for(lambda: gpus_available() < 1e-6, 30, "both halves of the GPU claimed")

        # A third half-GPU model: accepted and deployed (the cluster has the GPU), but its
        # replica cannot be scheduled, so the synchronous load keeps waiting and says so.
        pending = BackgroundLoad(platform, "share_c")

        def unschedulable_message() -> str:
            message = serve_deployment(platform, "share_c")["message"]
            return message if "to be scheduled" in message else ""

        # Serve reports replicas it could not place after 30 s (SLOW_STARTUP_WARNING_S).
        message = wait_for(unschedulable_message, 150,
                           "Serve's 'replicas ... to be scheduled' message for share_c")
        entry = index_entry(platform, "share_c")
        try:  # the model's own route: the ingress holds the request until a replica exists
            ready: int | str = httpx.get(f"{platform.url}/v2/models/share_c/ready",
                                         timeout=5).status_code
        except httpx.TimeoutException:
            ready = "no answer within 5 s"
        gpu_report.record("fractional_pending", share_a=a, share_b=b, index_share_c=entry,
                          ready_share_c=ready, serve_message=message)
        assert '"GPU": 0.5' in message, message
        assert entry.get("state") == "LOADING", entry
        assert ready != 200
        assert pending.waiting, "the load call returned while no GPU share was free"
        for name in ("share_a", "share_b"):  # the two holders keep serving meanwhile
            infer(platform, name, {"X": x})

        # A share frees up: the pending model starts and its load call returns 200.
        unload(platform, "share_a")
        resp = pending.result(timeout_s=180)
        assert resp.status_code == 200, resp.text
        assert index_entry(platform, "share_c").get("state") == "READY"
        infer(platform, "share_c", {"X": x})
        (c,) = gpu_report.wait_probes("share_c")
        gpu_report.record("fractional_pending", share_c=c)
        assert c["ray_gpu_ids"] == b["ray_gpu_ids"]
    finally:
        unload(platform, *MODELS)
