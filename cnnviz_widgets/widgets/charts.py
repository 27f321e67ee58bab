"""SparsityChart (paper Fig. 6): per-layer sparsity, one series per model, in bqplot (and, in marimo, which cannot
show bqplot, as the same chart in static SVG)."""
from __future__ import annotations

import html
import math
from typing import Any

import bqplot as bq
import ipywidgets as ipw

from ..kernels.sparsity import Sparsity

PLOT_WIDTH = 640  # px: the plot area the layer names are thinned for (about that of a 1280 px screen with Lab's sidebar open)
CHAR_WIDTH = 6.5  # px per character of an axis tick label, and the gap kept between two labels


def depths(names: list[str]) -> list[float]:
    """Each layer's relative depth: 0 for the first, 1 for the last, evenly between (a one-layer network: 0)."""
    return [j / max(1, len(names) - 1) for j in range(len(names))]


def js_key(v: float) -> str:
    """A number as JavaScript writes it (1.0 -> "1"): the key bqplot looks a tick's label up by."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def thinned(names: list[str], width: int = PLOT_WIDTH) -> list[str]:
    """The layer names an axis can print side by side in ``width`` px: every n-th one, always the last (a
    deep network's 50 names would be printed over each other)."""
    if not names:
        return []
    room = width / len(names)
    needed = CHAR_WIDTH * (max(len(n) for n in names) + 1)
    step = max(1, math.ceil(needed / room))
    picked = names[::step]
    if picked[-1] != names[-1]:  # the last layer stands in for the last picked one (less than a step before it)
        picked = picked[:-1] + [names[-1]] if len(picked) > 1 else picked + [names[-1]]
    return picked


class SparsityChart(ipw.VBox):
    """Sparsity of each conv and pool layer, one coloured series per network; conv as circles, pools as squares.

    The x axis is relative depth: each network's own layers from its first (0) to its last (1), evenly spaced,
    so two networks of different depths span the same width; the first network's layer names are on the bottom
    axis and the second's on the top axis, each in its series' colour. Hover a point for its layer and value.
    ``series``: a dict label -> Sparsity (from cv.sparsity) or -> (probe, images) to compute here.
    """

    COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]

    def __init__(self, series: dict[str, Any], title: str = "Sparsity per layer (fraction of zero activations)") -> None:
        self.error = ipw.HTML()
        marks: list[bq.Mark] = []
        axes: list[bq.Axis] = []
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
                at = dict(zip(names, depths(names)))
                shown = [n for n in names if value[n] == value[n]]  # a layer with no units (NaN) keeps its place, no point
                color = self.COLORS[i % len(self.COLORS)]
                ys = [float(value[n]) for n in shown]
                marks.append(bq.Lines(x=[at[n] for n in shown], y=ys, scales={"x": x_sc, "y": y_sc}, colors=[color],
                                      labels=[label], display_legend=True))
                for kind, marker in (("conv", "circle"), ("pool", "square")):
                    pts = [(n, y) for n, y in zip(shown, ys) if value.kinds.get(n, "conv") == kind]
                    if pts:
                        marks.append(bq.Scatter(x=[at[p[0]] for p in pts], y=[p[1] for p in pts], names=[p[0] for p in pts],
                                                display_names=False, marker=marker, colors=[color], default_size=40,
                                                scales={"x": x_sc, "y": y_sc},
                                                tooltip=bq.Tooltip(fields=["name", "y"], formats=["", ".3f"],
                                                                   labels=[f"{label} layer", "sparsity"])))
                if i < 2:  # the first network's names below the plot, the second's above it
                    ticks = thinned(names)
                    axes.append(bq.Axis(scale=x_sc, side="bottom" if i == 0 else "top", color=color, label_color=color,
                                        label=f"{label}: its layers, first to last", tick_values=[at[n] for n in ticks],
                                        tick_labels={js_key(at[n]): n for n in ticks}, grid_lines="none", label_offset="32px"))
        except Exception as exc:  # noqa: BLE001 - shown in the widget, not as a traceback
            self.error.value = f"<b>Could not compute sparsity:</b> {html.escape(str(exc))}"
        axes.append(bq.Axis(scale=y_sc, orientation="vertical", label="sparsity", tick_format=".1f"))
        top = 64 if len(self.data) > 1 else 16  # room for the second network's names above the plot
        self.figure = bq.Figure(marks=marks, axes=axes, legend_location="top-left",
                                fig_margin={"top": top, "bottom": 60, "left": 60, "right": 30},
                                layout=ipw.Layout(width="auto", height=f"{330 + top}px"))
        # the title and the key in the page's own font and colours (bqplot's title would sit on the top axis)
        self.title = ipw.HTML(f"<b style='font-size: 14px'>{html.escape(title)}</b>")
        more = "; the first two networks' names are on the axes" if len(self.data) > 2 else ""
        self.key = ipw.HTML(
            "<div style='color: var(--jp-ui-font-color2, #666); font-size: 12px; line-height: 1.4'>● convolution &nbsp; "
            "■ max-pool &nbsp;·&nbsp; x: each network's layers, first to last, evenly spaced (relative depth), so networks "
            f"of different depths span the same width{more} &nbsp;·&nbsp; hover a point for its value</div>")
        self._title = title
        super().__init__([self.error, self.title, self.figure, self.key])

    def _display_(self) -> "_HTML":
        """marimo's display hook (Jupyter never calls it). marimo shows anywidget widgets but not bqplot, an
        ipywidgets widget, so there the chart is the same figure as inline SVG: its text stays text (the layer
        names can be read, found and copied); hovering for values is Jupyter's alone."""
        if not self.data:
            return _HTML(f"<div class='cnnviz-sparsity' role='alert'>{self.error.value or 'No sparsity to show.'}</div>")
        return _HTML(f"<div class='cnnviz-sparsity' role='figure' aria-label='{html.escape(self._title, quote=True)}'>"
                     f"{svg_markup(static_figure(self.data, self._title))}</div>")


class _HTML:
    """HTML for marimo's ``_mime_`` protocol."""

    def __init__(self, markup: str) -> None:
        self.markup = markup

    def _mime_(self) -> tuple[str, str]:
        return "text/html", self.markup

    def _repr_html_(self) -> str:
        return self.markup


def svg_markup(figure: Any) -> str:
    """A matplotlib Figure as an inline <svg> element, its text as text (not paths)."""
    import io

    from matplotlib import rc_context

    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "cnnviz"}):
        figure.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def static_figure(series: dict[str, Sparsity], title: str) -> Any:
    """The chart as a matplotlib Figure (no pyplot): relative depth on x, the first network's (thinned) layer names
    below the plot and the second's above it in their series' colours, conv layers as circles, pools as squares."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.6), dpi=100, facecolor="white")
    has_top = len(series) > 1
    ax = fig.add_axes((0.08, 0.2, 0.9, 0.62 if has_top else 0.7))
    for i, (label, values) in enumerate(series.items()):
        names = list(values)
        at = dict(zip(names, depths(names)))
        color = SparsityChart.COLORS[i % len(SparsityChart.COLORS)]
        shown = [n for n in names if values[n] == values[n]]  # a layer with no units (NaN) keeps its place, no point
        key = str(label).replace("$", r"\$")  # a dollar, not mathtext
        ax.plot([at[n] for n in shown], [float(values[n]) for n in shown], color=color, label=key, lw=1.5)
        for kind, marker in (("conv", "o"), ("pool", "s")):
            pts = [n for n in shown if values.kinds.get(n, "conv") == kind]
            if pts:
                ax.plot([at[n] for n in pts], [float(values[n]) for n in pts], ls="none", marker=marker, color=color,
                        markersize=5)
        if i < 2:
            ticks = thinned(names)
            axis = ax if i == 0 else ax.secondary_xaxis("top")
            axis.set_xticks([at[n] for n in ticks], ticks, color=color, fontsize=8, parse_math=False)
            axis.set_xlabel(f"{label}: its layers, first to last (relative depth)", color=color, fontsize=9,
                           parse_math=False)
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(0, 1)
    ax.set_ylabel("sparsity")
    ax.legend(loc="upper left", fontsize=9, frameon=False)
    ax.spines[["right"] + ([] if has_top else ["top"])].set_visible(False)
    fig.text(0.01, 0.98, title, ha="left", va="top", fontsize=11, fontweight="bold", parse_math=False)
    fig.text(0.01, 0.02, "● convolution   ■ max-pool", ha="left", va="bottom", fontsize=8, color="#595959")
    return fig
