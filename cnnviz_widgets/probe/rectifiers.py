"""Rectifier-like activations as the network may call them: name, in-place argument, out-of-place twin.

How each reverse rule crosses them is in :mod:`.rules`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Rectifier:
    """A rectifier-like function: its display name and how to compute it out of place."""

    label: str
    inplace_pos: int | None  # position of the ``inplace`` argument, if it has one
    out_of_place: Any  # the function to call instead of an in-place variant


RECTIFIERS: dict[str, Rectifier] = {
    "relu": Rectifier("ReLU", 1, F.relu),
    "relu_": Rectifier("ReLU", None, F.relu),
    "relu6": Rectifier("ReLU6", 1, F.relu6),
    "hardtanh": Rectifier("ReLU6", 3, F.hardtanh),  # a rectifier only when min_val == 0
    "hardtanh_": Rectifier("ReLU6", None, F.hardtanh),
    "leaky_relu": Rectifier("LeakyReLU", 2, F.leaky_relu),
    "leaky_relu_": Rectifier("LeakyReLU", None, F.leaky_relu),
    "silu": Rectifier("SiLU", 1, F.silu),
    "gelu": Rectifier("GELU", None, F.gelu),
    "hardswish": Rectifier("Hardswish", 1, F.hardswish),
    "elu": Rectifier("ELU", 2, F.elu),
    "elu_": Rectifier("ELU", None, F.elu),
    "mish": Rectifier("Mish", 1, F.mish),
}


def rectifier_spec(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Rectifier | None:
    """The Rectifier that ``func`` called with these arguments is, or None (hardtanh only with min 0)."""
    spec = RECTIFIERS.get(getattr(func, "__name__", ""))
    if spec is None or not args or not isinstance(args[0], torch.Tensor):
        return None
    if spec.label == "ReLU6" and func.__name__.startswith("hardtanh"):
        lo = kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)
        if lo != 0:
            return None
    return spec
