"""Where a mining pass spends its time on a GPU: the pass taken apart (plain forward, the probe's recording
forward, + top-k, + sparsity, + the picture pipeline) and a torch.profiler table of one full pass, with the
number of host-device synchronisations.

Run: python benchmarks/profile_mining.py [--images 512] [--precision bf16 --channels-last]
"""
from __future__ import annotations

import argparse
import warnings

import torch

import cnnviz_widgets as cv
from bench_mining import pictures_at_size
from cnnviz_widgets.precision import AUTOCAST_DTYPES, compute_precision
from timing import once
from user_loops import tensor_loop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--no-table", action="store_true", help="the pass taken apart only, no profiler table")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    probe = cv.Probe(cv.load_model("vgg16", weights=None, seed=0), device="cuda")
    device, n, b = probe.device, args.images, args.batch_size
    pics = pictures_at_size(n, 224).pin_memory()
    opts = dict(batch_size=b, precision=args.precision, channels_last=args.channels_last, progress=False)
    autocast = AUTOCAST_DTYPES.get(args.precision)
    layers = [l for l in probe.layers if l.kind in ("conv", "pool")]

    def plain():
        with compute_precision(device, args.precision):
            tensor_loop(probe.model, pics, b, probe.mean, probe.std, device)

    def recording():
        with torch.no_grad(), compute_precision(device, args.precision):
            for i in range(0, n, b):
                x = probe.normalize(pics[i : i + b])
                if args.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                probe.forward_nchw(x, layers)

    rows = [("plain forward loop", plain), ("probe's recording forward, 18 layers", recording),
            ("cv.mine sparsity only", lambda: cv.mine(probe, pics, top_layers=[], **opts)),
            ("cv.mine top-9 only", lambda: cv.mine(probe, pics, top_layers=None, sparsity=False, **opts)),
            ("cv.mine top-9 + sparsity", lambda: cv.mine(probe, pics, top_layers=None, **opts))]
    print(f"VGG16, {n} in-memory pictures, batch {b}, precision={args.precision}, channels_last={args.channels_last}, "
          f"autocast dtype {autocast}")
    base = None
    for label, fn in rows:
        fn()
        t = once(fn, device)
        base = base or t
        print(f"  {label:40s} {t:6.3f} s  {n / t:8.1f} img/s  {t / base:5.2f}x")
    if args.no_table:
        return
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        cv.mine(probe, pics, top_layers=None, **opts)
        torch.cuda.synchronize(device)
    events = prof.key_averages()
    syncs = {e.key: e.count for e in events if "Synchronize" in e.key or "cudaHostAlloc" in e.key or "Memcpy" in e.key}
    print("  host-device calls in one full pass:", syncs)
    print(events.table(sort_by="self_cuda_time_total", row_limit=18, max_name_column_width=60))
    print(events.table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=60))


if __name__ == "__main__":
    main()
