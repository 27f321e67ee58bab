"""Mining pass (top-k of every conv layer + sparsity of every conv/pool layer) vs a plain forward loop.

Both read the same pictures through the same DataLoader, at the batch size mining uses (the asked one,
capped by the device's memory budget); the plain loop only runs model(x).
Run: python benchmarks/bench_mining.py [--model vgg16] [--images N] [--input-size 224] [--threads 2]
     [--device cuda] [--workers 8] [--channels-last] [--autocast bf16]   (the plain loop stays float32, NCHW)
On a GPU give --workers: preparing pictures in one process would be what is measured.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from torch.utils.data import DataLoader

import cnnviz_widgets as cv
from cnnviz_widgets.imageset import load_images
from cnnviz_widgets.kernels.stream import PreparedPictures, _collate, device_batch


class Generated:
    def __init__(self, n: int) -> None:
        self.n = n
        self.photos = [img for _, img in cv.sample_images()]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> np.ndarray:
        img = self.photos[i % len(self.photos)]
        return np.ascontiguousarray(np.roll(img, 13 * i, axis=1))


def plain_loop(probe, images, batch_size, workers):
    loader = DataLoader(PreparedPictures(images, range(len(images)), probe.input_size), batch_size=batch_size,
                        num_workers=workers, collate_fn=_collate, pin_memory=probe.device.type == "cuda")
    with torch.no_grad():
        for _, batch, _ in loader:
            probe.model((batch.to(probe.device, non_blocking=True) - probe.mean) / probe.std)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vgg16")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default=None)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader reader processes, for both loops")
    ap.add_argument("--channels-last", action="store_true", help="mine with channels_last input (a GPU option)")
    ap.add_argument("--autocast", default=None, help="mine under autocast: bf16 or fp16 (a GPU option)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    model = cv.load_model(args.model, weights=None).eval()
    probe = cv.Probe(model, device=args.device, input_size=args.input_size)
    images = load_images(Generated(args.images))
    options = {"channels_last": args.channels_last, "autocast": args.autocast}
    mine = lambda: cv.mine(probe, images, top_layers=None, k=9, batch_size=args.batch_size, progress=False,
                           num_workers=args.workers, **options)
    mined_layers = [l for l in probe.layers if l.kind in ("conv", "pool")]
    batch = device_batch(probe, mined_layers, args.batch_size)
    plain = lambda: plain_loop(probe, images, batch, args.workers)
    mine(), plain()
    t_mine, t_plain = [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        for fn, out in ((plain, t_plain), (mine, t_mine)):
            if probe.device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if probe.device.type == "cuda":
                torch.cuda.synchronize()
            out.append(time.perf_counter() - t)
    a, b = statistics.median(t_plain), statistics.median(t_mine)
    n_top = sum(l.kind == "conv" for l in probe.layers)
    n_sp = sum(l.kind in ("conv", "pool") for l in probe.layers)
    print(f"{args.model} at {args.input_size}px, {args.images} pictures, batch {batch} (asked {args.batch_size}), "
          f"device={probe.device}, threads={args.threads}, workers={args.workers}, channels_last={args.channels_last}, "
          f"autocast={args.autocast}")
    print(f"  plain forward loop                        {a:7.2f} s  {args.images / a:7.1f} img/s")
    print(f"  mine: top-9 of {n_top} conv layers + sparsity of {n_sp}   {b:7.2f} s  {args.images / b:7.1f} img/s")
    print(f"RATIO mining / plain forward: {b / a:.3f}x  (target <= 1.15x)")


if __name__ == "__main__":
    main()
