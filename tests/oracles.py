"""The brute-force oracle of receptive fields that the field tests share: the gradient support of single units in a
positive float64 copy of the network (no support cancels) under the measurement's own support mode (rectifiers as
identities, so a saturated ReLU6 hides nothing)."""
from __future__ import annotations

import torch
from torch import nn

from cnnviz_widgets.probe.receptive_field import positive_copy, support_box, support_mode


def traced_output(net: nn.Module, path: str, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the output of the module at ``path``, the input it came from): a ones picture through the positive twin."""
    twin = positive_copy(net)
    seen = {}
    handle = twin.get_submodule(path).register_forward_hook(lambda m, i, o: seen.setdefault("o", o))
    x = torch.ones(1, 3, side, side, dtype=torch.float64, requires_grad=True)
    try:
        with support_mode():
            twin(x)
    finally:
        handle.remove()
    return seen["o"], x


def unit_support(net: nn.Module, path: str, side: int, y: int, x: int) -> tuple[int, int, int, int] | None:
    """The input pixels (top, left, bottom, right) that unit (y, x) of ``path``'s output (all channels) has a
    gradient from."""
    out, inp = traced_output(net, path, side)
    (g,) = torch.autograd.grad(out[0, :, y, x].sum(), inp)
    return support_box(g[0].abs().sum(0))


def supports(net: nn.Module, path: str, side: int, every: int = 1) -> dict[tuple[int, int], tuple | None]:
    """(y, x) -> the support box of that unit of ``path``'s output, over a grid of units ``every`` apart."""
    out, inp = traced_output(net, path, side)
    boxes = {}
    for y in range(0, out.shape[-2], every):
        for xx in range(0, out.shape[-1], every):
            (g,) = torch.autograd.grad(out[0, :, y, xx].sum(), inp, retain_graph=True)
            boxes[(y, xx)] = support_box(g[0].abs().sum(0))
    return boxes
