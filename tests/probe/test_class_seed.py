"""TopClassSeed: the output layer seeded with the top-1 class and the top-k read in the reconstruction's own forward
pass; what the explorer's strip and figure_layers share."""
from __future__ import annotations

import torch
from conftest import TinyNet
from torch import nn

import cnnviz_widgets as cv
from cnnviz_widgets.probe.reconstruct import TopClassSeed


def counting(probe: cv.Probe) -> list[int]:
    calls = [0]
    first = next(m for m in probe.model.modules() if isinstance(m, nn.Conv2d))
    first.register_forward_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_the_seed_is_the_top_1_class_read_in_the_same_forward_pass():
    torch.manual_seed(0)
    probe = cv.Probe(TinyNet().eval(), device="cpu", input_size=32)
    x = torch.rand(1, 3, 32, 32)
    out = probe.output_layer.name
    top = probe.classify(x, k=3)[0]
    calls = counting(probe)
    seed = TopClassSeed(probe, x, k=3)
    recs = probe.reconstruct(x, layers=["c2", out], on_forward=seed)
    assert calls[0] == 1  # one forward pass gave the scores and the seed
    assert seed.preds == top
    expected = probe.reconstruct(x, layers=out, channel=top[0][0])[out]
    assert torch.equal(recs[out], expected)
    assert torch.equal(recs["c2"], probe.reconstruct(x, layers="c2")["c2"])


def test_found_is_called_once_and_a_later_pass_reuses_the_classes():
    torch.manual_seed(1)
    probe = cv.Probe(TinyNet().eval(), device="cpu", input_size=32)
    x = torch.rand(1, 3, 32, 32)
    found = []
    seed = TopClassSeed(probe, x, on_found=lambda: found.append(1))
    out = probe.output_layer.name
    probe.reconstruct(x, layers=out, on_forward=seed)
    first = seed.preds
    probe.reconstruct(x, layers=["c1", out], on_forward=seed)
    assert found == [1] and seed.preds is first and len(first) == 5


def test_a_network_without_classes_is_seeded_with_its_own_activations():
    torch.manual_seed(2)
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3), nn.ReLU()).eval()
    probe = cv.Probe(backbone, device="cpu", input_size=16)
    x = torch.rand(1, 3, 16, 16)
    seed = TopClassSeed(probe, x)
    names = list(probe.layer_names)
    recs = probe.reconstruct(x, layers=names, on_forward=seed)
    assert seed.find() == []
    assert torch.equal(recs[names[-1]], probe.reconstruct(x, layers=names[-1])[names[-1]])
