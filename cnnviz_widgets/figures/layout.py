"""Composers: the paper's layouts (Figures 4-7 and the timeline) drawn from ready pictures and results; widgets call these."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import CnnvizError, short_repr
from .sheet import Sheet, _figure_class
from .style import (CHAR_WIDTH, DPI, FIGURE_MIN_PT, SHEET_MIN_PX, LEGEND_CHARS, MARK_COLOR, MAX_LINES, PLOT_WIDTH,
                    SERIES_COLORS, SERIES_LINESTYLES, SERIES_TEXT, SOFT_COLOR, TEXT_COLOR, series_hollow)
from .text import fitting_px, middle_cut, predictions_text, printable, title_lines, wrapped


def depths(names: Sequence[str]) -> list[float]:
    """Each layer's relative depth: 0 for the first, 1 for the last, evenly between (a one-layer network: 0)."""
    return [j / max(1, len(names) - 1) for j in range(len(names))]


def thinned(names: Sequence[str], width: float = PLOT_WIDTH) -> list[str]:
    """The layer names an axis can print side by side in ``width`` px: every n-th one, always the last (a
    deep network's 50 names would be printed over each other)."""
    names = list(names)
    if not names:
        return []
    room = width / len(names)
    needed = CHAR_WIDTH * (max(len(n) for n in names) + 1)
    step = max(1, math.ceil(needed / room))
    picked = names[::step]
    if picked[-1] != names[-1]:  # the last layer stands in for the last picked one (less than a step before it)
        picked = picked[:-1] + [names[-1]] if len(picked) > 1 else picked + [names[-1]]
    return picked


def field_label(rf: Any, input_size: int | None = None, effective: Any = None) -> str:
    """How a figure names a layer's receptive field: "RF 32 px" (its size), "RF ?" where it is unknown. A field
    wider than the ``input_size`` px picture is said as such: "RF whole picture" where every unit sees all of it
    (:func:`sees_whole_picture`), else "RF 243 px > picture", or with the ``effective`` field
    (:func:`cnnviz_widgets.kernels.effective.effective_field`) beside it, "RF 851 px; eff. 143 px" (or "RF 851 px;
    eff. whole picture")."""
    if rf is None:
        return "RF ?"
    if input_size is not None and rf.size > input_size:
        if effective is None:
            return "RF whole picture" if sees_whole_picture(rf, input_size) else f"RF {rf.size} px > picture"
        return f"RF {rf.size} px; eff. {'whole picture' if effective.size >= input_size else f'{effective.size} px'}"
    return f"RF {rf.size} px"


def sees_whole_picture(rf: Any, input_size: int) -> bool:
    """Whether every unit whose field is centred in the ``input_size`` px picture sees all of it: a global field,
    or one at least twice the picture (ResNet-18's layer4.0.conv1, 243 px on 224, is not: its corner units see
    half the picture)."""
    return bool(rf.is_global) or rf.size >= 2 * input_size - 1


def field_words(rf: Any, input_size: int | None = None, effective: Any = None) -> str:
    """:func:`field_label` in full, for a hover or a band's title: "RF 1115 px, wider than the 224 px picture
    (effective field 143 px: 95% of the gradient)"."""
    if rf is None or input_size is None or rf.size <= input_size:
        return field_label(rf)
    eff = f"; effective field {effective.size} px" if effective is not None else ""
    return f"RF {rf.size} px, wider than the {input_size} px picture{eff}"


def layers_sheet(rows: Sequence[Sequence[np.ndarray]], column_labels: Sequence[tuple[str, str]],
                 row_labels: Sequence[str] | None = None, captions: Sequence[Sequence[str]] | None = None,
                 size: int = 112, gap: int = 6, title: str = "", sheet: Sheet | None = None, y0: float = 0,
                 frame_column: int | None = None) -> Sheet:
    """Figure 4's layout: ``rows`` of pictures (one row per image), each column labelled with two lines
    (a layer's name and its receptive field), each row with its image's name (on its left, turned), an
    optional caption under each picture, and a frame around ``frame_column``."""
    sheet = sheet or Sheet()
    y = y0
    if title:
        sheet.text(title, 0, y, px=14, ha="left", bold=True)
        y += 24
    left = 22 if row_labels is not None else 0
    y = column_titles(sheet, column_labels, [left + c * (size + gap) + size / 2 for c in range(len(column_labels))],
                      y, size)
    has_captions = captions is not None and any(t for row in captions for t in row)
    caption_px = 10
    if has_captions:  # a caption too long for one line at 8 px or more wraps at words; the rows make room
        captions = [[wrapped(t, size, caption_px) if t and fitting_px(t, size, caption_px, 1) < 8 else t for t in row]
                    for row in captions or []]
    caption_h = max((t.count("\n") + 1 for row in captions or [] for t in row if t), default=1) * 13 + 5
    for r, row in enumerate(rows):
        for c, picture in enumerate(row):
            x = left + c * (size + gap)
            sheet.picture(picture, x, y, size)
            if frame_column == c:
                sheet.frame(x, y, size, size)
            text = captions[r][c] if has_captions and captions is not None and c < len(captions[r]) else ""
            if text:
                sheet.text(text, x + size / 2, y + size + 3, px=fitting_px(text, size, caption_px, SHEET_MIN_PX), color=SOFT_COLOR,
                           width=size)
        if row_labels is not None:
            label = str(row_labels[r])
            sheet.text(label, 0, y + size / 2, px=fitting_px(label, size, 12, SHEET_MIN_PX), ha="left", va="center", rotation=90,
                       width=size)
        y += size + gap + (caption_h if has_captions else 0)
    return sheet


def _name_height(labels: Sequence[tuple[str, str]], width: float) -> float:
    fitted = [title_lines(name, width) for name, _ in labels]
    return max([16.0] + [(t.count("\n") + 1) * p * 1.25 for t, p in fitted])


def titles_height(labels: Sequence[tuple[str, str]], width: float) -> float:
    """How tall :func:`column_titles` draws ``labels`` over columns ``width`` px wide (36 px when every name fits
    one line)."""
    return _name_height(labels, width) + 20


def column_titles(sheet: Sheet, labels: Sequence[tuple[str, str]], centres: Sequence[float], y: float,
                  width: float, height: float | None = None) -> float:
    """Two-part titles over columns ``width`` px wide centred at ``centres``: each layer's name (bold; wrapped or
    shortened by :func:`title_lines`, never into its neighbour, the full name kept for hovering) and its second line
    (the receptive field: smaller, down to SHEET_MIN_PX). ``height``: the room to take (at least :func:`titles_height`).
    Returns the y below them, the same for every column."""
    fitted = [title_lines(name, width) for name, _ in labels]
    name_h = (height - 20) if height is not None else _name_height(labels, width)
    for (name, second), (text, p), cx in zip(labels, fitted, centres):
        sheet.text(text, cx, y, px=p, bold=True, full=name, width=width)
        sheet.text(second, cx, y + name_h + 1, px=fitting_px(second, width, 11, SHEET_MIN_PX), color=SOFT_COLOR, full=second,
                   width=width)
    return y + name_h + 20


def compare_sheet(input_picture: np.ndarray, model_names: Sequence[str], columns: Sequence[Sequence[tuple[str, str]]],
                  rows: Sequence[Sequence[np.ndarray]], predictions: Sequence[Sequence[Any]], size: int = 112,
                  gap: int = 6, title: str = "", sheet: Sheet | None = None, y0: float = 0) -> Sheet:
    """Figure 5's layout for one image: the input, then per network a row of its reconstructions (each labelled
    with its layer and receptive field) with the network's name before it and its top-5 after it."""
    sheet = sheet or Sheet()
    y = y0
    if title:
        sheet.text(title, 0, y, px=14, ha="left", bold=True)
        y += 24
    left = 22
    top = y
    head = max(titles_height(list(cols), size) for cols in columns) if columns else 36
    sheet.text("input", left + size / 2, y, px=13, bold=True)
    sheet.picture(input_picture, left, y + head, size)
    x0 = left + size + 3 * gap
    for m, (name, cols, row, preds) in enumerate(zip(model_names, columns, rows, predictions)):
        ry = top + m * (size + head + gap)
        column_titles(sheet, list(cols), [x0 + c * (size + gap) + size / 2 for c in range(len(cols))], ry, size, head)
        for c, picture in enumerate(row):
            sheet.picture(picture, x0 + c * (size + gap), ry + head, size)
        sheet.text(str(name), x0 - gap, ry + head + size / 2, px=fitting_px(str(name), size, 12, SHEET_MIN_PX), ha="right",
                   va="center", rotation=90, width=size)
        px_ = x0 + len(row) * (size + gap) + gap
        sheet.text(f"{name}: top-5", px_, ry + head, px=12, ha="left", bold=True)
        sheet.text(predictions_text(preds), px_, ry + head + 18, px=11, ha="left")
    return sheet


def filters_sheet(layer: str, rf: Any, tiles: Sequence[tuple[int, np.ndarray]], columns: int = 8, title: str = "",
                  sheet: Sheet | None = None, y0: float = 0, field: str = "") -> Sheet:
    """Figure 7's band for one layer: its name and receptive field (``field``: how to say it, e.g. which field the
    patches are cropped to), then tiles (filter number, sprite of its top patches) ``columns`` a row, each numbered."""
    sheet = sheet or Sheet()
    y = y0
    sheet.text(f"{layer}  ({field or field_label(rf)})" + (f"  {title}" if title else ""), 0, y, px=13, ha="left", bold=True)
    y += 22
    gap = 8
    for n, (c, tile) in enumerate(tiles):
        r, k = divmod(n, max(1, columns))
        h, w = tile.shape[:2]
        x, ty = k * (w + gap), y + r * (h + 16 + gap)
        sheet.text(f"#{c}", x + w / 2, ty, px=fitting_px(f"#{c}", w, 11, SHEET_MIN_PX), color=SOFT_COLOR, width=w)
        sheet.picture(tile, x, ty + 16)
    return sheet


def sparsity_figure(series: dict[str, Any], title: str = "Sparsity per layer (fraction of zero activations)",
                    note: str = "") -> Any:
    """Figure 6 from ready sparsity: ``series`` label -> {layer name: fraction of zeros} (a cv.Sparsity gives conv
    layers circles and pools squares by its ``kinds``). x is relative depth, the first network's (thinned) layer
    names below the plot, the second's above it, each in its series' colour. ``note`` (e.g. that the weights are
    random) is stamped under the title in the mark colour, the plot made shorter for it."""
    from .sheet import STAMP_PX

    note = wrapped(printable(note), 760, STAMP_PX, bold=True) if note else ""
    lines = note.count("\n") + 1 if note else 0
    height = 4.6 + lines * STAMP_PX * 1.25 / DPI
    fig = _figure_class()(figsize=(8.0, height), dpi=DPI, facecolor="white")
    has_top = len(series) > 1
    shrink = 4.6 / height  # the plot keeps its size in inches; the note takes the room added on top
    ax = fig.add_axes((0.08, 0.2 * shrink, 0.9, (0.62 if has_top else 0.7) * shrink))
    for i, (label, values) in enumerate(series.items()):
        label = middle_cut(printable(label), lambda t: len(t) <= LEGEND_CHARS)  # the figure has a fixed size
        names = list(values)
        at = dict(zip(names, depths(names)))
        kinds = getattr(values, "kinds", {}) or {}
        color, text = SERIES_COLORS[i % len(SERIES_COLORS)], SERIES_TEXT[i % len(SERIES_TEXT)]
        # told apart by luminance, dashes and (every second series) hollow markers, not by hue alone
        dash, face = SERIES_LINESTYLES[i % len(SERIES_LINESTYLES)], "white" if series_hollow(i) else color
        shown = [n for n in names if values[n] == values[n]]  # a layer with no units (NaN) keeps its place, no point
        ax.plot([at[n] for n in shown], [float(values[n]) for n in shown], color=color, label=str(label), lw=1.8, ls=dash,
                marker="o", markersize=6, markerfacecolor=face, markevery=[])  # the legend's swatch: its dash and marker
        for kind, marker in (("conv", "o"), ("pool", "s"), ("fc", "D")):
            pts = [n for n in shown if kinds.get(n, "conv") == kind]
            if pts:
                ax.plot([at[n] for n in pts], [float(values[n]) for n in pts], ls="none", marker=marker, color=color,
                        markersize=6, markerfacecolor=face, markeredgewidth=1.5)
        if i < 2:
            ticks = thinned(names, PLOT_WIDTH)
            axis = ax if i == 0 else ax.secondary_xaxis("top")
            axis.set_xticks([at[n] for n in ticks], [middle_cut(printable(t), lambda t: len(t) <= 24) for t in ticks],
                            color=text, fontsize=FIGURE_MIN_PT, parse_math=False)
            axis.set_xlabel(f"{label}: its layers, first to last (relative depth)", color=text, fontsize=FIGURE_MIN_PT + 1)
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(0, 1)
    ax.set_ylabel("sparsity", fontsize=FIGURE_MIN_PT + 1)
    ax.tick_params(axis="y", labelsize=FIGURE_MIN_PT)
    ax.legend(loc="upper left", fontsize=FIGURE_MIN_PT, frameon=False)
    ax.spines[["right"] + ([] if has_top else ["top"])].set_visible(False)
    fig.text(0.01, 1 - 0.02 * shrink, middle_cut(printable(title), lambda t: len(t) <= 110), ha="left", va="top",
             fontsize=11, fontweight="bold", color=TEXT_COLOR, parse_math=False)
    if note:
        fig.text(0.01, 1 - 0.02 * shrink - 22 / (height * DPI), "\n".join(note.split("\n")[:MAX_LINES]), ha="left",
                 va="top", fontsize=STAMP_PX * 72 / DPI, fontweight="bold", color=MARK_COLOR, linespacing=1.15,
                 parse_math=False)
    fig.text(0.01, 0.02 * shrink, "● convolution   ■ max-pool", ha="left", va="bottom", fontsize=FIGURE_MIN_PT, color=SOFT_COLOR)
    return fig


def tile_field(top: Any) -> str:
    """How a band of top patches names the field they are cropped to: "RF 32 px", or where the receptive field is
    wider than the picture "RF 851 px; eff. 224 px" (:attr:`TopPatches.field_kind`)."""
    rf = top.receptive_field()
    if top.field_kind == "effective":
        return field_label(rf, top._probe.input_size, top.patch_field())
    return field_label(rf)


def displayed(recs: Sequence[Any], display: str = "auto") -> list[np.ndarray]:
    """Reconstructions as pictures, as the widgets show them: ``display="auto"`` picks one display for the whole
    set (:func:`cnnviz_widgets.display.choose_display`); "signed" (the paper's: zero is mid-grey), "contrast" or
    "minmax" force one."""
    from ..display import MODES, pictures

    if display not in MODES:
        raise CnnvizError(f"display must be one of {', '.join(repr(m) for m in MODES)}, got {short_repr(display)}.")
    return pictures(recs, display)[0]


def timeline_steps(n: int, most: int = 6) -> list[int]:
    """Which of ``n`` checkpoints a timeline figure shows: all when ``most`` or fewer, else ``most`` spread evenly
    from the first to the last."""
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def metrics_caption(metrics: Mapping[str, Sequence[Any]], i: int) -> str:
    """Checkpoint ``i``'s recorded metrics as one short line ("loss 0.31 accuracy 0.93")."""
    return " ".join(f"{k} {v:.3g}" for k, vs in metrics.items() if i < len(vs) and (v := vs[i]) is not None)


def metrics_figure(steps: Sequence[int], metrics: Mapping[str, Sequence[Any]], marked: int | None = None,
                   title: str = "Recorded metrics over the training") -> Any:
    """The metrics recorded with a network's checkpoints against the step, one panel each (their scales differ),
    the step ``marked`` (a step, not an index) as a vertical line in every panel."""
    n = max(1, len(metrics))
    fig = _figure_class()(figsize=(3.6 * n, 2.8), dpi=DPI, facecolor="white")
    fig.suptitle(title, fontsize=11, x=0.02, ha="left")
    for i, (name, values) in enumerate(metrics.items()):
        ax = fig.add_subplot(1, n, i + 1)
        pts = [(s, float(v)) for s, v in zip(steps, values) if v is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, color=SERIES_COLORS[0], lw=1.5)
        if marked is not None:
            ax.axvline(marked, color=MARK_COLOR, lw=2)
        ax.set_title(str(name), fontsize=FIGURE_MIN_PT + 1)
        ax.set_xlabel("step", fontsize=FIGURE_MIN_PT)
        ax.tick_params(labelsize=FIGURE_MIN_PT)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.2, top=0.78, wspace=0.35)
    return fig
