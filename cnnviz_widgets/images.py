"""Pictures in: the bundled sample photos, any picture as float RGB, resizing (pictures out: display.py).

Conventions: numpy pictures are (H, W[, C]); torch pictures are (C, H, W) or batches (N, C, H, W).
Integer pictures are scaled by what their values are (8 or 16 bits), floats must lie in [0, 1].
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from .errors import CnnvizWarning, ImageError, warn

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


def _scale_integer(arr: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    """Integer pictures: uint8 is 8-bit (/255) and uint16 16-bit (/65535), as their types say (a 16-bit PNG
    read by Pillow or numpy gives the same numbers); other integer types (int32 and int64 from arithmetic,
    torch.randint) are typed by their values: up to 255 8-bit, up to 65535 16-bit. Negative or larger
    values are not a picture's (ImageError)."""
    dtype = str(getattr(arr, "dtype", "")).replace("torch.", "")
    t = torch.as_tensor(arr)
    if t.dtype == torch.bool or t.dtype.is_floating_point:
        return t.float()
    if t.dtype == torch.uint8:
        return t.float() / 255.0
    if t.numel() == 0:
        return t.float()
    if dtype == "uint64":
        t = torch.as_tensor(np.asarray(arr).astype(np.float64))  # beyond int64: compare as floats
    t = t.to(torch.float64) if t.dtype == torch.float64 else t.to(torch.int64)  # min/max for every integer type
    lo, hi = float(t.min()), float(t.max())
    if lo < 0 or hi > 65535:
        raise ImageError(
            f"{name}: an integer picture holds 0-255 (8-bit) or 0-65535 (16-bit) values, this {dtype} one spans "
            f"[{lo:.0f}, {hi:.0f}]. Clip it (np.clip(a, 0, 255)) or pass floats in [0, 1]."
        )
    sixteen = dtype == "uint16" or hi > 255
    if dtype == "uint16" and hi <= 255:
        warn(f"{name}: this uint16 picture holds values up to {hi:.0f} only; it is read as 16-bit (/65535), so "
                      f"it is nearly black. If it holds 8-bit data, pass a.astype(np.uint8).", stacklevel=4)
    return t.double().div(65535.0 if sixteen else 255.0).float()


REDUCE_MARGIN = 4  # a big picture is first reduced (decoder draft, box filter) to no less than 4x the input size


def _reduce_factor(shorter: int, size: int | None) -> int:
    return 1 if size is None else max(1, shorter // (REDUCE_MARGIN * size))


def _bomb(name: str, exc: BaseException) -> ImageError:
    from PIL import Image

    return ImageError(
        f"{name}: {exc} Pillow refuses such pictures as a possible decompression bomb (limit "
        f"{Image.MAX_IMAGE_PIXELS:,} pixels). If you trust the file, raise the limit first: "
        f"PIL.Image.MAX_IMAGE_PIXELS = None."
    )


def _decode_file(path: str, name: str, reduce_to: int | None) -> torch.Tensor:
    """The picture file as a (C, H, W) tensor (uint8 for 8-bit files), upright by its EXIF orientation.

    The header is read by Pillow (size, format, the decompression-bomb limit); an 8-bit JPEG that needs
    no reduction is decoded by torchvision's libjpeg-turbo straight into a tensor (a fifth of the time of
    Pillow's decode and float resize); a JPEG much larger than ``reduce_to`` is decoded at a reduced scale
    (draft mode: a 48-megapixel photo is never held at full size); every other file goes through Pillow.
    """
    from PIL import Image

    if not os.path.isfile(path):
        raise ImageError(f"{name}: the file {path!r} does not exist (or is not a file).")
    try:
        opened = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise _bomb(f"{name} ({path!r})", exc) from exc
    except PermissionError as exc:
        raise ImageError(f"{name}: {path!r} cannot be read: permission denied.") from exc
    except Exception as exc:  # noqa: BLE001 - a damaged file can make Pillow raise almost anything
        raise ImageError(f"{name}: {path!r} is not a readable picture ({type(exc).__name__}: {exc}).") from exc
    return _decode_opened(opened, reduce_to, lambda mode: _decode_jpeg(path, mode), f"{name} ({path!r})",
                          f"{name}: {path!r}", f"{name} ({path})")


def _decode_bytes(data: bytes, name: str, reduce_to: int | None) -> torch.Tensor:
    """A picture file's bytes (an upload, a webcam frame) decoded exactly as :func:`_decode_file` decodes the file:
    the same header checks, decompression-bomb limit, EXIF orientation, early reduction and decoders."""
    from PIL import Image

    try:
        opened = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise _bomb(name, exc) from exc
    except Exception as exc:  # noqa: BLE001 - a damaged file can make Pillow raise almost anything
        raise ImageError(f"{name} is not a readable picture ({type(exc).__name__}: {exc}).") from exc
    return _decode_opened(opened, reduce_to, lambda mode: _decode_jpeg(data, mode), name, name, name)


def _decode_opened(opened: Any, reduce_to: int | None, fast_jpeg: Any, bomb_name: str, where: str, name: str
                   ) -> torch.Tensor:
    """An opened PIL file as a (C, H, W) tensor: libjpeg-turbo for a plain 8-bit JPEG needing no reduction, else
    Pillow (a big JPEG decoded at a reduced scale). ``where`` and ``bomb_name`` name it in errors."""
    from PIL import Image

    with opened:
        w, h = opened.size
        f = _reduce_factor(min(w, h), reduce_to)
        if opened.format == "JPEG" and f == 1 and opened.mode in ("RGB", "L"):
            fast = fast_jpeg(opened.mode)
            if fast is not None:
                return fast
        try:
            if f > 1 and opened.format == "JPEG":
                opened.draft("RGB", (max(1, w // f), max(1, h // f)))
            opened.load()
        except Image.DecompressionBombError as exc:
            raise _bomb(bomb_name, exc) from exc
        except Exception as exc:  # noqa: BLE001 - a damaged file can make Pillow raise almost anything
            raise ImageError(f"{where} is not a readable picture ({type(exc).__name__}: {exc}).") from exc
        return _from_pil(opened, name, reduce_to)


def _decode_jpeg(source: str | bytes, mode: str) -> torch.Tensor | None:
    """torchvision's JPEG decoder on a file or its bytes, or None where it declines (Pillow then decodes, and names
    any damage)."""
    try:
        from torchvision.io import ImageReadMode, decode_jpeg, read_file

        with torchvision_io():
            data = read_file(source) if isinstance(source, str) else torch.frombuffer(bytearray(source), dtype=torch.uint8)
            return decode_jpeg(data, mode=ImageReadMode.GRAY if mode == "L" else ImageReadMode.RGB,
                               apply_exif_orientation=True)
    except Exception:  # noqa: BLE001 - truncated or unusual files: Pillow's reading is the reference
        return None


@contextlib.contextmanager
def torchvision_io() -> Iterator[None]:
    """Quiet torchvision 0.29's notice that its decoders will move to TorchCodec: they work, and the notice
    would reach users from every reader process."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                                category=DeprecationWarning)
        yield


@functools.cache
def _exif_turns() -> dict[int, Any]:
    """EXIF orientation tag -> the transpose that makes the picture upright (what ImageOps.exif_transpose does)."""
    from PIL import Image

    t = Image.Transpose
    return {2: t.FLIP_LEFT_RIGHT, 3: t.ROTATE_180, 4: t.FLIP_TOP_BOTTOM, 5: t.TRANSPOSE, 6: t.ROTATE_270,
            7: t.TRANSVERSE, 8: t.ROTATE_90}


def _from_pil(img: Any, name: str, reduce_to: int | None) -> torch.Tensor:
    """A PIL image, turned upright by its EXIF orientation, reduced early, as a (C, H, W) tensor: uint8 for
    8-bit modes, float in [0, 1] for 16-bit and 32-bit ones."""
    from PIL import Image

    try:
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            im = img
        else:
            im = img if img.mode in ("RGB", "L") else img.convert("RGB")  # alpha dropped, palettes expanded
            f = _reduce_factor(min(im.size), reduce_to)
            if f > 1:  # whole f x f boxes only, the remainder trimmed evenly, so the centre stays where it was
                w, h = im.size
                left, top = (w % f) // 2, (h % f) // 2
                im = im.reduce(f, box=(left, top, left + w - w % f, top + h - h % f))
        turn = _exif_turns().get(img.getexif().get(0x0112, 1))
        if turn is not None:
            im = im.transpose(turn)
        if im.mode in ("I;16", "I;16B", "I;16L"):
            arr = np.asarray(im).astype(np.float64) / 65535.0
            return torch.from_numpy(arr).float()[None]
        if im.mode == "I":
            return _scale_integer(np.asarray(im).astype(np.int64), name)[None]
        if im.mode == "F":  # checked as every float picture is, by read_picture
            return torch.from_numpy(np.asarray(im, dtype=np.float32).copy())[None]
        if im.mode == "L":
            return torch.from_numpy(np.asarray(im).copy())[None]
        return torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1)
    except Image.DecompressionBombError as exc:
        raise _bomb(name, exc) from exc
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file can make Pillow raise almost anything
        raise ImageError(f"{name}: the picture cannot be decoded ({type(exc).__name__}: {exc}).") from exc


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
    """:func:`_scale_integer`'s range check of an integer picture from its two extremes (its warnings are given
    when the picture is read)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CnnvizWarning)
        _scale_integer(extremes, name)


def read_picture(img: Any, name: str = "picture", reduce_to: int | None = None) -> torch.Tensor:
    """One picture (path, a file's bytes, PIL, numpy HxW[xC], torch [C]xHxW) as a (C, H, W) tensor with C 1 or 3: uint8 when
    the picture is 8-bit (files, PIL images, uint8 arrays and tensors: resized as uint8, four times less
    memory traffic), float32 in [0, 1] otherwise. See :func:`picture_to_tensor` for the rules."""
    from PIL import Image

    if isinstance(img, (str, os.PathLike)):
        t = _decode_file(os.fspath(img), name, reduce_to)
    elif isinstance(img, (bytes, bytearray, memoryview)):  # a picture file's contents (an upload)
        t = _decode_bytes(bytes(img), name, reduce_to)
    elif isinstance(img, Image.Image):
        t = _from_pil(img, name, reduce_to)
    elif isinstance(img, np.ndarray):
        arr = _numpy_layout(img, name)
        if arr.dtype == np.uint8:
            t = torch.from_numpy(np.array(arr[:, :, :3], copy=True)).permute(2, 0, 1)
        else:
            t = _scale_integer(np.array(arr, copy=True), name).permute(2, 0, 1)
    elif isinstance(img, torch.Tensor):
        x = _torch_layout(img, name).cpu()
        t = x[:3] if x.dtype == torch.uint8 else _scale_integer(x, name)
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
    ``_scale_integer``). NaN, infinities and wrong shapes raise ImageError. ``reduce_to``: the side the
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


def resize_center_crop(t: torch.Tensor, size: int, resize: int | None = None) -> torch.Tensor:
    """Resize (C, H, W) or (N, C, H, W) pictures so the shorter side is ``resize`` (default ``size``;
    antialiased bilinear, torchvision's kernel: uint8 stays uint8), then crop the centre ``size`` square
    (torchvision's CenterCrop arithmetic when ``resize`` is given, as its presets do)."""
    from torchvision.transforms.v2 import functional as TF

    h, w = t.shape[-2:]
    if resize is None:
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    else:  # a weights' preset: torchvision's own arithmetic (the longer side truncated), so inputs match exactly
        nh, nw = (resize, int(resize * w / h)) if h <= w else (int(resize * h / w), resize)
    if resize is None:
        top, left = (nh - size) // 2, (nw - size) // 2
    else:
        top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    if nh * nw > WINDOW_AREA * size * size:  # a thin or huge picture: only the crop is computed
        return _resized_window(t, (nh, nw), (top, left), size)
    if (nh, nw) != (h, w):
        t = TF.resize(t, [nh, nw], antialias=True)
    t = t[..., top : top + size, left : left + size]
    return t if t.dtype == torch.uint8 else t.clamp(0, 1)


WINDOW_AREA = 4  # a resized picture over 4x the crop's area (an aspect over 4:1) is resized within the crop only
WINDOW_ROWS = 256  # rows of the input window taken to float at a time (a 6000x30000 array: 37 MB, not 870 MB)


def _aa_weights(in_size: int, out_size: int, start: int, count: int) -> tuple[int, torch.Tensor]:
    """Rows ``start`` .. ``start + count`` of PyTorch's antialiased bilinear resize matrix from ``in_size`` to
    ``out_size`` samples (aten's ``_compute_index_ranges_weights``: a triangle as wide as the scale when
    shrinking, one sample each side when growing, normalised), over the input samples they reach only:
    returns the first of those and the (count, reach) weights."""
    scale = in_size / out_size
    support, inverse = (scale, 1.0 / scale) if scale >= 1 else (1.0, 1.0)
    centre = scale * (torch.arange(start, start + count, dtype=torch.float64) + 0.5)
    first = (centre - support + 0.5).trunc().clamp_min(0)
    end = (centre + support + 0.5).trunc().clamp_max(in_size)
    lo, hi = int(first.min()), int(end.max())
    j = torch.arange(lo, hi, dtype=torch.float64)[None]
    w = (1 - ((j - centre[:, None] + 0.5) * inverse).abs()).clamp_min(0)
    w = w * ((j >= first[:, None]) & (j < end[:, None]))
    return lo, w / w.sum(1, keepdim=True).clamp_min(1e-300)


def _resized_window(t: torch.Tensor, resized: tuple[int, int], at: tuple[int, int], size: int) -> torch.Tensor:
    """The ``size`` square at ``at`` of ``t`` resized to ``resized`` (antialiased bilinear), computed from the input
    samples that square reaches and nothing more: a 1x100000 picture costs its crop, not the 224x22,400,000 picture
    a resize makes first (5 GB). Equal to the resize-then-crop within float rounding (uint8: one level, rounded)."""
    h, w = t.shape[-2:]
    (nh, nw), (top, left) = resized, at
    y0, wy = _aa_weights(h, nh, top, max(0, min(size, nh - top)))
    x0, wx = _aa_weights(w, nw, left, max(0, min(size, nw - left)))
    window = t[..., y0 : y0 + wy.shape[1], x0 : x0 + wx.shape[1]]
    out = None
    for r in range(0, window.shape[-2], WINDOW_ROWS):  # a band of rows at a time: a big window is never all float
        part = wy[:, r : r + WINDOW_ROWS] @ (window[..., r : r + WINDOW_ROWS, :].to(torch.float64) @ wx.T)
        out = part if out is None else out.add_(part)
    assert out is not None  # the window has rows
    out = out.float()
    if t.dtype == torch.uint8:
        return out.round_().clamp_(0, 255).to(torch.uint8)
    return out.clamp_(0, 1)
