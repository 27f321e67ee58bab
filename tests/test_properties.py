"""Property tests (hypothesis) over random pictures and random argument values: every call returns
finite, correctly shaped results or raises a CnnvizError whose message names the bad value; never
another exception type, never a hang."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import cnnviz_widgets as cv
from cnnviz_widgets.errors import short_repr

from conftest import TinyNet

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow], derandomize=True)


@pytest.fixture(scope="module")
def probe() -> cv.Probe:
    torch.manual_seed(0)
    return cv.Probe(TinyNet().eval(), input_size=32)


@pytest.fixture(scope="module")
def two_photos():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)]


DTYPES = [np.uint8, np.uint16, np.int16, np.int32, np.int64, np.float32, np.float64, np.bool_]


@st.composite
def pictures(draw):
    """Arrays and tensors of any dtype, layout, size and range, with NaN or infinities now and then."""
    dtype = draw(st.sampled_from(DTYPES))
    h, w = draw(st.integers(0, 24)), draw(st.integers(0, 24))
    channels = draw(st.sampled_from([None, 1, 2, 3, 4, 5]))
    shape = (h, w) if channels is None else (h, w, channels)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if dtype == np.bool_:
        a = rng.random(shape) > 0.5
    elif np.issubdtype(dtype, np.integer):
        hi = draw(st.sampled_from([1, 255, 4095, 65535, 70000]))
        lo = draw(st.sampled_from([0, 0, 0, -3]))
        info = np.iinfo(dtype)
        a = rng.integers(max(lo, info.min), min(hi, info.max) + 1, shape).astype(dtype)
    else:
        scale = draw(st.sampled_from([1.0, 1.0, 255.0, -1.0]))
        a = (rng.random(shape) * scale).astype(dtype)
        if a.size and draw(st.booleans()) and draw(st.booleans()):
            a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if draw(st.booleans()):  # as a torch tensor, channels first
        t = torch.from_numpy(np.ascontiguousarray(a))
        return t.permute(2, 0, 1) if t.ndim == 3 else t
    return a


def _names_the_picture(msg: str, pic) -> bool:
    return (str(tuple(pic.shape)) in msg or "spans [" in msg or "NaN or infinite" in msg) and "image" in msg


@SETTINGS
@given(pic=pictures())
def test_any_picture_is_preprocessed_or_refused_by_name(probe, pic):
    try:
        x = probe.preprocess(pic)
    except cv.CnnvizError as exc:
        assert _names_the_picture(str(exc), pic), str(exc)
        event("refused")
        return
    event("computed")
    assert x.shape == (1, 3, 32, 32) and torch.isfinite(x).all()
    seen = probe.to_image(x)
    assert seen.dtype == np.uint8 and seen.shape == (1, 32, 32, 3)


BAD = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True), st.text(max_size=3), st.integers(-3, 0),
                st.lists(st.integers(-2, 3), max_size=3), st.just(np.int64(-1)))


def _values(usual):
    """Mostly (4 in 5) values of the usual kind, sometimes anything at all."""
    return st.integers(0, 4).flatmap(lambda i: BAD if i == 0 else usual)


def _names_an_argument(msg: str, kwargs: dict) -> bool:
    return any(f"{n} " in msg or f"{n}=" in msg or short_repr(v) in msg for n, v in kwargs.items())


@SETTINGS
@given(k=_values(st.integers(1, 2000)), batch_size=_values(st.integers(1, 3)),
       num_workers=_values(st.sampled_from([0, np.int64(0)])),
       indices=st.one_of(st.none(), st.none(), _values(st.lists(st.integers(-1, 2), max_size=3))),
       layer=_values(st.sampled_from(["c1", "p2", "c3", "fc5", "conv9"])))
def test_top_patches_with_any_arguments(probe, two_photos, k, batch_size, num_workers, indices, layer):
    kwargs = dict(k=k, batch_size=batch_size, num_workers=num_workers, indices=indices, layer=layer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k capped: said by a warning, checked in test_reliability
        try:
            top = cv.top_patches(probe, two_photos, progress=False, **kwargs)
        except cv.CnnvizError as exc:
            assert _names_an_argument(str(exc), kwargs), str(exc)
            event("refused")
            return
    event("computed")
    n = len(set(indices)) if isinstance(indices, list) else 2
    per_picture = top.grid_hw[0] * top.grid_hw[1]
    # k is capped by the units of the whole set (so shards merge); a shard leaves the rest empty
    assert top.k == min(int(k), 2 * per_picture) and top.values.shape == (probe.layer(top.layer).channels, top.k)
    kept = top.image_index >= 0
    assert torch.isfinite(top.values[kept]).all() and torch.isinf(top.values[~kept]).all()
    assert (kept.sum(1) == min(top.k, n * per_picture)).all()


SELECTORS = st.sampled_from(["none", "channel", "unit", "both"]).flatmap(lambda kind: st.fixed_dictionaries({
    "channel": _values(st.integers(-1, 12)) if kind in ("channel", "both") else st.none(),
    "unit": _values(st.tuples(st.integers(-1, 8), st.integers(-1, 20), st.integers(-1, 20)))
    if kind in ("unit", "both") else st.none()}))


@SETTINGS
@given(layers=_values(st.sampled_from([None, "c2", ["c1", "fc5"], "p9", [], ["c2", "c2"]])), selector=SELECTORS,
       rule=_values(st.sampled_from(["deconvnet", "guided", "gradient", "Guided", "lrp"])))
def test_reconstruct_with_any_arguments(probe, two_photos, layers, selector, rule):
    x = probe.preprocess(two_photos)
    kwargs = dict(layers=layers, rule=rule, **selector)
    try:
        out = probe.reconstruct(x, **kwargs)
    except cv.CnnvizError as exc:
        msg = str(exc)
        assert _names_an_argument(msg, kwargs) or "Pass either channel= or unit=" in msg or "class" in msg, msg
        event("refused")
        return
    event("computed")
    assert out and all(r.shape == x.shape and torch.isfinite(r).all() for r in out.values())
