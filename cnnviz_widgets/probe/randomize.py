"""Cascading randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps"): a copy of a network whose layers
from the top down to a chosen one have their weights drawn afresh, the layers below kept."""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from .. import checks
from ..errors import CnnvizError, short_repr
from ..models.provenance import WeightsRecord, mark, weights_of


def randomize_layers(model: Any, from_layer: str, seed: int = 0) -> nn.Module:
    """A copy of ``model`` (an nn.Module or a cv.Probe's network) whose layers from the output down to ``from_layer``
    (a layer name such as "c4" or a module path; "fc8": the output layer alone) are re-initialised, each by its own
    ``reset_parameters`` (PyTorch's default initialisation), deterministically from ``seed`` without touching the
    global random state; the layers below ``from_layer`` keep their weights. The model itself is untouched.

    Adebayo et al. randomise a trained network this way, from the top down: a visualisation that still looks the
    same after the top layers are random does not explain what those layers learned. The copy says it is (partly)
    random: its probe's ``weights_note`` names the layers, and figures and widgets made from it are stamped."""
    from .probe import Probe

    source = model.model if isinstance(model, Probe) else model
    if not isinstance(source, nn.Module):
        raise CnnvizError(f"model must be a torch.nn.Module or a cv.Probe, got {short_repr(model)}.")
    seed = checks.non_negative_int("seed", seed)
    record = weights_of(source)
    copied = copy.deepcopy(source)
    probe = Probe(copied, device="cpu") if not isinstance(model, Probe) else model
    start = probe.layer(from_layer)  # a LayerNotFoundError lists the names
    layers = list(probe.layers)
    chosen = [l for l in layers[layers.index(start):] if l.kind != "pool"]
    modules = dict(copied.named_modules())
    redrawn = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for layer in reversed(chosen):  # from the top down, as the cascade goes
            module = modules.get(layer.module_path)
            if module is None or not callable(getattr(module, "reset_parameters", None)):
                continue
            module.reset_parameters()
            redrawn.append(layer.name)
    if not redrawn:
        raise CnnvizError(f"No layer from {start.name!r} up has weights to re-draw (its layers: "
                          f"{', '.join(l.name for l in chosen)}); choose a conv or fully connected layer.")
    name = record.model if record is not None else type(source).__name__
    was = "your weights" if record is None else record.source if not record.random else f"random, {record.source}"
    top, bottom = redrawn[0], redrawn[-1]
    span = top if top == bottom else f"{bottom} to {top}"
    partly = record is None or not record.random
    return mark(copied, WeightsRecord(name, f"{was}; {span} re-drawn, seed {seed}", True, partly=partly))
