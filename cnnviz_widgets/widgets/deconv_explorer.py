"""DeconvExplorer (paper Fig. 4): an image, the deconvnet of every layer as a strip, a layer slider.

All reconstructions of an image are computed in one call and sent once as PNG buffers, so the
slider and the arrow keys change the big view in the browser without a kernel round-trip. A click
on the big view reconstructs the unit under the pointer (the strongest filter at that position);
a filter number reconstructs that filter's whole feature map.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import traitlets

from ..errors import ImageError, UnsupportedModelError
from ..images import to_display
from ..imageset import load_images
from ._base import CnnvizWidget, as_probe, esm, png_bytes


class DeconvExplorer(CnnvizWidget):
    """Pick an image; see what every layer keeps; slide through the layers; click for one unit."""

    _esm = esm("deconv_explorer.js")

    layer_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)  # shared: link it to drive or follow other widgets
    image_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    image_index = traitlets.Int(0).tag(sync=True)  # shared
    input_png = traitlets.Bytes(b"").tag(sync=True)
    recs = traitlets.List(traitlets.Bytes()).tag(sync=True)  # one PNG per layer, in layer_names order
    rf = traitlets.List(traitlets.List(traitlets.Int())).tag(sync=True)  # (size, stride, offset) per layer
    grid = traitlets.List(traitlets.List(traitlets.Int())).tag(sync=True)  # (H, W) of each layer's map
    input_size = traitlets.Int(224).tag(sync=True)
    click = traitlets.Dict().tag(sync=True)  # set by the browser: {"layer", "x", "y"} in input pixels
    channel_request = traitlets.Dict().tag(sync=True)  # set by the browser: {"layer", "channel"}
    selected = traitlets.Dict().tag(sync=True)  # {"layer", "unit": [c, y, x]} once reconstructed; shared
    unit_png = traitlets.Bytes(b"").tag(sync=True)
    predictions = traitlets.List(traitlets.List()).tag(sync=True)  # [[label, probability], ...]

    shown_image = traitlets.Int(-1).tag(sync=True)  # the image the pictures now shown belong to

    def __init__(self, probe: Any, images: Any = None, layers: Any = None, image_index: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._probe = None
        self._images = None
        self._x = None
        with self.guard("Setting up the explorer"):
            self._probe = as_probe(probe)
            from ..images import sample_images

            images = load_images(sample_images() if images is None else images)
            chosen = self._probe.select(layers)
            self._layers = [l.name for l in chosen]
            rfs = [self._probe.receptive_field(n) for n in self._layers]
            with self.hold_sync():
                self.input_size = self._probe.input_size
                self.layer_names = self._layers
                self.rf = [[r.size, r.stride, r.offset] for r in rfs]
                self.grid = [[l.shape[1], l.shape[2]] for l in chosen]
                self.image_names = list(images.names)
                self.layer = self._layers[len(self._layers) // 2]
                self.image_index = int(image_index)
            self._images = images
            self._request_image(self.image_index)

    @property
    def probe(self):
        return self._probe

    @traitlets.observe("image_index")
    def _on_image(self, change: dict) -> None:
        if self._probe is None or self._images is None or change["old"] == change["new"]:
            return
        if change["new"] == self.shown_image:  # back to the image on screen: nothing to compute
            self.back_to_shown("image")
            return
        self._request_image(change["new"])

    def _request_image(self, index: int) -> None:
        self.run_job("Reconstructing the image", "image", lambda job: self._reconstruct(index, job), self._show_image,
                     supersedes=("unit",))

    def _reconstruct(self, index: int, job) -> dict:
        """One forward pass, one backward per layer; everything the slider needs, encoded once."""
        if not 0 <= index < len(self._images):
            raise ImageError(f"image_index={index} is out of range: there are {len(self._images)} images.")
        probe = self._probe
        x = probe.preprocess(self._images.tensor(index))
        recs = probe.deconvnet(x, layers=self._layers, progress=lambda d, t: job.report(0.8 * d, t))
        pngs = [png_bytes(to_display(recs[n][0])) for n in self._layers]
        job.check()
        try:
            preds = probe.predict(x, k=5)
        except UnsupportedModelError:  # a backbone without class scores: everything else still works
            preds = [[]]
        return {"index": index, "x": x, "input_png": png_bytes(probe.to_image(x)[0]), "recs": pngs,
                "predictions": [[label, round(p, 4)] for label, p in preds[0]]}

    def _show_image(self, r: dict) -> None:
        self._x = r["x"]
        with self.hold_sync():
            self.input_png = r["input_png"]
            self.recs = r["recs"]
            self.predictions = r["predictions"]
            self.selected = {}
            self.unit_png = b""
            self.shown_image = r["index"]

    def restore_inputs(self, job) -> None:
        if job.lane == "image" and self.shown_image >= 0:
            self.image_index = self.shown_image  # the picker goes back to the image still shown

    def _request_unit(self, what: str, compute) -> None:
        """A click or filter request on the image now shown; dropped if the image changes meanwhile."""
        if self._x is None:
            self.error = "No image is loaded."
            return
        x = self._x

        def apply(r: dict) -> None:
            if self._x is x:
                with self.hold_sync():
                    self.unit_png = r["png"]
                    self.selected = r["selected"]

        self.run_job(what, "unit", lambda job: compute(x, job), apply)

    @traitlets.observe("click")
    def _on_click(self, change: dict) -> None:
        c = change["new"]
        if not c or self._probe is None or self._x is None:
            return

        def compute(x, job) -> dict:
            layer = self._probe.layer(c.get("layer", self.layer))
            rf = self._probe.receptive_field(layer.name)
            h, w = layer.shape[1:]
            gy = int(np.clip(round((float(c["y"]) - rf.offset - (rf.size - 1) / 2) / rf.stride), 0, h - 1))
            gx = int(np.clip(round((float(c["x"]) - rf.offset - (rf.size - 1) / 2) / rf.stride), 0, w - 1))
            act = self._probe.activations(x, [layer.name])[layer.name][0, :, gy, gx]
            channel = int(torch.argmax(act))
            job.check()
            rec = self._probe.deconvnet(x, layers=layer.name, unit=(channel, gy, gx))[layer.name][0]
            return {"png": png_bytes(to_display(rec)), "selected": {
                "layer": layer.name, "unit": [channel, gy, gx], "activation": round(float(act[channel]), 4)}}

        self._request_unit("Reconstructing the unit", compute)

    @traitlets.observe("channel_request")
    def _on_channel(self, change: dict) -> None:
        r = change["new"]
        if r and self._probe is not None:
            self.show_filter(r.get("layer", self.layer), int(r["channel"]))

    def show_filter(self, layer: str, channel: int) -> None:
        """Reconstruct one filter's whole feature map of ``layer`` for the current image."""

        def compute(x, job) -> dict:
            name = self._probe.layer(layer).name
            rec = self._probe.deconvnet(x, layers=name, channel=channel)[name][0]
            return {"png": png_bytes(to_display(rec)), "selected": {"layer": name, "channel": int(channel)}}

        self._request_unit("Reconstructing the filter", compute)

    def show_unit(self, layer: str, unit: tuple[int, int, int]) -> None:
        """Reconstruct one unit (channel, y, x) of ``layer`` for the current image, from Python."""

        def compute(x, job) -> dict:
            name = self._probe.layer(layer).name
            rec = self._probe.deconvnet(x, layers=name, unit=tuple(unit))[name][0]
            return {"png": png_bytes(to_display(rec)), "selected": {"layer": name, "unit": [int(v) for v in unit]}}

        self._request_unit("Reconstructing the unit", compute)
