"""A probe's classes: the output layer, class names found by name, probabilities and the top-k."""
from __future__ import annotations

import torch

from .. import checks
from ..errors import IndexOutOfRangeError, UnsupportedModelError
from ..precision import compute_precision
from .core import ProbeCore
from .hooks import eval_mode
from .labels import find_class, shown_labels
from .layers import Layer
from .outputs import apply_head, class_seed


class ProbeClasses(ProbeCore):
    """Classes of a probe's network: its output layer (conv heads included), names (:mod:`.labels`), probabilities by
    what the output holds (logits, probabilities, log-probabilities, sigmoids) and the top-k.

    A part of :class:`~cnnviz_widgets.probe.Probe` (its attributes are the probe's own)."""

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
