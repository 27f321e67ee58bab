"""Probe: wraps any CNN; names its layers, preprocesses pictures, captures activations, reverses them."""
from __future__ import annotations

import copy
import difflib
import math
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import (
    DeviceUnavailableError,
    ImageError,
    IndexOutOfRangeError,
    LabelNotFoundError,
    LayerNotFoundError,
    UnsupportedModelError,
    list_names,
)
from ..images import picture_to_tensor, resize_center_crop, split_pictures
from .hooks import eval_mode, forward_hooks, grad_enabled
from .layers import Layer, layer_kind, paper_names
from .receptive_field import (
    GLOBAL,
    Geometry,
    GeometryTracer,
    ReceptiveField,
    global_field,
    measure_field,
    positive_copy,
    support_mode,
)
from .recorder import ForwardRecorder, StopForward
from .rules import ReverseRule, resolve_rule

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None: CUDA when available, else CPU. An unavailable device raises DeviceUnavailableError."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceUnavailableError(f"device={device!r} is not a device name; use 'cpu', 'cuda' or None.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"device={device!r} asks for a GPU, but PyTorch sees none here (torch.cuda.is_available() is False). "
            f"Use device='cpu', or device=None to pick the GPU only when there is one."
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceUnavailableError(
            f"device={device!r}: this machine has {torch.cuda.device_count()} GPU(s), numbered from 0."
        )
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceUnavailableError(f"device={device!r}: Apple's MPS backend is not available here; use 'cpu'.")
    return dev


class Probe:
    """A CNN opened up: layers with paper-style names, receptive fields, activations, deconvnet.

    The user's model is never modified: hooks live only inside each call, train/eval flags are
    restored, and a model on another device is copied rather than moved.
    """

    def __init__(
        self,
        model: nn.Module,
        device: str | torch.device | None = None,
        input_size: int | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        labels: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise UnsupportedModelError(
                f"Probe needs a torch.nn.Module, got {type(model).__name__}. "
                f"Load one with cv.load_model('vgg16') or torchvision.models."
            )
        self.device = resolve_device(device)
        params = list(model.parameters()) + list(model.buffers())
        on_device = all(p.device == self.device for p in params) if params else True
        self.model = model if on_device else copy.deepcopy(model).to(self.device)
        if input_size is None:
            input_size = 299 if type(model).__name__ == "Inception3" else 224
        if int(input_size) < 1:
            raise ImageError(f"input_size must be a positive number of pixels, got {input_size!r}.")
        self.input_size = int(input_size)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._labels = list(labels) if labels is not None else None
        self._warned: set[tuple[str, str]] = set()  # (rule, rectifier) pairs already warned about
        # hooks and eval flags are set on the shared model for the length of a forward pass: one at
        # a time, so a widget's background job and a cell never interleave their passes
        self._lock = threading.RLock()
        self._measured: dict[str, ReceptiveField | None] = {}
        self._discover()

    # ------------------------------------------------------------------ discovery
    def _discover(self) -> None:
        model = self.model
        self._module_of: dict[str, nn.Module] = {}
        kinds: dict[str, str] = {}
        for path, module in model.named_modules():
            kind = layer_kind(module)
            if kind is not None and path:
                self._module_of[path] = module
                kinds[path] = kind
        if not any(k == "conv" for k in kinds.values()):
            raise UnsupportedModelError(
                f"{type(model).__name__} has no torch.nn.Conv2d layer; cnnviz-widgets visualizes convolutional networks."
            )
        tracer = GeometryTracer()
        x = torch.zeros(1, 3, self.input_size, self.input_size, device=self.device)
        tracer.start(x)
        rec = ForwardRecorder(wanted=set(self._module_of), tracer=tracer)
        try:
            with eval_mode(model), torch.no_grad(), forward_hooks(self._hooks(rec, self._module_of)), rec:
                out = model(x)
        except Exception as exc:
            raise UnsupportedModelError(
                f"Running {type(model).__name__} on a (1, 3, {self.input_size}, {self.input_size}) input failed: "
                f"{type(exc).__name__}: {exc}. Pass input_size= if it expects another size."
            ) from exc
        self._num_outputs = int(out.shape[-1]) if isinstance(out, torch.Tensor) and out.ndim == 2 else None
        acts = rec.activations()
        order = [path for kind, path, _ in rec.order if kind == "layer" and path in acts]
        pool_ids = {oid for kind, _, oid in rec.order if kind == "layer"}
        events = []
        for kind, path, oid in rec.order:
            if kind == "layer":
                events.append((kinds[path], path))
            elif oid not in pool_ids:
                events.append(("pool", ""))  # a functional pool: closes a block, is no layer
        chain = tracer.merges == 0
        names = paper_names(events) if chain else {p: p for p in order}
        self.is_chain = chain
        self._untraced = tuple(tracer.lost)
        layers = []
        for path in order:
            act = acts[path]
            geo = tracer.get(rec.module_out[path])
            layout = self._layout(act, geo)
            if layout is None:
                continue
            shape = self._nchw_shape(act, layout)
            if isinstance(geo, Geometry):
                rf = geo.field()
            elif geo == GLOBAL or layout == "nc":
                rf = global_field((self.input_size, self.input_size))
            else:
                rf = None
            layers.append(Layer(names[path], kinds[path], path, shape[0], rf, shape, layout, path in rec.rectified,
                                rec.switches.get(path, 0) > 0))
        self.layers: tuple[Layer, ...] = tuple(layers)
        last = layers[-1] if layers else None
        self._output_layer = last if (last is not None and last.kind == "fc" and not last.rectified
                                      and last.channels == self._num_outputs) else None
        self._by_name = {l.name: l for l in layers}
        self._by_name.update({l.module_path: l for l in layers})
        self._final_at_module = {l.module_path for l in layers if not l.rectified}

    @staticmethod
    def _layout(act: torch.Tensor, geo: Any) -> str | None:
        if act.ndim == 2:
            return "nc"
        if act.ndim == 4:
            if isinstance(geo, Geometry) and geo.dims == (1, 2):
                return "nhwc"
            return "nchw"
        return None

    @staticmethod
    def _nchw_shape(act: torch.Tensor, layout: str) -> tuple[int, int, int]:
        if layout == "nc":
            return (int(act.shape[1]), 1, 1)
        if layout == "nhwc":
            return (int(act.shape[3]), int(act.shape[1]), int(act.shape[2]))
        return (int(act.shape[1]), int(act.shape[2]), int(act.shape[3]))

    @staticmethod
    def _hooks(rec: ForwardRecorder, modules: dict[str, nn.Module]) -> dict[nn.Module, Any]:
        def make(path: str):
            return lambda module, inputs, output: rec.module_output(path, output)

        return {modules[path]: make(path) for path in modules}

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
                f"No layer {name!r} in {type(self.model).__name__}. Valid names: {list_names(self.layer_names)}."
            )
        return layer

    def select(self, layers: str | Iterable[str] | None) -> list[Layer]:
        """The named layers (all for None), deduplicated, in forward order."""
        if layers is None:
            return list(self.layers)
        if isinstance(layers, (str, Layer)):
            layers = [layers]
        chosen = [self.layer(n) for n in layers]
        if not chosen:
            raise LayerNotFoundError(f"layers=[] names no layer. Valid names: {list_names(self.layer_names)}.")
        depth = {l.name: i for i, l in enumerate(self.layers)}
        return sorted(dict.fromkeys(chosen), key=lambda l: depth[l.name])

    # ------------------------------------------------------------------ receptive fields
    def receptive_field(self, name: str) -> ReceptiveField | None:
        """Size, stride and offset of the units of a layer, traced analytically through the forward pass;
        None where an op the tracer cannot follow lies below the layer (then only what needs the field,
        such as its patches, is unavailable)."""
        return self.layer(name).rf

    def field_or_error(self, name: str) -> ReceptiveField:
        """The layer's receptive field, or an UnsupportedModelError naming the op that hides it (for what
        cannot do without one: cropping patches)."""
        rf = self.receptive_field(name)
        if rf is None:
            layer = self.layer(name)
            ops = ", ".join(dict.fromkeys(self._untraced)) or "an op"
            raise UnsupportedModelError(
                f"Layer {layer.name!r} has no receptive field: {type(self.model).__name__} moves values between "
                f"positions on the way to it ({ops}), which the field tracer does not follow, so its patches cannot be "
                f"cropped. Its activations and reconstructions still work, and so do the patches of the layers "
                f"before that op."
            )
        return rf

    def measure_receptive_fields(
        self, layers: Iterable[str] | None = None, max_side: int = 1024
    ) -> dict[str, ReceptiveField | None]:
        """Receptive fields measured by the gradient support of single units: the tests' oracle for the
        analytic fields, never a run-time path (it takes minutes on deep networks).

        Uses a float64 copy with positive weights, max-pools as average pools and global-pooling
        gates detached; the input grows (to ``max_side`` pixels) until the fields are not clipped
        by its border. None where that needs a larger input.
        """
        chosen = self.select(layers)
        result: dict[str, ReceptiveField | None] = {}
        todo = []
        for layer in chosen:
            if layer.layout == "nc" or (layer.rf is not None and layer.rf.is_global):
                result[layer.name] = global_field((self.input_size, self.input_size))
            elif layer.name in self._measured:
                result[layer.name] = self._measured[layer.name]
            else:
                todo.append(layer)
        if todo:
            twin = positive_copy(self.model).to("cpu")
            modules = {l.module_path: twin.get_submodule(l.module_path) for l in todo}
            for layer in todo:
                def run(x: torch.Tensor, layer: Layer = layer) -> torch.Tensor:
                    rec = ForwardRecorder(wanted={layer.module_path}, stop_early=True,
                                          final_at_module=self._final_at_module)
                    try:
                        with support_mode(), forward_hooks(self._hooks(rec, {layer.module_path: modules[layer.module_path]})), rec:
                            twin(x)
                    except StopForward:
                        pass
                    return to_nchw(rec.activations()[layer.module_path], layer.layout)

                side = self.input_size
                if layer.rf is not None:  # start where the traced field fits, to skip doublings
                    side = max(side, math.ceil(layer.rf.size + 4 * layer.rf.stride + 2 * abs(layer.rf.offset)))
                with grad_enabled():
                    rf = measure_field(run, (side, side), max_side=max(max_side, side))
                self._measured[layer.name] = rf
                result[layer.name] = rf
        return result

    # ------------------------------------------------------------------ pictures
    def preprocess(self, images: Any) -> torch.Tensor:
        """Pictures (PIL, arrays, tensors in [0,1], paths, lists) -> normalized (N, 3, S, S) model input.

        Each picture is resized so its shorter side is ``input_size`` and centre-cropped square;
        ``to_image`` shows exactly that crop.
        """
        pictures = [picture for _, picture in split_pictures(images)]
        if len(pictures) == 0:
            raise ImageError("No images given: pass at least one picture (try cv.sample_images()).")
        batch = []
        for i, pic in enumerate(pictures):
            t = picture_to_tensor(pic, name=f"image {i}")
            batch.append(resize_center_crop(t, self.input_size))
        x = torch.stack(batch).to(self.device)
        return (x - self.mean) / self.std

    def to_image(self, x: torch.Tensor) -> np.ndarray:
        """Model input -> uint8 (N, S, S, 3) (or (S, S, 3)): exactly what the network saw."""
        t = torch.as_tensor(x).detach().to(self.device, torch.float32)
        single = t.ndim == 3
        if single:
            t = t[None]
        if t.ndim != 4 or t.shape[1] != 3:
            raise ImageError(f"to_image expects model input (N, 3, H, W), got shape {tuple(t.shape)}.")
        img = ((t * self.std + self.mean).clamp(0, 1) * 255.0).round().to(torch.uint8)
        img = img.permute(0, 2, 3, 1).cpu().numpy()
        return img[0] if single else img

    def check_input(self, x: Any) -> torch.Tensor:
        """Model input as a finite float (N, 3, H, W) tensor on the probe's device, or ImageError."""
        if not isinstance(x, torch.Tensor):
            raise ImageError(
                f"Expected model input (a float tensor (N, 3, H, W)), got {type(x).__name__}. "
                f"Call probe.preprocess(images) on pictures first."
            )
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1] != 3 or not x.dtype.is_floating_point:
            raise ImageError(
                f"Expected model input as a float tensor (N, 3, H, W), got {x.dtype} of shape {tuple(x.shape)}. "
                f"Call probe.preprocess(images) on pictures first."
            )
        if x.shape[0] == 0:
            raise ImageError("The input batch is empty: pass at least one image.")
        if not torch.isfinite(x).all():
            raise ImageError("The input contains NaN or infinite values.")
        return x.to(self.device, torch.float32)

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
        rule = rec.rule.name if rec.rule is not None else None
        new = {label for label in rec.rectifier_labels if (rule, label) not in self._warned} if rule else set()
        if new:
            self._warned |= {(rule, label) for label in new}
            warnings.warn(
                f"{type(self.model).__name__} uses {', '.join(sorted(new))}: the {rec.rule.name} rule reverses "
                f"{'it' if len(new) == 1 else 'them'} as it does ReLU ({rec.rule.title.split(': ', 1)[-1]}); "
                f"read the reconstructions as approximate.",
                stacklevel=3,
            )
        acts = rec.activations()
        return {l.name: acts[l.module_path] for l in layers}

    def activations(self, x: torch.Tensor, layers: str | Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """Layer name -> activation (N, C, H, W) (post-rectifier for conv/fc; fc as (N, C, 1, 1))."""
        x = self.check_input(x)
        chosen = self.select(layers)
        with torch.no_grad():
            acts = self.forward(x, chosen)
        return {l.name: to_nchw(acts[l.name], l.layout) for l in chosen}

    def reconstruct(
        self,
        x: torch.Tensor,
        layers: str | Iterable[str] | None = None,
        channel: int | str | None = None,
        unit: tuple[int, int, int] | None = None,
        rule: str | ReverseRule = "deconvnet",
        **options: Any,
    ) -> dict[str, torch.Tensor]:
        """Layer name -> reconstruction in input space, shaped like x, by a reverse rule.

        ``rule``: "deconvnet" (Zeiler & Fergus, the paper), "guided" (guided backprop) or "gradient"
        (saliency). Whole layer, one feature map (``channel``; on the output layer a class index or
        label such as ``"espresso"``) or one ``unit=(channel, y, x)``. ``options``: ``targets``,
        ``progress``, ``batched``, ``autocast``; see :func:`cnnviz_widgets.kernels.reconstruct.reconstruct`.
        """
        from ..kernels.reconstruct import reconstruct

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

    # ------------------------------------------------------------------ classes
    @property
    def output_layer(self) -> Layer | None:
        """The layer whose output is the network's class scores (fc8 of VGG16), or None."""
        return self._output_layer

    def class_index(self, label: str | int, layer: str | Layer | None = None) -> int:
        """The index of a class given by label (exact, then case-insensitive) or index; a CnnvizError names
        the closest labels for an unknown one."""
        out = self.output_layer
        if layer is not None and self.layer(layer) is not out:
            raise IndexOutOfRangeError(
                f"A class name ({label!r}) picks a class of the output layer"
                f"{f' {out.name!r}' if out is not None else ''}, not a filter of {self.layer(layer).name!r}; "
                f"give a filter number there."
            )
        if out is None:
            raise UnsupportedModelError(
                f"{type(self.model).__name__} does not end in class scores, so {label!r} names no class."
            )
        if not isinstance(label, str):
            if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < out.channels:
                raise IndexOutOfRangeError(f"class {label!r} is out of range: {out.name!r} has {out.channels} classes, "
                                           f"0 to {out.channels - 1}.")
            return int(label)
        labels = self.labels
        if not labels:
            raise IndexOutOfRangeError(
                f"This probe has no class names, so {label!r} names no class: pass labels= to Probe, or a class "
                f"index 0 to {out.channels - 1}."
            )
        if label in labels:
            return labels.index(label)
        folded = [l.casefold() for l in labels]
        if label.casefold() in folded:
            return folded.index(label.casefold())
        word = re.compile(rf"\b{re.escape(label.casefold())}\b")
        near = [l for l in labels if word.search(l.casefold())]  # 'cat': 'tiger cat', 'Persian cat', ...
        near += [l for l in labels if label.casefold() in l.casefold() and l not in near]
        near += [l for l in difflib.get_close_matches(label, labels, n=5, cutoff=0.6) if l not in near]
        near = near[:8]
        hint = f" Close matches: {', '.join(repr(n) for n in near)}." if near else ""
        raise LabelNotFoundError(f"No class is called {label!r}.{hint} probe.labels lists all {len(labels)}.")

    def classify(self, x: torch.Tensor, k: int = 5) -> list[list[tuple[int, str, float]]]:
        """Per image, the top-k (class index, label, probability) of the softmax of the network's output."""
        x = self.check_input(x)
        if int(k) < 1:
            raise IndexOutOfRangeError(f"k must be at least 1, got {k!r}.")
        with self._lock, torch.no_grad(), eval_mode(self.model):
            logits = self.model(x)
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
            raise UnsupportedModelError(
                f"{type(self.model).__name__} does not return class scores (N, classes), so it cannot predict."
            )
        probs = logits.float().softmax(dim=1)
        k = min(int(k), probs.shape[1])
        values, index = probs.topk(k, dim=1)
        labels = self.labels
        return [
            [(j, labels[j] if labels and j < len(labels) else f"class {j}", float(v)) for v, j in zip(vs.tolist(), ix.tolist())]
            for vs, ix in zip(values.cpu(), index.cpu())
        ]

    def predict(self, x: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
        """Per image, the top-k (label, probability) pairs of the softmax of the network's output."""
        return [[(label, p) for _, label, p in row] for row in self.classify(x, k)]

    @property
    def labels(self) -> list[str] | None:
        """Class names: those given, ImageNet's for 1000-way outputs, else None."""
        if self._labels is None and self._num_outputs == 1000:
            from ..models.zoo import imagenet_categories

            self._labels = imagenet_categories()
        return self._labels

    def __repr__(self) -> str:
        return (
            f"Probe({type(self.model).__name__}, {len(self.layers)} layers: "
            f"{', '.join(self.layer_names[:6])}{', ...' if len(self.layers) > 6 else ''}; device={self.device})"
        )


def to_nchw(t: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "nc":
        return t[:, :, None, None]
    if layout == "nhwc":
        return t.permute(0, 3, 1, 2)
    return t


def from_nchw(t: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "nc":
        return t[:, :, 0, 0]
    if layout == "nhwc":
        return t.permute(0, 2, 3, 1)
    return t
