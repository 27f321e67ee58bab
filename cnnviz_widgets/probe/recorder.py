"""One forward pass that captures layer activations and, for a reverse rule, swaps rectifier backwards.

A layer's activation is its module's output, or, for convolutions and fully connected layers, the
output of the rectifier applied to it (directly or after batch-norm), whether the network calls
that rectifier as a module, functionally, as a tensor method, or in place. Everything is seen
through ``torch.overrides.TorchFunctionMode``, so no module of the user's model is replaced.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from .receptive_field import GeometryTracer
from .rectifiers import Rectifier, rectifier_spec
from .rules import Rectify, ReverseRule


PASS_THROUGH = {"batch_norm"}  # per-channel affine ops between a layer and its rectifier
_INPLACE_DUNDERS = {"__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__imod__",
                    "__ipow__", "__iand__", "__ior__", "__ixor__", "__ilshift__", "__irshift__",
                    "__setitem__"}


class StopForward(Exception):
    """Raised inside the forward once every wanted activation is final, to skip the rest."""


def _is_inplace(func: Any, args: Sequence[Any], kwargs: dict[str, Any], spec: Rectifier | None) -> bool:
    name = getattr(func, "__name__", "")
    if name in _INPLACE_DUNDERS or (name.endswith("_") and not name.endswith("__")):
        return True
    if kwargs.get("inplace") is True or "out" in kwargs:
        return True
    pos = spec.inplace_pos if spec is not None else None
    return pos is not None and len(args) > pos and args[pos] is True


def _out_of_place_call(func, args, kwargs, spec: Rectifier):
    """A closure computing the rectifier's true forward without writing into its input."""
    name = func.__name__
    rest, kw = list(args[1:]), dict(kwargs)
    if name.endswith("_"):
        fn = spec.out_of_place
    else:
        fn = func
        if "inplace" in kw:
            kw["inplace"] = False
        elif spec.inplace_pos is not None and len(args) > spec.inplace_pos:
            rest[spec.inplace_pos - 1] = False
    return lambda x: fn(x, *rest, **kw)


class ForwardRecorder(TorchFunctionMode):
    """Active during one forward: captures activations of ``wanted`` layers, optionally ready to reverse.

    The probe's forward hooks call :meth:`module_output` with each layer module's path. With a
    ``rule`` that intercepts rectifiers, every rectifier gets that rule's backward (see
    :mod:`.rules`). With a ``tracer`` the receptive-field geometry of every tensor is traced too.
    """

    def __init__(
        self,
        wanted: set[str],
        final_at_module: set[str] = frozenset(),
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
        self.rectifier_labels: set[str] = set()
        self.maxpools = 0  # max-pools run so far: their switches are what the deconvnet takes from the input
        self.switches: dict[str, int] = {}  # layer -> max-pools run up to its output
        self._pending: dict[int, tuple[str, torch.Tensor]] = {}
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
            self._pending[id(output)] = (layer, output)

    # ------------------------------------------------------------ the mode
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        spec = rectifier_spec(func, args, kwargs)
        inplace = _is_inplace(func, args, kwargs, spec)
        target = args[0] if args and isinstance(args[0], torch.Tensor) else None
        name = getattr(func, "__name__", "")
        pending = self._pending.get(id(target)) if target is not None else None
        if pending is not None and pending[1] is not target:
            pending = None
        if pending is not None and (spec is not None or name in PASS_THROUGH or inplace):
            del self._pending[id(target)]
            if spec is None and name not in PASS_THROUGH:
                pending = None  # mutated by something else: no rectifier follows the layer directly
        if inplace and target is not None:
            if spec is not None and pending is not None:
                self._held.pop(id(target), None)  # the layer is resolved: its raw output is not needed
            else:
                self._copy_on_write(target)

        if spec is not None:
            if spec.label != "ReLU":
                self.rectifier_labels.add(spec.label)
            if self.rule is not None and torch.is_grad_enabled() and target.requires_grad:
                compute = _out_of_place_call(func, args, kwargs, spec)
                result = Rectify.apply(target, compute, self.rule, inplace and not target.is_leaf)
            else:
                result = func(*args, **kwargs)
        else:
            result = func(*args, **kwargs)

        if self.tracer is not None:
            self.tracer.update(func, args, kwargs, result)
        if name in ("max_pool2d", "_max_pool2d", "max_pool2d_with_indices"):
            self.maxpools += 1
        if name in ("max_pool2d", "_max_pool2d", "max_pool2d_with_indices", "avg_pool2d"):
            self.order.append(("pool", None, id(result[0] if isinstance(result, tuple) else result)))
        if pending is not None and isinstance(result, torch.Tensor):
            layer = pending[0]
            if spec is not None:
                self.captured[layer] = result
                self.rectified.add(layer)
                self._held[id(result)] = ("captured", layer)
                self._finalize()
            elif name in PASS_THROUGH:
                self._pending[id(result)] = (layer, result)
        return result

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

