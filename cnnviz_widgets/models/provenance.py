"""Where a model's weights came from, so that whatever is made from it can say when they are random.

``load_model`` marks the model it returns with a :class:`WeightsRecord` ("seed 0" for random weights, "imagenet", a
file) and a fingerprint of its parameters (each parameter object and its in-place version counter). The record holds
only while the parameters are those it was made for: weights loaded into the model afterwards (``load_state_dict``, in
place or with ``assign=True``, as :class:`cnnviz_widgets.Checkpoints` does) or trained in place (an optimizer's step)
change the fingerprint, and the record no longer speaks for them. A model that never went through ``load_model``
carries no record and is taken as trained: nothing is said about it.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

from torch import nn

ATTRIBUTE = "_cnnviz_weights"  # a _Mark on the model object


@dataclass(frozen=True)
class WeightsRecord:
    """Where a model's weights came from: ``model`` its zoo name, ``source`` in words ("seed 0" for random weights,
    "imagenet", "file alexnet.pth", "a state dict"), ``random`` whether they are untrained (wholly or in part)."""

    model: str
    source: str
    random: bool
    partly: bool = False  # only some layers random (cv.randomize_layers): the source names them

    def __str__(self) -> str:
        return f"{self.model}: random weights ({self.source})" if self.random else f"{self.model}: {self.source}"


def fingerprint(model: nn.Module) -> tuple[tuple[int, int], ...]:
    """Each parameter object and its in-place version: a load (in place or by ``assign=True``, which puts new
    parameters in) or a training step changes it; moving the model to another device or dtype does not."""
    return tuple((id(p), p._version) for p in model.parameters())


class _Mark:
    """A record and the fingerprint it holds for. ``copy.deepcopy`` of the model (a user's copy, the probe's own, a
    :func:`cnnviz_widgets.randomize_layers` copy) carries it over to the copy's parameters while it holds; pickling
    drops it (an unpickled model is taken as trained)."""

    def __init__(self, record: WeightsRecord, params: list[nn.Parameter]) -> None:
        self.record = record
        self.print = tuple((id(p), p._version) for p in params)
        self.refs = [weakref.ref(p) for p in params]

    def holds(self, model: nn.Module) -> bool:
        return fingerprint(model) == self.print

    def __deepcopy__(self, memo: dict) -> _Mark | None:
        params = [p for p in (r() for r in self.refs) if p is not None]
        if len(params) != len(self.refs) or tuple((id(p), p._version) for p in params) != self.print:
            return None
        copied = [c for c in (memo.get(id(p)) for p in params) if c is not None]
        if len(copied) != len(params):
            return None
        return _Mark(self.record, copied)

    def __reduce__(self) -> tuple:
        return (type(None), ())


def mark(model: nn.Module, record: WeightsRecord) -> nn.Module:
    """Record where ``model``'s present weights came from (returns the model)."""
    object.__setattr__(model, ATTRIBUTE, _Mark(record, list(model.parameters())))
    return model


def weights_of(model: nn.Module) -> WeightsRecord | None:
    """The record of where ``model``'s weights came from, None where it has none or its weights changed since it was
    made (loaded or trained: then they are taken as trained)."""
    marked = getattr(model, ATTRIBUTE, None)
    return marked.record if isinstance(marked, _Mark) and marked.holds(model) else None


def weights_note(records: list[tuple[str, WeightsRecord | None]]) -> str:
    """One sentence on random weights among ``records`` (shown name, record): "" when none is random. With two
    networks of which one is random it says which, and that the comparison is not one of two trained networks."""
    def named(name: str, r: WeightsRecord | None) -> str:
        return name if r is None else f"{name} ({r.source})" if name == r.model else f"{name} ({r.model}, {r.source})"

    random = list(dict.fromkeys(named(name, r) for name, r in records if r is not None and r.random))
    if not random:
        return ""
    partly = all(r.partly for _, r in records if r is not None and r.random)
    text = f"random weights: {', '.join(random)}" + ("" if partly else ", not trained")
    trained = list(dict.fromkeys(named(name, r) for name, r in records if r is None or not r.random))
    if trained and len(records) > 1:  # a network that did not come from load_model is taken as trained
        return (f"{text}; {', '.join(trained)} {'is' if len(trained) == 1 else 'are'} trained, so this compares a "
                f"trained network with an untrained one.")
    if partly:
        return f"{text}: what passes through the re-drawn layers is not what the network learned there."
    return f"{text}: the pictures show the architecture, not what a network learned."
