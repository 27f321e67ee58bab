"""Receptive fields: analytic geometry traced through the forward pass, and the empirical check.

A unit at grid position (y, x) of a layer with receptive field (size s, stride t, offset o) covers
input rows ``o + y*t ... o + y*t + s - 1`` (columns likewise). The analytic geometry is traced
along every tensor of one forward pass (:mod:`.field_trace`, with the rules of :mod:`.field_ops`);
:func:`field_of` turns what it leaves on a layer's output into that layer's field. The empirical check
measures the gradient support of single units in a positive-weight float64 copy of the network; it
is also what fills in the fields tracing cannot give (``measured=True``).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .field_ops import GLOBAL, MIXED, UNKNOWN, Flat, Geometry
from .field_trace import _ADAPTIVE, _MAXPOOL, GeometryTracer, _arg, _pair
from .rectifiers import rectifier_spec

__all__ = ["GLOBAL", "MIXED", "UNKNOWN", "Flat", "Geometry", "GeometryTracer", "ReceptiveField", "field_of",
           "global_field", "measure_field", "positive_copy", "support_box", "support_mode"]


Number = int | Fraction


def _num(v: Any) -> Number:
    """An int, or a Fraction where the value is not whole (strides after upsampling or transposed convs)."""
    f = Fraction(v) if not isinstance(v, Fraction) else v
    return int(f) if f.denominator == 1 else f


def _axes(v: Any) -> tuple[Number, Number]:
    return (_num(v[0]), _num(v[1])) if isinstance(v, (tuple, list)) else (_num(v), _num(v))


@dataclass(frozen=True, init=False)
class ReceptiveField:
    """Receptive field of a layer's units, per axis (rows, columns), plus the square crop view.

    Built as ``ReceptiveField(size=32, stride=4, offset=-14)`` (square) or with (rows, columns)
    pairs. ``size``, ``stride`` and ``offset`` describe the square crop of side ``size`` that
    covers the field; they equal the per-axis values when the field is square (every layer of VGG
    and AlexNet). ``is_global`` marks layers whose units see the whole input (fully connected).
    After upsampling or a transposed convolution a layer has more units than pixels: its stride
    (and offset, size) are then Fractions, and :meth:`box` rounds outwards to whole pixels.
    ``measured`` marks a field found by gradient support where tracing could not follow the network
    (:meth:`Probe.measure_missing_fields`): checked on central and corner units rather than derived for
    every unit. It takes no part in equality.
    """

    size_yx: tuple[Number, Number]
    stride_yx: tuple[Number, Number]
    offset_yx: tuple[Number, Number]
    is_global: bool = False
    measured: bool = field(default=False, compare=False)

    def __init__(self, size, stride, offset=0, is_global: bool = False, measured: bool = False) -> None:
        object.__setattr__(self, "size_yx", _axes(size))
        object.__setattr__(self, "stride_yx", _axes(stride))
        object.__setattr__(self, "offset_yx", _axes(offset))
        object.__setattr__(self, "is_global", bool(is_global))
        object.__setattr__(self, "measured", bool(measured))
        if min(self.stride_yx) <= 0 or min(self.size_yx) <= 0:
            raise ValueError(f"A receptive field needs a positive size and stride, got {self.size_yx}, {self.stride_yx}.")

    @property
    def is_whole(self) -> bool:
        """Whether every unit's field starts and ends on whole pixels (no upsampling below the layer)."""
        return all(isinstance(v, int) for v in self.size_yx + self.stride_yx + self.offset_yx)

    @property
    def size(self) -> int:
        """Side of the square crop that holds any unit's field (whole pixels)."""
        t, l, b, r = self.box(0, 0)
        extra = 0 if self.is_whole else 1  # rounding outwards can add a pixel, depending on the unit
        return max(b - t, r - l) + extra

    @property
    def stride(self) -> Number:
        return self.stride_yx[0]

    @property
    def offset(self) -> Number:
        """Offset of the square crop: centred on the field when the two axes differ."""
        axis = 0 if self.size_yx[0] >= self.size_yx[1] else 1
        return self.offset_yx[axis]

    @property
    def is_square(self) -> bool:
        return self.size_yx[0] == self.size_yx[1] and self.stride_yx[0] == self.stride_yx[1]

    def box(self, y: int, x: int) -> tuple[int, int, int, int]:
        """Input rows and columns ``(top, left, bottom, right)`` (exclusive ends) of unit (y, x); the whole input
        for every unit of a global field (after attention or global context, a map's units all see it all)."""
        if self.is_global:
            y = x = 0
        top = self.offset_yx[0] + y * self.stride_yx[0]
        left = self.offset_yx[1] + x * self.stride_yx[1]
        return (math.floor(top), math.floor(left), math.ceil(top + self.size_yx[0]), math.ceil(left + self.size_yx[1]))

    def square_box(self, y: int, x: int) -> tuple[int, int, int, int]:
        """The ``size x size`` crop centred on unit (y, x)'s field (equal to box() when square)."""
        top, left, bottom, right = self.box(y, x)
        s = self.size
        top -= (s - (bottom - top)) // 2
        left -= (s - (right - left)) // 2
        return top, left, top + s, left + s

    def centre(self, y: int, x: int) -> tuple[float, float]:
        """The input position (row, column) at the centre of unit (y, x)'s field (the input's, for a global one)."""
        if self.is_global:
            y = x = 0
        cy, cx = (float(self.offset_yx[a] + (y, x)[a] * self.stride_yx[a] + Fraction(self.size_yx[a] - 1, 2))
                  for a in range(2))
        return cy, cx

    def unit_at(self, row: float, col: float, grid_hw: tuple[int, int]) -> tuple[int, int]:
        """The unit (y, x) of a ``grid_hw`` map whose field is centred nearest input position (row, col)."""
        out = []
        for a, v in enumerate((row, col)):
            g = (float(v) - float(self.offset_yx[a]) - float(self.size_yx[a] - 1) / 2) / float(self.stride_yx[a])
            out.append(int(min(max(round(g), 0), grid_hw[a] - 1)))
        return out[0], out[1]

    def __repr__(self) -> str:
        m = ", measured" if self.measured else ""
        if self.is_square:
            g = ", global" if self.is_global else ""
            return f"ReceptiveField(size={self.size_yx[0]}, stride={self.stride}, offset={self.offset}{g}{m})"
        return (
            f"ReceptiveField(size_yx={self.size_yx}, stride_yx={self.stride_yx}, "
            f"offset_yx={self.offset_yx}{m})"
        )


def global_field(input_hw: tuple[int, int]) -> ReceptiveField:
    """The field of a unit that sees the whole input (fully connected layers)."""
    return ReceptiveField(tuple(input_hw), tuple(input_hw), (0, 0), is_global=True)


# ---------------------------------------------------------------- analytic geometry tracing


def field_of(state: Any, input_hw: tuple[int, int]) -> ReceptiveField | None:
    """The field of a layer whose output the tracer left in ``state``: a Geometry's own field (global when
    whole); the global field after global pooling or position-mixing ops; None for UNKNOWN, for maps whose
    rows and columns a transpose swapped (a unit (y, x) there reads picture rows around x), for a pad still
    waiting to be checked, and for flattened positions."""
    if isinstance(state, Geometry):
        if state.whole is not None:
            return global_field(state.whole)
        if state.mirror is not None or state.dims[0] > state.dims[1]:
            return None
        return ReceptiveField(state.size, state.stride, state.offset)
    if state in (GLOBAL, MIXED):
        return global_field(input_hw)
    return None



# ---------------------------------------------------------------- empirical check

_POOLING_REDUCE = {"mean", "amax", "sum", "max", "amin", "min", "std", "var"}
# functions that saturate: with the twin's large positive values their gradient underflows to exactly zero
# (a one-hot softmax, a sigmoid gate at 1), which would hide support; their input is scaled down first
_SATURATING = {"softmax", "log_softmax", "_softmax", "_log_softmax", "softmin", "sigmoid", "tanh", "hardsigmoid",
               "hardswish", "hardtanh", "silu", "mish", "gelu"}


class _SupportMode(TorchFunctionMode):
    """Turns a network into one whose gradient support is exactly its receptive fields.

    Max-pools become average pools (a max routes gradient to one pixel), rectifiers identities,
    saturating functions (softmax, sigmoid) see their input scaled down, and global-pooling outputs are
    detached, so squeeze-excitation gates do not make every field global. Normalisation statistics taken
    over positions (group, instance and layer norm) are detached for the same reason: one number per
    group and picture, like a gate, they are not what a unit's field means (the tracer does not count them).
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if rectifier_spec(func, args, kwargs) is not None:
            return args[0]  # everything is positive here; a saturating ReLU6 would zero the gradient
        if name in _MAXPOOL:
            kernel = _arg(args, kwargs, 1, "kernel_size", 1)
            stride = _arg(args, kwargs, 2, "stride", None) or kernel
            padding = _arg(args, kwargs, 3, "padding", 0)
            ceil = _arg(args, kwargs, 5, "ceil_mode", False)
            dilation = _pair(_arg(args, kwargs, 4, "dilation", 1))
            x = args[0]
            if dilation != (1, 1):
                kernel = tuple(dilation[a] * (_pair(kernel)[a] - 1) + 1 for a in range(2))
            out = torch.nn.functional.avg_pool2d(x, kernel, stride, padding, ceil, True)
            return (out, torch.zeros_like(out, dtype=torch.long)) if _arg(args, kwargs, 6, "return_indices", False) or name == "max_pool2d_with_indices" else out
        if name in _NORMS and args and isinstance(args[0], torch.Tensor):
            normed = _norm_with_detached_statistics(name, args, kwargs)
            if normed is not None:
                return normed
        if name in _SATURATING and args and isinstance(args[0], torch.Tensor) and args[0].is_floating_point():
            x = args[0]  # scaled into [-1/2, 1/2], where these never flatten to an exactly-zero gradient
            args = (x / (2 * x.detach().abs().amax().clamp_min(1.0)), *args[1:])
        result = func(*args, **kwargs)
        if name in _ADAPTIVE | _POOLING_REDUCE and isinstance(result, torch.Tensor) and args and isinstance(args[0], torch.Tensor):
            x = args[0]
            if x.ndim >= 3 and result.ndim >= 2 and result.numel() * x.shape[-1] * x.shape[-2] <= x.numel() and x.shape[-2:] != result.shape[-2:]:
                if result.shape[-2:] == (1, 1) or result.ndim <= 2:
                    return result.detach()
        return result


_NORMS = {"group_norm", "instance_norm", "layer_norm", "rms_norm"}


def _norm_with_detached_statistics(name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> torch.Tensor | None:
    """``name``'s result with its mean and variance detached (None: a form it does not take, left to torch)."""
    x = args[0]
    eps = float(kwargs.get("eps", 1e-5))
    if name == "group_norm":
        groups = int(_arg(args, kwargs, 1, "num_groups", 1))
        weight, bias = _arg(args, kwargs, 2, "weight", None), _arg(args, kwargs, 3, "bias", None)
        eps = float(_arg(args, kwargs, 4, "eps", eps))
        flat = x.reshape(x.shape[0], groups, -1)
        mean, var = flat.mean(-1, keepdim=True).detach(), flat.var(-1, unbiased=False, keepdim=True).detach()
        y = ((flat - mean) / torch.sqrt(var + eps)).reshape(x.shape)
        affine = (1, -1) + (1,) * (x.ndim - 2)
    elif name == "instance_norm":
        if not _arg(args, kwargs, 5, "use_input_stats", True):
            return None  # running statistics: element-wise already
        weight, bias = _arg(args, kwargs, 3, "weight", None), _arg(args, kwargs, 4, "bias", None)
        eps = float(_arg(args, kwargs, 7, "eps", eps))
        dims = tuple(range(2, x.ndim))
        mean, var = x.mean(dims, keepdim=True).detach(), x.var(dims, unbiased=False, keepdim=True).detach()
        y = (x - mean) / torch.sqrt(var + eps)
        affine = (1, -1) + (1,) * (x.ndim - 2)
    else:  # layer_norm / rms_norm over the trailing normalized_shape
        shape = _arg(args, kwargs, 1, "normalized_shape", None)
        shape = (shape,) if isinstance(shape, int) else tuple(shape or ())
        weight, bias = _arg(args, kwargs, 2, "weight", None), (_arg(args, kwargs, 3, "bias", None) if name == "layer_norm" else None)
        given = _arg(args, kwargs, 4 if name == "layer_norm" else 3, "eps", None)
        eps = float(given) if given is not None else (1e-5 if name == "layer_norm" else torch.finfo(x.dtype).eps)
        dims = tuple(range(x.ndim - len(shape), x.ndim))
        if not dims:
            return None
        if name == "layer_norm":
            mean, var = x.mean(dims, keepdim=True).detach(), x.var(dims, unbiased=False, keepdim=True).detach()
            y = (x - mean) / torch.sqrt(var + eps)
        else:
            y = x / torch.sqrt(x.pow(2).mean(dims, keepdim=True).detach() + eps)
        affine = shape
    if weight is not None:
        y = y * weight.reshape(affine)
    if bias is not None:
        y = y + bias.reshape(affine)
    return y


def positive_copy(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` with positive weights, so gradient supports are exact."""
    twin = copy.deepcopy(model).double().eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(torch.rand(p.shape, generator=gen, dtype=p.dtype) + 0.5)
            p.requires_grad_(False)
        for m in twin.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_var is not None and m.running_mean is not None:
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    return twin


def support_box(grad: torch.Tensor) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) exclusive of the nonzero entries of an (H, W) map."""
    nz = torch.nonzero(grad)
    if nz.numel() == 0:
        return None
    return (int(nz[:, 0].min()), int(nz[:, 1].min()), int(nz[:, 0].max()) + 1, int(nz[:, 1].max()) + 1)


def measure_field(
    run_layer, input_hw: tuple[int, int], max_side: int = 1024, channels: int = 3,
    deadline: float | None = None, strict: bool = False,
) -> ReceptiveField | None:
    """Empirical receptive field from the gradient support of two neighbouring central units.

    ``run_layer(x)`` returns the layer's activation (N, C, H, W) for a float64 input ``x``. The
    input starts at ``input_hw`` and doubles (up to ``max_side``, to bound memory) until both
    supports lie inside it, so the field is not clipped by the border. Past ``deadline`` (a
    ``time.monotonic()`` value) it stops doubling and gives None. ``strict``: the field must also hold
    a third central unit, off the diagonal (a map whose rows and columns were swapped fails it), and the
    four corner units, clipped (a circular pad, or a reflect pad wider than the window, fails it): what a
    field measured for use, rather than as the tests' oracle, is checked on.
    """
    h, w = input_hw
    while True:
        x = torch.ones(1, channels, h, w, dtype=torch.float64, requires_grad=True)
        act = run_layer(x)
        if not act.requires_grad:
            return None
        H, W = act.shape[-2:]

        def support(uy: int, ux: int, act: torch.Tensor = act, x: torch.Tensor = x):
            (g,) = torch.autograd.grad(act[0, :, uy, ux].sum(), x, retain_graph=True)
            return support_box(g[0].abs().sum(0))

        cy, cx = (H - 1) // 2, (W - 1) // 2  # central, with a neighbour below and to the right (a 2x2 map too)
        units = [(cy, cx), (cy + 1, cx + 1)] if H > 1 and W > 1 else [(H // 2, W // 2)]
        boxes = [support(uy, ux) for uy, ux in units]
        if any(b is None for b in boxes):
            return None
        inside = all(b[0] > 0 and b[1] > 0 and b[2] < h and b[3] < w for b in boxes)
        # a unit near the edge of the network's coverage (unpadded strided layers leave the last
        # rows uncovered) is clipped without touching the border; unclipped neighbours match in size
        same = len(units) == 2 and (boxes[0][2] - boxes[0][0], boxes[0][3] - boxes[0][1]) == (
            boxes[1][2] - boxes[1][0], boxes[1][3] - boxes[1][1])
        if inside and same:
            (t0, l0, b0, r0), (t1, l1, _, _) = boxes
            stride = (t1 - t0, l1 - l0)
            if min(stride) < 1:  # neighbours read the same pixels (upsampling): no whole-pixel stride to measure
                return None
            size = (b0 - t0, r0 - l0)
            offset = (t0 - units[0][0] * stride[0], l0 - units[0][1] * stride[1])
            rf = ReceptiveField(size, stride, offset)
            if strict:
                checks = [(cy, cx + 1), (0, 0), (H - 1, W - 1), (0, W - 1), (H - 1, 0)]
                for uy, ux in checks:
                    t, l, b, r = rf.box(uy, ux)
                    want = (max(t, 0), max(l, 0), min(b, h), min(r, w))
                    if support(uy, ux) != want:
                        return None
            return rf
        if max(h, w) * 2 > max_side or (deadline is not None and time.monotonic() > deadline):
            return None
        h, w = h * 2, w * 2


def support_mode() -> TorchFunctionMode:
    return _SupportMode()
