"""DeconvExplorer's image change: the reconstruction itself, and every other piece of work around it (the
picture, the top-5, the strip's display, the encoding), for VGG16's 21 layers.

The other work is timed with the reconstruction cached (the kernel's own cost is bench_deconvnet's), so the
figure is what the explorer adds. The way it used to be done is timed in the same run for comparison: a
second forward pass for the top-5 (``probe.classify``) and 22 PNG encodings.

Run: python benchmarks/bench_explorer.py [--threads 2] [--device cuda] [--repeats 15]
"""
from __future__ import annotations

import argparse
import time
import warnings

import torch

import cnnviz_widgets as cv
from cnnviz_widgets.display import choose_display, to_display
from cnnviz_widgets.widgets.encoding import picture_bytes, picture_format, png_bytes
from timing import timed


class _Job:
    """Stands in for the widget's job: notes when the first part (the photo, the layer on screen) is ready."""

    def __init__(self, first: list[float]) -> None:
        self.first = first

    def report(self, *_):
        pass

    def check(self):
        pass

    def preview(self, _part):
        self.first.append(time.perf_counter())


def median_ms(fn, repeats: int, device: torch.device) -> float:
    return timed(fn, repeats, device) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    probe = cv.Probe(cv.load_model("vgg16", weights=None, seed=0), device=args.device)
    device = probe.device
    w = cv.DeconvExplorer(probe, cv.sample_images()[:2])
    assert w.error == "", w.error
    x = probe.model_input(w._images.raw(0))
    real = probe.reconstruct
    t_rec = median_ms(lambda: real(x, layers=w._layers, rule="deconvnet"), args.repeats, device)

    cache: dict = {}

    def cached(x, layers=None, rule="deconvnet", on_forward=None, progress=None, next_layer=None, on_layer=None, **kw):
        """The reconstruction from the first call; on_forward still sees the forward pass's activations, and
        on_layer hears every layer, the one next_layer wants first (as the kernel does)."""
        if "recs" not in cache:
            acts = {}
            cache["recs"] = real(x, layers=layers, rule=rule, progress=progress,
                                 on_forward=lambda a: acts.update(a) or (on_forward(a) if on_forward else None), **kw)
            cache["acts"] = acts
        elif on_forward is not None:
            on_forward(cache["acts"])
        todo = list(cache["recs"]) if on_layer is not None else []
        while todo:
            wanted = next_layer() if next_layer is not None else None
            name = wanted if wanted in todo else todo[0]
            todo.remove(name)
            on_layer(name, cache["recs"][name])
        return cache["recs"]

    probe.reconstruct = cached
    firsts: list[float] = []
    changes: list[float] = []

    def change() -> None:
        start = time.perf_counter()
        w._reconstruct(0, "deconvnet", _Job(firsts))
        changes.append(time.perf_counter() - start)
        firsts[-1] -= start

    t_new = median_ms(change, args.repeats, device)
    firsts, changes = firsts[1:], changes[1:]  # not the warm-up call, which made the cached reconstruction
    t_first = sorted(firsts)[len(firsts) // 2] * 1e3
    spread = f"{min(changes) * 1e3:.1f}-{max(changes) * 1e3:.1f} ms over {len(changes)} changes"
    probe.reconstruct = real
    recs = cache["recs"]

    def before() -> None:  # the earlier image change, beside the reconstruction: a second forward pass, PNGs
        probe.classify(x, k=5)
        pictures = [to_display(recs[n][0], choose_display([recs[n][0] for n in w._layers])) for n in w._layers]
        [png_bytes(p) for p in [probe.to_image(x)[0], *pictures]]

    t_old = median_ms(before, args.repeats, device)
    strip = torch.cat([recs[n] for n in w._layers])
    t_display = median_ms(lambda: to_display(strip, choose_display([strip])), args.repeats, device)
    shown = to_display(strip, choose_display([strip]))
    print(f"VGG16, {len(w._layers)} layers, device={device}, threads={args.threads}, pictures sent as "
          f"{picture_format()} (CNNVIZ_PICTURES overrides)")
    print(f"  the reconstruction itself (deconvnet strip)   {t_rec:8.1f} ms")
    print(f"  everything else on an image change            {t_new:8.1f} ms  (target <= 25 ms CPU, <= 50 ms GPU "
          f"with the reconstruction; {spread})")
    print(f"    of which until the photo and the layer on screen are sent {t_first:6.1f} ms (the rest follows)")
    print(f"    of which the strip's display                {t_display:8.1f} ms")
    for fmt in ("bmp", "jpeg", "png"):
        t = median_ms(lambda fmt=fmt: picture_bytes(list(shown), fmt), args.repeats, device)
        size = sum(map(len, picture_bytes(list(shown), fmt)))
        print(f"    encoding 21 pictures as {fmt:4s}               {t:8.1f} ms  {size / 1e6:5.2f} MB")
    print(f"  before: second forward + per-layer display + PNG {t_old:8.1f} ms")
    print(f"RATIO image-change work besides the reconstruction, now / before: {t_new / t_old:.3f}x")
    print(f"RATIO whole image change, now / before: {(t_rec + t_new) / (t_rec + t_old):.3f}x")


if __name__ == "__main__":
    main()
