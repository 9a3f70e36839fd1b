#!/usr/bin/env bash
# The GPU benchmarks in one go, under 8 minutes on one GPU, then their tables:
#   1. speed: bare backbone, patchcore and dfr forward / predict() at batch 1 and 64 (bench/speed.py)
#   2. quality of the defaults on mpdd_metal_plate: patchcore and dfr (bench/quality.py)
#   3. the inference job end to end through a real worker: decode -> predict -> heatmap PNG ->
#      database rows, 2000 extra 256x256 images (bench/jobs.py)
#   4. the road-scene networks' frames/s at 480x360, batch 1 (bench/frame_rate.py; issue 12's ERFNet >= 20)
#   5. the rail pipeline with its defaults (256x512 working size) on the synthetic rail scenes: rail mIoU,
#      obstacle detection and frames/s end to end, both stages (bench/quality.py; issue 13's >= 27 frames/s)
#   6. images/s of the reconstruction family and the multilevel patch classifier at 256 px (bench/reconstruction_speed.py;
#      issue 10 asks for multilevel's GPU figure)
#
#   bench/gpu.sh                      # on a CUDA GPU; JSON to bench/results/gpu/ (the README's GPU section)
#   DEVICE=cpu bench/gpu.sh --tiny    # the same steps on the CPU with tiny settings; JSON to a temp folder
#
# Environment: DEVICE (cuda | cpu, default cuda), OUT_DIR (where the JSON goes), PYTHON (default .venv/bin/python),
# STEP_TIMEOUT (seconds a step may take, default none). A failed step is named at the end (exit 1); the others run.
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-.venv/bin/python}
TINY=0
if [ "${1:-}" = "--tiny" ]; then TINY=1; fi
if [ "$TINY" = 1 ]; then
    OUT_DIR=${OUT_DIR:-$(mktemp -d)}
    SPEED_ARGS=(--batches 2 --repeats 1 --synthetic 4)
    QUALITY_ARGS=(--image-size 64 --max-steps 2)
    JOBS_ARGS=(--extra 4 --size 64 --config '{"batch_size": 16}')
    FRAME_ARGS=(--frames 2 --warmup 1 --size 64x48 --networks enet)
    RAIL_ARGS=(--config '{"rail": {"image_size": 64, "max_steps": 2, "ae_steps": 2, "feature_size": 64}}')
    RECON_ARGS=(--pipelines ae,multilevel --images 2 --runs 1 --repeats 1)
else
    OUT_DIR=${OUT_DIR:-bench/results/gpu}
    SPEED_ARGS=(--batches 1,64)
    QUALITY_ARGS=()
    JOBS_ARGS=(--extra 2000 --size 256 --config '{"image_size": 256, "batch_size": 64}')
    FRAME_ARGS=(--frames 50 --warmup 10)
    RAIL_ARGS=()
    RECON_ARGS=(--images 16 --runs 3 --repeats 3)
fi
if [ "$DEVICE" = cuda ] && ! "$PYTHON" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    echo "bench/gpu.sh: no CUDA device here; DEVICE=cpu bench/gpu.sh --tiny runs the same steps on the CPU" >&2
    exit 2
fi
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1
started=$SECONDS
# A step that fails (or runs past STEP_TIMEOUT seconds, when set) is named at the end and the
# next one still runs: on a lent GPU every minute counts, and one broken step must not cost the rest.
STEP_TIMEOUT=${STEP_TIMEOUT:-0}
failed=()
step() {  # step LABEL COMMAND...
    local label=$1; shift
    if [ "$STEP_TIMEOUT" -gt 0 ]; then set -- timeout "$STEP_TIMEOUT" "$@"; fi
    "$@" || failed+=("$label (exit $?)")
}

echo "== 1/6 speed ($DEVICE)"
step speed "$PYTHON" bench/speed.py --devices "$DEVICE" "${SPEED_ARGS[@]}" --json "$OUT_DIR/speed.json"
echo "== 2/6 quality of the defaults on mpdd_metal_plate ($DEVICE), $((SECONDS - started)) s so far"
step quality "$PYTHON" bench/quality.py --pipelines patchcore,dfr --datasets-only mpdd --device "$DEVICE" --quiet \
    "${QUALITY_ARGS[@]}" --json "$OUT_DIR/quality-mpdd.json"
echo "== 3/6 inference job end to end ($DEVICE), $((SECONDS - started)) s so far"
step jobs "$PYTHON" bench/jobs.py --device "$DEVICE" "${JOBS_ARGS[@]}" --json "$OUT_DIR/jobs.json"
echo "== 4/6 road-scene frames/s ($DEVICE), $((SECONDS - started)) s so far"
step frame_rate "$PYTHON" bench/frame_rate.py --devices "$DEVICE" "${FRAME_ARGS[@]}" --json "$OUT_DIR/frame_rate.json"
echo "== 5/6 rail obstacles on synthetic scenes ($DEVICE), $((SECONDS - started)) s so far"
step rail "$PYTHON" bench/quality.py --pipelines rail --datasets-only synthetic_rail --device "$DEVICE" --quiet \
    "${RAIL_ARGS[@]}" --json "$OUT_DIR/rail.json"
echo "== 6/6 reconstruction family and multilevel images/s ($DEVICE), $((SECONDS - started)) s so far"
step reconstruction_speed "$PYTHON" bench/reconstruction_speed.py --device "$DEVICE" "${RECON_ARGS[@]}" --json "$OUT_DIR/reconstruction_speed.json"

echo
echo "== tables ($((SECONDS - started)) s in all; JSON in $OUT_DIR)"
"$PYTHON" bench/report.py --print "$OUT_DIR"
if [ ${#failed[@]} -gt 0 ]; then
    echo "bench/gpu.sh: failed steps: ${failed[*]}" >&2
    exit 1
fi
