"""Figures: every way cnnviz lays pictures out for reading, on the kernel side (no widget is imported here).

- :func:`sprite`: tiles in one RGBA sheet with clear gutters (the widgets' galleries travel as these).
- :func:`picture_grid`: the paper's Figure 4 layout as one PIL picture for a notebook, labels drawn in a mid grey
  on a clear background, so it reads in a light and a dark theme alike.
- :func:`figure_layers`, :func:`figure_compare`, :func:`figure_sparsity`, :func:`figure_filters`: the paper's
  Figures 4-7 (and :func:`figure_timeline`: one network's checkpoints over its training) as matplotlib figures
  with their text as text, and :func:`save_figure` to write them (or a
  picture_grid) as PNG, SVG or PDF. The widgets' ``save(path)`` compose what they show with the same pieces
  (:class:`Sheet`, :func:`layers_sheet`, :func:`compare_sheet`, :func:`filters_sheet`, :func:`sparsity_figure`).

One module, because the pieces share their layout (sprite tiles, labels by layer name and receptive field);
matplotlib is imported on first use only, so importing the package stays as light as before.
"""
from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import re
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import checks
from .errors import CnnvizError, plural, short_repr

LABEL_COLOR = (128, 128, 128, 255)  # contrast 3.9:1 on white, 4.8:1 on JupyterLab Dark's #111


def _font(px: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=px)  # Pillow >= 10.1: a scalable font
    except TypeError:  # pragma: no cover - older Pillow: its small bitmap font
        return ImageFont.load_default()


def _as_picture(p: object, where: str) -> Image.Image:
    a = np.asarray(p)
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise CnnvizError(f"{where} is {short_repr(p)} ({a.dtype}, shape {a.shape}): give an HxWx3 uint8 picture "
                          f"(cv.to_display(reconstruction) or probe.to_image(x)[0] make one).")
    return Image.fromarray(a).convert("RGBA")


_UNPRINTABLE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def printable(text: Any) -> str:
    """``text`` as a figure can hold it: control characters (a line break aside), lone surrogates and the
    non-characters U+FFFE and U+FFFF written out as escapes ("\\x07", "\\ufffe"). Linux file names and labels may
    hold them; drawn as they are they make a saved SVG invalid XML, which browsers refuse to show."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                            else f"\\u{ord(m.group()):04x}", str(text))


def middle_cut(text: str, fits: Any) -> str:
    """``text`` shortened in the middle with "…" (both ends kept: module paths, file names) to the longest form for
    which ``fits(form)`` holds, "…" where none does. Found by bisection: a 10,000-character name costs 14
    measurements, not 10,000."""
    if fits(text):
        return text
    cut = lambda keep: text[: keep // 2] + "…" + text[len(text) - (keep - keep // 2) :]  # noqa: E731
    lo, hi, best = 2, len(text) - 1, ""
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(cut(mid)):
            best, lo = cut(mid), mid + 1
        else:
            hi = mid - 1
    return best or "…"


def _fit(text: str, font: ImageFont.ImageFont, width: int) -> str:
    """``text`` shortened in the middle until it fits ``width`` px (module paths keep both ends); "…" alone
    where not even one character each side fits."""
    return middle_cut(printable(text), lambda t: font.getlength(t) <= width)


def sprite(tiles: list[np.ndarray | None], columns: int, cell: int, pad: int = 2) -> np.ndarray:
    """Tiles (uint8 HxWx3, any size; None for an empty place) resized to ``cell`` and laid out ``columns``
    per row in one RGBA picture whose gutters and empty places are transparent (the page's own background,
    light or dark, shows through them).

    Galleries travel as one sprite sheet per page rather than one message per patch.
    """
    columns = max(1, min(columns, len(tiles))) if tiles else 1
    rows = max(1, -(-len(tiles) // columns))
    out = np.zeros((rows * (cell + pad) - pad, columns * (cell + pad) - pad, 4), np.uint8)
    for n, t in enumerate(tiles):
        if t is None:
            continue
        r, c = divmod(n, columns)
        if t.shape[:2] != (cell, cell):
            t = np.asarray(Image.fromarray(t).resize((cell, cell), Image.BILINEAR))
        place = out[r * (cell + pad) : r * (cell + pad) + cell, c * (cell + pad) : c * (cell + pad) + cell]
        if t.shape[2] == 4:
            place[:] = t
        else:
            place[..., :3], place[..., 3] = t, 255
    return out


def filter_sheet(pictures: np.ndarray, columns: int | None = None, cell: int = 24, pad: int = 2) -> np.ndarray:
    """Filter pictures (C, kh, kw, 3) in one RGBA sheet, ``columns`` a row (default about square), each enlarged
    to ``cell`` px by whole pixels (no blur: a 5x5 filter stays 25 squares)."""
    n, kh, kw = pictures.shape[:3]
    factor = max(1, cell // max(kh, kw))
    big = [np.repeat(np.repeat(p, factor, axis=0), factor, axis=1) for p in pictures]
    columns = columns or max(1, int(np.ceil(np.sqrt(n))))
    return sprite(big, columns, factor * max(kh, kw), pad)


GRID_PIXELS = 40_000_000  # picture_grid's largest canvas (160 MB of RGBA): 8 x 5 pictures of 1,000 px


def picture_grid(rows: Sequence[Sequence[np.ndarray]], column_labels: Sequence[str] | None = None,
                 row_labels: Sequence[str] | None = None, size: int = 128, gap: int = 4, label_px: int = 13) -> Image.Image:
    """Pictures laid out in rows, each resized to ``size`` px square, with a label over each column and before
    each row; an RGBA PIL image (clear background, grey labels) that Jupyter shows as it is.

    ``rows``: a list of rows, each a list of HxWx3 uint8 pictures (rows may be shorter than the longest).
    """
    given = rows
    rows = [] if isinstance(rows, np.ndarray) or not hasattr(rows, "__iter__") else list(rows)
    if not rows or not all(isinstance(r, (list, tuple)) and r for r in rows):
        raise CnnvizError(f"rows is {short_repr(given if not rows else rows)}: give a list of rows, each a non-empty "
                          f"list of pictures (one row: [[picture, picture, ...]]).")
    size = checks.positive_int("size", size, "a positive whole number of pixels")
    gap = checks.non_negative_int("gap", gap, "a whole number of pixels, 0 or more")
    label_px = checks.positive_int("label_px", label_px, "a positive whole number of pixels")
    columns = max(len(r) for r in rows)
    if column_labels is not None and len(column_labels) != columns:
        raise CnnvizError(f"{len(column_labels)} column labels for {plural(columns, 'column')}: give one per column.")
    if row_labels is not None and len(row_labels) != len(rows):
        raise CnnvizError(f"{len(row_labels)} row labels for {plural(len(rows), 'row')}: give one per row.")
    font = _font(label_px)
    line = label_px + 6
    top = line if column_labels is not None else 0
    left = (min(160, int(max(font.getlength(_fit(t, font, 160)) for t in row_labels)) + 8) if row_labels is not None
            else 0)
    width, height = left + columns * (size + gap) - gap, top + len(rows) * (size + gap) - gap
    if width * height > GRID_PIXELS:
        raise CnnvizError(f"picture_grid would be {width:,} x {height:,} px ({width * height / 1e6:.0f} megapixels, over "
                          f"the {GRID_PIXELS / 1e6:.0f} it draws): give a smaller size= (now {size}) or fewer pictures.")
    out = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(out)
    tiles = [np.asarray(_as_picture(p, f"the picture at row {r}, column {c}")) if c < len(row) else None
             for r, row in enumerate(rows) for c, p in enumerate([*row, *[None] * (columns - len(row))])]
    out.paste(Image.fromarray(sprite(tiles, columns, size, pad=gap)), (left, top))
    for r in range(len(rows) if row_labels is not None else 0):
        draw.text((0, top + r * (size + gap) + size // 2), _fit(row_labels[r], font, left - 8), fill=LABEL_COLOR,
                  font=font, anchor="lm")
    for c, text in enumerate(column_labels or []):
        draw.text((left + c * (size + gap) + size // 2, top // 2), _fit(text, font, size), fill=LABEL_COLOR,
                  font=font, anchor="mm")
    return out


# ---------------------------------------------------------------------------------------------------------------
# The paper's figures as matplotlib figures (Figures 4-7), composed from kernel results, and saved as PNG, SVG or PDF.
#
# matplotlib is imported on first use (the package's import stays light) and only through matplotlib.figure.Figure,
# never pyplot: no global state, no window, and it works headless (Agg). Pictures are laid out in pixels by
# :class:`Sheet`, each drawn at its own size (resized beforehand with Pillow, as the widgets' sprites are), so a
# saved PNG holds the exact grey levels the display code gave: a zero reconstruction is the paper's mid-grey.

DPI = 100  # a figure of W x H sheet pixels saves as a W x H PNG
TEXT_COLOR = "#222222"
SOFT_COLOR = "#666666"  # second lines: receptive fields, captions
MARK_COLOR = "#d62728"  # the current layer's frame, the selected cell's box
SERIES_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]  # the SparsityChart's
FORMATS = (".png", ".svg", ".pdf")
FREE_WIDTH = 1600  # px: how wide a text may make a figure beyond its pictures (a title over one narrow column)
MAX_LINES = 8  # lines of one text (a caption wrapped at words, a name holding line breaks)
PLOT_WIDTH = 640  # px: the plot area the layer names are thinned for (about that of a 1280 px screen with Lab's sidebar open)
CHAR_WIDTH = 6.5  # px per character of an axis tick label, and the gap kept between two labels


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


def matching_layers(probe: Any, n: int) -> list[str]:
    """n conv layers spread evenly over the network's depth, ending with its last conv layer
    (VGG16, n=4: c2_2 c3_3 c4_3 c5_3; the paper's AlexNet: c2 c3 c4 c5)."""
    n = checks.positive_int("depths", n, "a positive whole number of layers")
    convs = [l.name for l in probe.layers if l.kind == "conv"]
    n = min(n, len(convs))
    return [convs[math.ceil((i + 1) * len(convs) / n) - 1] for i in range(n)]


def model_names(names: Any, probes: Sequence[Any]) -> list[str]:
    """The two networks' names as a comparison shows them: ``names`` checked (two strs), or each model's class
    name where None. One name, three, or a non-str would leave a network unnamed or misnamed in the figure."""
    if names is None:
        return [type(p.model).__name__ for p in probes]
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or len(names) != len(probes) \
            or not all(isinstance(n, str) for n in names):
        raise CnnvizError(f"names must be two names, one per network (strs), got {short_repr(names)}.")
    return list(names)


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


LONG_TITLE = 200  # characters: a longer column title is cut in the middle rather than broken into lines
_SPLIT = re.compile(r"(?<=[.\-/])|(?=_)")  # after dots, dashes and slashes; before underscores


def title_lines(name: str, width: float, px: float = 13, bold: bool = True, lines: int = 3,
                smallest: float = 9) -> tuple[str, float]:
    """A column title that fits ``width`` px: ``name`` itself at ``px`` when it fits, else broken after its dots
    and before its underscores into at most ``lines`` lines (the font going down to ``smallest`` px), else
    shortened in the middle with "…" (both ends of a module path kept). Returns (text, px): two titles ``width``
    apart never run into each other; the figure keeps the full name for hovering (:meth:`Sheet.text` ``full=``)."""
    name = printable(name)
    if text_width(name, px, bold) <= width:
        return name, px
    if len(name) > LONG_TITLE:  # past any line break's help: straight to the cut (a wrap of 10,000 characters is slow)
        return middle_cut(name, lambda t: text_width(t, smallest, bold) <= width), smallest
    parts = [p for p in _SPLIT.split(name) if p]
    # fewer lines first, the font at most 2 px smaller; then down to ``smallest``
    for floor in (max(smallest, px - 2), smallest):
        for most in range(2, lines + 1) if len(parts) > 1 else (1,):
            p = px
            while p >= floor - 1e-9:
                out: list[str] = []
                for part in parts:
                    if out and text_width(out[-1] + part, p, bold) <= width:
                        out[-1] += part
                    else:
                        out.append(part)
                if len(out) <= most and all(text_width(t, p, bold) <= width for t in out):
                    return "\n".join(out), p
                p -= 0.5
    return middle_cut(name, lambda t: text_width(t, smallest, bold) <= width), smallest


@functools.lru_cache(maxsize=1)
def _figure_class() -> type:
    from matplotlib.figure import Figure

    class CnnvizFigure(Figure):
        """A matplotlib Figure that a notebook shows as a PNG without pyplot (``_repr_png_``)."""

        def _repr_png_(self) -> bytes:
            buf = io.BytesIO()
            self.savefig(buf, format="png")
            return buf.getvalue()

    return CnnvizFigure


@functools.lru_cache(maxsize=1)
def _measurer() -> Any:
    from matplotlib.textpath import TextToPath

    return TextToPath()


def text_width(text: str, px: float, bold: bool = False) -> float:
    """Width in pixels of one line of ``text`` set in matplotlib's default font at ``px`` pixels."""
    from matplotlib.font_manager import FontProperties

    prop = FontProperties(size=px * 72 / DPI, weight="bold" if bold else "normal")
    with warnings.catch_warnings():  # a glyph the font lacks is said when the figure is drawn, not per measurement
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        return max((_measurer().get_text_width_height_descent(line, prop, ismath=False)[0]
                    for line in printable(text).split("\n")),
                   default=0.0) * DPI / 72


def fitting_px(text: str, width: float, px: float, smallest: float = 7.0, bold: bool = False) -> float:
    """The font size (px) at which ``text`` fits ``width`` px: ``px`` when it fits, smaller down to ``smallest``
    (:meth:`Sheet.text` given ``width=`` then cuts what still does not fit, keeping the whole text for hovering)."""
    w = text_width(text, px, bold)
    return px if w <= width else max(smallest, px * width / w)


class Sheet:
    """A figure laid out in pixels from the top left: pictures at exact places, text, frames. Draw, then
    :meth:`figure` makes the matplotlib Figure, as large as what was drawn plus a margin."""

    def __init__(self, margin: int = 8) -> None:
        self.margin = margin
        self._ops: list[tuple] = []
        self.right = 0.0
        self.bottom = 0.0
        self._free_right = 0.0

    def _extend(self, x1: float, y1: float) -> None:
        self.right, self.bottom = max(self.right, x1), max(self.bottom, y1)

    def picture(self, picture: np.ndarray, x: float, y: float, size: int | tuple[int, int] | None = None) -> tuple[int, int]:
        """A uint8 HxWx3 (or HxWx4) picture with its top left at (x, y), resized to ``size`` (a side, or (w, h))
        when given; returns its (w, h)."""
        a = np.asarray(picture)
        if a.ndim == 2 or a.shape[2] == 1:  # a grey picture (a one-channel network's input): grey, not a colour map
            a = np.repeat(a.reshape(*a.shape[:2], 1), 3, axis=2)
        if size is not None:
            w, h = (size, size) if isinstance(size, (int, np.integer)) else size
            if a.shape[:2] != (h, w):
                a = np.asarray(Image.fromarray(a).resize((int(w), int(h)), Image.BILINEAR))
        h, w = a.shape[:2]
        self._ops.append(("picture", a, round(x), round(y)))
        self._extend(x + w, y + h)
        return w, h

    def text(self, text: str, x: float, y: float, px: float = 12, ha: str = "center", va: str = "top",
             color: str = TEXT_COLOR, bold: bool = False, rotation: float = 0, family: str | None = None,
             full: str | None = None, width: float | None = None) -> None:
        """``text`` (lines split at "\\n") anchored at (x, y) by ``ha`` (left, center, right) and ``va`` (top,
        center, bottom, baseline). ``full``: the whole text where ``text`` is wrapped or shortened; an SVG keeps it
        as the text's tooltip (``<title>``) and id, a PNG or PDF has the text as drawn.

        Every text is bounded, whatever a user's names and labels hold: at most MAX_LINES lines, each cut in the
        middle to ``width`` px when given (turned text: to FREE_WIDTH), else to the width of what else the sheet
        holds (at least FREE_WIDTH) when the figure is made; characters no SVG can hold are written as escapes."""
        original = printable(text)
        full = printable(full) if full is not None else None
        lines = original.split("\n")
        if len(lines) > MAX_LINES:
            lines = [*lines[: MAX_LINES - 1], "…"]
        if width is None and rotation:
            width = FREE_WIDTH
        if width is not None:
            lines = [middle_cut(line, lambda t: text_width(t, px, bold) <= width) for line in lines]
        text = "\n".join(lines)
        if text != original:
            full = full or original
        w = text_width(text, px, bold)
        h = px * 1.25 * (text.count("\n") + 1)
        if rotation:
            w, h = h, w
        x1 = x + {"left": w, "center": w / 2, "right": 0}[ha]
        y1 = y + {"top": h, "center": h / 2, "bottom": 0, "baseline": px * 0.3}[va]
        free = width is None
        self._ops.append(("text", text, x, y, px, ha, va, color, bold, rotation, family, full, free))
        if free:  # its right end counts when the figure is made, up to what the rest leaves it (_text_room)
            self._free_right = max(self._free_right, x1)
            self.bottom = max(self.bottom, y1)
        else:
            self._extend(x1, y1)

    def _content_right(self) -> float:
        """How far right the figure reaches: what was drawn, texts without a width of their own up to the wider of
        it and FREE_WIDTH (a 10,000-character name never makes a figure 100,000 px wide)."""
        return max(self.right, min(self._free_right, max(self.right, FREE_WIDTH)))

    def frame(self, x: float, y: float, w: float, h: float, color: str = MARK_COLOR, width: float = 2) -> None:
        """A rectangle's outline drawn around the box (x, y, w, h) (outside it, so the pixels inside are untouched)."""
        self._ops.append(("frame", x, y, w, h, color, width))
        self._extend(x + w + width, y + h + width)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels of the figure: what was drawn and a margin around it."""
        return int(np.ceil(self._content_right())) + 2 * self.margin, int(np.ceil(self.bottom)) + 2 * self.margin

    def figure(self) -> Any:
        """The matplotlib Figure of what was drawn, :attr:`size` pixels at DPI, on white."""
        from matplotlib.patches import Rectangle

        m = self.margin
        W, H = self.size
        fig = _figure_class()(figsize=(W / DPI, H / DPI), dpi=DPI, facecolor="white")
        fig.full_titles = {}  # SVG group id -> the whole text of a wrapped or shortened title (figure_bytes adds <title>)
        for op in self._ops:
            op = (op[0], *op[1:2], op[2] + m, op[3] + m, *op[4:]) if op[0] != "frame" else (op[0], op[1] + m, op[2] + m, *op[3:])
            if op[0] == "picture":
                _, a, x, y = op
                h, w = a.shape[:2]
                ax = fig.add_axes((x / W, 1 - (y + h) / H, w / W, h / H))
                ax.imshow(a, interpolation="nearest", resample=False, aspect="auto",
                          extent=(0, w, h, 0))
                ax.set_axis_off()
            elif op[0] == "text":
                _, text, x, y, px, ha, va, color, bold, rotation, family, full, free = op
                if free:
                    room = max(W - m - x if ha == "left" else W - 2 * m, 160)  # longer than the figure: cut
                    fits = lambda t, px=px, bold=bold, room=room: text_width(t, px, bold) <= room + 0.5  # noqa: E731
                    cut = "\n".join(middle_cut(line, fits) for line in text.split("\n"))
                    full, text = (full or text) if cut != text else full, cut
                t = fig.text(x / W, 1 - y / H, text, fontsize=px * 72 / DPI, ha=ha, va=va, color=color,
                             fontweight="bold" if bold else "normal", rotation=rotation, family=family or "sans-serif",
                             linespacing=1.15, parse_math=False)  # names and labels are text: "$" is a dollar
                if full is not None and full != text:
                    gid = f"cnnviz-title-{len(fig.full_titles)}"
                    t.set_gid(gid)
                    fig.full_titles[gid] = full
            else:
                _, x, y, w, h, color, width = op
                d = width / 2
                fig.add_artist(Rectangle(((x - d) / W, 1 - (y + h + d) / H), (w + width) / W, (h + width) / H,
                                         transform=fig.transFigure, fill=False, edgecolor=color, linewidth=width * 72 / DPI))
        return fig


# ------------------------------------------------------------------ composing from pictures (what widgets call)

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
                    for row in captions]
    caption_h = max((t.count("\n") + 1 for row in captions or [] for t in row if t), default=1) * 13 + 5
    for r, row in enumerate(rows):
        for c, picture in enumerate(row):
            x = left + c * (size + gap)
            sheet.picture(picture, x, y, size)
            if frame_column == c:
                sheet.frame(x, y, size, size)
            text = captions[r][c] if has_captions and c < len(captions[r]) else ""
            if text:
                sheet.text(text, x + size / 2, y + size + 3, px=fitting_px(text, size, caption_px, 7), color=SOFT_COLOR,
                           width=size)
        if row_labels is not None:
            label = str(row_labels[r])
            sheet.text(label, 0, y + size / 2, px=fitting_px(label, size, 12, 6), ha="left", va="center", rotation=90,
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
    (the receptive field: smaller, down to 6 px). ``height``: the room to take (at least :func:`titles_height`).
    Returns the y below them, the same for every column."""
    fitted = [title_lines(name, width) for name, _ in labels]
    name_h = (height - 20) if height is not None else _name_height(labels, width)
    for (name, second), (text, p), cx in zip(labels, fitted, centres):
        sheet.text(text, cx, y, px=p, bold=True, full=name, width=width)
        sheet.text(second, cx, y + name_h + 1, px=fitting_px(second, width, 11, 6), color=SOFT_COLOR, full=second,
                   width=width)
    return y + name_h + 20


def predictions_text(predictions: Sequence[Sequence[Any]], k: int = 5) -> str:
    """Top-k predictions as lines "1. espresso  52.0%" (each item starts with (label, probability)), as the
    widgets write them (random weights give 0.1%: two decimals of a fraction would read 0.00)."""
    return "\n".join(f"{i + 1}. {p[0]}  {100 * float(p[1]):.1f}%" for i, p in enumerate(list(predictions)[:k])) or "no class scores"


def wrapped(text: str, width: float, px: float) -> str:
    """``text`` broken at spaces into lines that fit ``width`` px at ``px`` (a word longer than that keeps its
    line): a caption stays readable instead of shrinking to a few pixels."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and text_width(f"{lines[-1]} {word}", px) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return "\n".join(lines)


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
        sheet.text(str(name), x0 - gap, ry + head + size / 2, px=fitting_px(str(name), size, 12, 6), ha="right",
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
        sheet.text(f"#{c}", x + w / 2, ty, px=fitting_px(f"#{c}", w, 11, 6), color=SOFT_COLOR, width=w)
        sheet.picture(tile, x, ty + 16)
    return sheet


LEGEND_CHARS = 60  # a series label in Figure 6's legend (a fixed 800 px figure) is cut in the middle beyond this


def sparsity_figure(series: dict[str, Any], title: str = "Sparsity per layer (fraction of zero activations)") -> Any:
    """Figure 6 from ready sparsity: ``series`` label -> {layer name: fraction of zeros} (a cv.Sparsity gives conv
    layers circles and pools squares by its ``kinds``). x is relative depth, the first network's (thinned) layer
    names below the plot, the second's above it, each in its series' colour."""
    fig = _figure_class()(figsize=(8.0, 4.6), dpi=DPI, facecolor="white")
    has_top = len(series) > 1
    ax = fig.add_axes((0.08, 0.2, 0.9, 0.62 if has_top else 0.7))
    for i, (label, values) in enumerate(series.items()):
        label = middle_cut(printable(label), lambda t: len(t) <= LEGEND_CHARS)  # the figure has a fixed size
        names = list(values)
        at = dict(zip(names, depths(names)))
        kinds = getattr(values, "kinds", {}) or {}
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        shown = [n for n in names if values[n] == values[n]]  # a layer with no units (NaN) keeps its place, no point
        ax.plot([at[n] for n in shown], [float(values[n]) for n in shown], color=color, label=str(label), lw=1.5)
        for kind, marker in (("conv", "o"), ("pool", "s"), ("fc", "D")):
            pts = [n for n in shown if kinds.get(n, "conv") == kind]
            if pts:
                ax.plot([at[n] for n in pts], [float(values[n]) for n in pts], ls="none", marker=marker, color=color,
                        markersize=5)
        if i < 2:
            ticks = thinned(names, PLOT_WIDTH)
            axis = ax if i == 0 else ax.secondary_xaxis("top")
            axis.set_xticks([at[n] for n in ticks], [middle_cut(printable(t), lambda t: len(t) <= 24) for t in ticks],
                            color=color, fontsize=8, parse_math=False)
            axis.set_xlabel(f"{label}: its layers, first to last (relative depth)", color=color, fontsize=9)
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(0, 1)
    ax.set_ylabel("sparsity")
    ax.legend(loc="upper left", fontsize=9, frameon=False)
    ax.spines[["right"] + ([] if has_top else ["top"])].set_visible(False)
    fig.text(0.01, 0.98, middle_cut(printable(title), lambda t: len(t) <= 110), ha="left", va="top", fontsize=11,
             fontweight="bold", color=TEXT_COLOR, parse_math=False)
    fig.text(0.01, 0.02, "● convolution   ■ max-pool", ha="left", va="bottom", fontsize=8, color=SOFT_COLOR)
    return fig


def filter_tile(top: Any, c: int, per_row: int, cell: int) -> np.ndarray:
    """One filter's top patches as an RGBA sprite, ``per_row`` a row at ``cell`` px (empty places clear): the
    FilterGrid's tiles and Figure 7's."""
    return sprite([top.patch(c, i) if int(top.image_index[c, i]) >= 0 else None for i in range(top.k)], per_row, cell,
                  pad=1)


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
    from .display import MODES, pictures

    if display not in MODES:
        raise CnnvizError(f"display must be one of {', '.join(repr(m) for m in MODES)}, got {short_repr(display)}.")
    return pictures(recs, display)[0]


def paper_layers(probe: Any) -> list[str]:
    """Figure 4's columns: every second conv layer (VGG16: c1_2 c2_2 c3_2 c4_1 c4_3 c5_2) and the output layer."""
    convs = [l.name for l in probe.layers if l.kind == "conv"]
    chosen = convs[1::2] or convs
    out = probe.output_layer
    return chosen + ([out.name] if out is not None and out.name not in chosen else [])


def _probe(value: Any, name: str) -> Any:
    from .probe import Probe

    if isinstance(value, Probe):
        return value
    if hasattr(value, "state_dict") and hasattr(value, "parameters"):
        return Probe(value)
    raise CnnvizError(f"{name} must be a cv.Probe (or a torch.nn.Module to wrap in one), got {short_repr(value)}.")


def _strip(probe: Any, x: Any, names: Sequence[str], rule: str) -> tuple[dict[str, Any], str]:
    """Every named layer's reconstruction of x (the output layer seeded with the top-1 class, as the explorer and
    the paper's last column do) and that class's label ("" where the network has no class scores)."""
    from .errors import UnsupportedModelError

    out = probe.output_layer
    plain = [n for n in names if out is None or n != out.name]
    recs = dict(probe.reconstruct(x, layers=plain, rule=rule)) if plain else {}
    label = ""
    if out is not None and out.name in names:
        try:
            (c, label, _), *_ = probe.classify(x, k=1)[0]
            recs[out.name] = probe.reconstruct(x, layers=out.name, channel=c, rule=rule)[out.name]
        except UnsupportedModelError:
            recs[out.name] = probe.reconstruct(x, layers=out.name, rule=rule)[out.name]
    return recs, label


def figure_layers(probe: Any, images: Any, layers: Any = None, rule: str = "auto", size: int = 112,
                  display: str = "auto", title: str = "") -> Any:
    """Figure 4: what each layer keeps. One row per image (the input, then each layer's reconstruction by
    ``rule``), one column per layer, labelled with the layer's name and receptive field; the output layer shows
    its top-1 class (named under the picture). ``layers`` None: every second conv layer and the output layer.
    Returns a matplotlib Figure (shown in a notebook as it is; :func:`save_figure` writes it)."""
    from .imageset import load_images
    from .probe.rules import rule_name, rule_words

    probe = _probe(probe, "probe")
    rule = rule_name(rule)
    size = checks.positive_int("size", size, "a positive whole number of pixels")
    title = checks.text("title", title)
    chosen = probe.select(paper_layers(probe) if layers is None else layers)
    names = [l.name for l in chosen]
    images = load_images(images)
    rows, captions = [], []
    for i in range(len(images)):
        x = probe.model_input(images.raw(i), images.names[i])
        recs, label = _strip(probe, x, names, rule)
        rows.append([probe.to_image(x)[0], *displayed([recs[n][0] for n in names], display)])
        out = probe.output_layer
        captions.append([""] + [label if out is not None and n == out.name else "" for n in names])
    labels = [("input", f"{probe.input_size} px")] + [(n, field_label(probe.receptive_field(n), probe.input_size))
                                                      for n in names]
    return layers_sheet(rows, labels, row_labels=list(images.names), captions=captions, size=size,
                        title=title or f"What each layer keeps ({rule_words(rule, chosen, probe)})").figure()


def models_rule_words(rule: str, model_names: Sequence[str], probes: Sequence[Any], columns: Sequence[Sequence[str]]) -> str:
    """The rule that drew two networks' columns, in words: "deconvnet", "auto: deconvnet" (alike for both), or
    "VGG16: auto: deconvnet; EfficientNet: auto: guided"."""
    from .probe.rules import rule_words

    words = [rule_words(rule, p.select(cols), p) for p, cols in zip(probes, columns)]
    return words[0] if len(set(words)) == 1 else "; ".join(f"{m}: {w}" for m, w in zip(model_names, words))


def figure_compare(probe_a: Any, probe_b: Any, images: Any, layers: Any = None, depths: int = 5,
                   names: Sequence[str] | None = None, rule: str = "auto", size: int = 112,
                   display: str = "auto") -> Any:
    """Figure 5: two networks on the same images. Per image, the input, then per network a row of
    reconstructions at matching depths (each labelled with its layer and receptive field) and its top-5
    predictions as text. ``layers``: a pair of lists of layer names, or None for ``depths`` conv layers spread
    over each network (ending with its last conv layer, as CompareModels)."""
    from .errors import UnsupportedModelError
    from .imageset import load_images
    from .probe.rules import rule_name

    probes = [_probe(probe_a, "probe_a"), _probe(probe_b, "probe_b")]
    rule = rule_name(rule)
    size = checks.positive_int("size", size, "a positive whole number of pixels")
    depths = checks.positive_int("depths", depths, "a positive whole number of layers")
    if layers is None:
        columns = [matching_layers(p, depths) for p in probes]
    elif isinstance(layers, (list, tuple)) and len(layers) == 2 and not isinstance(layers[0], str):
        columns = [[l.name for l in p.select(ls)] for p, ls in zip(probes, layers)]
    else:
        raise CnnvizError(f"layers must be a pair of lists of layer names (one per network) or None, got "
                          f"{short_repr(layers)}.")
    shown_names = model_names(names, probes)
    images = load_images(images)
    sheet = Sheet()
    for i in range(len(images)):
        picture, name = images.raw(i), images.names[i]
        rows, preds, first = [], [], None
        for p, cols in zip(probes, columns):
            x = p.model_input(picture, name)
            recs = p.reconstruct(x, layers=cols, rule=rule)
            rows.append(displayed([recs[c][0] for c in cols], display))
            try:
                preds.append(p.predict(x, k=5)[0])
            except UnsupportedModelError:
                preds.append([])
            first = p.to_image(x)[0] if first is None else first
        labels = [[(c, field_label(p.receptive_field(c), p.input_size)) for c in cols] for p, cols in zip(probes, columns)]
        words = models_rule_words(rule, shown_names, probes, columns)
        compare_sheet(first, shown_names, labels, rows, preds, size=size, title=f"{name} ({words})", sheet=sheet,
                      y0=sheet.bottom + (24 if i else 0))
    return sheet.figure()


def sparsity_series(series: Any, images: Any = None) -> dict[str, Mapping[str, float]]:
    """``series`` as Figure 6 and the SparsityChart draw it: label (a str) -> {layer: fraction of zeros}. Each value
    a cv.Sparsity or any such dict, a cv.Probe (measured here over ``images``) or (probe, images); one network's
    bare {layer: fraction} dict, a probe alone, or anything else is refused with what to pass instead."""
    from .kernels.mine import sparsity
    from .probe import Probe

    if isinstance(series, Probe):
        raise CnnvizError("series is a probe: give it a label, {'my network': probe}, and images= to measure over "
                          "(or pass {'my network': cv.sparsity(probe, images)}).")
    if not isinstance(series, Mapping) or not series:
        raise CnnvizError(f"series must be a dict label -> sparsity (or probe), at least one, got {short_repr(series)}.")
    if all(isinstance(v, (int, float, np.floating)) and not isinstance(v, bool) for v in series.values()):
        raise CnnvizError(f"series looks like one network's {{layer: fraction}} ({short_repr(series)}): give it a label, "
                          f"{{'my network': series}}.")
    ready: dict[str, Mapping[str, float]] = {}
    for label, value in series.items():
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], Probe):
            value = sparsity(value[0], value[1], progress=False)
        elif isinstance(value, Probe):
            if images is None:
                raise CnnvizError(f"series[{label!r}] is a probe: give images= to measure its sparsity over "
                                  f"(or pass cv.sparsity(probe, images)).")
            value = sparsity(value, images, progress=False)
        if not isinstance(value, Mapping) or not value or not all(
                isinstance(k, str) and isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
                for k, v in value.items()):
            raise CnnvizError(f"series[{label!r}] must be a cv.Sparsity, a dict layer -> fraction of zeros, a probe "
                              f"or (probe, images), got {short_repr(value)}.")
        if str(label) in ready:
            raise CnnvizError(f"series has two labels that read {str(label)!r}: give each network its own label.")
        ready[str(label)] = value
    return ready


def figure_sparsity(series: Mapping[str, Any], images: Any = None,
                    title: str = "Sparsity per layer (fraction of zero activations)") -> Any:
    """Figure 6: each network's fraction of zero activations per layer against relative depth (0 its first
    layer, 1 its last), conv layers as circles and pools as squares. ``series``: label -> a cv.Sparsity (or any
    {layer: fraction} dict), a cv.Probe (measured here over ``images``), or (probe, images)."""
    title = checks.text("title", title)
    return sparsity_figure(sparsity_series(series, images), title)


def figure_filters(top: Any, filters: int | Sequence[int] = 16, per_row: int | None = None, cell: int = 32,
                   columns: int = 8) -> Any:
    """Figure 7: filters by their top patches. ``top``: a TopPatches (cv.top_patches) or several (a list, or a
    dict such as ``cv.mine(...).top``), one band per layer, labelled with its name and receptive field; each
    filter is a tile of its k patches (``per_row`` a row, ``cell`` px each), numbered. ``filters``: how many of
    each layer's filters, strongest first, or which ones."""
    from .kernels.topk import TopPatches

    tops = list(top.values()) if isinstance(top, Mapping) else [top] if isinstance(top, TopPatches) else top
    if not isinstance(tops, (list, tuple)) or not tops or not all(isinstance(t, TopPatches) for t in tops):
        raise CnnvizError(f"top must be a TopPatches (from cv.top_patches) or a list or dict of them, got "
                          f"{short_repr(top)}.")
    cell = checks.positive_int("cell", cell, "a positive whole number of pixels")
    columns = checks.positive_int("columns", columns, "a positive whole number of tiles a row")
    sheet = Sheet()
    for n, t in enumerate(tops):
        order = [int(c) for c in np.argsort(-t.values[:, 0].numpy(), kind="stable")]
        if checks.whole(filters):
            chosen = order[: checks.positive_int("filters", filters, "a positive number of filters, or a list of them")]
        else:
            chosen = [checks.index("filter", c, t.channels, f"layer {t.layer!r} has {t.channels} filters")
                      for c in (filters if isinstance(filters, (list, tuple, range)) else [filters])]
            if not chosen:
                raise CnnvizError("filters is empty: name at least one filter, or give how many (the strongest).")
        across = per_row if per_row is not None else math.ceil(math.sqrt(t.k))
        across = checks.positive_int("per_row", across, "a positive whole number of patches a row")
        tiles = [(c, filter_tile(t, c, across, cell)) for c in chosen]
        filters_sheet(t.layer, t.receptive_field(), tiles, columns=columns, sheet=sheet, field=tile_field(t),
                      y0=sheet.bottom + (16 if n else 0), title=f"{t.k} top patch{'' if t.k == 1 else 'es'} a filter")
    return sheet.figure()


def on_white(picture: np.ndarray) -> np.ndarray:
    """An RGBA sheet (clear gutters, as :func:`sprite` makes them) as RGB over white, for a figure on white."""
    if picture.ndim != 3 or picture.shape[2] != 4:
        return picture
    alpha = picture[..., 3:4].astype(np.float32) / 255
    return (picture[..., :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)


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
        ax.set_title(str(name), fontsize=10)
        ax.set_xlabel("step", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.2, top=0.78, wspace=0.35)
    return fig


def figure_timeline(checkpoints: Any, image: Any, layers: Any = None, steps: Sequence[int] | None = None,
                    rule: str = "auto", size: int = 96, display: str = "auto", title: str = "") -> Any:
    """How a network learns: one row per checkpoint (``steps``, default up to six spread over the training), each
    the input with that step's metrics under it, the first layer's filters, then each layer's reconstruction of
    ``image`` by ``rule`` (``layers`` None: every second conv layer and the output layer, seeded with that step's
    top-1 class, named under it). ``checkpoints``: a cv.Checkpoints. Returns a matplotlib Figure."""
    from .imageset import load_images
    from .kernels.checkpoints import Checkpoints
    from .kernels.filters import filter_pictures, first_conv
    from .probe.rules import rule_name, rule_words

    if not isinstance(checkpoints, Checkpoints):
        raise CnnvizError(f"checkpoints must be a cv.Checkpoints, got {short_repr(checkpoints)}.")
    title = checks.text("title", title)
    rule = rule_name(rule)
    size = checks.positive_int("size", size, "a positive whole number of pixels")
    probe = checkpoints.probe
    chosen = probe.select(paper_layers(probe) if layers is None else layers)
    names = [l.name for l in chosen]
    images = load_images(image)
    if len(images) != 1:
        raise CnnvizError(f"image must be one picture (a timeline follows one picture over the steps), got {len(images)}.")
    x = checkpoints.model_input(images.raw(0), images.names[0])
    shown = timeline_steps(len(checkpoints)) if steps is None else [checkpoints.index(s) for s in steps]
    out = probe.output_layer
    rows, captions, labels_left = [], [], []
    for i in shown:
        p = checkpoints.load(i)
        recs, label = _strip(p, x, names, rule)
        filters = filter_sheet(filter_pictures(p))
        rows.append([p.to_image(x)[0], on_white(filters),
                     *displayed([recs[n][0] for n in names], display)])
        captions.append([metrics_caption(checkpoints.metrics, i), ""] +
                        [label if out is not None and n == out.name else "" for n in names])
        labels_left.append(f"step {checkpoints.steps[i]}")
    labels = [("input", f"{probe.input_size} px"), ("filters", first_conv(probe))] + [
        (n, field_label(probe.receptive_field(n), probe.input_size)) for n in names]
    heading = title or f"How {type(probe.model).__name__} learns: {images.names[0]} ({rule_words(rule, chosen, probe)})"
    return layers_sheet(rows, labels, row_labels=labels_left, captions=captions, size=size, title=heading).figure()


# ------------------------------------------------------------------ saving

def figure_path(path: Any, text: bool = True) -> Path:
    """``path`` checked as a place to save a figure: a str or os.PathLike ending in .png, .svg or .pdf (.png
    only for a picture without text), not a folder."""
    allowed = FORMATS if text else (".png",)
    ends = ", ".join(allowed[:-1]) + f" or {allowed[-1]}" if len(allowed) > 1 else allowed[0]
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        raise CnnvizError(f"path must be a file name (a str or pathlib.Path) ending in {ends}, got {short_repr(path)}.")
    if "\x00" in os.fspath(path):
        raise CnnvizError(f"path {short_repr(os.fspath(path))} holds a NUL character, which no file name can: give "
                          f"a file name ending in {ends}.")
    try:
        os.fsencode(path)
    except UnicodeError as exc:  # a lone surrogate: no file system encoding can write it
        raise CnnvizError(f"path {short_repr(os.fspath(path))} holds a character no file name can ({exc.reason}): "
                          f"give a file name ending in {ends}.") from exc
    p = Path(path).expanduser()
    if p.suffix.lower() not in allowed:
        why = "" if text else " (a picture without text; compose a figure with text to save SVG or PDF)"
        raise CnnvizError(f"path must end in {ends}{why}, got {short_repr(os.fspath(path))}.")
    try:
        folder = p.is_dir()
    except OSError as exc:  # a name too long for the file system, and the like: said before anything is drawn
        raise CnnvizError(f"path {short_repr(os.fspath(path))} cannot be a file name here: {exc.strerror or exc}. "
                          f"Choose another path.") from exc
    if folder:
        raise CnnvizError(f"path {short_repr(os.fspath(path))} is a folder: give a file name ending in {ends}.")
    return p


def figure_bytes(figure: Any, fmt: str) -> bytes:
    """A matplotlib Figure drawn as ``fmt`` ("png", "svg" or "pdf"), the same bytes every time (no date, a fixed
    SVG id salt), text kept as text in SVG and PDF: what save_figure writes and the marimo chart inlines."""
    from matplotlib import rc_context

    buf = io.BytesIO()
    metadata = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]
    with rc_context({"svg.fonttype": "none", "pdf.fonttype": 42, "svg.hashsalt": "cnnviz"}):
        figure.savefig(buf, format=fmt, dpi=figure.dpi, facecolor=figure.get_facecolor(), metadata=metadata)
    data = buf.getvalue()
    titles = getattr(figure, "full_titles", None)
    if fmt == "svg" and titles:
        from xml.sax.saxutils import escape

        text = data.decode("utf-8")
        for gid, full in titles.items():  # a wrapped or shortened title: its whole text as the group's tooltip
            text = text.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{escape(full)}</title>', 1)
        data = text.encode("utf-8")
    return data


def save_figure(figure: Any, path: Any) -> Path:
    """Write ``figure`` (a matplotlib Figure, such as cv.figure_layers gives, or a PIL picture such as
    cv.picture_grid gives) to ``path``; the suffix picks the format: .png, .svg or .pdf (a PIL picture: .png).

    SVG and PDF keep their text as text (searchable, selectable). The figure is drawn in memory first and the file
    replaced in one step, so a failure leaves no half-written file; missing folders are created. Returns the path.
    """
    if isinstance(figure, Image.Image):
        p = figure_path(path, text=False)
        buf = io.BytesIO()
        figure.save(buf, format="PNG")
    else:
        from matplotlib.figure import Figure

        if not isinstance(figure, Figure):
            raise CnnvizError(f"figure must be a matplotlib Figure (cv.figure_layers and the widgets' to_figure() make "
                              f"one) or a PIL picture, got {short_repr(figure)}.")
        p = figure_path(path)
        buf = io.BytesIO(figure_bytes(figure, p.suffix.lower()[1:]))
    part: str | None = None
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        # created exclusively under a name nobody can guess (mkstemp: O_CREAT | O_EXCL, mode 0600), never through a
        # link planted in a shared folder; then given the mode a plain new file gets, and moved over p in one step
        fd, part = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
            os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(part, p)
        part = None
    except OSError as exc:  # a folder that is a file, no permission, a full or read-only disk: said, not a traceback
        raise CnnvizError(f"Could not write the figure to {str(p)!r}: {exc.strerror or exc}. Choose another path.") from exc
    finally:
        if part is not None:
            with contextlib.suppress(OSError):
                os.unlink(part)
    return p


def _umask() -> int:
    """The process's umask, what a plain open() applies to a new file's 0666: from /proc (Linux), else read by
    setting it and putting it back (which another thread could see for an instant)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------ class evidence maps

def figure_class_maps(probe: Any, images: Any, classes: Any = None, layer: str | None = None,
                      method: str = "gradcam", opacity: float = 0.5, size: int = 112, title: str = "") -> Any:
    """Where the network finds each class: one row per image (the input, then one class map per column laid over
    it, see :func:`cnnviz_widgets.display.overlay`). ``classes``: class indices or labels, one column each, the same
    for every image; None: each image's own top 3 (named under each picture with its probability). ``method`` and
    ``layer`` as :meth:`Probe.class_map` takes them. Returns a matplotlib Figure (:func:`save_figure` writes it)."""
    from .display import overlay
    from .imageset import load_images
    from .probe.class_map import check_method, class_targets, spatial_layer

    probe = _probe(probe, "probe")
    title = checks.text("title", title)
    method = check_method(method)
    if method == "guided-gradcam":
        raise CnnvizError("figure_class_maps lays maps over the picture: use method='gradcam' or 'gradcam++' "
                          "(a guided Grad-CAM is a reconstruction: draw it with probe.class_map and cv.to_display).")
    size = checks.positive_int("size", size, "a positive whole number of pixels")
    at = spatial_layer(probe, layer)
    named = None if classes is None else [classes] if isinstance(classes, (str, int)) or checks.whole(classes) else list(classes)
    columns = class_targets(probe, named, len(named)) if named is not None else None
    images = load_images(images)
    rows, captions = [], []
    for i in range(len(images)):
        x = probe.model_input(images.raw(i), images.names[i])
        top = probe.classify(x, k=3)[0]
        picks = columns if columns is not None else [c for c, _, _ in top]
        maps = probe.class_map(x.expand(len(picks), -1, -1, -1), layer=at, target=picks, method=method)
        picture = probe.to_image(x)[0]
        rows.append([picture] + [overlay(picture, m[0].cpu().numpy(), opacity) for m in maps])
        captions.append([""] + (["" for _ in picks] if columns is not None else [f"{label} {p:.0%}" for _, label, p in top]))
    labels = [("input", f"{probe.input_size} px")]
    if columns is not None:
        from .probe.labels import shown_labels

        names = shown_labels(probe.labels) if probe.labels else None
        labels += [(names[c] if names else f"class {c}", f"class {c}") for c in columns]
    else:
        labels += [(f"top-{k}", "") for k in range(1, len(rows[0]))]
    return layers_sheet(rows, labels, row_labels=list(images.names), captions=captions, size=size,
                        title=title or f"Where each class is found ({method} at {at.name})").figure()
