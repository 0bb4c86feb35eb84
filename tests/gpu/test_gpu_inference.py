"""KIND_GPU models compute on the GPU Ray gives their replica, and agree with the CPU run."""

from __future__ import annotations

import numpy as np
import pytest

from tests.gpu.helpers import gpus_available, infer, load, unload, wait_for
from tests.model_repos import write_torch_probe, write_torchscript_device_probe

pytestmark = pytest.mark.ray


def _replica_pids(model: str) -> list[int]:
    """PIDs of the model's running Serve replicas."""
    from ray.serve.context import _get_global_client

    app = _get_global_client().get_serve_details()["applications"][f"p-v2-{model}"]
    return [r["pid"] for d in app["deployments"].values() for r in d["replicas"]
            if r["state"] == "RUNNING"]


def _gpu_processes() -> dict[str, object]:
    """GPU index -> PIDs with memory on it, as NVML reports them (best effort)."""
    try:
        try:
            import pynvml  # nvidia-ml-py
        except ImportError:
            from ray._private.thirdparty import pynvml  # the copy Ray detects GPUs with
        pynvml.nvmlInit()
        found: dict[str, object] = {}
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            found[str(index)] = [p.pid for p in
                                 pynvml.nvmlDeviceGetComputeRunningProcesses(handle)]
        return found
    except Exception as exc:  # no NVML binding, or a sandbox that hides processes
        return {"error": f"{type(exc).__name__}: {exc}"}


def test_torchscript_kind_gpu_matches_cpu_run(platform, gpu_repo, cluster_gpus, gpu_report):
    write_torchscript_device_probe(gpu_repo, "gpu_ts", kind="KIND_GPU")  # 1 GPU per replica
    write_torchscript_device_probe(gpu_repo, "gpu_ts_cpu", kind="KIND_CPU")
    x = np.arange(32, dtype=np.float32).reshape(8, 4)  # integers: exact in fp32 on both devices
    free_before = gpus_available()
    try:
        for model in ("gpu_ts", "gpu_ts_cpu"):
            resp = load(platform, model)
            assert resp.status_code == 200, resp.text
        gpu = infer(platform, "gpu_ts", {"INPUT__0": x})
        cpu = infer(platform, "gpu_ts_cpu", {"INPUT__0": x})
        # KIND_GPU without ray_num_gpus claims one whole GPU per replica.
        wait_for(lambda: free_before - gpus_available() >= 1 - 1e-6, 30,
                 "one whole GPU claimed by gpu_ts")
        free_loaded = gpus_available()
        gpu_report.record(
            "torchscript_kind_gpu",
            outputs_gpu=gpu["OUTPUT__0"].tolist(), outputs_cpu=cpu["OUTPUT__0"].tolist(),
            device_index_gpu=gpu["OUTPUT__1"][0].tolist(),
            device_index_cpu=cpu["OUTPUT__1"][0].tolist(),
            gpus_free_before=free_before, gpus_free_loaded=free_loaded,
            replica_pids=_replica_pids("gpu_ts"), nvml_gpu_processes=_gpu_processes(),
        )
        np.testing.assert_array_equal(gpu["OUTPUT__0"], cpu["OUTPUT__0"])
        np.testing.assert_array_equal(cpu["OUTPUT__0"][:, 0], x.sum(axis=1) + 1)
        # [weight.get_device(), input.get_device()]: -1 on CPU, CUDA index 0 in a GPU replica
        # (Ray sets CUDA_VISIBLE_DEVICES to the GPU it assigned, so it is always index 0).
        # TritonModelServer loads on cuda only when ray.get_gpu_ids() is non-empty in the replica.
        assert (cpu["OUTPUT__1"] == -1).all(), cpu["OUTPUT__1"]
        assert (gpu["OUTPUT__1"] == 0).all(), gpu["OUTPUT__1"]
    finally:
        unload(platform, "gpu_ts", "gpu_ts_cpu")


def test_python_backend_torch_on_cuda_matches_cpu_run(
    platform, gpu_repo, cluster_gpus, gpu_report
):
    write_torch_probe(gpu_repo, "gpu_py", gpu_report.directory, kind="KIND_GPU",
                      ray_num_gpus="0.5")
    write_torch_probe(gpu_repo, "gpu_py_cpu", gpu_report.directory, kind="KIND_CPU")
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    expected = x @ np.arange(16, dtype=np.float32).reshape(4, 4) + 1
    try:
        for model in ("gpu_py", "gpu_py_cpu"):
            resp = load(platform, model)
            assert resp.status_code == 200, resp.text
        gpu = infer(platform, "gpu_py", {"X": x})["Y"]
        cpu = infer(platform, "gpu_py_cpu", {"X": x})["Y"]
        gpu_rec = gpu_report.wait_probes("gpu_py")
        cpu_rec = gpu_report.wait_probes("gpu_py_cpu")
        gpu_report.record("python_backend_torch_cuda", outputs_gpu=gpu.tolist(),
                          outputs_cpu=cpu.tolist(), replica_gpu=gpu_rec, replica_cpu=cpu_rec)
        np.testing.assert_array_equal(gpu, cpu)
        np.testing.assert_array_equal(cpu, expected)
        (on_gpu,) = gpu_rec
        assert on_gpu["instance_kind"] == "GPU"
        assert on_gpu["ray_gpu_ids"], on_gpu
        assert on_gpu["cuda_visible_devices"] == ",".join(on_gpu["ray_gpu_ids"])
        assert on_gpu["tensor_device"].startswith("cuda"), on_gpu
        (on_cpu,) = cpu_rec
        assert on_cpu["instance_kind"] == "CPU"
        assert on_cpu["ray_gpu_ids"] == []
        assert on_cpu["tensor_device"] == "cpu"
    finally:
        unload(platform, "gpu_py", "gpu_py_cpu")
