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

import torch
import traitlets

from .. import checks
from ..display import choose_display, overlay, to_display
from ..figures import field_label, layers_sheet, predictions_text
from ..probe.reconstruct import TopClassSeed
from ..probe.rules import WIDGET_RULE
from ._base import as_probe, message_field
from .assets import css, esm
from .class_map_view import ShowsClassMap, no_map
from .encoding import picture_bytes
from .live import LiveCamera
from .picker import widget_images
from .unit_view import PicksUnits
from .uploads import TakesPictures


class DeconvExplorer(TakesPictures, PicksUnits, ShowsClassMap, LiveCamera):
    """Pick an image; see what every layer keeps; slide through the layers; click for one unit."""

    _esm = esm("deconv_explorer.js")
    _css = css()

    layer = traitlets.Unicode("").tag(sync=True)  # shared: link it to drive or follow other widgets
    rf = traitlets.List(traitlets.List(traitlets.Float())).tag(sync=True)  # (size, stride, offset) per layer; [] if none
    switches = traitlets.List(traitlets.Bool()).tag(sync=True)  # per layer: max-pools below it (the deconvnet's only input)
    grid = traitlets.List(traitlets.List(traitlets.Int())).tag(sync=True)  # (H, W) of each layer's map
    channels = traitlets.List(traitlets.Int()).tag(sync=True)  # filters (classes) of each layer: the filter box's range
    input_size = traitlets.Int(224).tag(sync=True)

    _x: torch.Tensor | None  # the model input shown

    def __init__(self, probe: Any, images: Any = None, layers: Any = None, image_index: int = 0,
                 rule: str = WIDGET_RULE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
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

    def _show_image(self, r: dict) -> None:
        """Show a result of the image job: its first part, another layer of it, or the whole strip. Only a new
        input (another photo, or the same under another rule: a new tensor) clears the unit view and the class
        map: a unit or class picked while the rest of its own strip arrives stays, and so does its map."""
        new_input = self._x is not r["x"]
        pick = self._pick if not new_input and r["mode"] != self._mode and self.selected else None
        self._x = r["x"]
        self._mode = r["mode"]
        self._pictures = r["pictures"]  # what is shown, for save()
        with self.hold_sync():
            self._show_strip(r)
            if new_input or not self.class_map_for:
                # the whole result has its top-1's map where show_map (still) asks for it; otherwise the last
                # image's goes (a map unticked while the strip was computed stays off)
                self._show_map(r if "map_for" in r and self.show_map else no_map())
            if new_input:
                self._unit_picture, self._pick = None, None
                self.selected = {}
                self.unit_png = b""
            self.shown_image = r["index"]
        if pick is not None:  # the pick kept, in the display of the strip now shown
            self._pick_again(pick)

    def restore_inputs(self, job) -> None:
        if job.lane == "image" and self.shown_image >= 0:
            self.restore_rule(self.shown_rule)  # first: the image's observer then sees nothing left to compute
            self.image_index = self.shown_image  # the picker goes back to the image still shown

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
