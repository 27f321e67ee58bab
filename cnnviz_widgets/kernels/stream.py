"""Stream a set of pictures through a probe in batches: reader processes decode and resize to uint8
batches, the probe's device converts, normalises and runs them; a progress bar shows it and nothing
holds all images at once.

The picture pipeline is :mod:`cnnviz_widgets.images` (the one preprocessing definition), batch by batch:
same-shape in-memory pictures are prepared as one stack (:func:`~cnnviz_widgets.images.prepare_batch`),
files one by one in the readers (torchvision's JPEG decoder, uint8 resize), or, with ``decode="cuda"``,
JPEG bytes decoded in batches on the GPU. Nothing on the way waits for the GPU: the checks run on the
host before the batch is sent, and the kernels keep their running results on the device.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Generator, Sequence
from typing import Any, NamedTuple

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler

from .. import checks
from ..errors import ImageError, warn
from ..decode import REDUCE_MARGIN, torchvision_io
from ..images import prepare_batch, prepare_raw, stackable, to_channels, to_unit
from ..resize import resize_center_crop
from ..imageset import ImageSet, load_images
from ..probe.layers import Layer
from ..probe.probe import Probe
from .options import StreamOptions, stream_options
from ..precision import compute_precision


class PictureBatch(NamedTuple):
    """What a reader hands over: the pictures prepared (uint8, or float where a picture is not 8-bit) with
    their indices in the whole set, messages for pictures that cannot be used, and JPEG files left
    encoded for the GPU to decode (decode="cuda")."""

    indices: torch.Tensor  # not `index`, which would shadow tuple.index()
    pictures: torch.Tensor
    bad: list[str]
    encoded_index: list[int]
    encoded: list[bytes]


class PreparedPictures(Dataset):
    """Batches of pictures of an ImageSet as the network sees them before normalising; item ``positions``
    (a list, from a BatchSampler) is one :class:`PictureBatch` of ``indices[positions]``.

    A picture that cannot be used comes back as its error message: nothing downstream ever sees a
    row without a picture.
    """

    def __init__(self, images: ImageSet, indices: Sequence[int], size: int, channels: int = 3,
                 decode: str = "cpu", resize: int | None = None) -> None:
        self.images, self.indices, self.size, self.channels = images, list(indices), size, channels
        self.decode, self.resize = decode, resize

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, positions: list[int]) -> PictureBatch:
        chosen = [self.indices[j] for j in positions]
        raws = [self.images.raw(i) for i in chosen]
        if stackable(raws):  # in-memory pictures of one shape: one stack, vectorised checks, one resize
            keep, pictures, bad = prepare_batch(raws, [self.images.label(i) for i in chosen], self.size, self.channels,
                                                self.resize)
            return PictureBatch(torch.tensor([chosen[j] for j in keep], dtype=torch.long), pictures, bad, [], [])
        enc_index, encoded, rest = [], [], []
        for i, raw in zip(chosen, raws):
            data = jpeg_bytes(raw, self.resize or self.size) if self.decode == "cuda" else None
            if data is not None:
                enc_index.append(i)
                encoded.append(data)
            else:
                rest.append(i)
        index, pictures, bad = prepare_each(self.images, rest, self.size, self.channels, self.resize)
        return PictureBatch(index, pictures, bad, enc_index, encoded)


def prepare_each(images: ImageSet, indices: list[int], size: int, channels: int, resize: int | None
                 ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Pictures ``indices`` prepared one by one (:func:`prepare_raw`): (indices kept, their batch, a message
    for each picture that cannot be used)."""
    good, bad = [], []
    for i in indices:
        try:
            good.append((i, prepare_raw(images.raw(i), size, channels, images.label(i), resize)))
        except ImageError as exc:
            bad.append(str(exc))
    return torch.tensor([i for i, _ in good], dtype=torch.long), stack_pictures([t for _, t in good]), bad


def stack_pictures(pictures: list[torch.Tensor]) -> torch.Tensor:
    """One batch of prepared pictures: uint8 when all are, else float in [0, 1]."""
    if not pictures:
        return torch.empty(0, dtype=torch.uint8)
    if all(p.dtype == torch.uint8 for p in pictures):
        return torch.stack(pictures)
    return torch.stack([to_unit(p) for p in pictures])


def jpeg_bytes(raw: Any, reduce_to: int) -> bytes | None:
    """The bytes of a JPEG file that nvjpeg can decode (8-bit RGB or grey, upright, at most REDUCE_MARGIN
    times ``reduce_to`` on its shorter side), or None: every other picture is prepared in the reader as
    usual (Pillow reads the header first: size limits, damage). Plain bytes, not tensors: each tensor a
    reader returns holds a shared-memory file descriptor until the main process takes it, and 14 readers x
    128 files ran out of descriptors on an H100 machine."""
    if not isinstance(raw, (str, os.PathLike)):
        return None
    from PIL import Image

    try:
        with Image.open(raw) as im:  # nvjpeg ignores EXIF orientation: turned pictures stay with the readers
            if im.format != "JPEG" or im.mode not in ("RGB", "L") or im.getexif().get(0x0112, 1) != 1:
                return None
            if min(im.size) > REDUCE_MARGIN * reduce_to:  # a camera photo: decoded at a reduced scale by a reader
                return None
    except Exception:  # noqa: BLE001 - the CPU path reads it again and says what is wrong
        return None
    with open(raw, "rb") as f:
        return f.read()


def decode_on_device(batch: PictureBatch, probe: Probe, images: ImageSet) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The encoded JPEGs of a batch decoded by nvjpeg on the probe's device and prepared there (uint8
    resize on the device): (indices, pictures, messages for files the GPU could not decode, which
    the CPU path then reads to name the damage)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    wait_before_device_decode(probe.device)  # outside the try: an earlier CUDA error is not a damaged file
    try:
        data = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in batch.encoded]
        with torchvision_io():
            decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=probe.device)
    except RuntimeError:  # one damaged file fails the batch: decode them one by one on the CPU instead
        index, pictures, bad = prepare_each(images, batch.encoded_index, probe.input_size, probe.channels,
                                            probe.resize_size)
        return index, pictures.to(probe.device), bad
    prepared = [to_channels(resize_center_crop(t, probe.input_size, probe.resize_size), probe.channels) for t in decoded]
    return torch.tensor(batch.encoded_index, dtype=torch.long), stack_pictures(prepared), []


def wait_before_device_decode(device: torch.device) -> None:
    """Let the work queued on ``device``'s current stream finish before nvJPEG decodes. The decoder takes its
    output blocks from the caching allocator on that stream but writes them without waiting for it
    (pytorch/vision#9606, meta-pytorch/torchcodec#1634), so it could overwrite blocks the previous batch just
    freed while queued kernels still read them: its top-k indices, giving a device-side index assert."""
    if device.type == "cuda":
        torch.cuda.current_stream(device).synchronize()


def join_batches(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor], device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (indices, pictures) parts of one batch as one, on ``device`` (float when their types differ)."""
    parts = [(i, p.to(device, non_blocking=True)) for i, p in (a, b) if len(i)]
    if len(parts) < 2:
        return parts[0] if parts else a
    (ia, pa), (ib, pb) = parts
    if pa.dtype != pb.dtype:
        pa, pb = to_unit(pa), to_unit(pb)
    return torch.cat([ia, ib]), torch.cat([pa, pb])


def _as_is(batch: PictureBatch) -> PictureBatch:
    return batch


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
    return None if max_batch_bytes is None else int(max_batch_bytes)  # checked by StreamOptions


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
    batch_size: int | None = None,
    indices: Sequence[int] | None = None,
    progress: bool | Callable[[int, int], None] = True,
    num_workers: int | None = None,
    desc: str = "images",
    *,
    options: StreamOptions | None = None,
    **option_kwargs: Any,
) -> Generator[tuple[torch.Tensor, dict[str, torch.Tensor]], None, None]:
    """Yield (image indices on the probe's device, {layer: activation (n, C, H, W)}) per batch.

    Pictures that cannot be read are skipped with a warning naming them (when none can be used,
    ImageError says why); readers end when the loop does, also on an interrupt. ``indices`` selects a
    subset (a shard) of the set, and the indices yielded always refer to the whole set. ``progress``:
    True for a tqdm bar, False for none, or a callable ``(done, total)`` (widgets feed their
    ``progress`` trait with it). ``options`` (a :class:`StreamOptions`, or its fields as keywords:
    ``batch_size``, ``num_workers``, ``max_batch_bytes``, ``precision``, ``channels_last``, ``decode``)
    say how pictures are read and run. ``max_batch_bytes`` caps the batch so its estimated memory stays
    under that size (:func:`per_image_bytes`: all 18 conv/pool layers of VGG16 need about 86 MB an
    image, one image a batch on the CPU by default; its c5_3 alone 26 MB, five). Consumers
    should ``del`` each batch before the loop asks for the next: otherwise two batches of
    activations are alive during the next forward pass, which is measurably slower (page faults).
    Activations come in the precision they were computed in (bf16 or fp16 under autocast: converting every
    map to float32 would cost more than the mining done on it; the kernels convert the few values they keep).
    """
    from tqdm.auto import tqdm

    opts = stream_options(options, batch_size=batch_size, num_workers=num_workers, **option_kwargs)
    opts.check_device(probe.device)
    imageset = load_images(images)
    batch = device_batch(probe, layers, opts.batch_size, opts.max_batch_bytes)
    order = range(len(imageset)) if indices is None else checks.indices(indices, len(imageset))
    workers = default_workers(imageset) if opts.num_workers is None else opts.num_workers
    dataset = PreparedPictures(imageset, order, probe.input_size, probe.channels, opts.decode, probe.resize_size)
    loader = DataLoader(dataset, sampler=BatchSampler(SequentialSampler(range(len(order))), batch, drop_last=False),
                        batch_size=None, num_workers=workers, collate_fn=_as_is,  # type: ignore[arg-type]  # stubs: a list, batched; batch_size=None gives one item
                        persistent_workers=False,
                        pin_memory=probe.device.type == "cuda")
    chosen = [probe.layer(l) for l in layers]
    report = progress if callable(progress) else None
    bar = tqdm(total=len(order), desc=desc, unit="img", disable=report is not None or not progress, leave=False)
    done, skipped = 0, []
    batches = iter(loader)
    try:
        for part in batches:
            index, pictures, bad = part.indices, part.pictures, list(part.bad)
            if part.encoded:
                gpu_index, gpu_pictures, gpu_bad = decode_on_device(part, probe, imageset)
                bad += gpu_bad
                index, pictures = join_batches((index, pictures), (gpu_index, gpu_pictures), probe.device)
            for msg in bad:
                warn(f"skipping a picture that cannot be read: {msg}", stacklevel=3)
            skipped += bad
            if len(index):
                x = probe.normalize(pictures)
                if opts.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.no_grad(), compute_precision(probe.device, opts.precision):
                    acts = probe.forward_nchw(x, chosen)
                yield index.to(probe.device, non_blocking=True), acts
                del acts
            step = len(index) + len(bad)
            bar.update(step)
            done += step
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
