"""Context managers that leave the user's model exactly as they found it, on any exit."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping

import torch
from torch import nn


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
