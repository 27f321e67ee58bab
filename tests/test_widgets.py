"""Widgets through their synced state: what the kernels computed, sent as binary buffers; errors inside."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from ipywidgets.widgets.widget import _remove_buffers
from PIL import Image
from torch import nn

import cnnviz_widgets as cv


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.fixture(scope="module")
def explorer(alex_probe, photos):
    return cv.DeconvExplorer(alex_probe, photos[:3])


def test_explorer_traits_hold_the_kernels_results(explorer, alex_probe, photos):
    assert explorer.error == "" and not explorer.busy
    assert explorer.layer_names == list(alex_probe.layer_names)
    assert explorer.image_names == [n for n, _ in photos[:3]]
    assert explorer.layer in explorer.layer_names
    x = alex_probe.preprocess(photos[0][1])
    assert np.array_equal(decode(explorer.input_png), alex_probe.to_image(x)[0])
    recs = alex_probe.deconvnet(x)
    for name, png in zip(explorer.layer_names, explorer.recs):
        assert np.array_equal(decode(png), cv.to_display(recs[name][0])), name
    assert explorer.rf[explorer.layer_names.index("c2")] == [47, 8, alex_probe.receptive_field("c2").offset]
    assert explorer.grid[explorer.layer_names.index("p5")] == [6, 6]
    preds = alex_probe.predict(x, k=5)[0]
    assert [p[0] for p in explorer.predictions] == [p[0] for p in preds]


def test_state_travels_as_binary_buffers_not_base64(explorer):
    state = explorer.get_state()
    stripped, paths, buffers = _remove_buffers(state)
    assert ["input_png"] in paths and ["recs", 0] in paths and len(buffers) >= len(explorer.recs) + 1
    assert all(bytes(b[:8]) == b"\x89PNG\r\n\x1a\n" for b in buffers if len(b))
    import json

    text = json.dumps({k: v for k, v in stripped.items() if k != "_esm"})  # the module source travels once
    assert "iVBORw0KGgo" not in text  # no base64 PNG anywhere in the JSON part
    assert len(text) < 5000


def test_new_image_recomputes_and_click_reconstructs_a_unit(alex_probe, photos):
    w = cv.DeconvExplorer(alex_probe, photos[:3])
    first = list(w.recs)
    w.image_index = 2
    assert w.error == "" and w.recs != first and not w.busy
    x = alex_probe.preprocess(photos[2][1])
    assert np.array_equal(decode(w.input_png), alex_probe.to_image(x)[0])
    w.click = {"layer": "c3", "x": 112.0, "y": 100.0}
    layer, (c, gy, gx) = w.selected["layer"], w.selected["unit"]
    rf = alex_probe.receptive_field("c3")
    top, left, bottom, right = rf.box(gy, gx)
    assert layer == "c3" and top <= 100 < bottom and left <= 112 < right  # the unit under the pointer
    act = alex_probe.activations(x, ["c3"])["c3"][0, :, gy, gx]
    assert c == int(act.argmax())  # its strongest filter
    rec = alex_probe.deconvnet(x, layers="c3", unit=(c, gy, gx))["c3"][0]
    assert np.array_equal(decode(w.unit_png), cv.to_display(rec))
    w.show_unit("c5", (3, 1, 2))
    assert w.selected == {"layer": "c5", "unit": [3, 1, 2]}


def test_layer_trait_links_widgets(alex_probe, photos):
    import traitlets

    a = cv.DeconvExplorer(alex_probe, photos[:1])
    b = cv.ReceptiveFieldTable({"paper AlexNet": alex_probe})
    traitlets.link((a, "layer"), (b, "layer"))
    a.layer = "c5"
    assert b.layer == "c5"


@pytest.mark.parametrize("make,match", [
    (lambda p, ph: cv.DeconvExplorer(p, []), "no images given"),
    (lambda p, ph: cv.DeconvExplorer(p, ph[:1], layers=["c9"]), "No layer 'c9'"),
    (lambda p, ph: cv.DeconvExplorer(nn.Sequential(nn.Flatten(), nn.Linear(3, 2)), ph[:1]), "no torch.nn.Conv2d"),
    (lambda p, ph: cv.DeconvExplorer(p, ph[:1], image_index=5), "image_index=5 is out of range"),
    (lambda p, ph: cv.ReceptiveFieldTable({"x": "not a model"}), "needs a torch.nn.Module"),
])
def test_bad_input_sets_the_error_instead_of_raising(alex_probe, photos, make, match):
    import re

    w = make(alex_probe, photos)
    assert re.search(match, w.error), w.error
    assert not w.busy


def test_bad_image_index_from_the_browser(alex_probe, photos):
    w = cv.DeconvExplorer(alex_probe, photos[:2])
    w.image_index = 7
    assert "out of range" in w.error
    w.image_index = 1
    assert w.error == ""


def test_receptive_field_table_rows(vgg_probe, alex_probe):
    t = cv.ReceptiveFieldTable({"VGG16": vgg_probe, "AlexNet": alex_probe})
    assert t.models == ["VGG16", "AlexNet"]
    vgg = {r[0]: (r[2], r[3]) for r in t.rows[0]}
    assert vgg["c5_3"] == (196, 16) and vgg["p5"] == (212, 32) and "fc6" not in vgg
    assert [r[0] for r in t.rows[1]] == ["c1", "p1", "c2", "p2", "c3", "c4", "c5", "p5"]


def test_sparsity_chart_series(alex_probe, photos):
    s = cv.sparsity(alex_probe, photos[:2], progress=False)
    chart = cv.SparsityChart({"AlexNet": s, "AlexNet again": (alex_probe, photos[:2])})
    lines = [m for m in chart.figure.marks if type(m).__name__ == "Lines"]
    assert len(lines) == 2 and list(lines[0].y) == pytest.approx([s[n] for n in s])
    squares = [m for m in chart.figure.marks if getattr(m, "marker", "") == "square"]
    assert list(squares[0].names) == [n for n in s if n.startswith("p")]
    bad = cv.SparsityChart({"broken": (alex_probe, [])})
    assert "no images given" in bad.error.value
