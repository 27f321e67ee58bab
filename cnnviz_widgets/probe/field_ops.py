"""What the field tracer knows about one tensor, and the rules for ops that move or mix positions.

A traced tensor is in one of these states:

- a :class:`Geometry`: which two dims are (rows, columns) and the exact field of one cell; ``whole`` when
  every cell sees the whole input (after attention or global context), ``mirror`` while a reflect,
  replicate or circular pad waits for the window that reads it;
- a :class:`Flat`: the positions of a Geometry flattened into one dim (``x.reshape(N, C, H * W)``);
- ``GLOBAL``: no positions, from global pooling (a squeeze-excitation gate: not counted when broadcast back);
- ``MIXED``: no positions, and every value depends on every position (a softmax-weighted sum over positions):
  counted, so a map it is broadcast onto becomes whole;
- ``PAIRS``: a position-by-position matrix (``q @ k``), each value depending on two positions; normalising or
  contracting it over positions (softmax, ``attn @ v``) gives ``MIXED``;
- ``UNKNOWN``: an op the tracer cannot follow moved values between positions; no field (None).

Only ops whose effect on every cell is known exactly keep a Geometry; everything else is UNKNOWN, so a traced
field is never a wrong box. This module holds states and pure rules; the tracer (``receptive_field``) applies them.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import torch

GLOBAL = "global"
UNKNOWN = "unknown"
MIXED = "mixed"
PAIRS = "pairs"


@dataclass(frozen=True)
class Geometry:
    """Geometry of a tensor: which dims are (rows, columns), and the field of one of its cells (exact
    Fractions, so upsampling then striding back gives whole numbers again).

    ``whole``: the input's (H, W) when every cell sees the whole input (then size, stride and offset are
    moot). ``mirror``: a reflect/replicate/circular pad whose cells copy other cells, pending until the
    next window reads it: ``(mode, ((top, bottom), (left, right)), (rows, cols) before padding)``.
    ``exact``: False below upsampling (nearest, a transposed conv, depth-to-space), where neighbouring cells
    read the same cell and the field is the smallest affine box that holds each cell's (the convention for
    upsampled layers); such a box joined with a different one is no field at all (see the tracer's union).
    """

    dims: tuple[int, ...]
    size: tuple[Fraction, ...]
    stride: tuple[Fraction, ...]
    offset: tuple[Fraction, ...]
    whole: tuple[int, int] | None = None
    mirror: tuple | None = None
    exact: bool = True

    def axis(self, a: int, size: Fraction, stride: Fraction, offset: Fraction) -> Geometry:
        """This geometry with axis ``a``'s field replaced."""
        s, t, o = list(self.size), list(self.stride), list(self.offset)
        s[a], t[a], o[a] = Fraction(size), Fraction(stride), Fraction(offset)
        return replace(self, size=tuple(s), stride=tuple(t), offset=tuple(o))


@dataclass(frozen=True)
class Flat:
    """A Geometry's positions flattened, row-major, into dim ``dim`` of size ``hw[0] * hw[1]``."""

    geo: Geometry
    dim: int
    hw: tuple[int, int]


State = Geometry | Flat | str


def covers(g: Geometry, grid_hw: tuple[int, int], input_hw: tuple[int, int] | None) -> bool:
    """Whether every cell of a ``grid_hw`` map of geometry ``g`` sees the whole input (its box, clipped to the
    input, is the input): then any union with it is the whole input, whatever the other parts' strides."""
    if g.whole is not None:
        return True
    if input_hw is None or g.mirror is not None:
        return False
    return all(g.offset[a] + (grid_hw[a] - 1) * g.stride[a] <= 0 and g.offset[a] + g.size[a] >= input_hw[a]
               for a in range(2))


# ---------------------------------------------------------------- permutations of dims

def permutation(func: Any, args: Sequence[Any], kwargs: dict[str, Any], ndim: int) -> list[int] | None:
    """For a dims-moving op (permute, transpose, swapaxes, movedim, .mT, .T, a one-operand einsum), the
    input dim of each output dim, found by running it on a meta tensor whose sizes name the dims."""
    probe = torch.empty(tuple(range(2, ndim + 2)), device="meta")
    try:
        if getattr(func, "__name__", "") == "einsum":
            eq = args[0]
            ins, _, out = eq.replace(" ", "").partition("->")
            if "," in ins or "." in ins or not out or sorted(ins) != sorted(out) or len(set(ins)) != len(ins):
                return None
            res = torch.einsum(eq, probe)
        else:
            res = func(probe, *args[1:], **kwargs)
    except Exception:
        return None
    if not isinstance(res, torch.Tensor) or res.ndim != ndim or sorted(res.shape) != list(range(2, ndim + 2)):
        return None
    return [s - 2 for s in res.shape]


def permuted(state: State, perm: list[int]) -> State:
    """A state after its tensor's dims are permuted (output dim i is input dim perm[i])."""
    if isinstance(state, Geometry):
        return replace(state, dims=(perm.index(state.dims[0]), perm.index(state.dims[1])))
    if isinstance(state, Flat):
        return replace(state, dim=perm.index(state.dim))
    return state


# ---------------------------------------------------------------- reshapes

def _groups(a: Sequence[int], b: Sequence[int]) -> list[tuple[list[int], list[int]]] | None:
    """Split a reshape from shape ``a`` to ``b`` into the smallest runs of dims whose sizes multiply alike."""
    i = j = 0
    out = []
    while i < len(a) or j < len(b):
        gi, gj, pa, pb = [], [], 1, 1
        if i < len(a):
            gi.append(i)
            pa, i = pa * a[i], i + 1
        if j < len(b):
            gj.append(j)
            pb, j = pb * b[j], j + 1
        while pa != pb:
            if pa < pb and i < len(a):
                gi.append(i)
                pa, i = pa * a[i], i + 1
            elif pb < pa and j < len(b):
                gj.append(j)
                pb, j = pb * b[j], j + 1
            else:
                return None
        out.append((gi, gj))
    return out


def reshaped(state: State, a: Sequence[int], b: Sequence[int]) -> State:
    """A state after its tensor of shape ``a`` is viewed as shape ``b`` (view, reshape, flatten, unflatten,
    squeeze, unsqueeze). Exact cases: dims that keep their size move; a spatial dim split into (n, block)
    keeps its field per block (space-to-depth: size + (block-1)*stride, stride*block); a spatial dim merged
    with the dims after it (depth-to-space) reads each cell ``block`` times, like nearest upsampling; rows
    and columns merged in that order flatten the positions (a Flat), and a Flat split back into (H, W) is
    the Geometry again. Anything else: UNKNOWN."""
    a, b = list(a), list(b)
    if not isinstance(state, (Geometry, Flat)):
        return state
    if isinstance(state, Geometry) and state.mirror is not None:
        return UNKNOWN
    groups = _groups(a, b)
    if groups is None:
        return UNKNOWN
    spatial = list(state.dims) if isinstance(state, Geometry) else [state.dim]
    gone = [d for gi, gj in groups if not gj for d in gi if d in spatial]  # size-1 spatial dims squeezed away
    if gone:  # a 1x1 map flattened to (N, C): no positions left, what fully connected layers read
        return GLOBAL if len(gone) == len(spatial) else UNKNOWN
    new_dims: list[int | None] = [None] * len(spatial)
    geo = state if isinstance(state, Geometry) else state.geo
    for gi, gj in groups:
        inside = [k for k, d in enumerate(spatial) if d in gi]
        if not inside:
            continue
        big_in = [d for d in gi if a[d] != 1 or d in spatial]
        big_out = [d for d in gj if b[d] != 1] or gj[:1]
        if isinstance(state, Flat):
            f = state.dim
            if big_in != [f]:
                return UNKNOWN
            if len(big_out) == 1:
                return replace(state, dim=big_out[0])
            if [b[d] for d in big_out] == list(state.hw) and big_out[1] == big_out[0] + 1:
                return replace(geo, dims=(big_out[0], big_out[1]))
            return UNKNOWN
        if len(inside) == 2:  # rows then columns merged into one dim: the positions flattened
            if big_in == list(geo.dims) and geo.dims[1] == geo.dims[0] + 1 and len(big_out) == 1:
                return Flat(geo, big_out[0], (a[geo.dims[0]], a[geo.dims[1]]))
            return UNKNOWN
        k = inside[0]
        s = spatial[k]
        if big_in == [s] and len(big_out) == 1:
            new_dims[k] = big_out[0]
        elif big_in == [s]:  # split: the first output dim counts blocks, the rest index inside a block
            block = a[s] // b[big_out[0]]
            new_dims[k] = big_out[0]
            if geo.whole is None:
                geo = geo.axis(k, geo.size[k] + (block - 1) * geo.stride[k], geo.stride[k] * block, geo.offset[k])
        elif big_in[0] == s and len(big_out) == 1:  # merged with the dims after it: each cell read `rep` times
            rep = math.prod(a[d] for d in big_in[1:])
            new_dims[k] = big_out[0]
            if geo.whole is None and rep > 1:
                lead = Fraction(rep - 1, rep) * geo.stride[k]
                geo = replace(geo.axis(k, geo.size[k] + lead, geo.stride[k] / rep, geo.offset[k] - lead), exact=False)
        else:
            return UNKNOWN
    if isinstance(state, Flat) or new_dims[0] is None or new_dims[1] is None or new_dims[0] == new_dims[1]:
        return UNKNOWN
    return replace(geo, dims=(new_dims[0], new_dims[1]))


# ---------------------------------------------------------------- indexing

def indexed(state: State, t: torch.Tensor, index: Any) -> State | None:
    """``t[index]``: plain slices on the spatial dims are left to the caller (None); ints, None and one
    1-D list or tensor on other dims keep the positions (dims renumbered); anything else that touches a
    spatial or flattened dim moves values between positions: UNKNOWN."""
    if not isinstance(state, (Geometry, Flat)):
        return state
    index = tuple(index) if isinstance(index, tuple) else (index,)
    spatial = set(state.dims) if isinstance(state, Geometry) else {state.dim}
    if sum(i is Ellipsis for i in index) > 1:
        return UNKNOWN
    used = sum(1 for i in index if i is not None and i is not Ellipsis)
    fill = (slice(None),) * max(t.ndim - used, 0)
    if Ellipsis in index:
        e = index.index(Ellipsis)
        index = index[:e] + fill + index[e + 1:]
    else:
        index = index + fill
    if all(isinstance(i, slice) for i in index):
        return None  # plain slices: the caller's rule
    def is_int(i):
        return isinstance(i, int) or (isinstance(i, torch.Tensor) and i.ndim == 0 and not i.is_floating_point())
    advanced = [i for i in index if i is not None and not isinstance(i, slice) and not is_int(i)]
    if advanced and (len(advanced) > 1 or any(is_int(i) for i in index)):
        return UNKNOWN  # numpy's rules may move the indexed dims to the front
    if any(not isinstance(i, (list, tuple, torch.Tensor)) or (isinstance(i, torch.Tensor) and (i.ndim != 1 or i.dtype == torch.bool))
           for i in advanced):
        return UNKNOWN
    mapping: dict[int, int] = {}
    src = out = 0
    for i in index:
        if i is None:
            out += 1
            continue
        if src in spatial and not (isinstance(i, slice) and i == slice(None)):
            return UNKNOWN  # an int, a list or a slice on a spatial dim mixed with other index kinds
        if not is_int(i):
            mapping[src] = out
            out += 1
        src += 1
    if isinstance(state, Geometry):
        return replace(state, dims=(mapping[state.dims[0]], mapping[state.dims[1]]))
    if isinstance(state, Flat):
        return replace(state, dim=mapping[state.dim])
    return state


# ---------------------------------------------------------------- pads that copy cells

def mirrored_pad(g: Geometry, t: torch.Tensor, pad: Sequence[int], mode: str) -> Geometry | str:
    """A reflect, replicate or circular pad: its cells copy cells inside the map, so the box is right only
    if every window reading a copy also reads the original; that is checked by :func:`window_reads_mirror`
    at the next window, and the pad stays pending until then."""
    if g.mirror is not None or g.whole is not None:
        return g if g.whole is not None else UNKNOWN
    n = t.ndim
    before = {n - 1 - i // 2: (int(pad[i]), int(pad[i + 1]) if i + 1 < len(pad) else 0) for i in range(0, len(pad), 2)}
    if any(d not in g.dims and v != (0, 0) for d, v in before.items()) or any(min(v) < 0 for v in before.values()):
        return UNKNOWN
    pads = tuple(before.get(g.dims[a], (0, 0)) for a in range(2))
    off = tuple(g.offset[a] - pads[a][0] * g.stride[a] for a in range(2))
    return replace(g, offset=off, mirror=(mode, pads, (t.shape[g.dims[0]], t.shape[g.dims[1]])))


def _source(mode: str, cell: int, n: int) -> int:
    """The cell of an n-cell axis that padded cell ``cell`` (negative, or >= n) copies."""
    if mode == "reflect":
        return -cell if cell < 0 else 2 * (n - 1) - cell
    if mode == "replicate":
        return 0 if cell < 0 else n - 1
    return cell % n  # circular


def window_reads_mirror(g: Geometry, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                        dilation: tuple[int, int], out_hw: tuple[int, int], axes: tuple[int, int],
                        input_hw: tuple[int, int] | None) -> bool:
    """Whether every window of this conv or pool that reads a copied cell of ``g``'s pending pad also reads
    a cell at least as far inside as the original (so each unit's support is still its clipped box: for a
    reflect pad p before a k-tap window, 2p <= k - 1), and the padded map's own edge cells reach the input's
    borders (so the copies' affine boxes, clipped, start where the originals do)."""
    assert g.mirror is not None  # callers ask only with a pad pending
    mode, pads, sizes = g.mirror
    if input_hw is None:
        return False
    for ta in range(2):
        a = axes[ta]
        (lo, hi), n = pads[a], sizes[a]
        if lo == hi == 0:
            continue
        first = g.offset[a] + lo * g.stride[a]  # cell 0's field before the pad
        if (lo and first > 0) or (hi and first + (n - 1) * g.stride[a] + g.size[a] < input_hw[a]):
            return False
        for u in range(out_hw[ta]):
            start = u * stride[ta] - padding[ta] - lo  # in cells of the unpadded map
            cells = [start + tap * dilation[ta] for tap in range(kernel[ta])]
            cells = [c for c in cells if -lo <= c < n + hi]
            real = [c for c in cells if 0 <= c < n]
            copies = [_source(mode, c, n) for c in cells if c < 0 or c >= n]
            if copies and (not real or min(copies) < min(real) or max(copies) > max(real)):
                return False
    return True
