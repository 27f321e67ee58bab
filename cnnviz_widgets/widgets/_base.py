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
    """The ES module ``name`` as shipped in the wheel (cnnviz_widgets/js) or in a source checkout (js/)."""
    here = Path(__file__).resolve().parent.parent
    for folder in (here / "js", here.parent / "js"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"widget module {name} is missing from {here / 'js'}; reinstall cnnviz-widgets")


def png_bytes(image: np.ndarray, compress_level: int = 1) -> bytes:
    """uint8 HxWx3 (or HxW) -> PNG bytes (fast compression: these travel once, locally)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


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


def as_probe(model_or_probe: Any, **kwargs: Any):
    """A Probe from a Probe or an nn.Module (errors surface as CnnvizError)."""
    from ..probe import Probe

    return model_or_probe if isinstance(model_or_probe, Probe) else Probe(model_or_probe, **kwargs)
