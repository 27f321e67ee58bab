"""Streaming per-filter top-k (paper Fig. 7, Fig. 3 column d): the k strongest units of each filter.

Memory is O(filters x k): each batch's candidates are merged into the running best with one sort
of 2k entries per filter. Ties are broken by the lower position (image, then row, then column), so
a sharded run merges into exactly the one-pass result.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .. import checks
from ..errors import CnnvizError, IndexOutOfRangeError
from ..imageset import ImageSet
from ..probe.probe import Probe
from ..probe.rules import DEFAULT_RULE
from ..probe.receptive_field import ReceptiveField
from ..probe.reconstruct import unit_reconstructions
from .stream import device_batch
from .patches import PatchSource, crop_padded, crop_reconstruction


def order_desc(values: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Per row, the permutation sorting by value (descending), then key (ascending)."""
    by_key = keys.argsort(dim=1, stable=True)
    v = values.gather(1, by_key)
    by_value = v.argsort(dim=1, descending=True, stable=True)
    return by_key.gather(1, by_value)


def batch_topk(flat: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k per row of ``flat`` (R, M), ordered by (value desc, position asc).

    Ties that straddle the k-th place are resolved toward the lowest positions; they are found
    from one extra candidate (the (k+1)-th), so no second pass over the data is needed.
    """
    m = flat.shape[1]
    k = min(k, m)
    vals, idx = flat.topk(min(k + 1, m), dim=1)
    if vals.shape[1] > k:
        ambiguous = vals[:, k - 1] == vals[:, k]
        vals, idx = vals[:, :k].clone(), idx[:, :k].clone()
        if ambiguous.any():
            rows = ambiguous.nonzero().flatten()
            sub, t = flat[rows], vals[rows, k - 1 : k]
            greater = sub > t
            equal = sub == t
            need = k - greater.sum(1, keepdim=True)
            take = greater | (equal & (equal.cumsum(1) <= need))
            cols = take.nonzero()[:, 1].view(len(rows), k)
            idx[rows] = cols
            vals[rows] = sub.gather(1, cols)
    perm = order_desc(vals, idx)
    return vals.gather(1, perm), idx.gather(1, perm)


def map_topk(maps: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_topk`` of (R, H, W) maps flattened to (R, H*W): on the CPU by :func:`map_topk_rows`, which
    resolves rare ties in a second step (asking whether there are any is free there); on a GPU by
    :func:`map_topk_keys`, which never waits for the device (that question would, every batch)."""
    if maps.device.type == "cpu":
        values, index = map_topk_rows(maps, k)
        return values.float(), index  # bf16 maps under autocast: the few kept values in float32
    return map_topk_keys(maps, k)


def float_keys(v: torch.Tensor) -> torch.Tensor:
    """int64 numbers that order like the float32 values ``v`` (-0.0 and 0.0 alike), for exact sorting."""
    i = (v.float() + 0.0).view(torch.int32)
    return (i ^ ((i >> 31) & 0x7FFFFFFF)).long()


def map_topk_keys(maps: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_topk`` of (R, H, W) maps with no data-dependent branch: each value and its position form one
    int64 key (value in the high 32 bits, the position reversed in the low ones), unique per map, so one
    topk gives (value desc, position asc). Large maps first keep the k rows with the largest keys of their
    first maximum (``max`` returns the first): every top-k unit lies in one of those rows."""
    r, h, w = maps.shape
    m = h * w
    k = min(k, m)
    if h <= k + 1:
        flat = maps.reshape(r, m)
        pos = torch.arange(m, device=maps.device)
        idx = ((float_keys(flat) << 32) | (m - 1 - pos)).topk(k, dim=1).indices
        return flat.gather(1, idx).float(), idx
    row_v, row_c = maps.max(dim=2)
    row_keys = (float_keys(row_v) << 32) | (m - 1 - (torch.arange(h, device=maps.device) * w + row_c))
    rows = row_keys.topk(k, dim=1).indices.sort(dim=1).values
    cand = maps.gather(1, rows[:, :, None].expand(r, k, w)).reshape(r, k * w)
    pos = (rows[:, :, None] * w + torch.arange(w, device=maps.device)).reshape(r, k * w)
    j = ((float_keys(cand) << 32) | (m - 1 - pos)).topk(k, dim=1).indices
    return cand.gather(1, j).float(), pos.gather(1, j)


def map_topk_rows(maps: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_topk`` of (R, H, W) maps flattened to (R, H*W), faster for large maps.

    The top k+1 values of a map lie in the k+1 map rows with the largest row maxima, so one
    max-reduction picks candidate rows and the exact top-k runs on those alone. Rows whose
    maxima tie at that boundary take the full path, so the result is always batch_topk's.
    """
    r, h, w = maps.shape
    kk = k + 1
    if h * w < 4096 or h <= kk + 1:
        return batch_topk(maps.reshape(r, h * w), k)
    row_max = maps.amax(2)  # (R, H)
    top_rows_v, top_rows = row_max.topk(kk + 1, dim=1)
    rows = top_rows[:, :kk].sort(dim=1).values  # ascending, so candidate order is position order
    cand = maps.gather(1, rows[:, :, None].expand(r, kk, w)).reshape(r, kk * w)
    vals, pos = batch_topk(cand, k)
    idx = rows.gather(1, pos // w) * w + pos % w
    tied = top_rows_v[:, kk - 1] == top_rows_v[:, kk]
    if tied.any():
        t = tied.nonzero().flatten()
        vals[t], idx[t] = batch_topk(maps[t].reshape(len(t), h * w), k)
    return vals, idx


@dataclass
class TopPatches:
    """The k strongest units of every filter of one layer over a set of pictures.

    values (C, k) descending per filter; image_index (C, k); yx (C, k, 2) the unit's grid position.
    Entries past the number of available units are -inf / -1 (tiny sets only).

    Patches are cropped to the layer's receptive field, or, where that is wider than the picture (deep layers of
    EfficientNet, ResNet), to its *effective* field (:func:`~cnnviz_widgets.kernels.effective.effective_field`:
    the box holding ``fraction`` of a unit's gradient, measured once over a few of the pictures at hand, at most
    the picture's side, moved inside the picture at its borders): ``field_kind`` says which, ``patch_field()``
    gives it; ``receptive_field()`` stays the theoretical one.
    """

    layer: str
    values: torch.Tensor
    image_index: torch.Tensor
    yx: torch.Tensor
    grid_hw: tuple[int, int]
    _probe: Probe | None = field(default=None, repr=False)
    _images: ImageSet | None = field(default=None, repr=False)
    _source: PatchSource | None = field(default=None, repr=False)
    fraction: float = 0.95  # of a unit's gradient that its effective field holds
    _effective: ReceptiveField | None = field(default=None, repr=False)

    @property
    def k(self) -> int:
        return int(self.values.shape[1])

    @property
    def channels(self) -> int:
        return int(self.values.shape[0])

    def _flat(self) -> torch.Tensor:
        h, w = self.grid_hw
        return self.image_index * (h * w) + self.yx[..., 0] * w + self.yx[..., 1]

    def merge(self, other: TopPatches) -> TopPatches:
        """The top-k over both sets of units (image indices must refer to the same picture set)."""
        if (self.layer, self.grid_hw, self.channels) != (other.layer, other.grid_hw, other.channels):
            raise CnnvizError(f"Cannot merge top patches of {other.layer!r} into {self.layer!r}.")
        values = torch.cat([self.values, other.values.to(self.values.device)], 1)
        flat = torch.cat([self._flat(), other._flat().to(self.values.device)], 1)
        perm = order_desc(values, torch.where(flat < 0, torch.iinfo(torch.long).max, flat))[:, : max(self.k, other.k)]
        merged = _from_flat(self.layer, values.gather(1, perm), flat.gather(1, perm), self.grid_hw,
                            self._probe, self._images, self._source)
        merged.fraction = self.fraction
        return merged

    def _check(self, c: int, i: int) -> PatchSource:
        c = checks.index("filter", c, self.channels, f"layer {self.layer!r} has {self.channels}")
        i = checks.index("rank", i, self.k, f"{self.k} were kept")
        if int(self.image_index[c, i]) < 0:
            found = int((self.image_index[c] >= 0).sum())
            raise IndexOutOfRangeError(f"rank {i} of filter {c} is an empty place: only {found} units were found "
                                       f"(pictures that could not be read leave their places empty).")
        if self._source is None:
            raise CnnvizError("This TopPatches has no pictures attached (it was built by hand); merge it into one from top_patches().")
        return self._source

    def _attached_probe(self) -> Probe:
        """The probe top_patches() attached (its fields and passes), or a CnnvizError for one built by hand."""
        if self._probe is None:
            raise CnnvizError("This TopPatches has no probe attached (it was built by hand); merge it into one from top_patches().")
        return self._probe

    @property
    def field_kind(self) -> str:
        """Which field the patches are cropped to: "theoretical" (the receptive field), or "effective" where the
        theoretical field is wider than the picture."""
        from .effective import is_wider_than_picture

        return "effective" if is_wider_than_picture(self._attached_probe(), self.receptive_field()) else "theoretical"

    def patch_field(self) -> ReceptiveField:
        """The field the patches are cropped to: the receptive field, or (``field_kind == "effective"``) the effective
        field measured over up to eight of the pictures the top units come from, at most the picture's side."""
        rf = self.receptive_field()
        if self.field_kind == "theoretical":
            return rf
        if self._effective is None:
            from .effective import PICTURES, patch_field

            if self._source is None:
                raise CnnvizError("This TopPatches has no pictures attached (it was built by hand); merge it into one from top_patches().")
            found = sorted({int(v) for v in self.image_index.flatten().tolist() if v >= 0})[:PICTURES]
            self._effective = patch_field(self._attached_probe(), self.layer, self._source.model_input(found), self.fraction)
        return self._effective

    def patch_box(self, y: int, x: int) -> tuple[int, int, int, int]:
        """Input rows and columns (top, left, bottom, right) that unit (y, x)'s patch is cropped from: its receptive
        field's square box (crossing the border, padded), or its effective box moved inside the picture."""
        from .effective import patch_box

        return patch_box(self._attached_probe(), self.patch_field(), y, x, self.field_kind == "effective")

    def patch(self, c: int, i: int) -> np.ndarray:
        """uint8 (S, S, 3) crop of what the network saw at filter c's i-th unit: its receptive field (S = rf.size),
        or where that is wider than the picture its effective field (``field_kind``, ``patch_field()``)."""
        source = self._check(c, i)
        y, x = self.yx[c, i].tolist()
        return crop_padded(source.seen(int(self.image_index[c, i])), self.patch_box(y, x), source.fill)

    def field_words(self) -> str:
        """Which field the patches use, in words for a caption: "receptive field 32 px", "effective field 143 px
        (95% of the gradient; the receptive field, 851 px, is wider than the 224 px picture)"."""
        rf = self.receptive_field()
        if self.field_kind == "theoretical":
            return f"receptive field {rf.size} px"
        eff = self.patch_field()
        side = self._attached_probe().input_size
        whole = " (the whole picture)" if eff.size >= side else ""
        return (f"effective field {eff.size} px{whole}: {round(100 * self.fraction)}% of a unit's gradient; the "
                f"receptive field, {rf.size} px, is wider than the {side} px picture")

    def reconstructions(self, c: int, rule: str = DEFAULT_RULE) -> torch.Tensor:
        """Reconstruction (by ``rule``: deconvnet, guided, gradient, auto) of each of filter c's top units,
        cropped as its patch is: (k, 3, S, S)."""

        source = self._check(c, 0)
        probe = self._attached_probe()
        valid = [i for i in range(self.k) if int(self.image_index[c, i]) >= 0]
        images = [int(self.image_index[c, i]) for i in valid]
        units = torch.tensor([[c, *self.yx[c, i].tolist()] for i in valid])
        layer = probe.layer(self.layer)
        chunk = device_batch(probe, [layer], len(valid), keep_graph=True)
        rec = torch.cat([unit_reconstructions(probe, source.model_input(images[j : j + chunk]), self.layer,
                                              units[j : j + chunk], rule) for j in range(0, len(valid), chunk)])
        return torch.stack([crop_reconstruction(rec[j], self.patch_box(*units[j, 1:].tolist())) for j in range(len(valid))])

    def reconstruction(self, c: int, i: int, rule: str = DEFAULT_RULE) -> torch.Tensor:
        """Reconstruction (by ``rule``) of filter c's i-th unit alone, cropped as its patch is: (3, S, S)."""

        source = self._check(c, i)
        y, x = self.yx[c, i].tolist()
        rec = unit_reconstructions(self._attached_probe(), source.model_input([int(self.image_index[c, i])]), self.layer,
                                   torch.tensor([[c, y, x]]), rule)
        return crop_reconstruction(rec[0], self.patch_box(y, x))

    def receptive_field(self) -> ReceptiveField:
        """The layer's receptive field, or an UnsupportedModelError saying why patches cannot be cropped."""
        return self._attached_probe().field_or_error(self.layer)


def _from_flat(layer, values, flat, grid_hw, probe, images, source) -> TopPatches:
    h, w = grid_hw
    valid = flat >= 0
    f = flat.clamp_min(0)
    image_index = torch.where(valid, f // (h * w), -1)
    yx = torch.stack([torch.where(valid, (f % (h * w)) // w, -1), torch.where(valid, f % w, -1)], -1)
    return TopPatches(layer, values, image_index, yx, grid_hw, probe, images, source)


def batch_filter_topk(act: torch.Tensor, order: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per filter, the top-k units of a whole batch (N, C, H, W) by (value desc, position asc), with no
    data-dependent branch (nothing waits for a GPU): ``order`` (N,) ranks the batch's pictures as the set
    orders them. Returns values (C, k) in float32 and positions (C, k) as (rank * H * W + y * W + x).

    Each map row is keyed by its first maximum (value high, reversed position low: unique keys); the k rows
    of a filter with the largest keys, over all the batch's pictures, hold its top-k units (a row that holds
    none ranks below every row that holds one), so only k rows a filter are searched: N times fewer than a
    top-k per picture and filter.
    """
    n, c, h, w = act.shape
    hw, total = h * w, n * h * w
    dev = act.device
    row_v, row_c = act.max(dim=3)  # (N, C, H); max returns the first maximum of a row
    row_pos = (order.view(n, 1, 1) * hw + torch.arange(h, device=dev).view(1, 1, h) * w) + row_c
    row_keys = ((float_keys(row_v) << 32) | (total - 1 - row_pos)).permute(1, 0, 2).reshape(c, n * h)
    rows = row_keys.topk(min(k, n * h), dim=1).indices  # (C, kr) as picture * H + row
    img, y = rows // h, rows % h
    cand = act[img, torch.arange(c, device=dev).view(c, 1), y]  # (C, kr, W)
    pos = ((order[img] * hw + y * w).unsqueeze(-1) + torch.arange(w, device=dev)).reshape(c, -1)
    j = ((float_keys(cand.reshape(c, -1)) << 32) | (total - 1 - pos)).topk(min(k, pos.shape[1]), dim=1).indices
    return cand.reshape(c, -1).gather(1, j).float(), pos.gather(1, j)


class TopKMiner:
    """Running per-filter top-k of one layer, fed batch by batch (on the probe's device): :func:`map_topk`
    per picture and filter (sync-free on a GPU), then one merge with the running best.

    ``by_rows = True`` takes :func:`batch_filter_topk` instead: exact (tests/kernels/test_kernels.py), 9% faster
    mining on an H100 in float32 (a JPEG folder went from 1.455x to 1.322x a torchvision loop), but one
    run with bf16, channels_last and nvjpeg together hit a device-side index assert on that machine that
    could not be traced before its time ran out, so it is off until a GPU run clears it.
    """

    by_rows: bool = False

    def __init__(self, layer: str, channels: int, k: int, grid_hw: tuple[int, int], device: torch.device) -> None:
        self.layer, self.k, self.grid_hw = layer, k, grid_hw
        self.values = torch.full((channels, 0), float("-inf"), device=device)
        self.flat = torch.zeros((channels, 0), dtype=torch.long, device=device)

    def add(self, act: torch.Tensor, index: torch.Tensor) -> None:
        n, c, h, w = act.shape
        if self.by_rows and n * h * w < 2**31:
            order = index.argsort().argsort()  # each picture's rank in the set's order, within this batch
            vals, pos = batch_filter_topk(act, order, self.k)
            picture = index.sort().values[pos // (h * w)]
            glob = picture * (h * w) + pos % (h * w)
            values = torch.cat([self.values, vals], 1)
            keys = torch.cat([self.flat, glob], 1)
            perm = order_desc(values, keys)[:, : self.k]
            self.values, self.flat = values.gather(1, perm), keys.gather(1, perm)
            return
        # per (image, filter) rows first: a view, no copy; then the n*k candidates per filter
        vals, pos = map_topk(act.reshape(n * c, h, w), self.k)
        kk = vals.shape[1]
        vals = vals.view(n, c, kk).permute(1, 0, 2).reshape(c, n * kk)
        glob = (index.view(n, 1, 1) * (h * w) + pos.view(n, c, kk)).permute(1, 0, 2).reshape(c, n * kk)
        values = torch.cat([self.values, vals], 1)
        keys = torch.cat([self.flat, glob], 1)
        perm = order_desc(values, keys)[:, : self.k]
        self.values, self.flat = values.gather(1, perm), keys.gather(1, perm)

    def result(self, probe: Probe, images: ImageSet) -> TopPatches:
        values, flat = self.values, self.flat
        if values.shape[1] < self.k:  # fewer units than k in the whole set
            pad = self.k - values.shape[1]
            values = torch.cat([values, values.new_full((values.shape[0], pad), float("-inf"))], 1)
            flat = torch.cat([flat, flat.new_full((flat.shape[0], pad), -1)], 1)
        return _from_flat(self.layer, values.cpu(), flat.cpu(), self.grid_hw, probe, images, PatchSource(probe, images))
