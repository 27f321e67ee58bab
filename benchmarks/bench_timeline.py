"""TrainingTimeline: the time a slider step takes (the next checkpoint read from disk and its weights swapped in, then
the widget's whole step: every layer's reconstruction, the top-5, the zeros, the filters, the encoding), beside an image
change in DeconvExplorer on the same network (its whole strip), in the same run; and the peak memory while sliding
through 20 VGG16 checkpoints (528 MB each), against the size of one.

Networks: lesson 03's digit CNN (32 px, 8 layers) and VGG16 (224 px, 21 layers), seeded random weights, each
checkpoint a little different. The VGG16 part writes ``--checkpoints`` files of 528 MB to a temporary folder.

Run: python benchmarks/bench_timeline.py [--threads 2] [--repeats 3] [--checkpoints 20] [--no-vgg] [--no-memory]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
from memory_peak import available, peak_above_start
from torch import nn

import cnnviz_widgets as cv


class _Job:
    """Stands in for a widget's job (progress, stop checks and first parts are not timed)."""

    def report(self, *_):
        pass

    def check(self):
        pass

    def preview(self, _part):
        pass

    def status(self, _text):
        pass


def digits_cnn() -> nn.Module:
    """Lesson 03's network."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))


def record(model: nn.Module, folder: Path, n: int) -> cv.CheckpointRecorder:
    """``n`` checkpoints of ``model`` on disk, each step's weights nudged (so each reads and draws differently)."""
    rec = cv.CheckpointRecorder(model, folder=folder)
    gen = torch.Generator().manual_seed(0)
    for step in range(n):
        rec.snapshot(step * 100, loss=1.0 / (step + 1), accuracy=step / n)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1.0 + 0.02 * torch.randn((), generator=gen))
    return rec


def step_vs_image_change(name: str, model: nn.Module, pictures: list, folder: Path, n: int, repeats: int, **kw) -> None:
    rec = record(model, folder, n)
    ck = rec.checkpoints(**kw)
    timeline = cv.TrainingTimeline(ck, pictures, rule="deconvnet")
    explorer = cv.DeconvExplorer(cv.Probe(model, **kw), pictures, rule="deconvnet")
    assert timeline.error == "" and explorer.error == "", (timeline.error, explorer.error)
    job = _Job()
    order = iter(range(10**6))

    def slide() -> None:  # the next checkpoint, never cached: read from disk, swapped in, the whole step made
        timeline._compute_step(next(order) % len(ck), 0, "deconvnet", job)

    def image() -> None:
        explorer._reconstruct(0, "deconvnet", job)

    def load_only() -> None:
        ck.load(next(order) % len(ck))

    slide(), image()
    ts, te, tl = [], [], []
    def timed(run, into):
        t = time.perf_counter()
        run()
        into.append(time.perf_counter() - t)

    for _ in range(repeats):  # in alternation: a busy machine slows both alike
        timed(slide, ts)
        timed(image, te)
        timed(load_only, tl)
    s, e, l = (statistics.median(v) * 1e3 for v in (ts, te, tl))
    print(f"{name}: {len(timeline.layer_names)} layers, {n} checkpoints on disk")
    print(f"  slider step (read + swap + whole step)  {s:9.1f} ms   of which read + swap {l:8.1f} ms")
    print(f"  explorer image change (whole strip)      {e:9.1f} ms")
    print(f"RATIO {name} slider step / explorer image change: {s / e:.2f}x")


def vgg_memory(folder: Path, n: int) -> None:
    if not available():
        print("peak memory: needs Linux's /proc/self/clear_refs and glibc; skipped")
        return
    model = cv.load_model("vgg16", weights=None, seed=0)
    snapshot = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    t = time.perf_counter()
    rec = record(model, folder, n)
    print(f"VGG16: wrote {n} checkpoints of {snapshot / 2**20:.0f} MB in {time.perf_counter() - t:.0f} s")
    ck = rec.checkpoints(device="cpu")
    x = ck.model_input(cv.sample_images()[0][1])
    ck.load(0).reconstruct(x, layers=["c1_1"], rule="deconvnet")  # the first pass's own buffers

    def slide() -> None:
        for i in range(1, len(ck)):
            ck.load(i).reconstruct(x, layers=["c1_1", "c5_3", "fc8"], rule="deconvnet")

    t = time.perf_counter()
    peak, _ = peak_above_start(slide)
    print(f"  sliding through all {n} (read, swap, c1_1 c5_3 fc8 reconstructed) took {time.perf_counter() - t:.0f} s")
    print(f"  peak resident memory above the start (one checkpoint loaded): {peak / 2**20:.0f} MB "
          f"= {peak / snapshot:.2f} snapshots; with the one held at the start, {1 + peak / snapshot:.2f} (bound: 3)")
    print(f"RATIO VGG16 checkpoints' peak memory / one snapshot: {1 + peak / snapshot:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--checkpoints", type=int, default=20)
    ap.add_argument("--no-vgg", action="store_true")
    ap.add_argument("--no-memory", action="store_true", help="skip the 20 VGG16 checkpoints' peak memory")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    digits = [(f"digit {d}", (torch.rand(32, 32, 3) * 255).to(torch.uint8).numpy()) for d in range(2)]
    with tempfile.TemporaryDirectory() as tmp:
        step_vs_image_change("digit CNN", digits_cnn().eval(), digits, Path(tmp) / "digits", args.checkpoints,
                             args.repeats * 5, device="cpu", input_size=32)
        if not args.no_vgg:
            vgg = cv.load_model("vgg16", weights=None, seed=0)
            step_vs_image_change("VGG16", vgg, cv.sample_images()[:1], Path(tmp) / "vgg-time", 4, args.repeats,
                                 device="cpu")
            del vgg
            if not args.no_memory:
                vgg_memory(Path(tmp) / "vgg", args.checkpoints)


if __name__ == "__main__":
    main()
