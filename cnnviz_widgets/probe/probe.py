"""Probe: wraps any CNN (its own copy), names its layers (:mod:`.discovery`), and captures activations and reverses them;
its fields, pictures and classes are its parts :mod:`.fields`, :mod:`.pictures` and :mod:`.classes`."""
from __future__ import annotations

import copy
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .. import checks
from ..errors import (
    CnnvizError,
    LayerNotFoundError,
    UnsupportedModelError,
    list_names,
    short_repr,
    warn,
)
from ..models.provenance import WeightsRecord, mark, weights_note, weights_of
from ..precision import compute_precision
from .field_measure import FieldMeasurement
from .hooks import eval_mode, forward_hooks, shared_copy
from .labels import checked_labels
from .layers import Layer, to_nchw
from .class_map import class_map
from .reconstruct import reconstruct
from .receptive_field import ReceptiveField
from .recorder import ForwardRecorder, StopForward
from .rectifiers import rectifier_warning
from .rules import DEFAULT_RULE, ReverseRule, resolve_rule
from .discovery import ProbeDiscovery
from .fields import ProbeFields
from .pictures import ProbePictures
from .classes import ProbeClasses

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def input_channels(model: nn.Module) -> int:
    """The channels the network takes: those of its first Conv2d (1 for MNIST-style networks, else 3)."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return int(first.in_channels) if first is not None else 3


def all_finite(t: torch.Tensor, chunk: int = 1 << 22) -> bool:
    """Whether every value of ``t`` is finite. One sum first (a NaN or an infinity makes it so; no temporary); only
    a sum that is not finite, which an overflow can cause too, is checked value by value, 4M values at a time:
    ``torch.isfinite`` of a whole tensor holds temporaries several times its size (0.7 GB for VGG16's fc6), which
    alone took a lesson past Binder's 2 GB. Probes and checkpoints check weights with it."""
    t = t.detach()
    if math.isfinite(float(t.sum())):
        return True
    return all(bool(torch.isfinite(part).all()) for part in t.reshape(-1).split(chunk))


class Probe(ProbeDiscovery, ProbeFields, ProbePictures, ProbeClasses):
    """A CNN opened up: layers with paper-style names, receptive fields, activations, deconvnet.

    The user's model is never modified: hooks live only inside each call, train/eval flags are
    restored, and a model on another device is copied rather than moved.

    Pictures are resized so their shorter side is ``input_size`` and the centre square is cropped; with
    ``resize_size`` (or weights that record their preset, as ``load_model(..., weights="imagenet")`` does:
    256 for 224) the shorter side is resized to ``resize_size`` first, by torchvision's own arithmetic
    (the longer side truncated, the crop offset rounded), so inputs match torchvision's presets exactly.
    """

    def __init__(
        self,
        model: nn.Module,
        device: str | torch.device | None = None,
        input_size: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        labels: Sequence[str] | None = None,
        resize_size: int | None = None,
    ) -> None:
        if isinstance(model, torch.jit.ScriptModule):
            raise UnsupportedModelError(
                f"{type(model).__name__} is a TorchScript module (from torch.jit.script, trace or load): it has no "
                f"Python layers to hook. Build the model in Python and give it the scripted weights: "
                f"model.load_state_dict(scripted.state_dict()), then cv.Probe(model)."
            )
        if not isinstance(model, nn.Module):
            raise UnsupportedModelError(
                f"Probe needs a torch.nn.Module, got {type(model).__name__}. "
                f"Load one with cv.load_model('vgg16') or torchvision.models."
            )
        self.device = checks.device(device)
        self.model = self._own_copy(model)
        record = weights_of(model)
        if record is not None:  # the probe's own copy speaks for the same weights (a float32 copy's tensors are new)
            mark(self.model, record)
        if input_size is None:
            input_size = 299 if type(model).__name__ == "Inception3" else 224
        self.input_size = checks.side("input_size", input_size)
        self.resize_size = preset_resize(model, self.input_size) if resize_size is None else \
            checks.side("resize_size", resize_size)
        if self.resize_size is not None and self.resize_size < self.input_size:
            raise CnnvizError(f"resize_size={self.resize_size} is smaller than input_size={self.input_size}: the "
                              f"shorter side is resized to resize_size, then the centre input_size square is cropped.")
        self._labels = checked_labels(labels)
        self._warned: set[tuple[str, str]] = set()  # (rule, rectifier) pairs already warned about
        # hooks and eval flags are set on the shared model for the length of a forward pass: one at
        # a time, so a widget's background job and a cell never interleave their passes
        self._lock = threading.RLock()
        self._measured: dict[str, ReceptiveField | None] = {}
        self._filled: dict[str, ReceptiveField | None] = {}  # fields tracing missed, measured (None: not a box)
        self._fill_lock = threading.Lock()
        self._filling: FieldMeasurement | None = None
        # the input channels are those of the first conv that runs: its registration order says which one
        # most often; where it does not (a head registered before the stem), 3 and then 1 are tried
        failures = []
        for channels in dict.fromkeys((input_channels(self.model), 3, 1)):
            self.channels = channels
            try:
                self._discover()
                break
            except UnsupportedModelError as exc:
                failures.append(exc)
        else:
            raise failures[0]
        if self.channels not in (1, 3):
            raise UnsupportedModelError(
                f"{type(model).__name__} takes {self.channels} input channels; pictures reach a network as 3 (RGB) "
                f"or 1 (grayscale) channels."
            )
        if mean is None:
            mean = IMAGENET_MEAN if self.channels == 3 else (0.0,)
        if std is None:
            std = IMAGENET_STD if self.channels == 3 else (1.0,)
        shape = (1, self.channels, 1, 1)
        self.mean = torch.tensor(checks.per_channel("mean", mean, self.channels), device=self.device).view(shape)
        self.std = torch.tensor(checks.per_channel("std", std, self.channels, positive=True),
                                device=self.device).view(shape)
        if self._labels is not None and self._num_outputs is not None and len(self._labels) != self._num_outputs:
            raise CnnvizError(
                f"labels has {len(self._labels)} names, but {type(model).__name__} has {self._num_outputs} outputs: "
                f"give one name per output, in output order."
            )

    def _own_copy(self, model: nn.Module) -> nn.Module:
        """The probe's own module object. When the model is float32 on the probe's device it shares the model's
        parameters and buffers (weights you train or load are seen at once, no memory is spent) while hooks and
        train/eval flags stay on the probe's object, so a widget's pass never touches the object a cell runs;
        otherwise a float32 copy there (the user's model is never moved or converted; reverse rules need float32,
        autocast= gives speed)."""
        tensors = list(model.parameters()) + list(model.buffers())
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.is_floating_point() and not t.is_meta and not all_finite(t):
                raise UnsupportedModelError(
                    f"{type(model).__name__}'s {name} holds NaN or infinite values (a training run that diverged?), so "
                    f"every result would be NaN: load weights saved before it went wrong."
                )
        on_device = all(t.device == self.device for t in tensors)
        low = sorted({str(t.dtype).replace("torch.", "") for t in tensors
                      if t.is_floating_point() and t.dtype != torch.float32})
        if on_device and not low:
            return shared_copy(model)
        if low:
            warn(
                f"{type(model).__name__} holds {', '.join(low)} weights: the probe works on a float32 copy (your model "
                f"is untouched). For speed on a GPU, keep float32 weights and pass autocast='fp16' or 'bf16'.", stacklevel=3,
            )
        return copy.deepcopy(model).to(self.device, torch.float32)

    # ------------------------------------------------------------------ names
    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(l.name for l in self.layers)

    def layer(self, name: str | Layer) -> Layer:
        """The Layer called ``name`` (paper-style name or module path)."""
        if isinstance(name, Layer):
            name = name.name
        layer = self._by_name.get(name) if isinstance(name, str) else None
        if layer is None:
            raise LayerNotFoundError(
                f"No layer {short_repr(name)} in {type(self.model).__name__}. Valid names: {list_names(self.layer_names)}."
            )
        return layer

    def select(self, layers: str | Iterable[str] | None) -> list[Layer]:
        """The named layers (all for None), deduplicated, in forward order."""
        if layers is None:
            return list(self.layers)
        if isinstance(layers, (str, Layer)):
            layers = [layers]
        if not isinstance(layers, Iterable) or isinstance(layers, bytes):
            raise LayerNotFoundError(f"layers must be a layer name or a list of names, got {short_repr(layers)}. "
                                     f"Valid names: {list_names(self.layer_names)}.")
        chosen = [self.layer(n) for n in layers]
        if not chosen:
            raise LayerNotFoundError(f"layers=[] names no layer. Valid names: {list_names(self.layer_names)}.")
        depth = {l.name: i for i, l in enumerate(self.layers)}
        return sorted(dict.fromkeys(chosen), key=lambda l: depth[l.name])

    # ------------------------------------------------------------------ weights
    @property
    def weights(self) -> WeightsRecord | None:
        """Where the network's weights came from, as ``cv.load_model`` recorded it (model, source, random); None for
        a network that did not come from ``load_model`` (taken as trained) or whose weights were loaded or trained
        since (a checkpoint loaded into a random model counts as loaded weights)."""
        return weights_of(self.model)

    @property
    def random_weights(self) -> bool:
        """Whether the weights are random (seeded, untrained): then every figure made from this probe is stamped
        and every widget says so."""
        record = self.weights
        return record is not None and record.random

    @property
    def weights_note(self) -> str:
        """A sentence for readers when the weights are random ("random weights: alexnet_paper (seed 0), not trained:
        ..."), "" otherwise. Figures and widgets made from this probe show it."""
        record = self.weights
        return weights_note([(record.model, record)]) if record is not None else ""

    # ------------------------------------------------------------------ pictures
    # ------------------------------------------------------------------ forward passes
    def forward(self, x: torch.Tensor, layers: list[Layer], rule: str | ReverseRule | None = None
                ) -> dict[str, torch.Tensor]:
        """One forward pass; each layer's activation in its native layout, with the rectifiers ready to be
        reversed by ``rule`` (None: a plain forward, for activations)."""
        wanted = {l.module_path for l in layers}
        reverse = resolve_rule(rule) if rule is not None else None
        rec = ForwardRecorder(wanted=wanted, final_at_module=self._final_at_module, rule=reverse, stop_early=True)
        modules = {p: self._module_of[p] for p in wanted}
        try:
            with self._lock, eval_mode(self.model), forward_hooks(self._hooks(rec, modules)), rec:
                self.model(x)
        except StopForward:
            pass
        note = rectifier_warning(type(self.model).__name__, rec.rule, rec.rectifier_labels, rec.unfaithful,
                                 self._warned) if rec.rule is not None else None
        if note:
            warn(note, stacklevel=3)
        acts = rec.activations()
        return {l.name: acts[l.module_path] for l in layers}

    def activations(self, x: torch.Tensor, layers: str | Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """Layer name -> activation (N, C, H, W) (post-rectifier for conv/fc; fc as (N, C, 1, 1)), in exact
        float32 (TF32 off on CUDA)."""
        x = self.check_input(x)
        chosen = self.select(layers)
        with torch.no_grad(), compute_precision(self.device, "fp32"):
            return self.forward_nchw(x, chosen)

    def forward_nchw(self, x: torch.Tensor, layers: list[Layer]) -> dict[str, torch.Tensor]:
        """:meth:`forward` with every activation as (N, C, H, W), for input already checked (the stream's
        batches are checked as pictures; checking again would wait on the GPU every batch)."""
        acts = self.forward(x, layers)
        return {l.name: to_nchw(acts[l.name], l.layout) for l in layers}

    def reconstruct(
        self,
        x: torch.Tensor,
        layers: str | Iterable[str] | None = None,
        channel: int | str | None = None,
        unit: tuple[int, int, int] | None = None,
        rule: str | ReverseRule = DEFAULT_RULE,
        **options: Any,
    ) -> dict[str, torch.Tensor]:
        """Layer name -> reconstruction in input space, shaped like x, by a reverse rule.

        ``rule``: "deconvnet" (Zeiler & Fergus, the paper), "guided" (guided backprop) or "gradient"
        (saliency). Whole layer, one feature map (``channel``; on the output layer a class index or
        label such as ``"espresso"``) or one ``unit=(channel, y, x)``. ``options``: ``targets``,
        ``progress``, ``batched``, ``precision`` (or ``autocast``), ``on_forward``; see
        :func:`cnnviz_widgets.probe.reconstruct.reconstruct`.
        """

        return reconstruct(self, x, layers=layers, channel=channel, unit=unit, rule=rule, **options)

    def deconvnet(
        self,
        x: torch.Tensor,
        layers: str | Iterable[str] | None = None,
        channel: int | str | None = None,
        unit: tuple[int, int, int] | None = None,
        **options: Any,
    ) -> dict[str, torch.Tensor]:
        """Zeiler & Fergus deconvnet: ``reconstruct(..., rule="deconvnet")``."""
        return self.reconstruct(x, layers=layers, channel=channel, unit=unit, rule="deconvnet", **options)

    def class_map(
        self,
        x: torch.Tensor,
        layer: str | Layer | None = None,
        target: int | str | Sequence[int | str] | None = None,
        method: str = "gradcam",
    ) -> torch.Tensor:
        """Where in the picture the network found a class: (N, 1, H, W) in [0, 1] by ``method`` "gradcam" or
        "gradcam++", or (N, C, H, W) by "guided-gradcam" (the guided reconstruction times the map).

        ``target``: a class index or label, one per image, or None (each image's top-1); ``layer``: default the
        last conv layer with a spatial map. See :func:`cnnviz_widgets.probe.class_map.class_map`.
        """

        return class_map(self, x, layer=layer, target=target, method=method)

    # ------------------------------------------------------------------ classes
    def __repr__(self) -> str:
        return (
            f"Probe({type(self.model).__name__}, {len(self.layers)} layers: "
            f"{', '.join(self.layer_names[:6])}{', ...' if len(self.layers) > 6 else ''}; device={self.device})"
        )


def preset_resize(model: nn.Module, input_size: int) -> int | None:
    """The shorter side a model's weights were trained to see before their centre crop, when the weights
    say so (``cv.load_model(..., weights="imagenet")`` records torchvision's preset: 256 for a 224 crop),
    scaled to ``input_size``; None: resize to ``input_size`` itself."""
    preset = getattr(model, "cnnviz_preprocessing", None)
    if not isinstance(preset, Mapping) or not preset.get("resize") or not preset.get("crop"):
        return None
    return max(input_size, int(round(input_size * preset["resize"] / preset["crop"])))
