"""The explorer's class evidence map: the top-1's, then the class picked in the top-5, laid over the input;
its layer, its opacity, and save() with it."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import cnnviz_widgets as cv
from cnnviz_widgets.display import heat, overlay


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.fixture(scope="module", autouse=True)
def exact_pictures():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNVIZ_PICTURES", "bmp")
        yield


@pytest.fixture(scope="module")
def explorer(alex_probe, photos):
    return cv.DeconvExplorer(alex_probe, photos[:2], show_map=True)


def test_the_map_is_off_until_asked_for(alex_probe, photos):
    """An image change costs one more pass for the map, so it starts off; a class picked, or the box, turns it on."""
    w = cv.DeconvExplorer(alex_probe, photos[:2])
    assert not w.show_map and w.class_map_png == b"" and w.class_map_for == {}
    w.show_map = True  # the box ticked: the top-1's map of the image shown
    top1 = w.predictions[0][2]
    assert w.class_map_for["index"] == top1 and w.class_map_png
    w.show_map = False
    assert w.class_map_png == b"" and w.class_map_for == {}
    w.show_class(7)  # a class picked: its map, and the box ticked
    assert w.class_map_for["index"] == 7 and w.show_map
    w.image_index = 1  # the next image shows its top-1's
    assert w.class_map_for["index"] == w.predictions[0][2] and w.class_map_png


def test_the_top1_map_lies_over_the_input(explorer, alex_probe, photos):
    x = alex_probe.preprocess(photos[0][1])
    (top1, label, _), *_ = alex_probe.classify(x, k=1)[0]
    assert explorer.class_map_for == {"index": top1, "label": label, "layer": "c5", "method": "gradcam"}
    want = alex_probe.class_map(x, layer="c5", target=top1)[0, 0].numpy()
    assert np.array_equal(explorer._class_map, want)
    assert np.array_equal(decode(explorer.class_map_png), heat(want))
    assert explorer.map_opacity == 0.5


def test_a_class_picked_gets_its_map(explorer, alex_probe, photos):
    x = alex_probe.preprocess(photos[0][1])
    explorer.show_class("espresso")
    c = alex_probe.class_index("espresso")
    assert explorer.class_map_for["label"] == "espresso" and explorer.selected["label"] == "espresso"
    assert np.array_equal(explorer._class_map, alex_probe.class_map(x, layer="c5", target=c)[0, 0].numpy())
    explorer.map_layer = "c3"  # another layer: the same class's map drawn again there
    assert explorer.class_map_for["layer"] == "c3" and explorer.class_map_for["label"] == "espresso"
    assert np.array_equal(explorer._class_map, alex_probe.class_map(x, layer="c3", target=c)[0, 0].numpy())
    explorer.map_layer = "fc7"  # no map there: said, no picture
    assert "has no spatial map" in explorer.class_map_for["error"] and explorer.class_map_png == b""
    explorer.map_layer = ""
    assert explorer.class_map_for["layer"] == "c5"


def test_save_includes_the_map_at_its_opacity(explorer, tmp_path):
    explorer.map_opacity = 0.8
    fig = explorer.to_figure()
    texts = [t.get_text() for t in fig.texts]
    f = explorer.class_map_for
    assert f"class map: {f['label']}" in texts and f"gradcam at {f['layer']}" in texts and "opacity 80%" in texts
    shown = [ax.get_images()[0].get_array() for ax in fig.axes if ax.get_images()]
    want = overlay(explorer._pictures[0], explorer._class_map, 0.8)
    assert any(np.array_equal(np.asarray(a), want) for a in shown)
    assert explorer.save(tmp_path / "explorer.png").stat().st_size > 1000
    with pytest.raises(Exception, match="map_opacity must be from 0 to 1"):
        explorer.map_opacity = 1.5


def test_a_backbone_without_class_scores_has_no_map(photos):
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3), nn.ReLU())
    w = cv.DeconvExplorer(cv.Probe(backbone, input_size=32), photos[:1])
    assert w.error == "" and w.class_map_png == b"" and w.class_map_for == {}
    assert "class map" not in " ".join(t.get_text() for t in w.to_figure().texts)
