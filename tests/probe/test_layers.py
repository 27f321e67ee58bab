"""Layer discovery and names: the paper's for plain chains, module paths otherwise."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

import cnnviz_widgets as cv
from cnnviz_widgets.probe.layers import paper_names

VGG_NAMES = ("c1_1", "c1_2", "p1", "c2_1", "c2_2", "p2", "c3_1", "c3_2", "c3_3", "p3", "c4_1", "c4_2", "c4_3",
             "p4", "c5_1", "c5_2", "c5_3", "p5", "fc6", "fc7", "fc8")
ALEX_NAMES = ("c1", "p1", "c2", "p2", "c3", "c4", "c5", "p5", "fc6", "fc7", "fc8")


def test_vgg16_names(vgg_probe):
    assert vgg_probe.layer_names == VGG_NAMES
    assert vgg_probe.is_chain
    kinds = {l.name: l.kind for l in vgg_probe.layers}
    assert kinds["c3_2"] == "conv" and kinds["p3"] == "pool" and kinds["fc7"] == "fc"
    assert vgg_probe.layer("c1_1").module_path == "features.0"
    assert vgg_probe.layer("features.28").name == "c5_3"
    assert vgg_probe.layer("c5_3").channels == 512 and vgg_probe.layer("fc6").channels == 4096
    assert vgg_probe.layer("p5").shape == (512, 7, 7)


def test_alexnet_names(alex_probe):
    assert alex_probe.layer_names == ALEX_NAMES
    assert [l.channels for l in alex_probe.layers[:8]] == [96, 96, 256, 256, 384, 384, 256, 256]
    tv = cv.Probe(cv.load_model("alexnet", weights=None))
    assert tv.layer_names == ALEX_NAMES


def test_vgg11_and_vgg16_bn_use_block_names():
    assert cv.Probe(torchvision.models.vgg11(weights=None)).layer_names[:6] == ("c1_1", "p1", "c2_1", "p2", "c3_1", "c3_2")
    assert cv.Probe(torchvision.models.vgg16_bn(weights=None)).layer_names == VGG_NAMES


def test_resnet_keeps_module_paths():
    probe = cv.Probe(torchvision.models.resnet18(weights=None), input_size=64)
    assert not probe.is_chain
    assert probe.layer_names[:3] == ("conv1", "maxpool", "layer1.0.conv1")
    assert probe.layer_names[-1] == "fc"
    assert probe.layer("layer1.0.conv1").rectified  # conv -> bn -> relu
    assert not probe.layer("layer1.0.conv2").rectified  # conv -> bn -> add -> relu: the add comes first


def test_unknown_layer_lists_valid_names(vgg_probe):
    x = vgg_probe.preprocess(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(cv.LayerNotFoundError) as err:
        vgg_probe.activations(x, layers=["c6_1"])
    msg = str(err.value)
    assert "'c6_1'" in msg and "c1_1" in msg and "fc8" in msg
    with pytest.raises(cv.LayerNotFoundError, match="names no layer"):
        vgg_probe.deconvnet(x, layers=[])
    with pytest.raises(KeyError):  # also a KeyError, for code that expects mapping semantics
        vgg_probe.layer("conv1")


def test_paper_names_rules():
    ev = [("conv", "a"), ("pool", "p"), ("conv", "b"), ("conv", "c"), ("pool", ""), ("conv", "d"), ("conv", "e"), ("fc", "f")]
    assert paper_names(ev) == {"a": "c1_1", "p": "p1", "b": "c2_1", "c": "c2_2", "d": "c3_1", "e": "c3_2", "f": "fc4"}
    single = [("conv", "a"), ("conv", "b"), ("fc", "f")]
    assert paper_names(single) == {"a": "c1", "b": "c2", "f": "fc3"}
    two_pools = [("conv", "a"), ("pool", "p"), ("pool", "q"), ("conv", "b"), ("pool", "r")]
    names = paper_names(two_pools)
    assert len(set(names.values())) == len(names)


def test_a_for_loop_with_skip_additions_is_not_a_plain_chain():
    """Residual blocks written as a loop over modules: paths, not cN names (nobody could find 'c7' in the code)."""
    from torch import nn

    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.blocks = nn.ModuleList(nn.Conv2d(8, 8, 3, padding=1) for _ in range(3))
            self.head = nn.Linear(8, 4)

        def forward(self, x):
            x = self.stem(x).relu()
            for block in self.blocks:
                x = x + block(x).relu()  # a skip addition
            return self.head(x.mean((2, 3)))

    probe = cv.Probe(Loop().eval(), input_size=16)
    assert not probe.is_chain and probe.layer_names == ("stem", "blocks.0", "blocks.1", "blocks.2", "head")


def test_swish_written_out_is_still_a_chain():
    """x * sigmoid(x) joins two tensors of the same layer: no branch, the paper's names stay."""
    from torch import nn

    class Swish(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(x)

    net = nn.Sequential(nn.Conv2d(3, 4, 3), Swish(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3), Swish(), nn.MaxPool2d(2))
    probe = cv.Probe(net.eval(), input_size=24)
    assert probe.is_chain and probe.layer_names == ("c1", "p1", "c2", "p2")
