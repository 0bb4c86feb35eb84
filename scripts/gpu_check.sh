#!/usr/bin/env bash
# Run the GPU test tier (tests/gpu) on a GPU machine holding a copy of this working tree, and
# leave everything a person needs to judge the run in $OUT (default ./gpu-out):
#
#   nvidia-smi.txt   nvidia-smi before, GPU use sampled every 5 s during, and after the tests
#   setup.log        how the environment was made, versions, what torch and Ray see
#   pytest.log       the tier's verbose output (PYTHONUNBUFFERED=1)
#   junit.xml        the pytest report
#   gpu-report.json  what the tests observed: outputs, ray.get_gpu_ids(), tensor devices, ...
#   ray-logs.tar.gz  the session's Ray, Serve and platform logs (and Prometheus')
#   summary.txt      one screen: mode, versions, outcome counts, exit code
#
# Usage:  scripts/gpu_check.sh [--dry-run] [extra pytest args]
#
# Environment (all optional):
#   PYTHON       interpreter to build on (default python3); on the offline nvidia-h200 machine it
#                is the image's python3, which holds a CUDA torch
#   VENV         virtualenv to create or reuse (default .gpu-venv); an existing one that imports
#                torch and ray is reused as is (e.g. VENV=.venv on a CPU machine)
#   WHEELHOUSE   offline wheels from scripts/gpu_wheelhouse.sh (default .whl); when it holds
#                wheels, nothing is fetched: the venv sees PYTHON's packages (its CUDA torch)
#                and gets the wheels with pip --no-index --no-deps
#   TORCH_SPEC   online mode (no wheelhouse), when PYTHON has no CUDA torch: what pip installs
#                first, e.g. "torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124"
#                (default "torch==2.13.0": PyPI's Linux wheel, a CUDA build)
#   GPU_TIER_TIMEOUT_S  wall-clock limit of the pytest run (default 450)
#   GPU_CHECK_WORK      scratch directory: pytest's basetemp, Ray's temp dir (default
#                       /tmp/gpu-check; keep it short, Ray's socket paths must stay < 108 bytes)
#   PLATFORM_FAST_INGRESS  1 (default, as `make run`): Serve's HAProxy ingress; 0: Python proxy
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DRY_RUN=0
if [ "${1:-}" = "--dry-run" ]; then DRY_RUN=1; shift; fi
OUT="${OUT:-$ROOT/gpu-out}"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-$ROOT/.gpu-venv}"
WHEELHOUSE="${WHEELHOUSE:-$ROOT/.whl}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
GPU_TIER_TIMEOUT_S="${GPU_TIER_TIMEOUT_S:-450}"
WORK="${GPU_CHECK_WORK:-/tmp/gpu-check}"
export PLATFORM_FAST_INGRESS="${PLATFORM_FAST_INGRESS:-1}"
# The tier is written for one GPU (the sharing test fills exactly one).
export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES-0}"
export PYTHONUNBUFFERED=1
export GPU_TEST_REPORT_DIR="$WORK/report"
started=$(date +%s)

mkdir -p "$OUT"
SETUP="$OUT/setup.log"
: >"$SETUP"
log() { echo "[gpu_check $(($(date +%s) - started))s] $*" | tee -a "$SETUP"; }
run_logged() { log "\$ $*"; "$@" >>"$SETUP" 2>&1; }

smi() {
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi 2>&1
    else
        echo "nvidia-smi: not found (no NVIDIA driver on this machine)"
    fi
}

# -- which way to build the environment ----------------------------------------------------
VPY="$VENV/bin/python"
if [ -x "$VPY" ] && "$VPY" -c "import torch, ray" >/dev/null 2>&1; then
    MODE=reuse
elif compgen -G "$WHEELHOUSE/*.whl" >/dev/null; then
    MODE=offline
else
    MODE=online
fi
base_torch="$("$PYTHON" -c 'import torch; print(torch.__version__, torch.version.cuda or "cpu")' \
    2>/dev/null || echo "none")"
log "mode=$MODE python=$PYTHON ($("$PYTHON" -V 2>&1)) torch there: $base_torch venv=$VENV"
log "OUT=$OUT work=$WORK wheelhouse=$WHEELHOUSE ($(ls "$WHEELHOUSE" 2>/dev/null | wc -l) files)"
if [ "$MODE" = offline ] && [ "$base_torch" = none ]; then
    log "!! $PYTHON has no torch: the offline mode builds on an interpreter that holds one" \
        "(PYTHON=...), the image's CUDA torch on the GPU machine"
    [ "$DRY_RUN" = 1 ] || exit 2
fi
# Never let the venv or the results travel with the working tree (64 MiB device limit).
if exclude="$(git rev-parse --git-path info/exclude 2>/dev/null)"; then
    mkdir -p "$(dirname "$exclude")"
    for pattern in /.gpu-venv/ /.whl/ /gpu-out/; do
        grep -qxF "$pattern" "$exclude" 2>/dev/null || echo "$pattern" >>"$exclude"
    done
fi

if [ "$DRY_RUN" = 1 ]; then
    case "$MODE" in
        reuse) log "would reuse $VENV" ;;
        offline) log "would: $PYTHON -m venv $VENV; link $PYTHON's site-packages (.pth);" \
                     "pip install --no-index --no-deps $WHEELHOUSE/*.whl;" \
                     "$(ls "$WHEELHOUSE"/prometheus.xz 2>/dev/null || echo 'no prometheus.xz')" ;;
        online) log "would: $PYTHON -m venv $VENV; pip install ${TORCH_SPEC}" \
                    "(unless $PYTHON has a CUDA torch); pip install -e .[test]" ;;
    esac
    log "would run: pytest tests/gpu -v -rA --junitxml=$OUT/junit.xml (timeout" \
        "${GPU_TIER_TIMEOUT_S}s), then collect nvidia-smi, Ray logs, the report into $OUT"
    smi | head -15 | tee -a "$SETUP"
    exit 0
fi

{ echo "== before the tests ($(date -u +%FT%TZ))"; smi; } >"$OUT/nvidia-smi.txt"

link_site_packages() {
    # Make PYTHON's packages (the image's CUDA torch, numpy, ...) visible in the venv, after
    # the venv's own: a .pth line appends a directory to sys.path. Works where PYTHON is
    # itself a virtualenv (the nvidia-h200 image's python3 is /opt/torch/.venv), which
    # --system-site-packages would skip.
    local target
    target="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    "$PYTHON" -c 'import site, sysconfig
paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                       *site.getsitepackages()])
print("\n".join(paths))' >"$target/zz_gpu_check_base_python.pth"
    log "linked into $target: $(tr '\n' ' ' <"$target/zz_gpu_check_base_python.pth")"
}

install_project() {
    # The project itself: its root on sys.path (what an editable install amounts to), so the
    # copy of the working tree is what runs; the session fixture also puts it on Ray's workers'
    # PYTHONPATH.
    local target
    target="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    echo "$ROOT" >"$target/rayserve_platform_src.pth"
}

case "$MODE" in
    reuse)
        log "reusing $VENV"
        ;;
    offline)
        rm -rf "$VENV"
        run_logged "$PYTHON" -m venv "$VENV" || { log "venv creation failed"; exit 2; }
        link_site_packages
        run_logged "$VPY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            "$WHEELHOUSE"/*.whl || { log "installing the wheelhouse failed (see above)"; exit 2; }
        install_project
        ;;
    online)
        rm -rf "$VENV"
        run_logged "$PYTHON" -m venv "$VENV" || { log "venv creation failed"; exit 2; }
        if [[ "$base_torch" != none && "$base_torch" != *cpu ]]; then
            link_site_packages  # keep the machine's CUDA torch instead of downloading one
        else
            # shellcheck disable=SC2086  # TORCH_SPEC carries pip options (--index-url ...)
            run_logged "$VPY" -m pip install -q $TORCH_SPEC || { log "torch install failed"; exit 2; }
        fi
        run_logged "$VPY" -m pip install -q -e ".[test]" || { log "install failed"; exit 2; }
        ;;
esac
run_logged "$VPY" -m pip check || log "pip check reports conflicts (above); continuing"

# -- what the tier will see ------------------------------------------------------------------
run_logged "$VPY" - <<'EOF'
import importlib, sys
print("python", sys.version.split()[0], sys.executable)
for name in ("torch", "ray", "fastapi", "pydantic", "tritonclient", "sqlalchemy", "numpy"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')} {module.__file__}")
    except Exception as exc:
        print(f"{name}: IMPORT FAILED {type(exc).__name__}: {exc}")
import torch
print("torch.cuda.is_available()", torch.cuda.is_available(), "CUDA", torch.version.cuda,
      "devices", [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
import control_plane.app, deployments.model_server  # the platform imports in this env
print("platform imports: ok")
EOF

# -- Prometheus for the dashboard test: PATH, PROMETHEUS_BIN, or the wheelhouse's copy ------
mkdir -p "$WORK/bin"
if [ -z "${PROMETHEUS_BIN:-}" ] && ! command -v prometheus >/dev/null \
        && [ -f "$WHEELHOUSE/prometheus.xz" ]; then
    "$VPY" -c 'import lzma, shutil, sys
shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        "$WHEELHOUSE/prometheus.xz" "$WORK/bin/prometheus" && chmod +x "$WORK/bin/prometheus"
    export PROMETHEUS_BIN="$WORK/bin/prometheus"
fi
log "prometheus: ${PROMETHEUS_BIN:-$(command -v prometheus || echo 'none: that test will skip')}"

# -- the tier --------------------------------------------------------------------------------
rm -rf "$WORK/pytest" "$GPU_TEST_REPORT_DIR"
mkdir -p "$WORK" "$GPU_TEST_REPORT_DIR"
sampler=""
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,index,utilization.gpu,memory.used,memory.total \
        --format=csv -l 5 >"$WORK/nvidia-smi-during.csv" 2>&1 &
    sampler=$!
fi
extra=()
if "$VPY" -c "import pytest_timeout" 2>/dev/null; then extra+=(--timeout=360); fi
log "pytest tests/gpu (limit ${GPU_TIER_TIMEOUT_S}s, ingress FAST=$PLATFORM_FAST_INGRESS)"
timeout -s INT -k 30 "$GPU_TIER_TIMEOUT_S" "$VPY" -m pytest tests/gpu -v -rA \
    -p no:cacheprovider --basetemp="$WORK/pytest" --junitxml="$OUT/junit.xml" \
    "${extra[@]}" "$@" 2>&1 | tee "$OUT/pytest.log"
rc=${PIPESTATUS[0]}
log "pytest exit code $rc"
if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null; fi

# -- collect -------------------------------------------------------------------------------
{
    echo; echo "== during the tests (every 5 s)"; cat "$WORK/nvidia-smi-during.csv" 2>/dev/null
    echo; echo "== after the tests ($(date -u +%FT%TZ))"; smi
} >>"$OUT/nvidia-smi.txt"
if [ -f "$GPU_TEST_REPORT_DIR/gpu-report.json" ]; then
    cp "$GPU_TEST_REPORT_DIR/gpu-report.json" "$OUT/gpu-report.json"
else
    echo '{"note": "no report: no GPU test ran (see pytest.log)"}' >"$OUT/gpu-report.json"
fi
logs=()
while IFS= read -r -d '' dir; do logs+=("${dir#"$WORK"/}"); done < <(
    find "$WORK/pytest" -maxdepth 3 \( -path '*/session_*/logs' -o -name prometheus \) \
        -type d -print0 2>/dev/null)
if [ "${#logs[@]}" -gt 0 ]; then
    # Big files (a core dump, a huge worker log) are left out to stay under 16 MiB.
    (cd "$WORK" && find "${logs[@]}" -type f -size -4M ! -path '*/data/*' -print0 \
        | tar -czf "$OUT/ray-logs.tar.gz" --null -T -)
    if [ "$(stat -c %s "$OUT/ray-logs.tar.gz")" -gt $((15 * 1024 * 1024)) ]; then
        (cd "$WORK" && find "${logs[@]}" -type f -size -4M \( -path '*/logs/serve/*' \
            -o -name 'gcs_server.*' -o -name 'raylet.*' \) -print0 \
            | tar -czf "$OUT/ray-logs.tar.gz" --null -T -)
    fi
else
    log "no Ray session logs (Ray never started: the tier skipped)"
fi

"$VPY" - "$OUT/junit.xml" "$rc" "$MODE" "$(($(date +%s) - started))" >"$OUT/summary.txt" <<'EOF'
import sys
import xml.etree.ElementTree as ET

junit, rc, mode, seconds = sys.argv[1:5]
counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0, "xfailed/xpassed": 0}
reasons = {}
try:
    for case in ET.parse(junit).iter("testcase"):
        kinds = [child.tag for child in case]
        if "failure" in kinds:
            counts["failed"] += 1
        elif "error" in kinds:
            counts["error"] += 1
        elif "skipped" in kinds:
            skipped = case.find("skipped")
            if skipped.get("type") == "pytest.xfail":
                counts["xfailed/xpassed"] += 1
            else:
                counts["skipped"] += 1
                reasons[skipped.get("message", "")] = reasons.get(skipped.get("message", ""), 0) + 1
        else:
            counts["passed"] += 1
except Exception as exc:
    print(f"junit report unreadable: {exc}")
import torch
print(f"GPU tier: mode={mode} exit={rc} wall={seconds}s")
print(f"torch {torch.__version__} CUDA {torch.version.cuda} available={torch.cuda.is_available()}")
print(" ".join(f"{k}={v}" for k, v in counts.items()))
for reason, n in reasons.items():
    print(f"skipped x{n}: {reason}")
EOF
log "wrote $(ls "$OUT" | tr '\n' ' ')"
cat "$OUT/summary.txt"
exit "$rc"
