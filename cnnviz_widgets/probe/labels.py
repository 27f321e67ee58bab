"""Class names: a network's labels checked once, shown so that two classes never read alike, and found by name.

A label list must be in the network's output order, so a set (whose order changes between runs) is refused.
Label lists in use do repeat names (Caffe's and Keras' ImageNet lists hold 'crane' and 'maillot' twice) or differ
only by case (torchvision's 'Cardigan', the corgi, and 'cardigan', the sweater): they are accepted, a repeated
name is shown with its output index ('crane (134)', 'crane (517)'), and a name that fits several classes is an
error that lists them rather than a silent pick of the first.
"""
from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, KeysView, Mapping, Set
from typing import Any

from ..errors import CnnvizError, LabelNotFoundError, short_repr, warn


def checked_labels(labels: Any) -> list[str] | None:
    """``labels`` as a list of strs in output order (None stays None); a dict, a set, a str or a non-iterable is
    refused with what to pass; repeated names are accepted with a warning naming them (see :func:`shown_labels`)."""
    if labels is None:
        return None
    if isinstance(labels, Mapping):
        raise CnnvizError("labels must be a list of class names in output order, got a dict; for {index: name} "
                          "pass [names[i] for i in range(len(names))].")
    if isinstance(labels, Set) and not isinstance(labels, KeysView):
        raise CnnvizError(f"labels must be a list of class names in output order; a {type(labels).__name__} has no "
                          f"order (it changes between runs, so class 0 would get a different name each time): pass a "
                          f"list, e.g. sorted(...) if that is the network's order.")
    if hasattr(labels, "tolist"):  # a numpy array or tensor of names or numbers
        labels = labels.tolist()
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
        raise CnnvizError(f"labels must be a list of class names, got {short_repr(labels)}.")
    out = [str(label) for label in labels]
    repeated = [name for name, n in Counter(out).items() if n > 1]
    if repeated:
        where = "; ".join(f"{name!r} at outputs {', '.join(str(i) for i, l in enumerate(out) if l == name)}"
                          for name in repeated[:5])
        more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
        warn(f"labels repeat {len(repeated)} name{'s' if len(repeated) > 1 else ''} ({where}{more}): each is "
                      f"shown with its output index, e.g. {shown_labels(out)[out.index(repeated[0])]!r}, and found "
                      f"by that name or by index.", stacklevel=3)
    return out


def shown_labels(labels: list[str]) -> list[str]:
    """``labels`` as predictions show them: a name that more than one output has gets its index ('crane (517)')."""
    counts = Counter(labels)
    return [f"{name} ({i})" if counts[name] > 1 else name for i, name in enumerate(labels)]


def find_class(label: str, labels: list[str]) -> int:
    """The output index a class name gives: the one output of that exact name, or of that shown name ('crane (517)'),
    or the one whose name equals it but for case; a LabelNotFoundError where several fit (listing them) or none
    does (naming the closest)."""
    for names in (labels, shown_labels(labels)):
        hits = [i for i, name in enumerate(names) if name == label]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise _several(label, hits, labels)
    hits = [i for i, name in enumerate(labels) if name.casefold() == label.casefold()]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise _several(label, hits, labels)
    word = re.compile(rf"\b{re.escape(label.casefold())}\b")
    near = [l for l in labels if word.search(l.casefold())]  # 'cat': 'tiger cat', 'Persian cat', ...
    near += [l for l in labels if label.casefold() in l.casefold() and l not in near]
    near += [l for l in difflib.get_close_matches(label, labels, n=5, cutoff=0.6) if l not in near]
    hint = f" Close matches: {', '.join(repr(n) for n in near[:8])}." if near else ""
    raise LabelNotFoundError(f"No class is called {label!r}.{hint} probe.labels lists all {len(labels)}.")


def _several(label: str, hits: list[int], labels: list[str]) -> LabelNotFoundError:
    shown = shown_labels(labels)
    which = ", ".join(f"{shown[i]!r} (output {i})" for i in hits[:6])
    return LabelNotFoundError(f"{label!r} names {len(hits)} classes: {which}. Give the exact name shown, or the output "
                              f"index.")
