"""Live mode (the webcam in DeconvExplorer): frames shown per second and the lag from capture to picture, beside
the time of one reconstruction of the layer on screen, with the paper's AlexNet (seeded random weights) on this CPU.

A simulated camera drives the explorer through its real machinery (custom messages with a JPEG buffer, handled on
an asyncio loop as the kernel handles the browser's, the work on the widgets' worker thread), as the browser does:
- ``browser``: a frame every 1/fps s while none is in flight (what js/_shared.js webcam() sends);
- ``flood``: a frame every 1/flood-fps s (a webcam's own rate) whatever the kernel is doing: a frame not yet
  started is replaced by the newer one, so the lag stays near one frame's work;
- ``queue`` (the obvious alternative): the same flood, every frame reconstructed in arrival order (the widget's
  replacement off), whose lag grows for as long as the camera outruns the kernel.
Lag: from the frame's capture (its message sent) to its picture set in the widget's traits (the browser then only
decodes two 224 px JPEGs). Frames shown per second over the run.

Run: python benchmarks/bench_live.py [--threads 2] [--fps 4] [--flood-fps 30] [--seconds 15] [--layer c3]
"""
from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import time
import warnings

import torch
from PIL import Image

import cnnviz_widgets as cv
from timing import timed


def camera_frames(side: int = 224) -> list[bytes]:
    """JPEGs of the sample photos, their shorter side ``side`` (what webcam() sends for a 224 px network)."""
    out = []
    for _, photo in cv.sample_images():
        im = Image.fromarray(photo)
        s = side / min(im.size)
        im = im.resize((round(im.width * s), round(im.height * s)))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=85)
        out.append(buf.getvalue())
    return out


async def drive(w, frames: list[bytes], fps: float, seconds: float, mode: str) -> dict:
    shown: list[tuple[int, float, float]] = []
    answered = asyncio.Event()
    answered.set()

    def on_frame(change) -> None:
        f = change["new"]
        if f:
            shown.append((f["n"], f["t"], time.perf_counter()))
            answered.set()

    w.observe(on_frame, "live_frame")
    if mode == "queue":  # the widget's replacement off: a frame that comes while one is worked on waits its turn
        w._queue = []

        def arrive(m, w=w) -> None:
            frame = (bytes(w._message_buffers[0]), m.get("n"), m.get("t"))
            if w._live_job is not None and w._live_job.id in w._jobs:
                w._queue.append(frame)
            else:
                w._live_start(frame)

        def pump(change, w=w) -> None:
            if change["new"] and w._queue:
                with w.from_browser():
                    w._live_start(w._queue.pop(0))

        w.live_event = arrive
        w.observe(pump, "live_frame")
    n, sent = 0, 0
    start_t = time.perf_counter()
    while time.perf_counter() - start_t < seconds:
        tick = time.perf_counter()
        if mode != "browser" or answered.is_set():
            answered.clear()
            n += 1
            sent += 1
            w._on_custom_msg(w, {"event": "frame", "n": n, "t": time.perf_counter()}, [frames[n % len(frames)]])
        await asyncio.sleep(max(0.0, 1 / fps - (time.perf_counter() - tick)))
    end = time.perf_counter()
    await asyncio.sleep(0)
    w.unobserve_all("live_frame")
    w._on_custom_msg(w, {"event": "live", "on": False}, [])
    while w._jobs:
        await asyncio.sleep(0.05)
    inside = [s for s in shown if s[2] <= end]
    lags = [shown_at - t for _, t, shown_at in inside]
    return {"sent": sent, "shown": len(inside), "fps": (len(inside) - 1) / (inside[-1][2] - inside[0][2]) if len(inside) > 1 else 0.0,
            "lag": statistics.median(lags) if lags else float("nan"),
            "lag_last": lags[-1] if lags else float("nan"), "lag_max": max(lags) if lags else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fps", type=float, default=4.0)
    ap.add_argument("--flood-fps", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--layer", default="c3")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    probe = cv.Probe(cv.load_model("alexnet_paper", weights=None, seed=0), device="cpu")
    frames = camera_frames(probe.input_size)
    x = probe.model_input(frames[0])
    one = timed(lambda: probe.reconstruct(x, layers=args.layer, rule="auto"), 5, probe.device)
    whole = timed(lambda: probe.reconstruct(x, rule="auto"), 3, probe.device)

    async def run_all() -> dict:
        results = {}
        for mode in ("browser", "flood", "queue"):
            w = cv.DeconvExplorer(probe, cv.sample_images()[:1])
            w.layer = args.layer
            results[mode] = await drive(w, frames, args.fps if mode == "browser" else args.flood_fps, args.seconds, mode)
        return results

    results = asyncio.run(run_all())
    # again after the runs: on a shared machine one measurement alone may catch another process's burst
    one = min(one, timed(lambda: probe.reconstruct(x, layers=args.layer, rule="auto"), 5, probe.device))
    print(f"paper AlexNet, CPU, {args.threads} threads; {args.seconds:g} s each; layer on screen {args.layer}; "
          f"browser at {args.fps:g} frames/s, flood and queue at {args.flood_fps:g}")
    print(f"  one reconstruction of {args.layer} (probe.reconstruct, the better median of two): {one * 1000:.0f} ms  "
          f"(every layer: {whole * 1000:.0f} ms); at most {1 / one:.1f} frames/s")
    for mode, r in results.items():
        print(f"  {mode:8s} sent {r['sent']:3d}, shown {r['shown']:3d}: {r['fps']:.2f} frames/s shown; lag capture->picture "
              f"median {r['lag'] * 1000:.0f} ms, last {r['lag_last'] * 1000:.0f} ms, max {r['lag_max'] * 1000:.0f} ms "
              f"({r['lag'] / one:.1f}x one reconstruction)")


if __name__ == "__main__":
    main()
