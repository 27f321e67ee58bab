"""Weight loading: torchvision's weights API (cached in TORCH_HOME), local weight files, state dicts.

A local file is recognised by what it holds, not by its name: a state_dict, a training checkpoint
holding one, a safetensors file, a TorchScript archive or a whole pickled model (the last two are
explained, not loaded). Keys saved with a wrapper's prefix ('module.', 'model.', '_orig_mod.' ...)
are matched to the model's own keys in one place, ``fit_state_dict``.

Every failure becomes a CnnvizError that names the file or the model and says what to do,
including that ``weights=None`` (seeded random weights) always works offline.
"""
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

from ..errors import WeightsFileError, WeightsUnavailableError, elide, short_repr

OFFLINE_HINT = "weights=None gives seeded random weights and works offline"
PASSED = "the state dict passed as weights="
# where training code keeps the state_dict inside a checkpoint dict, most usual first (EMA copies last)
CHECKPOINT_KEYS = (
    "state_dict", "model_state_dict", "model", "net", "network", "module", "weights", "params",
    "model_ema", "ema", "state_dict_ema",
)
HEAD_BYTES = 64


def checkpoint_path(url: str) -> Path:
    """Where torch.hub caches the file behind ``url`` (under TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def imagenet_state_dict(name: str, tv_weights: Any) -> Any:
    """The ImageNet state_dict of a torchvision weights enum, from the cache or downloaded."""
    url = tv_weights.url
    cached = checkpoint_path(url)
    if cached.is_file():
        return read_weights(cached, name)
    try:
        reach(url)  # offline, fail before torch.hub prints a "Downloading: ..." line that reads as an error
        return tv_weights.get_state_dict(progress=True, check_hash=True)
    except Exception as exc:  # URLError, HTTPError, socket errors, hash mismatch ...
        raise WeightsUnavailableError(
            f"Could not get the ImageNet weights for {name!r} from {url} ({type(exc).__name__}: {_first_line(exc)}).\n"
            f"- On a machine with internet, run: python -c \"import cnnviz_widgets as cv; "
            f"cv.load_model('{name}', weights='imagenet')\"\n"
            f"  and copy {cached.name} into {cached.parent} here (TORCH_HOME sets that folder);\n"
            f"- or pass a local file: cv.load_model('{name}', weights='path/to/{cached.name}');\n"
            f"- or {OFFLINE_HINT}."
        ) from exc


def reach(url: str, timeout: float = 5.0) -> None:
    """Open (and close) a connection to ``url``'s host, or raise OSError: no internet, or no route to it."""
    import socket
    from urllib.parse import urlparse
    from urllib.request import getproxies

    parts = urlparse(url)
    if getproxies().get(parts.scheme):  # behind a proxy only urllib (torch.hub) knows the way: let it try
        return
    socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout).close()


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
        f"Weights file {_quote(path)} cannot be read: {exc.strerror or _first_line(exc)}. "
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
            f"({type(exc).__name__}: {elide(_first_line(exc))}). Re-download or re-save it."
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
        f"({type(exc).__name__}: {elide(_first_line(exc))}). Re-download or re-save it."
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


def key_prefixes(keys: list[str], own: Mapping[str, Any]) -> dict[str, int]:
    """For each leading part p of the keys ('module.', 'model.', 'module.model.' ...): how many of
    the model's own keys appear as p + key. "" counts the keys that are the model's as they are."""
    counts = {"": sum(k in own for k in keys)}
    for key in keys:
        dot = key.find(".")
        while dot != -1:
            if key[dot + 1:] in own:
                prefix = key[: dot + 1]
                counts[prefix] = counts.get(prefix, 0) + 1
            dot = key.find(".", dot + 1)
    return counts


def under_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries whose key starts with ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def fit_state_dict(
    own: Mapping[str, torch.Tensor], candidates: list[tuple[str, Mapping[str, torch.Tensor]]], source: str, name: str
) -> dict[str, torch.Tensor]:
    """The state_dict among ``candidates`` that fits the model's keys and shapes exactly.

    A candidate fits as it is, or with a leading part of its keys removed that a wrapper added
    ('module.' DataParallel, 'model.' Lightning, '_orig_mod.' torch.compile, 'module.model.' ...);
    a Lightning checkpoint's other entries ('criterion.weight' beside 'model.*') are left out when
    the keys under the prefix fit on their own. The first candidate that fits wins; when none does,
    the message describes the closest one.
    """
    best: tuple[int, str, str, dict[str, torch.Tensor]] | None = None
    for where, state in candidates:
        counts = key_prefixes(list(state), own)
        for prefix, count in sorted(counts.items(), key=lambda pc: -pc[1]):
            if count < len(own):
                break
            mapped = under_prefix(state, prefix)
            if _mismatch(own, mapped) == []:
                return mapped
        prefix, count = max(counts.items(), key=lambda pc: pc[1])
        if 2 * count < len(own):  # no prefix comes close: describe the keys as they are
            prefix, count = "", counts[""]
        if best is None or count > best[0]:
            best = (count, where, prefix, under_prefix(state, prefix))
    count, where, prefix, mapped = best if best else (0, "", "", {})
    inside = f" (under {where})" if where else ""
    near = (f" With the leading {prefix!r} removed from the keys, {count} of the model's {len(own)} keys are there."
            if prefix else "")
    raise WeightsFileError(
        f"The weights in {source}{inside} do not fit {name!r}: {'; '.join(_mismatch(own, mapped))}.{near} "
        f"They are probably for another architecture; pick the matching model name."
    )


def _mismatch(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> list[str]:
    """What differs between the model's keys and shapes and a state_dict's ([] when it fits)."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{elide(k, 80)}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} keys (e.g. {_some(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (e.g. {_some(unexpected)})")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:3])})")
    return parts


def _some(keys: list[str]) -> str:
    return ", ".join(elide(k, 80) for k in keys[:3])


def apply_state_dict(model: nn.Module, weights: Any, source: str, name: str, copy: bool = False) -> None:
    """Load the state_dict in ``weights`` (one, or a checkpoint holding some) into ``model`` strictly.

    ``source`` says where the weights come from in messages ("'file.pth'", PASSED). Floating
    tensors take the model's own dtype (a float16 or bfloat16 file gives a float32 model); integer
    buffers (BatchNorm's num_batches_tracked) keep theirs. ``copy``: copy the tensors even when
    nothing changes (a caller's state dict must not share memory with the model).
    """
    own = model.state_dict()
    state = fit_state_dict(own, candidate_state_dicts(weights), source, name)
    state = {k: _as_model_tensor(t, own[k], copy, k, source) for k, t in state.items()}
    meta = any(t.is_meta for t in own.values())
    try:
        model.load_state_dict(state, strict=True, assign=meta)  # a meta-device model takes the tensors as they are
    except (RuntimeError, TypeError, ValueError) as exc:  # whatever else load_state_dict refuses: its whole reason
        why = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        raise WeightsFileError(f"The weights in {source!r} do not load into {name!r}: {elide(why, 400)}.") from exc


def _as_model_tensor(tensor: torch.Tensor, own: torch.Tensor, copy: bool, key: str = "", source: str = PASSED
                     ) -> torch.Tensor:
    """``tensor`` on the CPU, dense, in ``own``'s dtype when both are floating point; a WeightsFileError naming
    ``key`` for what holds no usable numbers: meta tensors (no values), complex or integer numbers where the model
    has real floating-point ones (a quantized or damaged file: casting would load plausible nonsense)."""
    where = f"{elide(key, 80)!r} in {source}"
    if tensor.is_meta:
        raise WeightsFileError(f"{where} is a meta tensor: it has a shape but no values (saved from a model built on "
                               f"the meta device, before its weights were loaded). Save the state_dict of a loaded model.")
    if tensor.layout != torch.strided:  # sparse (a pruned model saved sparse): the same numbers, dense
        tensor = tensor.to_dense()
    if own.is_floating_point() and (tensor.is_complex() or not tensor.is_floating_point()):
        raise WeightsFileError(f"{where} holds {str(tensor.dtype).replace('torch.', '')} numbers where the model has "
                               f"{str(own.dtype).replace('torch.', '')} ones: these are not the trained weights of "
                               f"this model (a quantized or damaged file?). Save them as floating point.")
    dtype = own.dtype if tensor.is_floating_point() and own.is_floating_point() else tensor.dtype
    return tensor.detach().to(device="cpu", dtype=dtype, copy=copy)


def _quote(path: Path | str) -> str:
    """A path as messages quote it, at most a few hundred characters (its end kept)."""
    return short_repr(str(path), 240)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
