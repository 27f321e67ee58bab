"""Pictures in: the bundled sample photos, any picture checked and read as float RGB, prepared at a network's size
(files decoded by decode.py, resized by resize.py; pictures out: display.py).

Conventions: numpy pictures are (H, W[, C]); torch pictures are (C, H, W) or batches (N, C, H, W).
Integer pictures are scaled by what their values are (8 or 16 bits), floats must lie in [0, 1].
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .decode import decode_bytes, decode_file, from_pil, scale_integer
from .errors import CnnvizWarning, ImageError
from .resize import resize_center_crop

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


FLOAT_SLACK = 1e-3  # how far outside [0, 1] a float picture may stray (rounding) before it is refused


def _checked_float(t: torch.Tensor, name: str) -> torch.Tensor:
    """A float picture after the checks every float picture gets: finite, within [0, 1] (clamped)."""
    if not torch.isfinite(t).all():
        raise ImageError(f"{name}: the picture contains NaN or infinite values; clean it first.")
    if t.numel() and (t.min() < -FLOAT_SLACK or t.max() > 1 + FLOAT_SLACK):  # integers are scaled to [0, 1] already
        raise ImageError(
            f"{name}: float pictures must lie in [0, 1], this one spans [{float(t.min()):.3g}, {float(t.max()):.3g}]. "
            f"Divide by 255 for 0-255 data; normalized model input goes to probe.deconvnet directly."
        )
    return t.clamp(0, 1).float()


def _numpy_layout(img: np.ndarray, name: str) -> np.ndarray:
    """A numpy picture as an HxWxC view, C in 1, 3 or 4, or the ImageError that says what is wrong with its shape
    or type (no copy: :func:`check_picture` reads it too)."""
    if img.ndim not in (2, 3) or img.dtype.kind not in "biuf" or img.dtype.itemsize > 8:
        raise ImageError(f"{name}: expected an HxW or HxWxC picture of numbers, got {_describe(img)}.")
    arr = img if img.ndim == 3 else img[:, :, None]
    if arr.shape[2] not in (1, 3, 4):
        raise ImageError(
            f"{name}: a numpy picture is HxWxC with C in 1, 3 or 4; got {_describe(img)}. "
            f"For a channels-first array pass np.moveaxis(a, 0, -1) or a torch tensor."
        )
    return arr


def _torch_layout(img: torch.Tensor, name: str) -> torch.Tensor:
    """A torch picture as a detached CxHxW tensor, C in 1, 3 or 4 (on its own device), or the ImageError that says
    what is wrong with it."""
    if img.is_meta or img.layout != torch.strided or img.is_quantized:
        raise ImageError(f"{name}: a picture must be a dense tensor with values, got a {img.layout} "
                         f"{'meta ' if img.is_meta else ''}tensor {_describe(img)}.")
    x = img.detach()
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[0] not in (1, 3, 4) or x.is_complex():
        raise ImageError(
            f"{name}: a torch picture is a real CxHxW tensor with C in 1, 3 or 4 (or a batch NxCxHxW); "
            f"got {_describe(img)}. A batch of grey pictures (N, H, W), such as MNIST's, is x[:, None]."
        )
    return x


def check_picture(img: Any, name: str = "picture") -> None:
    """Raise the ImageError :func:`read_picture` would raise for an in-memory picture (numpy, torch, PIL), found
    without converting it: its shape and type, then its values' range from their two extremes (NaN and infinities
    reach the extremes). Nothing is copied: a 12-megapixel array is checked in milliseconds, not converted to float
    (what load_images did: 0.2 s a picture). Files are not opened here: they are read when used."""
    from PIL import Image

    if isinstance(img, Image.Image):
        if img.width < 1 or img.height < 1:
            raise ImageError(f"{name}: the picture is empty ({_describe(img)}).")
        return
    if isinstance(img, np.ndarray):
        arr = _numpy_layout(img, name)
        if arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ImageError(f"{name}: the picture is empty ({_describe(img)}).")
        if arr.dtype in (np.uint8, np.bool_):
            return
        extremes = np.array([arr.min(), arr.max()], dtype=arr.dtype)
        (_checked_float(torch.from_numpy(extremes.astype(np.float64)), name) if arr.dtype.kind == "f"
         else _quiet_integer(extremes, name))
        return
    if isinstance(img, torch.Tensor):
        x = _torch_layout(img, name)
        if x.shape[-1] < 1 or x.shape[-2] < 1:
            raise ImageError(f"{name}: the picture is empty ({_describe(img)}).")
        if x.dtype in (torch.uint8, torch.bool):
            return
        ends = torch.stack([x.min(), x.max()]).cpu()
        (_checked_float(ends.double(), name) if x.dtype.is_floating_point else _quiet_integer(ends, name))
        return
    read_picture(img, name)  # anything else: read_picture names what it cannot read


def _quiet_integer(extremes: Any, name: str) -> None:
    """:func:`~cnnviz_widgets.decode.scale_integer`'s range check of an integer picture from its two extremes (its warnings are given
    when the picture is read)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CnnvizWarning)
        scale_integer(extremes, name)


def read_picture(img: Any, name: str = "picture", reduce_to: int | None = None) -> torch.Tensor:
    """One picture (path, a file's bytes, PIL, numpy HxW[xC], torch [C]xHxW) as a (C, H, W) tensor with C 1 or 3: uint8 when
    the picture is 8-bit (files, PIL images, uint8 arrays and tensors: resized as uint8, four times less
    memory traffic), float32 in [0, 1] otherwise. See :func:`picture_to_tensor` for the rules."""
    from PIL import Image

    if isinstance(img, (str, os.PathLike)):
        t = decode_file(os.fspath(img), name, reduce_to)
    elif isinstance(img, (bytes, bytearray, memoryview)):  # a picture file's contents (an upload)
        t = decode_bytes(bytes(img), name, reduce_to)
    elif isinstance(img, Image.Image):
        t = from_pil(img, name, reduce_to)
    elif isinstance(img, np.ndarray):
        arr = _numpy_layout(img, name)
        if arr.dtype == np.uint8:
            t = torch.from_numpy(np.array(arr[:, :, :3], copy=True)).permute(2, 0, 1)
        else:
            t = scale_integer(np.array(arr, copy=True), name).permute(2, 0, 1)
    elif isinstance(img, torch.Tensor):
        x = _torch_layout(img, name).cpu()
        t = x[:3] if x.dtype == torch.uint8 else scale_integer(x, name)
    else:
        raise ImageError(
            f"{name}: cannot read a picture from {_describe(img)}; pass a PIL image, a numpy "
            f"HxWx3 array, a torch 3xHxW tensor, a file path, or a list of those."
        )
    if t.shape[-1] < 1 or t.shape[-2] < 1:
        raise ImageError(f"{name}: the picture is empty ({_describe(img)}).")
    if t.shape[0] == 4:
        t = t[:3]
    if t.dtype != torch.uint8:
        t = _checked_float(t, name)
    return t.contiguous()


def picture_to_tensor(img: Any, name: str = "picture", reduce_to: int | None = None) -> torch.Tensor:
    """One picture (path, PIL, numpy HxW[xC], torch [C]xHxW) as a float32 (3, H, W) tensor in [0, 1].

    Files and PIL images are turned upright by their EXIF orientation. Grayscale is repeated to three
    channels, alpha is dropped, integer pictures are scaled by what their values are (see
    ``scale_integer``). NaN, infinities and wrong shapes raise ImageError. ``reduce_to``: the side the
    picture will be resized to; a file or PIL image more than 4x larger is decoded or box-reduced to
    about 4x first (bounded memory for camera photos; the result differs from a full-size resize by
    less than one 8-bit level on average: tests/api/test_real_input.py).
    """
    t = to_unit(read_picture(img, name, reduce_to))
    return (t.expand(3, -1, -1) if t.shape[0] == 1 else t).contiguous()


def to_unit(t: torch.Tensor) -> torch.Tensor:
    """Pictures as float32 in [0, 1]: uint8 divided by 255, floats as they are."""
    return t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()


GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as Pillow's convert("L")


def to_channels(t: torch.Tensor, channels: int) -> torch.Tensor:
    """(…, 1 or 3, S, S) pictures as ``channels`` channels: grey repeated to three, or the luma of colour
    (float) for one-channel networks."""
    c = t.shape[-3]
    if channels == 1:
        if c == 1:
            return t
        return (to_unit(t) * torch.tensor(GRAY, device=t.device).view(3, 1, 1)).sum(-3, keepdim=True)
    return t.expand(*t.shape[:-3], 3, *t.shape[-2:]) if c == 1 else t


def prepare_raw(img: Any, size: int, channels: int = 3, name: str = "picture", resize: int | None = None
                ) -> torch.Tensor:
    """:func:`prepare_picture` before the division by 255: uint8 for 8-bit pictures (the stream sends
    these to the device and converts there, a quarter of the bytes), float in [0, 1] otherwise."""
    t = read_picture(img, name=name, reduce_to=resize or size)
    return to_channels(resize_center_crop(t, size, resize), channels).contiguous()


def prepare_picture(img: Any, size: int, channels: int = 3, name: str = "picture", resize: int | None = None
                    ) -> torch.Tensor:
    """The one preprocessing definition: any picture -> what the network sees before normalising,
    float (channels, size, size) in [0, 1]: upright, reduced early, resized so its shorter side is
    ``resize`` (default ``size``; torchvision's ImageNet weights use 256 for 224) by antialiased bilinear
    interpolation (in uint8 for 8-bit pictures, as torchvision's presets do), the centre ``size`` square
    cropped; one channel is the luma of the colour picture. Probe.preprocess, the streaming readers (batch
    by batch: :func:`prepare_batch`) and the patch cropper all use it."""
    return to_unit(prepare_raw(img, size, channels, name, resize))


def stackable(items: list[Any]) -> bool:
    """True when ``items`` are in-memory pictures :func:`prepare_batch` takes as one: all numpy HxWxC or all
    torch CxHxW on one device, one shape, uint8 or float, C in 1, 3 or 4."""
    first = items[0] if items else None
    kind: type[np.ndarray] | type[torch.Tensor]
    if isinstance(first, np.ndarray):
        kind, ok_dtype = np.ndarray, lambda a: a.dtype == np.uint8 or a.dtype.kind == "f" and a.dtype.itemsize <= 8
        channel_axis = -1
    elif isinstance(first, torch.Tensor):
        kind, ok_dtype = torch.Tensor, lambda a: a.dtype == torch.uint8 or a.dtype in (torch.float16, torch.bfloat16,
                                                                                       torch.float32, torch.float64)
        channel_axis = 0
    else:
        return False
    return (first.ndim == 3 and first.shape[channel_axis] in (1, 3, 4)
            and all(type(a) is type(first) and isinstance(a, kind) and a.shape == first.shape and a.dtype == first.dtype
                    and ok_dtype(a) and (isinstance(a, np.ndarray) or a.layout == torch.strided and not a.is_meta
                                         and a.device == first.device) for a in items))


def prepare_batch(items: list[Any], names: list[str], size: int, channels: int = 3, resize: int | None = None
                  ) -> tuple[list[int], torch.Tensor, list[str]]:
    """:func:`prepare_raw` of many same-shape in-memory pictures (:func:`stackable`) at once: one stack,
    the float checks (finite, within [0, 1]) vectorised per picture, one batched resize. Returns the
    positions kept, their (n, channels, size, size) batch (uint8 or float) and a message per picture
    refused (the per-picture reading names what is wrong with it)."""
    if isinstance(items[0], np.ndarray):
        t = torch.from_numpy(np.stack(items)).permute(0, 3, 1, 2)
    else:
        t = torch.stack([a.detach() for a in items]).cpu()
    if t.shape[1] == 4:
        t = t[:, :3]
    keep = list(range(len(items)))
    errors: list[str] = []
    if t.dtype != torch.uint8:
        t = t.float()
        flat = t.flatten(1)
        bad = ~torch.isfinite(flat).all(1) | (flat.amin(1) < -FLOAT_SLACK) | (flat.amax(1) > 1 + FLOAT_SLACK)  # _checked_float's test
        if bad.any():
            for j in bad.nonzero().flatten().tolist():
                try:
                    read_picture(items[j], name=names[j])
                except ImageError as exc:
                    errors.append(str(exc))
            keep = (~bad).nonzero().flatten().tolist()
            t = t[~bad]
            if not keep:
                return [], torch.empty(0), errors
        t = t.clamp(0, 1)
    return keep, to_channels(resize_center_crop(t.contiguous(), size, resize), channels).contiguous(), errors


def split_pictures(images: Any) -> list[tuple[str, Any]]:
    """A batch as (name, picture) pairs: a list, an NxCxHxW tensor, an NxHxWxC array, (name, picture)
    pairs (what ``sample_images()`` returns), a dict name -> picture, or one picture. Paths are named by their
    file name."""
    if isinstance(images, Mapping):
        return [(str(name), picture) for name, picture in images.items()]
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


