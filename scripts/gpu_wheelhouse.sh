#!/usr/bin/env bash
# Prepare .whl/: the wheels scripts/gpu_check.sh installs on a GPU machine that has no package
# index (the lent nvidia-h200 machine: Python 3.12, CUDA torch preinstalled, no network).
#
#   scripts/gpu_wheelhouse.sh            # writes .whl/ (git-excluded) and prints its size
#   WHEELHOUSE=dir IMAGE_PACKAGES_FILE=list scripts/gpu_wheelhouse.sh
#
# What it does, and why (docs/gpu.md, "Offline machine"):
#   1. pip download the dependency closure of the platform (pyproject's dependencies without
#      torch, plus pytest-asyncio) for cp312 (PY_VERSION) manylinux x86_64, pinned to the
#      versions of this checkout's .venv so the GPU run uses what the CPU suite was tested with;
#   2. drop every distribution the target image already has (IMAGE_PACKAGES below, from
#      /work/.library/device/KINDS.md; one name a line in IMAGE_PACKAGES_FILE overrides it) and
#      the few that the GPU tier never imports (virtualenv, py-spy, psycopg2: runtime-env
#      virtualenvs, the dashboard's profiler, PostgreSQL URLs);
#   3. slim ray's wheel: ray 2.60.0's cp312 wheel is 75.6 MiB, over the device tool's 64 MiB
#      transfer limit on its own; 30.7 MiB of it is ray/jars (the Java worker), 2.4 MiB the
#      dashboard's web UI (the tests start Ray with include_dashboard=False) and ~5 MiB the
#      libraries Serve never imports (ray.rllib, ray.data, ray.tune, ray.train, ray.llm). They go,
#      with their RECORD lines;
#   4. recompress every kept wheel with LZMA (pip unpacks wheels with zipfile, which reads LZMA
#      members): the same files, about a third smaller than deflate for ray's binaries;
#   5. add an xz-compressed prometheus binary (PROMETHEUS_BIN, default: the one on PATH, else
#      the Debian package's, fetched with apt-get download) when it still fits under BUDGET_MIB,
#      for the dashboard test's real Prometheus.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DEST="${WHEELHOUSE:-$ROOT/.whl}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
# The device tool carries the working tree and the carried paths: 64 MiB together.
BUDGET_MIB="${BUDGET_MIB:-64}"
# The target interpreter: 3.12 on the nvidia-h200 image (3.11 for a rehearsal on this machine).
PY_VERSION="${PY_VERSION:-3.12}"
PY_TAG="cp${PY_VERSION/./}"
WITH_PROMETHEUS="${WITH_PROMETHEUS:-1}"
PROMETHEUS_BIN="${PROMETHEUS_BIN:-$(command -v prometheus || true)}"
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64
           manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64)
# Not needed by tests/gpu: the image or the tier does without them.
SKIP_FOR_TIER="virtualenv distlib python-discovery py-spy psycopg2-binary"
# From KINDS.md, "Python packages already there" (nvidia-h200, image 'cuda', read 2026-11-17).
IMAGE_PACKAGES="absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc
anyio attrs botorch build certifi charset-normalizer chex click cloudpickle cmake colorama
contourpy coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython
diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist
fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2
joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml
markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack
multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy
numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13
nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir
onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix
orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker
prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing
pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout
pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors
scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers
setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch
torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton
typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray
xxhash yarl zipp"
if [ -n "${IMAGE_PACKAGES_FILE:-}" ]; then
    IMAGE_PACKAGES="$(cat "$IMAGE_PACKAGES_FILE")"
fi

exclude_file="$(git rev-parse --git-path info/exclude 2>/dev/null || echo .git/info/exclude)"
mkdir -p "$(dirname "$exclude_file")"
for pattern in /.whl/ /gpu-out/ /.gpu-venv/; do
    grep -qxF "$pattern" "$exclude_file" 2>/dev/null || echo "$pattern" >>"$exclude_file"
done

staging="$(mktemp -d "${TMPDIR:-/tmp}/gpu-wheelhouse.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

# Requirements: pyproject's dependencies minus torch (the image has a CUDA build), plus the test
# plugins the tier's config names; pinned to this checkout's .venv where it has them.
"$PY" - "$staging/reqs.txt" "$staging/constraints.txt" <<'EOF'
import re
import subprocess
import sys
import tomllib

reqs_path, cons_path = sys.argv[1:3]
with open("pyproject.toml", "rb") as fh:
    deps = tomllib.load(fh)["project"]["dependencies"]
names = [d for d in deps if not re.match(r"torch\b", d)] + ["pytest", "pytest-asyncio"]
open(reqs_path, "w").write("\n".join(names) + "\n")
try:
    freeze = subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True,
                            text=True, check=True).stdout.splitlines()
except Exception:
    freeze = []
pins = [line for line in freeze
        if "==" in line and not line.startswith(("-e", "torch", "nvidia-", "triton=="))
        and "+" not in line]
open(cons_path, "w").write("\n".join(pins) + "\n")
EOF

platform_args=()
for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
echo "== pip download ($PY_TAG, manylinux x86_64) into $staging/all"
"$PY" -m pip download -q --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
    --abi "$PY_TAG" "${platform_args[@]}" -c "$staging/constraints.txt" -r "$staging/reqs.txt" \
    -d "$staging/all"

rm -rf "$DEST"
mkdir -p "$DEST"
SKIP="$IMAGE_PACKAGES $SKIP_FOR_TIER" "$PY" - "$staging/all" "$DEST" <<'EOF'
"""Keep what the image lacks, slim ray, recompress with LZMA."""
import base64
import hashlib
import os
import re
import sys
import zipfile

src, dest = sys.argv[1:3]
norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()  # noqa: E731
skip = {norm(n) for n in os.environ["SKIP"].split()}
# The Java worker, the web UI (Ray starts with include_dashboard=False) and libraries that
# ray.serve never imports (only ray.serve.llm imports ray.llm).
DROP = tuple(re.compile(p) for p in (
    r"^ray/jars/", r"^ray/dashboard/client/build/", r"^ray/rllib/", r"^ray/data/",
    r"^ray/tune/", r"^ray/train/", r"^ray/llm/", r"^ray/serve/llm/",
))
for name in sorted(os.listdir(src)):
    project = norm(name.split("-")[0])
    if project in skip:
        print(f"  skip {name} (on the image or unused by the tier)")
        continue
    with zipfile.ZipFile(os.path.join(src, name)) as zin, zipfile.ZipFile(
        os.path.join(dest, name), "w", compression=zipfile.ZIP_LZMA
    ) as zout:
        dropped = set()
        members = zin.infolist()
        for info in members:
            if project == "ray" and any(p.match(info.filename) for p in DROP):
                dropped.add(info.filename)
        for info in members:
            if info.filename in dropped:
                continue
            data = zin.read(info)
            if info.filename.endswith(".dist-info/RECORD") and dropped:
                lines = [ln for ln in data.decode().splitlines()
                         if ln.split(",", 1)[0] not in dropped]
                data = ("\n".join(lines) + "\n").encode()
            out = zipfile.ZipInfo(info.filename, info.date_time)
            out.external_attr = info.external_attr
            out.compress_type = zipfile.ZIP_LZMA
            zout.writestr(out, data)
    before = os.path.getsize(os.path.join(src, name)) / 2**20
    after = os.path.getsize(os.path.join(dest, name)) / 2**20
    note = f", dropped {len(dropped)} files (jars, web UI, unused libraries)" if dropped else ""
    print(f"  keep {name}: {before:.2f} -> {after:.2f} MiB{note}")
EOF

tree_bytes=$(git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
whl_bytes=$(du -cb "$DEST" | tail -1 | cut -f1)
budget=$((BUDGET_MIB * 1024 * 1024))
if [ "$WITH_PROMETHEUS" = 1 ] && [ -z "$PROMETHEUS_BIN" ] && command -v apt-get >/dev/null; then
    # The binary of Debian's package (Go, links libc only), without installing the package.
    (cd "$staging" && apt-get download -q prometheus >/dev/null 2>&1 \
        && dpkg -x prometheus_*.deb prom-deb) || true
    if [ -x "$staging/prom-deb/usr/bin/prometheus" ]; then
        PROMETHEUS_BIN="$staging/prom-deb/usr/bin/prometheus"
    fi
fi
if [ "$WITH_PROMETHEUS" = 1 ] && [ -n "$PROMETHEUS_BIN" ] && [ -x "$PROMETHEUS_BIN" ]; then
    xz -9 -T0 -c "$PROMETHEUS_BIN" >"$staging/prometheus.xz"
    prom_bytes=$(stat -c %s "$staging/prometheus.xz")
    if [ $((tree_bytes + whl_bytes + prom_bytes)) -lt $((budget - 1024 * 1024)) ]; then
        mv "$staging/prometheus.xz" "$DEST/prometheus.xz"
        echo "  add prometheus.xz ($(numfmt --to=iec "$prom_bytes")) from $PROMETHEUS_BIN"
    else
        echo "  prometheus.xz ($(numfmt --to=iec "$prom_bytes")) does not fit: left out;" \
             "the dashboard test then checks Ray's metrics endpoint only"
    fi
else
    echo "  no prometheus binary (PROMETHEUS_BIN): the dashboard test checks Ray's endpoint only"
fi

whl_bytes=$(du -cb "$DEST" | tail -1 | cut -f1)
total=$((tree_bytes + whl_bytes))
echo "== $DEST: $(ls "$DEST" | wc -l) files, $(numfmt --to=iec "$whl_bytes");" \
     "working tree $(numfmt --to=iec "$tree_bytes"); together $(numfmt --to=iec "$total")" \
     "of the device tool's ${BUDGET_MIB} MiB"
if [ "$total" -ge "$budget" ]; then
    echo "!! over the ${BUDGET_MIB} MiB transfer limit: see docs/gpu.md, 'If it does not fit'" >&2
    exit 3
fi
