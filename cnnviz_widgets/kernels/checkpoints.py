"""One network over its training: checkpoints as data, recorded from a training loop, read lazily.

:class:`Checkpoints` holds where each checkpoint's weights are (a weight file, a state dict, a folder of files or a
:class:`CheckpointRecorder`'s folder), its step and its recorded metrics. There is one :class:`~cnnviz_widgets.Probe`
for all of them: moving to a step assigns that step's tensors to the probe's own module tree
(``load_state_dict(assign=True)``), so layers, names and receptive fields are traced once, the user's model is never
touched, and no weights are copied. Files are read only when their step is asked for, through the weight loading of
:mod:`cnnviz_widgets.models.weight_files` (the same formats and messages as ``cv.load_model``), and at most ``cache``
steps are kept in memory (a VGG16 snapshot is 528 MB): the least recently used one is dropped before the next is
read, so sliding over any number of checkpoints holds ``cache`` snapshots at most (and the model's own weights).

A checkpoint that cannot be used (a missing file, another architecture) raises a :class:`~cnnviz_widgets.errors.
CheckpointError` naming its step and source when it is asked for; the other checkpoints still load.

The per-step kernels (:meth:`Checkpoints.reconstruct`, :meth:`Checkpoints.sparsity`, :meth:`Checkpoints.filters`,
:meth:`Checkpoints.predict`, :meth:`Checkpoints.over`) return one result per step, in step order.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import checks
from ..errors import (
    CheckpointError,
    CnnvizError,
    IndexOutOfRangeError,
    WeightsFileError,
    short_repr,
)
from ..models.weight_files import candidate_state_dicts, read_weights
from ..models.weights import fit_state_dict
from ..probe.probe import Probe, all_finite

INDEX = "checkpoints.json"  # a recorder's folder: steps, files and metrics, in order
SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".tar")
_NUMBER = re.compile(r"(\d+)(?!.*\d)")  # the last number in a file name: its step


def _file_step(path: Path) -> int | None:
    match = _NUMBER.search(path.stem)
    return int(match.group(1)) if match else None


def _atomic_write(path: Path, data: bytes) -> None:
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    part.write_bytes(data)
    os.replace(part, path)


class CheckpointRecorder:
    """Records a model's weights from a training loop, to disk: ``recorder.snapshot(step, loss=..., accuracy=...)``.

    Every ``every``-th step (``step % every == 0``, or any step with ``force=True``) the state dict is written to
    ``folder`` as ``step_00000100.pt`` (on the CPU, written whole then renamed: never a half file) and the step and
    its metrics to ``folder/checkpoints.json``; nothing stays in memory. ``folder`` None: a new temporary folder,
    removed once neither the recorder nor checkpoints read from it are left (or when Python exits).
    A folder that already holds a recording is refused unless ``overwrite=True``. ``recorder.checkpoints()`` (or
    ``cv.Checkpoints(model, recorder)``) reads them back.
    """

    def __init__(self, model: nn.Module, every: int = 1, folder: str | os.PathLike | None = None,
                 overwrite: bool = False) -> None:
        if not isinstance(model, nn.Module):
            raise CnnvizError(f"CheckpointRecorder records a torch.nn.Module's weights, got {short_repr(model)}.")
        self.model = model
        self.every = checks.positive_int("every", every, "a positive whole number of steps")
        self._temporary: tempfile.TemporaryDirectory | None = None
        if folder is None:  # a folder of its own, removed when nothing reads it any more or Python exits: a lesson
            # run again and again must not fill the disk (each recording is tens of MB to GBs)
            self._temporary = tempfile.TemporaryDirectory(prefix="cnnviz-checkpoints-", ignore_cleanup_errors=True)
            folder = self._temporary.name
        self.folder = Path(folder).expanduser()
        if self.folder.exists() and not self.folder.is_dir():
            raise CnnvizError(f"folder {str(self.folder)!r} is a file; give a folder for the checkpoints.")
        if (self.folder / INDEX).exists() and not overwrite:
            raise CnnvizError(f"{str(self.folder)!r} already holds a recording ({INDEX}); read it with "
                              f"cv.Checkpoints(model, {str(self.folder)!r}), or pass overwrite=True to record anew.")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.steps: list[int] = []
        self.files: list[str] = []
        self.metrics: dict[str, list[float | None]] = {}
        self._write_index()

    def snapshot(self, step: int, loss: float | None = None, accuracy: float | None = None, force: bool = False,
                 **metrics: float | None) -> bool:
        """Save the weights at ``step`` if it is one to record (``step % every == 0``, or ``force``), with its
        metrics: numbers (a tensor is read with ``.item()``), or functions of no argument, called only when the
        step is recorded (``accuracy=test_accuracy``: a costly evaluation runs every ``every`` steps, not every
        step). Returns whether it was saved."""
        if not checks.whole(step) or step < 0:
            raise CnnvizError(f"step must be a whole number 0 or more, got {short_repr(step)}.")
        step = int(step)
        if not force and step % self.every:
            return False
        if self.steps and step <= self.steps[-1]:
            raise CnnvizError(f"step {step} is not after the last recorded step {self.steps[-1]}: steps go forward.")
        values = {"loss": loss, "accuracy": accuracy, **metrics}
        values = {k: self._number(k, v) for k, v in values.items() if v is not None or k in self.metrics}
        name = f"step_{step:08d}.pt"
        state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        part = self.folder / f".{name}.{os.getpid()}.part"
        torch.save(state, part)
        os.replace(part, self.folder / name)
        del state
        for k in values:
            if k not in self.metrics:
                self.metrics[k] = [None] * len(self.steps)
        for k in self.metrics:
            self.metrics[k].append(values.get(k))
        self.steps.append(step)
        self.files.append(name)
        self._write_index()
        return True

    @staticmethod
    def _number(name: str, value: Any) -> float | None:
        if callable(value):
            value = value()
        if value is None:
            return None
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CnnvizError(f"metric {name}={short_repr(value)} is not a number.")
        return float(value)

    def _write_index(self) -> None:
        metrics = {k: [None if v is None or not math.isfinite(v) else v for v in vs] for k, vs in self.metrics.items()}
        data = {"steps": self.steps, "files": self.files, "metrics": metrics}
        _atomic_write(self.folder / INDEX, json.dumps(data, indent=1).encode("utf-8"))

    def checkpoints(self, **kwargs: Any) -> Checkpoints:
        """The recorded checkpoints of this model (``kwargs`` go to :class:`Checkpoints`)."""
        return Checkpoints(self.model, self, **kwargs)

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return f"CheckpointRecorder({type(self.model).__name__}, every={self.every}, {len(self)} saved in {str(self.folder)!r})"


def _read_folder(folder: Path) -> tuple[list[Any], list[int] | None, dict[str, list] | None]:
    """A folder's checkpoints: a recorder's index when there is one, else its weight files by the step in their
    names (the last number), names without a number after them in name order."""
    index = folder / INDEX
    if index.is_file():
        try:
            data = json.loads(index.read_text(encoding="utf-8"))
            files, steps, metrics = data["files"], data["steps"], data.get("metrics", {})
        except (ValueError, KeyError, TypeError) as exc:
            raise CnnvizError(f"{str(index)!r} is not a checkpoint index ({type(exc).__name__}: {exc}).") from exc
        return [folder / f for f in files], [int(s) for s in steps], metrics
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")]
    if not files:
        raise CnnvizError(f"{str(folder)!r} holds no weight files ({', '.join(SUFFIXES)}) and no {INDEX}.")
    numbered = sorted((p for p in files if _file_step(p) is not None), key=lambda p: (_file_step(p), p.name))
    rest = sorted((p for p in files if _file_step(p) is None), key=lambda p: p.name)
    ordered = numbered + rest
    steps = [_file_step(p) for p in ordered]
    return ordered, (steps if not rest and len(set(steps)) == len(steps) else None), None


class Checkpoints(Sequence):
    """A network's checkpoints over its training, read lazily, with one Probe whose weights are swapped.

    ``model``: the network (an nn.Module, or a cv.Probe whose settings, such as input_size and labels, are
    kept); it is never changed. ``sources``: a list of weight files (any file ``cv.load_model`` reads) and state
    dicts (or checkpoint dicts holding one), a folder of weight files (or a recorder's folder), or a
    :class:`CheckpointRecorder`. ``steps``: one whole number per checkpoint, increasing (default: the recorder's,
    the numbers in the file names, else 0, 1, ...). ``metrics``: name -> one number per checkpoint (None where
    unknown), added to the recorder's. ``cache``: how many steps' weights stay in memory (at least 1).
    ``probe_kwargs`` (device, input_size, mean, std, labels, resize_size) go to the Probe.
    """

    def __init__(self, model: nn.Module | Probe, sources: Any, steps: Sequence[int] | None = None,
                 metrics: Mapping[str, Sequence[float | None]] | None = None, cache: int = 2,
                 **probe_kwargs: Any) -> None:
        self.cache_size = checks.positive_int("cache", cache, "a positive whole number of checkpoints")
        found_steps: list[int] | None = None
        found_metrics: dict[str, list] | None = {}
        self._recorder_folder = None  # keeps a recorder's temporary folder alive while these checkpoints read it
        if isinstance(sources, CheckpointRecorder):
            self._recorder_folder = sources._temporary
            self._sources: list[Any] = [sources.folder / f for f in sources.files]
            found_steps, found_metrics = list(sources.steps), dict(sources.metrics)
        elif isinstance(sources, (str, os.PathLike)) and Path(sources).expanduser().is_dir():
            self._sources, found_steps, found_metrics = _read_folder(Path(sources).expanduser())
            found_metrics = found_metrics or {}
        elif isinstance(sources, (str, os.PathLike)) or isinstance(sources, Mapping):
            self._sources = [sources]
        elif isinstance(sources, Iterable) and not isinstance(sources, (bytes, nn.Module)):
            self._sources = list(sources)
            named = [_file_step(Path(s)) if isinstance(s, (str, os.PathLike)) else None for s in self._sources]
            known = [n for n in named if n is not None]
            if len(known) == len(named) and len(set(known)) == len(known) and known == sorted(known):
                found_steps = known
        else:
            raise CnnvizError(f"sources must be a list of weight files or state dicts, a folder, or a "
                              f"cv.CheckpointRecorder, got {short_repr(sources)}.")
        for i, s in enumerate(self._sources):
            if not isinstance(s, (str, os.PathLike, Mapping)):
                raise CnnvizError(f"sources[{i}] must be a weight file's path or a state dict, got {short_repr(s)}.")
        if not self._sources:
            raise CnnvizError("sources is empty: give at least one checkpoint (a weight file, a state dict or a folder).")
        n = len(self._sources)
        if steps is None:
            steps = found_steps if found_steps is not None else list(range(n))
        steps = list(steps) if not isinstance(steps, (str, bytes)) and isinstance(steps, Iterable) else steps
        if not isinstance(steps, list) or len(steps) != n or not all(checks.whole(s) for s in steps):
            raise CnnvizError(f"steps must be {n} whole numbers, one per checkpoint, got {short_repr(steps)}.")
        self.steps = [int(s) for s in steps]
        if any(b <= a for a, b in zip(self.steps, self.steps[1:])):
            raise CnnvizError(f"steps must increase, one per checkpoint in training order, got {short_repr(self.steps)}.")
        self.metrics: dict[str, list[float | None]] = {k: list(v) for k, v in (found_metrics or {}).items()}
        if metrics is not None and not isinstance(metrics, Mapping):
            raise CnnvizError(f"metrics must be a dict name -> one number per checkpoint, got {short_repr(metrics)}.")
        for name, values in (metrics or {}).items():
            values = list(values) if isinstance(values, Iterable) and not isinstance(values, (str, bytes)) else values
            if not isinstance(values, list) or len(values) != n or not all(
                    v is None or (isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool))
                    for v in values):
                raise CnnvizError(f"metrics[{name!r}] must be {n} numbers (None where unknown), one per checkpoint, "
                                  f"got {short_repr(values)}.")
            self.metrics[str(name)] = [None if v is None else float(v) for v in values]
        self.probe = self._probe(model, probe_kwargs)  # after the cheap checks: tracing a big network takes time
        own = self.probe.model.state_dict()
        self._own = {k: v.to("meta") for k, v in own.items()}  # keys, shapes and dtypes: no memory held
        self._name = type(self.probe.model).__name__
        del own
        self._cache: OrderedDict[int, dict[str, torch.Tensor]] = OrderedDict()
        self._current: int | None = None  # the checkpoint whose weights the probe holds
        # held while a step's work runs (using()): a cell and a widget's background job never swap the weights
        # under each other's feet (a result labelled with one step but made with another's weights)
        self._use = threading.RLock()

    @staticmethod
    def _probe(model: Any, kwargs: dict[str, Any]) -> Probe:
        if isinstance(model, Probe):
            keep = {"device": model.device, "input_size": model.input_size, "resize_size": model.resize_size,
                    "mean": model.mean.flatten().tolist(), "std": model.std.flatten().tolist(), "labels": model._labels}
            return Probe(model.model, **{**keep, **kwargs})
        if not isinstance(model, nn.Module):
            raise CnnvizError(f"model must be the network the checkpoints belong to (a torch.nn.Module or a cv.Probe), "
                              f"got {short_repr(model)}.")
        return Probe(model, **kwargs)

    # ------------------------------------------------------------------ the sequence
    def __len__(self) -> int:
        return len(self._sources)

    def __getitem__(self, i: int) -> Probe:  # type: ignore[override]
        return self.load(i)

    def source(self, i: int) -> str:
        """Where checkpoint ``i`` comes from, as messages say it (a file's path, or "state dict 3")."""
        s = self._sources[i]
        return repr(str(s)) if isinstance(s, (str, os.PathLike)) else f"state dict {i}"

    def index(self, step: int) -> int:  # type: ignore[override]
        """The position of the checkpoint recorded at ``step``."""
        if step not in self.steps:
            raise IndexOutOfRangeError(f"No checkpoint at step {short_repr(step)}; the steps are {short_repr(self.steps)}.")
        return self.steps.index(step)

    def _check(self, i: Any) -> int:
        return checks.index("checkpoint", i, len(self), f"there are {len(self)} checkpoints, 0 to {len(self) - 1}")

    # ------------------------------------------------------------------ loading
    def state(self, i: int) -> dict[str, torch.Tensor]:
        """Checkpoint ``i``'s state dict, fitted to the model (wrapper prefixes removed), as float32 tensors on the
        probe's device; read from disk unless cached. A CheckpointError names the step and source if it cannot be."""
        i = self._check(i)
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        while len(self._cache) >= self.cache_size:  # drop before reading: never cache_size + 1 snapshots at once
            self._cache.popitem(last=False)
        source = self._sources[i]
        where = f"checkpoint {i} (step {self.steps[i]}, {self.source(i)})"
        try:
            obj = read_weights(source, self._name) if isinstance(source, (str, os.PathLike)) else source
            state = fit_state_dict(self._own, candidate_state_dicts(obj), self.source(i), self._name)
        except WeightsFileError as exc:
            raise CheckpointError(f"Cannot use {where}: {exc}") from exc
        del obj
        device = self.probe.device
        state = {k: t.detach().to(device, self._own[k].dtype if t.is_floating_point() and self._own[k].is_floating_point()
                                  else t.dtype) for k, t in state.items()}
        bad = [k for k, t in state.items() if t.is_floating_point() and not all_finite(t)]
        if bad:
            raise CheckpointError(f"Cannot use {where}: {bad[0]} holds NaN or infinite values (the training had "
                                  f"diverged by then), so every result would be NaN.")
        self._cache[i] = state
        return state

    def load(self, i: int) -> Probe:
        """The probe, holding checkpoint ``i``'s weights (assigned to its own module tree: no copy). Another thread
        may swap them afterwards: for work that must see step ``i`` throughout, use :meth:`using`."""
        i = self._check(i)
        with self._use:
            if self._current != i:
                state = self.state(i)
                with self.probe._lock:
                    self._current = None
                    self.probe.model.load_state_dict(state, strict=True, assign=True)
                    self._current = i
        return self.probe

    @contextlib.contextmanager
    def using(self, i: int) -> Iterator[Probe]:
        """``with checkpoints.using(i) as probe:`` the probe holds checkpoint ``i``'s weights for the whole block; a
        swap asked for by another thread (a widget's job, a cell) waits until the block ends."""
        with self._use:
            yield self.load(i)

    def at_step(self, step: int) -> Probe:
        """The probe holding the weights recorded at ``step``."""
        return self.load(self.index(step))

    # ------------------------------------------------------------------ per-step kernels
    def over(self, fn: Callable[[Probe], Any], steps: Iterable[int] | None = None,
             progress: Callable[[int, int], None] | None = None) -> dict[int, Any]:
        """step -> ``fn(probe)`` with the probe holding that step's weights, for every checkpoint (or ``steps``),
        in step order."""
        chosen = [self.index(s) for s in steps] if steps is not None else list(range(len(self)))
        out = {}
        for n, i in enumerate(chosen):
            with self.using(i) as probe:
                out[self.steps[i]] = fn(probe)
            if progress is not None:
                progress(n + 1, len(chosen))
        return out

    def model_input(self, picture: Any, name: str = "picture") -> torch.Tensor:
        """One picture as model input (the same for every step)."""
        return self.probe.model_input(picture, name)

    def _input(self, x: Any) -> torch.Tensor:
        return x if isinstance(x, torch.Tensor) and x.ndim == 4 and x.is_floating_point() else self.model_input(x)

    def reconstruct(self, x: Any, layers: str | Iterable[str] | None = None, rule: str = "auto",
                    steps: Iterable[int] | None = None, **options: Any) -> dict[int, dict[str, torch.Tensor]]:
        """step -> :meth:`Probe.reconstruct` of ``x`` (model input, or one picture) by ``rule``."""
        x = self._input(x)
        return self.over(lambda p: p.reconstruct(x, layers=layers, rule=rule, **options), steps)

    def predict(self, x: Any, k: int = 5, steps: Iterable[int] | None = None) -> dict[int, list]:
        """step -> :meth:`Probe.predict` of ``x`` (model input, or one picture): per image, the top-k."""
        x = self._input(x)
        return self.over(lambda p: p.predict(x, k=k), steps)

    def sparsity(self, images: Any, layers: str | Iterable[str] | None = None, steps: Iterable[int] | None = None,
                 **kwargs: Any) -> dict[int, Any]:
        """step -> :func:`cnnviz_widgets.sparsity` over ``images`` (``kwargs`` as there)."""
        from .mine import sparsity

        kwargs.setdefault("progress", False)
        return self.over(lambda p: sparsity(p, images, layers=layers, **kwargs), steps)

    def filters(self, layer: str | None = None, steps: Iterable[int] | None = None) -> dict[int, np.ndarray]:
        """step -> the filters of ``layer`` (default the first conv layer) as uint8 pictures (C, kh, kw, 3)
        (:func:`cnnviz_widgets.kernels.filters.filter_pictures`)."""
        from .filters import filter_pictures

        return self.over(lambda p: filter_pictures(p, layer), steps)

    def weights_change(self, layer: str | None = None, first: int = 0, last: int = -1) -> float:
        """How much ``layer``'s weights (default the first conv layer's) changed between two checkpoints: the norm
        of the difference over the norm of the first, ``|W_last - W_first| / |W_first|``."""
        from .filters import filter_weights

        with self.using(first) as probe:
            a = filter_weights(probe, layer)
        with self.using(last % len(self)) as probe:
            b = filter_weights(probe, layer)
        return float((b - a).norm() / a.norm().clamp_min(1e-12))

    def __repr__(self) -> str:
        steps = ", ".join(str(s) for s in self.steps[:6]) + (", ..." if len(self) > 6 else "")
        metrics = f"; metrics {', '.join(self.metrics)}" if self.metrics else ""
        return f"Checkpoints({self._name}, {len(self)} at steps {steps}{metrics})"
