"""Pictures as bytes for the browser: JPEG by default (a saved notebook keeps them), PNG or BMP for exact pixels."""
from __future__ import annotations

import io
import os

import numpy as np


def png_bytes(image: np.ndarray, compress_level: int = 1) -> bytes:
    """uint8 HxWx3, HxWx4 (with alpha) or HxW -> PNG bytes (fast compression: these travel once, locally)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()

PICTURE_FORMATS = ("bmp", "png", "jpeg")


def picture_format() -> str:
    """How the explorer sends its pictures: $CNNVIZ_PICTURES if set (bmp, png or jpeg), else JPEG (quality 92).

    JPEG because a notebook saved with its widget state keeps these bytes (base64 in the .ipynb and its HTML): a
    fifth of BMP's size for a few ms more per strip (README, Benchmarks: "Measured choices"). bmp (raw pixels,
    fastest) or png (lossless, slow) send the exact pixels."""
    chosen = os.environ.get("CNNVIZ_PICTURES", "").strip().lower()
    return chosen if chosen in PICTURE_FORMATS else "jpeg"


def picture_bytes(images: list[np.ndarray], fmt: str | None = None) -> list[bytes]:
    """uint8 HxWx3 pictures encoded as ``fmt`` (default :func:`picture_format`), for an <img> in the browser."""
    from PIL import Image

    fmt = fmt or picture_format()
    options = {"bmp": {}, "png": {"compress_level": 1}, "jpeg": {"quality": 92}}[fmt]
    out = []
    for image in images:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image)).save(buf, format=fmt.upper(), **options)
        out.append(buf.getvalue())
    return out
