"""Pictures in and out of a probe: what the network sees (prepared, normalised), and back to what a person sees."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ImageError
from ..images import prepare_picture, split_pictures, to_unit
from .core import ProbeCore


class ProbePictures(ProbeCore):
    """Pictures into model input and back: the one preprocessing (``images.prepare_picture``) at the probe's input size
    and normalisation, and input checks that name what is wrong.

    A part of :class:`~cnnviz_widgets.probe.Probe` (its attributes are the probe's own)."""

    def preprocess(self, images: Any) -> torch.Tensor:
        """Pictures (PIL, arrays, tensors in [0,1], paths, lists) -> normalized (N, C, S, S) model input.

        Each picture goes through :func:`cnnviz_widgets.images.prepare_picture` (upright, shorter side
        resized to ``resize_size`` or ``input_size``, the centre ``input_size`` square cropped, grey for
        one-channel networks); ``to_image`` shows exactly that crop.
        """
        pairs = split_pictures(images)
        if len(pairs) == 0:
            raise ImageError("No images given: pass at least one picture (try cv.sample_images()).")
        return self.normalize(torch.stack([self.prepare(pic, name) for name, pic in pairs]))

    def prepare(self, picture: Any, name: str = "picture") -> torch.Tensor:
        """One picture as this network sees it before normalising: (C, S, S) in [0, 1] on the CPU."""
        return prepare_picture(picture, self.input_size, self.channels, name=name, resize=self.resize_size)

    def model_input(self, picture: Any, name: str = "picture") -> torch.Tensor:
        """One picture (a path, PIL, array or tensor; never a list) as normalized model input (1, C, S, S)
        on the probe's device; ``name`` is what an error calls it."""
        return self.normalize(self.prepare(picture, name)[None])

    def normalize(self, pictures: torch.Tensor) -> torch.Tensor:
        """Prepared pictures (N, C, S, S), uint8 or float in [0, 1], as model input on the probe's device:
        ``(x - mean) / std``, converted there (a uint8 batch crosses the bus at a quarter of the bytes)."""
        return (to_unit(pictures.to(self.device, non_blocking=True)) - self.mean) / self.std

    def to_image(self, x: torch.Tensor) -> np.ndarray:
        """Model input -> uint8 (N, S, S, 3) (or (S, S, 3)): exactly what the network saw (grey as RGB)."""
        t = torch.as_tensor(x).detach().to(self.device, torch.float32)
        single = t.ndim == 3
        if single:
            t = t[None]
        if t.ndim != 4 or t.shape[1] != self.channels:
            raise ImageError(f"to_image expects model input (N, {self.channels}, H, W), got shape {tuple(t.shape)}.")
        img = ((t * self.std + self.mean).clamp(0, 1) * 255.0).round().to(torch.uint8).expand(-1, 3, -1, -1)
        pixels = img.permute(0, 2, 3, 1).cpu().numpy()
        return pixels[0] if single else pixels

    def check_input(self, x: Any) -> torch.Tensor:
        """Model input as a finite float (N, C, H, W) tensor on the probe's device, or ImageError."""
        c = self.channels
        if not isinstance(x, torch.Tensor):
            raise ImageError(
                f"Expected model input (a float tensor (N, {c}, H, W)), got {type(x).__name__}. "
                f"Call probe.preprocess(images) on pictures first."
            )
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1] != c or not x.dtype.is_floating_point:
            raise ImageError(
                f"Expected model input as a float tensor (N, {c}, H, W), got {x.dtype} of shape {tuple(x.shape)}. "
                f"Call probe.preprocess(images) on pictures first."
            )
        if x.shape[0] == 0:
            raise ImageError("The input batch is empty: pass at least one image.")
        if not torch.isfinite(x).all():
            raise ImageError("The input contains NaN or infinite values.")
        return x.to(self.device, torch.float32)
