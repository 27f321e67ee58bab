"""Probe: pictures in, activations, predictions, clear errors, and a user's model left untouched."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import cnnviz_widgets as cv
from cnnviz_widgets.images import picture_to_tensor
from cnnviz_widgets.probe.hooks import hook_count


@pytest.fixture(scope="module")
def small_probe():
    torch.manual_seed(0)
    from conftest import TinyNet

    return cv.Probe(TinyNet().eval(), input_size=32)


def test_sample_images_are_real_photos(photos):
    names = [n for n, _ in photos]
    assert {"astronaut", "chelsea", "coffee", "china", "flower"} <= set(names)
    for _, img in photos:
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.std() > 10


def test_preprocess_accepts_every_picture_kind(small_probe, tmp_path):
    rgb = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    pil = Image.fromarray(rgb)
    gray = np.asarray(pil.convert("L"))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 77, np.uint8)])
    sixteen = gray.astype(np.uint16) * 257
    pil16 = Image.fromarray(sixteen)
    assert pil16.mode.startswith("I")
    path = tmp_path / "pic.png"
    pil.save(path)
    kinds = [pil, pil.convert("L"), pil.convert("RGBA"), pil.convert("P"), pil16, rgb, gray, gray[:, :, None], rgba,
             sixteen, rgb.astype(np.float32) / 255, torch.from_numpy(rgb).permute(2, 0, 1),
             torch.from_numpy(rgb).permute(2, 0, 1).float() / 255, str(path), path]
    x = small_probe.preprocess(kinds)
    assert x.shape == (len(kinds), 3, 32, 32) and x.dtype == torch.float32
    shown = small_probe.to_image(x)
    assert shown.shape == (len(kinds), 32, 32, 3) and shown.dtype == np.uint8
    # colour inputs agree with each other, gray ones with each other
    for i in (5, 10, 11, 12, 13, 14):
        assert np.abs(shown[i].astype(int) - shown[0].astype(int)).max() <= 1, i
    for i in (6, 7, 9):
        assert np.abs(shown[i].astype(int) - shown[1].astype(int)).max() <= 1, i
    assert np.abs(shown[8].astype(int) - shown[0].astype(int)).max() <= 1  # alpha dropped
    # a 4-D batch of either layout
    assert small_probe.preprocess(np.stack([rgb, rgb])).shape[0] == 2
    assert small_probe.preprocess(torch.rand(3, 3, 50, 20)).shape == (3, 3, 32, 32)


def test_preprocess_is_resize_then_centre_crop(small_probe):
    img = np.zeros((64, 128, 3), np.uint8)
    img[:, 32:96] = 255  # the centre square is white, the sides black
    shown = small_probe.to_image(small_probe.preprocess(img))[0]
    assert shown.shape == (32, 32, 3) and shown[:, 1:-1].min() >= 250 and shown.min() > 128  # edges antialiased
    single = small_probe.to_image(small_probe.preprocess(img)[0])
    assert single.shape == (32, 32, 3)


def test_to_image_inverts_preprocess_exactly(vgg_probe, photos):
    x = vgg_probe.preprocess([photos[0][1]])
    again = vgg_probe.preprocess(vgg_probe.to_image(x))
    assert torch.allclose(again, x, atol=1.0 / 255 / 0.224)


def test_bad_pictures_get_clear_errors(small_probe):
    with pytest.raises(cv.ImageError, match="No images given"):
        small_probe.preprocess([])
    bad = np.zeros((10, 10, 3), np.float32)
    bad[2, 2] = np.nan
    with pytest.raises(cv.ImageError, match="image 1: .*NaN"):
        small_probe.preprocess([np.zeros((10, 10, 3), np.uint8), bad])
    with pytest.raises(cv.ImageError, match=r"must lie in \[0, 1\].*Divide by 255"):
        small_probe.preprocess(np.full((10, 10, 3), 200.0))
    with pytest.raises(cv.ImageError, match="HxWxC with C in 1, 3 or 4"):
        small_probe.preprocess(np.zeros((3, 10, 10, 5), np.uint8)[0])
    with pytest.raises(cv.ImageError, match="a: cannot read a picture from int"):  # a dict: named pictures (issue 24)
        small_probe.preprocess({"a": 1})
    with pytest.raises(cv.ImageError, match="does not exist"):
        small_probe.preprocess("/no/such/picture.jpg")
    with pytest.raises(cv.ImageError, match="empty"):
        picture_to_tensor(np.zeros((0, 5, 3), np.uint8))


def test_model_input_errors(small_probe):
    with pytest.raises(cv.ImageError, match="preprocess"):
        small_probe.activations(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(cv.ImageError, match=r"float tensor \(N, 3, H, W\)"):
        small_probe.deconvnet(torch.zeros(1, 1, 32, 32))
    with pytest.raises(cv.ImageError, match="NaN"):
        small_probe.deconvnet(torch.full((1, 3, 32, 32), float("nan")))
    with pytest.raises(cv.ImageError, match="empty"):
        small_probe.predict(torch.zeros(0, 3, 32, 32))


def test_channel_and_unit_ranges_are_named(small_probe):
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(cv.IndexOutOfRangeError, match=r"channel=8 .* 'c1': it has 8 channels, 0 to 7"):
        small_probe.deconvnet(x, layers="c1", channel=8)
    with pytest.raises(cv.IndexOutOfRangeError, match="channel=-1"):
        small_probe.deconvnet(x, layers="c1", channel=-1)
    with pytest.raises(cv.IndexOutOfRangeError, match=r"y must be 0 to 15"):
        small_probe.deconvnet(x, layers="c3", unit=(0, 16, 0))
    with pytest.raises(cv.IndexOutOfRangeError, match=r"unit must be \(channel, y, x\)"):
        small_probe.deconvnet(x, layers="c3", unit=(0, 1))
    with pytest.raises(cv.IndexOutOfRangeError, match="either channel= or unit="):
        small_probe.deconvnet(x, layers="c3", channel=0, unit=(0, 1, 1))
    with pytest.raises(cv.IndexOutOfRangeError, match="'c1': it has 8 channels"):  # every layer checked when layers=None
        small_probe.deconvnet(x, channel=12)
    with pytest.raises(cv.CnnvizError, match="k must be a positive whole number, got 0"):
        small_probe.predict(x, k=0)


def test_activations_are_post_relu_and_shaped(vgg_probe, photos):
    x = vgg_probe.preprocess([photos[1][1]])
    acts = vgg_probe.activations(x)
    assert list(acts) == list(vgg_probe.layer_names)
    for layer in vgg_probe.layers:
        a = acts[layer.name]
        assert a.shape == (1, *layer.shape), layer.name
        if layer.name != "fc8":
            assert a.min() >= 0, layer.name
    assert acts["fc8"].min() < 0  # logits: no rectifier after the last layer
    early = vgg_probe.activations(x, layers="c1_2")  # stops after c1_2, same values
    assert torch.equal(early["c1_2"], acts["c1_2"])
    ref = vgg_probe.model.features[:4](x)
    assert torch.allclose(acts["c1_2"], ref, atol=1e-5)


def test_predict_top5_with_imagenet_names(alex_probe, photos):
    x = alex_probe.preprocess([img for _, img in photos[:2]])
    preds = alex_probe.predict(x, k=5)
    assert len(preds) == 2 and all(len(p) == 5 for p in preds)
    with torch.no_grad():
        probs = alex_probe.model(x).softmax(1)
    for i, p in enumerate(preds):
        values = [v for _, v in p]
        assert values == sorted(values, reverse=True)
        assert abs(values[0] - float(probs[i].max())) < 1e-6
        assert p[0][0] == alex_probe.labels[int(probs[i].argmax())]
    assert alex_probe.labels[0] == "tench" and len(alex_probe.labels) == 1000


def test_predict_uses_given_labels_or_class_numbers(small_probe):
    x = torch.rand(1, 3, 32, 32)
    assert small_probe.predict(x, k=2)[0][0][0].startswith("class ")
    named = cv.Probe(small_probe.model, input_size=32, labels=[f"L{i}" for i in range(10)])
    assert named.predict(x, k=20)[0][0][0].startswith("L") and len(named.predict(x, k=20)[0]) == 10


def test_not_a_cnn_and_not_a_module():
    with pytest.raises(cv.UnsupportedModelError, match="no torch.nn.Conv2d"):
        cv.Probe(nn.Sequential(nn.Flatten(), nn.Linear(3 * 224 * 224, 10)))
    with pytest.raises(cv.UnsupportedModelError, match="needs a torch.nn.Module, got str"):
        cv.Probe("vgg16")
    with pytest.raises(cv.UnsupportedModelError, match="input_size="):
        cv.Probe(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 2)))


class Detaching(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)).detach())


def test_unreversible_model_names_the_layer():
    probe = cv.Probe(Detaching(), input_size=16)
    rec = probe.deconvnet(torch.rand(1, 3, 16, 16), layers="c1")
    assert rec["c1"].abs().sum() > 0
    with pytest.raises(cv.UnsupportedModelError, match="'c2' is not connected to the input"):
        probe.deconvnet(torch.rand(1, 3, 16, 16), layers="c2")
    # all layers in one backward pass: the cut-off layer is named too, never reversed to zeros
    with pytest.raises(cv.UnsupportedModelError, match="'c2' is not connected to the input"):
        probe.deconvnet(torch.rand(1, 3, 16, 16), layers=["c1", "c2"], batched=True)
    from cnnviz_widgets.probe.reconstruct import unit_reconstructions

    with pytest.raises(cv.UnsupportedModelError, match="'c2' is not connected to the input"):
        unit_reconstructions(probe, torch.rand(1, 3, 16, 16), "c2", torch.tensor([[0, 1, 1]]))


def test_gpu_asked_for_where_there_is_none(tiny, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(cv.DeviceUnavailableError, match="asks for a GPU.*device='cpu'"):
        cv.Probe(tiny, device="cuda")
    with pytest.raises(cv.DeviceUnavailableError, match="device must be .cpu., .cuda., .cuda:N., .mps. or None, got .gpu0."):
        cv.Probe(tiny, device="gpu0")
    assert cv.Probe(tiny, input_size=32).device.type == "cpu"


def _state(model: nn.Module):
    return (
        hook_count(model),
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        {k: v.clone() for k, v in model.state_dict().items()},
        torch._C._len_torch_function_stack(),
        torch.is_grad_enabled(),
    )


def _assert_same(a, b):
    assert a[0] == b[0], "hook count changed"
    assert a[1] == b[1], "train/eval flags changed"
    assert a[2] == b[2], "requires_grad changed"
    assert all(torch.equal(a[3][k], b[3][k]) for k in a[3]), "weights changed"
    assert a[4:] == b[4:], "torch function mode or grad mode left behind"


def test_users_model_is_left_exactly_as_it_was(tiny):
    tiny.train()
    tiny.features[0].weight.requires_grad_(False)
    tiny.features[3].register_forward_hook(lambda *a: None)  # a hook of the user's own stays
    before = _state(tiny)
    probe = cv.Probe(tiny, input_size=32)
    # same device: the probe's own module object over the very same parameters and buffers (no memory spent)
    assert probe.model is not tiny
    assert all(a is b for a, b in zip(probe.model.parameters(), tiny.parameters()))
    assert all(a is b for a, b in zip(probe.model.buffers(), tiny.buffers()))
    x = probe.preprocess(np.zeros((40, 40, 3), np.uint8))
    probe.activations(x)
    probe.deconvnet(x)
    probe.deconvnet(x, layers="c3", channel=3)
    probe.deconvnet(x, layers="c3", unit=(1, 2, 3))
    probe.predict(x)
    probe.measure_receptive_fields(["c2"])
    _assert_same(before, _state(tiny))
    assert tiny.training


def test_interrupted_forward_leaves_nothing_behind(tiny):
    probe = cv.Probe(tiny, input_size=32)
    before = _state(tiny)

    def interrupt(*args):
        raise KeyboardInterrupt

    handle = probe.model.features[5].register_forward_hook(interrupt)
    x = torch.rand(1, 3, 32, 32)
    for call in (lambda: probe.deconvnet(x), lambda: probe.activations(x), lambda: probe.predict(x)):
        with pytest.raises(KeyboardInterrupt):
            call()
    handle.remove()
    _assert_same(before, _state(tiny))
    assert probe.deconvnet(x)["c3"].abs().sum() > 0  # still usable
