"""What a network's output holds and which layer produces it: fc heads and conv heads alike.

The output layer is the last layer whose activation *is* the class scores, up to a parameter-free head:
as it is (an fc layer, or a 1x1 conv on a 1x1 map then flattened: DPN), its spatial mean (a 1x1 conv,
ReLU, average pool: SqueezeNet) or its spatial maximum. A class of that layer is seeded with the
derivative of its score with respect to the activation (1 for an fc layer, ``1/(H*W)`` at every position
under an average pool, 1 at the maximum under a max pool), so the gradient rule of a class is exactly
``torch.autograd.grad`` of that class's score, on conv heads too.
"""
from __future__ import annotations

from typing import Any

import torch

OUTPUT_OPS = {"softmax": "probabilities", "_softmax": "probabilities", "log_softmax": "log_probabilities",
              "_log_softmax": "log_probabilities", "sigmoid": "sigmoid", "sigmoid_": "sigmoid"}
HEADS = ("identity", "mean", "max")  # how the output follows from the output layer's (N, C, H, W) activation


def output_kind(out: Any, last_op: str) -> str:
    """What the network's (N, classes) output holds: 'logits', 'probabilities' (it ends in a softmax),
    'log_probabilities' (log-softmax) or 'sigmoid' (each output its own probability), judged by the op
    that made it in the traced pass, module or functional, or failing that by the values themselves."""
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or not out.dtype.is_floating_point:
        return "logits"
    if last_op in OUTPUT_OPS:
        return OUTPUT_OPS[last_op]
    o = out.detach().double()
    ones = torch.ones(o.shape[0], dtype=o.dtype, device=o.device)
    if o.shape[1] > 1 and (o >= 0).all() and torch.allclose(o.sum(1), ones, atol=1e-4):
        return "probabilities"
    if o.shape[1] > 1 and (o <= 0).all() and torch.allclose(o.exp().sum(1), ones, atol=1e-4):
        return "log_probabilities"
    return "logits"


def apply_head(head: str, act: torch.Tensor) -> torch.Tensor:
    """The class scores (N, C) that ``head`` makes of an output layer's activation (N, C, H, W)."""
    if head == "mean":
        return act.mean(dim=(2, 3))
    if head == "max":
        return act.amax(dim=(2, 3))
    return act.reshape(act.shape[0], act.shape[1])


def find_head(act: torch.Tensor, out: torch.Tensor) -> str | None:
    """Which of :data:`HEADS` turns ``act`` (N, C, H, W) into ``out`` (N, C), or None (another function of it)."""
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or act.ndim != 4 or out.shape != act.shape[:2]:
        return None
    a, o = act.detach().double(), out.detach().double()
    for head in HEADS:
        if head == "identity" and act.shape[2:] != (1, 1):
            continue
        made = apply_head(head, a)
        if torch.allclose(made, o, rtol=1e-4, atol=1e-5 * (1.0 + float(o.abs().max()))):
            return head
    return None


def class_seed(head: str, act: torch.Tensor, channel: int) -> torch.Tensor:
    """d score[channel] / d act for every image: the seed of a class of the output layer (N, C, H, W)."""
    seed = torch.zeros_like(act)
    if head == "mean":
        seed[:, channel] = 1.0 / (act.shape[2] * act.shape[3])
    elif head == "max":
        flat = act[:, channel].flatten(1)
        at = flat.argmax(dim=1)
        rows = torch.arange(act.shape[0], device=act.device)
        seed[rows, channel, at // act.shape[3], at % act.shape[3]] = 1.0
    else:
        seed[:, channel] = 1.0
    return seed
