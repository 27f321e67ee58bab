"""Channel segments: which channels of a concatenated map came from which branch, and so which field they have.

A concatenation along channels of branches with different fields has, over all channels, the union of their
fields; but a channel slice of it (MixNet's mixed convolutions split the map again, a GhostNet module keeps its
first channels) has only its own branches' fields. The tracer keeps the union for the whole map and asks this
table for the field of a slice, so that slice's layers get their exact field instead of the union's larger box.
Only (N, C, H, W) maps are followed; any op other than a channel slice or one that keeps every channel where it
is (activations, norms, per-channel scales, gates, clones) forgets the segments, falling back to the union.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from .field_ops import Geometry

Segment = tuple[int, int, Geometry]  # channels [start, stop) and their field
_CAT = {"cat", "concat", "concatenate"}
_SPLIT = {"split", "split_with_sizes", "chunk", "tensor_split", "unbind"}
_KEEP_BLIND = {"conv2d", "conv_transpose2d", "linear", "max_pool2d", "_max_pool2d", "max_pool2d_with_indices",
               "avg_pool2d", "lp_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "pad", "interpolate",
               "permute", "transpose", "view", "reshape", "flatten", "matmul", "einsum", "__getitem__", "narrow",
               "softmax", "log_softmax", "_softmax", "_log_softmax", "roll", "flip", "gather", "index_select"}


def _plain(g: Any) -> bool:
    return isinstance(g, Geometry) and g.dims == (2, 3) and g.whole is None and g.mirror is None and g.exact


def _union(segments: Sequence[Segment]) -> Geometry | None:
    geoms = [g for _, _, g in segments]
    if any(g.stride != geoms[0].stride for g in geoms):
        return None
    start = tuple(min(g.offset[a] for g in geoms) for a in range(2))
    end = tuple(max(g.offset[a] + g.size[a] for g in geoms) for a in range(2))
    return replace(geoms[0], size=(end[0] - start[0], end[1] - start[1]), offset=start)


def _dim(args: Sequence[Any], kwargs: dict[str, Any], pos: int, ndim: int) -> int | None:
    d = kwargs.get("dim", args[pos] if len(args) > pos else 0)
    return d % ndim if isinstance(d, int) else None


class ChannelSegments:
    """Per traced tensor, its channel segments (only where they differ): fed by the GeometryTracer."""

    def __init__(self) -> None:
        self._table: dict[int, tuple[torch.Tensor, tuple[Segment, ...]]] = {}

    def of(self, t: torch.Tensor, state: Any) -> tuple[Segment, ...] | None:
        entry = self._table.get(id(t))
        if entry is not None and entry[0] is t:
            return entry[1]
        return ((0, int(t.shape[1]), state),) if t.ndim == 4 and _plain(state) else None

    def after(self, name: str, args: Sequence[Any], kwargs: dict[str, Any], outs: list[torch.Tensor],
              state_of: Any) -> dict[int, Geometry]:
        """Record the segments of ``outs``; return the exact field of outputs that are a slice of fewer branches."""
        first = args[0] if args else None
        if name in _CAT and isinstance(first, (list, tuple)) and first and all(isinstance(t, torch.Tensor) for t in first):
            if first[0].ndim == 4 and _dim(args, kwargs, 1, 4) == 1:
                self._concatenated(list(first), outs[0], state_of)
            return {}
        if not isinstance(first, torch.Tensor) or first.ndim != 4:
            return {}
        entry = self._table.get(id(first))
        if entry is None or entry[0] is not first:
            self._joined(name, args, kwargs, outs, state_of)
            return {}
        segments = entry[1]
        ranges = self._selected(name, args, kwargs, first, outs)
        if ranges is not None:
            fields = {}
            for i, (lo, hi) in ranges.items():
                part = tuple((max(a, lo) - lo, min(b, hi) - lo, g) for a, b, g in segments if a < hi and b > lo)
                if part and (joined := _union(part)) is not None:
                    fields[i] = replace(joined, dims=(2, 3))
                    self._remember(outs[i], part)
            return fields
        self._joined(name, args, kwargs, outs, state_of)
        return {}

    def _joined(self, name: str, args: Sequence[Any], kwargs: dict[str, Any], outs: list[torch.Tensor],
                state_of: Any) -> None:
        """An op that keeps every channel where it is: its output's segments are, channel by channel, the union
        of its map inputs' (a residual add of a segmented map and a plain one keeps the segments)."""
        tensors = [t for t in list(args) + list(kwargs.values()) if isinstance(t, torch.Tensor)]
        if name in _KEEP_BLIND or len(outs) != 1 or outs[0].ndim != 4:
            return
        maps = [t for t in tensors if t.ndim >= 3 and tuple(t.shape[-2:]) != (1, 1)]
        if not maps or any(t.shape != outs[0].shape for t in maps):
            return
        own = [self.of(t, state_of(t)) for t in maps]
        if any(o is None for o in own) or not any(self._table.get(id(t), (None,))[0] is t for t in maps):
            return
        cuts = sorted({a for segs in own if segs for a, _, _ in segs} | {int(outs[0].shape[1])})
        merged = []
        for lo, hi in zip(cuts, cuts[1:]):
            u = _union([seg for segs in own if segs for seg in segs if seg[0] <= lo and seg[1] >= hi])
            if u is None:
                return
            merged.append((lo, hi, u))
        self._remember(outs[0], tuple(merged))

    def _remember(self, t: torch.Tensor, segments: tuple[Segment, ...]) -> None:
        if len({(g.size, g.offset) for _, _, g in segments}) > 1:
            self._table[id(t)] = (t, segments)

    def _concatenated(self, parts: list[torch.Tensor], out: torch.Tensor, state_of: Any) -> None:
        segments: list[Segment] = []
        at = 0
        for t in parts:
            own = self.of(t, state_of(t))
            if own is None:
                return
            segments.extend((a + at, b + at, g) for a, b, g in own)
            at += int(t.shape[1])
        self._remember(out, tuple(segments))

    @staticmethod
    def _selected(name: str, args: Sequence[Any], kwargs: dict[str, Any], t: torch.Tensor,
                  outs: list[torch.Tensor]) -> dict[int, tuple[int, int]] | None:
        """Output index -> the channel range of ``t`` it holds, for a slice along channels; None otherwise."""
        if name in _SPLIT:
            if _dim(args, kwargs, 2 if name != "unbind" else 1, 4) != 1:
                return None
            ranges, at = {}, 0
            for i, o in enumerate(outs):
                width = 1 if name == "unbind" else int(o.shape[1])
                ranges[i] = (at, at + width)
                at += width
            return ranges if name != "unbind" else None  # unbind drops the channel dim: no map left to follow
        if name == "narrow" and _dim(args, kwargs, 1, 4) == 1:
            start = int(kwargs.get("start", args[2] if len(args) > 2 else 0))
            return {0: (start, start + int(outs[0].shape[1]))}
        if name == "__getitem__" and len(args) > 1:
            index = args[1] if isinstance(args[1], tuple) else (args[1],)
            if len(index) >= 2 and index[0] == slice(None) and isinstance(index[1], slice) and \
                    index[1].step in (None, 1) and all(i == slice(None) or i is Ellipsis for i in index[2:]):
                start, stop, _ = index[1].indices(int(t.shape[1]))
                return {0: (start, stop)}
        return None
