"""Saving a figure: the path checked, the bytes drawn in memory (the same every time), the file replaced in one step."""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from .. import checks
from ..errors import CnnvizError, short_repr
from .style import FORMATS

MAX_SCALE = 8  # a figure of the paper at 8x is about 100 megapixels: more is a typo, not a print


def figure_scale(scale: Any) -> float:
    """``scale`` checked: output pixels per pixel of the figure as shown, a number from 0.25 to 8."""
    value = checks.number("scale", scale, f"a number from 0.25 to {MAX_SCALE} (pixels of the file per pixel shown)")
    if not 0.25 <= value <= MAX_SCALE:
        raise CnnvizError(f"scale must be from 0.25 to {MAX_SCALE} (pixels of the file per pixel shown; 2 or 3 for "
                          f"print), got {short_repr(scale)}.")
    return value


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
    except UnicodeEncodeError as exc:  # a lone surrogate: no file system encoding can write it
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


def figure_bytes(figure: Any, fmt: str, scale: float = 1.0) -> bytes:
    """A matplotlib Figure drawn as ``fmt`` ("png", "svg" or "pdf"), the same bytes every time (no date, a fixed
    SVG id salt), text kept as text in SVG and PDF: what save_figure writes and the marimo chart inlines. ``scale``
    multiplies the resolution: a PNG's pixels, the pixels of the pictures inside an SVG or PDF."""
    from matplotlib import rc_context

    buf = io.BytesIO()
    metadata = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]
    with rc_context({"svg.fonttype": "none", "pdf.fonttype": 42, "svg.hashsalt": "cnnviz"}):
        figure.savefig(buf, format=fmt, dpi=figure.dpi * scale, facecolor=figure.get_facecolor(), metadata=metadata)
    data = buf.getvalue()
    titles = getattr(figure, "full_titles", None)
    if fmt == "svg" and titles:
        from xml.sax.saxutils import escape

        text = data.decode("utf-8")
        for gid, full in titles.items():  # a wrapped or shortened title: its whole text as the group's tooltip
            text = text.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{escape(full)}</title>', 1)
        data = text.encode("utf-8")
    return data


def save_figure(figure: Any, path: Any, scale: float = 1) -> Path:
    """Write ``figure`` (a matplotlib Figure, such as cv.figure_layers gives, or a PIL picture such as
    cv.picture_grid gives) to ``path``; the suffix picks the format: .png, .svg or .pdf (a PIL picture: .png).

    SVG and PDF keep their text as text (searchable, selectable). ``scale`` (0.25 to 8) draws a figure at that many
    pixels per pixel shown: ``scale=3`` for a paper's PNG, each picture's pixel a 3x3 block and the text drawn
    sharp at the larger size (SVG and PDF: the same page size, pictures at that resolution). A PIL picture is
    pixels already and is saved as it is. The figure is drawn in memory first and the file replaced in one step, so
    a failure leaves no half-written file; missing folders are created. Returns the path.
    """
    scale = figure_scale(scale)
    if isinstance(figure, Image.Image):
        p = figure_path(path, text=False)
        if scale != 1:
            raise CnnvizError(f"scale={scale:g} draws a figure larger, but this is a picture of pixels (such as "
                              f"cv.picture_grid makes), which would only be blown up: make it larger where it is "
                              f"drawn (picture_grid's size=), or compose a figure (cv.figure_layers, a widget's "
                              f"to_figure()) and save that with scale.")
        buf = io.BytesIO()
        figure.save(buf, format="PNG")
    else:
        from matplotlib.figure import Figure

        if not isinstance(figure, Figure):
            raise CnnvizError(f"figure must be a matplotlib Figure (cv.figure_layers and the widgets' to_figure() make "
                              f"one) or a PIL picture, got {short_repr(figure)}.")
        p = figure_path(path)
        buf = io.BytesIO(figure_bytes(figure, p.suffix.lower()[1:], scale))
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
