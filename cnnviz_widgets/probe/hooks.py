"""Context managers that leave the user's model exactly as they found it, on any exit."""
from __future__ import annotations

import contextlib
import copy
import itertools
from collections.abc import Callable, Iterator, Mapping

import torch
from torch import nn

from ..errors import warn


def shared_copy(model: nn.Module) -> nn.Module:
    """A module tree of its own whose parameters and buffers are the model's very tensors.

    Hooks, train/eval flags and attributes set on it never reach the user's object (a cell may run the model
    while a widget's pass runs the copy), while weights the user trains or loads in place are shared. Modules the
    user replaces or hooks added after the copy are not seen. A model that cannot be copied is used itself, with a
    warning: then a cell and a widget share hooks for the length of a pass.
    """
    memo: dict[int, object] = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    try:
        return copy.deepcopy(model, memo)
    except Exception as exc:  # a module holding a lock, a file or a generator
        warn(f"{type(model).__name__} cannot be copied ({type(exc).__name__}: {exc}), so the probe hooks your "
                      f"model object itself: while a widget works, running it in a cell may disturb both.", stacklevel=4)
        return model


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode and restore each one's own training flag afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield model
    finally:
        for m, training in flags:
            m.training = training


@contextlib.contextmanager
def forward_hooks(hooks: Mapping[nn.Module, Callable]) -> Iterator[None]:
    """Register a forward hook per module; every handle is removed on exit, interrupts included."""
    handles = []
    try:
        for module, fn in hooks.items():
            handles.append(module.register_forward_hook(fn))
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def grad_enabled() -> Iterator[None]:
    """Autograd on even inside a caller's ``torch.no_grad()`` or ``inference_mode()``."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def hook_count(model: nn.Module) -> int:
    """Forward, pre-forward and backward hooks on all submodules (used by the hygiene tests)."""
    total = 0
    for m in model.modules():
        total += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        total += len(getattr(m, "_backward_pre_hooks", {}))
    return total
