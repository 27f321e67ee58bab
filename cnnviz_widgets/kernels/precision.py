"""Reduced precision for the kernels: the ``autocast=`` option's values and the context it runs in."""
from __future__ import annotations

import contextlib
from typing import Any

import torch

from ..errors import CnnvizError

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


def autocast_dtype(autocast: str | torch.dtype | None) -> torch.dtype | None:
    """'bf16' / 'fp16' / a torch dtype / None -> the dtype for torch.autocast (None: full float32)."""
    if autocast is None or isinstance(autocast, torch.dtype) and autocast in (torch.bfloat16, torch.float16):
        return autocast
    if isinstance(autocast, str) and autocast.lower() in AUTOCAST_DTYPES:
        return AUTOCAST_DTYPES[autocast.lower()]
    raise CnnvizError(f"autocast={autocast!r} is not a reduced precision: use 'bf16', 'fp16' or None (float32).")


def precision(device: torch.device, dtype: torch.dtype | None) -> Any:
    """torch.autocast for ``dtype`` on ``device``, or nothing when dtype is None."""
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
