"""GPU tier: skipped, before any Ray fixture runs, where torch sees no CUDA device.

Every test here gets the ``gpu`` marker. Without CUDA each is skipped with the reason below, at
collection, so ``pytest tests/gpu`` on a CPU machine starts neither Ray nor the platform.

``GPU_TIER_LOGICAL_GPUS=1`` is a developer's check of the scheduling tests on a CPU machine: Ray
is told the node has one GPU (``RAY_OVERRIDE_RESOURCES``), and the tests marked
``gpu(logical_ok=True)`` (fractional sharing, pending, autoscaling) run against that logical
GPU; the tests that need CUDA still skip. It proves the tests' logic, not the hardware path.

``GPU_TEST_REPORT_DIR`` (default ``<tmp>/gpu-test-report``) receives ``gpu-report.json``: what
each test observed (outputs, ``ray.get_gpu_ids()`` and tensor devices from the replicas,
replica counts, Prometheus samples), for a person to read after a GPU run.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
LOGICAL = os.environ.get("GPU_TIER_LOGICAL_GPUS") == "1"
_cuda_state: tuple[bool, str] | None = None


def cuda_state() -> tuple[bool, str]:
    """(CUDA usable, a description of what torch sees), computed once."""
    global _cuda_state
    if _cuda_state is None:
        try:
            import torch

            if torch.cuda.is_available():
                names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
                _cuda_state = (True, f"torch {torch.__version__}, CUDA {torch.version.cuda}: "
                                     f"{', '.join(names)}")
            else:
                _cuda_state = (False, f"torch {torch.__version__} (CUDA build: "
                                      f"{torch.version.cuda or 'no'})")
        except Exception as exc:  # torch missing or broken: the tier cannot run either way
            _cuda_state = (False, f"torch unusable: {type(exc).__name__}: {exc}")
    return _cuda_state


def report_dir() -> Path:
    """Where the tier's JSON report and the probe models' records go."""
    return Path(os.environ.get("GPU_TEST_REPORT_DIR")
                or Path(tempfile.gettempdir()) / "gpu-test-report")


def pytest_configure(config: pytest.Config) -> None:
    if LOGICAL:
        # Read by the raylet that the session's platform fixture starts (ray.init).
        os.environ.setdefault("RAY_OVERRIDE_RESOURCES", json.dumps({"GPU": 1}))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [item for item in items if HERE in item.path.parents]
    if not mine:
        return
    usable, seen = cuda_state()
    no_cuda = pytest.mark.skip(
        reason=f"GPU tier: torch.cuda.is_available() is false ({seen}); run scripts/gpu_check.sh "
        "on a machine with an NVIDIA GPU (docs/gpu.md)"
    )
    for item in mine:
        marker = item.get_closest_marker("gpu")
        if marker is None:
            item.add_marker(pytest.mark.gpu)
        if usable:
            continue
        if LOGICAL and marker is not None and marker.kwargs.get("logical_ok"):
            continue
        item.add_marker(no_cuda)


class GpuReport:
    """Observations of a GPU run, written as JSON at the end of the session."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.sections: dict[str, Any] = {}

    def record(self, section: str, **values: Any) -> None:
        """Add (or extend) one section, e.g. a test's name."""
        self.sections.setdefault(section, {}).update(values)
        self.write()

    def probes(self, model: str | None = None) -> list[dict[str, Any]]:
        """Records the probe models wrote (``tests.model_repos.write_torch_probe``)."""
        found = []
        for path in sorted(self.directory.glob("probe-*.json")):
            record = json.loads(path.read_text())
            if model is None or record.get("model") == model:
                found.append(record)
        return found

    def wait_probes(
        self, model: str, count: int = 1, timeout_s: float = 60
    ) -> list[dict[str, Any]]:
        """At least ``count`` replicas' records of ``model`` (each replica writes one)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.probes(model)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.5)

    def write(self) -> None:
        """Write ``gpu-report.json`` with every section and every probe record."""
        usable, seen = cuda_state()
        body = {
            "cuda": {"usable": usable, "seen": seen},
            "logical_gpus": LOGICAL,
            "sections": self.sections,
            "probes": self.probes(),
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / "gpu-report.json.tmp"
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True, default=str))
        tmp.replace(self.directory / "gpu-report.json")


@pytest.fixture(scope="session", name="gpu_report")
def gpu_report_fixture() -> Iterator[GpuReport]:
    directory = report_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("probe-*.json"):
        stale.unlink()
    report = GpuReport(directory)
    yield report
    report.write()


@pytest.fixture(scope="session", name="gpu_repo")
def gpu_repo_fixture(platform) -> Path:
    """The session platform's model repository."""
    repo = platform.data_dir / "store" / "models"
    repo.mkdir(parents=True, exist_ok=True)
    return repo


@pytest.fixture(scope="session", name="cluster_gpus")
def cluster_gpus_fixture(platform, gpu_report) -> float:
    """GPUs the session's Ray cluster has (Ray's own detection, or the logical override)."""
    import ray

    resources = ray.cluster_resources()
    gpu_report.record("cluster", resources=resources,
                      cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    gpus = float(resources.get("GPU", 0))
    assert gpus >= 1, (
        f"torch sees a GPU ({cuda_state()[1]}) but Ray detected none: {resources}"
        if cuda_state()[0] else f"no GPU resource in the cluster: {resources}"
    )
    return gpus
