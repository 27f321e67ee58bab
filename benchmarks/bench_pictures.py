"""Time and peak memory to prepare one picture for a 224-pixel network: a camera photo (a JPEG of --megapixels),
an ordinary 640x480 photo, and thin pictures (1x4000, 1x10000, 1x100000 PNGs: a thin picture was resized whole
before its crop, 3.2 GB for 1x10000; it is resized within its crop now).

Project: ``probe.preprocess(path)`` (JPEG draft decode at a reduced scale, then resize and crop).
What a user would otherwise write: ``torchvision.transforms`` Resize(224) + CenterCrop(224) + ToTensor on
``Image.open(path).convert("RGB")`` (a full-size decode), and the project's pipeline with the early
reduction switched off (a full-size float tensor, as it was before). Each runs in its own process, so
its peak resident memory (ru_maxrss) is its own. Also prints how far the reduced picture is from the
full-size one (mean absolute difference in 8-bit levels). Run: python benchmarks/bench_pictures.py
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

CHILD = r"""
import json, resource, sys, time
import torch
from torch import nn
import cnnviz_widgets as cv, cnnviz_widgets.decode as decode, cnnviz_widgets.resize as resize
torch.set_num_threads(2)
path, how, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
probe = cv.Probe(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval(), input_size=224)
if how == "full":
    decode.REDUCE_MARGIN = 10**9  # no early reduction: what the pipeline did before
if how == "whole":
    resize.WINDOW_AREA = 10**12  # a thin picture resized whole, then cropped: what the pipeline did before
if how == "torchvision":
    from torchvision import transforms
    from PIL import Image
    t = transforms.Compose([transforms.Resize(224), transforms.CenterCrop(224), transforms.ToTensor()])
    run = lambda: t(Image.open(path).convert("RGB"))
else:
    run = lambda: probe.prepare(path)
probe.prepare(torch.rand(3, 300, 400))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(repeats):
    t0 = time.perf_counter(); out = run(); times.append(time.perf_counter() - t0)
extra = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
torch.save(out, sys.argv[4])
print(json.dumps({"s": sorted(times)[len(times) // 2], "mb": extra}))
"""


def measure(path: str, how: str, repeats: int, out: str) -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, path, how, str(repeats), out], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def thin_cases(tmp: str) -> None:
    """Ordinary and thin pictures: the project beside torchvision's transforms and the whole-resize pipeline."""
    rng = np.random.default_rng(1)
    cases = [("640x480 JPEG", (480, 640), ".jpg"), ("1x4000 PNG", (1, 4000), ".png"), ("1x10000 PNG", (1, 10000), ".png"),
             ("1x100000 PNG", (1, 100000), ".png")]
    print("\nordinary and thin pictures, 224-pixel input, median of 3 (peak MB above the peak before)")
    print(f"  {'picture':14s} {'project':>18s} {'whole resize (before)':>24s} {'torchvision transforms':>26s}")
    for label, (h, w), ext in cases:
        path = os.path.join(tmp, f"p{h}x{w}{ext}")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        row = {"project": measure(path, "project", 3, os.path.join(tmp, "o.pt"))}
        for how in ("whole", "torchvision"):  # 1x100000 resized whole needs some 15 GB: not run
            row[how] = measure(path, how, 3, os.path.join(tmp, "o.pt")) if h * w <= 10000 or h > 1 else None
        cell = lambda r: "skipped (~15 GB)" if r is None else f"{r['s'] * 1000:7.1f} ms {r['mb']:6.0f} MB"  # noqa: E731
        print(f"  {label:14s} {cell(row['project']):>18s} {cell(row['whole']):>24s} {cell(row['torchvision']):>26s}")
        if row["torchvision"] is not None:
            print(f"  {'':14s} torchvision/project: {row['torchvision']['s'] / row['project']['s']:.1f}x the time, "
                  f"{row['torchvision']['mb'] / max(row['project']['mb'], 1):.0f}x the memory")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--megapixels", type=float, default=48.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        w = int(round((args.megapixels * 1e6 * 4 / 3) ** 0.5))
        h = w * 3 // 4
        rng = np.random.default_rng(0)
        path = os.path.join(tmp, "camera.jpg")
        Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)).resize((w, h), Image.BILINEAR).save(path, quality=90)
        print(f"{w}x{h} JPEG ({os.path.getsize(path) / 1e6:.1f} MB on disk), 224-pixel input, median of {args.repeats}")
        rows = {}
        for how in ("project", "full", "torchvision"):
            rows[how] = measure(path, how, args.repeats, os.path.join(tmp, f"{how}.pt"))
            print(f"  {how:12s} {rows[how]['s'] * 1000:8.0f} ms  {rows[how]['mb']:7.0f} MB above the peak before")
        p, f = (torch.load(os.path.join(tmp, f"{h_}.pt")) for h_ in ("project", "full"))
        print(f"project vs full-size pipeline: {rows['full']['s'] / rows['project']['s']:.1f}x faster, "
              f"{rows['full']['mb'] / max(rows['project']['mb'], 1):.1f}x less memory; "
              f"mean |difference| {float((p - f).abs().mean()) * 255:.2f} levels of 255")
        print(f"project vs torchvision transforms: {rows['torchvision']['s'] / rows['project']['s']:.1f}x faster, "
              f"{rows['torchvision']['mb'] / max(rows['project']['mb'], 1):.1f}x less memory")
        thin_cases(tmp)


if __name__ == "__main__":
    main()
