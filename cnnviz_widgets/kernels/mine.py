"""One streaming pass that mines per-filter top-k and per-layer sparsity together.

Both results are associative, so shards of a picture set (``indices``) merge into the one-pass
result; ``gather_merge`` does that across torch.distributed ranks (see cnnviz_widgets.mine_cli).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import checks
from ..errors import CnnvizError, warn
from ..imageset import load_images
from ..probe.probe import Probe
from .sparsity import Sparsity, SparsityCounter, sparsity_layers
from .options import StreamOptions, stream_options
from .stream import stream_activations
from .topk import TopKMiner, TopPatches


@dataclass
class Mined:
    """What one pass found: top patches per layer and the sparsity of each layer."""

    top: dict[str, TopPatches]
    sparsity: Sparsity | None

    def merge(self, other: Mined) -> Mined:
        top = {name: t.merge(other.top[name]) for name, t in self.top.items()}
        sp = self.sparsity.merge(other.sparsity) if self.sparsity is not None and other.sparsity is not None else None
        return Mined(top, sp)


def mine(
    probe: Probe,
    images: Any,
    top_layers: str | Iterable[str] | None = (),
    k: int = 9,
    sparsity: bool | str | Iterable[str] = True,
    include_fc: bool = False,
    batch_size: int | None = None,
    indices: Sequence[int] | None = None,
    progress: bool | Callable[[int, int], None] = True,
    *,
    options: StreamOptions | None = None,
    **stream_kwargs: Any,
) -> Mined:
    """Top-k of every filter of ``top_layers`` (None: every conv layer) and sparsity, in one pass.

    ``sparsity``: True for conv and pool layers (fc too with ``include_fc``), False for none, or names.
    ``options``: a :class:`~cnnviz_widgets.kernels.options.StreamOptions`, or its fields as keywords
    (``num_workers``, ``max_batch_bytes``, ``precision``, ``channels_last``, ``decode``; see there). The
    running top-k and zero counts stay on the probe's device until the end: no batch waits on the GPU.
    """
    k = checks.positive_int("k", k, "a positive whole number of patches per filter")
    opts = stream_options(options, batch_size=batch_size, **stream_kwargs)
    imageset = load_images(images)
    if top_layers is None:
        top = [l for l in probe.layers if l.kind == "conv"]
    else:
        top = [] if isinstance(top_layers, (list, tuple)) and not top_layers else probe.select(top_layers)
    if sparsity is True:
        sp_layers = sparsity_layers(probe, None, include_fc)
    elif sparsity is False or sparsity is None:
        sp_layers = []
    else:
        sp_layers = probe.select(sparsity)
    indices = None if indices is None else checks.indices(indices, len(imageset))
    n_images = len(imageset)  # the whole set, also for a shard: every shard caps k alike, so shards still merge
    if not top and not sp_layers:
        raise CnnvizError("mine has nothing to compute: top_layers=[] and sparsity=False; ask for top patches "
                          "(top_layers=None: every conv layer) or sparsity.")
    miners = {}
    for l in top:
        miners[l.name] = TopKMiner(l.name, l.channels, capped_k(k, l, n_images), l.shape[1:], probe.device)
    counter = SparsityCounter([l.name for l in sp_layers], probe.device, {l.name: l.kind for l in sp_layers}) if sp_layers else None
    needed = {l.name: l for l in list(top) + list(sp_layers)}
    depth = {l.name: i for i, l in enumerate(probe.layers)}
    layers = sorted(needed.values(), key=lambda l: depth[l.name])
    desc = "mining" if top and sp_layers else ("sparsity" if sp_layers else f"top patches {top[0].name}" if len(top) == 1 else "top patches")
    batches = stream_activations(probe, imageset, layers, indices=indices, progress=progress, desc=desc, options=opts)
    try:
        for index, acts in batches:
            for name, miner in miners.items():
                miner.add(acts[name], index)
            if counter is not None:
                counter.add(acts, len(index))
            del index, acts  # free this batch before the next forward: holding two costs a third more time
    finally:
        batches.close()  # ends the readers now, also on an interrupt
    measured = counter.result() if counter is not None else None
    if measured is not None:
        measured.weights_note = probe.weights_note  # a figure of it says so where the weights are random
    return Mined({n: m.result(probe, imageset) for n, m in miners.items()}, measured)


def capped_k(k: int, layer: Any, n_images: int) -> int:
    """``k``, or the number of units one filter of ``layer`` has over ``n_images`` pictures where that is
    fewer (with a warning): a larger k would only hold empty places, and memory for them."""
    units = n_images * layer.shape[1] * layer.shape[2]
    if k <= units:
        return k
    warn(f"k={k} is more than the {units:,} units one filter of {layer.name!r} has over {n_images} "
                  f"picture(s): k is capped at {units:,} for that layer.", stacklevel=3)
    return units


def gather_merge(result: Mined, group: Any = None) -> Mined:
    """All-gather a Mined result across torch.distributed ranks and merge it (every rank gets the whole).

    Only counts and (values, positions) travel; each rank re-attaches its own probe and pictures.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return result
    payload = {
        "top": {n: (t.values.cpu(), t.image_index.cpu(), t.yx.cpu()) for n, t in result.top.items()},
        "sparsity": None if result.sparsity is None else (result.sparsity.zeros, result.sparsity.totals,
                                                           result.sparsity.n_images),
    }
    gathered: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, payload, group=group)
    merged = None
    for part in gathered:
        top = {}
        for name, (values, image_index, yx) in part["top"].items():
            mine_t = result.top[name]
            top[name] = TopPatches(name, values, image_index, yx, mine_t.grid_hw, mine_t._probe, mine_t._images, mine_t._source)
        counts: tuple[dict[str, int], dict[str, int], int] | None = part["sparsity"]  # (zeros, totals, n_images)
        kinds = result.sparsity.kinds if result.sparsity is not None else None
        sp = Sparsity(*counts, kinds=kinds) if counts is not None else None
        if sp is not None and result.sparsity is not None:
            sp.weights_note = result.sparsity.weights_note
        piece = Mined(top, sp)
        merged = piece if merged is None else merged.merge(piece)
    assert merged is not None  # every rank's part, this one's too
    return merged


def shard(n_images: int, rank: int, world_size: int) -> list[int]:
    """The strided share of ``n_images`` that ``rank`` of ``world_size`` processes."""
    return list(range(rank, n_images, world_size))


# ---------------------------------------------------------------- presets of mine(): one layer's top patches, sparsity

def top_patches(
    probe: Probe,
    images: Any,
    layer: str,
    k: int = 9,
    batch_size: int | None = None,
    indices: Sequence[int] | None = None,
    progress: bool | Callable[[int, int], None] = True,
    *,
    options: StreamOptions | None = None,
    **stream_kwargs: Any,
) -> TopPatches:
    """The k units of highest activation for every filter of ``layer`` over ``images``, streamed.

    ``indices`` restricts the pass to a shard; shards ``merge`` into the one-pass result.
    ``options`` / keywords: how pictures are read and run (:class:`~cnnviz_widgets.kernels.options.StreamOptions`).
    """
    name = probe.layer(layer).name
    return mine(probe, images, top_layers=[name], k=k, sparsity=False, batch_size=batch_size, indices=indices,
                progress=progress, options=options, **stream_kwargs).top[name]


def sparsity(
    probe: Probe,
    images: Any,
    layers: str | Iterable[str] | None = None,
    batch_size: int | None = None,
    include_fc: bool = False,
    indices: Sequence[int] | None = None,
    progress: bool | Callable[[int, int], None] = True,
    *,
    options: StreamOptions | None = None,
    **stream_kwargs: Any,
) -> Sparsity:
    """Fraction of zero activations per layer over ``images`` in one streaming pass.

    ``probe`` may be a :class:`~cnnviz_widgets.kernels.checkpoints.Checkpoints`: then a dict step -> Sparsity.
    layers None: every conv and pool layer (and fully connected ones with ``include_fc``).
    ``indices`` restricts the pass to a shard of the set; shards ``merge`` into the whole.
    ``options`` / keywords: how pictures are read and run (:class:`~cnnviz_widgets.kernels.options.StreamOptions`).
    """
    if not isinstance(probe, Probe) and callable(getattr(probe, "sparsity", None)):  # a cv.Checkpoints: one per step
        return probe.sparsity(images, layers=layers, batch_size=batch_size, include_fc=include_fc, indices=indices,
                              progress=progress, options=options, **stream_kwargs)
    chosen = [l.name for l in sparsity_layers(probe, layers, include_fc)]
    found = mine(probe, images, top_layers=[], sparsity=chosen, batch_size=batch_size, indices=indices,
                 progress=progress, options=options, **stream_kwargs).sparsity
    assert found is not None  # sparsity= named its layers
    return found
