"""Receptive fields: analytic geometry traced through the forward pass, and the empirical check.

A unit at grid position (y, x) of a layer with receptive field (size s, stride t, offset o) covers
input rows ``o + y*t ... o + y*t + s - 1`` (columns likewise). The analytic geometry is carried
along every tensor of one traced forward pass: convolutions and pools grow it, element-wise ops
and concatenations take the union of their inputs (so branching networks are right), and
channel-wise gates fed by global pooling (squeeze-excitation) are not counted. The empirical check
measures the gradient support of single units in a positive-weight float64 copy of the network.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .rectifiers import rectifier_spec


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
    """

    size_yx: tuple[Number, Number]
    stride_yx: tuple[Number, Number]
    offset_yx: tuple[Number, Number]
    is_global: bool = False

    def __init__(self, size, stride, offset=0, is_global: bool = False) -> None:
        object.__setattr__(self, "size_yx", _axes(size))
        object.__setattr__(self, "stride_yx", _axes(stride))
        object.__setattr__(self, "offset_yx", _axes(offset))
        object.__setattr__(self, "is_global", bool(is_global))
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
        """Input rows and columns ``(top, left, bottom, right)`` (exclusive ends) of unit (y, x)."""
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
        """The input position (row, column) at the centre of unit (y, x)'s field."""
        return tuple(float(self.offset_yx[a] + (y, x)[a] * self.stride_yx[a] + Fraction(self.size_yx[a] - 1, 2))
                     for a in range(2))

    def unit_at(self, row: float, col: float, grid_hw: tuple[int, int]) -> tuple[int, int]:
        """The unit (y, x) of a ``grid_hw`` map whose field is centred nearest input position (row, col)."""
        out = []
        for a, v in enumerate((row, col)):
            g = (float(v) - float(self.offset_yx[a]) - float(self.size_yx[a] - 1) / 2) / float(self.stride_yx[a])
            out.append(int(min(max(round(g), 0), grid_hw[a] - 1)))
        return out[0], out[1]

    def __repr__(self) -> str:
        if self.is_square:
            g = ", global" if self.is_global else ""
            return f"ReceptiveField(size={self.size_yx[0]}, stride={self.stride}, offset={self.offset}{g})"
        return (
            f"ReceptiveField(size_yx={self.size_yx}, stride_yx={self.stride_yx}, "
            f"offset_yx={self.offset_yx})"
        )


def global_field(input_hw: tuple[int, int]) -> ReceptiveField:
    """The field of a unit that sees the whole input (fully connected layers)."""
    return ReceptiveField(tuple(input_hw), tuple(input_hw), (0, 0), is_global=True)


# ---------------------------------------------------------------- analytic geometry tracing

@dataclass(frozen=True)
class Geometry:
    """Geometry of a tensor: which dims are (rows, columns), and the field of one of its cells (exact
    Fractions, so upsampling then striding back gives whole numbers again)."""

    dims: tuple[int, int]
    size: tuple[Fraction, Fraction]
    stride: tuple[Fraction, Fraction]
    offset: tuple[Fraction, Fraction]

    def field(self) -> ReceptiveField:
        return ReceptiveField(self.size, self.stride, self.offset)


GLOBAL = "global"   # sees the whole input: after global pooling, flatten, fully connected
UNKNOWN = "unknown"  # an op this tracer cannot follow: such layers have no receptive field (None)

_CONV = {"conv2d"}
_CONV_T = {"conv_transpose2d"}
_MAXPOOL = {"max_pool2d", "_max_pool2d", "max_pool2d_with_indices"}
_AVGPOOL = {"avg_pool2d", "lp_pool2d"}
_ADAPTIVE = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_max_pool2d_with_indices"}
_REDUCE = {"mean", "amax", "sum", "max", "amin", "min", "std", "var"}
# ops that move values between positions while keeping the shape: not element-wise, so not followed
_REARRANGE = {"flip", "fliplr", "flipud", "roll", "rot90", "grid_sample", "gather", "take_along_dim", "index_select",
              "scatter", "scatter_add", "index_add", "index_put", "masked_scatter", "unfold", "fold", "pixel_shuffle",
              "pixel_unshuffle", "affine_grid", "sort", "argsort", "cumsum", "cumprod", "cummax", "cummin"}
_WINDOWED = _CONV | _CONV_T | _MAXPOOL | _AVGPOOL | _ADAPTIVE | {"linear", "pad", "interpolate"}
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


def _grow(g: Geometry, kernel, stride, padding, dilation, out: torch.Tensor) -> Geometry:
    """Geometry after a sliding window (conv or pool) over a tensor of geometry ``g``."""
    size, strd, off = [], [], []
    for a in range(2):
        k_eff = dilation[a] * (kernel[a] - 1) + 1
        size.append(g.size[a] + (k_eff - 1) * g.stride[a])
        strd.append(g.stride[a] * stride[a])
        off.append(g.offset[a] - padding[a] * g.stride[a])
    return _geometry((out.ndim - 2, out.ndim - 1), size, strd, off)


def _covering(g: Geometry, a: int, scale: Fraction, period: int, reads) -> tuple:
    """Axis ``a`` after an op whose output cell j reads input cells ``reads(j) = (first, last)`` (or None:
    none), a pattern that repeats every ``period`` cells while moving ``scale * period`` input cells. The
    field returned is the smallest affine one (stride ``scale`` input cells) that holds every output
    cell's field; where the cells' fields differ in size (upsampling), some are smaller than it."""
    spans = [(r[0] - scale * j, r[1] - scale * j) for j in range(period) if (r := reads(j)) is not None]
    if not spans:
        return None
    first = min(lo for lo, _ in spans)
    last = max(hi for _, hi in spans)
    return (g.size[a] + (last - first) * g.stride[a], g.stride[a] * scale, g.offset[a] + first * g.stride[a])


def _transposed(g: Geometry, kernel, stride, padding, dilation, out: torch.Tensor) -> Geometry | str:
    """Output cell j of a transposed conv reads input cells i = (j + p - t*d) / s for the taps t that make
    that a whole number."""
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
    return _geometry((out.ndim - 2, out.ndim - 1), *zip(*parts))


def _interpolated(g: Geometry, first_t: torch.Tensor, out: torch.Tensor, args, kwargs) -> Geometry | str:
    """F.interpolate: output cell j reads input cells around floor(scale*j + shift) (torch's conventions)."""
    mode = _arg(args, kwargs, 3, "mode", "nearest")
    align = bool(_arg(args, kwargs, 4, "align_corners", False))
    shrinks = any(out.shape[2 + a] < first_t.shape[2 + a] for a in range(2))
    if mode not in _INTERP_REACH or first_t.ndim != 4 or g.dims != (2, 3) or (shrinks and _arg(args, kwargs, 6, "antialias", False)):
        return UNKNOWN  # an antialiased downsampling reads a wider, scale-dependent window
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
            parts.append((g.size[a] + (k - 1) * g.stride[a], g.stride[a] * k, g.offset[a]))
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
        parts.append(part)
    return _geometry(g.dims, *zip(*parts))


def _padded(g: Geometry, first_t: torch.Tensor, args, kwargs) -> Geometry | str:
    """F.pad: (left, right, top, bottom, ...) from the last dim back; a negative pad crops."""
    pad = list(_arg(args, kwargs, 1, "pad", ()))
    before = {first_t.ndim - 1 - i // 2: int(pad[i]) for i in range(0, len(pad), 2)}
    off = list(g.offset)
    for a in range(2):
        off[a] -= before.get(g.dims[a], 0) * g.stride[a]
    return Geometry(g.dims, g.size, g.stride, tuple(off))


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
    return Geometry(g.dims, tuple(size), tuple(stride), tuple(off))


def _union(geoms: list[Geometry], dims: tuple[int, int]) -> Geometry | str:
    if any(g.stride != geoms[0].stride for g in geoms):
        return UNKNOWN
    start = tuple(min(g.offset[a] for g in geoms) for a in range(2))
    end = tuple(max(g.offset[a] + g.size[a] for g in geoms) for a in range(2))
    return Geometry(dims, (end[0] - start[0], end[1] - start[1]), geoms[0].stride, start)


def _spatial(t: torch.Tensor, g: Geometry) -> tuple[int, int]:
    return (t.shape[g.dims[0]], t.shape[g.dims[1]])


class GeometryTracer:
    """Carries Geometry along the tensors of one forward pass (fed by the ForwardRecorder).

    Each tensor also carries a tag: the layer whose output it derives from. Two spatial tensors of
    different tags meeting in one op (a residual add, a concatenation) make the network a non-chain;
    ``x * sigmoid(x)`` does not.
    """

    def __init__(self) -> None:
        self.geo: dict[int, tuple[torch.Tensor, Geometry | str, Any]] = {}
        self.merges = 0  # ops that joined spatial tensors of different layers: not a plain chain
        self.lost: list[str] = []  # ops that made a spatial tensor UNKNOWN, first one first
        self._ops = 0
        self._made_by: dict[int, tuple[torch.Tensor, str]] = {}  # tensor id -> (tensor, the op that made it)

    def made_by(self, t: Any) -> str:
        """The name of the op that produced ``t`` in the traced pass ('softmax', 'sigmoid', ...), or ''."""
        entry = self._made_by.get(id(t)) if isinstance(t, torch.Tensor) else None
        return entry[1] if entry is not None and entry[0] is t else ""

    def start(self, x: torch.Tensor) -> None:
        self.geo[id(x)] = (x, _geometry((x.ndim - 2, x.ndim - 1), (1, 1), (1, 1), (0, 0)), "input")

    def get(self, t: Any) -> Geometry | str | None:
        entry = self.geo.get(id(t)) if isinstance(t, torch.Tensor) else None
        return entry[1] if entry is not None and entry[0] is t else None

    def tag(self, t: Any, layer: str) -> None:
        """``t`` is the output of ``layer``: what derives from it carries that layer's tag."""
        entry = self.geo.get(id(t)) if isinstance(t, torch.Tensor) else None
        if entry is not None and entry[0] is t:
            self.geo[id(t)] = (t, entry[1], layer)

    def alias(self, copy: torch.Tensor, of: torch.Tensor) -> None:
        """``copy`` is a copy of ``of`` made outside the traced ops (before an in-place op changes ``of``)."""
        entry = self.geo.get(id(of))
        if entry is not None and entry[0] is of:
            self.geo[id(copy)] = (copy, *entry[1:])

    def update(self, func: Any, args: Sequence[Any], kwargs: dict[str, Any], result: Any) -> None:
        ins = [(t, e[1], e[2]) for t in _tensors(args, kwargs) if (e := self.geo.get(id(t))) is not None and e[0] is t]
        outs = [r for r in (result if isinstance(result, (tuple, list)) else (result,)) if isinstance(r, torch.Tensor)]
        name = getattr(func, "__name__", "")
        for o in outs:
            self._made_by[id(o)] = (o, name)
        if not ins or not outs:
            return
        tags = {tag for _, g, tag in ins if g != GLOBAL}
        tag = next(iter(tags)) if len(tags) == 1 else ins[0][2]
        if len(tags) > 1 and name not in _WINDOWED:
            self.merges += 1
            self._ops += 1
            tag = ("merge", self._ops)
        g = self._rule(name, args, kwargs, [(t, gi) for t, gi, _ in ins], outs[0])
        if g == UNKNOWN and any(isinstance(gi, Geometry) for _, gi, _ in ins):
            self.lost.append(name)
        for o in outs[:1] if name in _MAXPOOL | _ADAPTIVE else outs:
            self.geo[id(o)] = (o, g, tag)

    def _rule(self, name, args, kwargs, ins, out) -> Geometry | str:
        first_t, first = ins[0]
        if name in _WINDOWED:
            if args and args[0] is not first_t:
                return UNKNOWN
            if not isinstance(first, Geometry):
                return first
            if name in _CONV | _CONV_T:
                weight = _arg(args, kwargs, 1, "weight", None)
                kernel = tuple(weight.shape[-2:])
                stride = _pair(_arg(args, kwargs, 3, "stride", 1))
                if name in _CONV_T:  # conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)
                    padding = _pair(_arg(args, kwargs, 4, "padding", 0))
                    dilation = _pair(_arg(args, kwargs, 7, "dilation", 1))
                    return _transposed(first, kernel, stride, padding, dilation, out)
                dilation = _pair(_arg(args, kwargs, 5, "dilation", 1))
                padding = _arg(args, kwargs, 4, "padding", 0)
                if isinstance(padding, str):
                    padding = (0, 0) if padding == "valid" else tuple(
                        dilation[a] * (kernel[a] - 1) // 2 for a in range(2)
                    )
                return _grow(first, kernel, stride, _pair(padding), dilation, out)
            if name in _MAXPOOL | _AVGPOOL:
                pos = 2 if name == "lp_pool2d" else 1  # lp_pool2d(input, norm_type, kernel_size, stride)
                kernel = _pair(_arg(args, kwargs, pos, "kernel_size", 1))
                stride = _arg(args, kwargs, pos + 1, "stride", None)
                stride = kernel if stride in (None, [], ()) else _pair(stride)
                padding = (0, 0) if name == "lp_pool2d" else _pair(_arg(args, kwargs, 3, "padding", 0))
                dilation = _pair(_arg(args, kwargs, 4, "dilation", 1)) if name in _MAXPOOL else (1, 1)
                return _grow(first, kernel, stride, padding, dilation, out)
            if name == "pad":
                return _padded(first, first_t, args, kwargs)
            if name == "interpolate":
                return _interpolated(first, first_t, out, args, kwargs)
            if name in _ADAPTIVE:
                hin, win = _spatial(first_t, first)
                hout, wout = out.shape[-2], out.shape[-1]
                if (hout, wout) == (hin, win):
                    return first
                if (hout, wout) == (1, 1):
                    return GLOBAL
                if hin % hout == 0 and win % wout == 0:
                    k = (hin // hout, win // wout)
                    return _grow(first, k, k, (0, 0), (1, 1), out)
                return UNKNOWN
            # linear: on the channel dim of a channels-last map it keeps the geometry
            if first.dims[1] < first_t.ndim - 1 and out.shape[first.dims[0]] == first_t.shape[first.dims[0]]:
                return first
            return GLOBAL if first_t.ndim == 2 else UNKNOWN

        if name == "__getitem__" and isinstance(first, Geometry) and len(args) > 1 and args[0] is first_t:
            sliced = _sliced(first, first_t, args[1])
            if sliced is not None:
                return sliced
        geoms = [g for _, g in ins]
        if UNKNOWN in geoms or (name in _REARRANGE and any(isinstance(g, Geometry) for g in geoms)):
            return UNKNOWN
        spatial = [(t, g) for t, g in ins if isinstance(g, Geometry)]
        if not spatial:
            return GLOBAL
        ref_t, ref = spatial[0]
        hw = _spatial(ref_t, ref)
        dims: tuple[int, int] | None = None
        if name == "permute":
            perm = args[1:] if len(args) > 2 else _arg(args, kwargs, 1, "dims", None)
            perm = list(perm[0] if len(perm) == 1 and isinstance(perm[0], (tuple, list)) else perm)
            perm = [p % ref_t.ndim for p in perm]
            dims = (perm.index(ref.dims[0]), perm.index(ref.dims[1]))
        elif out.ndim >= 2 and tuple(out.shape[-2:]) == hw and ref.dims == (ref_t.ndim - 2, ref_t.ndim - 1):
            dims = (out.ndim - 2, out.ndim - 1)
        elif out.ndim == ref_t.ndim and tuple(out.shape[d] for d in ref.dims) == hw:
            dims = ref.dims
        if dims is None:
            if out.ndim <= 2 or (out.ndim >= 3 and tuple(out.shape[-2:]) == (1, 1) and hw != (1, 1)):
                return GLOBAL
            if name in _REDUCE and out.numel() * hw[0] * hw[1] <= ref_t.numel():
                return GLOBAL
            return UNKNOWN
        return _union([g for _, g in spatial], dims)


def _tensors(args: Sequence[Any], kwargs: dict[str, Any]):
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, torch.Tensor):
            yield a
        elif isinstance(a, (list, tuple)):
            yield from (t for t in a if isinstance(t, torch.Tensor))


# ---------------------------------------------------------------- empirical check

class _SupportMode(TorchFunctionMode):
    """Turns a network into one whose gradient support is exactly its receptive fields.

    Max-pools become average pools (a max routes gradient to one pixel), rectifiers identities,
    and global-pooling outputs are detached, so squeeze-excitation gates do not make every field global.
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
        result = func(*args, **kwargs)
        if name in _ADAPTIVE | _REDUCE and isinstance(result, torch.Tensor) and args and isinstance(args[0], torch.Tensor):
            x = args[0]
            if x.ndim >= 3 and result.ndim >= 2 and result.numel() * x.shape[-1] * x.shape[-2] <= x.numel() and x.shape[-2:] != result.shape[-2:]:
                if result.shape[-2:] == (1, 1) or result.ndim <= 2:
                    return result.detach()
        return result


def positive_copy(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` with positive weights, so gradient supports are exact."""
    twin = copy.deepcopy(model).double().eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(torch.rand(p.shape, generator=gen, dtype=p.dtype) + 0.5)
            p.requires_grad_(False)
        for m in twin.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_var is not None:
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
    run_layer, input_hw: tuple[int, int], max_side: int = 1024, channels: int = 3
) -> ReceptiveField | None:
    """Empirical receptive field from the gradient support of two neighbouring central units.

    ``run_layer(x)`` returns the layer's activation (N, C, H, W) for a float64 input ``x``. The
    input starts at ``input_hw`` and doubles (up to ``max_side``, to bound memory) until both
    supports lie inside it, so the field is not clipped by the border.
    """
    h, w = input_hw
    while True:
        x = torch.ones(1, channels, h, w, dtype=torch.float64, requires_grad=True)
        act = run_layer(x)
        if not act.requires_grad:
            return None
        H, W = act.shape[-2:]
        boxes = []
        units = [(H // 2, W // 2), (H // 2 + 1, W // 2 + 1)] if H > 1 and W > 1 else [(H // 2, W // 2)]
        for i, (uy, ux) in enumerate(units):
            (g,) = torch.autograd.grad(act[0, :, uy, ux].sum(), x, retain_graph=i + 1 < len(units))
            boxes.append(support_box(g[0].abs().sum(0)))
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
            return ReceptiveField(size, stride, offset)
        if max(h, w) * 2 > max_side:
            return None
        h, w = h * 2, w * 2


def support_mode() -> TorchFunctionMode:
    return _SupportMode()
