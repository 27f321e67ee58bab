"""Class evidence maps (Grad-CAM, Grad-CAM++, guided Grad-CAM) against pytorch-grad-cam, on a real network,
and every bad input's message."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torchvision
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

import cnnviz_widgets as cv
from cnnviz_widgets.errors import CnnvizError, IndexOutOfRangeError, LabelNotFoundError, UnsupportedModelError
from cnnviz_widgets.probe.class_map import default_layer

ORACLES = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus}


def oracle_twin(model: nn.Module) -> nn.Module:
    """The model for pytorch-grad-cam: the same weights, its ReLUs out of place (its hooks read a module's output,
    which an in-place ReLU would overwrite)."""
    twin = copy.deepcopy(model).eval()
    for m in twin.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return twin


def oracle_module(twin: nn.Module, probe: cv.Probe, name: str) -> nn.Module:
    """The module whose output is the probe's activation of ``name``: the layer's module, or, for a rectified
    layer of a plain Sequential (VGG), the ReLU right after it."""
    layer = probe.layer(name)
    module = twin.get_submodule(layer.module_path)
    if not layer.rectified:
        return module
    parent, _, index = layer.module_path.rpartition(".")
    after = twin.get_submodule(parent)[int(index) + 1]
    assert isinstance(after, nn.ReLU), f"{name}: no ReLU module follows {layer.module_path}"
    return after


def oracle(twin: nn.Module, module: nn.Module, x: torch.Tensor, classes: list[int], method: str) -> np.ndarray:
    with ORACLES[method](twin, [module]) as cam:
        return cam(x, targets=[ClassifierOutputTarget(c) for c in classes])


@pytest.fixture(scope="module")
def resnet18() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18().eval()


@pytest.fixture(scope="module")
def resnet_probe(resnet18) -> cv.Probe:
    return cv.Probe(resnet18, device="cpu")


@pytest.fixture(scope="module")
def two(photos, vgg_probe) -> torch.Tensor:
    named = dict(photos)
    return vgg_probe.preprocess([named["coffee"], named["chelsea"]])


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_vgg16_equals_pytorch_grad_cam(vgg16, vgg_probe, two, method):
    twin = oracle_twin(vgg16)
    for name, classes in [("c5_3", [3, 500]), ("c4_2", [999, 0]), ("p5", [42, 42]), ("c3_3", [7, 640])]:
        got = vgg_probe.class_map(two, layer=name, target=classes, method=method)
        assert got.shape == (2, 1, 224, 224) and got.dtype == torch.float32
        want = oracle(twin, oracle_module(twin, vgg_probe, name), two, classes, method)
        err = float(np.abs(got[:, 0].numpy() - want).max())
        assert err < 1e-5, f"{method} at {name}, classes {classes}: max error {err:.2e}"
        assert float(got.max()) > 0.99, f"{name}: a map without evidence is no test"


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_resnet18_equals_pytorch_grad_cam(resnet18, resnet_probe, two, method):
    twin = oracle_twin(resnet18)
    layers = ["layer4.1.conv2", "layer3.1.conv2", "layer4.0.downsample.0", "maxpool"]
    for name, classes in zip(layers, [[1, 2], [300, 301], [999, 5], [77, 78]]):
        got = resnet_probe.class_map(two, layer=name, target=classes, method=method)
        want = oracle(twin, oracle_module(twin, resnet_probe, name), two, classes, method)
        err = float(np.abs(got[:, 0].numpy() - want).max())
        assert err < 1e-5, f"{method} at {name}, classes {classes}: max error {err:.2e}"


def test_the_default_is_the_top1_at_the_last_conv(resnet18, resnet_probe, two):
    assert default_layer(resnet_probe).name == "layer4.1.conv2"
    top1 = resnet18(two).argmax(1).tolist()
    twin = oracle_twin(resnet18)
    want = oracle(twin, twin.layer4[1].conv2, two, top1, "gradcam")
    got = resnet_probe.class_map(two)
    assert np.abs(got[:, 0].numpy() - want).max() < 1e-5


def test_guided_gradcam_is_the_guided_reconstruction_times_the_map(vgg_probe, two):
    got = vgg_probe.class_map(two, layer="c5_3", target=[3, 500], method="guided-gradcam")
    assert got.shape == two.shape
    maps = vgg_probe.class_map(two, layer="c5_3", target=[3, 500])
    for i, c in enumerate([3, 500]):
        guided = vgg_probe.reconstruct(two[i:i + 1], layers="fc8", channel=c, rule="guided")["fc8"]
        want = guided * maps[i:i + 1]
        assert torch.allclose(got[i:i + 1], want, rtol=1e-5, atol=1e-6 * float(want.abs().max()))
        assert float(want.abs().max()) > 0


def test_guided_backprop_of_a_class_equals_pytorch_grad_cams(vgg16, vgg_probe, two):
    from pytorch_grad_cam.guided_backprop import GuidedBackpropReLUModel

    want = GuidedBackpropReLUModel(oracle_twin(vgg16), device="cpu")(two[:1].clone(), target_category=3)
    got = vgg_probe.reconstruct(two[:1], layers="fc8", channel=3, rule="guided")["fc8"][0].permute(1, 2, 0)
    assert np.abs(got.numpy() - want).max() <= 1e-5 * np.abs(want).max()


def test_a_label_is_a_class(vgg_probe, two):
    by_label = vgg_probe.class_map(two, target="espresso")
    by_index = vgg_probe.class_map(two, target=vgg_probe.class_index("espresso"))
    assert torch.equal(by_label, by_index)


# ---------------------------------------------------------------- a real network: EfficientNet-Lite0, ImageNet
CUP = (8, 170, 40, 176)  # rows top:bottom, columns left:right of the cup with its handle in the 224 crop of 'coffee'


@pytest.fixture(scope="module")
def lite():
    from test_real_cnn import efficientnet_lite0

    labels = torchvision.models.VGG16_Weights.IMAGENET1K_V1.meta["categories"]
    return cv.Probe(efficientnet_lite0(), labels=labels, mean=(0.498,) * 3, std=(0.502,) * 3, device="cpu")


def test_espresso_is_found_on_the_cup(lite, photos):
    """Mass measure: the share of the map's total (it is >= 0) inside a hand-set box around the cup, saucer
    excluded, set by looking at the crop, against the share of the picture the box covers (0.44): a map
    spread evenly would put 0.44 of its mass there. The espresso map puts 3/4 there, and its peak inside."""
    x = lite.preprocess([dict(photos)["coffee"]])
    assert lite.predict(x, k=1)[0][0][0] == "espresso"
    espresso = lite.class_map(x, target="espresso")[0, 0]
    t, b, l, r = CUP
    area = (b - t) * (r - l) / espresso.numel()
    mass = float(espresso[t:b, l:r].sum() / espresso.sum())
    assert mass > 0.6 and mass > 1.5 * area, f"espresso: {mass:.2f} of the mass on the cup, which covers {area:.2f}"
    y, xx = divmod(int(espresso.argmax()), espresso.shape[1])
    assert t <= y < b and l <= xx < r
    tabby = lite.class_map(x, target="tabby")[0, 0]
    corr = float(torch.corrcoef(torch.stack([espresso.flatten(), tabby.flatten()]))[0, 1])
    assert corr < 0.5 and float((espresso - tabby).abs().mean()) > 0.1, f"espresso and tabby maps alike: {corr:.2f}"
    assert torch.equal(lite.class_map(x)[0, 0], espresso)  # the default target is the top-1


# ---------------------------------------------------------------- bad inputs
def test_bad_inputs_say_what_is_wrong(vgg_probe, two):
    with pytest.raises(CnnvizError, match=r"method='cam' is not a class map method; use one of 'gradcam'"):
        vgg_probe.class_map(two, method="cam")
    with pytest.raises(CnnvizError, match=r"Layer 'fc7' has no spatial map .* e.g. 'c5_3'"):
        vgg_probe.class_map(two, layer="fc7")
    with pytest.raises(IndexOutOfRangeError, match=r"class 1000 is out of range: 'fc8' has 1000 classes, 0 to 999"):
        vgg_probe.class_map(two, target=1000)
    with pytest.raises(IndexOutOfRangeError, match=r"class -1 is out of range"):
        vgg_probe.class_map(two, target=[-1, 3])
    with pytest.raises(LabelNotFoundError, match=r"No class is called 'expresso'.*'espresso'"):
        vgg_probe.class_map(two, target="expresso")
    with pytest.raises(IndexOutOfRangeError, match=r"one per image \(2\), got \[1, 2, 3\]"):
        vgg_probe.class_map(two, target=[1, 2, 3])
    with pytest.raises(IndexOutOfRangeError, match=r"got 2.5"):
        vgg_probe.class_map(two, target=2.5)
    with pytest.raises(cv.LayerNotFoundError, match="No layer 'c9' in VGG"):
        vgg_probe.class_map(two, layer="c9")
    with pytest.raises(cv.ImageError, match="Call probe.preprocess"):
        vgg_probe.class_map(np.zeros((224, 224, 3)))


def test_a_network_without_class_scores_says_so():
    torch.manual_seed(0)
    features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
    probe = cv.Probe(features, input_size=16, device="cpu")
    with pytest.raises(UnsupportedModelError, match="does not end in class scores"):
        probe.class_map(torch.zeros(1, 3, 16, 16))


# ---------------------------------------------------------------- pictures: the overlay and the figure
def test_the_overlay_is_a_blend_of_the_picture_and_the_jet_colours():
    from cnnviz_widgets.display import heat, overlay

    assert heat(np.array([0.0, 0.5, 1.0])).tolist() == [[0, 0, 128], [128, 255, 128], [128, 0, 0]]
    picture = np.full((2, 2, 3), 200, np.uint8)
    m = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)
    assert np.array_equal(overlay(picture, m, 0), picture)
    assert np.array_equal(overlay(picture, m, 1), heat(m))
    half = overlay(picture, m, 0.5).astype(int)
    assert np.abs(half - (200 + heat(m).astype(int)) / 2).max() <= 0.5
    with pytest.raises(CnnvizError, match="opacity must be from 0 to 1, got 1.5"):
        overlay(picture, m, 1.5)


def test_figure_class_maps(vgg_probe, photos, tmp_path):
    images = photos[:2]
    fig = cv.figure_class_maps(vgg_probe, images, classes=["espresso", 281], size=64)
    texts = [t.get_text() for t in fig.texts]
    assert "espresso" in texts and "tabby" in texts and any("gradcam at c5_3" in t for t in texts)
    assert len(fig.axes) == 2 * 3  # per photo: the input and two maps
    path = cv.save_figure(fig, tmp_path / "maps.png")
    assert path.stat().st_size > 1000
    top = cv.figure_class_maps(vgg_probe, images[:1], size=64, method="gradcam++", layer="c4_3")
    texts = [t.get_text() for t in top.texts]
    assert "top-3" in texts and any(t.endswith("%") for t in texts) and any("gradcam++ at c4_3" in t for t in texts)
    with pytest.raises(CnnvizError, match="use method='gradcam' or 'gradcam\\+\\+'"):
        cv.figure_class_maps(vgg_probe, images, method="guided-gradcam")
    with pytest.raises(LabelNotFoundError, match="No class is called 'expresso'"):
        cv.figure_class_maps(vgg_probe, images, classes=["expresso"])


def test_state_is_left_as_found_and_no_grad_does_not_matter(tiny):
    from cnnviz_widgets.probe.hooks import hook_count

    tiny.train()
    probe = cv.Probe(tiny, input_size=32, device="cpu")
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    free = probe.class_map(x, target=[1, 2, 3])
    with torch.no_grad():
        inside = probe.class_map(x, target=[1, 2, 3])
    assert torch.equal(free, inside) and not inside.requires_grad
    assert tiny.training and hook_count(tiny) == 0 and hook_count(probe.model) == 0
    assert all(p.grad is None for p in tiny.parameters())
