"""Class evidence maps: *where* in the picture a network found a class (Grad-CAM and its kin).

The paper's class column (Figure 4) shows *what* the network saw for a class; guided backprop of the
whole output layer hardly depends on the class (Adebayo et al. 2018). A class evidence map shows where:

- ``"gradcam"`` (Selvaraju et al. 2017): the class score's gradient at a layer, averaged over its
  positions, weighs the layer's feature maps: ``relu(sum_k w_k A_k)``;
- ``"gradcam++"`` (Chattopadhay et al. 2018): the weights of their equation 19, as pytorch-grad-cam has them;
- ``"guided-gradcam"``: the guided reconstruction of the class (guided backprop of its score to the
  pixels) times the Grad-CAM map, (N, C, H, W).

The class score is the output layer's (``probe.output_layer``) score before any softmax, its derivative
by the layer's activation taken through the probe's own output head (``Probe.class_seed``). ``A`` is the
layer's activation as the probe defines it (after the rectifier for conv layers). Each map is scaled to
[0, 1] per image and bilinearly upsampled to the input, exactly as pytorch-grad-cam does (min-max, resize,
min-max again), so the numbers equal its ``GradCAM`` / ``GradCAMPlusPlus`` for the same layer output.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .. import checks
from ..errors import CnnvizError, IndexOutOfRangeError, UnsupportedModelError, short_repr
from ..precision import compute_precision
from .core import ProbeCore
from .hooks import grad_enabled
from .layers import Layer, to_nchw

METHODS = ("gradcam", "gradcam++", "guided-gradcam")
EPS_SCALE = 1e-7  # pytorch-grad-cam's scale_cam_image: img / (1e-7 + max)
EPS_PLUSPLUS = 1e-6  # pytorch-grad-cam's Grad-CAM++ denominator


def check_method(method: Any) -> str:
    """``method`` as one of :data:`METHODS` (case and '_' forgiven), or a CnnvizError listing them."""
    name = method.lower().replace("_", "-") if isinstance(method, str) else ""  # "": in no list, so an error
    name = {"grad-cam": "gradcam", "grad-cam++": "gradcam++", "gradcampp": "gradcam++",
            "guided-grad-cam": "guided-gradcam", "guidedgradcam": "guided-gradcam"}.get(name, name)
    if name not in METHODS:
        raise CnnvizError(f"method={short_repr(method)} is not a class map method; use one of "
                          f"{', '.join(repr(m) for m in METHODS)}.")
    return name


def default_layer(probe: ProbeCore) -> Layer:
    """The last conv layer whose activation is a map (more than one position): Grad-CAM's usual layer."""
    for layer in reversed(probe.layers):
        if layer.kind == "conv" and layer.layout != "nc" and layer.shape[1] * layer.shape[2] > 1:
            return layer
    raise UnsupportedModelError(f"{type(probe.model).__name__} has no conv layer with a spatial map, so no class "
                                f"map can be drawn; pass layer= a layer whose activation is (N, C, H, W), H*W > 1.")


def spatial_layer(probe: ProbeCore, layer: str | Layer | None) -> Layer:
    """The layer a class map is drawn at: ``layer`` checked to hold a map, or :func:`default_layer`."""
    if layer is None:
        return default_layer(probe)
    chosen = probe.layer(layer)
    if chosen.layout == "nc" or chosen.shape[1] * chosen.shape[2] <= 1:
        raise CnnvizError(
            f"Layer {chosen.name!r} has no spatial map (its activation is {chosen.shape[1]}x{chosen.shape[2]} per "
            f"channel), so a class map there would be one value spread over the picture. Pass a conv or pool layer "
            f"with a map, e.g. {default_layer(probe).name!r} (the default)."
        )
    return chosen


def class_targets(probe: ProbeCore, target: Any, n: int) -> list[int] | None:
    """Per image the class index of ``target``: one index or label for every image, or a sequence of
    ``n`` of them; None: each image's top-1 (decided after the forward pass)."""
    out = probe.output_layer
    if out is None:
        raise UnsupportedModelError(
            f"{type(probe.model).__name__} does not end in class scores (no output layer was found), so it has no "
            f"class to draw a map of."
        )
    if target is None:
        return None
    if isinstance(target, str) or checks.whole(target):
        return [probe.class_index(target)] * n
    if hasattr(target, "tolist"):
        target = target.tolist()
    if not isinstance(target, Sequence) or len(target) != n:
        raise IndexOutOfRangeError(
            f"target must be a class index or label, or one per image ({n}), got {short_repr(target)}."
        )
    return [probe.class_index(t) for t in target]


def class_map(
    probe: ProbeCore,
    x: torch.Tensor,
    layer: str | Layer | None = None,
    target: int | str | Sequence[int | str] | None = None,
    method: str = "gradcam",
) -> torch.Tensor:
    """Class evidence over the input: (N, 1, H, W) in [0, 1] for "gradcam" and "gradcam++", (N, C, H, W)
    for "guided-gradcam"; float32 on the probe's device, H, W those of ``x``.

    ``target``: a class index or label (``"espresso"``) for every image, one per image, or None for each
    image's top-1. ``layer``: default the last conv layer with a spatial map. One forward and one backward
    pass for the whole batch (each image seeded at its own class).
    """
    method = check_method(method)
    x = probe.check_input(x)
    chosen = spatial_layer(probe, layer)
    classes = class_targets(probe, target, x.shape[0])
    maps, classes = _cam(probe, x, chosen, classes, plusplus=method == "gradcam++")
    if method != "guided-gradcam":
        return maps
    return guided(probe, x, classes) * maps


def _cam(probe: ProbeCore, x: torch.Tensor, layer: Layer, classes: list[int] | None, plusplus: bool
         ) -> tuple[torch.Tensor, list[int]]:
    """The scaled, upsampled (N, 1, H, W) map and the class of each image."""
    out = probe.output_layer
    assert out is not None  # class_targets checked it
    with grad_enabled(), compute_precision(x.device, "fp32"):
        xi = x.detach().clone().requires_grad_(True)  # puts the layer in the graph even with frozen weights
        acts = probe.forward(xi, [layer, out])
        act, scores = acts[layer.name], to_nchw(acts[out.name], out.layout)
        if classes is None:
            classes = probe.output_scores(scores.detach()).argmax(dim=1).tolist()
        seed = torch.zeros_like(scores)
        index = torch.tensor(classes, device=scores.device)
        for c in sorted(set(classes)):
            rows = index == c
            seed[rows] = probe.class_seed(scores.detach()[rows], c)
        (grad,) = torch.autograd.grad(acts[out.name], act, grad_outputs=seed.reshape(acts[out.name].shape),
                                      allow_unused=True)
        if grad is None:
            raise UnsupportedModelError(
                f"The class scores of {type(probe.model).__name__} do not depend on layer {layer.name!r} through "
                f"differentiable operations (a branch that does not reach the output, or a detach on the way), so "
                f"it has no class map; pick a layer on the way to {out.name!r}."
            )
        a = to_nchw(act.detach(), layer.layout).float()
        g = to_nchw(grad.detach(), layer.layout).float()
    if plusplus:
        weights = _plusplus_weights(a, g)
    else:
        weights = g.mean(dim=(2, 3))
    cam = (weights[:, :, None, None] * a).sum(dim=1, keepdim=True).clamp_min(0)
    cam = F.interpolate(scale(cam), size=tuple(x.shape[2:]), mode="bilinear", align_corners=False)
    return scale(cam), classes


def _plusplus_weights(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ channel weights (Chattopadhay et al. eq. 19, with pytorch-grad-cam's epsilon): alpha =
    g^2 / (2 g^2 + sum(A) g^3), zero where the gradient is; weights = sum over positions of alpha relu(g)."""
    g2 = g * g
    g3 = g2 * g
    total = a.sum(dim=(2, 3), keepdim=True)
    alpha = g2 / (2 * g2 + total * g3 + EPS_PLUSPLUS)
    alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
    return (g.clamp_min(0) * alpha).sum(dim=(2, 3))


def scale(maps: torch.Tensor) -> torch.Tensor:
    """Each map (N, 1, h, w) shifted to minimum 0 and divided by (1e-7 + its maximum), as pytorch-grad-cam's
    ``scale_cam_image``: a map without evidence stays 0."""
    flat = maps.flatten(1)
    flat = flat - flat.amin(dim=1, keepdim=True)
    flat = flat / (EPS_SCALE + flat.amax(dim=1, keepdim=True))
    return flat.view_as(maps)


def guided(probe: ProbeCore, x: torch.Tensor, classes: list[int]) -> torch.Tensor:
    """Guided backprop of each image's class score to the pixels: the output layer's guided reconstruction
    seeded at that class (one forward and backward per distinct class)."""
    out = probe.output_layer
    assert out is not None  # class_targets checked it
    result = torch.empty_like(x)
    index = torch.tensor(classes, device=x.device)
    for c in sorted(set(classes)):
        rows = index == c
        result[rows] = probe.reconstruct(x[rows], layers=[out.name], channel=c, rule="guided")[out.name]
    return result
