"""Resizing a picture to a network's input: the shorter side to the resize size, antialiased as torchvision does, then
the centre crop; a thin or huge picture is resized within the crop's window only, a band of rows at a time."""
from __future__ import annotations

import torch


def resize_center_crop(t: torch.Tensor, size: int, resize: int | None = None) -> torch.Tensor:
    """Resize (C, H, W) or (N, C, H, W) pictures so the shorter side is ``resize`` (default ``size``;
    antialiased bilinear, torchvision's kernel: uint8 stays uint8), then crop the centre ``size`` square
    (torchvision's CenterCrop arithmetic when ``resize`` is given, as its presets do)."""
    from torchvision.transforms.v2 import functional as TF

    h, w = t.shape[-2:]
    if resize is None:
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    else:  # a weights' preset: torchvision's own arithmetic (the longer side truncated), so inputs match exactly
        nh, nw = (resize, int(resize * w / h)) if h <= w else (int(resize * h / w), resize)
    if resize is None:
        top, left = (nh - size) // 2, (nw - size) // 2
    else:
        top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    if nh * nw > WINDOW_AREA * size * size:  # a thin or huge picture: only the crop is computed
        return _resized_window(t, (nh, nw), (top, left), size)
    if (nh, nw) != (h, w):
        t = TF.resize(t, [nh, nw], antialias=True)
    t = t[..., top : top + size, left : left + size]
    return t if t.dtype == torch.uint8 else t.clamp(0, 1)


WINDOW_AREA = 4  # a resized picture over 4x the crop's area (an aspect over 4:1) is resized within the crop only
WINDOW_ROWS = 256  # rows of the input window taken to float at a time (a 6000x30000 array: 37 MB, not 870 MB)


def _aa_weights(in_size: int, out_size: int, start: int, count: int) -> tuple[int, torch.Tensor]:
    """Rows ``start`` .. ``start + count`` of PyTorch's antialiased bilinear resize matrix from ``in_size`` to
    ``out_size`` samples (aten's ``_compute_index_ranges_weights``: a triangle as wide as the scale when
    shrinking, one sample each side when growing, normalised), over the input samples they reach only:
    returns the first of those and the (count, reach) weights."""
    scale = in_size / out_size
    support, inverse = (scale, 1.0 / scale) if scale >= 1 else (1.0, 1.0)
    centre = scale * (torch.arange(start, start + count, dtype=torch.float64) + 0.5)
    first = (centre - support + 0.5).trunc().clamp_min(0)
    end = (centre + support + 0.5).trunc().clamp_max(in_size)
    lo, hi = int(first.min()), int(end.max())
    j = torch.arange(lo, hi, dtype=torch.float64)[None]
    w = (1 - ((j - centre[:, None] + 0.5) * inverse).abs()).clamp_min(0)
    w = w * ((j >= first[:, None]) & (j < end[:, None]))
    return lo, w / w.sum(1, keepdim=True).clamp_min(1e-300)


def _resized_window(t: torch.Tensor, resized: tuple[int, int], at: tuple[int, int], size: int) -> torch.Tensor:
    """The ``size`` square at ``at`` of ``t`` resized to ``resized`` (antialiased bilinear), computed from the input
    samples that square reaches and nothing more: a 1x100000 picture costs its crop, not the 224x22,400,000 picture
    a resize makes first (5 GB). Equal to the resize-then-crop within float rounding (uint8: one level, rounded)."""
    h, w = t.shape[-2:]
    (nh, nw), (top, left) = resized, at
    y0, wy = _aa_weights(h, nh, top, max(0, min(size, nh - top)))
    x0, wx = _aa_weights(w, nw, left, max(0, min(size, nw - left)))
    window = t[..., y0 : y0 + wy.shape[1], x0 : x0 + wx.shape[1]]
    out = None
    for r in range(0, window.shape[-2], WINDOW_ROWS):  # a band of rows at a time: a big window is never all float
        part = wy[:, r : r + WINDOW_ROWS] @ (window[..., r : r + WINDOW_ROWS, :].to(torch.float64) @ wx.T)
        out = part if out is None else out.add_(part)
    assert out is not None  # the window has rows
    out = out.float()
    if t.dtype == torch.uint8:
        return out.round_().clamp_(0, 255).to(torch.uint8)
    return out.clamp_(0, 1)
