"""Bytes and time to send one VGG16 strip (21 reconstructions) as binary buffers vs base64 in JSON.

Binary: what the widgets do (ipywidgets' buffer extraction + a small JSON header, PNG bytes as
websocket buffers). Base64: the same PNGs inlined in the JSON message, as a naive widget would.
Run: python benchmarks/bench_transport.py [--repeats 20]
"""
from __future__ import annotations

import argparse
import base64
import json
import statistics
import time
import warnings

import torch
from ipywidgets.widgets.widget import _remove_buffers

import cnnviz_widgets as cv
from cnnviz_widgets.widgets.encoding import png_bytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore")
    probe = cv.Probe(cv.load_model("vgg16", weights=None), device="cpu")
    x = probe.preprocess(cv.sample_images()[1][1])
    recs = probe.deconvnet(x)
    pngs = [png_bytes(cv.to_display(recs[n][0])) for n in probe.layer_names]
    raw = sum(224 * 224 * 3 for _ in pngs)

    def binary():
        state, _, buffers = _remove_buffers({"recs": pngs, "layer": "c3_2"})
        header = json.dumps({"method": "update", "state": state}).encode()
        return len(header) + sum(len(b) for b in buffers)

    def b64():
        body = json.dumps({"method": "update", "state": {"recs": [base64.b64encode(p).decode() for p in pngs], "layer": "c3_2"}})
        return len(body.encode())

    def timed(fn):
        fn()
        t = []
        for _ in range(args.repeats):
            s = time.perf_counter()
            n = fn()
            t.append(time.perf_counter() - s)
        return statistics.median(t), n

    t_bin, n_bin = timed(binary)
    t_b64, n_b64 = timed(b64)
    t_png = timed(lambda: [png_bytes(cv.to_display(recs[n][0])) for n in probe.layer_names])[0]
    print(f"one VGG16 strip: {len(pngs)} reconstructions of 224x224 ({raw / 2**20:.1f} MiB as raw RGB), PNG encoding {t_png * 1e3:.1f} ms")
    print(f"  binary buffers   {n_bin / 2**20:6.2f} MiB  serialize {t_bin * 1e3:6.2f} ms")
    print(f"  base64 in JSON   {n_b64 / 2**20:6.2f} MiB  serialize {t_b64 * 1e3:6.2f} ms")
    print(f"RATIO base64 / binary: bytes {n_b64 / n_bin:.2f}x, serialize time {t_b64 / t_bin:.1f}x "
          "(the browser also skips decoding base64: blobs go straight to <img>)")


if __name__ == "__main__":
    main()
