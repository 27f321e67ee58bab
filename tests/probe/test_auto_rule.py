"""Issue 23, items 1 and 3: a first picture worth looking at.

- ``rule="auto"`` (the widgets' and figures' default): the deconvnet where max-pool switches lie below a layer
  (and before a network's first max-pool), guided elsewhere; VGG16 and both AlexNets look exactly as under the
  deconvnet; EfficientNet-Lite0's explorer opens on guided pictures; captions say which rule drew each picture.
- the effective receptive field (Luo et al. 2016), checked against a brute-force Jacobian; FilterGrid patches of
  layers whose field is wider than the picture are cropped to it and say so.
- figures: titles that never run into each other (measured by matplotlib's renderer), the full name kept in the
  SVG, and a field wider than the picture said as such.
"""
from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import torch
from torch import nn

import cnnviz_widgets as cv
from cnnviz_widgets.kernels.effective import effective_field, inside, smallest_box
from cnnviz_widgets.probe import rules
from cnnviz_widgets.probe.rules import RULES, ReverseRule, auto_rule, resolve_rule_for, rule_name


class NoPools(nn.Module):
    """Strided convs only (an EfficientNet in miniature): no max-pool anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
        )

    def forward(self, x):
        return self.features(x)


class Mixed(nn.Module):
    """Two branches, a max-pool in one only: "auto" draws the pooled branch by the deconvnet, the other by guided."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.b = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.c = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        ya = self.pool(torch.relu(self.a(x)))
        yb = torch.relu(self.b(x))
        return torch.relu(self.c(torch.cat([ya, yb], 1)))


def seeded(cls) -> nn.Module:
    torch.manual_seed(0)
    return cls().eval()


# ------------------------------------------------------------------ the rule


def test_auto_is_a_rule_name_everywhere_but_reconstruct_keeps_the_papers_default(tiny):
    import inspect

    assert rule_name("Auto") == "auto" and rule_name(None) == "deconvnet" and rule_name("guided") == "guided"
    with pytest.raises(cv.CnnvizError, match="use one of 'auto', 'deconvnet', 'guided', 'gradient'"):
        rule_name("saliency")
    assert inspect.signature(cv.Probe.reconstruct).parameters["rule"].default == "deconvnet"
    for f in (cv.DeconvExplorer, cv.FilterGrid, cv.CompareModels, cv.figure_layers, cv.figure_compare):
        assert inspect.signature(f).parameters["rule"].default == "auto", f


def test_auto_on_the_papers_networks_is_the_deconvnet_everywhere(vgg_probe, alex_probe):
    torchvision = pytest.importorskip("torchvision")
    alexnet = cv.Probe(torchvision.models.alexnet(weights=None), device="cpu")
    for probe in (vgg_probe, alex_probe, alexnet):
        assert not probe.layers[0].switches  # c1 (c1_1, c1_2) lie below the first max-pool...
        assert {auto_rule(l, probe).name for l in probe.layers} == {"deconvnet"}  # ...and are still the paper's


def test_auto_on_a_network_without_max_pools_is_guided_and_mixed_networks_get_both():
    probe = cv.Probe(seeded(NoPools), input_size=32, device="cpu")
    assert {auto_rule(l, probe).name for l in probe.layers} == {"guided"}
    mixed = cv.Probe(seeded(Mixed), input_size=16, device="cpu")
    # the recorder counts the max-pools run before a layer, so b (run after the pool) has switches
    assert {l.name: auto_rule(l, mixed).name for l in mixed.layers} == dict.fromkeys("a pool b c".split(), "deconvnet")
    # a layer past the first max-pool that none lies below (a branch that passes none) is guided
    b = dataclasses.replace(mixed.layer("b"), switches=False)
    assert auto_rule(b, mixed).name == "guided" and auto_rule(mixed.layer("a"), mixed).name == "deconvnet"
    assert rules.drawn_by("auto", probe.layers[-1], probe) == "guided (auto)"
    assert rules.drawn_by("guided", mixed.layer("b"), mixed) == "guided"
    assert rules.rule_words("auto", mixed.layers, mixed) == "auto: deconvnet"


def c_guided(monkeypatch):
    """"auto" draws Mixed's c by guided, every other layer by the deconvnet (where the two rules differ: rectifiers
    lie below c, none below the seeds of a and b)."""
    monkeypatch.setattr(rules, "auto_rule", lambda layer, probe: RULES["guided" if layer.name == "c" else "deconvnet"])


def test_words_for_mixed_rules(monkeypatch):
    c_guided(monkeypatch)
    mixed = cv.Probe(seeded(Mixed), input_size=16, device="cpu")
    assert rules.rule_words("auto", mixed.layers, mixed) == "auto: deconvnet for a, pool, b; guided for c"


@pytest.mark.parametrize("batched", [False, True])
def test_reconstruct_auto_is_each_layer_by_its_own_rule(batched, monkeypatch):
    c_guided(monkeypatch)
    probe = cv.Probe(seeded(Mixed), input_size=16, device="cpu")
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    seen, steps = [], []
    got = probe.reconstruct(x, rule="auto", batched=batched, on_forward=lambda acts: seen.append(sorted(acts)),
                            progress=lambda d, t: steps.append((d, t)))
    assert list(got) == list(probe.layer_names)
    assert seen == [sorted(probe.layer_names)]  # once, with every layer, before any backward pass
    assert steps[-1][0] == steps[-1][1]
    for l in probe.layers:
        ref = probe.reconstruct(x, layers=l.name, rule=resolve_rule_for("auto", l, probe).name)[l.name]
        torch.testing.assert_close(got[l.name], ref, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(got["c"], probe.reconstruct(x, layers="c", rule="deconvnet")["c"])
    unit = probe.reconstruct(x, layers="c", unit=(1, 2, 3), rule="auto")["c"]
    torch.testing.assert_close(unit, probe.reconstruct(x, layers="c", unit=(1, 2, 3), rule="guided")["c"])


def test_the_rule_selector_lists_auto_first_and_a_rule_registered_later(alex_probe, photos):
    class Identity(ReverseRule):
        name = "identity"
        title = "identity: the signal passes every rectifier unchanged"

        def backward(self, grad, saved):
            return grad

    RULES["identity"] = Identity()
    try:
        w = cv.DeconvExplorer(alex_probe, [photos[1]], layers=["c1", "c5"])
        assert [r[0] for r in w.rule_options] == ["auto", "deconvnet", "guided", "gradient", "identity"]
        assert w.rule == "auto" and w.error == ""
        assert w.drawn == ["deconvnet (auto)", "deconvnet (auto)"]
    finally:
        del RULES["identity"]


def test_the_papers_networks_look_exactly_as_today_under_auto(vgg_probe, alex_probe, photos):
    picture = [photos[2]]
    for probe, layers in ((vgg_probe, ["c1_1", "c1_2", "p1", "c3_1", "fc8"]), (alex_probe, None)):
        auto = cv.DeconvExplorer(probe, picture, layers=layers)
        paper = cv.DeconvExplorer(probe, picture, layers=layers, rule="deconvnet")
        assert auto.error == paper.error == ""
        assert auto.rule == "auto" and paper.rule == "deconvnet"
        assert auto.recs == paper.recs and auto.input_png == paper.input_png  # byte for byte
        for a, b in zip(auto._pictures, paper._pictures):
            assert np.array_equal(a, b)
        assert all(d == "deconvnet (auto)" for d in auto.drawn) and all(d == "deconvnet" for d in paper.drawn)
        names = auto.layer_names
        x = probe.preprocess([picture[0][1]])
        plain = [n for n in names if n != getattr(probe.output_layer, "name", None)]
        ours, ref = probe.reconstruct(x, layers=plain, rule="auto"), probe.reconstruct(x, layers=plain)
        assert all(torch.equal(ours[n], ref[n]) for n in plain)


# ------------------------------------------------------------------ the effective field


def brute_force_field(probe, x, layer, fraction):
    """The effective field from the whole Jacobian: every input pixel's |d unit / d pixel|, one autograd call per
    channel of the centre unit, summed; then every centred box tried, smallest first."""
    l = probe.layer(layer)
    h, w = l.shape[1:]
    cy, cx = h // 2, w // 2

    def centre_units(inp):
        return probe.forward(inp, [l])[l.name][:, :, cy, cx].sum(1)

    mass = torch.zeros(x.shape[2:], dtype=torch.float64)
    for n in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda inp: centre_units(inp), x[n : n + 1])  # (1, 1, 3, H, W)
        mass += jac.abs().sum(dim=(0, 1, 2)).double()
    rf = probe.receptive_field(l.name)
    row, col = rf.centre(cy, cx)
    total = float(mass.sum())
    for side in range(1, 4 * x.shape[-1]):
        top, left = math.floor(row - (side - 1) / 2 + 1e-9), math.floor(col - (side - 1) / 2 + 1e-9)
        held = float(mass[max(top, 0) : max(top + side, 0), max(left, 0) : max(left + side, 0)].sum())
        if held >= fraction * total * (1 - 1e-12):
            return side, top - cy * rf.stride, left - cx * rf.stride
    raise AssertionError("no box holds the mass")


@pytest.mark.parametrize("fraction", [0.5, 0.8, 0.95])
def test_effective_field_equals_a_brute_force_jacobian(fraction):
    torch.manual_seed(3)
    model = nn.Sequential(*[m for _ in range(4) for m in (nn.Conv2d(3, 3, 3, padding=1), nn.ReLU())]).eval()
    probe = cv.Probe(model, input_size=24, device="cpu")
    x = torch.randn(3, 3, 24, 24, generator=torch.Generator().manual_seed(4))
    layer = probe.layer_names[-1]
    with torch.enable_grad():
        side, oy, ox = brute_force_field(probe, x, layer, fraction)
    eff = effective_field(probe, x, layer, fraction)
    assert (eff.size, eff.offset_yx, eff.stride) == (side, (oy, ox), probe.receptive_field(layer).stride)
    assert eff.size <= probe.receptive_field(layer).size == 9
    assert effective_field(probe, x, layer, fraction) is eff  # measured once per layer and pictures


def test_smallest_box_and_moving_a_box_inside():
    mass = torch.zeros(9, 9, dtype=torch.float64)
    mass[4, 4] = 8.0
    mass[4, 6] = 2.0
    assert smallest_box(mass, (4.0, 4.0), 0.8) == (1, 4, 4)
    assert smallest_box(mass, (4.0, 4.0), 1.0) == (5, 2, 2)
    assert inside((-3, 5, 7, 15), 12, 12) == (0, 2, 10, 12)
    assert inside((-3, -3, 20, 20), 12, 12) == (-3, -3, 20, 20)  # wider than the picture: left alone
    with pytest.raises(cv.CnnvizError, match="fraction"):
        effective_field(cv.Probe(seeded(NoPools), input_size=32, device="cpu"), torch.zeros(1, 3, 32, 32), "features.4", 1.5)


def test_patches_of_small_fields_keep_the_theoretical_field(alex_probe, photos):
    top = cv.top_patches(alex_probe, [im for _, im in photos[:3]], "c3", k=2, progress=False)
    assert top.field_kind == "theoretical" and top.patch_field() == alex_probe.receptive_field("c3")
    assert top.patch(0, 0).shape[:2] == (alex_probe.receptive_field("c3").size,) * 2
    assert top.field_words().startswith("receptive field")


# ------------------------------------------------------------------ a real network: EfficientNet-Lite0


@pytest.fixture(scope="module")
def lite():
    pytest.importorskip("efficientnet_lite_pytorch")
    torchvision = pytest.importorskip("torchvision")
    from test_real_cnn import efficientnet_lite0

    labels = torchvision.models.VGG16_Weights.IMAGENET1K_V1.meta["categories"]
    return cv.Probe(efficientnet_lite0(), labels=labels, mean=(0.498,) * 3, std=(0.502,) * 3, device="cpu")


def test_lite0_explorer_opens_on_guided_pictures_that_follow_the_photo(lite, photos):
    w = cv.DeconvExplorer(lite, photos[:3])
    assert w.error == "" and w.rule == w.shown_rule == "auto"
    assert set(w.drawn) == {"guided (auto)"}
    deep = w.layer_names.index("_conv_head")
    first = w._pictures[1 + deep]
    w.image_index = 1
    assert w.shown_image == 1 and w.drawn[deep] == "guided (auto)"
    assert np.abs(first.astype(int) - w._pictures[1 + deep].astype(int)).mean() > 5  # another photo, another picture
    fig = w.to_figure()
    assert any("auto: guided" in t.get_text() for t in fig.texts)


def test_lite0_filter_grid_patches_at_the_head_are_photo_and_differ(lite, photos):
    w = cv.FilterGrid(lite, photos, layer="_conv_head", k=4, page_size=8)
    assert w.error == ""
    top = w.top
    side = lite.input_size
    assert lite.receptive_field("_conv_head").size > side  # 851 px on 224 px: the theoretical field is no crop
    assert top.field_kind == "effective"
    eff = top.patch_field()
    assert eff.size <= side and eff.stride == lite.receptive_field("_conv_head").stride
    assert "effective field" in w.field and "wider than the 224 px picture" in w.field
    tiles = []
    for c in w.sheet_filters:
        held = []
        for i in range(top.k):
            t, l, b, r = top.patch_box(*top.yx[c, i].tolist())
            held.append((min(b, side) - max(t, 0)) * (min(r, side) - max(l, 0)) / ((b - t) * (r - l)))
            assert top.patch(c, i).shape[:2] == (eff.size, eff.size)
        assert min(held) >= 0.8, (c, held)  # every patch of the tile is photo, not the grey frame
        tiles.append(cv.figures.filter_tile(top, c, w.per_row, w.cell))
    assert len({t.tobytes() for t in tiles}) == len(tiles)  # the filters' tiles differ
    fig = w.to_figure()
    assert any("(RF 851 px; eff. " in t.get_text() for t in fig.texts)


# ------------------------------------------------------------------ figures: titles and fields


def text_boxes(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(renderer)) for t in fig.texts if t.get_text()]


def overlaps(boxes):
    bad = []
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1 :]:
            if ba.x0 < bb.x1 - 0.5 and bb.x0 < ba.x1 - 0.5 and ba.y0 < bb.y1 - 0.5 and bb.y0 < ba.y1 - 0.5:
                bad.append((a, b))
    return bad


def test_long_titles_never_run_into_each_other():
    from cnnviz_widgets.figures import Sheet, layers_sheet, title_lines

    names = ["_blocks.3._depthwise_conv", "_blocks.8._depthwise_conv", "_blocks.15._project_conv", "_conv_head",
             "layer4.2.downsample.0.a_very_long_module_name_without_dots"]
    pictures = [[np.zeros((8, 8, 3), np.uint8)] * len(names)]
    for size in (64, 96, 112):
        fig = layers_sheet(pictures, [(n, "RF whole picture") for n in names], size=size, sheet=Sheet()).figure()
        assert overlaps(text_boxes(fig)) == []
        assert all(title_lines(n, size)[1] >= 9 for n in names)
    text, px = title_lines("_blocks.3._depthwise_conv", 112)
    assert "\n" in text and text.replace("\n", "") == "_blocks.3._depthwise_conv"


def test_figure_layers_on_lite0_titles_apart_and_wide_fields_said(lite, photos, tmp_path):
    layers = ["_blocks.3._depthwise_conv", "_blocks.8._depthwise_conv", "_conv_head"]
    fig = cv.figure_layers(lite, [photos[1]], layers=layers, rule="guided")
    boxes = text_boxes(fig)
    assert overlaps(boxes) == []
    texts = [t for t, _ in boxes]
    assert "RF whole picture" in texts  # _conv_head: 851 px on a 224 px picture
    assert not any(re.fullmatch(r"RF (\d+) px", t) and int(t.split()[1]) > lite.input_size for t in texts)
    assert "RF 35 px" in texts  # a field inside the picture keeps its number
    path = cv.save_figure(fig, tmp_path / "lite.svg")
    svg = path.read_text()
    for name in layers[:2]:  # wrapped on the figure, whole in the SVG's tooltip
        assert f"<title>{name}</title>" in svg
    auto = cv.figure_layers(lite, [photos[1]], layers=layers)
    assert any("(auto: guided)" in t.get_text() for t in auto.texts)


def test_field_label_says_a_field_wider_than_the_picture():
    from cnnviz_widgets.figures import field_label, field_words
    from cnnviz_widgets.probe.receptive_field import ReceptiveField

    wide, small = ReceptiveField(851, 32, -394), ReceptiveField(35, 8, -10)
    assert field_label(wide) == "RF 851 px" and field_label(None) == "RF ?"
    assert field_label(wide, 224) == "RF whole picture"  # 851 >= 2 * 224: a unit centred anywhere sees it all
    resnet_layer4 = ReceptiveField(243, 32, -121)  # wider than 224 px, but unit (0, 0) sees rows 0-121 only
    assert field_label(resnet_layer4, 224) == "RF 243 px > picture"
    assert field_label(wide, 224, ReceptiveField(143, 32, -50)) == "RF 851 px; eff. 143 px"
    assert field_label(wide, 224, ReceptiveField(224, 32, -50)) == "RF 851 px; eff. whole picture"
    assert field_label(small, 224) == "RF 35 px"
    assert field_words(wide, 224) == "RF 851 px, wider than the 224 px picture"


def test_the_rf_table_keeps_the_theoretical_field_and_says_the_effective_one(lite):
    plain = cv.ReceptiveFieldTable({"Lite0": lite})
    rows, eff = plain.rows[0], plain.effective[0]
    assert plain.error == "" and plain.input_sizes == [224] and len(eff) == len(rows)
    for (name, kind, size, stride), e in zip(rows, eff):
        assert size == lite.receptive_field(name).size  # Tables 1-2: the theoretical field
        assert e == "", name  # the effective field is measured only with images=: no claim without
    small = cv.Probe(seeded(NoPools), input_size=8, device="cpu")  # fields 3, 5, 9 px on an 8 px picture
    pictures = [np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8) for i in range(3)]
    t = cv.ReceptiveFieldTable({"small": small}, images=pictures)
    e = effective_field(small, small.preprocess(pictures), small.layer_names[-1])
    assert t.error == "" and [r[2] for r in t.rows[0]] == [3, 5, 9]
    assert t.effective[0] == ["", "", "whole picture" if e.size >= 8 else str(e.size)]
    texts = [x.get_text() for x in t.to_figure().texts]
    assert "effective (8 px picture)" in texts and t.effective[0][-1] in texts


def test_the_representation_space_crops_wide_fields_to_the_effective_one(lite, photos):
    space = cv.representation_space(lite, photos[:3], "_conv_head", n_patches=20, grid=3, seed=0)
    assert space.field_kind == "effective"
    eff = space.patch_field()
    assert eff.size <= lite.input_size and space.patch(0).shape == (eff.size, eff.size, 3)
    small = cv.representation_space(lite, photos[:3], "_blocks.3._depthwise_conv", n_patches=20, grid=3, seed=0)
    assert small.field_kind == "theoretical" and small.patch(0).shape[0] == lite.receptive_field(small.layer).size
    assert space.zoom(0, 0, 0.5, 0.5).patch_field() is eff  # measured once


def test_auto_draws_deep_layers_before_a_late_max_pool_by_guided():
    """The deconvnet below the first max-pool only where that pool closes a stem (VGG's first block, AlexNet's and
    ResNet's stems): six strided convs and then one pool (a pooling head) are drawn by guided, as with no pool."""
    from cnnviz_widgets.probe.rules import auto_rule

    convs = [m for i in range(6) for m in (nn.Conv2d(3 if i == 0 else 8, 8, 3, stride=2 if i < 3 else 1, padding=1),
                                           nn.ReLU())]
    probe = cv.Probe(nn.Sequential(*convs, nn.MaxPool2d(2), nn.Conv2d(8, 8, 1), nn.ReLU()), input_size=64,
                     device="cpu")
    assert [auto_rule(l, probe).name for l in probe.layers] == ["guided"] * 6 + ["deconvnet"] * 2
