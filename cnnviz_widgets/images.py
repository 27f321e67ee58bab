"""Pictures in: the bundled sample photos, any picture as float RGB, resizing (pictures out: display.py).

Conventions: numpy pictures are (H, W[, C]); torch pictures are (C, H, W) or batches (N, C, H, W).
Integer pictures are scaled by their dtype's maximum, floats must lie in [0, 1].
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from .errors import ImageError

_SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "camera", "hubble_deep_field")
_SKLEARN_PHOTOS = ("china", "flower")


def sample_images() -> list[tuple[str, np.ndarray]]:
    """Real photographs bundled by scikit-image and scikit-learn, as (name, HxWx3 uint8) pairs.

    Nothing is downloaded: every file ships inside the two packages.
    """
    import skimage
    from PIL import Image
    from sklearn.datasets import load_sample_images

    folder = os.path.join(os.path.dirname(skimage.__file__), "data")
    out = []
    for name in _SKIMAGE_PHOTOS:
        for ext in (".png", ".jpg"):
            path = os.path.join(folder, name + ext)
            if os.path.exists(path):
                with Image.open(path) as im:
                    out.append((name.replace("_left", ""), np.asarray(im.convert("RGB"))))
                break
    data = load_sample_images()
    for path, img in zip(data.filenames, data.images):
        out.append((os.path.splitext(os.path.basename(path))[0], np.ascontiguousarray(img, dtype=np.uint8)))
    return out


def _describe(obj: Any) -> str:
    shape = getattr(obj, "shape", None)
    dtype = getattr(obj, "dtype", None)
    return f"{type(obj).__name__}" + (f" of shape {tuple(shape)} and dtype {dtype}" if shape is not None else "")


def _scale_integer(arr: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(arr)
    if t.dtype == torch.bool:
        return t.float()
    if t.dtype.is_floating_point:
        return t.float()
    if t.dtype == torch.uint8:
        return t.float() / 255.0
    info = np.iinfo(np.dtype(str(t.dtype).replace("torch.", "")))
    if info.min < 0:
        t = t.clamp_min(0)
    return t.double().div(info.max).float()


def picture_to_tensor(img: Any, name: str = "picture") -> torch.Tensor:
    """One picture (path, PIL, numpy HxW[xC], torch [C]xHxW) as a float32 (3, H, W) tensor in [0, 1].

    Grayscale is repeated to three channels, alpha is dropped (composited on nothing), 16-bit and
    other integer types are scaled by their maximum. NaN, infinities and wrong shapes raise ImageError.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(img, (str, os.PathLike)):
        path = os.fspath(img)
        if not os.path.isfile(path):
            raise ImageError(f"{name}: the file {path!r} does not exist (or is not a file).")
        try:
            with Image.open(path) as opened:
                opened.load()
                return picture_to_tensor(opened, name=f"{name} ({path})")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"{name}: {path!r} is not a readable picture ({type(exc).__name__}: {exc}).") from exc
    if isinstance(img, Image.Image):
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(img).astype(np.float64)
            t = torch.from_numpy(arr / (65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0)).float()
            t = t[None]
        elif img.mode == "F":
            t = torch.from_numpy(np.asarray(img, dtype=np.float32).copy())[None]
        else:
            t = torch.from_numpy(np.asarray(img.convert("RGB")).copy()).permute(2, 0, 1).float() / 255.0
    elif isinstance(img, np.ndarray):
        if img.dtype == object or img.ndim not in (2, 3):
            raise ImageError(f"{name}: expected an HxW or HxWxC picture, got {_describe(img)}.")
        arr = img if img.ndim == 3 else img[:, :, None]
        if arr.shape[2] not in (1, 3, 4):
            raise ImageError(
                f"{name}: a numpy picture is HxWxC with C in 1, 3 or 4; got {_describe(img)}. "
                f"For a channels-first array pass np.moveaxis(a, 0, -1) or a torch tensor."
            )
        t = _scale_integer(np.array(arr, copy=True)).permute(2, 0, 1)
    elif isinstance(img, torch.Tensor):
        x = img.detach().cpu()
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[0] not in (1, 3, 4):
            raise ImageError(
                f"{name}: a torch picture is CxHxW with C in 1, 3 or 4 (or a batch NxCxHxW); got {_describe(img)}."
            )
        t = _scale_integer(x)
    else:
        raise ImageError(
            f"{name}: cannot read a picture from {_describe(img)}; pass a PIL image, a numpy "
            f"HxWx3 array, a torch 3xHxW tensor, a file path, or a list of those."
        )
    if t.shape[-1] < 1 or t.shape[-2] < 1:
        raise ImageError(f"{name}: the picture is empty ({_describe(img)}).")
    if not torch.isfinite(t).all():
        raise ImageError(f"{name}: the picture contains NaN or infinite values; clean it first.")
    if t.min() < -1e-3 or t.max() > 1 + 1e-3:  # integer pictures are scaled to [0, 1] already
        raise ImageError(
            f"{name}: float pictures must lie in [0, 1], this one spans [{float(t.min()):.3g}, {float(t.max()):.3g}]. "
            f"Divide by 255 for 0-255 data; normalized model input goes to probe.deconvnet directly."
        )
    t = t.clamp(0, 1)
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    elif t.shape[0] == 4:
        t = t[:3]
    return t.contiguous().float()


def split_pictures(images: Any) -> list[tuple[str, Any]]:
    """A batch as (name, picture) pairs: a list, an NxCxHxW tensor, an NxHxWxC array, (name, picture)
    pairs (what ``sample_images()`` returns), or one picture. Paths are named by their file name."""
    if isinstance(images, (torch.Tensor, np.ndarray)) and images.ndim == 4:
        items = list(images)
    elif isinstance(images, (list, tuple)):
        single_pair = len(images) == 2 and isinstance(images[0], str) and not isinstance(images[1], str)
        items = [images] if single_pair else list(images)
    else:
        items = [images]
    out = []
    for i, item in enumerate(items):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and not isinstance(item[1], str):
            out.append(item)
        elif isinstance(item, (str, os.PathLike)):
            out.append((os.path.basename(os.fspath(item)), item))
        else:
            out.append((f"image {i}", item))
    return out


def resize_center_crop(t: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (3,H,W) so the shorter side is ``size`` (antialiased), then crop the centre square."""
    import torch.nn.functional as F

    h, w = t.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        t = F.interpolate(t[None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)[0]
    top, left = (nh - size) // 2, (nw - size) // 2
    return t[:, top : top + size, left : left + size].clamp(0, 1)
