"""Receptive fields as widgets need them: measured where tracing gave none (bounded, 'measuring…' meanwhile), and
the layers whose patches a gallery can show."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import UnsupportedModelError
from .jobs import Job

FIELD_TIMEOUT = 30.0  # seconds a widget spends measuring one layer's field that tracing could not give


def measuring_text(probe: Any, name: str) -> str:
    """The "measuring…" line a widget shows while it measures the field of ``name``."""
    ops = ", ".join(probe.untraced_ops) or "an op"
    return f"measuring the receptive field of {name}… (tracing cannot follow {ops})"


def layer_field(probe: Any, name: str, job: Job | None = None, timeout: float = FIELD_TIMEOUT,
                say: Callable[[str], None] | None = None) -> Any:
    """The receptive field of ``name`` as the probe gives it (traced, or measured: ``measured=True``). Where tracing
    gave none and none was measured yet, it is measured now by gradient support, for at most ``timeout`` seconds
    (past it, or after a Stop, the layer is left unmeasured), saying "measuring…" meanwhile (``job.status``, or
    ``say`` for work outside a job). An UnsupportedModelError naming the op says when there is no box (never a
    wrong crop)."""
    name = probe.layer(name).name
    if probe.field_pending(name):
        text = measuring_text(probe, name)
        if job is not None:
            job.status(text)
        elif say is not None:
            say(text)
        try:
            probe.measure_missing_fields(timeout=timeout, layers=[name], stop=None if job is None else job.stop_event)
        finally:
            if job is None and say is not None:
                say("")
        if job is not None:
            job.check()
        if probe.field_pending(name):  # the time ran out (a Stop ends the job above)
            ops = ", ".join(probe.untraced_ops) or "an op"
            raise UnsupportedModelError(
                f"Layer {name!r} has no traced receptive field (tracing cannot follow {ops}), and measuring it by "
                f"gradient support did not end within {timeout:g} s, so its patches cannot be cropped yet; "
                f"probe.measure_missing_fields(timeout=...) with more time may measure it.")
    return probe.field_or_error(name)


def patch_layers(probe: Any, layer: str | None) -> tuple[list[str], str]:
    """The conv layers whose patches can be cropped or may be (a receptive field traced or measured, or one not
    measured yet: :func:`layer_field` measures it when it is shown), and the layer to show: ``layer`` or the middle
    one of those with a field (of those not measured yet where none has one). A layer measured to have no box is
    left out; named, an UnsupportedModelError says why."""
    convs = [l.name for l in probe.layers if l.kind == "conv"
             and (probe.receptive_field(l.name) is not None or probe.field_pending(l.name))]
    if layer:
        name = probe.layer(layer).name
        if not probe.field_pending(name):
            probe.field_or_error(name)
        return convs, name
    known = [n for n in convs if probe.receptive_field(n) is not None] or convs
    if not known:
        raise UnsupportedModelError(
            f"No conv layer of {type(probe.model).__name__} has a receptive field, so no patches can be cropped; "
            f"DeconvExplorer still shows what each layer keeps.")
    return convs, known[len(known) // 2]
