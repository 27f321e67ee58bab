"""DeconvExplorer (paper Fig. 4): an image, every layer's reconstruction as a strip, a layer slider.

All reconstructions of an image are computed in one call and sent as picture buffers (JPEG,
small in a notebook saved with its widget state: widgets.encoding.picture_format), the layer on screen
first and every other layer right after (in the browser, an empty tile until it arrives), so the
slider and the arrow keys change the big view in the browser without a kernel round-trip. A click
on the big view reconstructs the unit under the pointer (the strongest filter at that position);
a filter number reconstructs that filter's whole feature map; a click on a top-5 bar reconstructs
that class. The output layer's picture in the strip is its top-1 class (the paper's last column).
The reverse rule (auto, deconvnet, guided, gradient) is a synced trait with a selector; "auto", the default,
draws each layer by the deconvnet where max-pool switches lie below it and by guided backprop elsewhere (every
layer of VGG16 and the AlexNets by the deconvnet, an EfficientNet's by guided), and ``drawn`` says which rule
drew each layer's picture.

The class evidence map (Grad-CAM, :mod:`cnnviz_widgets.probe.class_map`) of the class picked in the top-5 lies
over the input with an opacity slider (``map_opacity``): *where* the network found the class, beside *what* it kept
of it. It is drawn at ``map_layer`` ("": the last conv layer with a map). With ``show_map`` on (the "class map"
box; a class picked turns it on) each new image shows its top-1's map too: one more forward pass to the scores
and one partial backward per image change, which is why it starts off.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import traitlets

from .. import checks
from ..display import choose_display, heat, overlay, to_display
from ..errors import CnnvizError, ImageError, UnsupportedModelError
from ..figures import field_label, layers_sheet, predictions_text
from ..probe.reconstruct import TopClassSeed
from ..probe.rules import WIDGET_RULE
from ._base import ReversingWidget, as_probe, message_field
from .assets import css, esm
from .picker import widget_images
from .encoding import picture_bytes
from .jobs import Job
from .layer_fields import layer_field
from .uploads import TakesPictures


class DeconvExplorer(TakesPictures, ReversingWidget):
    """Pick an image; see what every layer keeps; slide through the layers; click for one unit."""

    _esm = esm("deconv_explorer.js")
    _css = css()

    layer_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)  # shared: link it to drive or follow other widgets
    input_png = traitlets.Bytes(b"").tag(sync=True)
    recs = traitlets.List(traitlets.Bytes()).tag(sync=True)  # one PNG per layer, in layer_names order
    rf = traitlets.List(traitlets.List(traitlets.Float())).tag(sync=True)  # (size, stride, offset) per layer; [] if none
    switches = traitlets.List(traitlets.Bool()).tag(sync=True)  # per layer: max-pools below it (the deconvnet's only input)
    captions = traitlets.List(traitlets.Unicode()).tag(sync=True)  # per layer: what its picture shows, when not the whole layer
    drawn = traitlets.List(traitlets.Unicode()).tag(sync=True)  # per layer: the rule that drew its picture, "guided (auto)"
    grid = traitlets.List(traitlets.List(traitlets.Int())).tag(sync=True)  # (H, W) of each layer's map
    channels = traitlets.List(traitlets.Int()).tag(sync=True)  # filters (classes) of each layer: the filter box's range
    input_size = traitlets.Int(224).tag(sync=True)
    selected = traitlets.Dict().tag(sync=True)  # {"layer", "unit": [c, y, x]} once reconstructed; shared
    unit_png = traitlets.Bytes(b"").tag(sync=True)
    predictions = traitlets.List(traitlets.List()).tag(sync=True)  # [[label, probability, class index or -1], ...]

    class_map_png = traitlets.Bytes(b"").tag(sync=True)  # the class map's heat colours at input size ("": none)
    class_map_for = traitlets.Dict().tag(sync=True)  # {"index", "label", "layer", "method"} of it, or {"error": why not}
    show_map = traitlets.Bool(False).tag(sync=True)  # each image's top-1 map too (a class picked turns it on)
    map_opacity = traitlets.Float(0.5).tag(sync=True)  # how strongly the map covers the input: 0 (hidden) to 1
    map_layer = traitlets.Unicode("").tag(sync=True)  # the layer the map is drawn at; "": the last conv layer with a map

    live_input_png = traitlets.Bytes(b"").tag(sync=True)  # live mode: the camera's last frame shown, as the network sees it
    live_rec_png = traitlets.Bytes(b"").tag(sync=True)  # and its reconstruction at the layer on screen
    live_frame = traitlets.Dict().tag(sync=True)  # {"n", "t", "layer"} of that frame (t: the browser's, for the lag)

    shown_rule = traitlets.Unicode("").tag(sync=True)  # the rule they were made by

    _x: torch.Tensor | None  # the model input shown
    _live_job: Job | None
    _live_next: tuple | None

    def __init__(self, probe: Any, images: Any = None, layers: Any = None, image_index: int = 0,
                 rule: str = WIDGET_RULE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._class_map: np.ndarray | None = None  # the map shown, (S, S) in [0, 1], for save()
        self._live_job, self._live_next, self._live_dropped = None, None, 0  # live mode: the frame worked on, the next
        self._probe = None
        self._images = None
        self._x = None
        self._mode = "signed"
        self._pictures, self._unit_picture = None, None
        with self.guard("Setting up the explorer"):
            self._set_rule(rule)
            self._probe = as_probe(probe)
            self.say_weights([self._probe])

            images = widget_images(images)
            image_index = checks.index("image_index", image_index, len(images),
                                       f"there {'is 1 picture' if len(images) == 1 else f'are {len(images)} pictures'}")
            chosen = self._probe.select(layers)
            self._layers = [l.name for l in chosen]
            with self.hold_sync():
                self.input_size = self._probe.input_size
                self.layer_names = self._layers
                self.rf = self._fields()
                self.switches = [l.switches for l in chosen]
                self.grid = [[l.shape[1], l.shape[2]] for l in chosen]
                self.channels = [l.channels for l in chosen]
                self.image_names = list(images.names)
                self.layer = self._layers[len(self._layers) // 2]
                self.image_index = image_index
            self._images = images
            self._request_image(self.image_index)

    @property
    def probe(self):
        return self._probe

    @traitlets.observe("image_index")
    def _on_image(self, change: dict) -> None:
        if self._probe is None or self._images is None or change["old"] == change["new"]:
            return
        # back to the image on screen, whole (not a first part whose rest failed): nothing to compute
        if change["new"] == self.shown_image and self.rule == self.shown_rule and all(self.recs):
            self.back_to_shown("image")
            return
        self._request_image(change["new"])

    def upload_side(self) -> int:
        assert self._probe is not None  # made in __init__: nothing here runs without it
        return self._probe.resize_size or self._probe.input_size

    def request_picture(self, index: int) -> None:
        self._request_image(index)

    def _request_image(self, index: int) -> None:
        rule = self.rule
        self.run_job("Reconstructing the image", "image", lambda job: self._reconstruct(index, rule, job),
                     self._show_image, supersedes=("unit",))

    def rule_changed(self) -> None:
        if self._probe is not None and self._images is not None:
            self._request_image(self.image_index)

    def _reconstruct(self, index: int, rule: str, job) -> dict:
        """The layer on screen first, alone (a forward pass that stops at it, one backward): shown with the photo
        as soon as it is done; then the top-5 and every other layer (one forward pass, whose output layer gives the
        top-5 too, one backward per layer, the slider's layer next), displayed as one strip and encoded once."""
        probe = self._probe
        assert probe is not None  # made in __init__: nothing here runs without it
        x = probe.model_input(*self.picture(index))
        out = probe.output_layer
        current = self.layer if self.layer in self._layers else self._layers[0]
        scores_in_strip = out is not None and probe.scores_at_output_layer and out.name in self._layers

        def scores_found() -> None:
            if "pngs" in sent:  # the top-5 joins the part on screen before the other layers are computed
                job.preview(part(sent["pngs"], sent["mode"]))

        seed = TopClassSeed(probe, x, k=5, on_found=scores_found)  # the output layer's seed and the top-5, one pass
        if out is not None and out.name == current and not scores_in_strip:
            seed.find()  # its class seed needs the top-1 before its backward pass

        n = len(self._layers)
        picture = probe.to_image(x)[0]
        sent: dict[str, Any] = {}  # the part on screen: its display and each picture sent, by layer
        drawn = [self.drawn_by(rule, name, probe) for name in self._layers]  # "guided (auto)": the rule of each picture

        def captions() -> list[str]:
            preds = seed.preds or []
            c = [""] * n
            if out is not None and out.name in self._layers and preds:
                c[self._layers.index(out.name)] = f"the top-1 class, {preds[0][1]}"
            return c

        def part(pngs: dict[int, bytes], mode: str) -> dict:
            return {"index": index, "x": x, "input_png": sent["input_png"], "mode": mode, "pictures": None,
                    "recs": [pngs.get(i, b"") for i in range(n)], "captions": captions(), "rule": rule,
                    "drawn": drawn,
                    "predictions": [[label, round(p, 4), c if out is not None else -1]
                                    for c, label, p in seed.preds or []]}

        computed: dict[str, torch.Tensor] = {}

        def on_layer(name: str, rec: torch.Tensor, first: bool = False) -> None:
            # the layer the slider is on now goes out as soon as it is computed: a slider move onto a layer not yet
            # there makes it the next one computed (next_layer), onto one computed but not sent, it is sent now
            computed[name] = rec
            target = name if first else self.layer
            if target not in computed or self._layers.index(target) in sent.get("pngs", {}):
                return
            i, rec = self._layers.index(target), computed[target]
            if "pngs" not in sent:
                sent["mode"] = choose_display([rec])
                sent["input_png"], png = picture_bytes([picture, to_display(rec[0], sent["mode"])])
                sent["pngs"] = {i: png}
            else:
                sent["pngs"][i] = picture_bytes([to_display(rec[0], sent["mode"])])[0]
            job.preview(part(sent["pngs"], sent["mode"]))

        scores = seed if out is not None else None
        recs = probe.reconstruct(x, layers=current, rule=rule, on_forward=scores,
                                 progress=lambda d, t: job.report(0.1 * d, t))
        on_layer(current, recs[current], first=True)
        rest = [name for name in self._layers if name != current]
        if seed.preds is None and not scores_in_strip:
            seed.find()  # the strip stops short of the scores: one more forward pass
            job.preview(part(sent["pngs"], sent["mode"]))
        if rest:
            recs.update(probe.reconstruct(x, layers=rest, rule=rule, on_forward=scores, next_layer=lambda: self.layer,
                                          on_layer=on_layer, progress=lambda d, t: job.report(0.1 + 0.7 * d / t, 1)))
        strip = torch.cat([recs[name] for name in self._layers])
        mode = choose_display([strip])
        pictures = list(to_display(strip, mode))  # each picture is scaled on its own: the first part's are the strip's
        done = sent["pngs"] if sent["mode"] == mode else {}
        fresh = iter(picture_bytes([p for i, p in enumerate(pictures) if i not in done]))
        job.check()
        preds = seed.preds
        drawn_map = self._map_of(x, preds[0][0] if preds else None) if self.show_map else {}
        return {**part({i: done[i] if i in done else next(fresh) for i in range(n)}, mode),
                "pictures": [picture, *pictures], **drawn_map}

    def _map_of(self, x: torch.Tensor, c: int | None) -> dict:
        """The class map of class ``c`` for input ``x`` at ``map_layer``: {"map": (S, S) array, "map_png", "map_for"};
        for a network without class scores nothing, and where the map cannot be drawn the reason, in "map_for"."""
        assert self._probe is not None  # made in __init__: nothing here runs without it
        if c is None or self._probe.output_layer is None:
            return {"map": None, "map_png": b"", "map_for": {}}
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

    def _show_image(self, r: dict) -> None:
        self._x = r["x"]
        self._mode = r["mode"]
        self._pictures, self._unit_picture = r["pictures"], None  # what is shown, for save()
        with self.hold_sync():
            self.input_png = r["input_png"]
            self.recs = r["recs"]
            self.captions = r["captions"]
            self.drawn = r["drawn"]
            self.predictions = r["predictions"]
            self.show_display(r["mode"])
            # the whole result has its top-1's map where show_map asks for it; otherwise the last image's goes
            self._show_map(r if "map_for" in r else {"map": None, "map_png": b"", "map_for": {}})
            self.shown_rule = r["rule"]
            self.selected = {}
            self.unit_png = b""
            self.shown_image = r["index"]

    @traitlets.observe("show_map")
    def _on_show_map(self, change: dict) -> None:
        """The class map box ticked: the top-1's map of the image shown (unless a map is shown already); unticked:
        the map goes."""
        if not self._map_on_screen() or change["old"] == change["new"] or not getattr(self, "_map_ready", True):
            return
        if not change["new"]:
            self._show_map({"map": None, "map_png": b"", "map_for": {}})
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

    @traitlets.validate("map_opacity")
    def _check_opacity(self, proposal: dict) -> float:
        value = proposal["value"]
        if not 0 <= value <= 1:
            raise traitlets.TraitError(f"map_opacity must be from 0 to 1, got {value}")
        return value

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

    def restore_inputs(self, job) -> None:
        if job.lane == "image" and self.shown_image >= 0:
            self.restore_rule(self.shown_rule)  # first: the image's observer then sees nothing left to compute
            self.image_index = self.shown_image  # the picker goes back to the image still shown

    def _request_unit(self, what: str, compute) -> None:
        """A click or filter request on the image now shown; dropped if the image changes meanwhile."""
        if self._x is None:
            self.error = "No image is loaded."
            return
        x, rule, mode = self._x, self.rule, self._mode

        def apply(r: dict) -> None:
            if self._x is x:
                if "map_for" in r:
                    self._show_map(r)
                self._unit_picture = r["picture"]
                with self.hold_sync():
                    self.rf = self._fields()  # with any field measured for this unit
                    self.unit_png = r["png"]
                    self.selected = r["selected"]

        def run(job) -> dict:
            r = compute(x, rule, mode, job)
            return {**r, "png": picture_bytes([r["picture"]])[0]}

        self.run_job(what, "unit", run, apply)

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

    def browser_events(self) -> dict:
        layer = lambda m: message_field(m, "layer", str) if "layer" in m else self.layer  # noqa: E731
        channel = lambda m: m["channel"] if isinstance(m.get("channel"), str) else message_field(m, "channel", int)  # noqa: E731
        return {
            "click": ("Reconstructing the unit", lambda m: self.show_unit_at(
                layer(m), message_field(m, "x", float), message_field(m, "y", float))),
            "cell": ("Reconstructing the unit", lambda m: self.show_unit_in(
                layer(m), message_field(m, "y", int), message_field(m, "x", int))),
            "channel": ("Reading the filter number", lambda m: self.show_filter(layer(m), channel(m))),
            "class": ("Reconstructing the class", lambda m: self.show_class(message_field(m, "index", int))),
            "upload": ("Adding the picture", self.upload_event),
            "frame": ("Showing the camera's picture", self.live_event),
            "live": ("Switching live mode", lambda m: self.live_off() if not m.get("on") else None),
        }

    # ------------------------------------------------------------------ live mode (the webcam)
    def live_event(self, message: dict) -> None:
        """A camera frame from the browser (its JPEG in the message's buffer): the layer on screen is reconstructed
        for it. One frame is worked on at a time; a frame that comes meanwhile waits, and a newer one replaces it
        (never a queue: what is shown is at most one frame behind the camera)."""
        buffers = getattr(self, "_message_buffers", None) or []
        if not buffers:
            raise ImageError("The browser sent a camera frame without its picture; nothing was shown.")
        frame = (bytes(buffers[0]), message.get("n"), message.get("t"))
        running = self._live_job is not None and self._live_job.id in self._jobs
        if running:
            self._live_dropped += self._live_next is not None
            self._live_next = frame
            return
        self._live_start(frame)

    def _live_start(self, frame: tuple) -> None:
        data, n, t = frame
        layer, rule = (self.layer if self.layer in self._layers else self._layers[0]), self.rule

        def compute(job) -> dict:
            return self.live_picture(data, layer, rule) | {"n": n, "t": t}

        def apply(r: dict) -> None:
            with self.hold_sync():
                self.live_input_png, self.live_rec_png = r["input_png"], r["rec_png"]
                self.live_frame = {"n": r["n"], "t": r["t"], "layer": layer, "dropped": self._live_dropped}
            if self._live_next is not None:  # the newest frame that came meanwhile
                frame, self._live_next = self._live_next, None
                with self.from_browser():
                    self._live_start(frame)

        self._live_job = self.run_job("Showing the camera's picture", "live", compute, apply)

    def live_picture(self, data: bytes, layer: str, rule: str) -> dict:
        """One camera frame (a picture file's bytes) as the network sees it and its reconstruction at ``layer``:
        {"input_png", "rec_png"} (JPEG, or the widget's picture format)."""
        probe = self._probe
        assert probe is not None  # made in __init__: nothing here runs without it
        x = probe.model_input(data, "the camera's picture")
        rec = probe.reconstruct(x, layers=layer, rule=rule)[probe.layer(layer).name]
        mode = choose_display([rec])
        input_png, rec_png = picture_bytes([probe.to_image(x)[0], to_display(rec[0], mode)])
        return {"input_png": input_png, "rec_png": rec_png}

    def live_off(self) -> None:
        """Live mode ends (the camera stopped or paused): the photo and the layers shown before come back."""
        self._live_next = None
        if self._live_job is not None:
            self._live_job.cancel()
        with self.hold_sync():
            self.live_input_png = b""
            self.live_rec_png = b""
            self.live_frame = {}

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

    def rule_words(self) -> str:
        """The rule of the pictures shown, in words: "deconvnet", "auto: guided" or "auto: deconvnet for c1, c2;
        guided for ..." where "auto" drew layers by different rules."""
        if self.shown_rule != "auto" or not self.drawn:
            return self.shown_rule
        by: dict[str, list[str]] = {}
        for name, d in zip(self.layer_names, self.drawn):
            by.setdefault(d.split(" ")[0], []).append(name)
        if len(by) == 1:
            return f"auto: {next(iter(by))}"
        return "auto: " + "; ".join(f"{r} for {', '.join(ns)}" for r, ns in by.items())

    def to_figure(self, strip: int = 96, per_row: int = 8):
        """What the explorer shows: the input, the current layer large (with the unit, filter or class view when one
        is selected) and the top-5, then the strip of every layer (``strip`` px, ``per_row`` a row), the current
        one framed; each picture labelled with its layer and receptive field."""
        if self._pictures is None:
            raise self.nothing_to_save("no image has been reconstructed" if self.shown_image < 0 else
                                       "its layers' pictures are still arriving (the one on screen came first)")
        names, pictures = self.layer_names, self._pictures[1:]
        rfs = {n: self._probe.receptive_field(n) for n in names}
        field = lambda name: field_label(rfs[name] if name in rfs else self._probe.receptive_field(name), self.input_size)  # noqa: E731
        current = names.index(self.layer) if self.layer in names else len(names) // 2
        big = [("input", f"{self.input_size} px"), (names[current], field(names[current]))]
        row, captions = [self._pictures[0], pictures[current]], ["", self.captions[current]]
        if self._class_map is not None and "layer" in self.class_map_for:  # where the class is, over the input
            f = self.class_map_for
            big.insert(1, (f"class map: {f['label']}", f"{f['method']} at {f['layer']}"))
            row.insert(1, overlay(self._pictures[0], self._class_map, self.map_opacity))
            captions.insert(1, f"opacity {self.map_opacity:.0%}")
        if self.selected and self._unit_picture is not None:
            big.append((self.selection_label(), field(self.selected["layer"]) if self.selected.get("layer") else "RF ?"))
            row.append(self._unit_picture)
            captions.append("")
        title = f"{self.image_names[self.shown_image]} ({self.rule_words()}); {self.display}"
        sheet = layers_sheet([row], big, captions=[captions], size=224, title=title)
        x = len(row) * (224 + 6) + 10  # beside the big pictures (the title may reach further)
        sheet.text("top-5", x, 24 + 36, px=12, ha="left", bold=True)
        sheet.text(predictions_text(self.predictions), x, 24 + 54, px=11, ha="left")
        for start in range(0, len(names), per_row):
            part = names[start : start + per_row]
            layers_sheet([pictures[start : start + per_row]], [(n, field(n)) for n in part],
                         captions=[self.captions[start : start + per_row]], size=strip, sheet=sheet,
                         y0=sheet.bottom + 12,
                         frame_column=current - start if start <= current < start + per_row else None)
        return self.stamped(sheet)
