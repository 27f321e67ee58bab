"""Reverse rules: how a reconstruction crosses each rectifier on its way back to the pixels.

Every rule takes the same path back (transposed filters for conv and fc, max-pool switches, the
ordinary linear backward of everything else); they differ only at the rectifiers the probe
intercepts (every op :mod:`.rectifiers` lists: the ReLU family however it is written, clamp at zero,
maximum with zero, threshold at zero, ``x * (x > 0)``, and the rectifier-like activations):

- ``deconvnet`` (Zeiler & Fergus 2014; the paper): ``relu(signal)``. Nothing of the input but the
  seed (the layer's activations) and the max-pool switches is used, so the deep layers of a network
  without max-pools give much the same picture for every image.
- ``guided`` (Springenberg et al. 2015, guided backpropagation): ``relu(signal) * (forward input > 0)``,
  the input's sign kept as a bool mask (a later in-place change of the op's output cannot reach it).
- ``gradient`` (Simonyan et al. 2013, saliency): the ordinary backward.

Other activations than ReLU are read as the ReLU they approximate by both rules (see
:mod:`.rectifiers` for each op, and for those where the guided mask has no meaning: a warning names them).
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
    reads_input: ClassVar[bool] = False  # True: the backward uses the sign of the rectifier's input

    def save(self, x: torch.Tensor) -> torch.Tensor | None:
        """What the backward needs of the rectifier's input ``x``, taken before the op runs (None: nothing).
        Never ``x`` itself nor the op's output: the network may change either in place later."""
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

    reads_input = True

    def save(self, x: torch.Tensor) -> torch.Tensor:
        # the input's sign as a new bool tensor: the output would serve for the ReLU family, but the network
        # may change it in place later (EfficientNetV2's residual +=), and Softplus or a negative slope is
        # positive where the input is not
        return x > 0

    def backward(self, grad: torch.Tensor, saved: torch.Tensor | None) -> torch.Tensor:
        return torch.where(saved, grad, 0).clamp_min_(0)


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
            saved = rule.save(x)  # before the input is overwritten
            ctx.mark_dirty(x)
            out = x.copy_(compute(x))
        else:
            saved = rule.save(x)
            out = compute(x)
        if saved is not None:
            ctx.save_for_backward(saved)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[Any, ...]:  # noqa: D102
        saved = ctx.saved_tensors[0] if ctx.saved_tensors else None
        return ctx.rule.backward(grad, saved), None, None, None
