"""StreamOptions: how the streaming kernels (mine, sparsity, top_patches, representation_space and the
stream under them) read pictures and run the network, in one place so every kernel takes the same."""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any

import torch

from .. import checks
from ..errors import CnnvizError, short_repr
from ..precision import resolve_precision

DECODERS = ("cpu", "cuda")


@dataclass(frozen=True)
class StreamOptions:
    """How pictures are read and pushed through the network.

    batch_size: pictures per forward pass (lowered to fit ``max_batch_bytes``).
    num_workers: reader processes (None: none for in-memory or small sets, up to 4 for big folders).
    max_batch_bytes: one batch's estimated memory: "auto" (128 MiB on the CPU, a quarter of the free GPU
        memory on CUDA), None for no cap, or a number of bytes.
    precision: "fp32" (exact: TF32 off on CUDA), "tf32", "bf16" or "fp16" (torch.autocast); see
        :mod:`cnnviz_widgets.precision`. The kernels also take ``autocast="bf16"`` as before (read as
        precision="bf16").
    channels_last: hand batches to the model in NHWC memory order (tensor cores like it).
    decode: "cpu" (readers decode with libjpeg-turbo) or "cuda" (JPEG files are read by the readers and
        decoded in batches by nvjpeg on the GPU).
    """

    batch_size: int = 32
    num_workers: int | None = None
    max_batch_bytes: int | str | None = "auto"
    precision: str = "fp32"
    channels_last: bool = False
    decode: str = "cpu"

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - frozen dataclass
        set_("batch_size", checks.positive_int("batch_size", self.batch_size))
        if self.num_workers is not None:
            set_("num_workers", checks.non_negative_int("num_workers", self.num_workers))
        m = self.max_batch_bytes
        if not (m is None or isinstance(m, str) and m == "auto"
                or isinstance(m, numbers.Integral) and not isinstance(m, bool) and m >= 1):
            raise CnnvizError(f"max_batch_bytes must be 'auto', None (no cap) or a positive number of bytes, got {m!r}.")
        set_("precision", resolve_precision(self.precision))
        if not isinstance(self.channels_last, (bool, int)) or self.channels_last not in (True, False):
            raise CnnvizError(f"channels_last must be True or False, got {short_repr(self.channels_last)}.")
        set_("channels_last", bool(self.channels_last))
        if not isinstance(self.decode, str) or self.decode.lower() not in DECODERS:
            raise CnnvizError(f"decode must be 'cpu' or 'cuda' (nvjpeg, for JPEG folders on a GPU), got {short_repr(self.decode)}.")
        set_("decode", self.decode.lower())

    def replace(self, **changes: Any) -> StreamOptions:
        return dataclasses.replace(self, **changes)

    def check_device(self, device: torch.device) -> None:
        """decode='cuda' needs the probe on a CUDA device."""
        if self.decode == "cuda" and device.type != "cuda":
            from ..errors import DeviceUnavailableError

            raise DeviceUnavailableError(f"decode='cuda' decodes JPEGs on the GPU, but this probe runs on {device}; "
                                         f"use decode='cpu' (the default) or a probe on a CUDA device.")


FIELDS = tuple(f.name for f in dataclasses.fields(StreamOptions))


def stream_options(options: StreamOptions | None = None, **given: Any) -> StreamOptions:
    """``options`` with the keyword arguments a kernel was given on top (``autocast=`` is read as
    ``precision=``); a misspelt name is a CnnvizError listing the valid ones."""
    if options is not None and not isinstance(options, StreamOptions):
        raise CnnvizError(f"options must be a cv.StreamOptions, got {short_repr(options)}.")
    base = options or StreamOptions()
    for name in ("batch_size", "num_workers"):  # None: not given (num_workers=None in options: readers by set size)
        if name in given and given[name] is None:
            del given[name]
    autocast = given.pop("autocast", None)
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise CnnvizError(f"Unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
                          f"the streaming options are {', '.join(FIELDS)} (and autocast, read as precision).")
    if autocast is not None:
        given["precision"] = resolve_precision(given.get("precision"), autocast)
    return base.replace(**given) if given else base
