"""Weights into a model: torchvision's ImageNet weights (cached in TORCH_HOME), local weight files (read by
:mod:`.weight_files`), state dicts. Keys saved with a wrapper's prefix ('module.', 'model.', '_orig_mod.' ...)
are matched to the model's own keys in one place, ``fit_state_dict``.

Every failure becomes a CnnvizError that names the file or the model and says what to do,
including that ``weights=None`` (seeded random weights) always works offline.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import WeightsFileError, WeightsUnavailableError, elide
from .weight_files import OFFLINE_HINT, candidate_state_dicts, first_line, read_weights

PASSED = "the state dict passed as weights="


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
            f"Could not get the ImageNet weights for {name!r} from {url} ({type(exc).__name__}: {first_line(exc)}).\n"
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
