"""New pictures from the browser: a file picked, dropped or pasted, or a webcam snapshot, joining a widget's list.

The bytes travel as the binary buffer of a custom message ``{"event": "upload", "name": ...}`` (never base64 in a
trait) and are decoded by the one picture pipeline (:func:`cnnviz_widgets.images.read_picture`: EXIF orientation,
modes, the decompression-bomb limit, early reduction to the network's size), so an upload is the same picture as
the file given by path. A picture too large, damaged or not a picture raises an ImageError, which the widget shows;
its list is left as it was. At most :data:`MAX_UPLOADS` uploads are kept (each decoded at up to 4x the input side,
about 3 MB): past that the oldest upload leaves the list, and the notice says so, so a session of any number of
uploads holds bounded memory.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..errors import CnnvizError, ImageError, short_repr
from ..images import read_picture
from ..imageset import ImageSet
from .picker import PicksImage

MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # the largest file accepted (a 48-megapixel camera JPEG is about 20 MB)
MAX_UPLOADS = 20  # uploads kept in a widget's list; the oldest goes first


class _Joined(Sequence):
    """The widget's own pictures followed by its uploads (decoded tensors), as one sequence for an ImageSet."""

    def __init__(self, base: Sequence[Any], uploads: list[torch.Tensor]) -> None:
        self._base, self._uploads = base, uploads

    def __len__(self) -> int:
        return len(self._base) + len(self._uploads)

    def __getitem__(self, i):
        n = len(self._base)
        return self._base[i] if i < n else self._uploads[i - n]


def upload_name(name: Any, taken: Sequence[str]) -> str:
    """The list's name for an uploaded file: its base name (no folders, at most 80 characters), made unique with
    " (2)", " (3)"... where the list has it already."""
    text = str(name or "").replace("\\", "/").rsplit("/", 1)[-1].strip() or "upload"
    text = text if len(text) <= 80 else text[:38] + "…" + text[-38:]
    unique, k = text, 2
    while unique in taken:
        unique, k = f"{text} ({k})", k + 1
    return unique


class TakesPictures(PicksImage):
    """Mixin for a widget whose picker takes new pictures: :meth:`add_picture` from Python, the "upload" event from
    the browser. The widget names the side its networks read pictures at (:meth:`upload_side`)."""

    _uploads: list[torch.Tensor]
    _base_images: Any
    notice: str  # the widget's (CnnvizWidget)

    def upload_side(self) -> int:
        """The side the widget's networks resize pictures to: an upload is decoded at up to 4x that."""
        raise NotImplementedError

    def request_picture(self, index: int) -> None:
        """Compute and show picture ``index`` (what picking it does)."""
        raise NotImplementedError

    def add_picture(self, data: bytes | bytearray | memoryview, name: str = "upload") -> None:
        """Decode a picture file's bytes and add it to the list under ``name`` (the file's name), then show it: the
        same jobs as picking it. Too large, damaged or not a picture: an ImageError names why, the list unchanged."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ImageError(f"{name}: a picture's file contents (bytes) are needed, got {short_repr(data)}.")
        size = memoryview(data).nbytes
        if size > MAX_UPLOAD_BYTES:
            raise ImageError(f"{name} is {size / 2**20:.1f} MB: pictures of up to {MAX_UPLOAD_BYTES // 2**20} MB are "
                             f"accepted. Make it smaller (or pass a file path to the widget from Python).")
        if size == 0:
            raise ImageError(f"{name} is empty (0 bytes): it is not a picture.")
        picture = read_picture(bytes(data), name=str(name), reduce_to=self.upload_side())
        self._join(picture, name)

    def _join(self, picture: torch.Tensor, name: str) -> None:
        images = self._images
        assert images is not None  # set up: only a working widget takes pictures
        if not hasattr(self, "_uploads"):
            self._uploads, self._base_images = [], images
        base = self._base_images
        names = list(images.names)
        dropped = ""
        if len(self._uploads) >= MAX_UPLOADS:  # the oldest upload leaves; indices after it move down by one
            at = len(base)
            dropped = names.pop(at)
            self._uploads.pop(0)
            if self.shown_image > at:
                self.shown_image -= 1
            elif self.shown_image == at:
                self.shown_image = -1
        label = upload_name(name, names)
        self._uploads.append(picture)
        self._images = ImageSet(_Joined(base._items if isinstance(base, ImageSet) else base, self._uploads),
                                [*base.names, *names[len(base):], label])
        index = len(self._images) - 1
        self.image_names = list(self._images.names)
        if self.image_index == index:  # the oldest upload left and this one took the index on screen
            self.request_picture(index)
        else:
            self.image_index = index  # shows it, by the picker's own jobs
        if dropped:
            self.notice = f"added {label}; the oldest upload, {dropped}, left the list ({MAX_UPLOADS} uploads are kept)"

    def upload_event(self, message: dict) -> None:
        """The browser's "upload": the file's bytes in the message's first buffer (none: the browser found the file
        too large to send, and says its size)."""
        buffers = getattr(self, "_message_buffers", None) or []
        name = given if isinstance(given := message.get("name"), str) else "upload"
        if not buffers:
            size = message.get("size")
            if isinstance(size, (int, float)) and size > MAX_UPLOAD_BYTES:
                raise ImageError(f"{name} is {size / 2**20:.1f} MB: pictures of up to {MAX_UPLOAD_BYTES // 2**20} MB "
                                 f"are accepted. Make it smaller (or pass a file path to the widget from Python).")
            raise CnnvizError(f"The browser sent no picture for {name}; nothing was added.")
        self.add_picture(buffers[0], name)
