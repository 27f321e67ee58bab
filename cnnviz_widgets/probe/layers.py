"""Layer records and the paper's layer names (c1_1 ... p5, fc6 for VGG; c1 p1 ... p5, fc6 for AlexNet)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .receptive_field import ReceptiveField

LAYER_KINDS = (
    (nn.Conv2d, "conv"),
    (nn.Linear, "fc"),
    ((nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d), "pool"),
)


@dataclass(frozen=True)
class Layer:
    """One probe-able layer.

    name: paper-style for plain chains, the module path otherwise. kind: "conv", "pool" or "fc".
    channels: size of the channel dim of its activation; shape: (C, H, W) at the probe's input
    size; layout: "nchw", "nc" (fully connected) or "nhwc" (a Linear on a channels-last map).
    rf: receptive field, or None where it could not be traced (see Probe.receptive_field).
    rectified: whether its activation is the output of the rectifier that follows it.
    switches: whether max-pools lie between the input and this layer's output. Their switches and the
    seed (the layer's own activations) are all the deconvnet takes from the picture, so without them a
    deep layer's deconvnet looks alike for every image.
    """

    name: str
    kind: str
    module_path: str
    channels: int
    rf: ReceptiveField | None
    shape: tuple[int, int, int] = (0, 1, 1)
    layout: str = "nchw"
    rectified: bool = False
    switches: bool = False


def layer_kind(module: nn.Module) -> str | None:
    """"conv", "fc", "pool" for modules that are layers, else None (adaptive pools are not)."""
    for types, kind in LAYER_KINDS:
        if isinstance(module, types):
            return kind
    return None


def paper_names(events: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Paper-style names for a plain chain, from its ordered (kind, module_path) events.

    ``events`` holds the layers in forward order with kinds "conv", "pool", "fc", plus
    ("pool", "") for functional pools, which close a block but are not layers. Blocks of
    convolutions are separated by pools: when most blocks hold several convolutions the names are
    cB_I (VGG), else cN (AlexNet); a pool is named after the block or conv it closes; fully
    connected layers continue the count (fc6 after five blocks or five convolutions).
    """
    blocks: list[list[str]] = [[]]
    fcs: list[str] = []
    for kind, path in events:
        if kind == "conv":
            blocks[-1].append(path)
        elif kind == "pool":
            if blocks[-1]:
                blocks.append([])
        elif kind == "fc":
            fcs.append(path)
    blocks = [b for b in blocks if b]
    # cB_I when most blocks hold several convolutions (VGG11/16/19), cN otherwise (AlexNet: 1, 1, 3)
    per_block = len(blocks) > 1 and sum(len(b) > 1 for b in blocks) > sum(len(b) == 1 for b in blocks)
    names: dict[str, str] = {}
    conv_number: dict[str, int] = {}
    n = 0
    for bi, block in enumerate(blocks, start=1):
        for i, path in enumerate(block, start=1):
            n += 1
            conv_number[path] = n
            names[path] = f"c{bi}_{i}" if per_block else f"c{n}"
    # a pool takes the number of the block (cB_I) or of the last conv (cN) before it
    conv_paths = [p for k, p in events if k == "conv"]
    seen_convs = 0
    block_of_conv = {p: bi for bi, b in enumerate(blocks, start=1) for p in b}
    for kind, path in events:
        if kind == "conv":
            seen_convs += 1
        elif kind == "pool" and path:
            last = conv_paths[seen_convs - 1] if seen_convs else None
            number = (block_of_conv[last] if per_block else conv_number[last]) if last else 0
            names[path] = _unique(f"p{number}", names)
    last_number = len(blocks) if per_block else n
    for j, path in enumerate(fcs, start=last_number + 1):
        names[path] = _unique(f"fc{j}", names)
    return names


def _unique(name: str, taken: dict[str, str]) -> str:
    used = set(taken.values())
    if name not in used:
        return name
    k = 2
    while f"{name}_{k}" in used:
        k += 1
    return f"{name}_{k}"


def to_nchw(t: torch.Tensor, layout: str) -> torch.Tensor:
    """A layer's activation (its ``layout``: "nchw", "nhwc" or "nc") as (N, C, H, W)."""
    if layout == "nc":
        return t[:, :, None, None]
    if layout == "nhwc":
        return t.permute(0, 3, 1, 2)
    return t


def from_nchw(t: torch.Tensor, layout: str) -> torch.Tensor:
    """(N, C, H, W) back to a layer's own ``layout``: what :func:`to_nchw` undoes."""
    if layout == "nc":
        return t[:, :, 0, 0]
    if layout == "nhwc":
        return t.permute(0, 2, 3, 1)
    return t
