"""The data path (issue 11): the batch-level picture pipeline against the old float one and against
torchvision's presets, the in-memory batch path against one picture at a time, the GPU-decoding path (run
here with the CPU standing in for nvjpeg), the streaming options object, exact precision by default, and
the explorer's single forward pass per image change."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import cnnviz_widgets as cv
from conftest import assert_zero_counts_close
from cnnviz_widgets.images import picture_to_tensor, prepare_batch, prepare_picture, prepare_raw, stackable
from cnnviz_widgets.kernels.options import StreamOptions
from cnnviz_widgets.precision import compute_precision, resolve_precision


def old_prepare(img, size: int) -> torch.Tensor:
    """The pipeline before issue 11: float32 picture, F.interpolate (antialiased bilinear) in float, centre crop."""
    t = picture_to_tensor(img, reduce_to=size)
    h, w = t.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        t = F.interpolate(t[None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)[0]
    top, left = (nh - size) // 2, (nw - size) // 2
    return t[:, top : top + size, left : left + size].clamp(0, 1)


@pytest.mark.parametrize("size", [96, 224, 227, 500])
def test_the_uint8_pipeline_is_within_one_grey_level_of_the_float_one(photos, tmp_path, size):
    """8-bit pictures are now resized in uint8 (torchvision's kernel, as its presets do): the same crop, the
    same place, values rounded to whole 8-bit levels, so at most one level from the float resize."""
    worst, means = 0.0, []
    for name, img in photos:
        path = tmp_path / f"{name}.png"
        Image.fromarray(img).save(path)
        for source in (img, str(path), Image.fromarray(img)):
            new = prepare_picture(source, size)
            assert new.shape == (3, size, size) and new.dtype == torch.float32
            d = (new - old_prepare(source, size)).abs() * 255
            worst, means = max(worst, float(d.max())), means + [float(d.mean())]
    assert worst <= 1.01, worst  # at most one level (plus float rounding)
    assert np.mean(means) < 0.35, np.mean(means)  # a quarter of a level on average
    # float pictures still take the float path: identical to before
    f = photos[0][1].astype(np.float32) / 255
    assert torch.equal(prepare_picture(f, size), old_prepare(f, size))


def test_a_jpeg_file_is_decoded_by_torchvision_as_pillow_would(photos, tmp_path):
    img = photos[1][1]
    Image.fromarray(img).save(tmp_path / "a.jpg", quality=90)
    with Image.open(tmp_path / "a.jpg") as im:
        by_pillow = torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1)
    from cnnviz_widgets.images import read_picture

    by_torchvision = read_picture(str(tmp_path / "a.jpg"))
    assert by_torchvision.dtype == torch.uint8 and by_torchvision.shape == by_pillow.shape
    # both are libjpeg-turbo; their colour conversions may round a value differently by a level
    assert (by_torchvision.int() - by_pillow.int()).abs().max() <= 1


def test_the_weights_preset_matches_torchvision(photos):
    """Zoo models with ImageNet weights see pictures as torchvision's preset makes them: shorter side 256,
    centre 224 crop (the project's own default resizes to 224)."""
    import torchvision

    weights = torchvision.models.VGG16_Weights.IMAGENET1K_V1
    model = cv.load_model("alexnet_paper", weights=None)
    model.cnnviz_preprocessing = {"resize": 256, "crop": 224}  # what load_model(..., weights="imagenet") records
    probe = cv.Probe(model)
    assert probe.resize_size == 256
    from torchvision.transforms import v2

    preset = weights.transforms()  # transforms v1: resizes uint8 through float, 8x slower than v2's uint8 kernel
    same_in_v2 = v2.Compose([v2.Resize(256, antialias=True), v2.CenterCrop(224), v2.ToDtype(torch.float32, scale=True),
                             v2.Normalize(preset.mean, preset.std)])
    one_level = 1 / 255 / min(preset.std) + 1e-5
    for name, img in photos:
        ours = probe.model_input(img)[0]
        tensor = torch.from_numpy(img.copy()).permute(2, 0, 1)
        assert torch.allclose(ours, same_in_v2(tensor), atol=1e-5), name  # exactly torchvision's v2 preset
        assert (ours - preset(tensor)).abs().max() <= one_level, name  # v1 and v2 differ by a level themselves
    assert cv.Probe(model, input_size=112).resize_size == 128  # the preset scaled with the input
    assert cv.Probe(cv.load_model("alexnet_paper", weights=None)).resize_size is None
    with pytest.raises(cv.CnnvizError, match="resize_size=100 is smaller than input_size=224"):
        cv.Probe(model, resize_size=100)


def test_load_model_records_the_weights_preset(monkeypatch):
    from cnnviz_widgets.models import zoo

    model = cv.load_model("vgg16", weights=None)
    monkeypatch.setattr(zoo, "imagenet_state_dict", lambda key, w: model.state_dict())  # as if cached offline
    loaded = cv.load_model("vgg16", weights="imagenet")
    assert loaded.cnnviz_preprocessing == {"resize": 256, "crop": 224}
    assert not hasattr(cv.load_model("vgg16", weights=model.state_dict()), "cnnviz_preprocessing")  # unknown training


@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64", "torch-uint8", "torch-float16"])
def test_a_stack_of_pictures_is_prepared_at_once_exactly_as_one_by_one(photos, dtype):
    rng = np.random.default_rng(0)
    base = [rng.integers(0, 256, (90, 120, 3), dtype=np.uint8) for _ in range(5)]
    if dtype == "uint8":
        items = base
    elif dtype.startswith("float"):
        items = [(b / 255).astype(dtype) for b in base]
    elif dtype == "torch-uint8":
        items = [torch.from_numpy(b).permute(2, 0, 1).contiguous() for b in base]
    else:
        items = [torch.from_numpy(b / 255).permute(2, 0, 1).to(torch.float16) for b in base]
    assert stackable(items)
    for resize in (None, 70):
        keep, batch, bad = prepare_batch(items, [f"p{i}" for i in range(5)], 64, resize=resize)
        one_by_one = torch.stack([prepare_raw(it, 64, resize=resize) for it in items])
        assert keep == list(range(5)) and bad == [] and batch.dtype == one_by_one.dtype
        assert torch.equal(batch, one_by_one)
    grey = prepare_batch(items, [f"p{i}" for i in range(5)], 64, channels=1)[1]
    assert torch.allclose(grey.float(), torch.stack([prepare_picture(it, 64, channels=1) for it in items]), atol=1e-6)


def test_bad_pictures_in_a_stack_are_named_and_left_out():
    good = np.full((20, 20, 3), 0.5, np.float32)
    nan, bright = good.copy(), good * 3
    nan[3, 4, 1] = np.nan
    keep, batch, bad = prepare_batch([good, nan, good, bright], ["a", "b", "c", "d"], 16)
    assert keep == [0, 2] and batch.shape == (2, 3, 16, 16)
    assert bad[0].startswith("b: the picture contains NaN") and bad[1].startswith("d: float pictures must lie in [0, 1]")
    assert prepare_batch([nan], ["only"], 16)[0] == []
    assert not stackable([good, good[:10]]) and not stackable([good, torch.zeros(3, 20, 20)]) and not stackable([])
    assert not stackable([np.zeros((20, 20, 3), np.int32)] * 2)  # other integer types are typed one by one


def test_mining_in_memory_pictures_equals_mining_them_one_by_one(alex_probe, photos):
    """The stack path (a 4-D tensor, same-shape arrays) and the per-picture path give the same results."""
    pics = torch.stack([prepare_raw(img, 224) for _, img in photos[:5]])  # (5, 3, 224, 224) uint8
    as_tensor = cv.mine(alex_probe, pics, top_layers=["c2", "c5"], k=3, progress=False, batch_size=2)
    as_files = cv.mine(alex_probe, [Image.fromarray(p.permute(1, 2, 0).numpy()) for p in pics], top_layers=["c2", "c5"],
                       k=3, progress=False, batch_size=2)
    for name, top in as_tensor.top.items():
        assert torch.equal(top.values, as_files.top[name].values) and torch.equal(top.yx, as_files.top[name].yx)
    assert as_tensor.sparsity.zeros == as_files.sparsity.zeros


def test_decoding_on_the_device_gives_what_the_readers_give(alex_probe, photos, tmp_path, monkeypatch):
    """decode='cuda' leaves JPEG files encoded for nvjpeg on the probe's device; here the CPU stands in for it
    (torchvision's batch decoder on the CPU), so the whole path runs: mixed JPEG/PNG batches, a damaged JPEG."""
    for i, (name, img) in enumerate(photos[:5]):
        Image.fromarray(img).save(tmp_path / f"{i}_{name}.{'png' if i == 2 else 'jpg'}", quality=90)
    (tmp_path / "9_damaged.jpg").write_bytes((tmp_path / "0_astronaut.jpg").read_bytes()[:2000])
    with pytest.raises(cv.DeviceUnavailableError, match="decode='cuda' decodes JPEGs on the GPU, but this probe runs on cpu"):
        cv.mine(alex_probe, str(tmp_path), top_layers=["c3"], progress=False, decode="cuda")
    on_cpu = cv.mine(alex_probe, str(tmp_path), top_layers=["c3"], k=4, progress=False, batch_size=3, num_workers=0)
    monkeypatch.setattr(StreamOptions, "check_device", lambda self, device: None)
    on_device = cv.mine(alex_probe, str(tmp_path), top_layers=["c3"], k=4, progress=False, batch_size=3,
                        num_workers=0, decode="cuda")
    # the same pictures, bit for bit; a batch holds them in another order (decoded files join after the others),
    # which moves the convolutions' rounding in the last bits
    assert torch.allclose(on_device.top["c3"].values, on_cpu.top["c3"].values, rtol=1e-5, atol=1e-6)
    assert torch.equal(on_device.top["c3"].image_index, on_cpu.top["c3"].image_index)
    assert_zero_counts_close(on_device.sparsity, on_cpu.sparsity)
    assert on_device.sparsity.n_images == on_cpu.sparsity.n_images == 5


def test_stream_options_are_one_object_for_every_kernel(alex_probe, photos):
    pictures = [img for _, img in photos[:3]]
    opts = cv.StreamOptions(batch_size=2, precision="fp32")
    a = cv.sparsity(alex_probe, pictures, options=opts, progress=False)
    b = cv.sparsity(alex_probe, pictures, batch_size=2, progress=False, channels_last=True)  # sparsity has them all now
    assert list(a) == list(b)
    top = cv.top_patches(alex_probe, pictures, "c3", k=2, options=opts, progress=False, num_workers=0)
    assert top.k == 2
    with pytest.raises(cv.CnnvizError, match=r"Unknown option 'batchsize': the streaming options are batch_size, num_workers"):
        cv.mine(alex_probe, pictures, progress=False, batchsize=4)
    with pytest.raises(cv.CnnvizError, match="options must be a cv.StreamOptions"):
        cv.mine(alex_probe, pictures, progress=False, options={"batch_size": 2})
    with pytest.raises(cv.CnnvizError, match="precision must be one of 'fp32', 'tf32', 'bf16', 'fp16'"):
        cv.StreamOptions(precision="fp8")
    with pytest.raises(cv.CnnvizError, match="precision='fp32' and autocast='bf16' disagree"):
        resolve_precision("fp32", "bf16")
    with pytest.raises(cv.CnnvizError, match="decode must be 'cpu' or 'cuda'"):
        cv.StreamOptions(decode="gpu")
    with pytest.raises(cv.CnnvizError, match="channels_last must be True or False"):
        cv.StreamOptions(channels_last="yes")
    assert cv.StreamOptions(precision="BF16").precision == "bf16" and resolve_precision(None, "fp16") == "fp16"
    assert opts.replace(batch_size=4).batch_size == 4 and opts.batch_size == 2


def test_cuda_math_is_exact_by_default_and_the_users_flags_are_restored():
    """On CUDA the kernels turn TF32 off for their own arithmetic (cuDNN enables it for convolutions by
    default, which gave a relative error of 0.16 against the CPU) and put the user's setting back after."""
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    saved = (matmul.fp32_precision, conv.fp32_precision)
    try:
        matmul.fp32_precision = conv.fp32_precision = "tf32"  # a user who asked for TF32 everywhere
        with compute_precision(torch.device("cuda"), "fp32"):
            assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
        matmul.fp32_precision = conv.fp32_precision = "ieee"
        with compute_precision(torch.device("cuda"), "tf32"):
            assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
        assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
        with pytest.raises(RuntimeError), compute_precision(torch.device("cuda"), "fp32"):
            raise RuntimeError("a failing kernel")
        assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")  # restored on errors too
        with compute_precision(torch.device("cpu"), "fp32"):  # nothing to switch on the CPU
            assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
    finally:
        matmul.fp32_precision, conv.fp32_precision = saved


def test_an_image_change_runs_one_full_forward_pass(vgg_probe):
    """The top-5 comes from the reconstruction's own forward pass (the output layer's scores are the
    network's output); before, predict ran a second full forward. The layer on screen goes first, by a pass
    that stops at it: two passes start, one reaches the scores."""
    calls, full = [], []
    first = vgg_probe.model.features[0].register_forward_hook(lambda *a: calls.append(1))  # every pass runs it
    last = vgg_probe.model.classifier[-1].register_forward_hook(lambda *a: full.append(1))  # only full passes
    try:
        w = cv.DeconvExplorer(vgg_probe, cv.sample_images()[:2])
        assert w.error == "" and (len(calls), len(full)) == (2, 1)
        w.image_index = 1
        assert w.error == "" and (len(calls), len(full)) == (4, 2)
    finally:
        first.remove()
        last.remove()
    x = vgg_probe.model_input(cv.sample_images()[1][1])
    preds = vgg_probe.classify(x, k=5)[0]
    assert [p[2] for p in w.predictions] == [c for c, _, _ in preds]
    assert np.allclose([p[1] for p in w.predictions], [round(p, 4) for _, _, p in preds], atol=2e-4)
    assert w.captions[-1] == f"the top-1 class, {preds[0][1]}"


def test_a_softmax_after_the_output_layer_costs_a_second_forward(photos):
    """Where the network's output is not the output layer's activation (a softmax after it), the explorer
    asks the network itself, as before: the top-5 stays the network's own."""
    from conftest import TinyNet

    class Softmaxed(TinyNet):
        def forward(self, x):
            return super().forward(x).softmax(1)

    probe = cv.Probe(Softmaxed().eval(), input_size=32)
    assert probe.output_layer is not None and not probe.scores_at_output_layer
    w = cv.DeconvExplorer(probe, photos[:2])
    x = probe.model_input(photos[0][1])
    assert [p[2] for p in w.predictions] == [c for c, _, _ in probe.classify(x, k=5)[0]]
    assert cv.Probe(TinyNet().eval(), input_size=32).scores_at_output_layer


def test_overlapping_kernels_restore_the_users_tf32_setting():
    """A widget's job (its own thread) and a cell can run kernels at once: the first to enter saves the user's
    TF32 setting, the last to leave restores it, and neither runs with TF32 while the other leaves."""
    from cnnviz_widgets.precision import tf32

    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    saved = (matmul.fp32_precision, conv.fp32_precision)
    try:
        matmul.fp32_precision = conv.fp32_precision = "tf32"
        a, b = tf32(False), tf32(False)
        a.__enter__(), b.__enter__()
        a.__exit__(None, None, None)  # A ends first: B must still be exact
        assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
        b.__exit__(None, None, None)
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
    finally:
        matmul.fp32_precision, conv.fp32_precision = saved


def test_the_stream_options_are_keywords_after_the_old_positional_ones(alex_probe, photos):
    pictures = [img for _, img in photos[:2]]
    with pytest.raises(TypeError, match="positional argument"):
        cv.mine(alex_probe, pictures, ["c3"], 2, True, False, 1, None, False, 0)  # num_workers was the 10th
    assert cv.mine(alex_probe, pictures, ["c3"], 2, True, False, 1, None, False).top["c3"].k == 2


def test_nvjpeg_gets_only_what_it_decodes_as_the_readers_would(tmp_path, photos):
    """decode='cuda' hands nvjpeg upright 8-bit JPEGs of a sensible size; camera photos (decoded at a reduced
    scale by a reader), turned pictures (nvjpeg ignores EXIF) and other formats stay with the readers."""
    from cnnviz_widgets.kernels.stream import jpeg_bytes

    img = Image.fromarray(photos[0][1])
    img.save(tmp_path / "small.jpg")
    img.resize((2000, 2000)).save(tmp_path / "big.jpg")
    img.save(tmp_path / "a.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(tmp_path / "turned.jpg", exif=exif)
    assert jpeg_bytes(str(tmp_path / "small.jpg"), 224) == (tmp_path / "small.jpg").read_bytes()
    for name in ("big.jpg", "a.png", "turned.jpg"):
        assert jpeg_bytes(str(tmp_path / name), 224) is None, name
    assert jpeg_bytes(np.zeros((4, 4, 3), np.uint8), 224) is None


def test_nvjpeg_waits_for_the_work_queued_before_it(monkeypatch):
    """decode='cuda': nvJPEG writes blocks the caching allocator hands it without waiting for the caller's stream
    (pytorch/vision#9606, meta-pytorch/torchcodec#1634), so it could overwrite the last batch's top-k indices
    while queued kernels still read them (a device-side index assert). The stream is synchronised first; the
    stream and the decoder here are fakes that record the order of events, so this runs without a GPU."""
    from types import SimpleNamespace

    import torchvision.io

    from cnnviz_widgets.kernels.stream import PictureBatch, decode_on_device

    events = []

    class Stream:
        def synchronize(self):
            events.append("caller stream synchronized")

    def fake_decode_jpeg(data, mode=None, device=None):
        events.append("nvjpeg writes")
        return [torch.full((3, 10, 12), 7, dtype=torch.uint8) for _ in data]

    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream())
    monkeypatch.setattr(torchvision.io, "decode_jpeg", fake_decode_jpeg)
    probe = SimpleNamespace(device=torch.device("cuda"), input_size=8, resize_size=None, channels=3)
    batch = PictureBatch(torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.uint8), [], [4, 2], [b"a", b"b"])
    index, pictures, bad = decode_on_device(batch, probe, images=None)
    assert index.tolist() == [4, 2] and pictures.shape == (2, 3, 8, 8) and bad == []
    assert pictures.unique().tolist() == [7]
    assert events == ["caller stream synchronized", "nvjpeg writes"]
