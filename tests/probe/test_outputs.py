"""The output layer is what produces the output, conv heads included; a widget's pass never touches the cell's model.

Conv heads: DPN (a 1x1 conv on the pooled 1x1 map, then flattened) and SqueezeNet 1.1 (a 1x1 conv, ReLU, average
pool). Before, neither had an output layer, so classes had no names, and a class of the head was seeded with its
signed score: the gradient rule gave the class gradient times a negative number (cosine -1 with autograd).
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import cnnviz_widgets as cv
from cnnviz_widgets.errors import CnnvizWarning
from cnnviz_widgets.probe.hooks import hook_count


def logit_gradient(model: nn.Module, x: torch.Tensor, k: int) -> torch.Tensor:
    """torch.autograd.grad of class k's score of the user's own model: the independent oracle."""
    xi = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(model.eval()(xi)[:, k].sum(), xi)
    return g


class MaxHead(nn.Module):
    """A conv head pooled by its maximum: the class seed goes to each image's arg-max position."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 5, 1)

    def forward(self, x):
        return F.adaptive_max_pool2d(self.head(F.relu(self.c1(x))), 1).flatten(1)


@pytest.fixture(scope="module")
def squeezenet():
    torch.manual_seed(0)
    return torchvision.models.squeezenet1_1().eval()


@pytest.fixture(scope="module")
def dpn():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    return timm.create_model("dpn68", pretrained=False).eval()


@pytest.mark.parametrize("which, name, head", [("squeezenet", "classifier.1", "mean"), ("dpn", "classifier", "identity")])
def test_a_conv_head_is_the_output_layer_and_a_class_is_its_score_gradient(which, name, head, request):
    model = request.getfixturevalue(which)
    probe = cv.Probe(model, input_size=96, device="cpu")
    assert probe.output_layer is not None and probe.output_layer.name == name and probe._head == head
    assert probe.labels[7] == "cock" and probe.class_index("cock") == 7  # ImageNet's names: 1000 outputs
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    want = logit_gradient(model, x, 7)
    got = probe.reconstruct(x, layers=name, channel=7, rule="gradient")[name]
    cos = F.cosine_similarity(got.flatten(), want.flatten(), dim=0)
    assert cos > 0.9999 and torch.allclose(got, want, rtol=1e-4, atol=1e-6 * float(want.abs().max()))
    assert torch.equal(probe.reconstruct(x, layers=name, channel="cock", rule="gradient")[name], got)
    for rule in ("deconvnet", "guided"):  # a class seed of 1 (its score's derivative) under every rule
        r = probe.reconstruct(x, layers=name, channel=7, rule=rule)[name]
        assert torch.isfinite(r).all() and r.abs().sum() > 0
    # the top-5 read off the strip's own forward pass are the network's
    scores = probe.output_scores(probe.activations(x, [name])[name])
    assert torch.allclose(scores, model(x), rtol=1e-4, atol=1e-5)


def test_explorer_on_squeezenet_names_its_classes_and_the_bars_reconstruct_them(squeezenet, photos):
    probe = cv.Probe(squeezenet, input_size=96, device="cpu")
    w = cv.DeconvExplorer(probe, photos[:1], layers=["features.12.expand3x3", "classifier.1"])
    x = probe.preprocess(photos[0][1])
    preds = probe.classify(x, k=5)[0]
    assert w.error == "" and w.predictions == [[l, round(p, 4), c] for c, l, p in preds]
    assert all(l in probe.labels for l, _, _ in w.predictions)
    label, _, index = w.predictions[1]
    w._on_custom_msg(w, {"event": "class", "index": index}, [])  # a click on the second bar
    assert w.error == "" and w.selected == {"layer": "classifier.1", "channel": index, "label": label}


def test_a_max_pooled_head_seeds_the_arg_max(photos):
    torch.manual_seed(0)
    model = MaxHead().eval()
    probe = cv.Probe(model, input_size=32, device="cpu")
    assert probe.output_layer.module_path == "head" and probe._head == "max"  # named c2: a plain chain
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    got = probe.reconstruct(x, layers="head", channel=2, rule="gradient")["c2"]
    assert torch.allclose(got, logit_gradient(model, x, 2), rtol=1e-5, atol=1e-7)


def test_a_conv_head_that_is_not_pooled_plainly_is_no_output_layer():
    """A head whose output is some other function of the map (here a weighted sum) has no class seed we could
    compute right: no output layer, so no class is offered rather than a wrong one."""

    class Weighted(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 4, 3, padding=1)
            self.head = nn.Conv2d(4, 6, 1)
            self.w = nn.Parameter(torch.rand(1, 1, 16, 16))

        def forward(self, x):
            return (self.head(F.relu(self.c1(x))) * self.w).sum((2, 3))

    probe = cv.Probe(Weighted().eval(), input_size=16, device="cpu")
    assert probe.output_layer is None


# ---------------------------------------------------------------- a widget's pass and a cell's model

_ENTERED, _RELEASE = threading.Event(), threading.Event()


class _Gate(nn.Module):
    """Holds the probe's pass (run in another thread, as a widget job is) inside the forward until released."""

    def forward(self, x):
        if threading.current_thread() is not threading.main_thread():
            _ENTERED.set()
            _RELEASE.wait(20)
        return x


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.gate = _Gate()
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 16 * 16, 3)

    def forward(self, x):
        x = F.relu(self.c2(self.gate(F.relu(self.c1(x)))))
        return self.fc(x.flatten(1))


def test_a_cell_runs_its_model_plainly_while_a_widget_job_is_inside_its_forward():
    torch.manual_seed(0)
    model = _Net().train()
    probe = cv.Probe(model, input_size=16, device="cpu")
    x = torch.randn(1, 3, 16, 16)
    results: list = []
    job = threading.Thread(target=lambda: results.append(probe.activations(x, ["c1", "c2"])))
    _ENTERED.clear(), _RELEASE.clear()
    job.start()
    try:
        assert _ENTERED.wait(20), "the job never reached the gate"
        # the cell, while the job's pass is held inside the forward
        t = torch.randn(1, 4, 16, 16)
        assert model.training and model.c2.training  # the cell still sees its own flags
        assert hook_count(model) == 0
        assert torch.equal(model.c2(t), F.conv2d(t, model.c2.weight, model.c2.bias, padding=1))
    finally:
        _RELEASE.set()
        job.join(20)
    assert len(results) == 1
    c1 = F.relu(F.conv2d(x, model.c1.weight, model.c1.bias, padding=1))
    assert torch.allclose(results[0]["c2"], F.relu(F.conv2d(c1, model.c2.weight, model.c2.bias, padding=1)))


def test_weights_changed_in_place_are_seen_and_the_model_is_not_copied_in_memory(tiny):
    probe = cv.Probe(tiny, input_size=32, device="cpu")
    assert all(a is b for a, b in zip(probe.model.parameters(), tiny.parameters()))
    x = torch.randn(1, 3, 32, 32)
    before = probe.activations(x, ["c1"])["c1"]
    with torch.no_grad():
        tiny.features[0].weight.mul_(2)
        tiny.features[0].bias.mul_(2)
    assert torch.allclose(probe.activations(x, ["c1"])["c1"], 2 * before)


def test_a_model_that_cannot_be_copied_is_used_itself_with_a_warning():
    class Locked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lock = threading.Lock()  # deepcopy cannot copy a lock
            self.c = nn.Conv2d(3, 2, 3)

        def forward(self, x):
            return F.relu(self.c(x))

    model = Locked()
    with pytest.warns(CnnvizWarning, match="Locked cannot be copied"):
        probe = cv.Probe(model, input_size=8, device="cpu")
    assert probe.model is model
    assert probe.layer_names == ("c1",) and np.isfinite(probe.activations(torch.randn(1, 3, 8, 8))["c1"].numpy()).all()


def test_a_scaled_conv_head_is_judged_on_a_random_input_not_the_zero_one():
    """A bias-free 1x1 head on a pooled map, then scaled: on the probe's zero input the map and the output are both
    zero, which looked like an unscaled head (scores read off the strip were a third of the model's)."""

    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
            self.head = nn.Conv2d(4, 5, 1, bias=False)

        def forward(self, x):
            return self.head(F.adaptive_avg_pool2d(F.relu(self.c1(x)), 1)).flatten(1) * 3.0

    probe = cv.Probe(Scaled().eval(), input_size=16, device="cpu")
    assert probe.output_layer is None  # the output is no parameter-free function of the map: no class offered


def test_a_max_of_two_branches_is_no_rectifier_though_both_are_zero_on_the_zero_input():
    class Max(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3, bias=False), nn.Conv2d(3, 4, 3, bias=False)
            self.c = nn.Conv2d(4, 4, 3)

        def forward(self, x):
            return self.c(torch.max(self.a(x), self.b(x)))

    probe = cv.Probe(Max().eval(), input_size=16, device="cpu")
    assert not probe.layer("a").rectified and not probe.layer("b").rectified
    assert probe.activations(torch.randn(1, 3, 16, 16), ["a"])["a"].min() < 0  # the conv's own output
