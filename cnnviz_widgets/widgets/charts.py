"""SparsityChart (paper Fig. 6): per-layer sparsity, one series per model, in bqplot (and, in marimo, which cannot
show bqplot, as the same chart in static SVG)."""
from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import bqplot as bq
import ipywidgets as ipw

from .. import checks
from ..figures import (SERIES_COLORS, SERIES_DASHES, SERIES_TEXT, depths, figure_bytes, metrics_figure,
                       series_hollow, sparsity_figure, sparsity_series, thinned)
from ..figures.paper import sparsity_note
from ._base import SavesFigure


def js_key(v: float) -> str:
    """A number as JavaScript writes it (1.0 -> "1"): the key bqplot looks a tick's label up by."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


class SparsityChart(SavesFigure, ipw.VBox):
    """Sparsity of each conv and pool layer, one coloured series per network; conv as circles, pools as squares.

    The x axis is relative depth: each network's own layers from its first (0) to its last (1), evenly spaced,
    so two networks of different depths span the same width; the first network's layer names are on the bottom
    axis and the second's on the top axis, each in its series' colour. Hover a point for its layer and value.
    ``series``: a dict label -> Sparsity (from cv.sparsity) or any {layer: fraction} dict, -> (probe, images), or
    -> a probe measured over ``images`` (what cv.figure_sparsity takes).
    """

    COLORS = SERIES_COLORS  # the saved figure's too
    # the axes' layer names in their series' colour, lighter on a dark page: the same blue or red cannot read
    # 4.5:1 on both white and JupyterLab Dark's #111 (a CSS variable the chart's key defines, per theme)
    DARK_TEXT = ["#7db9e8", "#ff8a80", "#7bd67b", "#c5a5e6"]

    def __init__(self, series: dict[str, Any], title: str = "Sparsity per layer (fraction of zero activations)",
                 images: Any = None) -> None:
        self.error = ipw.HTML()
        self.note = ipw.HTML()  # that a series' weights are random (its probe's Probe.weights_note), bold in the theme's
        # text colour (the figures' red mark is 3.8:1 on JupyterLab Dark)
        self._title = title if isinstance(title, str) else ""
        marks: list[bq.Mark] = []
        axes: list[bq.Axis] = []
        self.data: dict[str, Mapping[str, float]] = {}
        x_sc, y_sc = bq.LinearScale(min=0.0, max=1.0), bq.LinearScale(min=0.0, max=1.0)
        try:
            title = self._title = checks.text("title", title)
            for i, (label, value) in enumerate(sparsity_series(series, images).items()):
                self.data[label] = value
                names = list(value)
                at = dict(zip(names, depths(names)))
                shown = [n for n in names if value[n] == value[n]]  # a layer with no units (NaN) keeps its place, no point
                color = self.COLORS[i % len(self.COLORS)]
                kinds = getattr(value, "kinds", {}) or {}
                ys = [float(value[n]) for n in shown]
                # series told apart by luminance, dashes and (every second one) hollow markers, not by hue alone
                marks.append(bq.Lines(x=[at[n] for n in shown], y=ys, scales={"x": x_sc, "y": y_sc}, colors=[color],
                                      labels=[label], display_legend=True, line_style=SERIES_DASHES[i % len(SERIES_DASHES)],
                                      stroke_width=2))
                for kind, marker in (("conv", "circle"), ("pool", "square")):
                    pts = [(n, y) for n, y in zip(shown, ys) if kinds.get(n, "conv") == kind]
                    if pts:
                        marks.append(bq.Scatter(x=[at[p[0]] for p in pts], y=[p[1] for p in pts], names=[p[0] for p in pts],
                                                display_names=False, marker=marker, colors=[color], default_size=48,
                                                fill=not series_hollow(i), stroke=color, stroke_width=1.5,
                                                scales={"x": x_sc, "y": y_sc},
                                                tooltip=bq.Tooltip(fields=["name", "y"], formats=["", ".3f"],
                                                                   labels=[f"{label} layer", "sparsity"])))
                if i < 2:  # the first network's names below the plot, the second's above it
                    ticks = thinned(names)
                    axes.append(bq.Axis(scale=x_sc, side="bottom" if i == 0 else "top", color=color,
                                        tick_style={"fill": f"var(--cnnviz-series-{i}, {color})"},
                                        label=f"{label}: its layers, first to last", tick_values=[at[n] for n in ticks],
                                        tick_labels={js_key(at[n]): n for n in ticks}, grid_lines="none", label_offset="32px"))
        except Exception as exc:  # noqa: BLE001 - shown in the widget, not as a traceback
            self.error_text = f"Could not compute sparsity: {exc}"  # plain, for save()'s message
            self.error.value = f"<b>Could not compute sparsity:</b> {html.escape(str(exc))}"
        axes.append(bq.Axis(scale=y_sc, orientation="vertical", label="sparsity", tick_format=".1f"))
        top = 64 if len(self.data) > 1 else 16  # room for the second network's names above the plot
        self.figure = bq.Figure(marks=marks, axes=axes, legend_location="top-left",
                                # the names in the page's text colour (the swatch beside each has the series')
                                legend_text={"fill": "var(--jp-ui-font-color1, var(--vscode-editor-foreground, #1f1f1f))"},
                                fig_margin={"top": top, "bottom": 60, "left": 60, "right": 30},
                                layout=ipw.Layout(width="auto", height=f"{330 + top}px"))
        # the title and the key in the page's own font and colours (bqplot's title would sit on the top axis)
        self.title = ipw.HTML(f"<b style='font-size: 14px'>{html.escape(self._title)}</b>")
        more = "; the first two networks' names are on the axes" if len(self.data) > 2 else ""
        self.key = ipw.HTML(
            self.series_colours_css() +
            "<div style='color: var(--jp-ui-font-color2, #595959); font-size: 12px; line-height: 1.4'>● convolution &nbsp; "
            "■ max-pool &nbsp;·&nbsp; x: each network's layers, first to last, evenly spaced (relative depth), so networks "
            f"of different depths span the same width{more} &nbsp;·&nbsp; hover a point for its value</div>")
        said = sparsity_note(self.data)
        self.note.value = f"<div class='cnnviz-note' role='note' style='font-weight: bold'>{html.escape(said)}</div>" \
            if said else ""
        super().__init__([self.error, self.title, self.note, self.figure, self.key])

    @classmethod
    def series_colours_css(cls) -> str:
        """A <style> defining --cnnviz-series-N, the axis text colours: the series colours on a light page, lighter
        ones where the page is dark (JupyterLab Dark, VS Code dark, or a bare page that prefers dark)."""
        light = "; ".join(f"--cnnviz-series-{i}: {c}" for i, c in enumerate(SERIES_TEXT))
        dark = "; ".join(f"--cnnviz-series-{i}: {c}" for i, c in enumerate(cls.DARK_TEXT))
        return (f"<style>:root {{ {light} }} body[data-jp-theme-light='false'], body.vscode-dark, "
                f"body.vscode-high-contrast:not(.vscode-high-contrast-light) {{ {dark} }} "
                f"@media (prefers-color-scheme: dark) {{ body:not([data-jp-theme-light]):not(.vscode-light):not(.vscode-high-contrast-light) "
                f"{{ {dark} }} }}</style>")

    def to_figure(self):
        """Figure 6 as the chart shows it: each series' sparsity against relative depth, the first two networks'
        (thinned) layer names on the bottom and top axes in their colours, conv circles and pool squares."""
        if not self.data:
            raise self.nothing_to_save("no sparsity was computed")
        return sparsity_figure(self.data, self._title, note=sparsity_note(self.data))

    def _display_(self) -> _HTML:
        """marimo's display hook (Jupyter never calls it). marimo shows anywidget widgets but not bqplot, an
        ipywidgets widget, so there the chart is the same figure as inline SVG: its text stays text (the layer
        names can be read, found and copied); hovering for values is Jupyter's alone."""
        if not self.data:
            return _HTML(f"<div class='cnnviz-sparsity' role='alert'>{self.error.value or 'No sparsity to show.'}</div>")
        return _HTML(f"<div class='cnnviz-sparsity' role='figure' aria-label='{html.escape(self._title, quote=True)}'>"
                     f"{svg_markup(self.to_figure())}</div>")


class MetricsChart(SavesFigure, ipw.VBox):
    """The metrics a :class:`~cnnviz_widgets.widgets.timeline.TrainingTimeline` holds against the step, in bqplot:
    each metric its own line and scale (the first two their axes, left and right), and the timeline's step as a
    dashed grey vertical line that follows its slider and play. Made by ``timeline.metrics_chart()``; the timeline draws the same
    charts itself (in marimo too, which cannot show bqplot)."""

    def __init__(self, timeline: Any) -> None:
        self._timeline = timeline
        steps, metrics = list(timeline.steps), dict(timeline.metrics)
        pad = 0.03 * ((steps[-1] - steps[0]) if steps else 1) or 1  # the first and last steps' line clear of the axes
        x_sc = bq.LinearScale(min=float(steps[0] - pad), max=float(steps[-1] + pad)) if steps else bq.LinearScale()
        marks: list[bq.Mark] = []
        axes = [bq.Axis(scale=x_sc, label="step", grid_lines="none", label_offset="36px")]
        for i, (name, values) in enumerate(metrics.items()):
            y_sc = bq.LinearScale()
            pts = [(s, float(v)) for s, v in zip(steps, values) if v is not None]
            color = self.COLORS[i % len(self.COLORS)]
            marks.append(bq.Lines(x=[p[0] for p in pts], y=[p[1] for p in pts], scales={"x": x_sc, "y": y_sc},
                                  colors=[color], labels=[name], display_legend=len(metrics) > 2, marker="circle",
                                  marker_size=16, line_style=SERIES_DASHES[i % len(SERIES_DASHES)], stroke_width=2))
            if i < 2:  # each named on its own axis, in its colour (a legend box would sit over the lines)
                axes.append(bq.Axis(scale=y_sc, orientation="vertical", side="left" if i == 0 else "right", label=name,
                                    color=color, tick_style={"fill": f"var(--cnnviz-series-{i}, {color})"},
                                    grid_lines="none", tick_format=".2f", label_offset="52px"))
        self.mark = bq.Lines(x=[0, 0], y=[0, 1], scales={"x": x_sc, "y": bq.LinearScale(min=0.0, max=1.0)},
                             colors=["#8c8c8c"], stroke_width=2, line_style="dashed")  # grey: no series' colour
        marks.append(self.mark)
        self.figure = bq.Figure(marks=marks, axes=axes, legend_location="bottom-left", title="",
                                fig_margin={"top": 20, "bottom": 60, "left": 80, "right": 80},
                                layout=ipw.Layout(width="auto", height="300px"))
        # the axes' numbers in their series' colour, lighter on a dark page (as SparsityChart's layer names)
        super().__init__([ipw.HTML(SparsityChart.series_colours_css()), self.figure])
        self._follow()
        timeline.observe(lambda change: self._follow(), "step_index")

    COLORS = SERIES_COLORS

    @property
    def marked(self) -> int | None:
        """The step the vertical line marks."""
        steps = self._timeline.steps
        return steps[self._timeline.step_index] if 0 <= self._timeline.step_index < len(steps) else None

    def _follow(self) -> None:
        step = self.marked
        if step is not None:
            self.mark.x = [step, step]

    def to_figure(self):
        """The metrics against the step, one panel each, the timeline's step marked."""
        if not self._timeline.metrics:
            raise self.nothing_to_save("the checkpoints carry no metrics")
        return metrics_figure(self._timeline.steps, self._timeline.metrics, self.marked)


class _HTML:
    """HTML for marimo's ``_mime_`` protocol."""

    def __init__(self, markup: str) -> None:
        self.markup = markup

    def _mime_(self) -> tuple[str, str]:
        return "text/html", self.markup

    def _repr_html_(self) -> str:
        return self.markup


def svg_markup(figure: Any) -> str:
    """A matplotlib Figure as an inline <svg> element, its text as text (not paths): the saved SVG's own bytes."""
    svg = figure_bytes(figure, "svg").decode("utf-8")
    return svg[svg.index("<svg"):]
