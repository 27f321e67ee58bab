"""Errors raised for user mistakes: each message names the bad value and says what to do."""
from __future__ import annotations

from collections.abc import Iterable


class CnnvizError(Exception):
    """Base class of every error cnnviz-widgets raises for a user mistake or an unmet need."""


class UnknownModelError(CnnvizError, ValueError):
    """A model name that the zoo does not know."""


class WeightsUnavailableError(CnnvizError):
    """Pretrained weights cannot be had (offline, or none are published)."""


class WeightsFileError(CnnvizError):
    """A local weights file is missing, unreadable, unsafe or does not fit the model."""


class UnsupportedModelError(CnnvizError):
    """The model cannot be probed or reversed; the message names the part that is in the way."""


class LayerNotFoundError(CnnvizError, KeyError):
    """A layer name that the probe does not have; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class IndexOutOfRangeError(CnnvizError, IndexError):
    """A channel, unit or image index outside the valid range, which the message states."""


class LabelNotFoundError(CnnvizError, KeyError):
    """A class name that the probe's labels do not have; the message lists the closest ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DeviceUnavailableError(CnnvizError):
    """A device was asked for that this machine does not have."""


class ImageError(CnnvizError, ValueError):
    """A picture that cannot be used as input: wrong shape, dtype, NaN, or unreadable."""


class StoppedError(CnnvizError):
    """Work was stopped: by a widget's Stop control, by ``widget.stop()``, or by a newer request."""


def list_names(names: Iterable[str], limit: int = 60) -> str:
    """Join names for an error message, eliding the middle of very long lists."""
    names = list(names)
    if len(names) > limit:
        head, tail = names[: limit - 10], names[-10:]
        return ", ".join(head) + f", ... ({len(names) - limit} more) ..., " + ", ".join(tail)
    return ", ".join(names)


def short_repr(value: object, limit: int = 120) -> str:
    """A user value as an error message quotes it: its repr, cut to ``limit`` characters, with the type
    and length for big containers (a whole state dict in a message would be 90 KB)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    if len(text) <= limit:
        return text
    try:
        size = f" of length {len(value)}"  # type: ignore[arg-type]
    except TypeError:
        size = ""
    return f"{text[: limit - 20]}... ({type(value).__name__}{size})"
