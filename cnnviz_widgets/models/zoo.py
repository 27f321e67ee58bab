"""load_model: the paper's pair (VGG16, AlexNet and the paper's AlexNet variant) by name."""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torchvision
from torch import nn

from .. import checks
from ..errors import UnknownModelError, WeightsUnavailableError, short_repr
from .alexnet_paper import AlexNetPaper
from .provenance import WeightsRecord, mark
from .weight_files import OFFLINE_HINT, candidate_state_dicts, read_weights
from .weights import PASSED, apply_state_dict, imagenet_state_dict


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
    name: str, weights: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = "imagenet", seed: int = 0
) -> nn.Module:
    """A model of the zoo, in eval mode on the CPU, in float32.

    weights: "imagenet" (torchvision's weights API, cached in TORCH_HOME); a path to a local
    weights file, told by its content: a state_dict or a training checkpoint holding one (read
    with weights_only=True) or a safetensors file; a state dict itself (``other.state_dict()``,
    copied); or None for random weights drawn deterministically from ``seed`` without touching
    the global random state. Keys saved with a wrapper's prefix ('module.', 'model.',
    '_orig_mod.') are matched to the model's own.
    """
    key = str(name).lower()
    if key not in MODELS:
        raise UnknownModelError(
            f"Unknown model {short_repr(name)}. Known names: {', '.join(MODELS)}. "
            f"Any other torch.nn.Module can be passed straight to cv.Probe(model)."
        )
    entry = MODELS[key]
    if weights is None:
        seed = checks.non_negative_int("seed", seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = entry.build().eval()
        # what is made from it says so (probe.weights_note): a stamp on figures, a note in widgets
        return mark(model, WeightsRecord(key, f"seed {seed}", True))
    # weights first, then the model: an offline failure builds nothing, and building on the meta
    # device and assigning the loaded tensors never holds two copies of the weights (VGG16: 528 MB)
    imagenet = isinstance(weights, str) and weights.lower() in IMAGENET_ALIASES
    if imagenet:
        if entry.imagenet is None:
            raise WeightsUnavailableError(
                f"No ImageNet weights are published for {key!r} (the paper's own retrained AlexNet). "
                f"Train it and pass the file: cv.load_model({key!r}, weights='path/to/state_dict.pth'), "
                f"or use 'alexnet' for torchvision's ImageNet AlexNet; {OFFLINE_HINT}."
            )
        state, source = imagenet_state_dict(key, entry.imagenet), repr(entry.imagenet.url)
    elif isinstance(weights, (str, os.PathLike)):
        state, source = read_weights(weights, key), short_repr(weights, 240)
    elif isinstance(weights, Mapping) and candidate_state_dicts(weights):
        state, source = weights, PASSED
    else:
        raise WeightsUnavailableError(
            f"weights={short_repr(weights)} is not understood: pass 'imagenet', a path to a weights file, "
            f"a state dict (weights=other_model.state_dict()), or None."
        )
    with torch.device("meta"):
        model = entry.build()
    apply_state_dict(model, state, source, key, copy=isinstance(weights, Mapping))
    if imagenet:
        model.cnnviz_preprocessing = preset_of(entry.imagenet)  # type: ignore[assignment]  # stubs: Module attributes are tensors, modules. Probe then prepares pictures as these weights saw them
    told = "imagenet" if imagenet else "a state dict" if isinstance(weights, Mapping) else \
        f"file {os.path.basename(os.fspath(weights))}"
    return mark(model.eval(), WeightsRecord(key, told, False))


def preset_of(weights: Any) -> dict[str, int]:
    """torchvision weights' own preprocessing: the shorter side resized to ``resize``, the centre ``crop`` kept."""
    t = weights.transforms()
    return {"resize": int(t.resize_size[0]), "crop": int(t.crop_size[0])}


def load_model_or_random(name: str, seed: int = 0) -> tuple[nn.Module, str]:
    """ImageNet weights when they are cached or downloadable, else seeded random ones.

    Returns (model, note): the note is "" with real weights, else a sentence saying random weights
    are in use and the one line that fetches the real ones (for notebooks' banners).
    """
    try:
        return load_model(name, weights="imagenet"), ""
    except WeightsUnavailableError:
        model = load_model(name, weights=None, seed=seed)
        if MODELS[name].imagenet is None:
            return model, (f"{name}: no published ImageNet weights, so seeded random weights are used "
                           f"(pass a trained state_dict with cv.load_model({name!r}, weights='file.pth')).")
        return model, (f"{name}: ImageNet weights are not available here (offline?), so seeded random weights are used: "
                       f"the pictures show the architecture, not what the network learned. To fetch the real weights once, "
                       f"run with internet: python -c \"import cnnviz_widgets as cv; cv.load_model('{name}', weights='imagenet')\"")


def banner(*notes: str) -> None:
    """Show weight notes as a visible warning in a notebook (nothing when every note is empty)."""
    text = [n for n in notes if n]
    if not text:
        return
    from IPython.display import Markdown, display

    display(Markdown("\n".join(f"> **Note:** {n}  " for n in text)))


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names, from torchvision's weight metadata (no download)."""
    return list(torchvision.models.VGG16_Weights.IMAGENET1K_V1.meta["categories"])
