"""Receptive-field patches: crops of what the network saw, padded with the mean colour at borders."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch

from ..imageset import ImageSet
from ..probe.probe import Probe
from ..probe.receptive_field import ReceptiveField


def crop_padded(image: np.ndarray, box: tuple[int, int, int, int], fill: np.ndarray) -> np.ndarray:
    """``image[top:bottom, left:right]`` where rows/columns outside the image take ``fill``.

    Never shifted: a box that crosses the border keeps its place, the missing part is padding.
    """
    top, left, bottom, right = box
    h, w = image.shape[:2]
    out = np.empty((bottom - top, right - left) + image.shape[2:], image.dtype)
    out[...] = fill
    t, l, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if t < b and l < r:
        out[t - top : b - top, l - left : r - left] = image[t:b, l:r]
    return out


class PatchSource:
    """What the network saw for each picture of a set (cached), and receptive-field crops of it."""

    def __init__(self, probe: Probe, images: ImageSet, cache: int = 64) -> None:
        self.probe, self.images = probe, images
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._size = cache
        mean = (probe.mean.flatten().cpu().numpy() * 255.0).round()
        self.fill = np.resize(mean.astype(np.uint8), 3)  # a zero model input: the mean colour (grey repeated)

    def _input(self, i: int) -> torch.Tensor:
        """Normalized model input (3, S, S) of picture ``i``, exactly as probe.preprocess makes it."""
        i = int(i)
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        x = self.probe.model_input(self.images.raw(i), self.images.label(i))[0]
        self._cache[i] = x
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return x

    def seen(self, i: int) -> np.ndarray:
        """Picture ``i`` as the network saw it, uint8 (S, S, 3): probe.to_image of its model input."""
        return self.probe.to_image(self._input(i))

    def model_input(self, indices: Sequence[int]) -> torch.Tensor:
        """Normalized model input (N, 3, S, S) of pictures ``indices``, on the probe's device."""
        return torch.stack([self._input(i) for i in indices])

    def patch(self, image_index: int, y: int, x: int, rf: ReceptiveField) -> np.ndarray:
        """uint8 (rf.size, rf.size, 3) crop of unit (y, x)'s receptive field in picture ``image_index``."""
        return crop_padded(self.seen(image_index), rf.square_box(int(y), int(x)), self.fill)


def crop_reconstruction(rec: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    """A (3, H, W) reconstruction cropped to ``box``, zero (mid-gray when shown) outside the input."""
    top, left, bottom, right = box
    h, w = rec.shape[-2:]
    out = rec.new_zeros((rec.shape[0], bottom - top, right - left))
    t, l, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if t < b and l < r:
        out[:, t - top : b - top, l - left : r - left] = rec[:, t:b, l:r]
    return out
