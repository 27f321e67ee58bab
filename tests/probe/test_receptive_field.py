"""Receptive fields: the paper's Tables 1 and 2 exactly, and gradient support everywhere else."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import cnnviz_widgets as cv
from cnnviz_widgets.probe.receptive_field import ReceptiveField
from oracles import supports

TABLE1_VGG = {  # Yu et al., Table 1: layer -> (size, stride)
    "c1_1": (3, 1), "c1_2": (5, 1), "p1": (6, 2), "c2_1": (10, 2), "c2_2": (14, 2), "p2": (16, 4),
    "c3_1": (24, 4), "c3_2": (32, 4), "c3_3": (40, 4), "p3": (44, 8), "c4_1": (60, 8), "c4_2": (76, 8),
    "c4_3": (92, 8), "p4": (100, 16), "c5_1": (132, 16), "c5_2": (164, 16), "c5_3": (196, 16), "p5": (212, 32),
}
TABLE2_ALEX = {"c1": (11, 4), "p1": (15, 8), "c2": (47, 8), "p2": (55, 16), "c3": (87, 16), "c4": (119, 16),
               "c5": (151, 16), "p5": (167, 32)}


def test_vgg16_matches_table_1(vgg_probe):
    assert len(TABLE1_VGG) == 18
    got = {n: (vgg_probe.receptive_field(n).size, vgg_probe.receptive_field(n).stride) for n in TABLE1_VGG}
    assert got == TABLE1_VGG


def test_papers_alexnet_matches_table_2(alex_probe):
    assert len(TABLE2_ALEX) == 8
    got = {n: (alex_probe.receptive_field(n).size, alex_probe.receptive_field(n).stride) for n in TABLE2_ALEX}
    assert got == TABLE2_ALEX


def _same(a: ReceptiveField, b: ReceptiveField | None) -> bool:
    return b is not None and (a.size_yx, a.stride_yx, a.offset_yx) == (b.size_yx, b.stride_yx, b.offset_yx)


def test_alexnet_paper_every_layer_equals_gradient_support(alex_probe):
    names = [n for n in TABLE2_ALEX]
    measured = alex_probe.measure_receptive_fields(names)
    for n in names:
        assert _same(alex_probe.receptive_field(n), measured[n]), (n, alex_probe.receptive_field(n), measured[n])


def test_vgg16_offsets_equal_gradient_support(vgg_probe):
    names = ["c1_1", "p1", "c2_2", "c3_3", "p3", "c4_2"]
    measured = vgg_probe.measure_receptive_fields(names)
    for n in names:
        assert _same(vgg_probe.receptive_field(n), measured[n]), n
    assert vgg_probe.receptive_field("c1_1").offset == -1  # 3x3 conv, padding 1
    assert vgg_probe.receptive_field("c3_2").offset == -14


BRANCHING = [
    ("resnet18", 128, {}), ("googlenet", 128, {"aux_logits": False, "init_weights": True}),
    ("inception_v3", 160, {"aux_logits": False, "init_weights": True}), ("densenet121", 128, {}),
    ("mobilenet_v2", 128, {}), ("mobilenet_v3_small", 128, {}), ("shufflenet_v2_x0_5", 128, {}),
    ("squeezenet1_0", 128, {}), ("convnext_tiny", 128, {}), ("efficientnet_b0", 128, {}),
]


@pytest.mark.parametrize("name,size,kwargs", BRANCHING, ids=[b[0] for b in BRANCHING])
def test_branching_networks_equal_gradient_support(name, size, kwargs):
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    probe = cv.Probe(model, input_size=size)
    assert not probe.is_chain
    spatial = [l for l in probe.layers if l.kind != "fc" and not l.rf.is_global and l.rf.size <= 300]
    picks = spatial[:: max(1, len(spatial) // 5)][:6]
    measured = probe.measure_receptive_fields([l.name for l in picks])
    for layer in picks:
        assert _same(layer.rf, measured[layer.name]), (layer.name, layer.rf, measured[layer.name])


def test_inception_rectangular_fields():
    torch.manual_seed(0)
    model = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True).eval()
    probe = cv.Probe(model, input_size=160)
    rf = probe.receptive_field("Mixed_6b.branch7x7_2.conv")  # a 1x7 conv after a 1x1
    assert rf.size_yx[0] < rf.size_yx[1] and not rf.is_square
    measured = probe.measure_receptive_fields(["Mixed_6b.branch7x7_2.conv"])["Mixed_6b.branch7x7_2.conv"]
    assert _same(rf, measured)
    top, left, bottom, right = rf.square_box(3, 3)
    assert bottom - top == right - left == rf.size


def test_box_follows_the_contract():
    rf = ReceptiveField((32, 32), (4, 4), (-14, -14))
    assert rf.box(2, 5) == (-14 + 8, -14 + 20, -14 + 8 + 32, -14 + 20 + 32)
    assert rf.square_box(2, 5) == rf.box(2, 5)
    assert (rf.size, rf.stride, rf.offset) == (32, 4, -14)
    assert "size=32" in repr(rf)
    assert cv.ReceptiveField(size=32, stride=4, offset=-14) == rf  # DESIGN's form


def test_fully_connected_layers_see_the_whole_input(vgg_probe):
    rf = vgg_probe.receptive_field("fc7")
    assert rf.is_global and rf.size == vgg_probe.input_size


def test_dilated_and_strided_convs():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, dilation=2, padding=2), nn.ReLU(), nn.Conv2d(4, 4, 5, stride=3, padding="valid"),
                        nn.ReLU(), nn.AvgPool2d(3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding="same")).eval()
    probe = cv.Probe(net, input_size=64)
    measured = probe.measure_receptive_fields()
    assert probe.receptive_field("c1").size == 5
    for layer in probe.layers:
        assert _same(layer.rf, measured[layer.name]), layer.name


# ---------------------------------------------------------------- padding, upsampling, transposed convs, slicing

unit_supports = supports  # the oracle (tests/oracles.py)


def clipped(box, side):
    t, l, b, r = box
    return max(t, 0), max(l, 0), min(b, side), min(r, side)


class SamePadding(nn.Module):
    """TensorFlow-style 'same' convs: ZeroPad2d modules, F.pad, negative padding (a crop) and slicing."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, stride=2)
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.c2 = nn.Conv2d(4, 4, 5, stride=2)
        self.c3 = nn.Conv2d(4, 4, 3)
        self.c4 = nn.Conv2d(4, 4, 3, stride=2)
        self.c5 = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        x = F.relu6(self.c1(self.pad(x)))
        x = F.relu(self.c2(F.pad(x, (2, 2, 1, 3))))
        x = self.c3(F.pad(x, (1, 1, 1, 1), mode="reflect"))
        x = self.c4(F.pad(x, (-1, 0, -1, 0)))  # a crop
        return self.c5(x[:, :, 1:, ::2])  # rows from 1, every other column


def test_padding_and_slicing_are_traced_exactly():
    torch.manual_seed(0)
    net = SamePadding().eval()
    probe = cv.Probe(net, input_size=96)
    assert all(l.rf is not None for l in probe.layers)
    assert probe.receptive_field("c5").stride_yx == (8, 16)
    measured = probe.measure_receptive_fields()
    for layer in probe.layers:
        assert _same(layer.rf, measured[layer.name]), (layer.name, layer.rf, measured[layer.name])
    side = 96
    for layer in probe.layers:  # and every unit's support, not only two central ones (reflect pads differ at borders)
        for (y, x), support in unit_supports(net, layer.module_path, side, every=2).items():
            box = clipped(layer.rf.box(y, x), side)
            if layer.rf.box(y, x) == box:
                assert support == box, (layer.name, y, x)


class Decoder(nn.Module):
    """Down, then up again: transposed convs and every interpolation mode, so strides go below one pixel."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.up1 = nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1)
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")
        self.c3 = nn.Conv2d(4, 4, 3, padding=1)
        self.up3 = nn.ConvTranspose2d(4, 4, 3, stride=3, dilation=2)
        self.c4 = nn.Conv2d(4, 4, 3, padding=1)
        self.c5 = nn.Conv2d(4, 4, 3, stride=2)
        self.c6 = nn.Conv2d(4, 4, 3, padding=1)
        self.c7 = nn.Conv2d(4, 4, 3)

    def forward(self, x):
        x = F.relu(self.c2(F.relu(self.c1(x))))
        x = self.c3(self.up2(F.relu(self.up1(x))))
        x = self.c4(F.interpolate(self.up3(x), scale_factor=0.5, mode="bilinear", align_corners=False))
        x = self.c5(x)
        x = self.c6(F.interpolate(x, size=(x.shape[-2] * 3, x.shape[-1] * 3), mode="bicubic"))
        return self.c7(F.interpolate(x, scale_factor=1.5, mode="nearest-exact"))


def test_upsampling_and_transposed_convs_hold_every_units_support():
    torch.manual_seed(0)
    net = Decoder().eval()
    side = 48
    probe = cv.Probe(net, input_size=side)
    strides = {l.name: l.rf.stride for l in probe.layers}
    assert strides == {"c1": 2, "c2": 4, "c3": 1, "c4": Fraction(2, 3), "c5": Fraction(4, 3), "c6": Fraction(4, 9),
                       "c7": Fraction(8, 27)}, strides
    for layer in probe.layers:
        rf = layer.rf
        assert min(rf.stride_yx) > 0 and rf.size >= 3
        supports = unit_supports(net, layer.module_path, side, every=max(1, layer.shape[1] // 9))
        for (y, x), support in supports.items():
            box = clipped(rf.box(y, x), side)
            assert box[0] <= support[0] and box[1] <= support[1] and support[2] <= box[2] and support[3] <= box[3], \
                (layer.name, (y, x), support, rf.box(y, x))
        # no wider than it must be: within one input cell of the widest unit's support
        widest = max(s[2] - s[0] for (y, x), s in supports.items() if clipped(rf.box(y, x), side) == rf.box(y, x))
        assert rf.size <= widest + 2 * max(1, math.ceil(rf.stride)) + 4, (layer.name, rf, widest)


def test_an_op_the_tracer_cannot_follow_leaves_only_those_fields_out(photos):
    class Rolled(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.c3 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3)
            self.fc = nn.Linear(4, 5)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.c1(x)), 2)
            x = torch.roll(F.relu(self.c2(x)), 3, dims=-1)  # moves values between positions
            return self.fc(F.adaptive_avg_pool2d(F.relu(self.c3(x)), 1).flatten(1))

    torch.manual_seed(0)
    probe = cv.Probe(Rolled().eval(), input_size=32)
    assert probe.receptive_field("c1") is not None and probe.receptive_field("c2") is not None
    assert probe.receptive_field("c3") is None  # not a wrong field: none
    assert probe.receptive_field("fc4").is_global
    with pytest.raises(cv.UnsupportedModelError, match=r"Layer 'c3' has no receptive field: Rolled moves values between positions on the way to it \(roll\)"):
        cv.top_patches(probe, photos[:2], "c3", k=2, progress=False).patch(0, 0)
    assert cv.top_patches(probe, photos[:2], "c2", k=2, progress=False).patch(0, 0).shape == (8, 8, 3)
    rec = probe.reconstruct(probe.preprocess(photos[0][1]), layers="c3", rule="guided")["c3"]
    assert rec.abs().sum() > 0  # reconstructions need no field
    explorer = cv.DeconvExplorer(probe, photos[:2])
    assert explorer.error == "" and explorer.rf[2] == [] and len(explorer.recs) == 4
    explorer.show_unit_at("c3", x=31.0, y=0.0)  # no field: the unit at the same place of the map
    assert explorer.selected["unit"][1:] == [0, 13] and explorer.error == ""
    grid = cv.FilterGrid(probe, photos[:2], k=2)
    assert grid.error == "" and grid.layer == "c2" and "c3" not in grid.layer_names
    assert grid.note == "1 layer(s) have no receptive field, so no patches: c3"
    grid_c3 = cv.FilterGrid(probe, photos[:2], layer="c3", k=2)
    assert "Layer 'c3' has no receptive field" in grid_c3.error
    emap = cv.EmbeddingMap(probe, photos[:2], layer="c3", n_patches=50, grid=4)
    assert "Layer 'c3' has no receptive field" in emap.error
    table = cv.ReceptiveFieldTable({"rolled": probe})
    assert table.error == "" and table.rows[0][2] == ["c3", "conv", "?", "?"]


def test_transposed_conv_strides_are_never_zero():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 4, 2, stride=2), nn.Conv2d(4, 4, 3)).eval()
    probe = cv.Probe(net, input_size=20)
    rf = probe.receptive_field(probe.layer_names[-1])
    assert rf.stride == Fraction(1, 2) and rf.size_yx == (Fraction(9, 2),) * 2 and rf.offset == Fraction(-1, 2)
    assert rf.box(0, 0) == (-1, -1, 4, 4) and rf.box(1, 1) == (0, 0, 5, 5)  # half-pixel steps, rounded outwards
    assert rf.size == 6  # the square crop that holds any unit's box, whichever way it rounds
    assert repr(rf) == "ReceptiveField(size=9/2, stride=1/2, offset=-1/2)"


def test_a_conv_output_changed_in_place_keeps_its_field():
    """``y = conv(x); y += x`` (pre-activation ResNets): the probe keeps a copy of the conv's output, and
    that copy has the conv's field."""

    class PreAct(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.c3 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3)

        def forward(self, x):
            x = self.c1(x)
            y = self.c2(x)
            y += x
            return self.c3(F.relu(y))

    probe = cv.Probe(PreAct().eval(), input_size=24)
    measured = probe.measure_receptive_fields()
    for layer in probe.layers:
        assert layer.rf is not None and _same(layer.rf, measured[layer.name]), layer.name


def test_the_oracle_declines_fractional_fields():
    net = nn.Sequential(nn.Conv2d(3, 4, 4, stride=4), nn.Conv2d(4, 4, 4, stride=4), nn.ConvTranspose2d(4, 4, 3, stride=3),
                        nn.Conv2d(4, 4, 3)).eval()
    probe = cv.Probe(net, input_size=64)
    assert probe.receptive_field("c3").stride == Fraction(16, 3)
    assert probe.measure_receptive_fields(["c3"], max_side=256)["c3"] is None  # not measurable: no whole-pixel stride
