"""On a GPU: the streaming kernels' results on CUDA against the CPU (the sync-free top-k, the device-side
zero counts, exact float32), and decode="cuda" against the readers' decoding. Prints what differs.

Run: python benchmarks/check_cuda.py [--images 48]
"""
from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

import cnnviz_widgets as cv
from bench_mining import make_jpegs


def compare(a: cv.Mined, b: cv.Mined, label: str) -> None:
    same_pos = np.mean([float((a.top[n].image_index == b.top[n].image_index).float().mean()) for n in a.top])
    rel = max(float((a.top[n].values - b.top[n].values).abs().max() / b.top[n].values.abs().max()) for n in a.top)
    zeros = max(abs(a.sparsity.zeros[n] - b.sparsity.zeros[n]) / b.sparsity.totals[n] for n in b.sparsity.zeros)
    print(f"  {label:38s} top-k places equal: {same_pos:.4f}, largest value difference {rel:.1e} of the peak, "
          f"zero fractions within {zeros:.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=48)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    model = cv.load_model("alexnet_paper", weights=None, seed=0)
    gpu, cpu = cv.Probe(model, device="cuda"), cv.Probe(model, device="cpu")
    with tempfile.TemporaryDirectory() as folder:
        paths = make_jpegs(Path(folder), args.images)
        on_cpu = cv.mine(cpu, paths, top_layers=None, k=9, progress=False, batch_size=16)
        print(f"alexnet_paper, {args.images} JPEGs, top-9 of every conv layer + sparsity:")
        compare(cv.mine(gpu, paths, top_layers=None, k=9, progress=False, batch_size=16), on_cpu, "CUDA fp32 vs CPU")
        compare(cv.mine(gpu, paths, top_layers=None, k=9, progress=False, batch_size=16, decode="cuda"), on_cpu,
                "CUDA fp32, nvjpeg vs CPU")
        compare(cv.mine(gpu, paths, top_layers=None, k=9, progress=False, batch_size=16, precision="tf32"), on_cpu,
                "CUDA tf32 vs CPU")
        pics = torch.stack([cpu.prepare(p).mul(255).round().to(torch.uint8) for p in paths[:32]])
        compare(cv.mine(gpu, pics, top_layers=None, k=9, progress=False, batch_size=8),
                cv.mine(cpu, pics, top_layers=None, k=9, progress=False, batch_size=8), "in memory, CUDA vs CPU")
    from cnnviz_widgets.kernels.topk import map_topk_keys, map_topk_rows

    g = torch.Generator().manual_seed(0)
    maps = torch.randint(0, 5, (64, 56, 56), generator=g).float()
    ok = all(torch.equal(a.cpu(), b) for a, b in zip(map_topk_keys(maps.cuda(), 9), map_topk_rows(maps, 9)))
    print(f"  sync-free top-k on CUDA equals the CPU's on tie-heavy maps: {ok}")


if __name__ == "__main__":
    main()
