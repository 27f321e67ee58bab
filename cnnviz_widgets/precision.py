"""Arithmetic precision of the kernels: exact float32 by default, or what a GPU can do faster.

``precision``: "fp32" (the default: float32 with TF32 off, so CUDA gives the CPU's numbers to float32
rounding), "tf32" (cuDNN's and cuBLAS's TensorFloat-32: 10-bit mantissas inside convolutions and matrix
products), "bf16" or "fp16" (torch.autocast). The TF32 switches are global in PyTorch; the kernels set them
only while they run and restore the user's settings after.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from .errors import CnnvizError

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
    from .errors import short_repr

    if precision is not None and (not isinstance(precision, str) or precision.lower() not in PRECISIONS):
        raise CnnvizError(f"precision must be one of {', '.join(repr(p) for p in PRECISIONS)}, got {short_repr(precision)}: "
                          f"'fp32' is exact (TF32 off), 'tf32' lets CUDA round inside convolutions, 'bf16'/'fp16' autocast.")
    dtype = autocast_dtype(autocast)
    from_autocast = None if dtype is None else ("bf16" if dtype == torch.bfloat16 else "fp16")
    chosen = precision.lower() if precision is not None else None
    if chosen is not None and from_autocast is not None and chosen != from_autocast:
        raise CnnvizError(f"precision={precision!r} and autocast={autocast!r} disagree; pass precision= alone.")
    return chosen or from_autocast or "fp32"


@contextlib.contextmanager
def tf32(allowed: bool) -> Iterator[None]:
    """cuDNN convolutions and cuBLAS matrix products with TF32 ``allowed`` or not, restored on exit."""
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    new_api = hasattr(matmul, "fp32_precision") and hasattr(conv, "fp32_precision")
    if new_api:  # PyTorch >= 2.9: setting the old allow_tf32 flags warns there
        saved = (matmul.fp32_precision, conv.fp32_precision)
        matmul.fp32_precision = conv.fp32_precision = "tf32" if allowed else "ieee"
    else:
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        if new_api:
            matmul.fp32_precision, conv.fp32_precision = saved
        else:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def compute_precision(device: torch.device, precision: str = "fp32") -> Any:
    """The context a kernel's arithmetic runs in on ``device``: TF32 off unless "tf32", autocast for bf16/fp16."""
    stack = contextlib.ExitStack()
    if device.type == "cuda":
        stack.enter_context(tf32(precision == "tf32"))
    if precision in ("bf16", "fp16"):
        stack.enter_context(torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision]))
    return stack


def reduced(precision: str) -> bool:
    """True when results are computed in 16 bits and must be cast back to float32."""
    return precision in ("bf16", "fp16")
