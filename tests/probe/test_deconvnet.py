"""The deconvnet kernel against an explicit reverse network, Captum, and functional-ReLU twins."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import cnnviz_widgets as cv
from reverse_net import chain_ops, forward_record, layer_positions, reverse


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


@pytest.fixture(scope="module")
def photo_batch(photos):
    return [img for _, img in photos[:2]]


@pytest.mark.parametrize("which", ["vgg", "alex"])
def test_every_layer_equals_explicit_reverse_network(which, vgg_probe, alex_probe, photo_batch):
    probe = vgg_probe if which == "vgg" else alex_probe
    x = probe.preprocess(photo_batch)
    ours = probe.deconvnet(x)
    assert list(ours) == list(probe.layer_names)
    ops = chain_ops(probe.model)
    with torch.no_grad():
        records, acts = forward_record(ops, x)
        positions = layer_positions(ops, probe.layer_names)
        for name, pos in positions.items():
            ref = reverse(records, pos, acts[pos])
            assert ours[name].shape == x.shape
            assert rel_err(ours[name], ref) < 1e-4, name
            assert ref.abs().sum() > 0


def test_channel_and_unit_equal_explicit_reverse(alex_probe, photo_batch):
    x = alex_probe.preprocess(photo_batch[:1])
    ops = chain_ops(alex_probe.model)
    positions = layer_positions(ops, alex_probe.layer_names)
    with torch.no_grad():
        records, acts = forward_record(ops, x)
    for name in ("c2", "p2", "c5", "fc7"):
        act = acts[positions[name]]
        c = int(act.flatten(2).amax(-1)[0].argmax()) if act.ndim == 4 else int(act[0].argmax())
        ours = alex_probe.deconvnet(x, layers=[name], channel=c)[name]
        seed = torch.zeros_like(act)
        seed[:, c] = act[:, c]
        with torch.no_grad():
            ref = reverse(records, positions[name], seed)
        assert rel_err(ours, ref) < 1e-4, name
        if act.ndim == 4:
            flat = int(act[0, c].argmax())
            y, xx = divmod(flat, act.shape[-1])
            ours = alex_probe.deconvnet(x, layers=name, unit=(c, y, xx))[name]
            seed = torch.zeros_like(act)
            seed[0, c, y, xx] = act[0, c, y, xx]
            with torch.no_grad():
                ref = reverse(records, positions[name], seed)
            assert rel_err(ours, ref) < 1e-4, name


def _captum_ready(model: nn.Module) -> nn.Module:
    """Captum hooks ReLU modules and refuses in-place ones: an out-of-place twin, same weights."""
    twin = copy.deepcopy(model)
    for m in twin.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return twin


@pytest.mark.parametrize("name,module_index", [("c1_2", 3), ("c3_1", 11), ("c4_3", 22), ("p4", 23)])
def test_single_unit_equals_captum_neuron_deconvolution(vgg_probe, photo_batch, name, module_index):
    from captum.attr import NeuronDeconvolution

    x = vgg_probe.preprocess(photo_batch[:1])
    act = vgg_probe.activations(x, [name])[name]
    c, y, xx = (int(v) for v in torch.nonzero(act[0] == act[0].max())[0])
    value = float(act[0, c, y, xx])
    assert value > 0
    ours = vgg_probe.deconvnet(x, layers=name, unit=(c, y, xx))[name]
    twin = _captum_ready(vgg_probe.model).eval()
    attr = NeuronDeconvolution(twin, twin.features[module_index]).attribute(x.clone(), neuron_selector=(c, y, xx))
    assert rel_err(ours, value * attr) < 1e-4


def test_captum_on_the_papers_alexnet_fc_unit(alex_probe, photo_batch):
    from captum.attr import NeuronDeconvolution

    x = alex_probe.preprocess(photo_batch[:1])
    act = alex_probe.activations(x, ["fc6"])["fc6"]
    c = int(act[0, :, 0, 0].argmax())
    ours = alex_probe.deconvnet(x, layers="fc6", unit=(c, 0, 0))["fc6"]
    twin = _captum_ready(alex_probe.model).eval()
    attr = NeuronDeconvolution(twin, twin.classifier[2]).attribute(x.clone(), neuron_selector=(c,))
    assert rel_err(ours, float(act[0, c, 0, 0]) * attr) < 1e-4


class ModuleReluNet(nn.Module):
    """conv-bn-ReLU modules in a Sequential: the reference twin."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 8 * 8, 32), nn.ReLU(inplace=True), nn.Linear(32, 5))

    def forward(self, x):
        return self.classifier(self.features(x))


class FunctionalReluNet(nn.Module):
    """The same network calling every ReLU functionally, three of them in place."""

    def __init__(self, twin: ModuleReluNet) -> None:
        super().__init__()
        f, c = twin.features, twin.classifier
        self.conv1, self.bn1, self.conv2, self.conv3, self.conv4 = f[0], f[1], f[4], f[7], f[9]
        self.fc1, self.fc2 = c[1], c[3]

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        x = F.max_pool2d(x, 2)
        x = torch.relu(self.conv2(x))
        x = F.max_pool2d(x, kernel_size=2)
        x = self.conv3(x)
        x.relu_()  # statement-style in place: the result is not reassigned
        x = torch.relu_(self.conv4(x))
        x = torch.flatten(x, 1)
        return self.fc2(self.fc1(x).relu())


def test_functional_inplace_relu_equals_module_relu_twin():
    torch.manual_seed(0)
    ref_net = ModuleReluNet().eval()
    with torch.no_grad():
        ref_net.features[1].running_mean.uniform_(-0.2, 0.2)
        ref_net.features[1].running_var.uniform_(0.5, 2)
    fun_net = FunctionalReluNet(copy.deepcopy(ref_net)).eval()
    ref, fun = cv.Probe(ref_net, input_size=32), cv.Probe(fun_net, input_size=32)
    assert ref.layer_names == ("c1", "p1", "c2", "p2", "c3", "c4", "fc5", "fc6")
    assert fun.layer_names == ("c1", "c2", "c3", "c4", "fc5", "fc6")  # functional pools close blocks
    x = torch.randn(3, 3, 32, 32)
    a_ref, a_fun = ref.activations(x), fun.activations(x)
    r_ref, r_fun = ref.deconvnet(x), fun.deconvnet(x)
    for name in fun.layer_names:
        assert torch.allclose(a_ref[name], a_fun[name], atol=1e-6), name
        assert (a_fun[name] >= 0).all() or name == "fc6", name  # post-ReLU, as the paper's layers are
        assert rel_err(r_fun[name], r_ref[name]) < 1e-5, name
    # the functional forward still computes the same output under the recorder
    with torch.no_grad():
        assert torch.allclose(fun_net(x), ref_net(x), atol=1e-5)


def test_batch_equals_one_image_at_a_time(alex_probe, photos):
    x = alex_probe.preprocess([img for _, img in photos[:3]])
    batch = alex_probe.deconvnet(x, layers=["c3", "fc7"])
    for i in range(3):
        one = alex_probe.deconvnet(x[i : i + 1], layers=["c3", "fc7"])
        for name in one:
            assert rel_err(batch[name][i : i + 1], one[name]) < 1e-5


def test_selected_layers_equal_the_all_layer_pass(alex_probe, photo_batch):
    x = alex_probe.preprocess(photo_batch)
    everything = alex_probe.deconvnet(x)
    some = alex_probe.deconvnet(x, layers=["p5", "c1"])
    assert list(some) == ["c1", "p5"]  # depth order
    for name in some:
        assert torch.equal(some[name], everything[name])


def test_works_inside_no_grad_and_inference_mode(tiny):
    probe = cv.Probe(tiny, input_size=32)
    x = torch.randn(1, 3, 32, 32)
    ref = probe.deconvnet(x)
    with torch.no_grad():
        assert all(torch.equal(ref[k], v) for k, v in probe.deconvnet(x).items())
    with torch.inference_mode():
        x_inf = x.clone()
        got = probe.deconvnet(x_inf)
    assert all(torch.allclose(ref[k], v) for k, v in got.items())


def test_other_rectifiers_reversed_like_relu_with_one_warning():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.SiLU(), nn.Conv2d(4, 4, 3), nn.GELU(), nn.Conv2d(4, 4, 3), nn.ReLU6(),
                        nn.Conv2d(4, 4, 3), nn.LeakyReLU(0.1), nn.Conv2d(4, 4, 3), nn.Hardswish()).eval()
    probe = cv.Probe(net, input_size=24)
    x = torch.randn(2, 3, 24, 24)
    with pytest.warns(UserWarning, match="GELU, Hardswish, LeakyReLU, ReLU6, SiLU"):
        rec = probe.deconvnet(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probe.deconvnet(x)  # once per probe
    # the rule is relu of the signal: compare with autograd where each rectifier's backward is replaced
    acts = probe.activations(x)
    assert torch.allclose(acts["c2"], F.gelu(net[2](F.silu(net[0](x)))), atol=1e-6)
    xi = x.clone().requires_grad_(True)
    h = xi
    for i in range(0, 10, 2):
        h = _RelBack.apply(net[i](h), net[i + 1])  # true forward, relu(signal) backward
    (ref,) = torch.autograd.grad(h, xi, grad_outputs=acts["c5"])
    assert rel_err(rec["c5"], ref) < 1e-5


class _RelBack(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, module):
        return module(x)

    @staticmethod
    def backward(ctx, g):
        return g.clamp_min(0), None


FAMILIES = [
    ("resnet18", {}), ("densenet121", {}), ("googlenet", {"aux_logits": False, "init_weights": True}),
    ("inception_v3", {"aux_logits": False, "init_weights": True}), ("mobilenet_v2", {}),
    ("mobilenet_v3_small", {}), ("mobilenet_v3_large", {}), ("efficientnet_b0", {}), ("regnet_x_400mf", {}),
    ("regnet_y_400mf", {}), ("squeezenet1_1", {}), ("shufflenet_v2_x0_5", {}), ("mnasnet0_5", {}),
    ("convnext_tiny", {}), ("vgg11_bn", {}), ("resnext50_32x4d", {}), ("wide_resnet50_2", {}),
]


@pytest.mark.parametrize("name,kwargs", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_torchvision_families(name, kwargs):
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    probe = cv.Probe(model, input_size=160 if name == "inception_v3" else 96)
    names = probe.layer_names
    assert len(names) >= 10 and len(set(names)) == len(names)
    if not probe.is_chain:
        assert all(l.name == l.module_path for l in probe.layers)
        assert all(isinstance(model.get_submodule(l.module_path), (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.AvgPool2d)) for l in probe.layers)
    for layer in probe.layers:
        rf = probe.receptive_field(layer.name)
        assert rf.size >= 1 and rf.stride >= 1
        assert probe.receptive_field(layer.module_path) == rf
    convs = [l for l in probe.layers if l.kind == "conv"]
    picks = [convs[0].name, convs[len(convs) // 2].name, probe.layer_names[-1]]
    x = torch.randn(2, 3, probe.input_size, probe.input_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = probe.deconvnet(x, layers=picks)
    for k, r in rec.items():
        assert r.shape == x.shape and torch.isfinite(r).all() and r.abs().sum() > 0, k
    mid = probe.layer(picks[1])
    single = probe.deconvnet(x[:1], layers=picks[1], unit=(0, mid.shape[1] // 2, mid.shape[2] // 2))[picks[1]]
    assert torch.isfinite(single).all()


def test_the_layer_wanted_next_is_reversed_next_and_the_results_do_not_change(alex_probe):
    """``next_layer`` is asked before each backward pass (a widget answers with its slider's layer); ``on_layer``
    hears each layer as it is done. The order changes nothing in the numbers."""
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    names = ["c1", "c3", "p5", "fc7"]
    plain = alex_probe.deconvnet(x, layers=names)
    wanted, heard = ["p5"], []

    def on_layer(name, rec):
        heard.append(name)
        if name == "p5":
            wanted[0] = "fc7"  # the slider moved on meanwhile

    got = alex_probe.deconvnet(x, layers=names, next_layer=lambda: wanted[0], on_layer=on_layer)
    assert heard == ["p5", "fc7", "c1", "c3"] and list(got) == names
    assert all(torch.equal(got[n], plain[n]) for n in names)
    assert alex_probe.deconvnet(x, layers=names, next_layer=lambda: "no such layer")["c3"].equal(plain["c3"])
