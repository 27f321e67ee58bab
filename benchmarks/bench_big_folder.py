"""Big folders: top patches + sparsity (one ``cv.mine`` pass) over generated JPEG folders of 1,000 and
10,000 pictures, read by DataLoader worker processes, vs a torchvision reading loop (decode_jpeg) with the
same readers and only a forward pass (benchmarks/user_loops.py).

Prints images/second for both, their ratio, and the peak memory (this process's RSS, and what its
reader processes hold of their own, sampled) at each folder size: it must stay flat as the folder grows, since nothing
but O(filters x k) results is kept across batches.

Run: python benchmarks/bench_big_folder.py [--images 1000 10000] [--model alexnet_paper] [--input-size 224]
The JPEGs (crops of the bundled sample photos) are made once under --folder and reused.
"""
from __future__ import annotations

import argparse
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import torch

import cnnviz_widgets as cv
from cnnviz_widgets.kernels.stream import default_workers, device_batch
from user_loops import folder_loop

PER_FOLDER = 1000


def make_folder(root: Path, n: int, side: int = 160, quality: int = 85) -> Path:
    """``n`` JPEGs under ``root``/partK/ (1,000 per subfolder), each a seeded crop of a sample photo.

    Pictures already there are kept, so a second run only adds what is missing.
    """
    from PIL import Image

    photos = [np.asarray(Image.fromarray(p).convert("RGB")) for _, p in cv.sample_images()]
    for i in range(n):
        path = root / f"part{i // PER_FOLDER}" / f"{i:06d}.jpg"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(i)
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        s = int(min(h, w) * rng.uniform(0.3, 1.0))
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        crop = Image.fromarray(photo[y : y + s, x : x + s]).resize((side, side), Image.BILINEAR)
        crop.save(path, quality=quality)
    return root


def source_for(root: Path, n: int, total: int) -> Path | list[str]:
    """What ``load_images`` is given for the first ``n`` pictures: the whole folder, one subfolder, or paths."""
    if n >= total:
        return root
    if n == PER_FOLDER:
        return root / "part0"
    return [str(root / f"part{i // PER_FOLDER}" / f"{i:06d}.jpg") for i in range(n)]


def peak_memory(fn: Callable[[], object], every: float = 0.02) -> tuple[tuple[float, float], object]:
    """Run ``fn``; return the highest resident memory (MiB) of this process, and the highest memory its
    reader processes held of their own (USS: the pages they share with this process counted once)."""
    me, peak, done = psutil.Process(), [0, 0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], me.memory_info().rss)
            own = 0
            for child in me.children(recursive=True):
                try:
                    own += child.memory_full_info().uss
                except psutil.Error:
                    pass
            peak[1] = max(peak[1], own)
            time.sleep(every)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        out = fn()
    finally:
        done.set()
        t.join()
    return (peak[0] / 2**20, peak[1] / 2**20), out


def plain_loop(probe: cv.Probe, images: cv.ImageSet, batch_size: int, workers: int) -> int:
    """The obvious alternative: a torchvision reading loop with the same workers, and only ``model(x)``."""
    paths = [images.raw(i) for i in range(len(images))]
    return folder_loop(probe.model, paths, probe.input_size, batch_size, workers, probe.mean, probe.std, probe.device)


def measure(probe: cv.Probe, source: Path | list[str], k: int = 9, batch_size: int = 32, plain: bool = True) -> dict:
    """One folder size: listing time, mining and (``plain``) the plain loop (time, img/s, peak memory); without the
    plain loop its time and memory are None (the test of memory only needs the mining)."""
    t = time.perf_counter()
    images = cv.load_images(source)
    listing = time.perf_counter() - t
    convs = [l.name for l in probe.layers if l.kind == "conv"]
    workers = default_workers(images)
    sparse = [l for l in probe.layers if l.kind in ("conv", "pool")]
    batch = device_batch(probe, sparse, batch_size)

    t = time.perf_counter()
    mem_mine, mined = peak_memory(lambda: cv.mine(probe, images, top_layers=convs, k=k, batch_size=batch_size,
                                                  progress=False))
    t_mine = time.perf_counter() - t
    mem_plain, t_plain = None, None
    if plain:
        t = time.perf_counter()
        mem_plain, n_plain = peak_memory(lambda: plain_loop(probe, images, batch, workers))
        t_plain = time.perf_counter() - t
        assert n_plain == len(images)
    assert mined.sparsity.n_images == len(images)
    return {"n": len(images), "workers": workers, "batch": batch, "listing_s": listing, "mine_s": t_mine,
            "plain_s": t_plain, "mine_mib": mem_mine, "plain_mib": mem_plain, "mined": mined}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--model", default="alexnet_paper")
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--folder", default="/tmp/cnnviz-big-folder")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    root = Path(args.folder)
    t = time.perf_counter()
    make_folder(root, max(args.images))
    print(f"{max(args.images)} JPEGs ready under {root} ({time.perf_counter() - t:.0f} s)")
    probe = cv.Probe(cv.load_model(args.model, weights=None, seed=0), input_size=args.input_size)
    measure(probe, source_for(root, 100, max(args.images)))  # warm-up: allocator pools, lazy imports
    rows = []
    for n in sorted(args.images):
        r = measure(probe, source_for(root, n, max(args.images)))
        rows.append(r)
        print(f"{r['n']:6d} pictures ({r['workers']} reader processes, batch {r['batch']}): listing {r['listing_s']:5.1f} s | "
              f"mine {r['n'] / r['mine_s']:6.1f} img/s, peak {r['mine_mib'][0]:5.0f} + {r['mine_mib'][1]:4.0f} MiB | "
              f"plain loop {r['n'] / r['plain_s']:6.1f} img/s, peak {r['plain_mib'][0]:5.0f} + {r['plain_mib'][1]:4.0f} MiB | "
              f"RATIO mine / plain time {r['mine_s'] / r['plain_s']:.3f}x")
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        for j, who in enumerate(("this process (RSS)", "its reader processes (USS)")):
            print(f"peak memory of the mining pass, {who}: {a['mine_mib'][j]:.0f} MiB at {a['n']} -> "
                  f"{b['mine_mib'][j]:.0f} MiB at {b['n']} ({b['mine_mib'][j] - a['mine_mib'][j]:+.0f} MiB for "
                  f"{b['n'] / a['n']:.0f}x the pictures)")


if __name__ == "__main__":
    main()
