"""Every op that acts as a rectifier is one (activations, sparsity and every reverse rule as with F.relu);
the other activations get their documented meaning under each rule, checked against explicit reverse
passes written here, or one warning that names them; a layer's activation is its rectifier's output
whatever norm, scale or bias lies between; a rectifier output changed in place later still reverses."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import cnnviz_widgets as cv

RULES = ("deconvnet", "guided", "gradient")


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


class Two(nn.Module):
    """conv -> act -> conv -> act, the same weights for every ``act`` (seeded)."""

    def __init__(self, act, channels: int = 6) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.c2 = nn.Conv2d(3, channels, 3), nn.Conv2d(channels, channels, 3)
        self.act = act

    def forward(self, x):
        return self.act(self.c2(self.act(self.c1(x))))


def _inplace_mask(x):
    x *= x > 0
    return x


RELU_FORMS = {
    "clamp(min=0)": lambda x: x.clamp(min=0),
    "torch.clamp(x, 0)": lambda x: torch.clamp(x, 0),
    "clamp_min": lambda x: torch.clamp_min(x, 0),
    "clip(0)": lambda x: x.clip(0),
    "clamp_ in place": lambda x: x.clamp_(min=0),
    "maximum(x, zeros)": lambda x: torch.maximum(x, torch.zeros_like(x)),
    "max(zero, x)": lambda x: torch.max(torch.zeros(1), x),
    "nn.Threshold(0, 0)": nn.Threshold(0, 0),
    "threshold_ in place": lambda x: F.threshold(x, 0, 0, inplace=True),
    "x * (x > 0)": lambda x: x * (x > 0),
    "(x > 0).float() * x": lambda x: (x > 0).float() * x,
    "x *= x > 0": _inplace_mask,
    "where(x > 0, x, 0)": lambda x: torch.where(x > 0, x, 0),
}


@pytest.fixture(scope="module")
def relu_ref():
    probe = cv.Probe(Two(nn.ReLU()).eval(), input_size=12)
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    return probe, x, probe.activations(x), {r: probe.reconstruct(x, rule=r) for r in RULES}


@pytest.mark.parametrize("form", list(RELU_FORMS))
def test_every_rectifier_form_is_relu(relu_ref, form):
    """What the issue measured: these gave the plain gradient under every rule and the pre-rectifier values
    as activations (sparsity 0.0); now activations, sparsity and every rule equal F.relu's, with no warning."""
    ref, x, ref_acts, ref_rec = relu_ref
    probe = cv.Probe(Two(RELU_FORMS[form]).eval(), input_size=12)
    assert all(l.rectified for l in probe.layers)
    acts = probe.activations(x)
    for name in ("c1", "c2"):
        assert torch.equal(acts[name], ref_acts[name]), name
    pictures = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(5))
    assert dict(cv.sparsity(probe, pictures, progress=False)) == dict(cv.sparsity(ref, pictures, progress=False))
    assert 0.3 < float((acts["c1"] == 0).float().mean()) < 0.7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = {r: probe.reconstruct(x, rule=r) for r in RULES}
    for r in RULES:
        assert rel_err(rec[r]["c2"], ref_rec[r]["c2"]) < 1e-6, r
    assert rel_err(rec["deconvnet"]["c2"], rec["gradient"]["c2"]) > 0.05
    assert rel_err(rec["guided"]["c2"], rec["gradient"]["c2"]) > 0.05


# ---------------------------------------------------------------- the other activations, against explicit rules

class _Explicit(torch.autograd.Function):
    """The activation's true forward; backward as documented: deconvnet relu(g), guided relu(g) * (x > 0)."""

    @staticmethod
    def forward(ctx, x, fn, rule):
        ctx.save_for_backward(x)
        ctx.rule = rule
        return fn(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        out = g.clamp(min=0)
        if ctx.rule == "guided":
            out = torch.where(x > 0, out, torch.zeros_like(out))
        return out, None, None


def explicit(net: Two, x: torch.Tensor, rule: str, seed: torch.Tensor) -> torch.Tensor:
    """The whole-layer reconstruction of c2 by a reverse pass written out: conv backward, the rule at each act."""
    xi = x.clone().requires_grad_(True)
    h = xi
    for conv in (net.c1, net.c2):
        h = conv(h)
        h = _Explicit.apply(h, net.act, rule) if rule != "gradient" else net.act(h)
    (g,) = torch.autograd.grad(h, xi, grad_outputs=seed)
    return g


ACTIVATIONS = {  # module, label in the warning, whether the guided mask has a meaning there
    "LeakyReLU": (nn.LeakyReLU(0.1), "LeakyReLU", True),
    "PReLU": (nn.PReLU(6, init=0.25), "PReLU", True),
    "PReLU negative": (nn.PReLU(init=-0.3), "PReLU with a negative slope", False),
    "RReLU": (nn.RReLU(), "RReLU", True),
    "ELU": (nn.ELU(), "ELU", True),
    "CELU": (nn.CELU(0.5), "CELU", True),
    "SELU": (nn.SELU(), "SELU", True),
    "Softplus": (nn.Softplus(), "Softplus", True),
    "GELU": (nn.GELU(), "GELU", True),
    "SiLU": (nn.SiLU(), "SiLU", True),
    "Hardswish": (nn.Hardswish(), "Hardswish", True),
    "Mish": (nn.Mish(), "Mish", True),
    "Hardtanh(-1, 1)": (nn.Hardtanh(-1, 1), "Hardtanh(-1, 1)", False),
    "Threshold(0.1, 0)": (nn.Threshold(0.1, 0), "Threshold(0.1, 0)", True),
    "Threshold(0, -1)": (nn.Threshold(0, -1), "Threshold(0, -1)", False),
}


@pytest.mark.parametrize("which", list(ACTIVATIONS))
def test_other_activations_have_their_documented_meaning(which):
    act, label, faithful = ACTIVATIONS[which]
    net = Two(act).eval()
    probe = cv.Probe(net, input_size=12)
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(4))
    assert all(l.rectified for l in probe.layers)
    acts = probe.activations(x)
    with torch.no_grad():
        assert torch.equal(acts["c2"], act(net.c2(act(net.c1(x)))))  # the layer's activation is the op's output
    for rule in RULES:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ours = probe.reconstruct(x, layers="c2", rule=rule)["c2"]
        ref = explicit(net, x, rule, acts["c2"])
        assert rel_err(ours, ref) < 1e-5, rule
        notes = [str(w.message) for w in caught if issubclass(w.category, cv.CnnvizWarning)]
        if rule == "gradient":
            assert notes == []
            continue
        assert len(notes) == 1 and f"uses {label}:" in notes[0], notes
        blind = "has no meaning there" in notes[0]
        assert blind == (rule == "guided" and not faithful), notes
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            probe.reconstruct(x, layers="c2", rule=rule)  # once per probe and rule
    gradient = explicit(net, x, "gradient", acts["c2"])
    assert rel_err(probe.reconstruct(x, layers="c2", rule="deconvnet")["c2"], gradient) > 0.01


def test_several_activations_one_warning_each_rule():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.PReLU(init=-0.1), nn.Conv2d(4, 4, 3), nn.SELU(),
                        nn.Conv2d(4, 4, 3), nn.Softplus()).eval()
    probe = cv.Probe(net, input_size=12)
    with pytest.warns(cv.CnnvizWarning) as caught:
        probe.reconstruct(torch.randn(1, 3, 12, 12), rule="guided")
    (note,) = [str(w.message) for w in caught]
    assert "uses SELU, Softplus: the guided rule reverses them as it does ReLU" in note
    assert "uses PReLU with a negative slope: the guided rule has no meaning there" in note


# ---------------------------------------------------------------- rectifier outputs changed in place later

class InPlaceLater(nn.Module):
    """A SiLU's output gets the block's input added in place (EfficientNetV2's FusedMBConv, expand ratio 1),
    then a third layer follows."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.c2, self.c3 = (nn.Conv2d(c, 4, 3, padding=1) for c in (3, 4, 4))

    def forward(self, x, act=F.silu):
        h = act(self.c1(x))
        out = act(self.c2(h))
        out += h
        return act(self.c3(out))


def test_a_rectifier_output_changed_in_place_later_reverses_under_every_rule():
    net = InPlaceLater().eval()
    probe = cv.Probe(net, input_size=10)
    x = torch.randn(2, 3, 10, 10)
    acts = probe.activations(x)
    with torch.no_grad():
        assert torch.equal(acts["c2"], F.silu(net.c2(F.silu(net.c1(x)))))  # before the +=
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rule in RULES:
            ours = probe.reconstruct(x, layers=["c2", "c3"], rule=rule)
            for name in ("c2", "c3"):
                xi = x.clone().requires_grad_(True)
                act = F.silu if rule == "gradient" else (lambda t, rule=rule: _Explicit.apply(t, F.silu, rule))
                if name == "c2":
                    out = act(net.c2(act(net.c1(xi))))
                else:
                    out = net(xi, act)
                (ref,) = torch.autograd.grad(out, xi, grad_outputs=acts[name])
                assert rel_err(ours[name], ref) < 1e-5, (rule, name)


def test_efficientnet_v2_reverses_under_every_rule():
    """It failed under guided: 'one of the variables needed for gradient computation has been modified by an
    inplace operation' (the guided rule kept the SiLU's output, which the block's residual += changes)."""
    torch.manual_seed(0)
    probe = cv.Probe(torchvision.models.efficientnet_v2_s(weights=None).eval(), input_size=64)
    picks = ["features.1.0.block.0.0", "features.2.0.block.0.0", probe.layer_names[-1]]
    x = torch.randn(1, 3, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rule in RULES:
            rec = probe.reconstruct(x, layers=picks, rule=rule)
            assert all(torch.isfinite(r).all() and r.abs().sum() > 0 for r in rec.values()), rule


# ---------------------------------------------------------------- conv, norm, rectifier

def _frozen_twin(model: nn.Module) -> nn.Module:
    frozen = torchvision.models.resnet18(weights=None, norm_layer=torchvision.ops.FrozenBatchNorm2d).eval()
    frozen.load_state_dict(model.state_dict(), strict=False)
    return frozen


def test_frozen_batch_norm_resnet_equals_batch_norm_resnet():
    """What the issue measured: with FrozenBatchNorm2d, conv1, layer1.0.conv1 and layer4.1.conv1 read sparsity
    0.000 (the pre-rectifier values) against about 0.5 with BatchNorm2d and the same weights."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.3, 0.3)
    bn, frozen = cv.Probe(model, input_size=64), cv.Probe(_frozen_twin(model), input_size=64)
    assert [(l.name, l.rectified) for l in bn.layers] == [(l.name, l.rectified) for l in frozen.layers]
    layers = ["conv1", "layer1.0.conv1", "layer4.1.conv1", "layer1.0.conv2"]
    assert [frozen.layer(n).rectified for n in layers] == [True, True, True, False]  # conv2: += identity first
    x = torch.rand(3, 3, 64, 64)
    s_bn, s_frozen = (dict(cv.sparsity(p, x, layers=layers, progress=False)) for p in (bn, frozen))
    assert s_bn == s_frozen
    assert all(s_frozen[n] > 0.3 for n in layers[:3]) and s_frozen["layer1.0.conv2"] == 0
    for rule in ("deconvnet", "guided"):
        a = bn.reconstruct(x[:1], layers="layer2.0.conv1", rule=rule)["layer2.0.conv1"]
        b = frozen.reconstruct(x[:1], layers="layer2.0.conv1", rule=rule)["layer2.0.conv1"]
        assert rel_err(b, a) < 1e-4, rule


class LayerNorm2d(nn.LayerNorm):
    """ConvNeXt's channels-first layer norm: permute, layer norm over channels, permute back."""

    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                            self.eps).permute(0, 3, 1, 2)


class Affine(nn.Module):
    """A per-channel scale and bias, as FrozenBatchNorm2d and layer scale apply them."""

    def __init__(self, channels: int, inplace: bool = False) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, channels)[:, None, None])
        self.bias = nn.Parameter(torch.linspace(-0.2, 0.2, channels))
        self.inplace = inplace

    def forward(self, x):
        if self.inplace:
            x = x.clone()  # a fresh tensor, changed in place
            x.mul_(self.scale)
            x += self.bias.view(1, -1, 1, 1)
            return x
        return self.scale * x + self.bias.view(1, -1, 1, 1)


class MapNorm(nn.Module):
    def forward(self, x):
        return F.layer_norm(x, x.shape[1:])


BETWEEN = {
    "BatchNorm2d": lambda c: nn.BatchNorm2d(c),
    "GroupNorm": lambda c: nn.GroupNorm(2, c),
    "InstanceNorm2d": lambda c: nn.InstanceNorm2d(c, affine=True),
    "LayerNorm over channels": lambda c: LayerNorm2d(c),
    "LayerNorm over the map": lambda c: MapNorm(),
    "scale and bias": lambda c: Affine(c),
    "scale and bias in place": lambda c: Affine(c, inplace=True),
    "FrozenBatchNorm2d": lambda c: torchvision.ops.FrozenBatchNorm2d(c),
    "norm then scale": lambda c: nn.Sequential(nn.GroupNorm(1, c), Affine(c)),
}


@pytest.mark.parametrize("between", list(BETWEEN))
def test_the_activation_is_the_rectifier_output_whatever_lies_between(between):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3), BETWEEN[between](6), nn.ReLU(), nn.Conv2d(6, 6, 3),
                        BETWEEN[between](6), nn.ReLU(inplace=True)).eval()
    probe = cv.Probe(net, input_size=12)
    assert [l.rectified for l in probe.layers] == [True, True]
    x = torch.randn(2, 3, 12, 12)
    acts = probe.activations(x)
    with torch.no_grad():
        assert torch.equal(acts["c1"], net[2](net[1](net[0](x))))
        assert torch.equal(acts["c2"], net[:6](x))
    assert all(0.2 < float((a == 0).float().mean()) < 0.8 for a in acts.values())


class Residual(nn.Module):
    """conv -> bn -> (+ a map) -> relu: the rectifier follows the sum, not the layer."""

    def __init__(self, how: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.bn, self.how = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), how

    def forward(self, x):
        h = self.bn(self.conv(x))
        if self.how == "add":
            return F.relu(h + x)
        if self.how == "iadd":
            h += x
            return F.relu(h)
        if self.how == "hardswish by hand":  # relu6(h + 3) is the gate, not the layer's activation
            return h * F.relu6(h + 3) / 6
        if self.how == "channels last":  # the rectifier sees another layout: no activation to take from it
            return F.relu(h.permute(0, 2, 3, 1))
        return F.relu(h * x)  # multiplied by a map


@pytest.mark.parametrize("how", ["add", "iadd", "hardswish by hand", "channels last", "times a map"])
def test_an_op_with_another_map_is_no_pass_through(how):
    net = Residual(how).eval()
    probe = cv.Probe(net, input_size=8)
    assert not probe.layer("conv").rectified
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(probe.activations(x)[probe.layer("conv").name], net.conv(x))  # the module's output


def test_the_gradient_rule_is_autograd_with_every_form():
    net = Two(lambda x: torch.maximum(x, torch.zeros(()))).eval()
    probe = cv.Probe(net, input_size=12)
    x = torch.randn(1, 3, 12, 12)
    act = probe.activations(x)["c2"]
    xi = x.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(net(xi), xi, grad_outputs=act)
    assert rel_err(probe.reconstruct(x, layers="c2", rule="gradient")["c2"], ref) < 1e-6
