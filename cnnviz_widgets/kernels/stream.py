"""Stream a set of pictures through a probe in batches: DataLoader workers read and resize, the
probe's device does the rest; a progress bar shows it and nothing holds all images at once.
"""
from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from .. import checks
from ..errors import CnnvizError, CnnvizWarning, ImageError
from ..images import prepare_picture
from ..imageset import ImageSet, load_images
from ..probe.layers import Layer
from ..probe.probe import Probe
from .precision import autocast_dtype, precision


class PreparedPictures(Dataset):
    """Pictures ``indices`` of an ImageSet as the network sees them (:func:`prepare_picture`), in [0, 1].

    A picture that cannot be used comes back as its error message instead: the batch drops it and
    the main process reports it, so nothing downstream ever sees a row without a picture.
    """

    def __init__(self, images: ImageSet, indices: Sequence[int], size: int, channels: int = 3) -> None:
        self.images, self.indices, self.size, self.channels = images, list(indices), size, channels

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int):
        i = self.indices[j]
        try:
            return i, prepare_picture(self.images.raw(i), self.size, self.channels,
                                      name=self.images.label(i))
        except ImageError as exc:
            return i, str(exc)


def _collate(items):
    good = [(i, t) for i, t in items if isinstance(t, torch.Tensor)]
    bad = [msg for _, msg in items if isinstance(msg, str)]
    index = torch.tensor([i for i, _ in good], dtype=torch.long)
    batch = torch.stack([t for _, t in good]) if good else torch.empty(0)
    return index, batch, bad


def default_workers(images: ImageSet) -> int:
    """Worker processes for reading: none for small or in-memory sets, up to 4 for big folders."""
    on_disk = len(images) > 0 and isinstance(images.raw(0), str)
    if not on_disk or len(images) < 64:
        return 0
    return max(0, min(4, (os.cpu_count() or 1)))


CPU_BATCH_BYTES = 128 * 2**20  # one batch's estimated memory on the CPU: the tour then fits Binder's 2 GB


def batch_budget(device: torch.device, max_batch_bytes: int | str | None = "auto") -> int | None:
    """The bytes one batch may take: a number as given, None for no cap, and "auto": 128 MiB on the CPU
    (Binder's 2 GB), a quarter of the GPU's free memory on CUDA, where batch-1 work would leave it idle."""
    if isinstance(max_batch_bytes, str) and max_batch_bytes == "auto":
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            return max(CPU_BATCH_BYTES, free // 4)
        return CPU_BATCH_BYTES
    if max_batch_bytes is None:
        return None
    if isinstance(max_batch_bytes, bool) or not isinstance(max_batch_bytes, numbers.Integral) or max_batch_bytes < 1:
        raise CnnvizError(
            f"max_batch_bytes must be 'auto', None (no cap) or a positive number of bytes, got {max_batch_bytes!r}."
        )
    return int(max_batch_bytes)


def per_image_bytes(probe: Probe, layers: Sequence[Layer], keep_graph: bool = False) -> int:
    """Estimated float32 bytes one image needs to give ``layers``' activations.

    The activations held plus the forward's working set: the two largest maps up to the deepest
    requested layer, or, when the autograd graph is kept (deconvnet), every map up to it.
    """
    size = lambda l: 4 * l.shape[0] * l.shape[1] * l.shape[2]  # noqa: E731
    depth = {l.name: i for i, l in enumerate(probe.layers)}
    upto = probe.layers[: max(depth[l.name] for l in layers) + 1]
    held = sum(size(l) for l in layers)
    if keep_graph:
        return held + 2 * sum(size(l) for l in upto)
    return held + 2 * max(size(l) for l in upto)


def effective_batch(batch_size: int, per_image: int, max_batch_bytes: int | None) -> int:
    """``batch_size``, lowered so one batch's estimated memory (``per_image`` each) fits the budget."""
    if max_batch_bytes is None:
        return batch_size
    return max(1, min(batch_size, int(max_batch_bytes) // max(1, per_image)))


def device_batch(probe: Probe, layers: Sequence[Layer], batch_size: int, max_batch_bytes: int | str | None = "auto",
                 keep_graph: bool = False) -> int:
    """The batch size to use for ``layers`` on the probe's device: ``batch_size`` within the memory budget."""
    return effective_batch(batch_size, per_image_bytes(probe, layers, keep_graph), batch_budget(probe.device, max_batch_bytes))


def stream_activations(
    probe: Probe,
    images: Any,
    layers: Sequence[Layer],
    batch_size: int = 32,
    indices: Sequence[int] | None = None,
    progress: bool | Callable[[int, int], None] = True,
    num_workers: int | None = None,
    desc: str = "images",
    max_batch_bytes: int | str | None = "auto",
    channels_last: bool = False,
    autocast: str | torch.dtype | None = None,
) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """Yield (image indices on the probe's device, {layer: activation (n, C, H, W)}) per batch.

    Pictures that cannot be read are skipped with a warning naming them (when none can be used,
    ImageError says why); readers end when the loop does, also on an interrupt. ``indices`` selects a
    subset (a shard) of the set, and the indices yielded always refer to the whole set. ``progress``:
    True for a tqdm bar, False for none, or a callable ``(done, total)`` (widgets feed their
    ``progress`` trait with it). ``max_batch_bytes`` caps the batch so its estimated memory stays
    under that size (:func:`per_image_bytes`: all 18 conv/pool layers of VGG16 need about 86 MB an
    image, one image a batch on the CPU by default; its c5_3 alone 26 MB, five); "auto" is
    :func:`batch_budget`'s choice for the device, None lifts the cap. Consumers
    should ``del`` each batch before the loop asks for the next: otherwise two batches of
    activations are alive during the next forward pass, which is measurably slower (page faults).
    ``channels_last`` hands the batch to the model in NHWC memory order (the model itself is not
    touched); ``autocast`` ('bf16', 'fp16') runs the forward under torch.autocast, activations
    returned as float32. Both are for GPUs (tensor cores); values may differ in the last bits.
    """
    from tqdm.auto import tqdm

    imageset = load_images(images)
    dtype = autocast_dtype(autocast)
    batch_size = device_batch(probe, layers, checks.positive_int("batch_size", batch_size), max_batch_bytes)
    order = range(len(imageset)) if indices is None else checks.indices(indices, len(imageset))
    workers = default_workers(imageset) if num_workers is None else checks.non_negative_int("num_workers", num_workers)
    loader = DataLoader(
        PreparedPictures(imageset, order, probe.input_size, probe.channels), batch_size=batch_size, shuffle=False,
        num_workers=workers, collate_fn=_collate, persistent_workers=False,
        pin_memory=probe.device.type == "cuda",
    )
    names = [l.name for l in layers]
    report = progress if callable(progress) else None
    bar = tqdm(total=len(order), desc=desc, unit="img", disable=report is not None or not progress, leave=False)
    done, skipped = 0, []
    batches = iter(loader)
    try:
        for index, batch, bad in batches:
            for msg in bad:
                warnings.warn(f"skipping a picture that cannot be read: {msg}", CnnvizWarning, stacklevel=3)
            skipped += bad
            if len(index):
                x = probe.normalize(batch)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with precision(probe.device, dtype):
                    acts = probe.activations(x, names)
                if dtype is not None:
                    acts = {n: a.float() for n, a in acts.items()}
                yield index.to(probe.device), acts
                del acts
            bar.update(len(index) + len(bad))
            done += len(index) + len(bad)
            if report is not None:
                report(done, len(order))
        if skipped and len(skipped) == len(order):
            raise ImageError(
                f"None of the {len(order)} pictures could be used, so there is nothing to compute. "
                f"{'The first reasons' if len(skipped) > 1 else 'The reason'}: " + " | ".join(skipped[:3])
            )
    finally:
        bar.close()
        # reader processes end here, also when an interrupt lands while this waits on them (under
        # IPython the traceback would otherwise keep the iterator, and its readers, alive)
        shutdown = getattr(batches, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
