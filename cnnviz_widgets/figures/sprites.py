"""Pictures laid out without matplotlib: sprite sheets for the widgets, picture_grid for a notebook, filter tiles."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .. import checks
from ..errors import CnnvizError, plural, short_repr
from .style import GRID_PIXELS, LABEL_COLOR
from .text import middle_cut, printable


def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
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


def _fit(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> str:
    """``text`` shortened in the middle until it fits ``width`` px (module paths keep both ends); "…" alone
    where not even one character each side fits."""
    return middle_cut(printable(text), lambda t: font.getlength(t) <= width)


def sprite(tiles: Sequence[np.ndarray | None], columns: int, cell: int, pad: int = 2) -> np.ndarray:
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
            t = np.asarray(Image.fromarray(t).resize((cell, cell), Image.Resampling.BILINEAR))
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
        assert row_labels is not None  # the range is empty without them
        draw.text((0, top + r * (size + gap) + size // 2), _fit(row_labels[r], font, left - 8), fill=LABEL_COLOR,
                  font=font, anchor="lm")
    for c, text in enumerate(column_labels or []):
        draw.text((left + c * (size + gap) + size // 2, top // 2), _fit(text, font, size), fill=LABEL_COLOR,
                  font=font, anchor="mm")
    return out


def filter_tile(top: Any, c: int, per_row: int, cell: int) -> np.ndarray:
    """One filter's top patches as an RGBA sprite, ``per_row`` a row at ``cell`` px (empty places clear): the
    FilterGrid's tiles and Figure 7's."""
    return sprite([top.patch(c, i) if int(top.image_index[c, i]) >= 0 else None for i in range(top.k)], per_row, cell,
                  pad=1)


def on_white(picture: np.ndarray) -> np.ndarray:
    """An RGBA sheet (clear gutters, as :func:`sprite` makes them) as RGB over white, for a figure on white."""
    if picture.ndim != 3 or picture.shape[2] != 4:
        return picture
    alpha = picture[..., 3:4].astype(np.float32) / 255
    return (picture[..., :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)
