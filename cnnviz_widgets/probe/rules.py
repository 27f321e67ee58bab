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

``"auto"`` is no rule of its own but a choice per layer (:func:`resolve_rule_for`), the widgets' and figures'
default (``WIDGET_RULE``): the deconvnet where max-pool switches lie below the layer, and in the layers before a
network's first max-pool (the paper's first block, which the paper draws by the deconvnet too); guided elsewhere,
i.e. on networks without max-pools (EfficientNet, MobileNet), whose deep layers the deconvnet would draw alike
for every image. VGG16, both AlexNets and ResNets (a max-pool in the stem) thus get the deconvnet everywhere,
exactly as under ``rule="deconvnet"``. ``probe.reconstruct`` takes ``"auto"`` too, but its default stays the
paper's deconvnet (``DEFAULT_RULE``).

A new rule is one subclass of :class:`ReverseRule` added to ``RULES``; it joins every selector (the widgets read
:func:`rule_options` when they are made).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch

from ..errors import CnnvizError, short_repr


class ReverseRule:
    """The backward a rule gives every rectifier; ``None`` from :meth:`save` keeps nothing of the forward."""

    name: ClassVar[str]
    title: ClassVar[str] = ""  # a short line for selectors and captions (the name where empty)
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
        assert saved is not None  # reads_input: the mask save() made
        return torch.where(saved, grad, 0).clamp_min_(0)


class Gradient(ReverseRule):
    name = "gradient"
    title = "gradient (Simonyan et al. saliency): the ordinary backward"
    intercepts = False


RULES: dict[str, ReverseRule] = {r.name: r for r in (Deconvnet(), Guided(), Gradient())}
DEFAULT_RULE = "deconvnet"  # probe.reconstruct's: the paper's
AUTO = "auto"
AUTO_TITLE = ("auto: the deconvnet where max-pool switches lie below the layer (the paper's networks), "
              "guided elsewhere")
WIDGET_RULE = AUTO  # the widgets' and figures' default


def _choices() -> str:
    return ", ".join(repr(r) for r in (AUTO, *RULES))


def resolve_rule(rule: str | ReverseRule | None) -> ReverseRule:
    """The ReverseRule called ``rule`` (None: the paper's deconvnet), or a CnnvizError listing the rules.
    ``"auto"`` depends on the layer: :func:`resolve_rule_for` resolves it."""
    if rule is None:
        return RULES[DEFAULT_RULE]
    if isinstance(rule, ReverseRule):
        return checked_rule(rule)
    if isinstance(rule, str) and rule.lower() in RULES:
        return checked_rule(RULES[rule.lower()])  # a rule registered there is a user's too
    if isinstance(rule, str) and rule.lower() == AUTO:
        raise CnnvizError("rule='auto' picks a rule per layer; resolve it with resolve_rule_for(rule, layer, probe).")
    raise CnnvizError(f"rule={rule!r} is not a reverse rule; use one of {_choices()}.")


def checked_rule(rule: ReverseRule) -> ReverseRule:
    """A ReverseRule a user wrote, checked where it is first used, so that what is wrong with it is said in its
    terms rather than by autograd later: a ``name`` (a non-empty str) and, where it intercepts rectifiers, its own
    ``backward``. What its methods return is checked as they run (:func:`rule_result`)."""
    name = getattr(rule, "name", None)
    if not isinstance(name, str) or not name:
        raise CnnvizError(f"The reverse rule {type(rule).__name__} has no name: give the class one, "
                          f"name = 'my-rule' (a non-empty str), which selectors and captions show.")
    if rule.intercepts and type(rule).backward is ReverseRule.backward:
        raise CnnvizError(f"The reverse rule {name!r} ({type(rule).__name__}) defines no backward(self, grad, saved): "
                          f"write one that returns the signal passed back through a rectifier (a tensor shaped like "
                          f"grad), or set intercepts = False to keep the ordinary backward.")
    return rule


def _builtin(rule: ReverseRule) -> bool:
    return type(rule) in (Deconvnet, Guided, Gradient)


def rule_result(rule: ReverseRule, method: str, value: Any, like: torch.Tensor, none_ok: bool = False) -> Any:
    """What a user's rule returned from ``method`` ("save" or "backward"), checked: a tensor (or None, where
    ``none_ok``) with ``like``'s shape and only finite values; else a CnnvizError naming the rule and the fault (a
    NaN picture, or autograd's "not used in the graph", is what it would otherwise give)."""
    if _builtin(rule) or (none_ok and value is None):
        return value
    where = f"The reverse rule {rule.name!r}: {method}()"
    if not isinstance(value, torch.Tensor):
        raise CnnvizError(f"{where} returned {short_repr(value)}; it must return "
                          + ("a tensor (what backward needs of the input) or None." if none_ok else
                             f"a tensor shaped like grad {tuple(like.shape)}."))
    if method == "backward":
        if value.shape != like.shape:
            raise CnnvizError(f"{where} returned a tensor of shape {tuple(value.shape)} for a signal of shape "
                              f"{tuple(like.shape)}: it must return one shaped like grad.")
        if not bool(torch.isfinite(value).all()):
            raise CnnvizError(f"{where} returned NaN or infinite values: no picture can show them. Check its "
                              f"arithmetic (a division by zero?).")
    return value


def rule_name(rule: str | ReverseRule | None) -> str:
    """``rule`` checked, as a name: "auto" or one of ``RULES`` (None: the paper's deconvnet); a CnnvizError
    listing them for anything else."""
    if isinstance(rule, str) and rule.lower() == AUTO:
        return AUTO
    return resolve_rule(rule).name


def is_auto(rule: Any) -> bool:
    return isinstance(rule, str) and rule.lower() == AUTO


def auto_rule(layer: Any, probe: Any) -> ReverseRule:
    """What ``"auto"`` draws ``layer`` of ``probe`` by: the deconvnet where max-pool switches lie below the layer
    (``layer.switches``) or where the layer comes before the network's first layer that has them, when that first
    max-pool closes a stem (at most ``STEM_CONVS`` convolutions below it: the first block of VGG16 and the AlexNets,
    shallow enough that the seed itself carries the picture); guided elsewhere (a network without max-pools, a
    branch that passes none, or deep layers before a late pooling head)."""
    if layer.switches:
        return RULES["deconvnet"]
    layers = list(getattr(probe, "layers", ()))
    first = next((i for i, l in enumerate(layers) if l.switches), None)
    if first is not None and sum(l.kind == "conv" for l in layers[:first]) <= STEM_CONVS \
            and any(l.name == layer.name for l in layers[:first]):
        return RULES["deconvnet"]
    return RULES["guided"]


STEM_CONVS = 3  # VGG's first block has 2 convolutions, AlexNet's and ResNet's stems 1


def resolve_rule_for(rule: str | ReverseRule | None, layer: Any, probe: Any) -> ReverseRule:
    """The ReverseRule that draws ``layer`` of ``probe`` under ``rule``: :func:`auto_rule` for "auto", else
    :func:`resolve_rule`."""
    return auto_rule(layer, probe) if is_auto(rule) else resolve_rule(rule)


def rules_by_layer(rule: str | ReverseRule | None, layers: Iterable[Any], probe: Any
                   ) -> list[tuple[ReverseRule, list[Any]]]:
    """``layers`` grouped by the rule that draws them (in order of first appearance, each group in the given
    order): one forward pass per group."""
    groups: dict[str, tuple[ReverseRule, list[Any]]] = {}
    for layer in layers:
        r = resolve_rule_for(rule, layer, probe)
        groups.setdefault(r.name, (r, []))[1].append(layer)
    return list(groups.values())


def drawn_by(rule: str | ReverseRule | None, layer: Any, probe: Any) -> str:
    """What a caption says drew ``layer``'s picture: "guided (auto)" under "auto", "deconvnet" otherwise."""
    name = resolve_rule_for(rule, layer, probe).name
    return f"{name} (auto)" if is_auto(rule) else name


def rule_words(rule: str | ReverseRule | None, layers: Iterable[Any], probe: Any) -> str:
    """The rule that drew ``layers``, in words for a title: "deconvnet", "auto: guided", or "auto: deconvnet for
    c1, c2; guided for c3" where "auto" drew them by different rules."""
    if not is_auto(rule):
        return resolve_rule(rule).name
    groups = rules_by_layer(rule, layers, probe)
    if len(groups) == 1:
        return f"auto: {groups[0][0].name}"
    return "auto: " + "; ".join(f"{r.name} for {', '.join(l.name for l in ls)}" for r, ls in groups)


def rule_options() -> list[list[str]]:
    """[name, title] of "auto" and of every rule in ``RULES`` now (one registered later included): a selector's
    options, "auto" first."""
    return [[AUTO, AUTO_TITLE]] + [[key, getattr(r, "title", "") or key] for key, r in RULES.items()]


class Rectify(torch.autograd.Function):
    """A rectifier's true forward with the rule's backward (out of place, or in place on ``x``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor], rule: ReverseRule,  # noqa: D102
                inplace: bool) -> torch.Tensor:
        ctx.rule = rule
        saved = rule_result(rule, "save", rule.save(x), x, none_ok=True)  # before an in-place op overwrites x
        if inplace:
            ctx.mark_dirty(x)
            out = x.copy_(compute(x))
        else:
            out = compute(x)
        if saved is not None:
            ctx.save_for_backward(saved)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[Any, ...]:  # noqa: D102
        saved = ctx.saved_tensors[0] if ctx.saved_tensors else None
        return rule_result(ctx.rule, "backward", ctx.rule.backward(grad, saved), grad), None, None, None
