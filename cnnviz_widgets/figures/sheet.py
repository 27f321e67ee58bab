"""Sheet: a figure laid out in pixels (pictures at exact places, bounded text, frames), made into a matplotlib Figure."""
from __future__ import annotations

import functools
import io
from typing import Any

import numpy as np
from PIL import Image

from .style import DPI, FREE_WIDTH, MARK_COLOR, MAX_LINES, TEXT_COLOR
from .text import middle_cut, printable, text_width, wrapped

STAMP_PX = 13  # the stamp's font (bold, in MARK_COLOR): "random weights: ..." over the whole figure


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


class Sheet:
    """A figure laid out in pixels from the top left: pictures at exact places, text, frames. Draw, then
    :meth:`figure` makes the matplotlib Figure, as large as what was drawn plus a margin."""

    def __init__(self, margin: int = 8) -> None:
        self.margin = margin
        self._ops: list[tuple] = []
        self.right = 0.0
        self.bottom = 0.0
        self._free_right = 0.0
        self._stamp = ""

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
                a = np.asarray(Image.fromarray(a).resize((int(w), int(h)), Image.Resampling.BILINEAR))
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
        if free:  # its right end counts when the figure is made, up to what the rest leaves it (_content_right)
            self._free_right = max(self._free_right, x1)
            self.bottom = max(self.bottom, y1)
        else:
            self._extend(x1, y1)

    def stamp(self, text: str) -> None:
        """A warning over the whole figure, above everything drawn (bold, in the mark colour, wrapped at words to the
        figure's width): e.g. that the network's weights are random. "" leaves the figure as it is."""
        self._stamp = printable(text)

    def _stamp_lines(self) -> str:
        if not self._stamp:
            return ""
        lines = wrapped(self._stamp, max(self._content_right(), 360.0), STAMP_PX, bold=True).split("\n")
        return "\n".join(lines[:MAX_LINES])

    def _stamp_height(self) -> float:
        text = self._stamp_lines()
        return (text.count("\n") + 1) * STAMP_PX * 1.25 + 8 if text else 0.0

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
        right = max(self._content_right(), 360.0 if self._stamp else 0.0)
        return int(np.ceil(right)) + 2 * self.margin, int(np.ceil(self.bottom + self._stamp_height())) + 2 * self.margin

    def figure(self) -> Any:
        """The matplotlib Figure of what was drawn, :attr:`size` pixels at DPI, on white."""
        from matplotlib.patches import Rectangle

        m = self.margin
        W, H = self.size
        fig = _figure_class()(figsize=(W / DPI, H / DPI), dpi=DPI, facecolor="white")
        fig.full_titles = {}  # SVG group id -> the whole text of a wrapped or shortened title (figure_bytes adds <title>)
        top = m + self._stamp_height()  # everything drawn sits under the stamp
        if self._stamp:
            fig.text(m / W, 1 - m / H, self._stamp_lines(), fontsize=STAMP_PX * 72 / DPI, ha="left", va="top",
                     color=MARK_COLOR, fontweight="bold", family="sans-serif", linespacing=1.15, parse_math=False)
        for op in self._ops:
            op = (op[0], *op[1:2], op[2] + m, op[3] + top, *op[4:]) if op[0] != "frame" else (op[0], op[1] + m, op[2] + top, *op[3:])
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
