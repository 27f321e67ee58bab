"""Every picture and argument a user really has (the reliability issue, items 1-13 and 15; weight files
are in test_weight_files.py, memory and interrupts in test_resources.py): no silent wrong result, no bare
error. Each test carries the issue's reproduction and at least one variant of its own."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

import cnnviz_widgets as cv
from cnnviz_widgets.images import picture_to_tensor


def _photo(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """An asymmetric picture (a gradient plus noise), so every turn and flip is visible."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (h + w)], -1)
    return np.clip(base + rng.integers(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)


def _folder(tmp_path, n: int = 4, size=(40, 56)):
    for i in range(n):
        Image.fromarray(_photo(*size, seed=i)).save(tmp_path / f"p{i}.jpg", quality=95)
    return tmp_path


def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # the header reads, the data is cut short


@pytest.fixture()
def probe(tiny) -> cv.Probe:
    return cv.Probe(tiny, input_size=32)


# 1. one unreadable picture in a folder ------------------------------------------------------------

def test_representation_space_leaves_out_an_unreadable_picture(tmp_path, probe):
    folder = _folder(tmp_path)
    _truncate(folder / "p2.jpg")
    with pytest.warns(UserWarning, match=r"skipping a picture that cannot be read: image 2 \(p2.jpg\)"):
        space = cv.representation_space(probe, folder, "c3", n_patches=200, grid=4, progress=False)
    assert torch.isfinite(space.features).all() and (space.features >= 0).all()  # post-ReLU, no garbage rows
    assert 2 not in set(space.units[:, 0].tolist()) and len(space.units) == len(space.features) == len(space.xy)
    assert space.grid_index.max() < len(space.units)
    # the rows kept are exactly the activations of their units (none shifted by the dropped ones)
    x = probe.preprocess([str(folder / "p0.jpg")])
    act = probe.activations(x, ["c3"])["c3"][0]
    for row in np.nonzero(space.units[:, 0].numpy() == 0)[0][:5]:
        _, y, xx = space.units[row].tolist()
        assert torch.allclose(space.features[row], act[:, y, xx], atol=1e-5)


def test_widgets_open_folders_and_paths(tmp_path, probe, monkeypatch):
    """The explorer and CompareModels read pictures given as paths (a review found them reading the file
    name as a second picture, from the working directory)."""
    (tmp_path / "photos").mkdir()
    folder = _folder(tmp_path / "photos")
    monkeypatch.chdir(tmp_path)
    Image.fromarray(_photo(seed=9)).save(tmp_path / "p1.jpg")  # an impostor with the same name in the cwd
    for images in (str(folder), [str(folder / "p1.jpg")]):
        w = cv.DeconvExplorer(probe, images)
        w.image_index = 1 if isinstance(images, str) else 0
        assert w.error == "" and w._x.shape == (1, 3, 32, 32)
        assert torch.equal(w._x, probe.preprocess(str(folder / "p1.jpg")))
        c = cv.CompareModels(probe, probe, images=images)
        assert c.error == "" and len(c.rows) == 2


def test_embedding_map_opens_on_a_folder_with_a_damaged_picture(tmp_path, probe):
    folder = _folder(tmp_path)
    _truncate(folder / "p0.jpg")  # the first one: the map must not need it
    with pytest.warns(UserWarning, match="p0.jpg"):
        m = cv.EmbeddingMap(probe, folder, layer="c3", n_patches=120, grid=4, cell=8)
    assert m.error == "" and len(m.mosaic) > 0 and len(m.grid_index) == 4


# 2. EXIF orientation ---------------------------------------------------------------------------

# EXIF orientation -> how a viewer turns the stored pixels upright, written with numpy (the oracle)
UPRIGHT = {2: lambda a: a[:, ::-1], 3: lambda a: np.rot90(a, 2), 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
           7: lambda a: np.rot90(a, 2).transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_exif_orientation_turns_the_picture_upright(tmp_path, orientation):
    rng = np.random.default_rng(orientation)
    stored = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)  # the sensor's pixels, as the file holds them
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"phone{orientation}.png"
    Image.fromarray(stored).save(path, exif=exif)
    upright = np.ascontiguousarray(UPRIGHT[orientation](stored))
    expected = torch.from_numpy(upright).permute(2, 0, 1).float() / 255
    assert torch.equal(picture_to_tensor(str(path)), expected)  # from a file
    with Image.open(path) as im:
        assert torch.equal(picture_to_tensor(im), expected)  # from an opened PIL image
        assert im.size == (50, 30)  # the user's image object is left as it was


def test_exif_orientation_of_a_phone_jpeg_reaches_the_network_upright(tmp_path, tiny):
    upright = _photo(60, 90)
    exif = Image.Exif()
    exif[0x0112] = 6  # the most common phone orientation: held upright, stored sideways
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(tmp_path / "phone.jpg", exif=exif, quality=98)
    probe = cv.Probe(tiny, input_size=32)
    seen = probe.to_image(probe.preprocess(str(tmp_path / "phone.jpg")))[0].astype(float)
    want = probe.to_image(probe.preprocess(upright))[0].astype(float)
    assert np.abs(seen - want).mean() < 4  # JPEG noise only; sideways it would be ~40
    imageset = cv.load_images(tmp_path)
    assert imageset[0].shape == (60, 90, 3)  # what a gallery shows is upright too


# 3. integer arrays ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.int16, np.uint32, np.uint64])
def test_integer_arrays_are_typed_by_their_values(dtype):
    img = np.clip(_photo().astype(int) + 30, 0, 255)  # what users write
    want = picture_to_tensor(img.astype(np.uint8))
    assert torch.equal(picture_to_tensor(img.astype(dtype)), want)


def test_uint16_is_16_bit_however_it_arrives(tmp_path):
    """A 16-bit PNG gives the same numbers read by path, by Pillow or as a numpy array (a review found
    them 257x apart); a uint16 picture holding only 8-bit values says so."""
    dark = (np.arange(600).reshape(20, 30) % 200).astype(np.uint16)
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    by_path = picture_to_tensor(str(tmp_path / "dark16.png"))
    with pytest.warns(cv.CnnvizWarning, match="uint16 picture holds values up to 199 only"):
        by_array = picture_to_tensor(np.asarray(Image.open(tmp_path / "dark16.png")))
    assert torch.equal(by_path, by_array) and float(by_path.max()) == pytest.approx(199 / 65535)


def test_integer_tensors_and_16_bit_values():
    t = torch.randint(0, 256, (3, 20, 30))  # int64
    assert torch.equal(picture_to_tensor(t), t.float() / 255)
    deep = (np.arange(20 * 30 * 3).reshape(20, 30, 3) * 70).astype(np.int32)  # values up to 125,930: too many bits
    with pytest.raises(cv.ImageError, match=r"integer picture holds 0-255 \(8-bit\) or 0-65535 \(16-bit\).*\[0, 125930\]"):
        picture_to_tensor(deep)
    sixteen = (np.arange(20 * 30).reshape(20, 30) * 100).astype(np.int32)  # a 16-bit grey picture
    assert torch.allclose(picture_to_tensor(sixteen)[0], torch.from_numpy(sixteen / 65535).float())
    with pytest.raises(cv.ImageError, match=r"spans \[-5, 255\].*np.clip"):
        picture_to_tensor(np.array([[-5, 255]], dtype=np.int64))


# 4. every picture skipped ------------------------------------------------------------------------

def test_an_all_corrupt_folder_says_so(tmp_path, probe):
    folder = _folder(tmp_path, n=3)
    for p in folder.iterdir():
        _truncate(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(cv.ImageError, match=r"None of the 3 pictures could be used.*p0.jpg"):
            cv.sparsity(probe, folder, progress=False)
        grid = cv.FilterGrid(probe, folder, layer="c3")
    assert "None of the 3 pictures could be used" in grid.error  # a message, not a blank sheet


def test_a_dataset_that_already_normalised_says_why(probe):
    class Normalised:  # a torchvision dataset with transforms.Normalize at the end
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return (torch.rand(3, 32, 32) - 0.45) / 0.225, i

    with pytest.warns(UserWarning):
        with pytest.raises(cv.ImageError, match=r"None of the 4 pictures.*must lie in \[0, 1\]"):
            cv.top_patches(probe, Normalised(), "c3", progress=False)


# 5. half-precision weights ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_models_are_probed_on_a_float32_copy(tiny, dtype):
    x_model = tiny.to(dtype)
    with pytest.warns(UserWarning, match=f"holds {str(dtype)[6:]} weights: the probe works on a float32 copy"):
        probe = cv.Probe(x_model, input_size=32)
    assert next(tiny.parameters()).dtype == dtype  # the user's model is untouched
    x = probe.preprocess(_photo())
    rec = probe.reconstruct(x, layers="c3")["c3"]
    assert rec.dtype == torch.float32 and torch.isfinite(rec).all()


def test_a_half_precision_weights_file_gives_a_float32_model(tmp_path):
    model = cv.load_model("alexnet_paper", weights=None, seed=3)
    torch.save({k: v.half() for k, v in model.state_dict().items()}, tmp_path / "half.pth")
    loaded = cv.load_model("alexnet_paper", weights=tmp_path / "half.pth")
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    cv.Probe(loaded, input_size=96)  # no "Pass input_size=" any more


# 6. networks that end in a softmax ----------------------------------------------------------------

class Confident(nn.Module):
    """A net whose class 3 wins by far; ``end`` says what its output holds."""

    def __init__(self, end: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 5)
        self.end = end
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 40.0, 0.0]))
        self.soft = nn.Softmax(dim=1) if end == "module" else None

    def forward(self, x):
        z = self.fc(F.relu(self.conv(x)).mean((2, 3)))
        if self.end == "module":
            return self.soft(z)
        if self.end == "functional":
            return F.softmax(z, dim=1)
        if self.end == "log":
            return F.log_softmax(z, dim=1)
        return z


@pytest.mark.parametrize("end", ["module", "functional", "log", "logits"])
def test_predictions_read_what_the_output_holds(end):
    probe = cv.Probe(Confident(end).eval(), input_size=16)
    assert probe.output_kind == {"module": "probabilities", "functional": "probabilities", "log": "log_probabilities",
                                 "logits": "logits"}[end]
    (index, _, p), *_ = probe.classify(probe.preprocess(_photo()))[0]
    assert index == 3 and p == pytest.approx(1.0, abs=1e-6)  # the softmax-ending net once showed 0.58


def test_one_output_is_a_probability_not_always_one():
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 1)).eval()
    probe = cv.Probe(net, input_size=16)
    x = probe.preprocess(_photo())
    ((_, _, p),) = probe.classify(x, k=5)[0]
    with torch.no_grad():
        assert p == pytest.approx(float(torch.sigmoid(net(x))[0, 0]), abs=1e-6) and p < 1.0
    sig = cv.Probe(nn.Sequential(net, nn.Sigmoid()).eval(), input_size=16)
    assert sig.output_kind == "sigmoid" and sig.classify(x)[0][0][2] == pytest.approx(p, abs=1e-6)


# 7. transposed convolutions -----------------------------------------------------------------------

class Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(3, 8, 4, stride=4)
        self.up = nn.ConvTranspose2d(8, 8, 2, stride=2)
        self.head = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        return self.head(F.relu(self.up(F.relu(self.down(x)))))


def test_a_transposed_conv_gives_patches_in_place_and_clicks_that_work(photos):
    torch.manual_seed(0)
    probe = cv.Probe(Decoder().eval(), input_size=64)
    last = probe.layer_names[-1]
    rf = probe.receptive_field(last)
    assert rf.stride > 0
    top = cv.top_patches(probe, photos[:3], last, k=4, progress=False)
    boxes = {tuple(rf.square_box(*top.yx[c, i].tolist())) for c in range(top.channels) for i in range(top.k)}
    assert len(boxes) > 4  # not one centre crop for every unit
    w = cv.DeconvExplorer(probe, photos[:2])
    w.show_unit_at(last, x=50, y=10)
    assert w.error == "" and w.selected["layer"] == last
    assert w.selected["unit"][1:] == list(rf.unit_at(10, 50, probe.layer(last).shape[1:]))


# 8. indices, labels -------------------------------------------------------------------------------

def test_indices_empty_or_repeated(probe, photos):
    with pytest.raises(cv.CnnvizError, match=r"indices is empty: it must name at least one picture"):
        cv.sparsity(probe, photos[:3], indices=[], progress=False)
    with pytest.raises(cv.CnnvizError, match=r"names picture\(s\) \[1\] more than once"):
        cv.sparsity(probe, photos[:3], indices=[0, 1, 1], progress=False)
    with pytest.raises(cv.CnnvizError, match=r"indices must hold whole picture numbers, got 0.5"):
        cv.top_patches(probe, photos[:3], "c3", indices=[0.5], progress=False)
    once = cv.sparsity(probe, photos[:3], indices=np.array([2, 0]), progress=False)  # numpy indices are fine
    assert once.n_images == 2


def test_labels_must_name_every_output(tiny):
    with pytest.raises(cv.CnnvizError, match="labels has 9 names, but TinyNet has 10 outputs"):
        cv.Probe(tiny, input_size=32, labels=[f"c{i}" for i in range(9)])
    with pytest.raises(cv.CnnvizError, match="labels has 11 names"):
        cv.Probe(tiny, input_size=32, labels=[f"c{i}" for i in range(11)])


# 9. malformed messages from the browser -----------------------------------------------------------

def test_malformed_browser_messages_become_messages(alex_probe, photos):
    w = cv.DeconvExplorer(alex_probe, photos[:2])
    for bad in ({"layer": "c3", "x": "left", "y": 3}, {"layer": 7, "x": 1, "y": 1}, {"x": float("nan"), "y": 1}):
        w._handle_custom_msg({"event": "click", **bad}, [])
        assert "The browser sent" in w.error or "No layer 7" in w.error, bad
    w._handle_custom_msg({"event": "channel", "layer": "c3", "channel": {"n": 1}}, [])
    assert "no usable 'channel' (a whole number)" in w.error
    w._handle_custom_msg({"event": "channel", "channel": 2.5}, [])
    assert "no usable 'channel'" in w.error
    w._handle_custom_msg({"event": "class"}, [])  # no index at all
    assert "no usable 'index'" in w.error


def test_malformed_map_and_grid_messages(probe, photos):
    m = cv.EmbeddingMap(probe, photos[:2], layer="c3", n_patches=60, grid=3, cell=8)
    for cell in (["a", 1], 5, [1], [True, 0]):
        m._handle_custom_msg({"event": "select", "cell": cell}, [])
        assert "a cell is [row, column] in whole numbers" in m.error, cell
    m._handle_custom_msg({"event": "select", "cell": [9, 9]}, [])
    assert "outside the 3x3 grid" in m.error
    m._handle_custom_msg({"event": "zoom", "x0": "a", "y0": 0, "x1": 1, "y1": 1}, [])
    assert "no usable 'x0' (a number)" in m.error
    m._handle_custom_msg({"event": "select", "cell": [1, 1]}, [])
    assert m.error == "" and m.selected["cell"] == [1, 1]  # and it still works
    g = cv.FilterGrid(probe, photos[:2], layer="c3")
    g.set_state({"selected": {"layer": "c3", "filter": "3"}})
    assert "no usable 'filter' (a whole number)" in g.error


# 10. decompression bombs --------------------------------------------------------------------------

def test_decompression_bombs_are_named_and_skipped(tmp_path, probe, monkeypatch):
    folder = _folder(tmp_path, n=3, size=(40, 56))
    Image.fromarray(_photo(120, 160)).save(folder / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)  # 120x160 = 19,200 pixels: over twice the limit
    with pytest.raises(cv.ImageError, match=r"bomb.png.*decompression bomb.*MAX_IMAGE_PIXELS = None"):
        probe.preprocess(str(folder / "bomb.png"))
    with pytest.raises(cv.ImageError, match="decompression bomb"):
        probe.preprocess([str(folder / "p0.jpg"), str(folder / "bomb.png")])  # as a list item
    imageset = cv.load_images([str(p) for p in sorted(folder.iterdir())])  # listed, not yet read
    with pytest.warns(UserWarning, match="bomb.png.*decompression bomb"):
        result = cv.sparsity(probe, imageset, progress=False)
    assert result.n_images == 3  # the pass went on without it
    with pytest.warns(UserWarning, match="bomb.png"):
        assert len(cv.load_images(folder)) == 3  # a folder listing skips it with a warning


# 11. TorchScript models ----------------------------------------------------------------------------

def test_scripted_and_traced_models_get_the_fix(tiny):
    with pytest.raises(cv.UnsupportedModelError, match=r"TorchScript module.*load_state_dict\(scripted.state_dict\(\)\)"):
        cv.Probe(torch.jit.script(tiny))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own tracer warnings
        traced = torch.jit.trace(tiny, torch.zeros(1, 3, 32, 32))
    with pytest.raises(cv.UnsupportedModelError, match="TorchScript module"):
        cv.Probe(traced)
    fixed = type(tiny)().eval()
    fixed.load_state_dict(traced.state_dict())  # the fix the message gives works
    cv.Probe(fixed, input_size=32)


# 12. arguments -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(device="mps"), cv.DeviceUnavailableError, "MPS backend is not available"),
    (dict(device="meta"), cv.DeviceUnavailableError, "a 'meta' device cannot run the pictures"),
    (dict(device=3.5), cv.DeviceUnavailableError, "device must be 'cpu', 'cuda', 'cuda:N', 'mps' or None, got 3.5"),
    (dict(input_size=(224, 224)), cv.CnnvizError, r"input_size must be one whole number of pixels.*got \(224, 224\)"),
    (dict(input_size="abc"), cv.CnnvizError, "input_size must be a whole number of pixels, 1 or more.*got 'abc'"),
    (dict(input_size=100.7), cv.CnnvizError, "input_size must be a whole number of pixels.*got 100.7"),
    (dict(input_size=0), cv.CnnvizError, "input_size must be a whole number of pixels, 1 or more"),
    (dict(mean=(0.5, 0.5)), cv.CnnvizError, r"mean must have one value per input channel: the network takes 3.*\(0.5, 0.5\)"),
    (dict(std=[0.2, 0.0, 0.2]), cv.CnnvizError, r"std must be above 0 for every channel.*\[0.2, 0.0, 0.2\]"),
    (dict(std="wide"), cv.CnnvizError, "std must be 3 number"),
    (dict(mean=[float("nan")] * 3), cv.CnnvizError, "mean must be finite numbers"),
    (dict(labels="cat dog"), cv.CnnvizError, "labels must be a list of class names, got 'cat dog'"),
])
def test_probe_arguments_are_checked_where_they_enter(tiny, kwargs, error, match):
    with pytest.raises(error, match=match):
        cv.Probe(tiny, **{"input_size": 32, **kwargs})


def test_input_size_float_with_whole_value_and_one_mean_for_all(tiny):
    probe = cv.Probe(tiny, input_size=32.0, mean=0.5, std=0.25)  # one number: every channel
    assert probe.input_size == 32 and probe.mean.flatten().tolist() == [0.5] * 3


@pytest.mark.parametrize("call, match", [
    (lambda p, im: cv.sparsity(p, im, layers=3, progress=False), "layers must be a layer name or a list of names, got 3"),
    (lambda p, im: cv.sparsity(p, im, num_workers=-1, progress=False), "num_workers must be a whole number, 0 or more, got -1"),
    (lambda p, im: cv.sparsity(p, im, num_workers=1.5, progress=False), "num_workers must be a whole number"),
    (lambda p, im: cv.sparsity(p, im, batch_size=True, progress=False), "batch_size must be a positive whole number, got True"),
    (lambda p, im: cv.top_patches(p, im, "c3", k="9", progress=False), "k must be a positive whole number of patches"),
    (lambda p, im: p.reconstruct(p.preprocess(im[0]), "c3", channel=True), "channel must be a filter number for layer 'c3', got True"),
    (lambda p, im: p.reconstruct(p.preprocess(im[0]), "fc5", channel=2.0), "channel must be a filter number or a class name"),
    (lambda p, im: p.reconstruct(p.preprocess(im[0]), "c3", unit=(0, 1)), r"unit must be \(channel, y, x\), got \(0, 1\)"),
    (lambda p, im: p.predict(p.preprocess(im[0]), k=0), "k must be a positive whole number, got 0"),
    (lambda p, im: cv.representation_space(p, im, "c3", grid=0, progress=False), "grid must be a positive whole number"),
])
def test_kernel_arguments_are_checked_where_they_enter(probe, photos, call, match):
    with pytest.raises(cv.CnnvizError, match=match):
        call(probe, photos[:2])


def test_numpy_integers_are_whole_numbers(probe, photos):
    top = cv.top_patches(probe, photos[:2], "c3", k=np.int64(2), batch_size=np.int32(1), num_workers=np.uint8(0),
                         progress=False)
    assert top.k == 2
    x = probe.preprocess(photos[0])
    assert torch.equal(probe.reconstruct(x, "c3", channel=np.int64(1))["c3"], probe.reconstruct(x, "c3", channel=1)["c3"])


# 13. one-channel networks ------------------------------------------------------------------------

class Digits(nn.Module):
    """An MNIST-style network: one input channel, 28 pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


def test_one_channel_networks_are_probed_on_grey_pictures(photos):
    torch.manual_seed(0)
    probe = cv.Probe(Digits().eval(), input_size=28, mean=(0.1307,), std=(0.3081,))
    assert probe.channels == 1 and probe.layer_names == ("c1", "p1", "c2", "p2", "fc3")
    x = probe.preprocess(photos[:2])
    assert x.shape == (2, 1, 28, 28)
    photo = Image.fromarray(photos[1][1])
    side = min(photo.size)
    left, top = (photo.size[0] - side) // 2, (photo.size[1] - side) // 2
    grey = np.asarray(photo.crop((left, top, left + side, top + side)).convert("L").resize((28, 28), Image.BILINEAR), float)
    seen = probe.to_image(x)[1]
    assert seen.shape == (28, 28, 3) and (seen[..., 0] == seen[..., 2]).all()
    assert np.corrcoef(seen[..., 0].ravel(), grey.ravel())[0, 1] > 0.9  # the luma of the photo
    rec = probe.reconstruct(x, layers=None)
    assert all(r.shape == (2, 1, 28, 28) and torch.isfinite(r).all() for r in rec.values())
    top = cv.top_patches(probe, photos[:3], "c2", k=3, progress=False)
    assert top.patch(0, 0).shape[2] == 3 and top.reconstructions(0).shape[1] == 1
    assert cv.to_display(rec["c2"][0]).shape == (28, 28, 3)
    w = cv.DeconvExplorer(probe, photos[:2])
    assert w.error == "" and len(w.recs) == 5


def test_one_channel_defaults_and_checks():
    probe = cv.Probe(Digits().eval(), input_size=28)
    assert probe.mean.flatten().tolist() == [0.0] and probe.std.flatten().tolist() == [1.0]  # pictures as ToTensor gives
    with pytest.raises(cv.CnnvizError, match="mean must have one value per input channel: the network takes 1"):
        cv.Probe(Digits().eval(), input_size=28, mean=(0.5, 0.5, 0.5))
    with pytest.raises(cv.ImageError, match=r"Expected model input as a float tensor \(N, 1, H, W\)"):
        probe.activations(torch.zeros(1, 3, 28, 28))
    four = nn.Sequential(nn.Conv2d(4, 2, 3), nn.ReLU()).eval()
    with pytest.raises(cv.UnsupportedModelError, match="takes 4 input channels"):
        cv.Probe(four)


def test_widget_arguments_that_do_not_exist_are_named(probe, photos):
    with pytest.raises(cv.CnnvizError, match="FilterGrid has no argument 'layers'; did you mean 'layer'"):
        cv.FilterGrid(probe, photos[:1], layers=["c3"])
    with pytest.raises(cv.CnnvizError, match="DeconvExplorer has no argument 'imgs'"):
        cv.DeconvExplorer(probe, imgs=photos[:1])


# 15. k above the number of units ------------------------------------------------------------------

def test_a_huge_k_is_capped_with_a_warning(probe, photos):
    with pytest.warns(UserWarning, match=r"k=1000000 is more than the 768 units one filter of 'c3' has over 3 picture"):
        top = cv.top_patches(probe, photos[:3], "c3", k=10**6, progress=False)
    assert top.k == 768 and (top.image_index >= 0).all()  # every unit (3 pictures x 16 x 16), each once
    flat = top.image_index * 256 + top.yx[..., 0] * 16 + top.yx[..., 1]
    assert all(len(set(row.tolist())) == 768 for row in flat)


# 14. big pictures are reduced early: bounded difference from the full-size pipeline ----------------

@pytest.mark.parametrize("kind", ["png", "jpeg", "pil", "array"])
@pytest.mark.parametrize("photo, wh, size, bound", [
    (1, (1600, 1200), 64, (0.5, 4)),     # chelsea, 19x the input: reduced by 4 (measured 0.09, 0.7)
    (0, (2702, 1801), 224, (1.0, 26)),   # astronaut, odd sizes, 8x: reduced by 2 (measured 0.77, 23 at sharp edges)
])
def test_early_reduction_stays_within_a_level_of_the_full_size_pipeline(tmp_path, photos, kind, monkeypatch,
                                                                       photo, wh, size, bound):
    """A picture more than 4x the input is reduced (JPEG draft decode, or a box filter over whole boxes)
    before the antialiased resize: what the network sees differs from resizing the full-size picture by
    under one 8-bit level on average; the narrower composite filter moves sharp edges by up to ~23 levels
    (memory and time: test_resources.py, benchmarks/bench_pictures.py)."""
    import cnnviz_widgets.decode as decode
    import cnnviz_widgets.images as images

    big = np.asarray(Image.fromarray(photos[photo][1]).resize(wh, Image.BICUBIC))
    item = {"png": tmp_path / "big.png", "jpeg": tmp_path / "big.jpg", "pil": None, "array": big}[kind]
    if kind in ("png", "jpeg"):
        Image.fromarray(big).save(item, quality=95)
        item = str(item)
    reduced = images.prepare_picture(Image.fromarray(big) if kind == "pil" else item, size)
    monkeypatch.setattr(decode, "REDUCE_MARGIN", 10**9)
    full = images.prepare_picture(Image.fromarray(big) if kind == "pil" else item, size)
    diff = (reduced - full).abs() * 255
    if kind == "array":  # arrays are resized at full size: exactly the old pipeline
        assert torch.equal(reduced, full)
    else:
        assert 0 < float(diff.mean()) < bound[0] and float(diff.max()) < bound[1], (float(diff.mean()), float(diff.max()))


def test_widget_and_embedding_arguments_are_checked(probe, photos):
    w = cv.DeconvExplorer(probe, photos[:2], image_index=5)
    assert "image_index 5 is out of range: there are 2 pictures (0 to 1)" in w.error
    assert "k must be a positive whole number of patches per filter, got 0" in cv.FilterGrid(probe, photos[:1], k=0).error
    assert "cell must be a positive whole number of pixels, got 'big'" in cv.EmbeddingMap(probe, photos[:1], cell="big").error
    with pytest.raises(cv.CnnvizError, match="seed must be a whole number, 0 or more, got 'abc'"):
        cv.representation_space(probe, photos[:2], "c3", n_patches=20, seed="abc", progress=False)
    with pytest.raises(cv.CnnvizError, match="tsne has option\\(s\\) 'perplexty' that openTSNE.TSNE does not take"):
        cv.representation_space(probe, photos[:2], "c3", n_patches=20, tsne={"perplexty": 5}, progress=False)


def test_our_warnings_print_as_one_line(capsys):
    """A rectifier note, a skipped picture or a capped k is one line, without the library's source line
    under it (it arrived as a pink block quoting internal code); other warnings keep Python's format, and importing
    the package changes nothing of Python's warnings (issue 25: no side effects at import)."""
    import subprocess
    import sys

    code = ("import warnings; before = (warnings.formatwarning, warnings.showwarning); import cnnviz_widgets as cv; "
            "import IPython; assert (warnings.formatwarning, warnings.showwarning) == before; "
            "from cnnviz_widgets.errors import warn; warn('Net uses ReLU6: ...'); "
            "warnings.warn('other'); assert warnings.formatwarning is before[0]")
    out = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines[0] == "CnnvizWarning: Net uses ReLU6: ..." and "<string>:1: UserWarning: other" in lines[1]
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU6()).eval()
    probe = cv.Probe(net, input_size=16)
    with pytest.warns(cv.CnnvizWarning, match="uses ReLU6"):
        probe.reconstruct(probe.preprocess(_photo()))


def test_damaged_weight_files_are_always_a_weights_file_error(tmp_path, monkeypatch):
    """300 mutated, truncated or foreign files (a review found 35 of them escaping as KeyError, struct.error
    ...): each loads, or raises WeightsFileError; a text file, an HDF5 header and a pipe say what they are."""
    import random

    from cnnviz_widgets.models import zoo

    monkeypatch.setitem(zoo.MODELS, "tiny", zoo.ZooEntry(lambda: nn.Sequential(nn.Conv2d(3, 4, 3)), None))
    good = tmp_path / "good.pth"
    torch.save(nn.Sequential(nn.Conv2d(3, 4, 3)).state_dict(), good)
    legacy = tmp_path / "legacy.pth"
    torch.save(nn.Sequential(nn.Conv2d(3, 4, 3)).state_dict(), legacy, _use_new_zipfile_serialization=False)
    sources = [good.read_bytes(), legacy.read_bytes(), b"hello world\n", b"\x89HDF\r\n\x1a\n" + bytes(100)]
    rng = random.Random(0)
    for i in range(300):
        data = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(1, len(data))]
        (tmp_path / "fuzz.pth").write_bytes(bytes(data))
        try:
            cv.load_model("tiny", weights=tmp_path / "fuzz.pth")
        except cv.WeightsFileError:
            pass
    (tmp_path / "notes.pth").write_text("hello world\n")
    with pytest.raises(cv.WeightsFileError, match=r"notes.pth' is not a PyTorch weights file \(it starts with b'hello wo'\)"):
        cv.load_model("tiny", weights=tmp_path / "notes.pth")
    (tmp_path / "keras.pth").write_bytes(sources[3])
    with pytest.raises(cv.WeightsFileError, match="looks like an HDF5 file"):
        cv.load_model("tiny", weights=tmp_path / "keras.pth")
    os.mkfifo(tmp_path / "pipe.pth")
    with pytest.raises(cv.WeightsFileError, match="is not a regular file"):
        cv.load_model("tiny", weights=tmp_path / "pipe.pth")


def test_multi_label_and_functional_sigmoids_are_read_as_probabilities():
    body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = body

        def forward(self, x):
            return torch.sigmoid(self.body(x))

    for net in (nn.Sequential(body, nn.Sigmoid()).eval(), Functional().eval()):
        probe = cv.Probe(net, input_size=16)
        x = probe.preprocess(_photo())
        with torch.no_grad():
            want = net(x)[0]
        assert probe.output_kind == "sigmoid"
        top = probe.classify(x, k=5)[0]
        assert [p for _, _, p in top] == pytest.approx(sorted(want.tolist(), reverse=True), abs=1e-6)


def test_the_first_conv_to_run_sets_the_channels():
    class HeadFirst(nn.Module):  # the head is registered before the stem (a review's case)
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Conv2d(8, 5, 1)
            self.stem = nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            return self.head(torch.relu(self.stem(x))).mean((2, 3))

    probe = cv.Probe(HeadFirst().eval(), input_size=32)
    assert probe.channels == 3 and probe.layer("c1").module_path == "stem"


def test_nan_weights_and_a_probes_own_mean():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(cv.UnsupportedModelError, match="0.weight holds NaN or infinite values"):
        cv.Probe(net)
    good = cv.Probe(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval(), input_size=16)
    twin = cv.Probe(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval(), input_size=16, mean=good.mean, std=good.std)
    assert torch.equal(twin.mean, good.mean)  # a (1, 3, 1, 1) tensor is three numbers too
    with pytest.raises(cv.CnnvizError, match="std must be above 0 for every channel"):
        cv.Probe(nn.Sequential(nn.Conv2d(3, 4, 3)).eval(), input_size=16, std=1e-46)  # 0 in float32
    with pytest.raises(cv.CnnvizError, match="mean must be 3 number"):
        cv.Probe(nn.Sequential(nn.Conv2d(3, 4, 3)).eval(), input_size=16, mean="0.5")


def test_capped_k_keeps_shards_mergeable(probe, photos):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = cv.top_patches(probe, photos[:2], "c3", k=600, progress=False)
        parts = [cv.top_patches(probe, photos[:2], "c3", k=600, indices=[i], progress=False) for i in (0, 1)]
    merged = parts[0].merge(parts[1])
    assert whole.k == merged.k == 512 and torch.equal(whole.image_index, merged.image_index)
    assert torch.equal(whole.yx, merged.yx)
    with pytest.raises(cv.IndexOutOfRangeError, match="rank 300 of filter 0 is an empty place: only 256 units"):
        parts[0].patch(0, 300)
    with pytest.raises(cv.CnnvizError, match="mine has nothing to compute"):
        cv.mine(probe, photos[:1], top_layers=[], sparsity=False, progress=False)


def test_browser_values_that_traits_refuse_are_messages(probe, photos):
    """None for a dict, a list for a layer name, 0 for a page size, a number too big for a float: the
    widget says so and keeps what it had (each escaped set_state or showed a Python error before)."""
    w = cv.DeconvExplorer(probe, photos[:2])
    for bad in (None, [], "x", 5):
        w.set_state({"selected": bad})
        assert "The browser sent" in w.error and "nothing was changed" in w.error, bad
    for bad in (None, [], "x", 5, {"event": "zoom"}, {"event": None}):  # messages that are no event this widget knows
        w._handle_custom_msg(bad, [])
        assert "The browser sent" in w.error and "does not know; nothing was changed" in w.error, bad
        assert "It knows the events: stop, click, cell, channel, class, upload, frame, live." in w.error  # cell: the keyboard
    g = cv.FilterGrid(probe, photos[:2], layer="c3")
    g.set_state({"selected": {"layer": ["c3"], "filter": 0}})
    assert "whose 'layer' is not a layer name" in g.error
    g.set_state({"page_size": 0})
    assert "page_size must be 1 or more" in g.error and g.page_size == 32
    m = cv.EmbeddingMap(probe, photos[:2], layer="c3", n_patches=60, grid=3, cell=8)
    m._handle_custom_msg({"event": "zoom", "x0": 10**400, "x1": 0, "y0": 0, "y1": 1}, [])
    assert "no usable 'x0' (a number)" in m.error
    m.set_state({"cell": 0})
    assert "cell must be 1 or more" in m.error and m.cell == 8


@pytest.mark.parametrize("call, match", [
    (lambda p, im: cv.Probe(p.model, input_size=10**9), "input_size must be at most 8192 pixels"),
    (lambda p, im: cv.top_patches(p, im, "c3", indices=torch.tensor(1), progress=False), "indices must be a flat list"),
    (lambda p, im: cv.representation_space(p, im, "c3", seed=2**40, progress=False), "seed must be below 2\\*\\*32"),
    (lambda p, im: cv.representation_space(p, im, "c3", n_patches=50, tsne={"perplexity": -1}, progress=False),
     "openTSNE refused the tsne options \\{'perplexity': -1\\}"),
    (lambda p, im: cv.load_model("alexnet_paper", weights=None, seed="a"), "seed must be a whole number, 0 or more"),
    (lambda p, im: p.reconstruct(p.preprocess(im[0]), layers="c3", targets="x"), "targets must be a dict"),
    (lambda p, im: picture_to_tensor(np.zeros((4, 4, 3), np.longdouble)), "HxWxC picture of numbers"),
    (lambda p, im: picture_to_tensor(torch.empty(3, 8, 8, device="meta")), "a dense tensor with values"),
])
def test_more_arguments_a_review_found(probe, photos, call, match):
    with pytest.raises(cv.CnnvizError, match=match):
        call(probe, photos[:2])
