#!/usr/bin/env bash
# Issue 6's GPU figures in one run, sized for a lent machine's 15 minutes (about 4 minutes of work on an H100):
#   VGG16 all-layer deconvnet latency (layer by layer, batched backward, bf16/fp16 with their error vs fp32,
#   Captum loop), mining img/s vs a plain forward loop (fp32, then channels_last + bf16), t-SNE of 50,000
#   patches, and the soak test with torch.cuda.memory_allocated.
# Here first: bash benchmarks/gpu_wheels.sh   (the packages the lent image lacks, into .whl/)
# Then the device tool: run(command="bash benchmarks/gpu_report.sh", carry=[".whl"], timeout_s=420)
# A dry run of the same steps on this CPU, at toy sizes: QUICK=1 bash benchmarks/gpu_report.sh cpu
set -uo pipefail
cd "$(dirname "$0")/.."
device=${1:-cuda}
out=${OUT:-/tmp}/gpu_report.txt
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! python3 -c "import anywidget, captum, openTSNE" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "the packages this needs are missing: run benchmarks/gpu_wheels.sh here and carry .whl" >&2; exit 2; }
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
if [ "${QUICK:-0}" = 1 ]; then  # toy sizes: checks that every step runs, measures nothing
  deconv=(--repeats 1) mining=(--model alexnet_paper --images 16 --input-size 96 --batch-size 8 --workers 2 --repeats 1)
  tsne=(--patches 600 --images 4 --grid 10) limit=300
else
  deconv=(--repeats 10 --threads 8) mining=(--images 1024 --batch-size 64 --workers 12 --threads 4 --repeats 3)
  tsne=(--patches 50000 --images 80 --threads 16) limit=150
fi

step() {  # step NAME SECONDS COMMAND...: run it under a time limit, its output to the screen and the report
  local name=$1 seconds=$2; shift 2
  printf '\n## %s  (%s)\n' "$name" "$*" | tee -a "$out"
  local t=$SECONDS
  timeout "$seconds" "$@" 2>&1 | grep -vE "^WARNING: Location|UserWarning|warnings.warn" | tee -a "$out"
  local rc=${PIPESTATUS[0]}
  printf '%s: exit %s after %s s\n' "$name" "$rc" "$((SECONDS - t))" | tee -a "$out"
}

: >"$out"
step machine 60 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null;
  python3 -c 'import torch; print(\"torch\", torch.__version__, \"cuda\", torch.cuda.is_available())'"
step deconvnet "$limit" python3 benchmarks/bench_deconvnet.py --device "$device" --variants "${deconv[@]}"
step mining-fp32 "$limit" python3 benchmarks/bench_mining.py --device "$device" "${mining[@]}"
step mining-nhwc-bf16 "$limit" python3 benchmarks/bench_mining.py --device "$device" "${mining[@]}" --channels-last --autocast bf16
step tsne "$limit" python3 benchmarks/bench_embedding.py --device "$device" --no-reference "${tsne[@]}"
step soak "$limit" python3 -m pytest -q -s -p no:cacheprovider tests/test_soak.py
echo "report: $out"
