"""load_model: the paper's pair (VGG16, AlexNet and the paper's AlexNet variant) by name."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torchvision
from torch import nn

from ..errors import UnknownModelError, WeightsUnavailableError
from .alexnet_paper import AlexNetPaper
from .weights import OFFLINE_HINT, apply_state_dict, imagenet_state_dict, read_state_dict


@dataclass(frozen=True)
class ZooEntry:
    """How to build one named model and where its ImageNet weights come from (None: none published)."""

    build: Callable[[], nn.Module]
    imagenet: Any | None


MODELS: dict[str, ZooEntry] = {
    "vgg16": ZooEntry(lambda: torchvision.models.vgg16(weights=None), torchvision.models.VGG16_Weights.IMAGENET1K_V1),
    "alexnet": ZooEntry(
        lambda: torchvision.models.alexnet(weights=None), torchvision.models.AlexNet_Weights.IMAGENET1K_V1
    ),
    "alexnet_paper": ZooEntry(AlexNetPaper, None),
}
IMAGENET_ALIASES = {"imagenet", "imagenet1k", "default", "imagenet1k_v1"}


def load_model(
    name: str, weights: str | os.PathLike[str] | None = "imagenet", seed: int = 0
) -> nn.Module:
    """A model of the zoo, in eval mode on the CPU.

    weights: "imagenet" (torchvision's weights API, cached in TORCH_HOME), a path to a local
    state_dict file (read with weights_only=True), or None for random weights drawn
    deterministically from ``seed`` without touching the global random state.
    """
    key = str(name).lower()
    if key not in MODELS:
        raise UnknownModelError(
            f"Unknown model {name!r}. Known names: {', '.join(MODELS)}. "
            f"Any other torch.nn.Module can be passed straight to cv.Probe(model)."
        )
    entry = MODELS[key]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = entry.build()
    if weights is None:
        return model.eval()
    if isinstance(weights, str) and weights.lower() in IMAGENET_ALIASES:
        if entry.imagenet is None:
            raise WeightsUnavailableError(
                f"No ImageNet weights are published for {key!r} (the paper's own retrained AlexNet). "
                f"Train it and pass the file: cv.load_model({key!r}, weights='path/to/state_dict.pth'), "
                f"or use 'alexnet' for torchvision's ImageNet AlexNet; {OFFLINE_HINT}."
            )
        state = imagenet_state_dict(key, entry.imagenet)
        apply_state_dict(model, state, entry.imagenet.url, key)
        return model.eval()
    if not isinstance(weights, (str, os.PathLike)):
        raise WeightsUnavailableError(
            f"weights={weights!r} is not understood: pass 'imagenet', a path to a state_dict file, or None."
        )
    state = read_state_dict(weights)
    apply_state_dict(model, state, os.fspath(weights), key)
    return model.eval()


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names, from torchvision's weight metadata (no download)."""
    return list(torchvision.models.VGG16_Weights.IMAGENET1K_V1.meta["categories"])
