"""Reverse rules: guided backprop and the gradient against Captum (VGG16) and against explicit
implementations written here (ResNet-18's reused in-place ReLUs, MobileNetV2's ReLU6, where Captum
cannot follow); class targets by index and by label; the rule as one object."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import cnnviz_widgets as cv
from cnnviz_widgets.probe.rules import RULES, ReverseRule, resolve_rule


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


@pytest.fixture(scope="module")
def x_vgg(vgg_probe, photos):
    return vgg_probe.preprocess(dict(photos)["chelsea"])


def captum_twin(model: nn.Module) -> nn.Module:
    """Captum hooks ReLU modules and refuses in-place ones: an out-of-place twin, same weights."""
    twin = copy.deepcopy(model).eval()
    for m in twin.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return twin


# ---------------------------------------------------------------- Captum on VGG16

@pytest.mark.parametrize("name,module_index", [("c2_1", 6), ("c4_3", 22), ("p5", 30)])
def test_single_units_equal_captum_guided_backprop_and_gradient(vgg_probe, x_vgg, name, module_index):
    from captum.attr import NeuronGradient, NeuronGuidedBackprop

    act = vgg_probe.activations(x_vgg, [name])[name]
    c, y, xx = (int(v) for v in torch.nonzero(act[0] == act[0].max())[0])
    value = float(act[0, c, y, xx])
    assert value > 0
    twin = captum_twin(vgg_probe.model)
    layer = twin.features[module_index]
    guided = NeuronGuidedBackprop(twin, layer).attribute(x_vgg.clone(), neuron_selector=(c, y, xx))
    grad = NeuronGradient(twin, layer).attribute(x_vgg.clone().requires_grad_(True), neuron_selector=(c, y, xx))
    ours_guided = vgg_probe.reconstruct(x_vgg, layers=name, unit=(c, y, xx), rule="guided")[name]
    ours_grad = vgg_probe.reconstruct(x_vgg, layers=name, unit=(c, y, xx), rule="gradient")[name]
    assert rel_err(ours_guided, value * guided) < 1e-5  # up to the seed's scale: ours seeds the unit's value
    assert rel_err(ours_grad, value * grad) < 1e-5
    assert rel_err(ours_guided, ours_grad) > 0.05  # the rules really differ


def test_class_targets_equal_captum_guided_backprop_and_saliency(vgg_probe, x_vgg):
    from captum.attr import GuidedBackprop, Saliency

    twin = captum_twin(vgg_probe.model)
    for c in (281, 7):  # tabby cat and an arbitrary class: class targets are seeded with 1, whatever the score's sign
        guided = GuidedBackprop(twin).attribute(x_vgg.clone(), target=c)
        saliency = Saliency(twin).attribute(x_vgg.clone(), target=c, abs=False)
        assert rel_err(vgg_probe.reconstruct(x_vgg, layers="fc8", channel=c, rule="guided")["fc8"], guided) < 1e-5
        assert rel_err(vgg_probe.reconstruct(x_vgg, layers="fc8", channel=c, rule="gradient")["fc8"], saliency) < 1e-5
        assert rel_err(vgg_probe.reconstruct(x_vgg, layers="fc8", unit=(c, 0, 0), rule="guided")["fc8"], guided) < 1e-5


def test_deconvnet_is_the_default_and_equals_reconstruct(vgg_probe, x_vgg):
    a = vgg_probe.deconvnet(x_vgg, layers=["c3_3", "fc8"], channel=3)
    b = vgg_probe.reconstruct(x_vgg, layers=["c3_3", "fc8"], channel=3)
    c = vgg_probe.reconstruct(x_vgg, layers=["c3_3", "fc8"], channel=3, rule="deconvnet")
    assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]) for k in a)


def test_batched_and_layer_by_layer_agree_for_every_rule(alex_probe, photos):
    x = alex_probe.preprocess([img for _, img in photos[:2]])
    for rule in RULES:
        one = alex_probe.reconstruct(x, layers=["c2", "c5", "fc8"], rule=rule)
        together = alex_probe.reconstruct(x, layers=["c2", "c5", "fc8"], rule=rule, batched=True)
        assert all(rel_err(together[k], one[k]) < 1e-5 for k in one), rule


# ---------------------------------------------------------------- explicit implementations where Captum cannot follow

class ExplicitRectifier(nn.Module):
    """A rectifier module with the rule written out: guided = relu(grad) * (input > 0), gradient = autograd's."""

    def __init__(self, fn, rule: str) -> None:
        super().__init__()
        self.fn, self.rule = fn, rule

    def forward(self, x):
        return _Guided.apply(x, self.fn) if self.rule == "guided" else self.fn(x)


class _Guided(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, fn):
        ctx.save_for_backward(x)
        return fn(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.where((g > 0) & (x > 0), g, torch.zeros_like(g)), None


def explicit_twin(model: nn.Module, rule: str) -> nn.Module:
    """``model`` with every ReLU / ReLU6 module (ResNet reuses one per block, in place) swapped for an explicit one."""
    twin = copy.deepcopy(model).eval()
    for parent in list(twin.modules()):
        for key, child in parent.named_children():
            if isinstance(child, nn.ReLU6):
                setattr(parent, key, ExplicitRectifier(F.relu6, rule))
            elif isinstance(child, nn.ReLU):
                setattr(parent, key, ExplicitRectifier(F.relu, rule))
    return twin


def explicit_unit(twin: nn.Module, x: torch.Tensor, module: str, unit, value: float) -> torch.Tensor:
    """value * d(output of ``module`` at ``unit``)/dx, through the explicit twin."""
    seen = {}
    handle = twin.get_submodule(module).register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    try:
        xi = x.clone().requires_grad_(True)
        twin(xi)
        (g,) = torch.autograd.grad(seen["out"][(0, *unit)], xi)
    finally:
        handle.remove()
    return value * g


# (network, probe layer, module whose output the explicit twin reads there: the layer's own output when
# no rectifier follows it directly, else the pre-rectifier batch norm, which the seed's positive value
# crosses unchanged under both rules)
EXPLICIT = [
    ("resnet18", "layer2.1.conv2", "layer2.1.conv2"),  # conv -> bn -> += identity -> reused relu_: not rectified
    ("resnet18", "layer3.0.conv1", "layer3.0.bn1"),    # conv -> bn -> the block's reused in-place ReLU
    ("mobilenet_v2", "features.4.conv.1.0", "features.4.conv.1.1"),  # depthwise conv -> bn -> ReLU6(inplace)
    ("mobilenet_v2", "features.6.conv.2", "features.6.conv.2"),  # linear bottleneck, then a residual add
]


@pytest.fixture(scope="module")
def families():
    torch.manual_seed(0)
    nets = {}
    for name in ("resnet18", "mobilenet_v2"):
        model = torchvision.models.get_model(name, weights=None).eval()
        with torch.no_grad():  # non-trivial batch-norm statistics, so signs are mixed
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
        nets[name] = (model, cv.Probe(model, input_size=112))
    return nets


@pytest.mark.parametrize("net,layer,module", EXPLICIT, ids=[f"{e[0]}-{e[1]}" for e in EXPLICIT])
@pytest.mark.parametrize("rule", ["guided", "gradient"])
def test_units_equal_an_explicit_implementation(families, net, layer, module, rule):
    model, probe = families[net]
    torch.manual_seed(1)
    x = torch.randn(1, 3, 112, 112)
    act = probe.activations(x, [layer])[layer]
    c, y, xx = (int(v) for v in torch.nonzero(act[0] == act[0].max())[0])
    value = float(act[0, c, y, xx])
    assert value > 0
    ours = probe.reconstruct(x, layers=layer, unit=(c, y, xx), rule=rule)[layer]
    ref = explicit_unit(explicit_twin(model, rule), x, module, (c, y, xx), value)
    assert rel_err(ours, ref) < 1e-5, (rule, layer)
    assert ref.abs().sum() > 0


@pytest.mark.parametrize("net", ["resnet18", "mobilenet_v2"])
def test_class_targets_equal_an_explicit_implementation(families, net):
    model, probe = families[net]
    torch.manual_seed(2)
    x = torch.randn(2, 3, 112, 112)
    out = probe.output_layer
    assert out is not None and out.module_path in ("fc", "classifier.1")
    for rule in ("guided", "gradient"):
        twin = explicit_twin(model, rule)
        xi = x.clone().requires_grad_(True)
        (ref,) = torch.autograd.grad(twin(xi)[:, 17].sum(), xi)
        ours = probe.reconstruct(x, layers=out.name, channel=17, rule=rule)[out.name]
        assert rel_err(ours, ref) < 1e-5, rule


def test_captum_silently_falls_back_where_ours_does_not(families):
    """What the issue measured: Captum rewrites nn.ReLU only, so on ReLU6 networks its GuidedBackprop is the
    plain gradient; ours differs from the gradient there."""
    from captum.attr import GuidedBackprop

    model, probe = families["mobilenet_v2"]
    x = torch.randn(1, 3, 112, 112)
    captum = GuidedBackprop(copy.deepcopy(model)).attribute(x.clone(), target=3)
    gradient = probe.reconstruct(x, layers=probe.output_layer.name, channel=3, rule="gradient")[probe.output_layer.name]
    guided = probe.reconstruct(x, layers=probe.output_layer.name, channel=3, rule="guided")[probe.output_layer.name]
    assert rel_err(captum, gradient) < 1e-5 and rel_err(guided, gradient) > 0.1


# ---------------------------------------------------------------- classes by label

def test_a_class_by_label_equals_the_class_by_index(vgg_probe, x_vgg):
    assert vgg_probe.labels[967] == "espresso" and vgg_probe.class_index("espresso") == 967
    for rule in RULES:
        by_name = vgg_probe.reconstruct(x_vgg, layers="fc8", channel="espresso", rule=rule)["fc8"]
        by_index = vgg_probe.reconstruct(x_vgg, layers="fc8", channel=967, rule=rule)["fc8"]
        assert torch.equal(by_name, by_index), rule
    assert vgg_probe.class_index("Espresso") == 967  # case does not matter
    assert torch.equal(vgg_probe.deconvnet(x_vgg, layers="fc8", channel="tabby")["fc8"],
                       vgg_probe.deconvnet(x_vgg, layers="fc8", channel=281)["fc8"])


def test_unknown_or_misplaced_class_names_say_what_to_do(vgg_probe, x_vgg, tiny):
    with pytest.raises(cv.LabelNotFoundError, match=r"No class is called 'espreso'\. Close matches: 'espresso'") as e:
        vgg_probe.reconstruct(x_vgg, layers="fc8", channel="espreso")
    assert isinstance(e.value, cv.CnnvizError)
    with pytest.raises(cv.LabelNotFoundError, match="Close matches: 'tiger cat', 'Persian cat', 'Siamese cat', 'Egyptian cat'"):
        vgg_probe.class_index("cat")
    with pytest.raises(cv.IndexOutOfRangeError, match="picks a class of the output layer 'fc8', not a filter of 'c4_3'"):
        vgg_probe.reconstruct(x_vgg, layers="c4_3", channel="espresso")
    small = cv.Probe(tiny, input_size=32)  # 10 outputs, no names
    with pytest.raises(cv.IndexOutOfRangeError, match="no class names.*pass labels= to Probe, or a class index 0 to 9"):
        small.reconstruct(torch.zeros(1, 3, 32, 32), layers="fc5", channel="cat")
    named = cv.Probe(tiny, input_size=32, labels=[f"thing{i}" for i in range(10)])
    assert torch.equal(named.reconstruct(torch.ones(1, 3, 32, 32), layers="fc5", channel="thing3", rule="guided")["fc5"],
                       named.reconstruct(torch.ones(1, 3, 32, 32), layers="fc5", channel=3, rule="guided")["fc5"])


def test_the_output_layer_is_the_class_scores():
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 6), nn.ReLU())
    probe = cv.Probe(backbone, input_size=16)
    assert probe.output_layer is None  # its last layer is rectified: features, not class scores
    with pytest.raises(cv.UnsupportedModelError, match="does not end in class scores"):
        probe.class_index("cat")


# ---------------------------------------------------------------- the rule as one object

def test_rules_are_one_registry_and_bad_names_are_named(tiny):
    assert list(RULES) == ["deconvnet", "guided", "gradient"]
    assert all(isinstance(r, ReverseRule) and r.title for r in RULES.values())
    assert resolve_rule(None).name == "deconvnet" and resolve_rule("Guided") is RULES["guided"]
    probe = cv.Probe(tiny, input_size=32)
    with pytest.raises(cv.CnnvizError, match="rule='saliency' is not a reverse rule; use one of 'auto', 'deconvnet', 'guided', 'gradient'"):
        probe.reconstruct(torch.zeros(1, 3, 32, 32), rule="saliency")


def test_a_new_rule_is_one_small_class(tiny):
    class Identity(ReverseRule):  # passes the signal through every rectifier unchanged
        name = "identity"
        title = "identity"

        def backward(self, grad, saved):
            return grad

    probe = cv.Probe(tiny, input_size=32)
    x = torch.randn(1, 3, 32, 32)
    ours = probe.reconstruct(x, layers="c1", unit=(2, 5, 5), rule=Identity())["c1"]
    conv = tiny.features[0]
    xi = x.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(conv(xi)[0, 2, 5, 5], xi)  # no rectifier below the seed's own
    act = probe.activations(x, ["c1"])["c1"][0, 2, 5, 5]
    assert rel_err(ours, float(act) * ref) < 1e-6


def test_guided_saves_the_forward_sign_under_in_place_rectifiers():
    """The mask is taken before an in-place rectifier overwrites its input (functional, module, relu_)."""
    torch.manual_seed(0)
    conv1, conv2 = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1)

    class InPlace(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = conv1, conv2

        def forward(self, x):
            x = self.c1(x)
            x.relu_()
            return F.relu(self.c2(x), inplace=True)

    class OutOfPlace(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.r1, self.r2 = conv1, conv2, nn.ReLU(), nn.ReLU()

        def forward(self, x):
            return self.r2(self.c2(self.r1(self.c1(x))))

    x = torch.randn(2, 3, 12, 12)
    a = cv.Probe(InPlace().eval(), input_size=12).reconstruct(x, rule="guided")
    b = cv.Probe(OutOfPlace().eval(), input_size=12).reconstruct(x, rule="guided")
    twin = explicit_twin(OutOfPlace().eval(), "guided")
    for name in ("c1", "c2"):
        assert torch.allclose(a[name], b[name], atol=1e-7), name
    act = cv.Probe(OutOfPlace().eval(), input_size=12).activations(x, ["c2"])["c2"]
    xi = x.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(twin(xi), xi, grad_outputs=act)
    assert rel_err(b["c2"], ref) < 1e-6
