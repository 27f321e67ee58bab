"""Reconstructions as pictures: how a signed (3, H, W) map in input space becomes uint8 grey levels.

- ``signed`` (the paper's look): zero is mid-grey, scaled by the largest absolute value per image.
- ``contrast``: each colour channel's median removed (the mean would follow a few hot pixels), then
  scaled by the 99.5th percentile of the absolute value and clipped, so those pixels no longer set the scale.
- ``minmax``: stretched from the smallest to the largest value.
- ``auto``: ``contrast`` where the signed display would be faint, else ``signed``;
  :func:`choose_display` decides once for a set of pictures (a strip), so one strip has one display.

How ``auto`` decides, measured on the four bundled photos (chelsea, coffee, camera, motorcycle, all
layers): on the trained EfficientNet-Lite0 the guided and gradient reconstructions have their 99.5th
percentile of |value| at a median 16-26% of their peak, so the signed display spreads over 3-5 grey
levels; on VGG16 and both AlexNets (seeded random weights: trained ones cannot be downloaded where this
was measured) the median is 37-59%. ``auto`` takes ``contrast`` below 30%. Per-channel offsets were
measured too (EfficientNet's deconvnet: a median 24-37% of the energy; VGG16: 22%, up to 48% at c1_1,
where the colour is the picture), too close to tell a tint from colour, so they do not decide.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np
import torch

from .errors import ImageError

DISPLAYS = {
    "signed": "zero = grey, scaled to the largest value (the paper's)",
    "contrast": "channel medians removed, scaled to the 99.5th percentile",
    "minmax": "stretched from the smallest to the largest value",
}
MODES = (*DISPLAYS, "auto")
PEAK_RATIO = 0.30  # 99.5th percentile / peak below which the signed display is too faint
PERCENTILE = 0.995
SAMPLE = 1 << 16  # faintness reads at most this many values a picture (every k-th): 4x faster at 224 px, same choice


def _batch(rec: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, bool]:
    t = torch.as_tensor(rec).detach().to("cpu", torch.float32)
    single = t.ndim == 3
    if single:
        t = t[None]
    if t.ndim != 4 or t.shape[1] not in (1, 3):
        raise ImageError(f"to_display: expected (3, H, W) or (N, 3, H, W), got shape {tuple(t.shape)}.")
    return t, single


@functools.lru_cache(maxsize=8)
def _sample(n: int) -> torch.Tensor:
    """SAMPLE positions of n, drawn once with a fixed seed (sorted, for memory order): a stride would alias
    with the stride-2 and stride-4 patterns deconvnets leave (every other column only, say)."""
    g = torch.Generator().manual_seed(0)
    return torch.randperm(n, generator=g)[:SAMPLE].sort().values


def upper_quantile(a: torch.Tensor, q: float) -> torch.Tensor:
    """``torch.quantile(a, q, dim=1)`` (linear interpolation) for q near 1, from the top values alone:
    a partial selection of the top (1 - q) share instead of a sort of every row (four times faster)."""
    n = a.shape[1]
    pos = q * (n - 1)
    lo = int(np.floor(pos))
    top = a.topk(n - lo, dim=1, sorted=True).values  # descending: the last is the lo-th smallest
    v_lo = top[:, -1]
    v_hi = top[:, -2] if top.shape[1] > 1 else v_lo
    return v_lo + (pos - lo) * (v_hi - v_lo)


def faintness(rec: torch.Tensor | np.ndarray) -> np.ndarray:
    """Per image: the 99.5th percentile of |value| over its peak (small: a few hot pixels set the signed scale);
    the percentile of a strided sample of at most SAMPLE values, the peak of all."""
    t, _ = _batch(rec)
    flat = t.flatten(1)
    peak = torch.maximum(flat.amax(1), -flat.amin(1))  # the largest |value|, without a copy of the strip
    a = (flat.index_select(1, _sample(flat.shape[1])).abs_() if flat.shape[1] > SAMPLE else flat.abs())
    ratio = torch.where(peak > 0, upper_quantile(a, PERCENTILE) / peak.clamp_min(1e-30), torch.ones_like(peak))
    return ratio.numpy()


def choose_display(recs: Iterable[torch.Tensor | np.ndarray]) -> str:
    """'signed' or 'contrast' for a set of reconstructions: 'contrast' where the median of their 99.5th
    percentile over peak is under PEAK_RATIO (see the module docstring for the measurement)."""
    ratios = [q for r in recs for q in faintness(r).tolist()]
    if not ratios:
        return "signed"
    return "contrast" if float(np.median(ratios)) < PEAK_RATIO else "signed"


def to_display(rec: torch.Tensor | np.ndarray, mode: str = "signed") -> np.ndarray:
    """A reconstruction (3,H,W) or (N,3,H,W) as uint8 HxWx3 (or N,H,W,3) for showing.

    ``mode``: "signed" (default; zero is mid-grey, as in the paper's figures), "contrast", "minmax",
    or "auto" (chosen per image; see the module docstring).
    """
    if mode not in MODES:
        raise ImageError(f"to_display: mode must be one of {', '.join(repr(m) for m in MODES)}, not {mode!r}.")
    t, single = _batch(rec)
    if mode == "auto":
        out = np.stack([to_display(t[i], choose_display([t[i]])) for i in range(len(t))])
        return out[0] if single else out
    # each mode is (value - offset) / scale * gain + base per picture (or channel), done in one fused pass
    if mode == "signed":  # the largest |value| from the extremes, without an abs() copy of the strip
        peak = torch.maximum(t.amax(dim=(1, 2, 3), keepdim=True), -t.amin(dim=(1, 2, 3), keepdim=True))
        offset, scale, gain, base = torch.zeros(()), peak, 127.5, 127.5
    elif mode == "contrast":
        offset = t.flatten(2).median(dim=2).values[..., None, None]
        centred = t - offset
        scale = upper_quantile(centred.abs().flatten(1), PERCENTILE).view(-1, 1, 1, 1)
        scale = torch.where(scale > 0, scale, centred.abs().amax(dim=(1, 2, 3), keepdim=True))
        gain, base = 127.5, 127.5
    else:
        offset = t.amin(dim=(1, 2, 3), keepdim=True)
        scale = t.amax(dim=(1, 2, 3), keepdim=True) - offset
        gain, base = 255.0, torch.where(scale > 0, 0.0, 127.5)  # a flat picture is mid-grey
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    t = t - offset if mode != "signed" else t
    factor = gain / scale
    if not bool(torch.isfinite(factor).all()):  # a scale below float32's range (a 1e-40 peak): divide first
        t, factor = t / scale, torch.full_like(scale, gain)
    # in channels-last order, so the uint8 result is already HxWx3 in memory (a permuted copy took as long as
    # the arithmetic); +0.5 then the integer cast's truncation rounds in the same pass (half up). float32 ->
    # int32 -> uint8 gives the same bytes as float32 -> uint8 in a sixth of the time (0.3 + 0.4 ms for a VGG16
    # strip on 2 CPU threads, against 2.3 ms: PyTorch's float -> uint8 cast is not vectorised)
    t = t.contiguous(memory_format=torch.channels_last)
    out = torch.addcmul(torch.as_tensor(base, dtype=t.dtype) + 0.5, t, factor)
    img = out.clamp_(0, 255).to(torch.int32).to(torch.uint8).permute(0, 2, 3, 1)
    if img.shape[-1] == 1:
        img = img.expand(-1, -1, -1, 3)
    img = img.contiguous().numpy()
    return img[0] if single else img
