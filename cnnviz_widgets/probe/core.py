"""What every part of a probe sees of the whole: the state :class:`~cnnviz_widgets.probe.Probe` sets up and the methods
its parts call on each other, declared for the type checker.

The probe's parts (:mod:`.discovery`, :mod:`.fields`, :mod:`.pictures`, :mod:`.classes`) and the modules it calls
(:mod:`.reconstruct`, :mod:`.class_map`) take a ``ProbeCore``, so none of them imports :mod:`.probe`, not even for its
type. At run time this class holds nothing: the attributes are set by ``Probe.__init__`` (the layers by
``ProbeDiscovery._discover``) and the methods are the Probe's and its parts'."""
from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .field_measure import FieldMeasurement
from .layers import Layer
from .receptive_field import ReceptiveField
from .recorder import ForwardRecorder
from .rules import ReverseRule


class ProbeCore:
    """The base of :class:`~cnnviz_widgets.probe.Probe` and its parts: annotations only."""

    model: nn.Module
    device: torch.device
    input_size: int
    resize_size: int | None
    channels: int
    mean: torch.Tensor
    std: torch.Tensor
    layers: tuple[Layer, ...]
    output_kind: str
    is_chain: bool
    scores_at_output_layer: bool
    _labels: list[str] | None
    _num_outputs: int | None
    _output_layer: Layer | None
    _head: str | None
    _lock: threading.RLock
    _measured: dict[str, ReceptiveField | None]
    _filled: dict[str, ReceptiveField | None]
    _fill_lock: threading.Lock
    _filling: FieldMeasurement | None
    _untraced: tuple[str, ...]
    _final_at_module: set[str]
    _module_of: dict[str, nn.Module]

    if TYPE_CHECKING:  # defined by Probe and its parts; declared here for the parts and the modules that take a probe
        @property
        def layer_names(self) -> tuple[str, ...]: ...

        @property
        def output_layer(self) -> Layer | None: ...

        def layer(self, name: str | Layer) -> Layer: ...

        def select(self, layers: str | Iterable[str] | None) -> list[Layer]: ...

        def forward(self, x: torch.Tensor, layers: list[Layer], rule: str | ReverseRule | None = None
                    ) -> dict[str, torch.Tensor]: ...

        def reconstruct(self, x: torch.Tensor, layers: str | Iterable[str] | None = None,
                        channel: int | str | None = None, unit: tuple[int, int, int] | None = None,
                        rule: str | ReverseRule = ..., **options: Any) -> dict[str, torch.Tensor]: ...

        @staticmethod
        def _hooks(rec: ForwardRecorder, modules: dict[str, nn.Module]) -> dict[nn.Module, Any]: ...

        def check_input(self, x: Any) -> torch.Tensor: ...

        def receptive_field(self, name: str) -> ReceptiveField | None: ...

        def measure_missing_fields(self, timeout: float = 60.0, layers: Iterable[str] | None = None,
                                   stop: threading.Event | None = None) -> dict[str, ReceptiveField | None]: ...

        def class_index(self, label: str | int, layer: str | Layer | None = None) -> int: ...

        def class_seed(self, act: torch.Tensor, channel: int) -> torch.Tensor: ...

        def output_scores(self, act: torch.Tensor) -> torch.Tensor: ...

        def top_classes(self, out: torch.Tensor, k: int = 5) -> list[list[tuple[int, str, float]]]: ...

        def classify(self, x: torch.Tensor, k: int = 5) -> list[list[tuple[int, str, float]]]: ...
