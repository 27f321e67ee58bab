"""A probe's discovery of its network: one forward pass of a blank picture, hooked, names every layer that matters
(conv, pool, fc) in the paper's style for a plain chain, traces each one's receptive field, tells its layout, and
finds the output layer and its head. A part of :class:`~cnnviz_widgets.probe.Probe`, which calls
:meth:`ProbeDiscovery._discover` once it knows the input's channels."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import UnsupportedModelError
from .core import ProbeCore
from .hooks import eval_mode, forward_hooks
from .layers import Layer, layer_kind, paper_names
from .outputs import find_head, output_kind
from .receptive_field import Geometry, GeometryTracer, field_of, global_field
from .recorder import ForwardRecorder


class ProbeDiscovery(ProbeCore):
    """The probe's layers, found by running the network once (see the module)."""

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
                assert path is not None  # a layer event names its layer
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
