"""The effective receptive field (Luo et al. 2016, "Understanding the Effective Receptive Field in Deep CNNs").

A unit's theoretical field (probe.receptive_field) is every pixel that can reach it; in deep networks it grows
wider than the picture (EfficientNet-Lite0's last conv: 851 px on a 224 px input) while the gradient of the unit
stays concentrated in a much smaller, roughly Gaussian region around its centre. :func:`effective_field` measures
that region once per layer over a few pictures: the gradient magnitude of the layer's centre unit (1 on every
channel at the centre position, 0 elsewhere, the ordinary backward; |d/dx| summed over input channels and
pictures), and the smallest square box centred on the unit's field that holds ``fraction`` of it. The result is
a :class:`ReceptiveField` with the theoretical stride and the box's size, offset so that every unit's box is
centred where its theoretical field is: patches of layers whose field is wider than the picture are cropped to
it (TopPatches.field_kind says which field a patch uses), while ``probe.receptive_field`` and Tables 1-2 keep the
theoretical field.
"""
from __future__ import annotations

import hashlib
import math
import weakref

import torch

from ..errors import CnnvizError
from ..precision import compute_precision
from ..probe.hooks import grad_enabled
from ..probe.layers import from_nchw, to_nchw
from ..probe.probe import Probe
from ..probe.receptive_field import ReceptiveField
from ..probe.rules import RULES

FRACTION = 0.95  # of the gradient magnitude: Luo et al.'s "effective" region
PICTURES = 8  # at most this many pictures measure a layer's field

_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # probe -> {(layer, fraction, pictures): field}


def gradient_mass(probe: Probe, x: torch.Tensor, layer: str) -> tuple[torch.Tensor, tuple[int, int]]:
    """(H, W) float64: sum over pictures and input channels of |d (sum over channels of the centre unit) / d x|,
    and the centre unit's (y, x) on the layer's map."""
    x = probe.check_input(x)
    (l,) = probe.select(layer)
    with grad_enabled(), compute_precision(x.device, "fp32"):
        xi = x.detach().clone().requires_grad_(True)
        act = probe.forward(xi, [l], RULES["gradient"])[l.name]
        nchw = to_nchw(act, l.layout)
        h, w = nchw.shape[2:]
        cy, cx = h // 2, w // 2
        seed = torch.zeros_like(nchw)
        seed[:, :, cy, cx] = 1.0
        (g,) = torch.autograd.grad(act, xi, grad_outputs=from_nchw(seed, l.layout))
    return g.detach().abs().sum(dim=(0, 1)).double().cpu(), (cy, cx)


def smallest_box(mass: torch.Tensor, centre: tuple[float, float], fraction: float,
                 largest: int | None = None) -> tuple[int, int, int]:
    """(side, top, left) of the smallest square box centred at ``centre`` (row, column; a box of side s spans rows
    floor(row - (s - 1) / 2) onwards) that holds ``fraction`` of ``mass`` (H, W); ``largest`` caps the side."""
    h, w = mass.shape
    total = float(mass.sum())
    cum = torch.zeros(h + 1, w + 1, dtype=torch.float64)
    cum[1:, 1:] = mass.cumsum(0).cumsum(1)
    cap = largest if largest is not None else 2 * max(h, w) + 2
    side = top = left = 0
    for side in range(1, cap + 1):
        top = math.floor(centre[0] - (side - 1) / 2 + 1e-9)
        left = math.floor(centre[1] - (side - 1) / 2 + 1e-9)
        t, l, b, r = max(top, 0), max(left, 0), min(top + side, h), min(left + side, w)
        inside = float(cum[b, r] - cum[t, r] - cum[b, l] + cum[t, l]) if t < b and l < r else 0.0
        if inside >= fraction * total - 1e-12 * total:
            break
    return side, top, left


def effective_field(probe: Probe, x: torch.Tensor, layer: str, fraction: float = FRACTION) -> ReceptiveField:
    """The effective receptive field of ``layer``, measured over the model input ``x`` (N, 3, S, S) (a few
    pictures: :data:`PICTURES` are plenty): size the side of the smallest centred box holding ``fraction`` of the
    centre unit's gradient magnitude (never wider than the theoretical field), stride the theoretical one, offset
    so that each unit's box is centred on its theoretical field. Cached per probe, layer, fraction and pictures.
    Where the gradient is zero on every picture (a dead centre unit) the theoretical field is returned."""
    if not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise CnnvizError(f"fraction must be a number in (0, 1], the share of the gradient the box holds; got {fraction!r}.")
    l = probe.layer(layer)
    rf = probe.field_or_error(l.name)
    x = probe.check_input(x)
    key = (l.name, float(fraction), hashlib.blake2b(x.detach().cpu().contiguous().numpy().tobytes(),
                                                    digest_size=16).hexdigest())
    per_probe = _cache.setdefault(probe, {})
    if key in per_probe:
        return per_probe[key]
    mass, (cy, cx) = gradient_mass(probe, x, l.name)
    if float(mass.sum()) <= 0:
        field = rf
    else:
        centre = rf.centre(cy, cx)
        side, top, left = smallest_box(mass, centre, float(fraction), largest=rf.size)
        sy, sx = rf.stride_yx
        field = ReceptiveField(side, (sy, sx), (top - cy * sy, left - cx * sx))
    per_probe[key] = field
    return field


def inside(box: tuple[int, int, int, int], height: int, width: int) -> tuple[int, int, int, int]:
    """``box`` (top, left, bottom, right) moved, not resized, to lie inside a ``height`` x ``width`` picture where it
    fits: a unit near the border has its gradient inside the picture (what lies outside is padding, which carries
    none), so its effective box is moved in rather than padded with grey."""
    top, left, bottom, right = box
    dy = (-top if top < 0 else height - bottom if bottom > height else 0) if bottom - top <= height else 0
    dx = (-left if left < 0 else width - right if right > width else 0) if right - left <= width else 0
    return top + dy, left + dx, bottom + dy, right + dx


def is_wider_than_picture(probe: Probe, rf: ReceptiveField) -> bool:
    """Whether ``rf`` (a layer's theoretical field) is wider than the probe's picture: then its patches are cropped
    to the effective field (fully connected layers, whose field is the picture, are not)."""
    return not rf.is_global and rf.size > probe.input_size


def patch_field(probe: Probe, layer: str, x: torch.Tensor, fraction: float = FRACTION) -> ReceptiveField:
    """The field a layer whose theoretical field is wider than the picture crops its patches to: the effective field
    over ``x``, no wider than the picture (still centred on each unit)."""
    eff = effective_field(probe, x, layer, fraction)
    side = probe.input_size
    if eff.size > side:
        cut = (eff.size - side) // 2
        eff = ReceptiveField(side, eff.stride_yx, tuple(o + cut for o in eff.offset_yx))
    return eff


def patch_box(probe: Probe, field: ReceptiveField, y: int, x: int, effective: bool) -> tuple[int, int, int, int]:
    """Input rows and columns (top, left, bottom, right) unit (y, x)'s patch is cropped from: ``field``'s square box,
    moved inside the picture when ``effective`` (a theoretical box crossing the border keeps its place and is padded)."""
    box = field.square_box(int(y), int(x))
    return inside(box, probe.input_size, probe.input_size) if effective else box
