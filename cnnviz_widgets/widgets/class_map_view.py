"""The explorer's class evidence map (Grad-CAM, :mod:`cnnviz_widgets.probe.class_map`): the map of the class picked
in the top-5 over the input with an opacity slider, drawn at ``map_layer``; with ``show_map`` on, each new image's
top-1 map too. A mixin of :class:`~cnnviz_widgets.widgets.deconv_explorer.DeconvExplorer`, which calls
:meth:`ShowsClassMap._map_of` inside its image job and :meth:`ShowsClassMap._show_map` when it shows a result."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import traitlets

from ..display import heat
from ..errors import CnnvizError
from ._base import within
from .strip import ShowsStrip
from .encoding import picture_bytes

def no_map() -> dict[str, Any]:
    """What a result without a class map shows (new each time: ``class_map_for`` holds its dict)."""
    return {"map": None, "map_png": b"", "map_for": {}}


class ShowsClassMap(ShowsStrip):
    """Part of the explorer: the synced class-map traits and the jobs that draw the map (lane "map")."""

    class_map_png = traitlets.Bytes(b"").tag(sync=True)  # the class map's heat colours at input size ("": none)
    class_map_for = traitlets.Dict().tag(sync=True)  # {"index", "label", "layer", "method"} of it, or {"error": why not}
    show_map = traitlets.Bool(False).tag(sync=True)  # each image's top-1 map too (a class picked turns it on)
    map_opacity = traitlets.Float(0.5).tag(sync=True)  # how strongly the map covers the input: 0 (hidden) to 1
    map_layer = traitlets.Unicode("").tag(sync=True)  # the layer the map is drawn at; "": the last conv layer with a map

    _probe: Any
    _x: torch.Tensor | None
    _class_map: np.ndarray | None = None  # the map shown, (S, S) in [0, 1], for save()

    def _map_of(self, x: torch.Tensor, c: int | None) -> dict:
        """The class map of class ``c`` for input ``x`` at ``map_layer``: {"map": (S, S) array, "map_png", "map_for"};
        for a network without class scores nothing, and where the map cannot be drawn the reason, in "map_for"."""
        assert self._probe is not None  # made in __init__: nothing here runs without it
        if c is None or self._probe.output_layer is None:
            return no_map()
        from ..probe.class_map import class_map, spatial_layer

        labels = self._probe.labels
        label = labels[c] if labels and c < len(labels) else f"class {c}"
        try:
            at = spatial_layer(self._probe, self.map_layer or None)
            m = class_map(self._probe, x, layer=at, target=int(c))[0, 0].cpu().numpy()
        except CnnvizError as exc:  # said in place of the map (the class is kept: another layer may draw it)
            return {"map": None, "map_png": b"", "map_for": {"index": int(c), "label": label, "error": str(exc)}}
        return {"map": m, "map_png": picture_bytes([heat(m)])[0],
                "map_for": {"index": int(c), "label": label, "layer": at.name, "method": "gradcam"}}

    @traitlets.observe("show_map")
    def _on_show_map(self, change: dict) -> None:
        """The class map box ticked: the top-1's map of the image shown (unless a map is shown already); unticked:
        the map goes."""
        if not self._map_on_screen() or change["old"] == change["new"] or not getattr(self, "_map_ready", True):
            return
        if not change["new"]:
            self._show_map(no_map())
        elif not self.class_map_for and self.predictions and self.predictions[0][2] >= 0:
            self._draw_map(self.predictions[0][2])

    @traitlets.observe("map_layer")
    def _on_map_layer(self, change: dict) -> None:
        """Another layer for the class map: the map of the class shown is drawn again there."""
        c = self.class_map_for.get("index")
        if not self._map_on_screen() or change["old"] == change["new"] or c is None:
            return
        self._draw_map(c)

    def _map_on_screen(self) -> bool:
        """An image is shown that a map could be drawn for (not so while the constructor sets the traits)."""
        return getattr(self, "_probe", None) is not None and getattr(self, "_x", None) is not None

    def _draw_map(self, c: int) -> None:
        """Draw the map of class ``c`` for the image shown (its own lane: a newer request replaces it)."""
        x = self._x
        assert x is not None  # an image is shown: the map is asked for only then

        def apply(r: dict) -> None:
            if self._x is x:
                self._show_map(r)

        self.run_job("Drawing the class map", "map", lambda job: self._map_of(x, c), apply)

    _opacity = traitlets.validate("map_opacity")(within(0, 1))

    def _show_map(self, r: dict) -> None:
        self._class_map = r["map"]
        with self.hold_sync():
            if r["map_for"] and not self.show_map:  # a class picked: its map is shown, and so are the next images'
                self._map_ready = False
                try:
                    self.show_map = True
                finally:
                    self._map_ready = True
            self.class_map_png = r["map_png"]
            self.class_map_for = r["map_for"]
