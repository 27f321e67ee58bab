"""Arguments checked where they enter: one helper per kind of value, one message style.

Every helper returns the value in the form the code uses (a plain int, a torch.device, a tensor)
or raises a CnnvizError that says "<name> must be <what>, got <value>." and, where there is one,
the fix. Kernels and the Probe call these instead of ``int(...)`` on what a user passed.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .errors import CnnvizError, DeviceUnavailableError, IndexOutOfRangeError, short_repr


def whole(value: Any) -> bool:
    """A whole number as a user means it: ints and numpy integers, not bools."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def positive_int(name: str, value: Any, what: str = "a positive whole number") -> int:
    """``value`` as an int >= 1 (numpy integers welcome; bools, floats and strings refused)."""
    if not whole(value) or int(value) < 1:
        raise CnnvizError(f"{name} must be {what}, got {short_repr(value)}.")
    return int(value)


def non_negative_int(name: str, value: Any, what: str = "a whole number, 0 or more") -> int:
    """``value`` as an int >= 0."""
    if not whole(value) or int(value) < 0:
        raise CnnvizError(f"{name} must be {what}, got {short_repr(value)}.")
    return int(value)


def number(name: str, value: Any, what: str = "a finite number") -> float:
    """``value`` as a finite float (ints, floats and numpy numbers; NaN, infinities, bools and strings refused)."""
    if not isinstance(value, (numbers.Real, np.floating, np.integer)) or isinstance(value, (bool, np.bool_)) \
            or not np.isfinite(float(value)):
        raise CnnvizError(f"{name} must be {what}, got {short_repr(value)}.")
    return float(value)


def text(name: str, value: Any, what: str = "a str") -> str:
    """``value`` as a str (None: ""); anything else refused rather than printed with str() into a figure."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CnnvizError(f"{name} must be {what}, got {short_repr(value)}.")
    return value


def side(name: str, value: Any) -> int:
    """A square input's side in pixels: a whole number >= 1 (a tuple or a fractional size is refused)."""
    if isinstance(value, (tuple, list)):
        raise CnnvizError(f"{name} must be one whole number of pixels (inputs are square, e.g. 224), "
                          f"got {short_repr(value)}.")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    value = positive_int(name, value, "a whole number of pixels, 1 or more (e.g. 224)")
    if value > MAX_SIDE:
        raise CnnvizError(f"{name} must be at most {MAX_SIDE} pixels (one picture that size is already "
                          f"{3 * 4 * MAX_SIDE ** 2 / 2**30:.0f} GiB as float32), got {value}.")
    return value


MAX_SIDE = 8192


def device(value: Any) -> torch.device:
    """None: CUDA when available, else CPU; 'cpu', 'cuda', 'cuda:1', 'mps' where they exist.

    A device this machine lacks, or one that holds no data ('meta'), raises DeviceUnavailableError.
    """
    if value is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(value)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise DeviceUnavailableError(
            f"device must be 'cpu', 'cuda', 'cuda:N', 'mps' or None, got {short_repr(value)}."
        ) from exc
    if dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceUnavailableError(
            f"device must be 'cpu', 'cuda', 'cuda:N', 'mps' or None, got {short_repr(value)}: a {dev.type!r} device "
            f"cannot run the pictures through the network."
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"device={short_repr(value)} asks for a GPU, but PyTorch sees none here (torch.cuda.is_available() is "
            f"False). Use device='cpu', or device=None to pick the GPU only when there is one."
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceUnavailableError(
            f"device={short_repr(value)}: this machine has {torch.cuda.device_count()} GPU(s), numbered from 0."
        )
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if not (mps is not None and mps.is_available()):
            raise DeviceUnavailableError(f"device={short_repr(value)}: Apple's MPS backend is not available here; "
                                         f"use 'cpu'.")
    return dev


def per_channel(name: str, values: Any, channels: int, positive: bool = False) -> tuple[float, ...]:
    """``mean`` or ``std``: one finite number per input channel (one number is repeated to every channel).

    ``positive``: every value must be above 0 (a standard deviation divides).
    """
    try:
        if isinstance(values, (str, bytes)):
            raise TypeError
        flat = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    except (TypeError, ValueError):
        flat = None
    if flat is None or flat.size == 0 or (flat.ndim > 1 and flat.size not in (1, channels)):
        raise CnnvizError(f"{name} must be {channels} number(s), one per input channel, got {short_repr(values)}.")
    flat = flat.reshape(-1)  # a probe's own (1, C, 1, 1) mean is C numbers too
    if flat.size == 1:
        flat = np.repeat(flat, channels)
    if flat.size != channels:
        raise CnnvizError(
            f"{name} must have one value per input channel: the network takes {channels} channel(s), "
            f"got {flat.size} value(s) {short_repr(values)}."
        )
    if not np.isfinite(flat).all():
        raise CnnvizError(f"{name} must be finite numbers, got {short_repr(values)}.")
    if positive and not (flat.astype(np.float32) > 0).all():  # in float32, where pictures are divided by it
        raise CnnvizError(f"{name} must be above 0 for every channel (pictures are divided by it), "
                          f"got {short_repr(values)}.")
    return tuple(float(v) for v in flat)


def indices(values: Any, n: int, what: str = "indices") -> list[int]:
    """Picture indices into a set of ``n``: whole numbers 0..n-1, at least one, none repeated."""
    if isinstance(values, (np.ndarray, torch.Tensor)) and values.ndim != 1:
        raise CnnvizError(f"{what} must be a flat list of picture numbers, got {short_repr(values)}.")
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray, torch.Tensor, range)):
        raise CnnvizError(f"{what} must be a list of picture numbers, got {short_repr(values)}.")
    out = []
    for v in (values.tolist() if isinstance(values, (np.ndarray, torch.Tensor)) else values):
        if not whole(v):
            raise CnnvizError(f"{what} must hold whole picture numbers, got {short_repr(v)} in {short_repr(values)}.")
        if not 0 <= int(v) < n:
            raise IndexOutOfRangeError(f"picture {int(v)} in {what} is out of range: the set has {n} pictures, "
                                       f"0 to {n - 1}.")
        out.append(int(v))
    if not out:
        raise CnnvizError(f"{what} is empty: it must name at least one picture (None means all {n}).")
    if len(set(out)) != len(out):
        seen, twice = set(), []
        for v in out:
            if v in seen and v not in twice:
                twice.append(v)
            seen.add(v)
        raise CnnvizError(f"{what} names picture(s) {short_repr(twice)} more than once; each picture counts once, "
                          f"so give each index once.")
    return out


def index(name: str, value: Any, n: int, count: str = "") -> int:
    """One index ``0 <= value < n`` (numpy integers welcome); ``count`` says what there are n of, for the
    message ("600 units were sampled")."""
    if not whole(value):
        raise IndexOutOfRangeError(f"{name} must be a whole number, 0 to {n - 1}, got {short_repr(value)}.")
    if not 0 <= int(value) < n:
        raise IndexOutOfRangeError(f"{name} {int(value)} is out of range: {count or f'there are {n}'} "
                                   f"(0 to {n - 1}).")
    return int(value)
