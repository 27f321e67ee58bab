"""Arithmetic precision of the kernels: exact float32 by default, or what a GPU can do faster.

``precision``: "fp32" (the default: float32 with TF32 off, so CUDA gives the CPU's numbers to float32
rounding), "tf32" (cuDNN's and cuBLAS's TensorFloat-32: 10-bit mantissas inside convolutions and matrix
products), "bf16" or "fp16" (torch.autocast). The TF32 switches are global in PyTorch; the kernels set them
only while they run and restore the user's settings after.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import torch

from .errors import CnnvizError, short_repr

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")


def autocast_dtype(autocast: str | torch.dtype | None) -> torch.dtype | None:
    """'bf16' / 'fp16' / a torch dtype / None -> the dtype for torch.autocast (None: full float32)."""
    if autocast is None or isinstance(autocast, torch.dtype) and autocast in (torch.bfloat16, torch.float16):
        return autocast
    if isinstance(autocast, str) and autocast.lower() in AUTOCAST_DTYPES:
        return AUTOCAST_DTYPES[autocast.lower()]
    raise CnnvizError(f"autocast={autocast!r} is not a reduced precision: use 'bf16', 'fp16' or None (float32).")


def resolve_precision(precision: str | None = None, autocast: str | torch.dtype | None = None) -> str:
    """The precision's name from ``precision=`` or the older ``autocast=`` (both given must agree)."""
    if precision is not None and (not isinstance(precision, str) or precision.lower() not in PRECISIONS):
        raise CnnvizError(f"precision must be one of {', '.join(repr(p) for p in PRECISIONS)}, got {short_repr(precision)}: "
                          f"'fp32' is exact (TF32 off), 'tf32' lets CUDA round inside convolutions, 'bf16'/'fp16' autocast.")
    dtype = autocast_dtype(autocast)
    from_autocast = None if dtype is None else ("bf16" if dtype == torch.bfloat16 else "fp16")
    chosen = precision.lower() if precision is not None else None
    if chosen is not None and from_autocast is not None and chosen != from_autocast:
        raise CnnvizError(f"precision={precision!r} and autocast={autocast!r} disagree; pass precision= alone.")
    return chosen or from_autocast or "fp32"


_flags_lock = threading.Lock()
_flags_depth = 0
_flags_saved: tuple = ()


def _read_flags() -> tuple:
    matmul, conv = torch.backends.cuda.matmul, getattr(torch.backends.cudnn, "conv", None)  # PyTorch >= 2.9 has conv
    if conv is not None and hasattr(matmul, "fp32_precision") and hasattr(conv, "fp32_precision"):
        return ("new", matmul.fp32_precision, conv.fp32_precision)
    return ("old", torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
            torch.get_float32_matmul_precision())


def _write_flags(flags: tuple) -> None:
    if flags[0] == "new":  # PyTorch >= 2.9: setting the old allow_tf32 flags warns there
        torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = flags[1:]  # type: ignore[attr-defined]  # stubs miss CudnnModule.conv
    else:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags[1:3]
        torch.set_float32_matmul_precision(flags[3])  # allow_tf32 moves it: put the user's back


def _tf32_flags(allowed: bool) -> tuple:
    if _read_flags()[0] == "new":
        mode = "tf32" if allowed else "ieee"
        return ("new", mode, mode)
    return ("old", allowed, allowed, "high" if allowed else "highest")


@contextlib.contextmanager
def tf32(allowed: bool) -> Iterator[None]:
    """cuDNN convolutions and cuBLAS matrix products with TF32 ``allowed`` or not. The switches are global:
    the first kernel to enter saves the user's settings and the last to leave restores them, so a widget's
    job on its thread and a cell on the main one never leave each other's setting behind (kernels running
    at once with different precisions share the switch: the later one's applies to both)."""
    global _flags_depth, _flags_saved
    with _flags_lock:
        if _flags_depth == 0:
            _flags_saved = _read_flags()
        _flags_depth += 1
        _write_flags(_tf32_flags(allowed))
    try:
        yield
    finally:
        with _flags_lock:
            _flags_depth -= 1
            if _flags_depth == 0:
                _write_flags(_flags_saved)


def compute_precision(device: torch.device, precision: str = "fp32") -> Any:
    """The context a kernel's arithmetic runs in on ``device``: TF32 off unless "tf32", autocast for bf16/fp16."""
    stack = contextlib.ExitStack()
    if device.type == "cuda":
        stack.enter_context(tf32(precision == "tf32"))
    if precision in ("bf16", "fp16"):
        stack.enter_context(torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision]))
    return stack
