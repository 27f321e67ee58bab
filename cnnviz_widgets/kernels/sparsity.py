"""Per-layer sparsity (paper Fig. 6): the exact fraction of zero activations over a set of pictures."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from ..errors import CnnvizError
from ..probe.probe import Probe


class Sparsity(dict):
    """layer name -> fraction of exactly-zero activations; mergeable across shards.

    ``zeros`` and ``totals`` hold exact integer counts per layer; ``merge`` adds another shard's
    counts (associative), so data split over processes or machines gives the one-pass result.
    """

    def __init__(self, zeros: dict[str, int], totals: dict[str, int], n_images: int,
                 kinds: dict[str, str] | None = None) -> None:
        super().__init__({k: (zeros[k] / totals[k] if totals[k] else float("nan")) for k in zeros})
        self.zeros, self.totals, self.n_images = dict(zeros), dict(totals), int(n_images)
        self.kinds = dict(kinds or {})  # layer name -> "conv", "pool" or "fc"
        self.weights_note = ""  # the probe's Probe.weights_note: figures of it say when the weights are random

    def merge(self, other: Sparsity) -> Sparsity:
        if list(self.zeros) != list(other.zeros):
            raise CnnvizError(f"Cannot merge sparsity of layers {list(other.zeros)} into {list(self.zeros)}.")
        merged = Sparsity({k: self.zeros[k] + other.zeros[k] for k in self.zeros},
                          {k: self.totals[k] + other.totals[k] for k in self.totals}, self.n_images + other.n_images,
                          self.kinds or other.kinds)
        merged.weights_note = self.weights_note or other.weights_note
        return merged

    def __repr__(self) -> str:
        body = ", ".join(f"{k}: {v:.3f}" for k, v in self.items())
        return f"Sparsity({self.n_images} images; {body})"


_CHUNK = 1 << 17  # 128K floats: the boolean buffer stays in L2 (fastest of 2^15..2^20 measured)


def count_zeros(a: torch.Tensor) -> torch.Tensor:
    """Exact number of zeros in ``a`` (int64 tensor on its device).

    On the CPU the comparison runs in cache-sized chunks into one reused buffer: three times
    faster than ``(a == 0).sum()``, which writes and rereads a boolean copy of the whole map.
    """
    if a.device.type != "cpu":
        return a.numel() - torch.count_nonzero(a)  # one read of the map, no boolean copy
    flat = a.reshape(-1)
    buf = torch.empty(min(_CHUNK, flat.numel()), dtype=torch.bool)
    total = torch.zeros((), dtype=torch.long)
    for part in flat.split(_CHUNK):
        b = buf[: part.numel()]
        torch.eq(part, 0, out=b)
        total += b.sum()
    return total


class SparsityCounter:
    """Accumulates zero counts per layer, batch by batch, in int64 on the probe's device."""

    def __init__(self, names: Sequence[str], device: torch.device, kinds: dict[str, str] | None = None) -> None:
        self.kinds = dict(kinds or {})
        self.zeros = {n: torch.zeros((), dtype=torch.long, device=device) for n in names}
        self.totals = dict.fromkeys(names, 0)
        self.n_images = 0

    def add(self, acts: dict[str, torch.Tensor], n_images: int) -> None:
        for name in self.zeros:
            a = acts[name]
            self.zeros[name] += count_zeros(a)
            self.totals[name] += a.numel()
        self.n_images += n_images

    def result(self) -> Sparsity:
        return Sparsity({k: int(v) for k, v in self.zeros.items()}, self.totals, self.n_images, self.kinds)


def sparsity_layers(probe: Probe, layers: str | Iterable[str] | None, include_fc: bool) -> list:
    if layers is None:
        return [l for l in probe.layers if l.kind in ("conv", "pool") or (include_fc and l.kind == "fc")]
    return probe.select(layers)
