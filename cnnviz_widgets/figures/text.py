"""Text in figures: what a figure can hold (printable), how wide it is, and how it is fitted (cut, wrapped, shrunk)."""
from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Sequence
from typing import Any

from .style import DPI, LONG_TITLE

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


def predictions_text(predictions: Sequence[Sequence[Any]], k: int = 5) -> str:
    """Top-k predictions as lines "1. espresso  52.0%" (each item starts with (label, probability)), as the
    widgets write them (random weights give 0.1%: two decimals of a fraction would read 0.00)."""
    return "\n".join(f"{i + 1}. {p[0]}  {100 * float(p[1]):.1f}%" for i, p in enumerate(list(predictions)[:k])) or "no class scores"


def wrapped(text: str, width: float, px: float, bold: bool = False) -> str:
    """``text`` broken at spaces into lines that fit ``width`` px at ``px`` (a word longer than that keeps its
    line): a caption stays readable instead of shrinking to a few pixels."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and text_width(f"{lines[-1]} {word}", px, bold) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return "\n".join(lines)
