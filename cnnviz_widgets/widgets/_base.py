"""Shared widget machinery: error/busy/progress traits, the JS file lookup, PNG encoding.

Widgets hold no math: they call kernels, and any error a kernel raises is shown inside the
widget as a readable message while the traceback goes to the log, never to the cell.
"""
from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from ..errors import CnnvizError

log = logging.getLogger("cnnviz_widgets")


def js_path(name: str) -> Path:
    """A file of js/ as shipped in the wheel (cnnviz_widgets/js) or in a source checkout (js/)."""
    here = Path(__file__).resolve().parent.parent
    for folder in (here / "js", here.parent / "js"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"widget module {name} is missing from {here / 'js'}; reinstall cnnviz-widgets")


def esm(name: str) -> str:
    """One self-contained ES module: js/_shared.js followed by the widget's own js/``name``.

    anywidget imports the module from a Blob URL, where relative imports cannot resolve, so the
    shared helpers are joined in rather than imported; no build step and no Node at run time.
    """
    return js_path("_shared.js").read_text(encoding="utf-8") + "\n" + js_path(name).read_text(encoding="utf-8")


def png_bytes(image: np.ndarray, compress_level: int = 1) -> bytes:
    """uint8 HxWx3 (or HxW) -> PNG bytes (fast compression: these travel once, locally)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def sprite(tiles: list[np.ndarray], columns: int, cell: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tiles (uint8 HxWx3, any size) resized to ``cell`` and laid out ``columns`` per row in one picture.

    Galleries travel as one sprite sheet per page rather than one message per patch.
    """
    from PIL import Image

    columns = max(1, min(columns, len(tiles))) if tiles else 1
    rows = max(1, -(-len(tiles) // columns))
    out = np.full((rows * (cell + pad) - pad, columns * (cell + pad) - pad, 3), fill, np.uint8)
    for n, t in enumerate(tiles):
        r, c = divmod(n, columns)
        if t.shape[:2] != (cell, cell):
            t = np.asarray(Image.fromarray(t).resize((cell, cell), Image.BILINEAR))
        out[r * (cell + pad) : r * (cell + pad) + cell, c * (cell + pad) : c * (cell + pad) + cell] = t
    return out


class CnnvizWidget(anywidget.AnyWidget):
    """Base of every cnnviz widget: ``error`` (shown in the widget), ``busy`` and ``progress``."""

    error = traitlets.Unicode("").tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)
    progress = traitlets.Float(0.0).tag(sync=True)  # 0..1 while busy

    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Run kernel work: busy while it runs; an error becomes ``self.error``, its traceback a log entry."""
        self.busy = True
        try:
            yield
            self.error = ""
        except CnnvizError as exc:
            log.info("%s failed: %s", what, exc, exc_info=True)
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a widget must never put a traceback in the cell
            log.exception("%s failed", what)
            self.error = f"{what} failed: {type(exc).__name__}: {exc}"
        finally:
            self.busy = False
            self.progress = 0.0

    def report(self, done: int, total: int) -> None:
        """Progress callback for the kernels: feeds the ``progress`` trait (a bar in the widget)."""
        self.progress = done / total if total else 0.0


def as_probe(model_or_probe: Any, **kwargs: Any):
    """A Probe from a Probe or an nn.Module (errors surface as CnnvizError)."""
    from ..probe import Probe

    return model_or_probe if isinstance(model_or_probe, Probe) else Probe(model_or_probe, **kwargs)
