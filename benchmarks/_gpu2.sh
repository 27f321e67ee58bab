#!/usr/bin/env bash
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH="$PYTHONPATH:/tmp/site"
out=$OUT/gpu_report3.txt
run() { echo "## $*" | tee -a "$out"; timeout "$1" "${@:2}" 2>&1 | grep -vE "Warning|warn" | tee -a "$out"; }
run 40 python3 benchmarks/profile_mining.py --images 512 --no-table
run 40 python3 benchmarks/profile_mining.py --images 512 --precision bf16 --channels-last --no-table
run 60 python3 benchmarks/bench_mining.py --device cuda --model vgg16 --images 0 --folder-images 3000 --batch-size 128 --workers 14 --threads 2 --repeats 1
run 50 python3 benchmarks/bench_mining.py --device cuda --model vgg16 --images 0 --folder-images 3000 --batch-size 128 --workers 14 --threads 2 --repeats 1 --decode cuda --precision bf16 --channels-last
