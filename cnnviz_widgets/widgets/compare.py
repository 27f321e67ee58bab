"""CompareModels (paper Fig. 5): the same image through two networks, reconstructions at matching depths."""
from __future__ import annotations

from typing import Any

import traitlets

from ..display import DISPLAYS
from ..figures import compare_rows, compare_sheet, field_label, matching_layers, model_names, models_rule_words  # noqa: F401 - matching_layers re-exported
from ..models import load_model_or_random
from ..probe.rules import WIDGET_RULE
from ._base import ReversingWidget, as_probe
from .assets import css, esm
from .picker import widget_images
from .encoding import png_bytes
from .uploads import TakesPictures


class CompareModels(TakesPictures, ReversingWidget):
    """Two rows per image: each model's reconstructions at matching depths (by the synced ``rule``) and
    its top-5 predictions."""

    _esm = esm("compare.js")
    _css = css()

    model_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    columns = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)  # layer names per model
    input_png = traitlets.Bytes(b"").tag(sync=True)
    rows = traitlets.List(traitlets.List(traitlets.Bytes())).tag(sync=True)  # PNGs per model
    predictions = traitlets.List(traitlets.List(traitlets.List())).tag(sync=True)
    drawn = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)  # per model and column: the rule that drew it
    shown_rule = traitlets.Unicode("").tag(sync=True)  # the rule they were made by

    _compared: dict[str, Any] | None  # the last result shown, for save() (not CnnvizWidget._shown, its lanes' job ids)

    def __init__(self, probe_a: Any = None, probe_b: Any = None, images: Any = None, depths: int = 5,
                 names: tuple[str, str] | None = None, rule: str = WIDGET_RULE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._probes, self._images, self._compared = [], None, None
        with self.guard("Comparing the models"):
            self._set_rule(rule)

            if probe_a is None:  # Figure 5 compares trained networks: torchvision's AlexNet has published weights
                probe_a, _ = load_model_or_random("vgg16")
                names = names or ("VGG16", "AlexNet")
            if probe_b is None:
                probe_b, _ = load_model_or_random("alexnet")
            self._probes = [as_probe(probe_a), as_probe(probe_b)]
            self._images = widget_images(images)
            with self.hold_sync():
                self.model_names = model_names(names, self._probes)
                self.columns = [matching_layers(p, depths) for p in self._probes]
                self.image_names = list(self._images.names)
                self.say_weights(self._probes, self.model_names)  # which of the two is random, if any
            self._request(self.image_index)

    @traitlets.observe("image_index")
    def _on_image(self, change: dict) -> None:
        if not self._probes or self._images is None or change["old"] == change["new"]:
            return
        if change["new"] == self.shown_image and self.rule == self.shown_rule:
            self.back_to_shown("image")
            return
        self._request(change["new"])

    def upload_side(self) -> int:
        return max(p.resize_size or p.input_size for p in self._probes)

    def request_picture(self, index: int) -> None:
        self._request(index)

    def browser_events(self) -> dict:
        return {"upload": ("Adding the picture", self.upload_event)}

    def _request(self, index: int) -> None:
        rule = self.rule
        self.run_job("Comparing the models", "image", lambda job: self._compare(index, rule, job), self._show)

    def rule_changed(self) -> None:
        if self._probes and self._images is not None:
            self._request(self.image_index)

    def restore_inputs(self, job) -> None:
        if self.shown_image >= 0:
            self.restore_rule(self.shown_rule)  # first: the image's observer then sees nothing left to compute
            self.image_index = self.shown_image

    def _compare(self, index: int, rule: str, job) -> dict:
        picture, name = self.picture(index)  # each network decodes it at its size
        found = compare_rows(self._probes, self.columns, picture, name, rule, progress=job.report)
        first, raw, modes = found["input"], found["pictures"], found["modes"]
        rows = [[png_bytes(p) for p in row] for row in raw]
        preds = [[[label, round(p, 4)] for label, p in row] for row in found["predictions"]]
        drawn = [[self.drawn_by(rule, c, p) for c in cols] for p, cols in zip(self._probes, self.columns)]
        return {"index": index, "input_png": png_bytes(first), "rows": rows, "predictions": preds, "modes": modes,
                "rule": rule, "input": first, "pictures": raw, "drawn": drawn}

    def _show(self, r: dict) -> None:
        self._compared = r  # the pictures themselves, for save()
        with self.hold_sync():
            self.input_png = r["input_png"]
            self.rows = r["rows"]
            self.predictions = r["predictions"]
            modes = r["modes"]
            self.display = (f"display: {DISPLAYS[modes[0]]}" if len(set(modes)) == 1 else
                            "display: " + "; ".join(f"{name}, {DISPLAYS[m]}" for name, m in zip(self.model_names, modes)))
            self.drawn = r["drawn"]
            self.shown_rule = r["rule"]
            self.shown_image = r["index"]

    def to_figure(self):
        """Figure 5 as shown: the input, each network's row of reconstructions (labelled with its layers and their
        receptive fields) and its top-5 predictions as text."""
        r = self._compared
        if r is None:
            raise self.nothing_to_save("no image has been compared")
        labels = [[(c, field_label(p.receptive_field(c), p.input_size)) for c in cols]
                  for p, cols in zip(self._probes, self.columns)]
        title = (f"{self.image_names[r['index']]} ({models_rule_words(r['rule'], self.model_names, self._probes, self.columns)}); "
                 f"{self.display}")
        return self.stamped(compare_sheet(r["input"], self.model_names, labels, r["pictures"], r["predictions"], title=title))
