"""Reconstructions (Yu et al. section 4.2): every layer from one forward pass, by a reverse rule.

One forward pass records the max-pool switches and gives each rectifier the rule's backward (see
probe.rules: the paper's deconvnet, guided backprop, the gradient); then each requested layer is
seeded with its own activations, one feature map, or one unit, and taken to the input by one partial
backward pass, gradients with respect to the input only. Conv and fc layers thus apply their
transposed filters, max-pools route the signal to their switches, and every other op applies its
ordinary linear backward. A class of the output layer (by index or label) is seeded with 1: class
scores are signed, and a negative score seeded as it is would reconstruct the evidence against it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from .. import checks
from ..errors import IndexOutOfRangeError, UnsupportedModelError, short_repr
from .core import ProbeCore
from .hooks import grad_enabled
from .layers import Layer, from_nchw, to_nchw
from .rules import DEFAULT_RULE, ReverseRule, resolve_rule_for, rule_name, rules_by_layer
from ..precision import compute_precision, resolve_precision

Selector = tuple[Any, Any]  # (channel, unit) of one layer: at most one of them set


class TopClassSeed:
    """An ``on_forward`` for :func:`reconstruct` that seeds the output layer with the first picture's top-1 class (the
    paper's last column), its top-``k`` read from the same forward pass where the output layer's activation gives
    the scores (one pass for both), else from one more pass to the scores (:meth:`find`). ``preds``: the top-k
    (class, label, probability) once known, ``[]`` for a network without classes (its output layer is then seeded
    with its own activations), None before. ``on_found()`` is called once when they are read in the pass. What the
    explorer's strip and ``figure_layers`` both seed with."""

    def __init__(self, probe: ProbeCore, x: torch.Tensor, k: int = 5, on_found: Callable[[], None] | None = None) -> None:
        self.probe, self.x, self.k, self.on_found = probe, x, k, on_found
        self.preds: list[tuple[int, str, float]] | None = None

    def find(self) -> list[tuple[int, str, float]]:
        """The top-k, by a forward pass to the scores if the reconstruction's pass did not give them."""
        if self.preds is None:
            try:
                self.preds = self.probe.classify(self.x[:1], k=self.k)[0]
            except UnsupportedModelError:  # a backbone without class scores: everything else still works
                self.preds = []
        return self.preds

    def __call__(self, acts: dict[str, torch.Tensor]) -> dict[str, int]:
        out = self.probe.output_layer
        if out is None or out.name not in acts:
            return {}
        if self.preds is None:
            if self.probe.scores_at_output_layer:
                self.preds = self.probe.top_classes(self.probe.output_scores(acts[out.name][:1]), k=self.k)[0]
                if self.on_found is not None:
                    self.on_found()
            else:
                self.find()
        return {out.name: self.preds[0][0]} if self.preds else {}


def reconstruct(
    probe: ProbeCore,
    x: torch.Tensor,
    layers: str | Iterable[str] | None = None,
    channel: int | str | None = None,
    unit: tuple[int, int, int] | None = None,
    rule: str | ReverseRule = DEFAULT_RULE,
    targets: Mapping[str, int | str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    batched: bool = False,
    autocast: str | torch.dtype | None = None,
    precision: str | None = None,
    on_forward: Callable[[dict[str, torch.Tensor]], Mapping[str, int | str] | None] | None = None,
    next_layer: Callable[[], str | None] | None = None,
    on_layer: Callable[[str, torch.Tensor], None] | None = None,
) -> dict[str, torch.Tensor]:
    """Layer name -> reconstruction in input space, shaped like ``x``, on the probe's device (float32).

    ``rule``: "deconvnet" (the paper's), "guided" or "gradient" (see :mod:`cnnviz_widgets.probe.rules`), or
    "auto": per layer, the deconvnet where max-pool switches lie below it, guided elsewhere (one forward pass per
    rule that comes out; on VGG16 and the AlexNets every layer is the deconvnet's, exactly as ``"deconvnet"``).
    ``channel`` may be a class label on the output layer (``channel="espresso"``). ``targets`` gives some
    layers their own channel (``{"fc8": 967}``), the others follow ``channel``/``unit``.

    ``progress(done, total)`` is called after the forward pass and after each layer's backward
    pass; an exception it raises (a widget's Stop) ends the work there, freeing the graph.

    ``batched=True`` runs all layers' backward passes as one: the input is repeated once per layer
    and copy j is seeded at layer j only, so one forward and one backward over a bigger batch give
    every reconstruction (the same numbers; more arithmetic, fewer and larger kernels: for GPUs).
    ``precision``: "fp32" (the default: exact, TF32 off on CUDA), "tf32", "bf16" or "fp16" (torch.autocast
    over forward and backward; ``autocast='bf16'`` says the same). ``on_forward(activations)`` is called
    once with the forward pass's activations of the chosen layers ((N, C, H, W), detached) before any
    backward pass; the targets it returns are added to ``targets`` (the explorer reads the top-5 from the
    output layer there and seeds it with the top-1 class: one forward pass for both).

    ``next_layer()`` is asked before each backward pass which layer is wanted next (the one on screen: a
    widget answers with its slider's layer); a chosen layer not yet done is done next, else forward order
    goes on. ``on_layer(name, reconstruction)`` is called as each layer is done (float32, shaped like ``x``),
    so the layer on screen can be shown before the others are computed. The result is the same in any order.
    """
    x = probe.check_input(x)
    rule = rule_name(rule) if not isinstance(rule, ReverseRule) else rule
    chosen = probe.select(layers)
    groups = rules_by_layer(rule, chosen, probe)
    mode = resolve_precision(precision, autocast)
    if channel is not None and unit is not None:
        raise IndexOutOfRangeError("Pass either channel= or unit=, not both (unit already names its channel).")
    if targets is not None and not isinstance(targets, Mapping):
        raise IndexOutOfRangeError(f"targets must be a dict {{layer: channel or class}}, got {short_repr(targets)}.")
    own = {probe.layer(name).name: c for name, c in (targets or {}).items()}
    selectors: dict[str, Selector] = {}
    for layer in chosen:
        sel = (own[layer.name], None) if layer.name in own else (channel, unit)
        selectors[layer.name] = check_selector(probe, layer, *sel)
    late = _late_targets(probe, chosen, selectors, on_forward)
    with grad_enabled(), compute_precision(x.device, mode):
        if batched and len(chosen) > 1:
            out = _all_layers_at_once(probe, x, groups, selectors, progress, late)
            if on_layer is not None:
                for l in chosen:
                    on_layer(l.name, out[l.name].float())
        else:
            out = _layer_by_layer(probe, x, groups, selectors, progress, late, next_layer, on_layer)
    return {l.name: out[l.name].float() for l in chosen}


def _late_targets(probe: ProbeCore, chosen: list[Layer], selectors: dict[str, Selector], on_forward: Callable | None
                  ) -> Callable[[dict[str, torch.Tensor]], None]:
    """What runs between the forward pass and the first backward: ``on_forward``'s targets replace the
    selectors of their layers (checked like any other)."""

    def apply(acts: dict[str, torch.Tensor]) -> None:
        if on_forward is None:
            return
        nchw = {l.name: to_nchw(acts[l.name].detach(), l.layout) for l in chosen}
        for name, c in (on_forward(nchw) or {}).items():
            layer = probe.layer(name)
            if layer.name in selectors:
                selectors[layer.name] = check_selector(probe, layer, c, None)

    return apply


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


def _layer_by_layer(probe: ProbeCore, x: torch.Tensor, groups: list[tuple[ReverseRule, list[Layer]]],
                    selectors: dict[str, Selector], progress: Callable[[int, int], None] | None,
                    late: Callable[[dict[str, torch.Tensor]], None],
                    next_layer: Callable[[], str | None] | None = None,
                    on_layer: Callable[[str, torch.Tensor], None] | None = None) -> dict[str, torch.Tensor]:
    """One forward per rule (one in all unless "auto" mixes rules), then one partial backward per layer (the one
    ``next_layer`` wants first, else forward order), each forward's graph kept until its last layer is done."""
    passes = []
    for rule, layers in groups:
        xi = x.detach().clone().requires_grad_(True)
        passes.append((xi, layers, probe.forward(xi, layers, rule)))
    late({name: a for _, _, acts in passes for name, a in acts.items()})
    for xi, layers, acts in passes:  # every layer, before any backward: a cut-off layer must not leave a half-made strip
        for l in layers:
            check_connected(l, acts[l.name], xi)
    total = len(passes) + sum(len(layers) for _, layers, _ in passes)
    done = len(passes)
    if progress is not None:
        progress(done, total)
    out: dict[str, torch.Tensor] = {}
    which = {l.name: p for p, (_, layers, _) in enumerate(passes) for l in layers}
    left = [len(layers) for _, layers, _ in passes]  # layers not yet done, per forward pass
    todo = {l.name: l for _, layers, _ in passes for l in layers}
    while todo:
        wanted = next_layer() if next_layer is not None else None
        key = _known(probe, wanted)
        l = todo.pop(key) if key in todo else todo.pop(next(iter(todo)))
        p = which[l.name]
        xi, _, acts = passes[p]
        act = acts[l.name]
        seed = from_nchw(make_seed(probe, l, to_nchw(act.detach(), l.layout), *selectors[l.name]), l.layout)
        left[p] -= 1
        (g,) = torch.autograd.grad(act, xi, grad_outputs=seed, retain_graph=left[p] > 0)
        out[l.name] = g.detach()
        if left[p] == 0:
            acts.clear()  # that forward's graph is no longer needed
        if on_layer is not None:
            on_layer(l.name, out[l.name].float())
        done += 1
        if progress is not None:
            progress(done, total)
    return out


def _known(probe: ProbeCore, name: str | None) -> str | None:
    """The probe's name for a layer a caller asks for by either of its names; None for anything else."""
    try:
        return probe.layer(name).name if isinstance(name, str) and name else None
    except Exception:  # noqa: BLE001 - a stale or foreign name from a widget only loses its priority
        return None


def _all_layers_at_once(probe: ProbeCore, x: torch.Tensor, groups: list[tuple[ReverseRule, list[Layer]]],
                        selectors: dict[str, Selector], progress: Callable[[int, int], None] | None,
                        late: Callable[[dict[str, torch.Tensor]], None]) -> dict[str, torch.Tensor]:
    """Per rule, copy j of the input (rows j*n to (j+1)*n) is seeded at layer j only; one backward for all."""
    n = x.shape[0]
    passes = []
    for rule, chosen in groups:
        xi = x.detach().repeat(len(chosen), *([1] * (x.dim() - 1))).requires_grad_(True)
        passes.append((xi, chosen, probe.forward(xi, chosen, rule)))
    late({name: a[:n] for _, _, acts in passes for name, a in acts.items()})
    if progress is not None:
        progress(1, 1 + len(passes))
    result: dict[str, torch.Tensor] = {}
    for p, (xi, chosen, acts) in enumerate(passes):
        outputs, seeds = [], []
        for j, l in enumerate(chosen):
            act = acts[l.name]
            check_connected(l, act, xi)
            rows = slice(j * n, (j + 1) * n)
            seed = torch.zeros_like(act)
            seed[rows] = from_nchw(make_seed(probe, l, to_nchw(act.detach()[rows], l.layout), *selectors[l.name]), l.layout)
            outputs.append(act)
            seeds.append(seed)
        (g,) = torch.autograd.grad(outputs, xi, grad_outputs=seeds)
        result.update({l.name: g[j * n : (j + 1) * n].detach() for j, l in enumerate(chosen)})
        if progress is not None:
            progress(2 + p, 1 + len(passes))
    return result


def check_selector(probe: ProbeCore, layer: Layer, channel: Any, unit: Any) -> Selector:
    """(channel, unit) with a class label turned into its index; IndexOutOfRangeError naming the range
    for a channel or unit the layer does not have."""
    c, h, w = layer.shape
    if isinstance(channel, str):
        channel = probe.class_index(channel, layer)
    if channel is not None:
        if not checks.whole(channel):
            what = " or a class name" if layer is probe.output_layer else ""
            raise IndexOutOfRangeError(f"channel must be a filter number{what} for layer {layer.name!r}, "
                                       f"got {short_repr(channel)}.")
        if not 0 <= channel < c:
            raise IndexOutOfRangeError(
                f"channel={channel!r} is out of range for layer {layer.name!r}: it has {c} channels, 0 to {c - 1}."
            )
        channel = int(channel)
    if unit is not None:
        if not isinstance(unit, (tuple, list)) or len(unit) != 3:
            raise IndexOutOfRangeError(f"unit must be (channel, y, x), got {short_repr(unit)}.")
        for v, n, what in zip(unit, (c, h, w), ("channel", "y", "x")):
            if not checks.whole(v) or not 0 <= v < n:
                raise IndexOutOfRangeError(
                    f"unit={tuple(unit)!r} is out of range for layer {layer.name!r} of shape (C, H, W) = "
                    f"{layer.shape}: {what} must be 0 to {n - 1}."
                )
        unit = tuple(int(v) for v in unit)
    return channel, unit


def make_seed(probe: ProbeCore, layer: Layer, act: torch.Tensor, channel: int | None, unit: Any) -> torch.Tensor:
    """The layer's activations (N, C, H, W) kept whole, for one channel, or for one unit; zero elsewhere.

    A class of the output layer is seeded with the derivative of its score (1 on an fc layer; see
    ``Probe.class_seed``), not with its signed score; a unit of it (one position of a conv head) with 1.
    """
    if channel is None and unit is None:
        return act
    is_class = layer is probe.output_layer
    if channel is not None and is_class:
        return probe.class_seed(act, channel)
    seed = torch.zeros_like(act)
    if channel is not None:
        seed[:, channel] = act[:, channel]
    else:
        k, y, x = unit
        if y >= act.shape[2] or x >= act.shape[3]:
            raise IndexOutOfRangeError(
                f"unit={tuple(unit)!r} is outside this input's map of {tuple(act.shape[2:])} positions."
            )
        seed[:, k, y, x] = 1.0 if is_class else act[:, k, y, x]
    return seed


def unit_reconstructions(probe: ProbeCore, x: torch.Tensor, layer: str, units: torch.Tensor,
                         rule: str | ReverseRule = DEFAULT_RULE) -> torch.Tensor:
    """Reconstruction of one unit per image by ``rule`` ("auto" too): image n seeded at ``units[n] = (channel, y, x)`` only.

    One forward and one backward for the whole batch; (N, 3, H, W) in input space. This is what a
    gallery of top patches shows next to each crop (Zeiler & Fergus, Fig. 2).
    """
    x = probe.check_input(x)
    (l,) = probe.select(layer)
    reverse = resolve_rule_for(rule, l, probe)
    units = torch.as_tensor(units, dtype=torch.long).reshape(-1, 3)
    if len(units) != len(x):
        raise IndexOutOfRangeError(f"units has {len(units)} rows for {len(x)} images; give one (channel, y, x) per image.")
    for u in units.tolist():
        check_selector(probe, l, None, tuple(u))
    with grad_enabled(), compute_precision(x.device, "fp32"):
        xi = x.detach().clone().requires_grad_(True)
        act = probe.forward(xi, [l], reverse)[l.name]
        check_connected(l, act, xi)
        nchw = to_nchw(act.detach(), l.layout)
        seed = torch.zeros_like(nchw)
        n = torch.arange(len(units), device=nchw.device)
        c, y, xx = (units[:, j].to(nchw.device) for j in range(3))
        seed[n, c, y, xx] = 1.0 if l is probe.output_layer else nchw[n, c, y, xx]
        (g,) = torch.autograd.grad(act, xi, grad_outputs=from_nchw(seed, l.layout))
    return g.detach()
