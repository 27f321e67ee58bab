"""The explorer's second view: one unit, one filter's feature map or one class of the image shown, reconstructed on
request (a click or Enter on the big picture, a filter number, a top-5 bar, or Python), with the unit's receptive
field boxed. A mixin of :class:`~cnnviz_widgets.widgets.deconv_explorer.DeconvExplorer` (lane "unit": a new image
supersedes it)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import traitlets

from .. import checks
from ..display import to_display
from ..errors import CnnvizError, UnsupportedModelError
from .strip import ShowsStrip
from .encoding import picture_bytes
from .layer_fields import layer_field


class PicksUnits(ShowsStrip):
    """Part of the explorer: the ``selected`` unit and its picture (``unit_png``), and the requests that fill them."""

    selected = traitlets.Dict().tag(sync=True)  # {"layer", "unit": [c, y, x]} once reconstructed; shared
    unit_png = traitlets.Bytes(b"").tag(sync=True)

    _probe: Any
    layer: str  # the explorer's layer on screen
    _x: torch.Tensor | None
    _mode: str
    _layers: list[str]
    _unit_picture: np.ndarray | None = None  # the picture of the unit view, for save()
    _pick: tuple[str, Callable] | None = None  # the request that drew it: made again in another display
    _show_map: Callable[[dict], None]  # the class map's (ShowsClassMap)
    _map_of: Callable[[torch.Tensor, int | None], dict]

    def _request_unit(self, what: str, compute) -> None:
        """A click or filter request on the image now shown; dropped if the image changes meanwhile, drawn again
        if the strip's display changes meanwhile (its first part's display is one layer's, the whole strip's all
        of them), so the unit view is always in the display of the strip beside it."""
        if self._x is None:
            self.error = "No image is loaded."
            return
        x, rule, mode = self._x, self.rule, self._mode

        def apply(r: dict) -> None:
            if self._x is not x:
                return
            if self._mode != mode:  # the strip's display changed while it was drawn: drawn again
                self._pick_again((what, compute))
                return
            if "map_for" in r:
                self._show_map(r)
            self._unit_picture = r["picture"]
            self._pick = (what, compute)
            with self.hold_sync():
                self.rf = self._fields()  # with any field measured for this unit
                self.unit_png = r["png"]
                self.selected = r["selected"]

        def run(job) -> dict:
            r = compute(x, rule, mode, job)
            return {**r, "png": picture_bytes([r["picture"]])[0]}

        self.run_job(what, "unit", run, apply)

    def _pick_again(self, pick: tuple[str, Callable]) -> None:
        """Make a pick's request (what it does, its compute) again for the image and display now shown: a job of
        its own in the background, as the click was."""
        with self.from_browser():
            self._request_unit(*pick)

    def _one(self, x, rule: str, mode: str, name: str, **selector: Any) -> np.ndarray:
        """One reconstruction as a picture, in the display of the strip it belongs to."""
        assert self._probe is not None  # made in __init__: nothing here runs without it
        rec = self._probe.reconstruct(x, layers=name, rule=rule, **selector)[name][0]
        return to_display(rec, mode)

    def show_unit_at(self, layer: str, x: float, y: float) -> None:
        """Reconstruct the strongest unit of ``layer`` under input pixel (``x``, ``y``) of the current image:
        what a click on the big picture does."""
        x, y = checks.number("x", x, "a pixel's column (a finite number)"), checks.number("y", y, "a pixel's row (a finite number)")
        self._strongest_unit(layer, lambda l: self.unit_under(l, y, x))

    def show_unit_in(self, layer: str, row: int, col: int) -> None:
        """Reconstruct the strongest unit at map position (``row``, ``col``) of ``layer`` for the current image:
        what Enter on the big picture's keyboard cursor does (the cursor moves unit by unit over the layer's map,
        so no pixel has to be hit)."""
        def at(l) -> tuple[int, int]:
            h, w = l.shape[1:]
            if not (0 <= row < h and 0 <= col < w):
                raise CnnvizError(f"Map position ({row}, {col}) is outside {l.name}'s {h}x{w} map; rows and columns "
                                  f"count from 0.")
            return row, col

        self._strongest_unit(layer, at)

    def _strongest_unit(self, layer: str, where) -> None:
        """Reconstruct the strongest filter at the map position ``where(layer)`` of ``layer``, and box its field."""
        def compute(xin, rule, mode, job) -> dict:
            assert self._probe is not None  # made in __init__: nothing here runs without it
            l = self._probe.layer(layer)
            self._unit_field(l, job)  # measured first ("measuring…") where tracing gave none
            gy, gx = where(l)
            act = self._probe.activations(xin, [l.name])[l.name][0, :, gy, gx]
            channel = int(torch.argmax(act))
            job.check()
            return {"picture": self._one(xin, rule, mode, l.name, unit=(channel, gy, gx)), "selected": {
                "layer": l.name, "unit": [channel, gy, gx], "activation": round(float(act[channel]), 4),
                **self.field_of(l, gy, gx)}}

        self._request_unit("Reconstructing the unit", compute)

    def _unit_field(self, layer, job) -> None:
        """Measure the field of ``layer`` where tracing gave none and it was not measured yet (bounded, "measuring…"
        meanwhile): the unit's box and the unit under a click then use it. No box: the unit is still reconstructed,
        with no box drawn."""
        assert self._probe is not None  # made in __init__: nothing here runs without it
        if self._probe.field_pending(layer.name):
            try:
                layer_field(self._probe, layer.name, job)
            except UnsupportedModelError:
                pass

    def _fields(self) -> list[list[float]]:
        """The ``rf`` trait: (size, stride, offset) per layer as the probe gives it now (measured ones included)."""
        assert self._probe is not None  # made in __init__: nothing here runs without it
        rfs = [self._probe.receptive_field(n) for n in self._layers]
        return [[float(r.size), float(r.stride), float(r.offset)] if r is not None else [] for r in rfs]

    def field_of(self, layer, y: int, x: int) -> dict:
        """{"field": [top, left, bottom, right]}: the input pixels unit (y, x) of ``layer`` sees, which the browser
        boxes on the picture (per axis, as :meth:`ReceptiveField.box` gives it), by the probe's field (traced, or
        measured where tracing could not follow an op); {} where the field is unknown."""
        assert self._probe is not None  # made in __init__: nothing here runs without it
        rf = self._probe.receptive_field(layer.name)
        return {"field": [int(v) for v in rf.box(int(y), int(x))]} if rf is not None else {}

    def unit_under(self, layer, row: float, col: float) -> tuple[int, int]:
        """The unit of ``layer`` whose receptive field (traced or measured) is centred nearest input pixel
        (row, col); where the layer has no receptive field, the unit at the same relative place of its map."""
        h, w = layer.shape[1:]
        assert self._probe is not None  # made in __init__: nothing here runs without it
        rf = self._probe.receptive_field(layer.name)
        if rf is not None and not rf.is_global:
            return rf.unit_at(row, col, (h, w))
        s = self._probe.input_size
        return (int(np.clip(row / s * h, 0, h - 1)), int(np.clip(col / s * w, 0, w - 1)))


    def show_filter(self, layer: str, channel: int | str) -> None:
        """Reconstruct one filter's whole feature map of ``layer`` (on the output layer: one class, by
        index or label) for the current image."""

        def compute(x, rule, mode, job) -> dict:
            assert self._probe is not None  # made in __init__: nothing here runs without it
            l = self._probe.layer(layer)
            c = self._probe.class_index(channel, l) if isinstance(channel, str) else channel
            selected = {"layer": l.name, "channel": int(c) if isinstance(c, (int, np.integer)) else c}
            if l is self._probe.output_layer and self._probe.labels and isinstance(c, (int, np.integer)) \
                    and 0 <= c < len(self._probe.labels):
                selected["label"] = self._probe.labels[int(c)]
            picture = self._one(x, rule, mode, l.name, channel=c)
            job.check()
            drawn = self._map_of(x, int(c)) if l is self._probe.output_layer else {}  # a class: where it is found too
            return {"picture": picture, "selected": selected, **drawn}

        self._request_unit("Reconstructing the class" if isinstance(channel, str) else "Reconstructing the filter", compute)

    def show_class(self, label: str | int) -> None:
        """Reconstruct one class of the output layer (by label or index) for the current image: the top-5
        bars do this when clicked."""
        with self.guard("Reconstructing the class"):
            out = self._probe.output_layer if self._probe is not None else None
            if out is None:
                raise UnsupportedModelError(f"{type(getattr(self._probe, 'model', None)).__name__} does not end in "
                                            f"class scores, so there is no class to reconstruct.")
            self.show_filter(out.name, label)

    def show_unit(self, layer: str, unit: tuple[int, int, int]) -> None:
        """Reconstruct one unit (channel, y, x) of ``layer`` for the current image, from Python."""

        def compute(x, rule, mode, job) -> dict:
            assert self._probe is not None  # made in __init__: nothing here runs without it
            l = self._probe.layer(layer)
            self._unit_field(l, job)
            return {"picture": self._one(x, rule, mode, l.name, unit=tuple(unit)),
                    "selected": {"layer": l.name, "unit": [int(v) for v in unit], **self.field_of(l, unit[1], unit[2])}}

        self._request_unit("Reconstructing the unit", compute)

    def selection_label(self) -> str:
        """What the unit view shows, in words: "c3: unit 12 at (3, 4)", "c4: filter 11", "fc8: class espresso"."""
        sel = self.selected
        layer = sel.get("layer", self.layer)
        if isinstance(sel.get("unit"), (list, tuple)) and len(sel["unit"]) == 3:
            c, y, x = sel["unit"]
            return f"{layer}: unit {c} at ({y}, {x})"
        if "label" in sel:
            return f"{layer}: class {sel['label']}"
        return f"{layer}: filter {sel.get('channel', sel.get('filter', '?'))}"
