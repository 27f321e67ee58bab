"""Weight loading: torchvision's weights API (cached in TORCH_HOME) and local state_dict files.

Every failure becomes a CnnvizError that names the file or the model and says what to do,
including that ``weights=None`` (seeded random weights) always works offline.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import WeightsFileError, WeightsUnavailableError

OFFLINE_HINT = "weights=None gives seeded random weights and works offline"


def checkpoint_path(url: str) -> Path:
    """Where torch.hub caches the file behind ``url`` (under TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def imagenet_state_dict(name: str, tv_weights: Any) -> dict[str, torch.Tensor]:
    """The ImageNet state_dict of a torchvision weights enum, from the cache or downloaded."""
    url = tv_weights.url
    cached = checkpoint_path(url)
    if cached.is_file():
        return read_state_dict(cached)
    try:
        return tv_weights.get_state_dict(progress=True, check_hash=True)
    except Exception as exc:  # URLError, HTTPError, socket errors, hash mismatch ...
        raise WeightsUnavailableError(
            f"Could not get the ImageNet weights for {name!r} from {url} ({type(exc).__name__}: {exc}).\n"
            f"- On a machine with internet, run: python -c \"import cnnviz_widgets as cv; "
            f"cv.load_model('{name}', weights='imagenet')\"\n"
            f"  and copy {cached.name} into {cached.parent} here (TORCH_HOME sets that folder);\n"
            f"- or pass a local file: cv.load_model('{name}', weights='path/to/{cached.name}');\n"
            f"- or {OFFLINE_HINT}."
        ) from exc


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state_dict with ``torch.load(weights_only=True)``: a pickle's code never runs."""
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsFileError(f"Weights file {str(path)!r} does not exist. Check the path, or {OFFLINE_HINT}.")
    if path.is_dir():
        raise WeightsFileError(f"Weights path {str(path)!r} is a folder; pass the .pth file inside it.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsFileError(
            f"Refused to load {str(path)!r}: it holds Python objects other than tensors, and loading "
            f"it could run arbitrary code ({_first_line(exc)}). Save a plain state_dict instead: "
            f"torch.save(model.state_dict(), path)."
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise WeightsFileError(
            f"Could not read weights file {str(path)!r}: it is corrupt or not a PyTorch file "
            f"({type(exc).__name__}: {_first_line(exc)}). Re-download or re-save it."
        ) from exc
    return _unwrap(obj, path)


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """Accept a bare state_dict or a checkpoint dict holding one ('state_dict' / 'model')."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsFileError(
            f"{str(path)!r} does not hold a state_dict (a dict of tensors) but {type(obj).__name__}. "
            f"Save one with torch.save(model.state_dict(), path)."
        )
    if obj and all(k.startswith("module.") for k in obj):  # saved from DataParallel / DDP
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def apply_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str, name: str) -> None:
    """Load ``state`` into ``model`` strictly; a mismatch names the file and the differing keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:3])})")
        raise WeightsFileError(
            f"The weights in {source!r} do not fit {name!r}: {'; '.join(parts)}. "
            f"They are probably for another architecture; pick the matching model name."
        )
    meta = any(t.is_meta for t in own.values())
    model.load_state_dict(state, strict=True, assign=meta)  # a meta-device model takes the tensors as they are


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
