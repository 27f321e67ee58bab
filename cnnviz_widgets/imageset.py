"""load_images and ImageSet: folders, paths, pictures, arrays and tensors as one lazy sequence.

A folder is listed (recursively) once; its pictures are read from disk only when asked for, so
an ImageNet validation folder of 50,000 JPEGs costs a list of paths, not 7 GB of memory.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ImageError, short_repr, warn
from .images import check_picture, picture_to_tensor, split_pictures

PICTURE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}


class ImageSet(Sequence):
    """A lazy, indexable set of pictures: ``len(s)``, ``s[i]`` -> HxWx3 uint8, ``s.names``.

    ``s.raw(i)`` is the item as given (a path, a PIL image, an array, a tensor), which the kernels
    read at full precision; ``s[i]`` is that picture as 8-bit RGB for showing.
    """

    def __init__(self, items: Sequence[Any], names: Sequence[str]) -> None:
        if len(items) != len(names):
            raise ValueError("items and names differ in length")
        self._items = items
        self.names = list(names)

    def __len__(self) -> int:
        return len(self._items)

    def raw(self, i: int) -> Any:
        item = self._items[int(i)]
        if isinstance(item, tuple) and len(item) == 2 and not isinstance(item[0], str):
            item = item[0]  # torchvision datasets yield (picture, label)
        return item

    def label(self, i: int) -> str:
        """How messages name picture ``i``: 'image 3 (cat.jpg)'."""
        return f"image {i} ({self.names[i]})"

    def tensor(self, i: int) -> torch.Tensor:
        """Picture ``i`` as float (3, H, W) in [0, 1]; ImageError names it when it cannot be read."""
        return picture_to_tensor(self.raw(i), name=self.label(i))

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.subset(range(*i.indices(len(self))))
        if not -len(self) <= int(i) < len(self):
            raise IndexError(f"image index {i} out of range: the set has {len(self)} pictures (0 to {len(self) - 1}).")
        i = int(i) % len(self)
        t = self.tensor(i)
        return (t.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)

    def subset(self, indices: Sequence[int]) -> ImageSet:
        indices = list(indices)
        return ImageSet(_Subset(self._items, indices), [self.names[i] for i in indices])

    def __repr__(self) -> str:
        head = ", ".join(self.names[:3]) + (", ..." if len(self) > 3 else "")
        return f"ImageSet({len(self)} pictures: {head})"


class _Subset(Sequence):
    def __init__(self, items: Sequence[Any], indices: list[int]) -> None:
        self._items, self._indices = items, indices

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, i):
        return self._items[self._indices[i]]


def _list_folder(folder: Path) -> tuple[list[str], list[str]]:
    from PIL import Image

    paths, names, skipped = [], [], []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in sorted(files):
            p = Path(root) / f
            if f.startswith("."):
                continue
            if p.suffix.lower() not in PICTURE_SUFFIXES:
                skipped.append(f"{p} (not a picture file type)")
                continue
            try:
                with Image.open(p):  # reads the header only
                    pass
            except Exception as exc:  # noqa: BLE001 - any reader failure means: skip with a warning
                skipped.append(f"{p} ({type(exc).__name__})")
                continue
            paths.append(str(p))
            names.append(str(p.relative_to(folder)))
    for s in skipped:
        warn(f"load_images: skipping {s}.", stacklevel=3)
    return paths, names


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; a name too long for the file system is not one."""
    try:
        return path.is_file()
    except OSError:
        return False


def load_images(source: Any) -> ImageSet:
    """Anything that holds pictures -> ImageSet.

    ``source``: a folder (searched recursively for common picture formats), a file path, a list
    of paths / PIL images / arrays / tensors / (name, picture) pairs (what ``sample_images()``
    returns), a dict name -> picture, an (N, 3, H, W) tensor or (N, H, W, 3) array, an ImageSet, or any sequence such as a
    torchvision dataset (its (picture, label) items are understood).
    """
    if isinstance(source, ImageSet):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        try:
            exists = path.exists()
        except OSError as exc:  # a name too long for the file system
            raise ImageError(f"load_images: {short_repr(str(path), 120)} cannot be a path here: "
                             f"{exc.strerror or exc}.") from exc
        if not exists:
            raise ImageError(f"load_images: {str(path)!r} does not exist. Give a folder of pictures or a picture file.")
        if path.is_dir():
            paths, names = _list_folder(path)
            if not paths:
                raise ImageError(f"load_images: no pictures found in folder {str(path)!r} "
                                 f"(looked for {', '.join(sorted(PICTURE_SUFFIXES))}).")
            return ImageSet(paths, names)
        return ImageSet([str(path)], [path.name])
    if isinstance(source, (list, tuple, Mapping, torch.Tensor, np.ndarray)) or type(source).__module__.startswith("PIL"):
        pairs = split_pictures(source)
        for i, (_, item) in enumerate(pairs):
            if isinstance(item, (str, os.PathLike)) and not _is_file(Path(item).expanduser()):
                raise ImageError(f"load_images: picture file {short_repr(str(item), 120)} (item {i}) does not exist.")
        names = [name for name, _ in pairs]
        items = [str(Path(item).expanduser()) if isinstance(item, (str, os.PathLike)) else item for _, item in pairs]
    elif hasattr(source, "__len__") and hasattr(source, "__getitem__"):
        return ImageSet(source, [f"image {i}" for i in range(len(source))])
    else:
        raise ImageError(
            f"load_images: cannot read pictures from {type(source).__name__}; pass a folder, paths, "
            f"pictures, an (N, 3, H, W) tensor or a dataset."
        )
    if not items:
        raise ImageError("load_images: no images given; pass at least one picture (try cv.sample_images()).")
    for i, item in enumerate(items):  # in-memory pictures are checked now (without a copy), the error names them
        if isinstance(item, (np.ndarray, torch.Tensor)) or type(item).__module__.startswith("PIL"):
            check_picture(item, name=f"image {i} ({names[i]})")
    return ImageSet(items, names)
