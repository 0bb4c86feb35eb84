"""``python -m bench``: run every benchmark module in turn (or the ones named)."""

from __future__ import annotations

import importlib
import inspect
import sys

MODULES = [
    "bench.v2_bench",
    "bench.pipelines_bench",
    "bench.inference_sizes_bench",
    "bench.grpc_bench",
    "bench.gateway_bench",
    "bench.torchserve_bench",
    "bench.torc_bench",
    "bench.control_plane_bench",
]


def main() -> None:
    """Run the named benchmark modules (all by default)."""
    names = sys.argv[1:] or MODULES
    for name in names:
        module_name = name if name.startswith("bench.") else f"bench.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            print(f"skipping {module_name}: {exc}")
            continue
        print(f"\n===== {module_name} =====", flush=True)
        # Modules with their own options get none from here: the runner's argv is module names.
        if inspect.signature(module.main).parameters:
            module.main([])
        else:
            module.main()


if __name__ == "__main__":
    main()
