"""Deconvnet kernel (Zeiler & Fergus; Yu et al. section 4.2): every layer from one forward pass.

One forward pass records the max-pool switches and swaps each rectifier's backward for
relu(signal) (see probe.rectifiers); then each requested layer is seeded with its own activations,
one feature map, or one unit, and taken to the input by one partial backward pass, gradients with
respect to the input only. Conv and fc layers thus apply their transposed filters, max-pools route
the signal to their switches, and every other op applies its ordinary linear backward.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from ..errors import IndexOutOfRangeError, UnsupportedModelError
from ..probe.hooks import grad_enabled
from ..probe.layers import Layer
from ..probe.probe import Probe, from_nchw, to_nchw
from .precision import autocast_dtype, precision


def deconvnet(
    probe: Probe,
    x: torch.Tensor,
    layers: str | Iterable[str] | None = None,
    channel: int | None = None,
    unit: tuple[int, int, int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    batched: bool = False,
    autocast: str | torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """Layer name -> reconstruction in input space, shaped like ``x``, on the probe's device (float32).

    ``progress(done, total)`` is called after the forward pass and after each layer's backward
    pass; an exception it raises (a widget's Stop) ends the work there, freeing the graph.

    ``batched=True`` runs all layers' backward passes as one: the input is repeated once per layer
    and copy j is seeded at layer j only, so one forward and one backward over a bigger batch give
    every reconstruction (the same numbers; more arithmetic, fewer and larger kernels: for GPUs).
    ``autocast='bf16'`` or ``'fp16'`` runs forward and backward under torch.autocast.
    """
    x = probe.check_input(x)
    chosen = probe.select(layers)
    dtype = autocast_dtype(autocast)
    if channel is not None and unit is not None:
        raise IndexOutOfRangeError("Pass either channel= or unit=, not both (unit already names its channel).")
    for layer in chosen:
        check_selector(layer, channel, unit)
    with grad_enabled(), precision(x.device, dtype):
        if batched and len(chosen) > 1:
            out = _all_layers_at_once(probe, x, chosen, channel, unit, progress)
        else:
            out = _layer_by_layer(probe, x, chosen, channel, unit, progress)
    return {name: g.float() for name, g in out.items()}


def check_connected(l: Layer, act: torch.Tensor, xi: torch.Tensor) -> None:
    """Raise UnsupportedModelError unless autograd's graph leads from ``act`` back to the input ``xi``.

    Checked per layer before any backward pass: a layer cut off from the input (the model detaches
    on the way) would otherwise reverse to silent zeros when all layers go back in one pass.
    """
    seen, stack = set(), [act.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if getattr(fn, "variable", None) is xi:
            return
        stack.extend(f for f, _ in fn.next_functions)
    raise UnsupportedModelError(
        f"Layer {l.name!r} is not connected to the input by differentiable operations "
        f"(the model detaches or leaves PyTorch on the way), so it cannot be reversed."
    )


def _layer_by_layer(probe: Probe, x: torch.Tensor, chosen: list[Layer], channel: int | None, unit: Any,
                    progress: Callable[[int, int], None] | None) -> dict[str, torch.Tensor]:
    """One forward, then one partial backward per layer, keeping the graph until the last."""
    xi = x.detach().clone().requires_grad_(True)
    acts = probe.forward(xi, chosen, deconv=True)
    if progress is not None:
        progress(1, len(chosen) + 1)
    out: dict[str, torch.Tensor] = {}
    for i, l in enumerate(chosen):
        act = acts[l.name]
        check_connected(l, act, xi)
        seed = from_nchw(make_seed(to_nchw(act.detach(), l.layout), channel, unit), l.layout)
        (g,) = torch.autograd.grad(act, xi, grad_outputs=seed, retain_graph=i + 1 < len(chosen))
        out[l.name] = g.detach()
        if progress is not None:
            progress(i + 2, len(chosen) + 1)
    return out


def _all_layers_at_once(probe: Probe, x: torch.Tensor, chosen: list[Layer], channel: int | None, unit: Any,
                        progress: Callable[[int, int], None] | None) -> dict[str, torch.Tensor]:
    """Copy j of the input (rows j*n to (j+1)*n) is seeded at layer j only; one backward for all."""
    n, count = x.shape[0], len(chosen)
    xi = x.detach().repeat(count, *([1] * (x.dim() - 1))).requires_grad_(True)
    acts = probe.forward(xi, chosen, deconv=True)
    if progress is not None:
        progress(1, 2)
    outputs, seeds = [], []
    for j, l in enumerate(chosen):
        act = acts[l.name]
        check_connected(l, act, xi)
        rows = slice(j * n, (j + 1) * n)
        seed = torch.zeros_like(act)
        seed[rows] = from_nchw(make_seed(to_nchw(act.detach()[rows], l.layout), channel, unit), l.layout)
        outputs.append(act)
        seeds.append(seed)
    (g,) = torch.autograd.grad(outputs, xi, grad_outputs=seeds)
    if progress is not None:
        progress(2, 2)
    return {l.name: g[j * n : (j + 1) * n].detach() for j, l in enumerate(chosen)}


def check_selector(layer: Layer, channel: int | None, unit: Any) -> None:
    """Raise IndexOutOfRangeError, naming the range, for a channel or unit the layer does not have."""
    c, h, w = layer.shape
    if channel is not None:
        if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 0 <= channel < c:
            raise IndexOutOfRangeError(
                f"channel={channel!r} is out of range for layer {layer.name!r}: it has {c} channels, 0 to {c - 1}."
            )
    if unit is not None:
        if not isinstance(unit, (tuple, list)) or len(unit) != 3:
            raise IndexOutOfRangeError(f"unit must be (channel, y, x), got {unit!r}.")
        for v, n, what in zip(unit, (c, h, w), ("channel", "y", "x")):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < n:
                raise IndexOutOfRangeError(
                    f"unit={tuple(unit)!r} is out of range for layer {layer.name!r} of shape (C, H, W) = "
                    f"{layer.shape}: {what} must be 0 to {n - 1}."
                )


def make_seed(act: torch.Tensor, channel: int | None, unit: Any) -> torch.Tensor:
    """The layer's activations (N, C, H, W) kept whole, for one channel, or for one unit; zero elsewhere."""
    if channel is None and unit is None:
        return act
    seed = torch.zeros_like(act)
    if channel is not None:
        seed[:, channel] = act[:, channel]
    else:
        k, y, x = (int(v) for v in unit)
        if y >= act.shape[2] or x >= act.shape[3]:
            raise IndexOutOfRangeError(
                f"unit={tuple(unit)!r} is outside this input's map of {tuple(act.shape[2:])} positions."
            )
        seed[:, k, y, x] = act[:, k, y, x]
    return seed


def unit_reconstructions(probe: Probe, x: torch.Tensor, layer: str, units: torch.Tensor) -> torch.Tensor:
    """Deconvnet of one unit per image: image n seeded at ``units[n] = (channel, y, x)`` only.

    One forward and one backward for the whole batch; (N, 3, H, W) in input space. This is what a
    gallery of top patches shows next to each crop (Zeiler & Fergus, Fig. 2).
    """
    x = probe.check_input(x)
    (l,) = probe.select(layer)
    units = torch.as_tensor(units, dtype=torch.long).reshape(-1, 3)
    if len(units) != len(x):
        raise IndexOutOfRangeError(f"units has {len(units)} rows for {len(x)} images; give one (channel, y, x) per image.")
    for u in units.tolist():
        check_selector(l, None, tuple(u))
    with grad_enabled():
        xi = x.detach().clone().requires_grad_(True)
        act = probe.forward(xi, [l], deconv=True)[l.name]
        check_connected(l, act, xi)
        nchw = to_nchw(act.detach(), l.layout)
        seed = torch.zeros_like(nchw)
        n = torch.arange(len(units), device=nchw.device)
        c, y, xx = (units[:, j].to(nchw.device) for j in range(3))
        seed[n, c, y, xx] = nchw[n, c, y, xx]
        (g,) = torch.autograd.grad(act, xi, grad_outputs=from_nchw(seed, l.layout))
    return g.detach()
