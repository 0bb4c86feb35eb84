"""A 0.3-GPU model autoscales 1 -> 3 replicas under load and back to 1 when the load stops.

Two shapes of the same model: with dynamic batching (requests wait in ``@serve.batch``) and
without (``execute`` runs in a worker thread, so the replica's event loop keeps accepting requests
and Serve sees the queue it scales on). Both must scale out and back in.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.gpu.helpers import (
    LoadGenerator,
    gpus_available,
    load,
    running_replicas,
    serve_deployment,
    unload,
    wait_for,
)
from tests.model_repos import write_torch_probe

pytestmark = [pytest.mark.ray, pytest.mark.gpu(logical_ok=True)]


@pytest.mark.parametrize(
    "max_batch_size",
    [
        pytest.param(8, id="dynamic-batching"),
        pytest.param(0, id="unbatched"),
    ],
)
def test_gpu_model_scales_out_under_load_and_back_in(
    platform, gpu_repo, cluster_gpus, gpu_report, max_batch_size
):
    model = f"scale_gpu_{max_batch_size}"
    # config.pbtxt parameters -> Serve autoscaling_config (deployments/contracts/placement.py):
    # 1..3 replicas, 0.3 GPU each, 2 ongoing requests per replica as the target.
    write_torch_probe(gpu_repo, model, gpu_report.directory, kind="KIND_GPU", delay_s=0.05,
                      max_batch_size=max_batch_size, ray_min_replicas="1",
                      ray_max_replicas="3", ray_num_gpus="0.3")
    free_before = gpus_available()
    seen: list[dict] = []

    def replicas_are(count: int):
        def probe() -> bool:
            states = serve_deployment(platform, model)["replicas"]
            if not seen or seen[-1] != states:
                seen.append(states)
            return states.get("RUNNING", 0) == count and sum(states.values()) == count
        return probe

    section = f"autoscaling_{'batched' if max_batch_size else 'unbatched'}"
    try:
        resp = load(platform, model)
        assert resp.status_code == 200, resp.text
        assert running_replicas(platform, model) == 1
        x = np.ones((1 if max_batch_size else 4, 4), dtype=np.float32)
        with LoadGenerator(platform, model, {"X": x}, concurrency=24) as generator:
            try:
                # Serve scales out 3 s after the target is exceeded (upscale_delay_s).
                wait_for(replicas_are(3), 120, "3 running replicas under load", period_s=2)
            finally:
                gpu_report.record(section, replica_states_seen=seen,
                                  gpus_free_before=free_before)
            free_scaled = gpus_available()
            replicas = gpu_report.wait_probes(model, count=3, timeout_s=60)
        gpu_report.record(section, requests_ok=generator.ok, requests_failed=generator.failed,
                          gpus_free_scaled=free_scaled, replicas=replicas)
        assert free_before - free_scaled == pytest.approx(0.9, abs=1e-6)
        assert len({r["pid"] for r in replicas}) == 3
        assert all(r["ray_gpu_ids"] for r in replicas), replicas
        assert generator.ok > 0
        assert not generator.failed, generator.failed

        # No load: back to ray_min_replicas after Serve's downscale delay (30 s).
        wait_for(replicas_are(1), 240, "back to 1 replica without load", period_s=2)
        wait_for(lambda: abs(free_before - gpus_available() - 0.3) < 1e-6, 60,
                 "0.7 of the GPU free again")
        gpu_report.record(section, replica_states_seen=seen, gpus_free_after=gpus_available())
    finally:
        unload(platform, model)
