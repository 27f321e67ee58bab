"""The layer on screen first: how soon DeconvExplorer shows it on an image change, and what the whole strip costs,
against what a user would otherwise run (one ``probe.reconstruct`` of that layer; one pass over every layer).

For VGG16 (21 layers), ResNet-50 and Inception-v3 (random weights, the explorer's default layer: the middle one),
measured in one run, alternating so a busy machine slows each alike:
- ``single``: ``probe.reconstruct(x, layers=<layer on screen>)``, what the first picture is compared with;
- ``all layers``: ``probe.reconstruct(x, layers=<every layer>)``, the single pass the explorer made before;
- ``explorer``: the explorer's image change as a browser-started job runs it, to the first part (the photo and the
  layer on screen; the top-5 follows) and to the whole strip (every picture displayed and encoded).
Targets (issue 23): first part within 1.5x ``single``; whole strip within 1.2x ``all layers``.

Run: python benchmarks/bench_layer_first.py [--threads 2] [--repeats 3] [--nets vgg16,resnet50,inception_v3]
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
import torchvision

import cnnviz_widgets as cv


class _Job:
    """Stands in for a browser-started job: notes when the first part is handed over."""

    def __init__(self) -> None:
        self.first: float | None = None

    def report(self, *_):
        pass

    def check(self):
        pass

    def preview(self, _part):
        if self.first is None:
            self.first = time.perf_counter()


def build(name: str) -> cv.Probe:
    torch.manual_seed(0)
    if name == "vgg16":
        return cv.Probe(cv.load_model("vgg16", weights=None, seed=0), device="cpu")
    kwargs = {"aux_logits": False, "init_weights": True} if name == "inception_v3" else {}
    return cv.Probe(getattr(torchvision.models, name)(**kwargs).eval(), device="cpu")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nets", default="vgg16,resnet50,inception_v3")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    photos = cv.sample_images()[:2]
    for name in args.nets.split(","):
        probe = build(name)
        w = cv.DeconvExplorer(probe, photos, rule="deconvnet")
        layer, layers = w.layer, list(w.layer_names)
        x = probe.model_input(w._images.raw(1))
        times: dict[str, list[float]] = {"single": [], "all": [], "first": [], "whole": []}
        for _ in range(args.repeats):
            t = time.perf_counter()
            probe.reconstruct(x, layers=layer, rule="deconvnet")
            times["single"].append(time.perf_counter() - t)
            t = time.perf_counter()
            probe.reconstruct(x, layers=layers, rule="deconvnet")
            times["all"].append(time.perf_counter() - t)
            job = _Job()
            t = time.perf_counter()
            w._reconstruct(1, "deconvnet", job)
            times["whole"].append(time.perf_counter() - t)
            times["first"].append(job.first - t)
        m = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        print(f"{name}: {len(layers)} layers, the layer on screen {layer!r}, CPU, {args.threads} threads, "
              f"median of {args.repeats}")
        print(f"  single reconstruction of that layer     {m['single']:8.0f} ms")
        print(f"  one pass over every layer (before)      {m['all']:8.0f} ms")
        print(f"  explorer: first part (photo, the layer) {m['first']:8.0f} ms")
        print(f"  explorer: the whole strip               {m['whole']:8.0f} ms")
        print(f"RATIO {name} first part / single reconstruction: {m['first'] / m['single']:.2f}x (target <= 1.5x)")
        print(f"RATIO {name} whole strip / one pass over every layer: {m['whole'] / m['all']:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
