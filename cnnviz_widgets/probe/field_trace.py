"""The field tracer: carries a state (see :mod:`.field_ops`) along every tensor of one forward pass.

Convolutions and pools grow a Geometry, element-wise ops and concatenations take the union of their inputs
(so branching networks are right), channel-wise gates fed by global pooling (squeeze-excitation) are not
counted, dims that move are followed (a transpose, a space-to-depth reshape), and ops that mix every position
(attention, global context) make the maps they reach whole. Ops that move values between positions in any
other way leave UNKNOWN: no field, never a wrong one.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction
from typing import Any

import torch

from .field_segments import ChannelSegments
from .field_ops import GLOBAL, MIXED, PAIRS, UNKNOWN, Flat, Geometry, State, covers, indexed, permutation, permuted, reshaped
from .field_windows import (_arg, _axes_of, _geometry, _grow, _interpolated, _pair, _padded, _sliced,
                            _transposed)

_CONV = {"conv2d"}
_CONV_T = {"conv_transpose2d"}
_MAXPOOL = {"max_pool2d", "_max_pool2d", "max_pool2d_with_indices"}
_AVGPOOL = {"avg_pool2d", "lp_pool2d"}
_ADAPTIVE = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_max_pool2d_with_indices"}
_REDUCE = {"mean", "amax", "sum", "max", "amin", "min", "std", "var", "norm", "logsumexp", "prod", "nansum",
           "nanmean", "median", "std_mean", "var_mean"}
# ops that move values between positions while keeping the shape: not element-wise, so not followed
_REARRANGE = {"flip", "fliplr", "flipud", "roll", "rot90", "grid_sample", "gather", "take_along_dim", "index_select",
              "scatter", "scatter_add", "index_add", "index_put", "index_put_", "masked_scatter", "unfold", "fold",
              "affine_grid", "sort", "argsort", "cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "diff",
              "conv1d", "conv3d", "conv_transpose1d", "conv_transpose3d", "avg_pool1d", "max_pool1d", "avg_pool3d",
              "max_pool3d", "adaptive_avg_pool1d", "adaptive_max_pool1d", "lp_pool1d", "diagonal", "diag_embed",
              "tril", "triu", "kron", "tensordot", "fft_fft", "fft_fft2", "fft_fftn", "fft_rfft", "fft_rfft2",
              "fft_rfftn", "fft_ifft", "fft_ifft2", "fft_ifftn", "fft_irfft", "fft_irfft2", "fft_irfftn",
              "channel_shuffle", "native_channel_shuffle"}
# ops that move dims: followed exactly, per state (see field_ops.permutation)
_PERMUTE = {"permute", "transpose", "transpose_", "swapaxes", "swapdims", "movedim", "moveaxis", "t", "__get__",
            "adjoint"}
_RESHAPE = {"view", "reshape", "flatten", "unflatten", "view_as", "reshape_as", "squeeze", "unsqueeze", "ravel",
            "squeeze_", "unsqueeze_"}
_SOFTMAX = {"softmax", "log_softmax", "_softmax", "_log_softmax", "softmin"}
_SPLIT = {"split", "chunk", "tensor_split", "split_with_sizes", "unbind"}
_MATMUL = {"matmul", "__matmul__", "__rmatmul__", "mm", "bmm"}
# ops whose result does not depend on the values of their inputs (so a MIXED input does not mix it)
_VALUE_BLIND = {"zeros_like", "ones_like", "empty_like", "full_like", "new_zeros", "new_ones", "new_empty", "new_full",
                "argmax", "argmin", "eq", "ne", "lt", "le", "gt", "ge", "isnan", "isfinite", "isinf", "size", "dim",
                "detach", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"}
_WINDOWED = _CONV | _CONV_T | _MAXPOOL | _AVGPOOL | _ADAPTIVE | {"linear", "pad", "interpolate"}


def _union(geoms: list[Geometry], dims: tuple[int, ...], grid_hw: tuple[int, int],
           input_hw: tuple[int, int] | None) -> Geometry | str:
    """The field of cells that read the same cell of every input (an element-wise op, a concatenation): the
    union of their boxes. A part whose every cell sees the whole input makes the union whole; otherwise
    parts of different strides, copies of a pending pad, or an upsampled part's box joined with a different
    box (the union then differs between even and odd cells) have no affine union (UNKNOWN)."""
    whole = next((g for g in geoms if g.whole is not None), None)
    if whole is not None:
        return replace(whole, dims=dims)
    differ = any((g.size, g.stride, g.offset) != (geoms[0].size, geoms[0].stride, geoms[0].offset) for g in geoms)
    if any(g.stride != geoms[0].stride for g in geoms) or any(g.mirror != geoms[0].mirror for g in geoms) or \
            (differ and not all(g.exact for g in geoms)):  # an upsampled part's box, joined: cells differ by parity
        whole = next((g for g in geoms if covers(g, grid_hw, input_hw)), None)
        if whole is not None:  # only here: an affine union, where there is one, says more than 'whole'
            return replace(whole, dims=dims, whole=input_hw, mirror=None)
        return UNKNOWN
    start = tuple(min(g.offset[a] for g in geoms) for a in range(2))
    end = tuple(max(g.offset[a] + g.size[a] for g in geoms) for a in range(2))
    return replace(geoms[0], dims=dims, size=(end[0] - start[0], end[1] - start[1]), offset=start)


def _spatial(t: torch.Tensor, g: Geometry) -> tuple[int, int]:
    return (t.shape[g.dims[0]], t.shape[g.dims[1]])


def _dims_arg(args: Sequence[Any], kwargs: dict[str, Any], ndim: int, pos: int = 1) -> set[int] | None:
    """The dims a reduction or softmax works over (``dim=`` or its place), normalised; None: all dims."""
    d = _arg(args, kwargs, pos, "dim", None)
    if d is None and "axis" in kwargs:
        d = kwargs["axis"]
    if d is None or isinstance(d, str):
        return None
    if isinstance(d, (tuple, list)):
        return {int(x) % ndim for x in d} if len(d) else None
    return {int(d) % ndim} if isinstance(d, int) else None


def _shifted(state: Any, by: int) -> Any:
    """A state with its dims moved by ``by`` (broadcasting against a higher-dimensional tensor)."""
    if isinstance(state, Geometry):
        return replace(state, dims=(state.dims[0] + by, state.dims[1] + by))
    if isinstance(state, Flat):
        return replace(state, dim=state.dim + by)
    return state


def _pooled_to_one(t: torch.Tensor, out: torch.Tensor) -> bool:
    """Whether ``out`` pools a (..., H, W) map ``t`` to one cell: (..., 1, 1), or (N, C) from (N, C, H, W)."""
    if t.ndim < 3 or tuple(t.shape[-2:]) == (1, 1):
        return False
    return (out.ndim == t.ndim and tuple(out.shape[-2:]) == (1, 1) and out.shape[:-2] == t.shape[:-2]) or \
        (out.ndim == t.ndim - 2 and out.shape == t.shape[:-2])


def _is_whole(state: Any) -> bool:
    return state == MIXED or (isinstance(state, Geometry) and state.whole is not None) or \
        (isinstance(state, Flat) and state.geo.whole is not None)



class GeometryTracer:
    """Carries a state (Geometry, Flat, GLOBAL, MIXED, PAIRS, UNKNOWN) along the tensors of one forward pass
    (fed by the ForwardRecorder).

    Each tensor also carries a tag: the layer whose output it derives from. Two spatial tensors of
    different tags meeting in one op (a residual add, a concatenation) make the network a non-chain;
    ``x * sigmoid(x)`` does not.
    """

    def __init__(self) -> None:
        self.geo: dict[int, tuple[torch.Tensor, Any, Any]] = {}
        self.merges = 0  # ops that joined spatial tensors of different layers: not a plain chain
        self.lost: list[str] = []  # ops that made a spatial tensor UNKNOWN, first one first
        self.input_hw: tuple[int, int] | None = None
        self._ops = 0
        self._made_by: dict[int, tuple[torch.Tensor, str]] = {}  # tensor id -> (tensor, the op that made it)
        self.segments = ChannelSegments()

    def made_by(self, t: Any) -> str:
        """The name of the op that produced ``t`` in the traced pass ('softmax', 'sigmoid', ...), or ''."""
        entry = self._made_by.get(id(t)) if isinstance(t, torch.Tensor) else None
        return entry[1] if entry is not None and entry[0] is t else ""

    def start(self, x: torch.Tensor) -> None:
        self.input_hw = (int(x.shape[-2]), int(x.shape[-1]))
        self.geo[id(x)] = (x, _geometry((x.ndim - 2, x.ndim - 1), (1, 1), (1, 1), (0, 0)), "input")

    def get(self, t: Any) -> Any:
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
        g = self._rule(func, name, args, kwargs, [(t, gi) for t, gi, _ in ins], outs[0])
        if g == UNKNOWN and any(isinstance(gi, (Geometry, Flat)) for _, gi, _ in ins):
            self.lost.append(name)
        # a channel slice of a concatenation of branches with different fields has only its own branches' field
        sliced = self.segments.after(name, args, kwargs, outs, self.get) if isinstance(g, Geometry) else {}
        for i, o in enumerate(outs[:1] if name in _MAXPOOL | _ADAPTIVE else outs):
            self.geo[id(o)] = (o, sliced.get(i, g), tag)

    def _rule(self, func, name, args, kwargs, ins, out) -> Any:
        states = [g for _, g in ins]
        if MIXED in states and name not in _VALUE_BLIND:
            return MIXED  # each value depends on every position, and so does anything computed from it
        g = self._moved(func, name, args, kwargs, ins, out)
        if g == UNKNOWN and any(_is_whole(s) for s in states) and name not in _VALUE_BLIND:
            return MIXED  # moved in a way not followed, but from values that each see the whole input
        return g

    def _moved(self, func, name, args, kwargs, ins, out) -> Any:
        first_t, first = ins[0]
        if PAIRS in [g for _, g in ins]:
            return self._pairs(name, args, kwargs, ins, out)
        if name in _WINDOWED:
            return self._windowed(name, args, kwargs, first_t, first, out)
        if name in _MATMUL:
            return self._matmul(name, args, out)
        if name == "einsum":
            return self._einsum(func, args, kwargs, out)
        single = len(ins) == 1 and args and args[0] is first_t
        if name in _PERMUTE and single:
            perm = permutation(func, args, kwargs, first_t.ndim)
            return permuted(first, perm) if perm is not None else UNKNOWN
        if name in _RESHAPE and single:
            g: State | None = reshaped(first, tuple(first_t.shape), tuple(out.shape))
            if g == UNKNOWN and out.ndim <= 2 and isinstance(first, (Geometry, Flat)):
                return GLOBAL  # a map flattened into a fully connected layer
            return g
        if name in _SPLIT and single and isinstance(first, (Geometry, Flat)):
            dim = int(_arg(args, kwargs, 2 if name != "unbind" else 1, "dim", 0)) % first_t.ndim
            spatial = first.dims if isinstance(first, Geometry) else (first.dim,)
            if dim in spatial:
                return UNKNOWN
            if name != "unbind":
                return first
            return replace(first, dims=tuple(d - (d > dim) for d in first.dims)) if isinstance(first, Geometry) \
                else replace(first, dim=first.dim - (first.dim > dim))
        if name == "__getitem__" and single and len(args) > 1:
            g = indexed(first, first_t, args[1])
            if g is None:
                g = _sliced(first, first_t, args[1]) if isinstance(first, Geometry) else \
                    (first if not isinstance(first, Flat) else self._flat_slice(first, first_t, args[1]))
            return UNKNOWN if g is None else g
        if name in _SOFTMAX and single:
            over = _dims_arg(args, kwargs, first_t.ndim)
            if isinstance(first, Geometry) and (over is None or over & set(first.dims)):
                return first if first.whole is not None else UNKNOWN
            if isinstance(first, Flat) and (over is None or first.dim in over):
                return replace(first, geo=replace(first.geo, whole=self.input_hw))  # a softmax over positions
            return first
        if name in ("pixel_shuffle", "pixel_unshuffle") and single and isinstance(first, Geometry):
            return self._shuffled(name, first, first_t, out)
        if name == "index_select" and single and isinstance(first, (Geometry, Flat)):
            dim = int(_arg(args, kwargs, 1, "dim", 0)) % first_t.ndim
            spatial = first.dims if isinstance(first, Geometry) else (first.dim,)
            return UNKNOWN if dim in spatial else first
        if name in _REDUCE and single and isinstance(first, Flat):
            over = _dims_arg(args, kwargs, first_t.ndim)
            if over is None or first.dim in over:
                return MIXED  # a sum over the flattened positions: every position counts
            keep = bool(_arg(args, kwargs, 2, "keepdim", False))
            return first if keep else replace(first, dim=first.dim - sum(d < first.dim for d in over))
        if name in _REDUCE and single and isinstance(first, Geometry):
            over = _dims_arg(args, kwargs, first_t.ndim)
            if over is not None and not over & set(first.dims):
                keep = bool(_arg(args, kwargs, 2, "keepdim", False)) or name in ("std_mean", "var_mean")
                return first if keep else replace(first, dims=tuple(d - sum(r < d for r in over) for d in first.dims))
        return self._elementwise(name, args, kwargs, ins, out)

    # ------------------------------------------------------------ rule families
    def _windowed(self, name, args, kwargs, first_t, first, out) -> Any:
        if args and args[0] is not first_t:
            return UNKNOWN
        if isinstance(first, Flat):  # a linear layer over the features of tokens keeps them in place
            return first if name == "linear" and first.dim < first_t.ndim - 1 else UNKNOWN
        # a global pool of a map the tracer lost stays lost: the map may have dropped or repeated cells (a crop by
        # index, a zoomed grid_sample), so "every cell" need not be the whole picture
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
            return _grow(first, kernel, stride, _pair(padding), dilation, out, self.input_hw)
        if name in _MAXPOOL | _AVGPOOL:
            pos = 2 if name == "lp_pool2d" else 1  # lp_pool2d(input, norm_type, kernel_size, stride)
            kernel = _pair(_arg(args, kwargs, pos, "kernel_size", 1))
            stride = _arg(args, kwargs, pos + 1, "stride", None)
            stride = kernel if stride in (None, [], ()) else _pair(stride)
            padding = (0, 0) if name == "lp_pool2d" else _pair(_arg(args, kwargs, 3, "padding", 0))
            dilation = _pair(_arg(args, kwargs, 4, "dilation", 1)) if name in _MAXPOOL else (1, 1)
            return _grow(first, kernel, stride, padding, dilation, out, self.input_hw)
        if name == "pad":
            return _padded(first, first_t, args, kwargs)
        if name == "interpolate":
            return _interpolated(first, first_t, out, args, kwargs)
        if name in _ADAPTIVE:
            hin, win = _spatial(first_t, first)
            hout, wout = out.shape[-2], out.shape[-1]
            if _axes_of(first, out.ndim) is None:
                return UNKNOWN
            if (hout, wout) == (hin, win):
                return first
            if (hout, wout) == (1, 1):
                return GLOBAL if first.whole is None else MIXED
            if hin % hout == 0 and win % wout == 0:
                k = (hin // hout, win // wout)
                return _grow(first, k, k, (0, 0), (1, 1), out, self.input_hw)
            return UNKNOWN
        # linear: on the channel dim of a channels-last map it keeps the geometry
        if first.dims[1] < first_t.ndim - 1 and out.shape[first.dims[0]] == first_t.shape[first.dims[0]] and \
                out.shape[first.dims[1]] == first_t.shape[first.dims[1]]:
            return first
        if first_t.ndim == 2:
            return GLOBAL
        return MIXED if first.whole is not None else UNKNOWN

    def _shuffled(self, name, g: Geometry, t: torch.Tensor, out: torch.Tensor) -> Any:
        """pixel_unshuffle (space-to-depth): a cell reads a block x block square of cells; pixel_shuffle
        (depth-to-space): each cell is read by block x block cells, like nearest upsampling."""
        if g.dims != (t.ndim - 2, t.ndim - 1) or g.mirror is not None:
            return UNKNOWN
        if g.whole is not None:
            return g
        for a in range(2):
            if name == "pixel_unshuffle":
                block = t.shape[-2 + a] // out.shape[-2 + a]
                g = g.axis(a, g.size[a] + (block - 1) * g.stride[a], g.stride[a] * block, g.offset[a])
            else:
                block = out.shape[-2 + a] // t.shape[-2 + a]
                lead = Fraction(block - 1, block) * g.stride[a]
                g = replace(g.axis(a, g.size[a] + lead, g.stride[a] / block, g.offset[a] - lead), exact=block == 1)
        return g

    def _flat_slice(self, f: Flat, t: torch.Tensor, index: Any) -> Any:
        """Plain slices of a Flat: only whole slices of the flattened dim keep it."""
        index = index if isinstance(index, tuple) else (index,)
        if Ellipsis in index:
            e = index.index(Ellipsis)
            index = index[:e] + (slice(None),) * (t.ndim - len(index) + 1) + index[e + 1:]
        return f if f.dim >= len(index) or index[f.dim] == slice(None) else UNKNOWN

    def _matmul(self, name, args, out) -> Any:
        """``a @ b``: a (..., m, k), b (..., k, n). Positions on a contracted dim: a Flat's are mixed (MIXED), a
        map's rows or columns summed over (UNKNOWN); positions of both operands left: PAIRS (attention logits)."""
        if len(args) < 2 or not all(isinstance(x, torch.Tensor) for x in args[:2]):
            return UNKNOWN
        a, b = (args[1], args[0]) if name == "__rmatmul__" else (args[0], args[1])
        if a.ndim < 2 or b.ndim < 2:
            sa, sb = self.get(a), self.get(b)
            return UNKNOWN if isinstance(sa, (Geometry, Flat)) or isinstance(sb, (Geometry, Flat)) else GLOBAL
        if UNKNOWN in (self.get(a), self.get(b)):
            return UNKNOWN
        kept = []
        for t, contracted, matrix_dim, to in ((a, a.ndim - 1, a.ndim - 2, out.ndim - 2), (b, b.ndim - 2, b.ndim - 1, out.ndim - 1)):
            s = self.get(t)
            if not isinstance(s, (Geometry, Flat)):
                continue
            dims = s.dims if isinstance(s, Geometry) else (s.dim,)
            if contracted in dims:
                if isinstance(s, Flat) or s.whole is not None:
                    return MIXED
                return UNKNOWN
            moved = {d: (to if d == matrix_dim else d + out.ndim - t.ndim) for d in dims}
            kept.append(replace(s, dims=(moved[s.dims[0]], moved[s.dims[1]])) if isinstance(s, Geometry)
                        else replace(s, dim=moved[s.dim]))
        if not kept:
            return GLOBAL
        if len(kept) == 2:
            return PAIRS if all(isinstance(s, Flat) for s in kept) else UNKNOWN
        return kept[0]

    def _einsum(self, func, args, kwargs, out) -> Any:
        """A one-operand einsum that only moves dims is a permute; an einsum that contracts flattened positions
        mixes them; anything else that touches positions: UNKNOWN."""
        eq = args[0] if args and isinstance(args[0], str) else None
        ops = [t for t in (args[1:] if len(args) > 2 or not isinstance(args[1] if len(args) > 1 else None, (list, tuple))
                           else args[1]) if isinstance(t, torch.Tensor)] if eq else []
        if eq is None or "->" not in eq or "." in eq:
            return UNKNOWN
        lhs, rhs = eq.replace(" ", "").split("->")
        terms = lhs.split(",")
        if len(terms) != len(ops):
            return UNKNOWN
        if len(ops) == 1:
            perm = permutation(func, (eq, ops[0]), {}, ops[0].ndim)
            if perm is not None:
                return permuted(self.get(ops[0]), perm)
        if any(self.get(t) == UNKNOWN for t in ops):
            return UNKNOWN
        kept = []
        for term, t in zip(terms, ops):
            s = self.get(t)
            if not isinstance(s, (Geometry, Flat)):
                continue
            dims = s.dims if isinstance(s, Geometry) else (s.dim,)
            letters = [term[d] for d in dims]
            if any(l not in rhs for l in letters):
                return MIXED if isinstance(s, Flat) or s.whole is not None else UNKNOWN
            if any(l in other for l in letters for other, u in zip(terms, ops) if u is not t) or \
                    any(term.count(l) > 1 for l in letters):
                return UNKNOWN
            kept.append(replace(s, dims=tuple(rhs.index(l) for l in letters)) if isinstance(s, Geometry)
                        else replace(s, dim=rhs.index(letters[0])))
        if not kept:
            return GLOBAL
        if len(kept) == 2 and all(isinstance(s, Flat) for s in kept):
            return PAIRS
        return kept[0] if len(kept) == 1 else UNKNOWN

    def _pairs(self, name, args, kwargs, ins, out) -> Any:
        """Position-by-position logits (last two dims): normalised or contracted, every position counts."""
        pairs_t = next(t for t, g in ins if g == PAIRS)
        if name in _SOFTMAX:
            over = _dims_arg(args, kwargs, pairs_t.ndim)
            return MIXED if over is None or over & {pairs_t.ndim - 1, pairs_t.ndim - 2} else PAIRS
        if name in _MATMUL or name == "einsum" or name in _REDUCE:
            return MIXED
        if out.ndim == pairs_t.ndim and tuple(out.shape[-2:]) == tuple(pairs_t.shape[-2:]) and name not in _REARRANGE \
                and name not in _PERMUTE | _RESHAPE | {"__getitem__"}:
            return PAIRS  # element-wise (scaled, a position bias added)
        return UNKNOWN

    def _elementwise(self, name, args, kwargs, ins, out) -> Any:
        """Ops that keep every position where it is (activations, adds, concatenations along channels): the
        union of the inputs' fields, each input's dims aligned to the output's as broadcasting does."""
        states = [g for _, g in ins]
        if name in _REARRANGE and any(isinstance(g, (Geometry, Flat)) for g in states):
            return UNKNOWN
        aligned: list[tuple[Any, Any] | None] = []
        for t, g in ins:
            if isinstance(g, (Geometry, Flat)):
                s = _shifted(g, out.ndim - t.ndim)
                dims = s.dims if isinstance(s, Geometry) else (s.dim,)
                src = g.dims if isinstance(g, Geometry) else (g.dim,)
                if out.ndim < t.ndim or any(out.shape[d] != t.shape[e] for d, e in zip(dims, src)):
                    aligned.append(None)
                else:
                    aligned.append((t, s))
        spatial = [x for x in aligned if x is not None]
        if spatial and len(spatial) == len(aligned):
            geos = [s for _, s in spatial if isinstance(s, Geometry)]
            flats = [s for _, s in spatial if isinstance(s, Flat)]
            if geos and not flats:
                if len({g.dims for g in geos}) != 1:
                    return self._whole_or(geos, spatial, UNKNOWN)
                if UNKNOWN in states:
                    return self._whole_or(geos, spatial, UNKNOWN)
                return _union(geos, geos[0].dims, _spatial(out, geos[0]), self.input_hw)
            if flats and not geos and len({(f.dim, f.hw) for f in flats}) == 1 and UNKNOWN not in states:
                whole = next((f for f in flats if f.geo.whole is not None), None)
                if whole is not None:
                    return whole
                u = _union([f.geo for f in flats], flats[0].geo.dims, (1, 1), None)
                return replace(flats[0], geo=u) if isinstance(u, Geometry) else UNKNOWN
            return UNKNOWN
        if UNKNOWN in states:
            return UNKNOWN  # pooled or not: a lost map may have dropped or repeated cells
        if not aligned:
            return GLOBAL
        # a map whose positions the output does not keep
        ref_t, ref = next((t, g) for t, g in ins if isinstance(g, (Geometry, Flat)))
        if isinstance(ref, Flat):
            return UNKNOWN
        hw = _spatial(ref_t, ref)
        if out.ndim <= 2 or (out.ndim >= 3 and tuple(out.shape[-2:]) == (1, 1) and hw != (1, 1)):
            return GLOBAL
        if name in _REDUCE and out.numel() * hw[0] * hw[1] <= ref_t.numel():
            return GLOBAL
        return UNKNOWN

    def _whole_or(self, geos, spatial, otherwise) -> Any:
        """A whole part of an element-wise op makes it whole, whatever else it joins (even UNKNOWN)."""
        for _, s in spatial:
            if isinstance(s, Geometry) and s.whole is not None:
                return s
        return otherwise


def _tensors(args: Sequence[Any], kwargs: dict[str, Any]):
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, torch.Tensor):
            yield a
        elif isinstance(a, (list, tuple)):
            yield from (t for t in a if isinstance(t, torch.Tensor))
