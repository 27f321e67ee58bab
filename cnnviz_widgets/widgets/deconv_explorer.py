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

from ..errors import CnnvizError, ImageError, UnsupportedModelError
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

    def __init__(self, probe: Any, images: Any = None, layers: Any = None, image_index: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._probe = None
        self._images = None
        self._x = None
        with self.guard("Setting up the explorer"):
            self._probe = as_probe(probe)
            from ..images import sample_images

            self._images = load_images(sample_images() if images is None else images)
            chosen = self._probe.select(layers)
            self._layers = [l.name for l in chosen]
            rfs = [self._probe.receptive_field(n) for n in self._layers]
            with self.hold_sync():
                self.input_size = self._probe.input_size
                self.layer_names = self._layers
                self.rf = [[r.size, r.stride, r.offset] for r in rfs]
                self.grid = [[l.shape[1], l.shape[2]] for l in chosen]
                self.image_names = list(self._images.names)
                self.layer = self._layers[len(self._layers) // 2]
            if not 0 <= int(image_index) < len(self._images):
                raise ImageError(f"image_index={image_index} is out of range: there are {len(self._images)} images.")
            self.image_index = int(image_index)
            self._compute()

    @property
    def probe(self):
        return self._probe

    @traitlets.observe("image_index")
    def _on_image(self, change: dict) -> None:
        if self._probe is not None and self._images is not None and change["old"] != change["new"]:
            with self.guard("Reconstructing the image"):
                if not 0 <= change["new"] < len(self._images):
                    raise ImageError(f"image_index={change['new']} is out of range: there are {len(self._images)} images.")
                self._compute()

    def _compute(self) -> None:
        """One forward pass, one backward per layer; everything the slider needs goes out at once."""
        probe = self._probe
        x = probe.preprocess(self._images.tensor(self.image_index))
        self.progress = 0.1
        recs = probe.deconvnet(x, layers=self._layers)
        self.progress = 0.8
        pngs = [png_bytes(to_display(recs[n][0])) for n in self._layers]
        try:
            preds = probe.predict(x, k=5)
        except UnsupportedModelError:  # a backbone without class scores: everything else still works
            preds = [[]]
        self._x = x
        with self.hold_sync():
            self.input_png = png_bytes(probe.to_image(x)[0])
            self.recs = pngs
            self.predictions = [[label, round(p, 4)] for label, p in preds[0]]
            self.selected = {}
            self.unit_png = b""

    @traitlets.observe("click")
    def _on_click(self, change: dict) -> None:
        c = change["new"]
        if not c or self._probe is None or self._x is None:
            return
        with self.guard("Reconstructing the unit"):
            layer = self._probe.layer(c.get("layer", self.layer))
            rf = self._probe.receptive_field(layer.name)
            h, w = layer.shape[1:]
            gy = int(np.clip(round((float(c["y"]) - rf.offset - (rf.size - 1) / 2) / rf.stride), 0, h - 1))
            gx = int(np.clip(round((float(c["x"]) - rf.offset - (rf.size - 1) / 2) / rf.stride), 0, w - 1))
            act = self._probe.activations(self._x, [layer.name])[layer.name][0, :, gy, gx]
            channel = int(torch.argmax(act))
            rec = self._probe.deconvnet(self._x, layers=layer.name, unit=(channel, gy, gx))[layer.name][0]
            with self.hold_sync():
                self.unit_png = png_bytes(to_display(rec))
                self.selected = {"layer": layer.name, "unit": [channel, gy, gx],
                                 "activation": round(float(act[channel]), 4)}

    @traitlets.observe("channel_request")
    def _on_channel(self, change: dict) -> None:
        r = change["new"]
        if r and self._probe is not None:
            self.show_filter(r.get("layer", self.layer), int(r["channel"]))

    def show_filter(self, layer: str, channel: int) -> None:
        """Reconstruct one filter's whole feature map of ``layer`` for the current image."""
        with self.guard("Reconstructing the filter"):
            if self._x is None:
                raise CnnvizError("No image is loaded.")
            name = self._probe.layer(layer).name
            rec = self._probe.deconvnet(self._x, layers=name, channel=channel)[name][0]
            with self.hold_sync():
                self.unit_png = png_bytes(to_display(rec))
                self.selected = {"layer": name, "channel": int(channel)}

    def show_unit(self, layer: str, unit: tuple[int, int, int]) -> None:
        """Reconstruct one unit (channel, y, x) of ``layer`` for the current image, from Python."""
        with self.guard("Reconstructing the unit"):
            if self._x is None:
                raise CnnvizError("No image is loaded.")
            name = self._probe.layer(layer).name
            rec = self._probe.deconvnet(self._x, layers=name, unit=tuple(unit))[name][0]
            with self.hold_sync():
                self.unit_png = png_bytes(to_display(rec))
                self.selected = {"layer": name, "unit": [int(v) for v in unit]}
