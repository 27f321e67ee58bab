"""Picture files and their bytes decoded into tensors: Pillow reads the header (size, format, the decompression-bomb
limit), libjpeg-turbo decodes a plain JPEG, a big JPEG is decoded at a reduced scale, EXIF orientation is applied;
and the rule that reads an integer picture as 8 or 16 bits (files and arrays alike). The checks after decoding are
:mod:`cnnviz_widgets.images`'s."""
from __future__ import annotations

import contextlib
import functools
import io
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from .errors import ImageError, warn


def scale_integer(arr: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
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


def decode_file(path: str, name: str, reduce_to: int | None) -> torch.Tensor:
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


def decode_bytes(data: bytes, name: str, reduce_to: int | None) -> torch.Tensor:
    """A picture file's bytes (an upload, a webcam frame) decoded exactly as :func:`decode_file` decodes the file:
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
        return from_pil(opened, name, reduce_to)


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


def from_pil(img: Any, name: str, reduce_to: int | None) -> torch.Tensor:
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
            return scale_integer(np.asarray(im).astype(np.int64), name)[None]
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
