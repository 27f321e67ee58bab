"""SparsityChart (paper Fig. 6): per-layer sparsity, one series per model, in bqplot."""
from __future__ import annotations

import html
from typing import Any

import bqplot as bq
import ipywidgets as ipw

from ..kernels.sparsity import Sparsity


class SparsityChart(ipw.VBox):
    """Sparsity of each conv and pool layer against relative depth; conv as circles, pools as squares.

    ``series``: a dict label -> Sparsity (from cv.sparsity) or -> (probe, images) to compute here.
    """

    COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]

    def __init__(self, series: dict[str, Any], title: str = "Sparsity per layer (fraction of zero activations)") -> None:
        self.error = ipw.HTML()
        marks = []
        self.data: dict[str, Sparsity] = {}
        x_sc, y_sc = bq.LinearScale(min=0.0, max=1.0), bq.LinearScale(min=0.0, max=1.0)
        try:
            from ..kernels.sparsity import sparsity

            for i, (label, value) in enumerate(series.items()):
                if not isinstance(value, Sparsity):
                    probe, images = value
                    value = sparsity(probe, images, progress=False)
                self.data[label] = value
                names = list(value)
                kinds = [value.kinds.get(n, "conv") for n in names]
                xs = [j / max(1, len(names) - 1) for j in range(len(names))]
                ys = [float(value[n]) for n in names]
                color = self.COLORS[i % len(self.COLORS)]
                marks.append(bq.Lines(x=xs, y=ys, scales={"x": x_sc, "y": y_sc}, colors=[color], labels=[label],
                                      display_legend=True))
                for kind, marker in (("conv", "circle"), ("pool", "square")):
                    pts = [(x, y, n) for x, y, n, k in zip(xs, ys, names, kinds) if k == kind]
                    if pts:
                        marks.append(bq.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], names=[p[2] for p in pts],
                                                display_names=True, marker=marker, colors=[color], default_size=40,
                                                scales={"x": x_sc, "y": y_sc},
                                                tooltip=bq.Tooltip(fields=["name", "y"], formats=["", ".3f"])))
        except Exception as exc:  # noqa: BLE001 - shown in the widget, not as a traceback
            self.error.value = f"<b>Could not compute sparsity:</b> {html.escape(str(exc))}"
        axes = [bq.Axis(scale=x_sc, label="relative depth (input to last pool)", tick_format=".1f"),
                bq.Axis(scale=y_sc, orientation="vertical", label="sparsity", tick_format=".1f")]
        self.figure = bq.Figure(marks=marks, axes=axes, title=title, legend_location="top-left",
                                layout=ipw.Layout(width="100%", height="380px"))
        super().__init__([self.error, self.figure])

