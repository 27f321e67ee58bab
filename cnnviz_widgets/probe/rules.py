"""Reverse rules: how a reconstruction crosses each rectifier on its way back to the pixels.

Every rule takes the same path back (transposed filters for conv and fc, max-pool switches, the
ordinary linear backward of everything else); they differ only at the rectifiers the probe
intercepts (ReLU as a module, functional or in place, ReLU6, LeakyReLU, SiLU, GELU, Hardswish, ...):

- ``deconvnet`` (Zeiler & Fergus 2014; the paper): ``relu(signal)``. Nothing of the input but the
  seed (the layer's activations) and the max-pool switches is used, so the deep layers of a network
  without max-pools give much the same picture for every image.
- ``guided`` (Springenberg et al. 2015, guided backpropagation): ``relu(signal) * (forward input > 0)``.
- ``gradient`` (Simonyan et al. 2013, saliency): the ordinary backward.

A new rule is one subclass of :class:`ReverseRule` added to ``RULES``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch

from ..errors import CnnvizError


class ReverseRule:
    """The backward a rule gives every rectifier; ``None`` from :meth:`save` keeps nothing of the forward."""

    name: ClassVar[str]
    title: ClassVar[str]  # a short line for selectors and captions
    intercepts: ClassVar[bool] = True  # False: rectifiers keep their own backward

    def save(self, out: torch.Tensor) -> torch.Tensor | None:
        """What the backward needs of the rectifier's forward (its output; None: nothing)."""
        return None

    def backward(self, grad: torch.Tensor, saved: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"ReverseRule({self.name!r})"


class Deconvnet(ReverseRule):
    name = "deconvnet"
    title = "deconvnet (Zeiler & Fergus): relu of the signal"

    def backward(self, grad: torch.Tensor, saved: torch.Tensor | None) -> torch.Tensor:
        return grad.clamp_min(0)


class Guided(ReverseRule):
    name = "guided"
    title = "guided backprop (Springenberg et al.): relu of the signal where the input was positive"

    def save(self, out: torch.Tensor) -> torch.Tensor:
        # every rectifier intercepted (ReLU, ReLU6, LeakyReLU, SiLU, GELU, Hardswish, ELU, Mish) is positive
        # exactly where its input is, so the output serves as the mask: no copy, and the next layer keeps it anyway
        return out

    def backward(self, grad: torch.Tensor, saved: torch.Tensor | None) -> torch.Tensor:
        return torch.ops.aten.threshold_backward(grad, saved, 0).clamp_min_(0)


class Gradient(ReverseRule):
    name = "gradient"
    title = "gradient (Simonyan et al. saliency): the ordinary backward"
    intercepts = False


RULES: dict[str, ReverseRule] = {r.name: r for r in (Deconvnet(), Guided(), Gradient())}
DEFAULT_RULE = "deconvnet"


def resolve_rule(rule: str | ReverseRule | None) -> ReverseRule:
    """The ReverseRule called ``rule`` (None: the paper's deconvnet), or a CnnvizError listing the rules."""
    if rule is None:
        return RULES[DEFAULT_RULE]
    if isinstance(rule, ReverseRule):
        return rule
    if isinstance(rule, str) and rule.lower() in RULES:
        return RULES[rule.lower()]
    raise CnnvizError(f"rule={rule!r} is not a reverse rule; use one of {', '.join(repr(r) for r in RULES)}.")


class Rectify(torch.autograd.Function):
    """A rectifier's true forward with the rule's backward (out of place, or in place on ``x``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor], rule: ReverseRule,  # noqa: D102
                inplace: bool) -> torch.Tensor:
        ctx.rule = rule
        if inplace:
            ctx.mark_dirty(x)
            out = x.copy_(compute(x))
        else:
            out = compute(x)
        saved = rule.save(out)
        if saved is not None:
            ctx.save_for_backward(saved)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[Any, ...]:  # noqa: D102
        saved = ctx.saved_tensors[0] if ctx.saved_tensors else None
        return ctx.rule.backward(grad, saved), None, None, None
