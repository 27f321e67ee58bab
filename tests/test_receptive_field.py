"""Receptive fields: the paper's Tables 1 and 2 exactly, and gradient support everywhere else."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnnviz_widgets as cv
from cnnviz_widgets.probe.receptive_field import ReceptiveField

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
