"""Mining (top-9 of every conv layer + sparsity of every conv/pool layer, one ``cv.mine`` pass) against what a
user writes without it, on the user's own path, measured in one run (benchmarks/user_loops.py):

- in memory: an (N, 3, S, S) uint8 tensor of pictures at the input size vs a plain forward loop over it;
- a JPEG folder (--folder-images pictures, 400x350, made once under --folder) vs a torchvision loop
  (decode_jpeg, antialiased uint8 resize, centre crop) with the same number of DataLoader readers;
  with --decode cuda both decode on the GPU (nvjpeg).

Run: python benchmarks/bench_mining.py [--model vgg16] [--images N] [--folder-images N] [--workers 2]
     [--input-size 224] [--threads 2] [--device cuda] [--precision bf16] [--channels-last] [--decode cuda]
The baselines run in float32 unless --precision is bf16/fp16 (then under the same autocast); TF32 stays off.
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch

import cnnviz_widgets as cv
from cnnviz_widgets.kernels.stream import device_batch
from cnnviz_widgets.kernels.topk import TopKMiner
from cnnviz_widgets.precision import AUTOCAST_DTYPES, tf32
from timing import paired
from user_loops import folder_loop, tensor_loop


def pictures_at_size(n: int, size: int) -> torch.Tensor:
    """``n`` different crops of the bundled photos, (n, 3, size, size) uint8."""
    from cnnviz_widgets.images import prepare_raw

    photos = [img for _, img in cv.sample_images()]
    return torch.stack([prepare_raw(np.ascontiguousarray(np.roll(photos[i % len(photos)], 13 * i, axis=1)), size)
                        for i in range(n)])


def make_jpegs(root: Path, n: int) -> list[str]:
    """``n`` JPEGs of 400x350 (ImageNet-like, about 40 kB), crops of the bundled photos, made once."""
    from PIL import Image

    photos = [img for _, img in cv.sample_images()]
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = root / f"{i:06d}.jpg"
        if not path.exists():
            rng = np.random.default_rng(i)
            photo = photos[i % len(photos)]
            h, w = photo.shape[:2]
            s = int(min(h, w) * rng.uniform(0.5, 1.0))
            y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            img = Image.fromarray(np.ascontiguousarray(photo[y : y + s, x : x + s])).convert("RGB").resize((400, 350))
            img.save(path, quality=90)
        paths.append(str(path))
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="alexnet_paper")
    ap.add_argument("--images", type=int, default=64, help="in-memory pictures (0: skip)")
    ap.add_argument("--folder-images", type=int, default=160, help="JPEGs in the folder (0: skip)")
    ap.add_argument("--folder", default="/tmp/cnnviz-bench-jpegs")
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default=None)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader readers for the folder, both loops")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--precision", default="fp32", help="fp32 (exact), tf32, bf16 or fp16")
    ap.add_argument("--decode", default="cpu", help="cpu or cuda (nvjpeg), both loops")
    ap.add_argument("--by-rows", action="store_true", help="the batch-wide top-k (TopKMiner.by_rows, opt-in)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    TopKMiner.by_rows = args.by_rows
    model = cv.load_model(args.model, weights=None).eval()
    probe = cv.Probe(model, device=args.device, input_size=args.input_size)
    device = probe.device
    options = cv.StreamOptions(batch_size=args.batch_size, precision=args.precision, channels_last=args.channels_last,
                               decode=args.decode)
    batch = device_batch(probe, [l for l in probe.layers if l.kind in ("conv", "pool")], args.batch_size)
    autocast = AUTOCAST_DTYPES.get(args.precision)
    mine = lambda images, **kw: cv.mine(probe, images, top_layers=None, k=9, progress=False, options=options, **kw)  # noqa: E731
    print(f"{args.model} at {args.input_size}px, batch {batch} (asked {args.batch_size}), device={device}, "
          f"threads={args.threads}, precision={args.precision}, channels_last={args.channels_last}, decode={args.decode}, "
          f"by_rows={args.by_rows}")
    n_top = sum(l.kind == "conv" for l in probe.layers)
    n_sp = sum(l.kind in ("conv", "pool") for l in probe.layers)
    print(f"  mining = top-9 of {n_top} conv layers + sparsity of {n_sp} layers, one pass")
    with tf32(args.precision == "tf32"):
        if args.images:
            pics = pictures_at_size(args.images, args.input_size)
            if device.type == "cuda":
                pics = pics.pin_memory()

            def plain() -> None:
                with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                    tensor_loop(probe.model, pics, batch, probe.mean, probe.std, device)

            a, b = paired(plain, lambda: mine(pics), args.repeats, device)
            print(f"in memory, {args.images} pictures (uint8 tensor at the input size):")
            print(f"  plain forward loop       {a:7.2f} s  {args.images / a:8.1f} img/s")
            print(f"  cv.mine                  {b:7.2f} s  {args.images / b:8.1f} img/s")
            print(f"RATIO in-memory mining / plain forward loop: {b / a:.3f}x  (target <= 1.15x CPU, <= 1/0.85 GPU)")
        if args.folder_images:
            paths = make_jpegs(Path(args.folder), args.folder_images)
            a, b = paired(lambda: folder_loop(probe.model, paths, args.input_size, batch, args.workers, probe.mean,
                                              probe.std, device, args.decode, autocast),
                          lambda: mine(paths, num_workers=args.workers), args.repeats, device)
            print(f"JPEG folder, {args.folder_images} pictures of 400x350, {args.workers} readers, decode={args.decode}:")
            print(f"  torchvision loop         {a:7.2f} s  {args.folder_images / a:8.1f} img/s")
            print(f"  cv.mine                  {b:7.2f} s  {args.folder_images / b:8.1f} img/s")
            print(f"RATIO folder mining / torchvision loop: {b / a:.3f}x  (target <= 1.15x CPU, <= 1/0.9 GPU)")


if __name__ == "__main__":
    main()
