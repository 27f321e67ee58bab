#!/usr/bin/env bash
# Every GPU figure of issues 6 and 11 in one run, sized for a lent machine's 15 minutes (about 6 minutes of work
# on an H100, plus its start):
#   VGG16 deconvnet latency vs its floor and a Captum loop, the variants (batched, tf32, bf16/fp16) with their errors,
#   CUDA vs CPU per layer; the explorer's image change; mining in memory (fp32, then bf16 + channels_last) vs a
#   plain forward loop; mining a JPEG folder vs a torchvision loop, decoded by the readers and by nvjpeg (and with the
#   batch-wide top-k, TopKMiner.by_rows);
#   t-SNE of 20,000 patches; the soak test with torch.cuda.memory_allocated.
# Here first: bash benchmarks/gpu_wheels.sh   (the packages the lent image lacks, into .whl/)
# Then the device tool: run(command="bash benchmarks/gpu_report.sh", carry=[".whl"], timeout_s=540)
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
  deconv=(--repeats 1) explorer=(--repeats 1)
  memory=(--model alexnet_paper --images 16 --folder-images 0 --input-size 96 --batch-size 8 --repeats 1)
  folder=(--model alexnet_paper --images 0 --folder-images 16 --input-size 96 --batch-size 8 --workers 2 --repeats 1
          --folder /tmp/cnnviz-quick-jpegs)
  tsne=(--patches 600 --images 4 --grid 10) limit=300 gpu_decode=cpu
else
  deconv=(--repeats 5 --threads 8) explorer=(--repeats 10 --threads 8)
  memory=(--model vgg16 --images 2048 --folder-images 0 --batch-size 128 --threads 4 --repeats 3)
  folder=(--model vgg16 --images 0 --folder-images 3000 --batch-size 128 --workers 14 --threads 2 --repeats 2)
  tsne=(--patches 20000 --images 40 --threads 16) limit=150 gpu_decode=cuda
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
[ "$device" = cuda ] && step cuda-vs-cpu 90 python3 benchmarks/check_cuda.py
step deconvnet "$limit" python3 benchmarks/bench_deconvnet.py --device "$device" --variants "${deconv[@]}"
step explorer 90 python3 benchmarks/bench_explorer.py --device "$device" "${explorer[@]}"
step mining-memory-fp32 "$limit" python3 benchmarks/bench_mining.py --device "$device" "${memory[@]}"
step mining-memory-bf16-nhwc "$limit" python3 benchmarks/bench_mining.py --device "$device" "${memory[@]}" --precision bf16 --channels-last
step mining-folder-readers "$limit" python3 benchmarks/bench_mining.py --device "$device" "${folder[@]}"
step mining-folder-nvjpeg-bf16 "$limit" python3 benchmarks/bench_mining.py --device "$device" "${folder[@]}" --decode "$gpu_decode" --precision bf16 --channels-last
# the batch-wide top-k where it once hit a device-side index assert (before nvjpeg waited for the stream)
step mining-folder-nvjpeg-bf16-by-rows "$limit" python3 benchmarks/bench_mining.py --device "$device" "${folder[@]}" --decode "$gpu_decode" --precision bf16 --channels-last --by-rows
step tsne 100 python3 benchmarks/bench_embedding.py --device "$device" --no-reference "${tsne[@]}"
step soak "$limit" python3 -m pytest -q -s -n 0 -p no:cacheprovider tests/system/test_soak.py
echo "report: $out"
