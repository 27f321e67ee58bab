"""One forward pass that captures layer activations and, for a reverse rule, swaps rectifier backwards.

A layer's activation is its module's output, or, for convolutions and fully connected layers, the
output of the rectifier applied to it, whatever lies between the two: batch, group, instance, layer or
RMS norm, a per-channel scale or bias (FrozenBatchNorm2d, layer scale), permutes that undo each other
(a channels-last layer norm). The rectifier may be a module, functional, a tensor method or in place
(see :mod:`.rectifiers` for what counts as one). Everything is seen through
``torch.overrides.TorchFunctionMode``, so no module of the user's model is replaced.
"""
from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from .receptive_field import GeometryTracer
from .rectifiers import MaskTracker, is_inplace_call, match_rectifier
from .rules import Rectify, ReverseRule

NORMS = {"batch_norm", "group_norm", "instance_norm", "layer_norm", "rms_norm"}  # normalise, keep the shape
CHANNEL_NORMS = {"batch_norm", "group_norm", "instance_norm"}  # these need the channels at dim 1
AFFINE = {"mul", "mul_", "multiply", "add", "add_", "sub", "sub_", "subtract", "rsub", "div", "div_", "divide",
          "true_divide", "__mul__", "__rmul__", "__add__", "__radd__", "__sub__", "__rsub__", "__truediv__",
          "__imul__", "__iadd__", "__isub__", "__itruediv__"}
DIVIDES = {"div", "div_", "divide", "true_divide", "__truediv__", "__itruediv__"}  # only x / scale is affine in x
SAME = {"contiguous", "clone"}
PASS_THROUGH = NORMS | AFFINE | SAME | {"permute"}  # ops a pending layer may cross on its way to the rectifier
_INPLACE_DUNDERS = {"__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__imod__",
                    "__ipow__", "__iand__", "__ior__", "__ixor__", "__ilshift__", "__irshift__",
                    "__setitem__"}
_POOLS = ("max_pool2d", "_max_pool2d", "max_pool2d_with_indices")

Perm = tuple[int, ...]  # which dim of the layer's output each dim of a pending tensor is


class StopForward(Exception):
    """Raised inside the forward once every wanted activation is final, to skip the rest."""


def _is_inplace(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
    name = getattr(func, "__name__", "")
    return name in _INPLACE_DUNDERS or is_inplace_call(name, args, kwargs, None)


def _per_channel(other: Any, x: torch.Tensor, channel: int) -> bool:
    """``other`` varies along ``x``'s channel dim only (per image at most): a scale or bias, not a map."""
    if not isinstance(other, torch.Tensor) or other.ndim > x.ndim or other.ndim == 0:
        return False
    shape = (1,) * (x.ndim - other.ndim) + tuple(other.shape)
    return shape[channel] == x.shape[channel] and all(
        n == 1 or (d == 0 and n == x.shape[0] and x.ndim > 2) for d, n in enumerate(shape) if d != channel)


def carried_perm(name: str, args: Sequence[Any], kwargs: dict[str, Any], index: int, perm: Perm) -> Perm | None:
    """The perm a pending tensor at ``args[index]`` has after this op, or None when the op ends its layer's
    way to a rectifier (a residual add, a pool, a conv, a scalar shift as in ``relu6(x + 3)``)."""
    x = args[index]
    if name in NORMS:
        if index != 0 or name in CHANNEL_NORMS and perm[1:2] != (1,):
            return None
        return perm
    if name in SAME:
        return perm
    if name == "permute":
        dims = args[1:] if len(args) > 2 or len(args) == 2 and isinstance(args[1], int) else \
            (args[1] if len(args) > 1 else kwargs.get("dims", ()))
        dims = [int(d) % x.ndim for d in dims]
        return tuple(perm[d] for d in dims) if index == 0 and sorted(dims) == list(range(x.ndim)) else None
    if name in AFFINE and len(args) >= 2 and index in (0, 1) and 1 in perm:
        if name in DIVIDES and index != 0:
            return None
        other = args[1 - index]
        return perm if _per_channel(other, x, perm.index(1)) else None
    return None


class ForwardRecorder(TorchFunctionMode):
    """Active during one forward: captures activations of ``wanted`` layers, optionally ready to reverse.

    The probe's forward hooks call :meth:`module_output` with each layer module's path. With a
    ``rule`` that intercepts rectifiers, every rectifier gets that rule's backward (see
    :mod:`.rules`). With a ``tracer`` the receptive-field geometry of every tensor is traced too.
    """

    def __init__(
        self,
        wanted: set[str],
        final_at_module: AbstractSet[str] = frozenset(),
        rule: ReverseRule | None = None,
        tracer: GeometryTracer | None = None,
        stop_early: bool = False,
    ) -> None:
        super().__init__()
        self.wanted = wanted
        self.final_at_module = final_at_module  # layers whose module output is their activation
        self.rule = rule if rule is not None and rule.intercepts else None
        self.tracer = tracer
        self.stop_early = stop_early
        self.captured: dict[str, torch.Tensor] = {}
        self.rectified: set[str] = set()  # layers whose activation came from a rectifier
        self.module_out: dict[str, torch.Tensor] = {}
        self.order: list[tuple[str, str | None, int]] = []  # (kind, layer name, id of output), in order
        self.rectifier_labels: set[str] = set()  # the non-ReLU rectifiers met (labels naming op and arguments)
        self.unfaithful: set[str] = set()  # of those, the ones where the guided mask has no meaning
        self._masks = MaskTracker()  # x > 0 masks, so that x * (x > 0) is seen as a ReLU
        self.maxpools = 0  # max-pools run so far: their switches are what the deconvnet takes from the input
        self.switches: dict[str, int] = {}  # layer -> max-pools run up to its output
        self._pending: dict[int, tuple[str, torch.Tensor, Perm]] = {}  # tensors on a layer's way to its rectifier
        self._held: dict[int, tuple[str, str]] = {}  # id -> (store, layer) of tensors we keep

    # ------------------------------------------------------------ called by module hooks
    def module_output(self, layer: str, output: Any) -> None:
        if not isinstance(output, torch.Tensor) or layer in self.module_out:
            return  # a module called twice keeps its first call
        self.module_out[layer] = output
        self.switches[layer] = self.maxpools
        if self.tracer is not None:
            self.tracer.tag(output, layer)
        self.order.append(("layer", layer, id(output)))
        self._held[id(output)] = ("module_out", layer)
        if layer in self.final_at_module:
            self._finalize()
        else:
            self._pending[id(output)] = (layer, output, tuple(range(output.ndim)))

    # ------------------------------------------------------------ the mode
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        m = match_rectifier(func, args, kwargs, self._masks)
        if m is not None:
            target, inplace = args[m.index], m.inplace
            pending = self._take_pending(target)
        else:
            target = args[0] if args and isinstance(args[0], torch.Tensor) else None
            inplace = _is_inplace(func, args, kwargs)
            pending = self._carry(name, args, kwargs, inplace)
        if inplace and target is not None:
            if m is not None and pending is not None:
                self._held.pop(id(target), None)  # the layer is resolved: its raw output is not needed
            else:
                self._copy_on_write(target)

        if m is not None:
            if m.label != "ReLU":
                self.rectifier_labels.add(m.label)
            if not m.faithful:
                self.unfaithful.add(m.label)
            if self.rule is not None and torch.is_grad_enabled() and target.requires_grad:
                result = Rectify.apply(target, m.compute, self.rule, inplace and not target.is_leaf)
            else:
                result = func(*args, **kwargs)
        else:
            result = func(*args, **kwargs)
            self._masks.note(name, args, kwargs, result)
        self._masks.note_result(name, result)

        if self.tracer is not None:
            self.tracer.update(func, args, kwargs, result)
        if name in _POOLS:
            self.maxpools += 1
        if name in _POOLS or name == "avg_pool2d":
            self.order.append(("pool", None, id(result[0] if isinstance(result, tuple) else result)))
        if pending is not None and isinstance(result, torch.Tensor):
            layer, perm = pending
            if m is None:
                self._pending[id(result)] = (layer, result, perm)
            elif perm == tuple(range(len(perm))):  # back in the layer's own layout
                self.captured[layer] = result
                self.rectified.add(layer)
                self._held[id(result)] = ("captured", layer)
                self._finalize()
        return result

    def _take_pending(self, t: Any) -> tuple[str, Perm] | None:
        """(layer, perm) of a pending tensor, no longer pending; None if ``t`` is not one."""
        entry = self._pending.get(id(t)) if isinstance(t, torch.Tensor) else None
        if entry is None or entry[1] is not t:
            return None
        del self._pending[id(t)]
        return entry[0], entry[2]

    def _carry(self, name: str, args: Sequence[Any], kwargs: dict[str, Any], inplace: bool
               ) -> tuple[str, Perm] | None:
        """(layer, perm) the result of a non-rectifier op carries on toward its layer's rectifier, or None.
        A pending tensor changed in place by anything else ends its layer's wait; used out of place by
        anything else (a residual add, the next conv), it stays pending."""
        for index in (0, 1) if name in AFFINE else (0,):
            t = args[index] if len(args) > index else None
            entry = self._pending.get(id(t)) if isinstance(t, torch.Tensor) else None
            if entry is None or entry[1] is not t:
                continue
            perm = carried_perm(name, args, kwargs, index, entry[2]) if name in PASS_THROUGH else None
            if perm is not None and (index == 0 or not inplace):
                del self._pending[id(t)]
                return entry[0], perm
            if inplace and index == 0:
                del self._pending[id(t)]  # mutated by something else: no rectifier follows the layer directly
        return None

    # ------------------------------------------------------------ bookkeeping
    def _copy_on_write(self, target: torch.Tensor) -> None:
        """Clone a tensor we hold before an in-place op changes it (keeps its autograd history)."""
        held = self._held.pop(id(target), None)
        if held is None:
            return
        store, layer = held
        table = self.captured if store == "captured" else self.module_out
        if table.get(layer) is target:
            table[layer] = target.clone()
            if self.tracer is not None:  # the clone is made here, unseen by the tracer: it has the same field
                self.tracer.alias(table[layer], target)

    def _finalize(self) -> None:
        if self.stop_early and self.wanted and all(
            w in self.captured or (w in self.final_at_module and w in self.module_out) for w in self.wanted
        ):
            raise StopForward

    def activations(self) -> dict[str, torch.Tensor]:
        """Each wanted layer's activation: the rectifier output if one followed, else the module output."""
        out = {}
        for layer in self.module_out:
            out[layer] = self.captured.get(layer, self.module_out[layer])
        return out

