"""Errors raised for user mistakes: each message names the bad value and says what to do."""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sized


class CnnvizError(Exception):
    """Base class of every error cnnviz-widgets raises for a user mistake or an unmet need.

    In IPython and Jupyter the first one made registers the shell's handler that shows such errors as their message
    (:mod:`._ipython`): nothing is registered at import, and nothing where no error of ours is ever raised."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        if not _SHELL_HOOKED:
            _hook_shell()


class UnknownModelError(CnnvizError, ValueError):
    """A model name that the zoo does not know."""


class WeightsUnavailableError(CnnvizError):
    """Pretrained weights cannot be had (offline, or none are published)."""


class WeightsFileError(CnnvizError):
    """A local weights file is missing, unreadable, unsafe or does not fit the model."""


class CheckpointError(WeightsFileError):
    """One checkpoint of a training run cannot be used (missing, unreadable, another architecture); the message
    names its step and where it comes from, and the other checkpoints still load."""


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


class CnnvizWarning(UserWarning):
    """Something a user should know that does not stop the work (a picture skipped, k capped, an
    approximate reverse rule); printed as one line, without the library's source line under it."""


_SHELL_HOOKED = False


def _hook_shell() -> None:
    """Register the IPython handler for CnnvizError once, in a running shell (:func:`._ipython.install`)."""
    global _SHELL_HOOKED
    _SHELL_HOOKED = True
    from ._ipython import install

    install((CnnvizError,))


def warn(message: str, stacklevel: int = 1) -> None:
    """Warn with a CnnvizWarning printed as one line ("CnnvizWarning: ..."), without the library's source line under
    it. The format is this call's only: Python's formatwarning is wrapped for the call and put back, so other
    libraries' warnings, and ours where a caller records or filters them, are untouched; nothing changes at import.
    ``stacklevel`` as for :func:`warnings.warn`, counted from the caller of this function."""
    previous = warnings.formatwarning

    def one_line(msg, category, filename, lineno, line=None):
        if isinstance(category, type) and issubclass(category, CnnvizWarning):
            return f"{category.__name__}: {msg}\n"
        return previous(msg, category, filename, lineno, line)

    warnings.formatwarning = one_line
    try:
        warnings.warn(message, CnnvizWarning, stacklevel=stacklevel + 1)
    finally:
        warnings.formatwarning = previous


class StoppedError(CnnvizError):
    """Work was stopped: by a widget's Stop control, by ``widget.stop()``, or by a newer request."""


def list_names(names: Iterable[str], limit: int = 60) -> str:
    """Join names for an error message, eliding the middle of very long lists."""
    names = list(names)
    if len(names) > limit:
        head, tail = names[: limit - 10], names[-10:]
        return ", ".join(head) + f", ... ({len(names) - limit} more) ..., " + ", ".join(tail)
    return ", ".join(names)


def short_repr(value: object, limit: int = 200) -> str:
    """How an error message quotes a user's value: at most ``limit`` characters.

    Tensors, arrays and modules are named by type and shape; containers whose repr is too long by type
    and size (the repr of a state dict runs to megabytes); long text keeps its start and its end (a
    path's file name is at its end).
    """
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if hasattr(value, "shape") and hasattr(value, "dtype") and getattr(value, "ndim", 0) > 0:  # tensors, arrays
        return elide(f"<{type(value).__name__} of shape {tuple(value.shape)}, {value.dtype}>", limit)
    if hasattr(value, "state_dict") and hasattr(value, "parameters"):  # an nn.Module
        return elide(f"<{type(value).__name__} module>", limit)
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    if len(text) > limit and isinstance(value, Sized) and not isinstance(value, (str, bytes)):
        text = f"<{type(value).__name__} of {plural(len(value), 'item')}>"
    return elide(text, limit)


def plural(n: int, what: str) -> str:
    """``n`` and ``what``, with an s unless n is 1: "1 row", "3 rows", "0 items"."""
    return f"{n} {what}{'' if n == 1 else 's'}"


def elide(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters by dropping its middle."""
    if len(text) <= limit:
        return text
    keep = max(limit - 5, 2)
    return text[: keep // 2] + " ... " + text[len(text) - (keep - keep // 2):]
