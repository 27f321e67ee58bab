"""Pictures laid out for reading: sprite sheets (the widgets' galleries) and labelled picture grids for notebooks
(the paper's Figure 4 layout: pictures in rows, named columns).

One picture with its labels drawn in, on a clear background and in a mid grey, so it reads in a light and a
dark notebook theme alike and can be saved as it is shown.
"""
from __future__ import annotations

from collections.abc import Sequence

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


def _fit(text: str, font: ImageFont.ImageFont, width: int) -> str:
    """``text`` shortened in the middle until it fits ``width`` px (module paths keep both ends); "…" alone
    where not even one character each side fits."""
    if font.getlength(text) <= width:
        return text
    for keep in range(len(text) - 1, 1, -1):
        short = text[: keep // 2] + "…" + text[len(text) - (keep - keep // 2) :]
        if font.getlength(short) <= width:
            return short
    return "…"


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
    left = (min(160, int(max(font.getlength(str(t)) for t in row_labels)) + 8) if row_labels is not None else 0)
    out = Image.new("RGBA", (left + columns * (size + gap) - gap, top + len(rows) * (size + gap) - gap), (0, 0, 0, 0))
    draw = ImageDraw.Draw(out)
    tiles = [np.asarray(_as_picture(p, f"the picture at row {r}, column {c}")) if c < len(row) else None
             for r, row in enumerate(rows) for c, p in enumerate([*row, *[None] * (columns - len(row))])]
    out.paste(Image.fromarray(sprite(tiles, columns, size, pad=gap)), (left, top))
    for r in range(len(rows) if row_labels is not None else 0):
        draw.text((0, top + r * (size + gap) + size // 2), _fit(str(row_labels[r]), font, left - 8), fill=LABEL_COLOR,
                  font=font, anchor="lm")
    for c, text in enumerate(column_labels or []):
        draw.text((left + c * (size + gap) + size // 2, top // 2), _fit(str(text), font, size), fill=LABEL_COLOR,
                  font=font, anchor="mm")
    return out
