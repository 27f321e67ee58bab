"""Affine field arithmetic for the field tracer: sliding windows (convs, pools), transposed convs,
interpolation, pads and slices, each turning the Geometry of its input into that of its output."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction
from typing import Any

import torch

from .field_ops import UNKNOWN, Geometry, mirrored_pad, window_reads_mirror

# how many input cells beyond floor(source position) each interpolation mode reads: (before, after)
_INTERP_REACH = {"nearest": (0, 0), "nearest-exact": (0, 0), "bilinear": (0, 1), "linear": (0, 1),
                 "bicubic": (1, 2), "area": (0, 1)}


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def _arg(args: Sequence[Any], kwargs: dict[str, Any], pos: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[pos] if len(args) > pos else default


def _geometry(dims, size, stride, offset) -> Geometry:
    return Geometry(tuple(dims), tuple(Fraction(v) for v in size), tuple(Fraction(v) for v in stride),
                    tuple(Fraction(v) for v in offset))


def _axes_of(g: Geometry, ndim: int) -> tuple[int, int] | None:
    """Which geometry axis each of a window's two tensor axes (dims ndim-2, ndim-1) is: (0, 1), or (1, 0)
    after a transpose; None when the spatial dims are not the last two (the window slides over others)."""
    if g.dims == (ndim - 2, ndim - 1):
        return (0, 1)
    if g.dims == (ndim - 1, ndim - 2):
        return (1, 0)
    return None


def _grow(g: Geometry, kernel, stride, padding, dilation, out: torch.Tensor,
          input_hw: tuple[int, int] | None = None) -> Geometry | str:
    """Geometry after a sliding window (conv or pool) over a tensor of geometry ``g``; kernel, stride, padding
    and dilation are per tensor axis, mapped to the geometry's axes (which a transpose may have swapped)."""
    axes = _axes_of(g, out.ndim)
    if axes is None:
        return UNKNOWN
    if g.whole is not None:
        return g
    if g.mirror is not None:
        if not window_reads_mirror(g, kernel, stride, padding, dilation, (out.shape[-2], out.shape[-1]), axes, input_hw):
            return UNKNOWN
        g = replace(g, mirror=None)
    size, strd, off = list(g.size), list(g.stride), list(g.offset)
    for ta in range(2):
        a = axes[ta]
        k_eff = dilation[ta] * (kernel[ta] - 1) + 1
        size[a] = g.size[a] + (k_eff - 1) * g.stride[a]
        strd[a] = g.stride[a] * stride[ta]
        off[a] = g.offset[a] - padding[ta] * g.stride[a]
    return replace(g, size=tuple(size), stride=tuple(strd), offset=tuple(off))


def _covered(g: Geometry, dims, parts) -> Geometry:
    """A Geometry from per-axis (size, stride, offset, exact) parts; inexact if ``g`` or any part is."""
    size, stride, offset, exact = zip(*parts)
    return replace(_geometry(dims, size, stride, offset), exact=g.exact and all(exact))


def _covering(g: Geometry, a: int, scale: Fraction, period: int, reads) -> tuple | None:
    """Axis ``a`` after an op whose output cell j reads input cells ``reads(j) = (first, last)`` (or None:
    none), a pattern that repeats every ``period`` cells while moving ``scale * period`` input cells. The
    field returned is the smallest affine one (stride ``scale`` input cells) that holds every output
    cell's field; where the cells' fields differ (upsampling), some are smaller than it, and the fourth
    value, whether it is exact for every cell, is False."""
    spans = [(r[0] - scale * j, r[1] - scale * j) for j in range(period) if (r := reads(j)) is not None]
    if not spans:
        return None
    first = min(lo for lo, _ in spans)
    last = max(hi for _, hi in spans)
    exact = len(spans) == period and all(span == (first, last) for span in spans)
    return (g.size[a] + (last - first) * g.stride[a], g.stride[a] * scale, g.offset[a] + first * g.stride[a], exact)


def _transposed(g: Geometry, kernel, stride, padding, dilation, out: torch.Tensor) -> Geometry | str:
    """Output cell j of a transposed conv reads input cells i = (j + p - t*d) / s for the taps t that make
    that a whole number."""
    if g.dims != (out.ndim - 2, out.ndim - 1) or g.mirror is not None:
        return UNKNOWN
    if g.whole is not None:
        return g
    parts = []
    for a in range(2):
        s, p, d, k = stride[a], padding[a], dilation[a], kernel[a]

        def reads(j: int, s=s, p=p, d=d, k=k):
            cells = [(j + p - t * d) // s for t in range(k) if (j + p - t * d) % s == 0]
            return (min(cells), max(cells)) if cells else None

        part = _covering(g, a, Fraction(1, s), s, reads)
        if part is None:
            return UNKNOWN
        parts.append(part)
    return _covered(g, (out.ndim - 2, out.ndim - 1), parts)


def _interpolated(g: Geometry, first_t: torch.Tensor, out: torch.Tensor, args, kwargs) -> Geometry | str:
    """F.interpolate: output cell j reads input cells around floor(scale*j + shift) (torch's conventions)."""
    mode = _arg(args, kwargs, 3, "mode", "nearest")
    align = bool(_arg(args, kwargs, 4, "align_corners", False))
    shrinks = any(out.shape[2 + a] < first_t.shape[2 + a] for a in range(2))
    if mode not in _INTERP_REACH or first_t.ndim != 4 or g.dims != (2, 3) or (shrinks and _arg(args, kwargs, 6, "antialias", False)):
        return UNKNOWN  # an antialiased downsampling reads a wider, scale-dependent window
    if g.whole is not None or g.mirror is not None:
        return g if g.whole is not None else UNKNOWN
    factor = _arg(args, kwargs, 2, "scale_factor", None)
    recompute = _arg(args, kwargs, 5, "recompute_scale_factor", None)
    parts = []
    for a in range(2):
        n_in, n_out = first_t.shape[2 + a], out.shape[2 + a]
        if factor is not None and not recompute:  # torch then uses 1 / scale_factor, not in/out
            f = factor[a] if isinstance(factor, (tuple, list)) else factor
            scale = 1 / Fraction(float(f)).limit_denominator(1 << 16)
        else:
            scale = Fraction(n_in, n_out)
        if mode == "area":  # adaptive average pooling
            if n_in % n_out:
                return UNKNOWN
            k = n_in // n_out
            parts.append((g.size[a] + (k - 1) * g.stride[a], g.stride[a] * k, g.offset[a], True))
            continue
        if align and mode not in ("nearest", "nearest-exact"):
            scale, shift = (Fraction(n_in - 1, n_out - 1) if n_out > 1 else Fraction(0)), Fraction(0)
        elif mode == "nearest":
            shift = Fraction(0)
        else:  # half-pixel centres
            shift = (scale - 1) / 2 if mode != "nearest-exact" else scale / 2
        lo, hi = _INTERP_REACH[mode]
        period = math.lcm(scale.denominator, shift.denominator)
        part = _covering(g, a, scale, period,
                         lambda j, scale=scale, shift=shift, lo=lo, hi=hi: (math.floor(scale * j + shift) - lo,
                                                                            math.floor(scale * j + shift) + hi))
        assert part is not None  # these reads never give None: every cell is covered
        parts.append(part)
    return _covered(g, g.dims, parts)


def _padded(g: Geometry, first_t: torch.Tensor, args, kwargs) -> Geometry | str:
    """F.pad: (left, right, top, bottom, ...) from the last dim back; a negative pad crops. Reflect, replicate
    and circular pads copy cells: see field_ops.mirrored_pad."""
    pad = list(_arg(args, kwargs, 1, "pad", ()))
    mode = _arg(args, kwargs, 2, "mode", "constant")
    if g.whole is not None:
        return g
    if g.mirror is not None:
        return UNKNOWN
    if mode in ("reflect", "replicate", "circular"):
        return mirrored_pad(g, first_t, pad, mode)
    before = {first_t.ndim - 1 - i // 2: int(pad[i]) for i in range(0, len(pad), 2)}
    off = list(g.offset)
    for a in range(2):
        off[a] -= before.get(g.dims[a], 0) * g.stride[a]
    return replace(g, offset=tuple(off))


def _sliced(g: Geometry, t: torch.Tensor, index: Any) -> Geometry | str | None:
    """``t[index]`` with plain slices on the spatial dims (crops and strided subsampling); None: not a slice."""
    if not isinstance(index, tuple):
        index = (index,)
    if not all(isinstance(i, slice) or i is Ellipsis for i in index) or sum(i is Ellipsis for i in index) > 1:
        return None
    if Ellipsis in index:
        e = index.index(Ellipsis)
        index = index[:e] + (slice(None),) * (t.ndim - len(index) + 1) + index[e + 1 :]
    index = index + (slice(None),) * (t.ndim - len(index))
    size, stride, off = list(g.size), list(g.stride), list(g.offset)
    for a in range(2):
        start, _, step = index[g.dims[a]].indices(t.shape[g.dims[a]])
        if step < 1:
            return UNKNOWN
        off[a] += start * stride[a]
        stride[a] *= step
    if g.whole is not None:
        return g
    if g.mirror is not None:
        return UNKNOWN
    return replace(g, size=tuple(size), stride=tuple(stride), offset=tuple(off))
