#!/usr/bin/env bash
# Run on a lent GPU machine (the `run` tool, with `carry: [".gpu"]`) after `bench/gpu_kit.py` here:
# installs the kit's wheels the machine lacks, points the benchmarks at the kit's shrunk datasets,
# and runs the steps asked for, each under its own time limit, with every JSON and a log under $OUT.
#
#   bash bench/gpu_device.sh                 # "gpu": bench/gpu.sh, all six steps (under 8 minutes)
#   bash bench/gpu_device.sh unet            # unet defaults on mpdd_supervised, then 5x the steps (issue 8)
#   bash bench/gpu_device.sh check           # only the install and an import check (seconds)
#   DEVICE=cpu KIT=/tmp/kit bash bench/gpu_device.sh gpu --tiny   # the same path on a CPU (the tests)
#
# Environment: OUT (results; the run tool sets it), KIT (default .gpu), PYTHON (default python3),
# DEVICE (cuda | cpu, default cuda), STEP_LIMIT (seconds per step, default 540; bench/gpu.sh is one step),
# STEP_TIMEOUT (seconds per step inside bench/gpu.sh, default 240).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
KIT=$(cd "${KIT:-.gpu}" && pwd)
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
STEP_LIMIT=${STEP_LIMIT:-540}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/device.log") 2>&1

# Only the wheels whose project this Python cannot already import: the machine's own torch,
# numpy and OpenCV stay as they are.
SITE="$KIT/site"
mkdir -p "$SITE"
missing=()
wheels=0
for wheel in "$KIT"/whl/*.whl; do
    [ -e "$wheel" ] || { echo "gpu_device: no wheels under $KIT/whl (run bench/gpu_kit.py first)"; exit 2; }
    wheels=$((wheels + 1))
    project=$(basename "$wheel" | cut -d- -f1)
    if ! "$PYTHON" -c 'import importlib.metadata as m, sys; m.version(sys.argv[1])' "$project" 2>/dev/null; then
        missing+=("$wheel")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --target "$SITE" "${missing[@]}" || exit 3
fi
export PYTHONPATH="$SITE:$PWD" PYTHON DEVICE PYTHONUNBUFFERED=1
if [ -d "$KIT/datasets" ]; then
    export DATASETS_DIR="$KIT/datasets"
    export BENCH_NOTE="run by bench/gpu_device.sh; a shared dataset, where the step reads one, is bench/gpu_kit.py's copy with images shrunk to a longer side of 256 px (CamVid 480 px), so its metrics are at that size, not the masks' own"
fi
echo "gpu_device: installed ${#missing[@]} of $wheels wheels (the others' projects are here already); $("$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")')"
DJANGO_DEBUG=1 "$PYTHON" -c 'import django, rest_framework, celery, efficientnet_lite_pytorch, shapely, ml.registry, config.settings' || exit 4

step() {  # step NAME COMMAND...: one step under the time limit; a failure is logged and the next step runs
    local name=$1; shift
    echo "== $name ($(date -u +%H:%M:%S))"
    timeout "$STEP_LIMIT" "$@"
    local rc=$?
    echo "== $name: exit $rc"
    return 0
}

what=${1:-gpu}
shift || true
case "$what" in
    check) ;;
    gpu) OUT_DIR="$OUT/gpu" STEP_TIMEOUT=${STEP_TIMEOUT:-240} step gpu.sh bash bench/gpu.sh "$@" ;;
    unet)
        for steps in "" 4000; do
            step "unet ${steps:-default} steps" "$PYTHON" bench/quality.py --pipelines unet --datasets-only mpdd_supervised \
                --device "$DEVICE" --quiet ${steps:+--max-steps $steps} "$@" --json "$OUT/unet-${steps:-default}.json"
        done ;;
    *) echo "gpu_device: unknown step '$what' (gpu | unet | check)"; exit 2 ;;
esac
echo "gpu_device: done; results under $OUT"
