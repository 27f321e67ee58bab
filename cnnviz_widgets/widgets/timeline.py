"""TrainingTimeline: one network over its training. A step slider (and play) over a cv.Checkpoints; for the chosen
picture, every layer's reconstruction at that step, the top-5, the first layer's filters as pictures and the
fraction of zeros per layer, beside the recorded metrics with the step marked; and two steps side by side in
CompareModels' layout.

Each step is one job: the probe's weights are swapped (:meth:`Checkpoints.load`), one forward pass gives the top-5
and the zeros of every layer, one backward per layer the strip. A step shown once is kept, so going
back is free (the last 16).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import traitlets

from ..display import DISPLAYS, choose_display, to_display
from ..errors import CnnvizError, short_repr
from ..figures import (
    compare_sheet,
    field_label,
    filter_sheet,
    layers_sheet,
    matching_layers,
    metrics_caption,
    on_white,
    predictions_text,
)
from ..kernels.checkpoints import Checkpoints
from ..kernels.filters import filter_pictures, first_conv
from ..kernels.sparsity import count_zeros
from ..probe.rules import WIDGET_RULE, rule_words
from .strip import ShowsStrip
from .assets import css, esm
from .encoding import picture_bytes, png_bytes
from .picker import PicksImage, widget_images

KEPT = 16  # steps whose pictures stay in memory (VGG16: about 4 MB each, the pictures for save() and their JPEGs)


class TrainingTimeline(PicksImage, ShowsStrip):
    """A step slider over ``checkpoints`` (a cv.Checkpoints); ``images``: the pictures to follow (default the
    sample photos); ``layers``: the strip's layers (default every layer); ``depths``: the layers of the two-step
    comparison (spread over the network, as CompareModels). ``step``: the step shown first (default the last)."""

    _esm = esm("timeline.js")
    _css = css()

    steps = traitlets.List(traitlets.Int()).tag(sync=True)
    step_index = traitlets.Int(0).tag(sync=True)  # the slider (shared)
    metrics = traitlets.Dict().tag(sync=True)  # name -> one number (or None) per checkpoint
    fields = traitlets.List(traitlets.Unicode()).tag(sync=True)  # each layer's receptive field, in words
    filters_png = traitlets.Bytes(b"").tag(sync=True)
    filters_layer = traitlets.Unicode("").tag(sync=True)
    sparsity = traitlets.List(traitlets.List()).tag(sync=True)  # [[layer, fraction of zeros], ...] for this picture
    shown_step = traitlets.Int(-1).tag(sync=True)  # the step index the pictures shown belong to
    view = traitlets.Enum(("step", "compare"), "step").tag(sync=True)  # one step, or two side by side
    compare_steps = traitlets.List(traitlets.Int(), default_value=[0, 0]).tag(sync=True)  # two step indices
    columns = traitlets.List(traitlets.Unicode()).tag(sync=True)  # the comparison's layers
    compare_rows = traitlets.List(traitlets.List(traitlets.Bytes())).tag(sync=True)
    compare_predictions = traitlets.List(traitlets.List(traitlets.List())).tag(sync=True)
    compare_drawn = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)
    compare_shown = traitlets.List(traitlets.Int(), default_value=[-1, -1]).tag(sync=True)  # steps, image, rule
    compare_input_png = traitlets.Bytes(b"").tag(sync=True)

    def __init__(self, checkpoints: Any = None, images: Any = None, layers: Any = None, depths: int = 5,
                 step: int | None = None, rule: str = WIDGET_RULE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ck: Checkpoints | None = None
        self._images = None
        self._kept: OrderedDict[tuple, dict] = OrderedDict()
        self._shown_result: dict | None = None
        self._compared: dict | None = None
        with self.guard("Opening the timeline"):
            if not isinstance(checkpoints, Checkpoints):
                raise CnnvizError(f"TrainingTimeline needs a cv.Checkpoints (cv.Checkpoints(model, files) or "
                                  f"recorder.checkpoints()), got {short_repr(checkpoints)}.")
            self._set_rule(rule)
            ck = checkpoints
            probe = ck.probe
            chosen = probe.select(layers)
            self._images = widget_images(images)
            last = len(ck) - 1 if step is None else ck.index(step)
            with self.hold_sync():
                self.steps = list(ck.steps)
                self.metrics = {k: list(v) for k, v in ck.metrics.items()}
                self.layer_names = [l.name for l in chosen]
                self.fields = [field_label(probe.receptive_field(l.name), probe.input_size) for l in chosen]
                self.image_names = list(self._images.names)
                self.columns = matching_layers(probe, depths)
                self.compare_steps = [0, last]
                self.filters_layer = first_conv(probe)
                self.step_index = last
            self._ck = ck
            self._request_step()

    # ------------------------------------------------------------------ one step
    @traitlets.observe("step_index", "image_index")
    def _on_input(self, change: dict) -> None:
        if self._ck is None or change["old"] == change["new"]:
            return
        if (self.step_index, self.image_index, self.rule) == (self.shown_step, self.shown_image, self.shown_rule):
            self.back_to_shown("step")
            return
        self._request_step()
        if change["name"] == "image_index" and self.view == "compare":
            self._request_compare()

    def rule_changed(self) -> None:
        if self._ck is not None:
            self._request_step()
            if self.view == "compare":
                self._request_compare()

    def _request_step(self) -> None:
        key = (self.step_index, self.image_index, self.rule)
        if key in self._kept:  # seen before: shown at once
            self._kept.move_to_end(key)
            self.run_job("Showing the step", "step", lambda job: self._kept[key], self._show_step)
            return
        self.run_job("Showing the step", "step", lambda job: self._compute_step(*key, job), self._show_step)

    def _picture(self, index: int) -> torch.Tensor:
        assert self._ck is not None  # made in __init__: nothing here runs without it
        return self._ck.model_input(*self.picture(index))

    def _compute_step(self, i: int, index: int, rule: str, job) -> dict:
        """Checkpoint i's weights, then one forward pass (the top-5 and each layer's zeros read from it) and one
        backward per layer: the strip, the filters and the sparsity of this picture at this step."""
        ck = self._ck
        assert ck is not None  # made in __init__: nothing here runs without it
        if not 0 <= i < len(ck):
            raise CnnvizError(f"step_index={i} is out of range: there are {len(ck)} checkpoints.")
        x = self._picture(index)
        with ck.using(i) as probe:  # step i's weights throughout, whatever a cell loads meanwhile
            return self._step_pictures(probe, x, i, index, rule, job)

    def _step_pictures(self, probe, x: torch.Tensor, i: int, index: int, rule: str, job) -> dict:
        """What the widget shows at step ``i`` for picture ``x``, with ``probe`` holding that step's weights."""
        names = list(self.layer_names)
        out = probe.output_layer
        found: dict[str, Any] = {}
        kinds = {l.name: l.kind for l in probe.layers}

        def on_forward(acts: dict[str, torch.Tensor]) -> dict[str, int]:
            found["zeros"] = [[n, round(float(count_zeros(a)) / a.numel(), 4)] for n, a in acts.items()
                              if kinds[n] in ("conv", "pool")]
            if out is not None and out.name in acts and probe.scores_at_output_layer:
                found["preds"] = probe.top_classes(probe.output_scores(acts[out.name]), k=5)[0]
            preds = found.get("preds")
            return {out.name: preds[0][0]} if preds and out is not None and out.name in acts else {}

        if out is not None and out.name in names and not probe.scores_at_output_layer:
            found["preds"] = probe.classify(x, k=5)[0]
        recs = probe.reconstruct(x, layers=names, rule=rule, on_forward=on_forward,
                                 progress=lambda d, t: job.report(d, t))
        if "preds" not in found and probe.output_layer is not None:
            found["preds"] = probe.classify(x, k=5)[0]
        strip = torch.cat([recs[n] for n in names])
        mode = choose_display([strip])
        pictures = list(to_display(strip, mode))
        picture = probe.to_image(x)[0]
        filters = filter_sheet(filter_pictures(probe), cell=40)
        preds = found.get("preds", [])
        captions = [f"the top-1 class, {preds[0][1]}" if out is not None and n == out.name and preds else ""
                    for n in names]
        encoded = picture_bytes([picture, *pictures])
        return {"key": (i, index, rule), "rule": rule, "input_png": encoded[0], "recs": encoded[1:], "mode": mode,
                "picture": picture, "pictures": pictures, "filters": filters, "filters_png": png_bytes(filters),
                "predictions": [[label, round(p, 4), c] for c, label, p in preds], "captions": captions,
                "drawn": [self.drawn_by(rule, n, probe) for n in names], "sparsity": found.get("zeros", [])}

    def _show_step(self, r: dict) -> None:
        self._kept[r["key"]] = r
        while len(self._kept) > KEPT:
            self._kept.popitem(last=False)
        self._shown_result = r
        i, index, _ = r["key"]  # (its rule is the strip's, r["rule"])
        with self.hold_sync():
            self._show_strip(r)
            self.filters_png = r["filters_png"]
            self.sparsity = r["sparsity"]
            self.shown_image = index
            self.shown_step = i

    def restore_inputs(self, job) -> None:
        if job.lane == "step" and self.shown_step >= 0:
            self.restore_rule(self.shown_rule)
            self.step_index, self.image_index = self.shown_step, self.shown_image

    # ------------------------------------------------------------------ two steps side by side
    @traitlets.observe("view", "compare_steps")
    def _on_compare(self, change: dict) -> None:
        if self._ck is None or change["old"] == change["new"]:
            return
        if self.view == "compare":
            self._request_compare()

    def _request_compare(self) -> None:
        assert self._ck is not None  # made in __init__: nothing here runs without it
        pair = list(self.compare_steps)
        index, rule = self.image_index, self.rule
        if len(pair) != 2 or not all(0 <= s < len(self._ck) for s in pair):
            self._show_error("Comparing two steps", CnnvizError(
                f"compare_steps must be two step indices, 0 to {len(self._ck) - 1}, got {short_repr(pair)}."))
            return
        self.run_job("Comparing two steps", "compare", lambda job: self._compute_compare(pair, index, rule, job),
                     self._show_compare)

    def _compute_compare(self, pair: list[int], index: int, rule: str, job) -> dict:
        assert self._ck is not None  # made in __init__: nothing here runs without it
        x = self._picture(index)
        cols = list(self.columns)
        rows, pictures, preds, drawn = [], [], [], []
        for j, i in enumerate(pair):
            with self._ck.using(i) as probe:
                recs = probe.reconstruct(x, layers=cols, rule=rule,
                                         progress=lambda d, t, j=j: job.report(j * t + d, 2 * t))
                try:
                    preds.append([[label, round(p, 4)] for label, p in probe.predict(x, k=5)[0]])
                except CnnvizError:
                    preds.append([])
                drawn.append([self.drawn_by(rule, c, probe) for c in cols])
            shown, _ = self.displayed([recs[c][0] for c in cols])
            pictures.append(shown)
            rows.append(picture_bytes(shown))
        picture = self._ck.probe.to_image(x)[0]
        return {"pair": pair, "index": index, "rule": rule, "rows": rows, "pictures": pictures, "predictions": preds,
                "drawn": drawn, "input": picture, "input_png": picture_bytes([picture])[0]}

    def _show_compare(self, r: dict) -> None:
        self._compared = r
        with self.hold_sync():
            self.compare_input_png = r["input_png"]
            self.compare_rows = r["rows"]
            self.compare_predictions = r["predictions"]
            self.compare_drawn = r["drawn"]
            self.compare_shown = [*r["pair"], r["index"]]

    def metrics_chart(self):
        """The recorded metrics in a bqplot chart whose step line follows this timeline's slider
        (:class:`~cnnviz_widgets.widgets.charts.MetricsChart`)."""
        from .charts import MetricsChart

        return MetricsChart(self)

    # ------------------------------------------------------------------ saving
    def to_figure(self):
        """What is shown: at one step, the input (with the step's metrics), the first layer's filters and every
        layer's reconstruction with the top-1 class under the output layer; in the comparison, CompareModels'
        figure with the two steps as its two rows."""
        ck = self._ck
        if ck is None:
            raise self.nothing_to_save("no checkpoints were opened")
        probe = ck.probe
        self._weighed = ([probe], None)  # a loaded checkpoint is loaded weights: stamped only if the probe says random
        if self.view == "compare":
            r = self._compared
            if r is None:
                raise self.nothing_to_save("no two steps have been compared")
            labels = [[(c, field_label(probe.receptive_field(c), probe.input_size)) for c in self.columns]] * 2
            names = [f"step {ck.steps[i]}" for i in r["pair"]]
            title = f"{self.image_names[r['index']]} ({rule_words(r['rule'], probe.select(self.columns), probe)})"
            return self.stamped(compare_sheet(r["input"], names, labels, r["pictures"], r["predictions"], title=title))
        r = self._shown_result
        if r is None:
            raise self.nothing_to_save("no step has been shown")
        i, index, rule = r["key"]
        names = list(self.layer_names)
        filters = on_white(r["filters"])
        labels = [("input", f"{probe.input_size} px"), ("filters", self.filters_layer)] + list(
            zip(names, self.fields))
        captions = [[metrics_caption(ck.metrics, i), ""] + list(r["captions"])]
        preds = predictions_text([(p[0], p[1]) for p in r["predictions"]])
        title = (f"step {ck.steps[i]} of {len(ck)}: {self.image_names[index]} "
                 f"({rule_words(rule, probe.select(names), probe)}; {DISPLAYS[r['mode']]}); top-5: "
                 + preds.replace("\n", ", "))
        return self.stamped(layers_sheet([[r["picture"], filters, *r["pictures"]]], labels,
                                         row_labels=[f"step {ck.steps[i]}"], captions=captions, size=96, title=title))


__all__ = ["TrainingTimeline"]
