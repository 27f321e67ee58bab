"""Probe: wraps any CNN; names its layers, preprocesses pictures, captures activations, reverses them."""
from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import checks
from ..errors import (
    CnnvizError,
    ImageError,
    IndexOutOfRangeError,
    LayerNotFoundError,
    UnsupportedModelError,
    list_names,
    short_repr,
    warn,
)
from ..images import prepare_picture, split_pictures, to_unit
from ..precision import compute_precision
from .field_measure import FieldMeasurement
from .hooks import eval_mode, forward_hooks, grad_enabled, shared_copy
from .labels import checked_labels, find_class, shown_labels
from .layers import Layer, from_nchw, layer_kind, paper_names, to_nchw  # noqa: F401 - the layout helpers re-exported
from .class_map import class_map
from .reconstruct import reconstruct
from .outputs import apply_head, class_seed, find_head, output_kind
from .receptive_field import (
    Geometry,
    GeometryTracer,
    ReceptiveField,
    field_of,
    global_field,
    measure_field,
    positive_copy,
    support_mode,
)
from .recorder import ForwardRecorder, StopForward
from .rectifiers import rectifier_warning
from .rules import DEFAULT_RULE, ReverseRule, resolve_rule

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def input_channels(model: nn.Module) -> int:
    """The channels the network takes: those of its first Conv2d (1 for MNIST-style networks, else 3)."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return int(first.in_channels) if first is not None else 3


class Probe:
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
            if t.is_floating_point() and not t.is_meta and not bool(torch.isfinite(t).all()):
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
        x = torch.zeros(1, self.channels, self.input_size, self.input_size, device=self.device)
        tracer.start(x)
        rec = ForwardRecorder(wanted=set(self._module_of), tracer=tracer)
        try:
            with eval_mode(model), torch.no_grad(), forward_hooks(self._hooks(rec, self._module_of)), rec:
                out = model(x)
        except Exception as exc:
            raise UnsupportedModelError(
                f"Running {type(model).__name__} on a (1, {self.channels}, {self.input_size}, {self.input_size}) input "
                f"failed: {type(exc).__name__}: {exc}. If it expects another input size, pass input_size=."
            ) from exc
        self._num_outputs = int(out.shape[-1]) if isinstance(out, torch.Tensor) and out.ndim == 2 else None
        self.output_kind = output_kind(out, tracer.made_by(out))
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
            rf = field_of(geo, (self.input_size, self.input_size))
            if rf is None and layout == "nc":
                rf = global_field((self.input_size, self.input_size))
            layers.append(Layer(names[path], kinds[path], path, shape[0], rf, shape, layout, path in rec.rectified,
                                rec.switches.get(path, 0) > 0))
        self.layers: tuple[Layer, ...] = tuple(layers)
        self._by_name = {l.name: l for l in layers}
        self._by_name.update({l.module_path: l for l in layers})
        self._final_at_module = {l.module_path for l in layers if not l.rectified}
        self._output_layer, self._head = self._find_output_layer(layers, rec, out)
        # the output layer's activation gives the network's output itself (no softmax or scaling after its head):
        # then a reconstruction's forward pass already holds the class scores (DeconvExplorer reads them there)
        self.scores_at_output_layer = self._output_layer is not None and (
            rec.module_out.get(self._output_layer.module_path) is out or self._output_layer.kind == "conv")

    def _find_output_layer(self, layers: list[Layer], rec: ForwardRecorder, out: Any) -> tuple[Layer | None, str | None]:
        """The layer that produces the output and its head (see :mod:`.outputs`): the last fc layer with one
        channel per output and no rectifier after it, or the last conv layer whose activation, as it is or pooled
        over its positions (trailing pool layers included), equals the output (DPN, SqueezeNet)."""
        produced = [l for l in layers if l.kind != "pool"]
        last = produced[-1] if produced else None
        if last is None or self._num_outputs is None or last.channels != self._num_outputs:
            return None, None
        if last.kind == "fc":
            return (last, "identity") if not last.rectified and layers[-1] is last else (None, None)
        if last.kind != "conv" or last.layout != "nchw" or self.output_kind != "logits":
            return None, None
        # a zero input makes maps (and often outputs) constant or zero, which cannot tell a mean from a max, or a
        # head from a scaled one: a random input can
        act, out = self._head_pass(last)
        head = find_head(act, out)
        return (last, head) if head is not None else (None, None)

    def _head_pass(self, layer: Layer) -> tuple[torch.Tensor, Any]:
        """The activation of ``layer`` and the network's output for one seeded random input."""
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(1, self.channels, self.input_size, self.input_size, generator=gen).to(self.device)
        rec = ForwardRecorder(wanted={layer.module_path}, final_at_module=self._final_at_module)
        with eval_mode(self.model), torch.no_grad(), forward_hooks(self._hooks(rec, {layer.module_path: self._module_of[layer.module_path]})), rec:
            out = self.model(x)
        return rec.activations()[layer.module_path], out

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

    # ------------------------------------------------------------------ receptive fields
    def receptive_field(self, name: str) -> ReceptiveField | None:
        """Size, stride and offset of the units of a layer, traced analytically through the forward pass;
        where an op the tracer cannot follow lies below the layer, the field measured by
        :meth:`measure_missing_fields` (``measured=True``) once it has run, else None (then only what needs
        the field, such as its patches, is unavailable)."""
        layer = self.layer(name)
        return layer.rf if layer.rf is not None else self._filled.get(layer.name)

    def measure_missing_fields(
        self, timeout: float = 60.0, layers: Iterable[str] | None = None, stop: threading.Event | None = None
    ) -> dict[str, ReceptiveField | None]:
        """Measure, by gradient support, the fields tracing could not give, for at most ``timeout`` seconds
        (one unit's forward and backward may run past it); ``stop`` (an Event) ends it early. Each field found
        is checked on central and corner units and recorded (``measured=True``), so ``receptive_field`` then
        returns it; None records a layer whose field is not an affine box (or needs more than 4x the input).
        Returns what this call measured; layers not reached in time are left for the next call. Runs on a
        CPU float64 copy of the model, so a background thread (:meth:`measure_fields_in_background`) does
        not hold up the probe's own passes."""
        missing = [l.name for l in self.select(layers) if l.rf is None and l.name not in self._filled]
        if not missing:
            return {}
        measured = self.measure_receptive_fields(missing, max_side=4 * self.input_size, timeout=timeout, stop=stop,
                                                 strict=True)
        for name, rf in measured.items():
            self._filled[name] = None if rf is None else ReceptiveField(rf.size_yx, rf.stride_yx, rf.offset_yx,
                                                                        measured=True)
        return {name: self._filled[name] for name in measured}

    def measure_fields_in_background(self, timeout: float = 60.0) -> FieldMeasurement:
        """Start :meth:`measure_missing_fields` in a daemon thread; widgets poll the returned handle (``done``,
        ``pending``) and show 'measuring…' meanwhile. One at a time: a running measurement is returned again."""
        with self._fill_lock:
            if self._filling is None or self._filling.done.is_set():
                self._filling = FieldMeasurement(self, timeout)
                self._filling.start()
            return self._filling

    def field_pending(self, name: str) -> bool:
        """Whether tracing gave ``name`` no field and no measurement has recorded one (nor found none) yet: what
        :meth:`measure_missing_fields` would measure. Widgets ask it to show 'measuring…' while it runs."""
        layer = self.layer(name)
        return layer.rf is None and layer.name not in self._filled

    @property
    def untraced_ops(self) -> tuple[str, ...]:
        """The ops the field tracer could not follow, each once (what hides the fields that are None)."""
        return tuple(dict.fromkeys(self._untraced))

    @property
    def fields_measuring(self) -> bool:
        """Whether a background measurement of missing fields is running."""
        return self._filling is not None and not self._filling.done.is_set()

    def field_or_error(self, name: str) -> ReceptiveField:
        """The layer's receptive field, or an UnsupportedModelError naming the op that hides it (for what
        cannot do without one: cropping patches)."""
        rf = self.receptive_field(name)
        if rf is None:
            layer = self.layer(name)
            ops = ", ".join(dict.fromkeys(self._untraced)) or "an op"
            if self.fields_measuring:
                hint = " Its field is being measured (measuring…): try again shortly."
            elif layer.name in self._filled:
                hint = " Measuring it by gradient support found no box that holds every unit."
            else:
                hint = " probe.measure_missing_fields() may measure it by gradient support."
            raise UnsupportedModelError(
                f"Layer {layer.name!r} has no receptive field: {type(self.model).__name__} moves values between "
                f"positions on the way to it ({ops}), which the field tracer does not follow, so its patches cannot be "
                f"cropped. Its activations and reconstructions still work, and so do the patches of the layers "
                f"before that op.{hint}"
            )
        return rf

    def measure_receptive_fields(
        self, layers: Iterable[str] | None = None, max_side: int = 1024, timeout: float | None = None,
        stop: threading.Event | None = None, strict: bool = False,
    ) -> dict[str, ReceptiveField | None]:
        """Receptive fields measured by the gradient support of single units: the tests' oracle for the
        analytic fields (it takes minutes on deep networks); :meth:`measure_missing_fields` is the run-time path.

        Uses a float64 copy with positive weights, max-pools as average pools and global-pooling
        gates detached; the input grows (to ``max_side`` pixels) until the fields are not clipped
        by its border. None where that needs a larger input. With ``timeout`` (seconds) or ``stop`` (an
        Event), layers not reached in time are left out of the result; ``strict`` checks more units
        (see :func:`measure_field`).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        chosen = self.select(layers)
        result: dict[str, ReceptiveField | None] = {}
        todo = []
        for layer in chosen:
            if layer.layout == "nc" or (layer.rf is not None and layer.rf.is_global):
                result[layer.name] = global_field((self.input_size, self.input_size))
            elif layer.name in self._measured and not strict:
                result[layer.name] = self._measured[layer.name]
            else:
                todo.append(layer)
        if todo:
            with self._lock:  # a pass in another thread has hooks on the model, which a deep copy would take along
                twin = positive_copy(self.model).to("cpu")
            modules = {l.module_path: twin.get_submodule(l.module_path) for l in todo}
            for layer in todo:
                if (deadline is not None and time.monotonic() > deadline) or (stop is not None and stop.is_set()):
                    break
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
                    rf = measure_field(run, (side, side), max_side=max(max_side, side), channels=self.channels,
                                       deadline=deadline, strict=strict)
                if rf is None and ((deadline is not None and time.monotonic() > deadline) or
                                   (stop is not None and stop.is_set())):
                    break  # out of time inside this layer: no verdict (not "no box"), left for the next call
                self._measured[layer.name] = rf
                result[layer.name] = rf
        return result

    # ------------------------------------------------------------------ pictures
    def preprocess(self, images: Any) -> torch.Tensor:
        """Pictures (PIL, arrays, tensors in [0,1], paths, lists) -> normalized (N, C, S, S) model input.

        Each picture goes through :func:`cnnviz_widgets.images.prepare_picture` (upright, shorter side
        resized to ``resize_size`` or ``input_size``, the centre ``input_size`` square cropped, grey for
        one-channel networks); ``to_image`` shows exactly that crop.
        """
        pairs = split_pictures(images)
        if len(pairs) == 0:
            raise ImageError("No images given: pass at least one picture (try cv.sample_images()).")
        return self.normalize(torch.stack([self.prepare(pic, name) for name, pic in pairs]))

    def prepare(self, picture: Any, name: str = "picture") -> torch.Tensor:
        """One picture as this network sees it before normalising: (C, S, S) in [0, 1] on the CPU."""
        return prepare_picture(picture, self.input_size, self.channels, name=name, resize=self.resize_size)

    def model_input(self, picture: Any, name: str = "picture") -> torch.Tensor:
        """One picture (a path, PIL, array or tensor; never a list) as normalized model input (1, C, S, S)
        on the probe's device; ``name`` is what an error calls it."""
        return self.normalize(self.prepare(picture, name)[None])

    def normalize(self, pictures: torch.Tensor) -> torch.Tensor:
        """Prepared pictures (N, C, S, S), uint8 or float in [0, 1], as model input on the probe's device:
        ``(x - mean) / std``, converted there (a uint8 batch crosses the bus at a quarter of the bytes)."""
        return (to_unit(pictures.to(self.device, non_blocking=True)) - self.mean) / self.std

    def to_image(self, x: torch.Tensor) -> np.ndarray:
        """Model input -> uint8 (N, S, S, 3) (or (S, S, 3)): exactly what the network saw (grey as RGB)."""
        t = torch.as_tensor(x).detach().to(self.device, torch.float32)
        single = t.ndim == 3
        if single:
            t = t[None]
        if t.ndim != 4 or t.shape[1] != self.channels:
            raise ImageError(f"to_image expects model input (N, {self.channels}, H, W), got shape {tuple(t.shape)}.")
        img = ((t * self.std + self.mean).clamp(0, 1) * 255.0).round().to(torch.uint8).expand(-1, 3, -1, -1)
        img = img.permute(0, 2, 3, 1).cpu().numpy()
        return img[0] if single else img

    def check_input(self, x: Any) -> torch.Tensor:
        """Model input as a finite float (N, C, H, W) tensor on the probe's device, or ImageError."""
        c = self.channels
        if not isinstance(x, torch.Tensor):
            raise ImageError(
                f"Expected model input (a float tensor (N, {c}, H, W)), got {type(x).__name__}. "
                f"Call probe.preprocess(images) on pictures first."
            )
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1] != c or not x.dtype.is_floating_point:
            raise ImageError(
                f"Expected model input as a float tensor (N, {c}, H, W), got {x.dtype} of shape {tuple(x.shape)}. "
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
    @property
    def output_layer(self) -> Layer | None:
        """The layer that produces the network's class scores (fc8 of VGG16; a 1x1 conv head, pooled, in
        SqueezeNet or DPN), or None."""
        return self._output_layer

    def class_seed(self, act: torch.Tensor, channel: int) -> torch.Tensor:
        """The seed of class ``channel`` at the output layer, for its activation ``act`` (N, C, H, W): the
        derivative of the class's score by the activation (1 for an fc layer, 1/(H*W) under an average pool)."""
        return class_seed(self._head or "identity", act, channel)

    def output_scores(self, act: torch.Tensor) -> torch.Tensor:
        """The network's output (N, classes) from the output layer's activation (N, C, H, W)."""
        return apply_head(self._head or "identity", act)

    def class_index(self, label: str | int, layer: str | Layer | None = None) -> int:
        """The index of a class given by label (:func:`.labels.find_class`: exact, as shown, then case-insensitive;
        a name several classes fit is an error listing them) or index; a CnnvizError names the closest labels for an
        unknown one."""
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
            if not checks.whole(label) or not 0 <= label < out.channels:
                raise IndexOutOfRangeError(f"class {label!r} is out of range: {out.name!r} has {out.channels} classes, "
                                           f"0 to {out.channels - 1}.")
            return int(label)
        labels = self.labels
        if not labels:
            raise IndexOutOfRangeError(
                f"This probe has no class names, so {label!r} names no class: pass labels= to Probe, or a class "
                f"index 0 to {out.channels - 1}."
            )
        return find_class(label, labels)

    def classify(self, x: torch.Tensor, k: int = 5) -> list[list[tuple[int, str, float]]]:
        """Per image, the top-k (class index, label, probability) by :meth:`probabilities` of the network's output."""
        x = self.check_input(x)
        k = checks.positive_int("k", k)
        with self._lock, torch.no_grad(), eval_mode(self.model), compute_precision(self.device, "fp32"):
            logits = self.model(x)
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
            raise UnsupportedModelError(
                f"{type(self.model).__name__} does not return class scores (N, classes), so it cannot predict."
            )
        return self.top_classes(logits, k)

    def top_classes(self, out: torch.Tensor, k: int = 5) -> list[list[tuple[int, str, float]]]:
        """Per image, the top-k (class index, label, probability) of the network's output ``out`` (N, classes)."""
        probs = self.probabilities(out.reshape(out.shape[0], -1))
        k = min(int(k), probs.shape[1])
        values, index = probs.topk(k, dim=1)
        labels = shown_labels(self.labels) if self.labels else None
        return [
            [(j, labels[j] if labels and j < len(labels) else f"class {j}", float(v)) for v, j in zip(vs.tolist(), ix.tolist())]
            for vs, ix in zip(values.cpu(), index.cpu())
        ]

    def probabilities(self, out: torch.Tensor) -> torch.Tensor:
        """Class probabilities from the network's output, by what it holds (``output_kind``): softmax of
        logits, the output itself after a softmax or a sigmoid (multi-label: each its own probability), exp of
        log-probabilities; a single logit goes through a sigmoid."""
        out = out.float()
        if self.output_kind in ("probabilities", "sigmoid"):
            return out
        if self.output_kind == "log_probabilities":
            return out.exp()
        return out.sigmoid() if out.shape[1] == 1 else out.softmax(dim=1)

    def predict(self, x: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
        """Per image, the top-k (label, probability) pairs by :meth:`probabilities` of the network's output."""
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


def preset_resize(model: nn.Module, input_size: int) -> int | None:
    """The shorter side a model's weights were trained to see before their centre crop, when the weights
    say so (``cv.load_model(..., weights="imagenet")`` records torchvision's preset: 256 for a 224 crop),
    scaled to ``input_size``; None: resize to ``input_size`` itself."""
    preset = getattr(model, "cnnviz_preprocessing", None)
    if not isinstance(preset, Mapping) or not preset.get("resize") or not preset.get("crop"):
        return None
    return max(input_size, int(round(input_size * preset["resize"] / preset["crop"])))
