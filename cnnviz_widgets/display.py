"""Reconstructions as pictures: how a signed (3, H, W) map in input space becomes uint8 grey levels.

- ``signed`` (the paper's look): zero is mid-grey, scaled by the largest absolute value per image.
- ``contrast``: each colour channel's median removed (the mean would follow a few hot pixels), then
  scaled by the 99.5th percentile of the absolute value and clipped, so those pixels no longer set the scale.
- ``minmax``: stretched from the smallest to the largest value.
- ``auto``: ``contrast`` where the signed display would be faint, else ``signed``;
  :func:`choose_display` decides once for a set of pictures (a strip), so one strip has one display.

The 30% line of ``auto`` (PEAK_RATIO) was set by measurement: README, Benchmarks, "Measured choices".
"""
from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np
import torch

from .errors import CnnvizError, ImageError

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
    if not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):  # one reduction; exact where it fails
        nan = int(torch.isnan(t).sum())
        raise ImageError(
            f"to_display: the map holds {nan:,} NaN and {int((~torch.isfinite(t)).sum()) - nan:,} infinite values "
            f"(of {t.numel():,}); no picture can show it truthfully (a NaN would be drawn black, one infinity would "
            f"flatten the rest to grey). They come from the network's numbers (an overflow in half precision?) or "
            f"from a custom reverse rule.")
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


def _peak_and_sample(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image of a batch: the largest |value| of all (from the extremes, without a copy of the batch), and
    |value| at the SAMPLE positions faintness reads (every value of a small picture)."""
    flat = t.flatten(1)
    peak = torch.maximum(flat.amax(1), -flat.amin(1))
    return peak, (flat.index_select(1, _sample(flat.shape[1])).abs_() if flat.shape[1] > SAMPLE else flat.abs())


def _ratio(peak: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return torch.where(peak > 0, upper_quantile(a, PERCENTILE) / peak.clamp_min(1e-30), torch.ones_like(peak))


def faintness(rec: torch.Tensor | np.ndarray) -> np.ndarray:
    """Per image: the 99.5th percentile of |value| over its peak (small: a few hot pixels set the signed scale);
    the percentile of a strided sample of at most SAMPLE values, the peak of all."""
    t, _ = _batch(rec)
    return _ratio(*_peak_and_sample(t)).numpy()


_MARGIN = 1e-4  # ratios this close to PEAK_RATIO (relative) are computed, not counted: rounding cannot flip a side


def _sides(t: torch.Tensor) -> np.ndarray:
    """Per image, where its faintness lies against PEAK_RATIO, by counting instead of selecting: 0.0 (under),
    inf (at or over) or, where counting cannot tell, the faintness itself. The percentile interpolates between
    the lo-th and next sorted value: it is under r * peak when fewer than n - lo - 1 values reach that, and at
    least r * peak when n - lo values or more do. One pass instead of a partial sort (a fifth of the time)."""
    peak, a = _peak_and_sample(t)
    n = a.shape[1]
    lo = int(np.floor(PERCENTILE * (n - 1)))
    a.mul_((1.0 / peak)[:, None])  # over the peak: compared with one number (a broadcast compare is 2x slower)
    reach = lambda r: (a >= r).view(torch.uint8).sum(1, dtype=torch.int32)  # noqa: E731 - how many reach r
    plain = torch.isfinite(peak) & (peak >= 1e-30)  # not a 1e-40 or overflowed picture: those go the exact way
    under = (reach(PEAK_RATIO * (1 - _MARGIN)) <= n - lo - 2) & plain
    over = ((reach(PEAK_RATIO * (1 + _MARGIN)) >= n - lo) & plain) | (peak == 0)
    out = torch.where(under, 0.0, torch.where(over, float("inf"), float("nan"))).double().numpy()
    unsure = (~(under | over)).numpy()
    if unsure.any():  # near the line, or not finite: the faintness itself, as faintness() computes it
        out[unsure] = faintness(t[torch.from_numpy(unsure)])
    return out


def choose_display(recs: Iterable[torch.Tensor | np.ndarray]) -> str:
    """'signed' or 'contrast' for a set of reconstructions: 'contrast' where the median of their 99.5th
    percentile over peak is under PEAK_RATIO (see the module docstring for the measurement). Decided from
    which side of PEAK_RATIO each one lies (:func:`_sides`), which is all the median's side depends on, except
    for an even number straddling the line: that median is the mean of two faintnesses, computed then."""
    batches = [_batch(r)[0] for r in recs]
    sides = np.concatenate([_sides(b) for b in batches]) if batches else np.zeros(0)
    if not len(sides):
        return "signed"
    middle = np.sort(sides)[(len(sides) - 1) // 2 : len(sides) // 2 + 1]
    if len(middle) == 2 and (middle < PEAK_RATIO).any() and (middle >= PEAK_RATIO).any():
        sides = np.concatenate([faintness(b) for b in batches])
    return "contrast" if float(np.median(sides)) < PEAK_RATIO else "signed"


def to_display(rec: torch.Tensor | np.ndarray, mode: str = "signed") -> np.ndarray:
    """A reconstruction (3,H,W) or (N,3,H,W) as uint8 HxWx3 (or N,H,W,3) for showing.

    ``mode``: "signed" (default; zero is mid-grey, as in the paper's figures), "contrast", "minmax",
    or "auto" (chosen per image; see the module docstring).
    """
    if mode not in MODES:
        raise ImageError(f"to_display: mode must be one of {', '.join(repr(m) for m in MODES)}, not {mode!r}.")
    t, single = _batch(rec)
    if mode == "auto":
        shown = np.stack([to_display(t[i], choose_display([t[i]])) for i in range(len(t))])
        return shown[0] if single else shown
    # each mode is (value - offset) / scale * gain + base per picture (or channel), done in one fused pass
    base: float | torch.Tensor
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
    # written in channels-last order, so the uint8 result is already HxWx3 in memory (a permuted copy took as
    # long as the arithmetic); +0.5 then the integer cast's truncation rounds in the same pass (half up).
    # float32 -> int32 (in place) -> uint8 gives the same bytes as float32 -> uint8 in a sixth of the time
    # (PyTorch's float -> uint8 cast is not vectorised). One float buffer in all: where the allocator hands big
    # blocks back to the system, each new one costs its page faults (2 us a page in a VM: 6 ms for a VGG16 strip)
    out = torch.empty_like(t, memory_format=torch.channels_last)
    torch.addcmul(torch.as_tensor(base, dtype=t.dtype) + 0.5, t, factor, out=out).clamp_(0, 255)
    whole = out.view(torch.int32)
    whole.copy_(out)  # in place, element by element
    img = whole.to(torch.uint8).permute(0, 2, 3, 1)
    if img.shape[-1] == 1:
        img = img.expand(-1, -1, -1, 3)
    pixels = img.contiguous().numpy()
    return pixels[0] if single else pixels


def pictures(recs: torch.Tensor | Iterable[torch.Tensor | np.ndarray], mode: str = "auto") -> tuple[list[np.ndarray], str]:
    """Reconstructions (a list of (3, H, W), or one (N, 3, H, W) batch, displayed in one pass) as uint8 HxWx3
    pictures, and the display used: ``mode`` "auto" chooses one for the whole set (:func:`choose_display`: a
    strip looks alike), the others force it. What every widget and figure shows."""
    if mode not in MODES:
        raise ImageError(f"display must be one of {', '.join(repr(m) for m in MODES)}, not {mode!r}.")
    batch = recs if isinstance(recs, torch.Tensor) and recs.ndim == 4 else None
    recs = [batch] if batch is not None else list(recs)
    if mode == "auto":
        mode = choose_display(recs)
    if batch is not None:
        return list(to_display(batch, mode)), mode
    return [to_display(r, mode) for r in recs], mode


def heat(maps: torch.Tensor | np.ndarray) -> np.ndarray:
    """Class evidence maps in [0, 1], (H, W) or (N, H, W), as uint8 colours (..., 3) on the jet scale that
    pytorch-grad-cam and the Grad-CAM paper show them in: dark blue for none, through cyan, yellow, to dark red."""
    m = np.clip(np.asarray(maps.detach().cpu() if isinstance(maps, torch.Tensor) else maps, dtype=np.float32), 0, 1)
    rgb = np.stack([np.clip(1.5 - np.abs(4 * m - k), 0, 1) for k in (3, 2, 1)], axis=-1)
    return (rgb * 255).round().astype(np.uint8)


def overlay(picture: np.ndarray, maps: torch.Tensor | np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """A picture (H, W, 3) uint8 with its class map (H, W) in [0, 1] laid over it as :func:`heat` colours at
    ``opacity`` (0: the picture, 1: the map alone); what the explorer shows and saves."""
    if not 0 <= float(opacity) <= 1:
        raise CnnvizError(f"opacity must be from 0 to 1, got {opacity!r}.")
    colours = heat(maps).astype(np.float32)
    mixed = (1 - float(opacity)) * np.asarray(picture, dtype=np.float32)[..., :3] + float(opacity) * colours
    return mixed.round().clip(0, 255).astype(np.uint8)
