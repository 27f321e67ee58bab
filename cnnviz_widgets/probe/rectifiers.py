"""What acts as a rectifier, told by the op and its arguments: its label, how to run it out of place, and
what the reverse rules (:mod:`.rules`) make of it.

The probe intercepts every op below, however the network calls it (module, functional, tensor method,
in place), ends the pending layer there (a layer's activation is the op's output) and gives it the
rule's backward. Both rules that differ from the gradient read every one of them as the ReLU it is or
approximates; ``x`` is the op's input in the forward pass:

- ``deconvnet``: ``relu(signal)``. Nothing of the forward is used, so this has the same meaning at
  every op: the paper's reversed rectifier.
- ``guided``: ``relu(signal) * (x > 0)``, Springenberg's mask, taken from the input's sign (saved as
  a bool mask before the op runs, so an in-place change of its input or output later in the network
  does not touch it).
- ``gradient``: the op's own backward (nothing is intercepted).

What is intercepted, by family:

- **ReLU exactly** (label ``ReLU``, no warning): ``relu``/``relu_``/``nn.ReLU``, ``clamp``/``clip``
  with ``min=0`` and no max, ``clamp_min(x, 0)``, ``maximum``/``max``/``fmax`` with an all-zero
  operand, ``threshold(x, 0, 0)`` (``nn.Threshold(0, 0)``), ``x * (x > 0)`` (or ``>= 0``, as bool or
  float mask, either order, in place too) and ``where(x > 0, x, 0)``.
- **Capped ReLU** (``ReLU6``, ``ReLU capped at k``): ``relu6``, ``hardtanh(x, 0, k)``,
  ``clamp(x, 0, k)``. The rules ignore the cap (guided masks by ``x > 0`` only), as the deconvnet
  ignores the whole forward.
- **Rectifier-like** (positive where the input is positive, small or zero elsewhere): LeakyReLU,
  PReLU and RReLU with slopes >= 0, ELU and CELU with alpha >= 0, SELU, SiLU, GELU, Mish, Hardswish,
  ``Threshold(t >= 0, 0)``, and Softplus (positive everywhere: read as the ReLU it smooths). Each rule
  passes back what it passes at a ReLU; a one-time warning names them, since that is a reading.
- **No guided meaning** (PReLU, LeakyReLU or RReLU with a negative slope, ELU/CELU with a negative
  alpha, ``Hardtanh(a < 0, b)``, other ``Threshold`` values): the input's sign does not say where the
  op passes its input on, so ``guided``'s mask has no meaning there; it is still applied (the
  reconstruction keeps only what came through the positive side) and a one-time warning says so,
  naming the op. The deconvnet keeps its meaning.

Gates and squashers (sigmoid, hard-sigmoid, tanh, softmax) are not rectifiers: they keep their own
backward under every rule, as in Springenberg's and Zeiler's networks, which had none.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

Parse = Callable[[Sequence[Any], dict[str, Any], "MaskTracker | None"], "tuple[int, str, bool] | None"]


@dataclass(frozen=True)
class Rectifier:
    """A family of rectifier ops: how to tell a call apart (``parse``) and how to run it out of place."""

    label: str
    inplace_pos: int | None  # position of the ``inplace`` argument, if it has one
    out_of_place: Any  # the function to call instead of an in-place variant
    parse: Parse  # (position of the rectified tensor, label of this call, has a guided meaning) or None


@dataclass(frozen=True)
class Match:
    """One rectifier call: the tensor it rectifies (``args[index]``), its label, whether it is in place,
    whether ``guided`` has a meaning there (``faithful``), and its true forward run out of place."""

    spec: Rectifier
    index: int
    label: str
    faithful: bool
    inplace: bool
    compute: Callable[[torch.Tensor], torch.Tensor]


def _arg(args: Sequence[Any], kwargs: dict[str, Any], pos: int, key: str, default: Any) -> Any:
    return args[pos] if len(args) > pos else kwargs.get(key, default)


def _num(v: Any) -> float | None:
    """``v`` as a float when it is a number or a one-element tensor, else None."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, torch.Tensor) and v.numel() == 1 and not v.requires_grad:
        return float(v)
    return None


def _zeros_for(other: Any, x: Any, masks: MaskTracker | None = None) -> bool:
    """``other`` is an all-zero tensor (or number) that broadcasting with ``x`` leaves ``x``'s shape."""
    if not isinstance(x, torch.Tensor) or isinstance(other, torch.Tensor) and other.requires_grad:
        return False
    if not isinstance(other, torch.Tensor):
        return _num(other) == 0
    if other.numel() > 1 and masks is not None and masks.computed(other):
        return False  # a map that happens to be zero (a branch on the probe's zero input) is no constant zero
    try:
        same = torch.broadcast_shapes(x.shape, other.shape) == x.shape
    except RuntimeError:
        return False
    return same and other.numel() <= x.numel() and bool((other == 0).all())


def _g(v: float | None) -> str:
    return "?" if v is None else f"{v:g}"


def _capped(hi: float | None) -> str:
    return "ReLU6" if hi == 6 else f"ReLU capped at {_g(hi)}"


def _plain(label: str) -> Parse:
    return lambda args, kwargs, masks: (0, label, True)


def _sloped(label: str, pos: int, key: str, default: float, what: str = "slope") -> Parse:
    def parse(args, kwargs, masks):
        value = _num(_arg(args, kwargs, pos, key, default))
        ok = value is None or value >= 0
        return 0, label if ok else f"{label} with a negative {what}", ok
    return parse


def _prelu(args, kwargs, masks):
    w = _arg(args, kwargs, 1, "weight", None)
    ok = not isinstance(w, torch.Tensor) or not bool((w < 0).any())
    return 0, "PReLU" if ok else "PReLU with a negative slope", ok


def _rrelu(args, kwargs, masks):
    lower = _num(_arg(args, kwargs, 1, "lower", 1.0 / 8))
    ok = lower is None or lower >= 0
    return 0, "RReLU" if ok else "RReLU with a negative slope", ok


def _hardtanh(args, kwargs, masks):
    lo, hi = _num(_arg(args, kwargs, 1, "min_val", -1.0)), _num(_arg(args, kwargs, 2, "max_val", 1.0))
    if lo == 0:
        return 0, _capped(hi), True
    return 0, f"Hardtanh({_g(lo)}, {_g(hi)})", False


def _threshold(args, kwargs, masks):
    t, v = _num(_arg(args, kwargs, 1, "threshold", None)), _num(_arg(args, kwargs, 2, "value", None))
    if t == 0 and v == 0:
        return 0, "ReLU", True
    return 0, f"Threshold({_g(t)}, {_g(v)})", t is not None and t >= 0 and v == 0


def _clamp(args, kwargs, masks):
    lo, hi = _num(_arg(args, kwargs, 1, "min", None)), _arg(args, kwargs, 2, "max", None)
    if lo != 0:
        return None  # clamp(x, -1, 1) and the like are no rectifiers
    if hi is None:
        return 0, "ReLU", True
    hi = _num(hi)
    return (0, _capped(hi), True) if hi is not None and hi > 0 else None


def _clamp_min(args, kwargs, masks):
    return (0, "ReLU", True) if _num(_arg(args, kwargs, 1, "min", None)) == 0 else None


def _maximum(args, kwargs, masks):
    a, b = (args[0] if args else None), _arg(args, kwargs, 1, "other", None)
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        return None  # max(x), max(x, dim)
    if _zeros_for(b, a, masks):
        return 0, "ReLU", True
    if _zeros_for(a, b, masks):
        return 1, "ReLU", True
    return None


def _mul(args, kwargs, masks):
    a, b = (args[0] if args else None), _arg(args, kwargs, 1, "other", None)
    if masks is None:
        return None
    if masks.positive_mask_of(b, a):
        return 0, "ReLU", True
    if masks.positive_mask_of(a, b) and b.shape == torch.broadcast_shapes(a.shape, b.shape):
        return 1, "ReLU", True
    return None


def _where(args, kwargs, masks):
    if masks is None or len(args) < 3 or not masks.positive_mask_of(args[0], args[1]):
        return None
    return (1, "ReLU", True) if _zeros_for(args[2], args[1], masks) else None


_RELU = Rectifier("ReLU", 1, F.relu, _plain("ReLU"))
_CLAMP = Rectifier("ReLU", None, torch.clamp, _clamp)
_CLIP = Rectifier("ReLU", None, torch.clip, _clamp)
_CLAMP_MIN = Rectifier("ReLU", None, torch.clamp_min, _clamp_min)
_THRESHOLD = Rectifier("Threshold", 3, F.threshold, _threshold)
_MUL = Rectifier("ReLU", None, torch.mul, _mul)
_HARDTANH = Rectifier("Hardtanh", 3, F.hardtanh, _hardtanh)
_LEAKY = Rectifier("LeakyReLU", 2, F.leaky_relu, _sloped("LeakyReLU", 1, "negative_slope", 0.01))
_ELU = Rectifier("ELU", 2, F.elu, _sloped("ELU", 1, "alpha", 1.0, "alpha"))
_CELU = Rectifier("CELU", 2, F.celu, _sloped("CELU", 1, "alpha", 1.0, "alpha"))
_SELU = Rectifier("SELU", 1, F.selu, _plain("SELU"))
_RRELU = Rectifier("RReLU", 4, F.rrelu, _rrelu)

RECTIFIERS: dict[str, Rectifier] = {
    "relu": _RELU, "relu_": _RELU,
    "relu6": Rectifier("ReLU6", 1, F.relu6, _plain("ReLU6")),
    "hardtanh": _HARDTANH, "hardtanh_": _HARDTANH,
    "clamp": _CLAMP, "clamp_": _CLAMP, "clip": _CLIP, "clip_": _CLIP,
    "clamp_min": _CLAMP_MIN, "clamp_min_": _CLAMP_MIN,
    "maximum": Rectifier("ReLU", None, torch.maximum, _maximum),
    "max": Rectifier("ReLU", None, torch.max, _maximum),
    "fmax": Rectifier("ReLU", None, torch.fmax, _maximum),
    "_threshold": _THRESHOLD, "threshold": _THRESHOLD, "threshold_": _THRESHOLD,
    "mul": _MUL, "mul_": _MUL, "multiply": _MUL,
    "where": Rectifier("ReLU", None, torch.where, _where),
    "leaky_relu": _LEAKY, "leaky_relu_": _LEAKY,
    "prelu": Rectifier("PReLU", None, F.prelu, _prelu),
    "rrelu": _RRELU, "rrelu_": _RRELU,
    "elu": _ELU, "elu_": _ELU,
    "celu": _CELU, "celu_": _CELU,
    "selu": _SELU, "selu_": _SELU,
    "silu": Rectifier("SiLU", 1, F.silu, _plain("SiLU")),
    "gelu": Rectifier("GELU", None, F.gelu, _plain("GELU")),
    "hardswish": Rectifier("Hardswish", 1, F.hardswish, _plain("Hardswish")),
    "mish": Rectifier("Mish", 1, F.mish, _plain("Mish")),
    "softplus": Rectifier("Softplus", None, F.softplus, _plain("Softplus")),
}


class MaskTracker:
    """Remembers, for one forward pass, which tensors are ``x > 0`` (or ``x >= 0``) of which ``x``, as
    bool or converted to floats, so that ``x * mask`` can be told to be a ReLU."""

    COMPARE = {"gt", "greater", "ge", "greater_equal"}
    CONVERT = {"float", "to", "type_as", "type", "half", "double", "bfloat16", "int", "long"}

    CONSTANT = {"zeros", "zeros_like", "new_zeros", "full", "full_like", "new_full", "empty", "empty_like",
                "new_empty", "tensor", "as_tensor", "scalar_tensor"}

    def __init__(self) -> None:
        self._masks: dict[int, tuple[weakref.ref, weakref.ref]] = {}
        self._computed: dict[int, weakref.ref] = {}  # results of the network's ops: data, not constants

    def note_result(self, name: str, result: Any) -> None:
        """Remember that ``result`` came out of an op of the network (unless the op makes a constant), so a map
        that happens to be zero (a branch on a zero input) is never taken for the zero of ``maximum(x, 0)``."""
        if name in self.CONSTANT:
            return
        for r in result if isinstance(result, (tuple, list)) else (result,):
            if isinstance(r, torch.Tensor):
                self._computed[id(r)] = weakref.ref(r)

    def computed(self, t: torch.Tensor) -> bool:
        ref = self._computed.get(id(t))
        return ref is not None and ref() is t

    def note(self, name: str, args: Sequence[Any], kwargs: dict[str, Any], result: Any) -> None:
        """Record ``result`` if it is a positive mask of a tensor (or a conversion of one)."""
        if name not in self.COMPARE and name not in self.CONVERT:
            return
        if not isinstance(result, torch.Tensor) or not args or not isinstance(args[0], torch.Tensor):
            return
        other = _arg(args, kwargs, 1, "other", None)
        if name in self.COMPARE and not isinstance(other, torch.Tensor) and _num(other) == 0:
            self._masks[id(result)] = (weakref.ref(result), weakref.ref(args[0]))
        elif name in self.CONVERT and result is not args[0] and id(args[0]) in self._masks:
            ref, source = self._masks[id(args[0])]
            if ref() is args[0] and source() is not None:
                self._masks[id(result)] = (weakref.ref(result), source)

    def positive_mask_of(self, mask: Any, x: Any) -> bool:
        """Whether ``mask`` is ``x > 0`` (or ``>= 0``) of exactly this ``x``, of ``x``'s shape."""
        entry = self._masks.get(id(mask)) if isinstance(mask, torch.Tensor) else None
        return (entry is not None and entry[0]() is mask and entry[1]() is x and isinstance(x, torch.Tensor)
                and isinstance(mask, torch.Tensor) and mask.shape == x.shape)


def is_inplace_call(name: str, args: Sequence[Any], kwargs: dict[str, Any], inplace_pos: int | None) -> bool:
    """Whether a call writes into its first argument (trailing ``_``, ``inplace=True``, ``out=``)."""
    if name.endswith("_") and not name.endswith("__"):
        return True
    if kwargs.get("inplace") is True or "out" in kwargs:
        return True
    return inplace_pos is not None and len(args) > inplace_pos and args[inplace_pos] is True


def match_rectifier(func: Any, args: Sequence[Any], kwargs: dict[str, Any],
                    masks: MaskTracker | None = None) -> Match | None:
    """The rectifier call ``func(*args, **kwargs)`` is, or None. ``masks`` (of the running forward pass)
    lets ``x * (x > 0)`` and ``where(x > 0, x, 0)`` be told apart from other products and selections."""
    name = getattr(func, "__name__", "")
    spec = RECTIFIERS.get(name)
    if spec is None or not args or "out" in kwargs:
        return None
    parsed = spec.parse(args, kwargs, masks)
    if parsed is None or not isinstance(args[parsed[0]], torch.Tensor):
        return None
    index, label, faithful = parsed
    inplace = is_inplace_call(name, args, kwargs, spec.inplace_pos)
    if inplace and index != 0:
        return None
    return Match(spec, index, label, faithful, inplace, _out_of_place(func, args, kwargs, spec, index))


def _out_of_place(func: Any, args: Sequence[Any], kwargs: dict[str, Any], spec: Rectifier, index: int
                  ) -> Callable[[torch.Tensor], torch.Tensor]:
    """A closure computing the rectifier's true forward on a tensor, never writing into it."""
    name = func.__name__
    rest, kw = list(args), dict(kwargs)
    fn = spec.out_of_place if name.endswith("_") and not name.endswith("__") else func
    if "inplace" in kw:
        kw["inplace"] = False
    elif spec.inplace_pos is not None and len(rest) > spec.inplace_pos:
        rest[spec.inplace_pos] = False

    def compute(x: torch.Tensor) -> torch.Tensor:
        call = list(rest)
        call[index] = x
        return fn(*call, **kw)

    return compute


def rectifier_spec(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Rectifier | None:
    """The Rectifier of a call that rectifies its first argument, or None (used where rectifiers are
    taken as identities: the receptive-field support pass)."""
    m = match_rectifier(func, args, kwargs)
    return m.spec if m is not None and m.index == 0 else None


def rectifier_warning(model: str, rule: Any, labels: set[str], unfaithful: set[str],
                      warned: set[tuple[str, str]]) -> str | None:
    """The one warning a reverse pass by ``rule`` gives for the non-ReLU ops it met (``labels``; of which
    ``unfaithful`` have no guided meaning), leaving out the (rule, label) pairs in ``warned`` and adding
    the new ones there; None when there is nothing new to say."""
    new = sorted(label for label in labels if (rule.name, label) not in warned)
    if not new:
        return None
    warned |= {(rule.name, label) for label in new}
    blind = [label for label in new if label in unfaithful] if rule.reads_input else []
    read = [label for label in new if label not in blind]
    parts = []
    if read:
        them = "it" if len(read) == 1 else "them"
        parts.append(f"{model} uses {', '.join(read)}: the {rule.name} rule reverses {them} as it does ReLU "
                     f"({rule.title.split(': ', 1)[-1]}); read the reconstructions as approximate.")
    if blind:
        its, lets = ("its", "it lets") if len(blind) == 1 else ("their", "they let")
        parts.append(f"{model} uses {', '.join(blind)}: the {rule.name} rule has no meaning there, since the sign of "
                     f"{its} input does not say where {lets} the signal through; it still passes relu(signal) where "
                     f"the input was positive, as at a ReLU, so what came through the negative side is missing from "
                     f"the reconstructions.")
    return " ".join(parts)
