"""Weight files read safely, by what they hold and not by their name: a state_dict, a training checkpoint holding one, a
safetensors file, a TorchScript archive or a whole pickled model (the last two explained, not loaded). PyTorch
files are read with ``torch.load(weights_only=True)``: a pickle's code never runs. Fitting what was read to a model
is :mod:`cnnviz_widgets.models.weights`'s."""
from __future__ import annotations

import errno
import os
import pickle
import re
import stat
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import WeightsFileError, elide, short_repr

OFFLINE_HINT = "weights=None gives seeded random weights and works offline"

# where training code keeps the state_dict inside a checkpoint dict, most usual first (EMA copies last)
CHECKPOINT_KEYS = (
    "state_dict", "model_state_dict", "model", "net", "network", "module", "weights", "params",
    "model_ema", "ema", "state_dict_ema",
)

HEAD_BYTES = 64

def read_weights(path: str | os.PathLike[str], name: str) -> Any:
    """What a local weights file holds (a state_dict or a checkpoint dict holding one), read safely.

    PyTorch files are read with ``torch.load(weights_only=True)`` (a pickle's code never runs),
    safetensors files with ``safetensors.torch.load_file``; the kind is told by the file's first
    bytes. ``name`` (the zoo model) only goes into the fixes that messages suggest.
    """
    if "\x00" in os.fspath(path):
        raise WeightsFileError(f"Weights path {_quote(os.fspath(path))} holds a NUL character, which no file name can; "
                               f"check how the path was built.")
    try:
        os.fsencode(path)
    except UnicodeEncodeError as exc:
        raise WeightsFileError(f"Weights path {_quote(os.fspath(path))} holds a character no file name can "
                               f"({exc.reason}); check how the path was built.") from exc
    path = Path(path).expanduser()
    _check_file(path)
    head = _read_head(path)
    if _is_safetensors(head, path):
        obj = _load_safetensors(path)
    elif _is_torchscript(head, path):
        raise WeightsFileError(
            f"{_quote(path)} is a TorchScript file (saved with torch.jit.save), not a state_dict. "
            f"Load it with TorchScript and pass its weights: "
            f"cv.load_model({name!r}, weights=torch.jit.load({_quote(path)}).state_dict())."
        )
    else:
        obj = _torch_load(path, head)
    if not candidate_state_dicts(obj):
        raise _no_state_dict(obj, path, name)
    return obj

def _no_state_dict(obj: Any, path: Path, name: str) -> WeightsFileError:
    """The error for a file that loads but holds no state_dict where one is looked for."""
    if isinstance(obj, Mapping):
        keys = [k for k in obj if isinstance(obj[k], Mapping) and obj[k] and _is_tensor_dict(obj[k])]
        what = f"a {type(obj).__name__} with keys {elide(', '.join(repr(k) for k in list(obj)[:8]), 160)}"
        if keys:  # a state_dict under a key that checkpoints do not usually use
            key = short_repr(keys[0], 60)
            return WeightsFileError(
                f"{_quote(path)} holds {what}; the state_dict is under {key}. Pass it: cv.load_model("
                f"{name!r}, weights=torch.load({_quote(path)}, weights_only=True)[{key}])."
            )
    else:
        what = short_repr(obj, 80)
    return WeightsFileError(
        f"{_quote(path)} does not hold a state_dict (a dict of tensors) but {what}. "
        f"Save one with torch.save(model.state_dict(), path)."
    )

def _check_file(path: Path) -> None:
    """A missing path, a folder, or a name the system refuses (too long ...) each say so."""
    try:
        is_dir = stat.S_ISDIR(path.stat().st_mode)
    except FileNotFoundError:
        raise WeightsFileError(
            f"Weights file {_quote(path)} does not exist. Check the path, or {OFFLINE_HINT}."
        ) from None
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    if is_dir:
        raise WeightsFileError(f"Weights path {_quote(path)} is a folder; pass the .pth file inside it.")
    if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or a device would block or never end
        raise WeightsFileError(f"Weights path {_quote(path)} is not a regular file (a pipe or a device); save the "
                               f"weights to a file and pass that.")

def _read_head(path: Path) -> bytes:
    """The file's first bytes, which tell its kind; an unreadable file says why here."""
    try:
        with open(path, "rb") as fh:
            return fh.read(HEAD_BYTES)
    except OSError as exc:
        raise _unreadable(path, exc) from exc

def _unreadable(path: Path, exc: OSError) -> WeightsFileError:
    """The error for a file the operating system will not read (not a corrupt one)."""
    if isinstance(exc, PermissionError):
        return WeightsFileError(
            f"Weights file {_quote(path)} cannot be read: permission denied. "
            f"Give your user read access to it: chmod u+r {_quote(path)}"
        )
    bad_name = exc.errno in (errno.ENAMETOOLONG, errno.ENOTDIR, errno.ELOOP, errno.EINVAL)
    return WeightsFileError(
        f"Weights file {_quote(path)} cannot be read: {exc.strerror or first_line(exc)}. "
        + ("Check the path." if bad_name else "Copy it to a local disk and pass the copy.")
    )

def _is_safetensors(head: bytes, path: Path) -> bool:
    """A safetensors file: an 8-byte little-endian header length, then a JSON header starting with '{'."""
    if len(head) < 9 or head[8:9] != b"{":
        return False
    size = int.from_bytes(head[:8], "little")
    return 2 <= size <= path.stat().st_size - 8

def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors, on the CPU (the format holds no code)."""
    try:
        from safetensors.torch import load_file
    except ImportError as exc:
        raise WeightsFileError(
            f"{_quote(path)} is a safetensors file, and reading it needs the safetensors package: "
            f"pip install safetensors"
        ) from exc
    try:
        return load_file(path, device="cpu")
    except Exception as exc:  # SafetensorError, or an unsupported dtype
        raise WeightsFileError(
            f"Could not read safetensors file {_quote(path)}: it is corrupt or truncated "
            f"({type(exc).__name__}: {elide(first_line(exc))}). Re-download or re-save it."
        ) from exc

def _zip_entries(head: bytes, path: Path) -> list[str]:
    """The entry names of a zip file (PyTorch files and TorchScript archives are zips); [] if none."""
    if not head.startswith(b"PK"):
        return []
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return []

def _is_torchscript(head: bytes, path: Path) -> bool:
    """A TorchScript archive: a zip whose top folder holds constants.pkl or code/ (a state_dict's has neither)."""
    for entry in _zip_entries(head, path):
        parts = entry.split("/")
        if (len(parts) > 2 and parts[1] == "code") or parts[1:] == ["constants.pkl"]:
            return True
    return False

FOREIGN = {b"\x89HDF": "an HDF5 file (Keras/TensorFlow weights)", b"\x1f\x8b": "a gzip archive",
           b"PK\x03\x04": None, b"\x08": "possibly an ONNX model (protobuf)"}

def _torch_load(path: Path, head: bytes) -> Any:
    """``torch.load(weights_only=True)``, each failure said as what the file holds and the fix."""
    pickle_like = head[:1] == b"\x80" or head[:4] == b"PK\x03\x04"  # a pickle protocol byte, or torch's zip
    if not pickle_like:
        kind = next((what for magic, what in FOREIGN.items() if what and head.startswith(magic)), None)
        raise WeightsFileError(
            f"{_quote(path)} is not a PyTorch weights file{f': it looks like {kind}' if kind else ''} (it starts with "
            f"{head[:8]!r}). Pass a file saved with torch.save(model.state_dict(), path), or a safetensors file."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        cls = _refused_class(exc)
        if cls and _is_pickled_module(cls, path, head):
            raise WeightsFileError(
                f"{_quote(path)} holds a whole pickled model of class {cls} (saved with torch.save(model)), "
                f"not a state_dict, and loading it would run code from the file. If you trust the file: "
                f"model = torch.load({_quote(path)}, weights_only=False), then cv.Probe(model). "
                f"Otherwise, where the model was made, run torch.save(model.state_dict(), path) and pass that file."
            ) from exc
        raise WeightsFileError(
            f"Refused to load {_quote(path)}: it holds Python objects other than tensors"
            f"{f' ({cls})' if cls else ''}, and loading it could run arbitrary code. "
            f"Save a plain state_dict instead: torch.save(model.state_dict(), path)."
        ) from exc
    except OSError as exc:
        if isinstance(exc, PermissionError):
            raise _unreadable(path, exc) from exc
        raise _corrupt(path, exc) from exc
    except Exception as exc:  # noqa: BLE001 - a damaged file makes the unpickler raise almost anything
        raise _corrupt(path, exc) from exc

def _corrupt(path: Path, exc: BaseException) -> WeightsFileError:
    """The error for a file that is not a readable PyTorch file."""
    return WeightsFileError(
        f"Could not read weights file {_quote(path)}: it is corrupt or not a PyTorch file "
        f"({type(exc).__name__}: {elide(first_line(exc))}). Re-download or re-save it."
    )

def _refused_class(exc: BaseException) -> str | None:
    """The dotted name weights_only loading refused ('Unsupported global: GLOBAL torchvision.models.vgg.VGG')."""
    match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
    return elide(match.group(1), 120) if match else None

def _is_pickled_module(dotted: str, path: Path, head: bytes) -> bool:
    """Whether the refused class is an nn.Module: looked up among modules already imported (the
    file never chooses what gets imported), else told by the pickle's bytes, where every pickled
    module carries its ``_parameters`` and ``_modules`` dicts."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        obj: Any = sys.modules.get(".".join(parts[:i]))
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
        if isinstance(obj, type):
            return issubclass(obj, nn.Module)
    pickled = _pickle_bytes(head, path)
    return b"_parameters" in pickled and b"_modules" in pickled

def _pickle_bytes(head: bytes, path: Path, limit: int = 16 << 20) -> bytes:
    """The pickle of a torch file, only to search it: data.pkl of a zip, else the start of the file."""
    try:
        if head.startswith(b"PK"):
            with zipfile.ZipFile(path) as archive:
                entry = next((i for i in archive.infolist() if i.filename.endswith("/data.pkl")), None)
                if entry is None or entry.file_size > limit:
                    return b""
                return archive.read(entry)
        with open(path, "rb") as fh:
            return fh.read(limit)
    except (zipfile.BadZipFile, OSError, ValueError):
        return b""

def candidate_state_dicts(obj: Any) -> list[tuple[str, Mapping[str, torch.Tensor]]]:
    """Every state_dict that ``obj`` holds, as (where, tensors): ``obj`` itself when it is a dict of
    tensors, else each dict of tensors under a CHECKPOINT_KEYS key, in that order."""
    if not isinstance(obj, Mapping):
        return []
    if _is_tensor_dict(obj):
        return [("", obj)]
    found = []
    for key in CHECKPOINT_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and _is_tensor_dict(inner):
            found.append((f"[{key!r}]", inner))
    return found

def _is_tensor_dict(obj: Mapping[Any, Any]) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())

def _quote(path: Path | str) -> str:
    """A path as messages quote it, at most a few hundred characters (its end kept)."""
    return short_repr(str(path), 240)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
