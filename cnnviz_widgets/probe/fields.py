"""A probe's receptive fields: traced when it is built, measured where tracing gave none, and the oracle the tests use."""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from fractions import Fraction

import torch

from ..errors import UnsupportedModelError
from .core import ProbeCore
from .field_measure import FieldMeasurement
from .hooks import forward_hooks, grad_enabled
from .layers import Layer, to_nchw
from .receptive_field import (
    ReceptiveField,
    global_field,
    measure_field,
    positive_copy,
    support_mode,
)
from .recorder import ForwardRecorder, StopForward


class ProbeFields(ProbeCore):
    """Receptive fields of a probe's layers (Tables 1 and 2): looked up, measured where tracing gave none (bounded, in
    the background or while a widget says 'measuring…'), and measured by gradient support (the test oracle).

    A part of :class:`~cnnviz_widgets.probe.Probe` (its attributes are the probe's own)."""

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
                    side = max(side, math.ceil(layer.rf.size + 4 * layer.rf.stride + 2 * abs(Fraction(layer.rf.offset))))
                with grad_enabled():
                    rf = measure_field(run, (side, side), max_side=max(max_side, side), channels=self.channels,
                                       deadline=deadline, strict=strict)
                if rf is None and ((deadline is not None and time.monotonic() > deadline) or
                                   (stop is not None and stop.is_set())):
                    break  # out of time inside this layer: no verdict (not "no box"), left for the next call
                self._measured[layer.name] = rf
                result[layer.name] = rf
        return result
