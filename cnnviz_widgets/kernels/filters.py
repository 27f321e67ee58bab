"""The filters of a layer that sees the picture, as pictures: what a first layer has learnt (edges, colour blobs).

A first-layer filter is a small RGB (or grey) image in its own right; deeper filters have hundreds of input
channels and are shown by their top patches instead (:func:`cnnviz_widgets.top_patches`).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import CnnvizError, UnsupportedModelError
from ..probe.probe import Probe


def first_conv(probe: Probe) -> str:
    """The name of the probe's first conv layer (the one that sees the picture)."""
    for layer in probe.layers:
        if layer.kind == "conv":
            return layer.name
    raise UnsupportedModelError(f"{type(probe.model).__name__} has no conv layer, so it has no filters to show.")


def filter_weights(probe: Probe, layer: str | None = None) -> torch.Tensor:
    """The weights (C, channels, kh, kw) of ``layer`` (default the first conv layer), a detached CPU float copy."""
    name = probe.layer(layer).name if layer is not None else first_conv(probe)
    module = probe.model.get_submodule(probe.layer(name).module_path)
    weight = getattr(module, "weight", None)
    if not isinstance(module, nn.Conv2d) or not isinstance(weight, torch.Tensor):
        raise UnsupportedModelError(f"Layer {name!r} is not a torch.nn.Conv2d with weights; its filters cannot be "
                                    f"drawn as pictures.")
    return weight.detach().to("cpu", torch.float32).clone()


def filter_pictures(probe: Probe, layer: str | None = None) -> np.ndarray:
    """The filters of ``layer`` (default the first conv layer) as uint8 pictures (C, kh, kw, 3).

    Zero is mid-grey and the largest absolute weight of the whole layer is black or white (one scale for all
    the layer's filters, as the paper's Figure 7 draws them: a weak filter looks faint, a strong one vivid, and
    two checkpoints' pictures differ where their weights do). A layer that reads three channels is drawn in
    RGB, one that reads one in grey; a layer reading any other number (a deeper layer) is refused, since its
    filters are no pictures.
    """
    w = filter_weights(probe, layer)
    c = w.shape[1]
    if c not in (1, 3):
        name = probe.layer(layer).name if layer is not None else first_conv(probe)
        raise CnnvizError(f"Layer {name!r} reads {c} channels, so its filters are no pictures: only a layer that reads "
                          f"the picture (3 or 1 channels: the first conv layer) can be drawn this way; show deeper "
                          f"filters by their top patches (cv.top_patches).")
    peak = float(w.abs().max())
    scaled = 0.5 + 0.5 * (w / peak if peak > 0 else w)
    pictures = (scaled.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return np.repeat(pictures, 3, axis=3) if c == 1 else pictures
