"""Hostile input against saving, figures, class names, custom rules, pictures and weight files (issue 24): each
item of the adversarial sweep, with its variants. Every test here failed before its fix."""
from __future__ import annotations

import os
import re
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.transforms.v2 import functional as TF

import cnnviz_widgets as cv
from cnnviz_widgets import figures as F
from cnnviz_widgets.images import check_picture, read_picture
from cnnviz_widgets.resize import resize_center_crop
from cnnviz_widgets.probe.rules import RULES, Deconvnet, ReverseRule

from conftest import TinyNet


@pytest.fixture(scope="module")
def probe() -> cv.Probe:
    torch.manual_seed(0)
    return cv.Probe(TinyNet().eval(), input_size=32)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)


def svg_ok(path: Path) -> ET.Element:
    return ET.fromstring(path.read_bytes())  # raises on invalid XML, as a browser refuses the file


# ------------------------------------------------------------------ 1. thin and huge pictures

def _reference(t: torch.Tensor, size: int, resize: int | None) -> torch.Tensor:
    """torchvision's Resize + CenterCrop arithmetic, done the plain way (the whole resized picture first)."""
    h, w = t.shape[-2:]
    if resize is None:
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        top, left = (nh - size) // 2, (nw - size) // 2
    else:
        nh, nw = (resize, int(resize * w / h)) if h <= w else (int(resize * h / w), resize)
        top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    return TF.resize(t, [nh, nw], antialias=True)[..., top : top + size, left : left + size]


@pytest.mark.parametrize("shape", [(3, 1, 400), (3, 300, 2), (3, 5, 90), (1, 37, 900), (3, 30, 1000), (2, 3, 2, 700),
                                   (3, 600, 3000)])  # the last: a window of 600 rows, taken in bands
@pytest.mark.parametrize("resize", [None, 40])
def test_a_thin_picture_is_resized_within_its_crop_as_the_whole_resize_would(shape, resize):
    """Only the crop of a thin picture is resized (WINDOW_AREA), and it equals the plain resize-then-crop: floats
    to float rounding, 8-bit pictures within one level."""
    g = torch.Generator().manual_seed(sum(shape))
    t = torch.rand(*shape, generator=g)
    size = 32
    out, ref = resize_center_crop(t, size, resize), _reference(t, size, resize).clamp(0, 1)
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert float((out - ref).abs().max()) < 1e-4  # PyTorch sums in float32, this in float64: 1/40 of a level
    u = (t * 255).round().to(torch.uint8)
    out8, ref8 = resize_center_crop(u, size, resize), _reference(u, size, resize)
    assert out8.dtype == torch.uint8 and int((out8.int() - ref8.int()).abs().max()) <= 1


def test_an_ordinary_picture_still_takes_torchvisions_resize_exactly():
    t = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(resize_center_crop(t, 224), _reference(t, 224, None))
    assert torch.equal(resize_center_crop(t, 224, 256), _reference(t, 224, 256))


def test_a_thin_picture_never_builds_its_whole_resize(monkeypatch, probe):
    """A 1x100000 picture through preprocess, load_images and the stream: what TF.resize is asked to make stays
    small (it was 32 x 3,200,000 here; 224 x 22,400,000, some 15 GB, at 224 px)."""
    asked: list[tuple[int, int]] = []
    real = TF.resize
    monkeypatch.setattr(TF, "resize", lambda t, size, **kw: asked.append(tuple(size)) or real(t, size, **kw))
    thin = np.random.default_rng(1).integers(0, 256, (1, 100_000, 3), dtype=np.uint8)
    assert probe.preprocess(thin).shape == (1, 3, 32, 32)
    assert cv.sparsity(probe, cv.load_images([thin, thin[:, :5000]]), progress=False, num_workers=0).n_images == 2
    assert all(h * w <= 4 * 32 * 32 for h, w in asked), asked


# ------------------------------------------------------------------ 2. long labels and names, big grids

def test_a_long_label_is_cut_in_a_few_measurements_not_one_per_character():
    calls = []
    fits = lambda t: calls.append(t) or len(t) <= 41  # noqa: E731
    out = F.middle_cut("a" * 10_000 + "z", fits)
    assert len(out) == 41 and out.startswith("aaa") and out.endswith("z") and "…" in out
    assert len(calls) <= 16  # bisection: log2(10,000) + 2
    assert F.middle_cut("abc", lambda t: False) == "…"


def test_picture_grid_with_8000_character_labels_is_as_wide_as_its_pictures():
    pic = np.zeros((16, 16, 3), np.uint8)
    grid = cv.picture_grid([[pic, pic]], column_labels=["x" * 8000, "y"], row_labels=["r" * 8000], size=64)
    assert grid.size[0] <= 160 + 8 + 2 * 64 + 4 and grid.size[1] <= 64 + 20


@pytest.mark.parametrize("size, rows", [(8000, 1), (1000, 7 * [8])])
def test_picture_grid_refuses_a_canvas_beyond_its_bound(size, rows):
    pic = np.zeros((4, 4, 3), np.uint8)
    grid_rows = [[pic]] if rows == 1 else [[pic] * n for n in rows]
    with pytest.raises(cv.CnnvizError, match=r"picture_grid would be .* megapixels, over the 40 it draws\): give a "
                                             r"smaller size="):
        cv.picture_grid(grid_rows, size=size)


def test_saved_figures_stay_bounded_whatever_the_names(tmp_path, probe, photo):
    long = "n" * 10_000
    fig = cv.figure_layers(probe, [(long, photo)], title="T" * 10_000)
    w, h = (fig.get_size_inches() * fig.dpi).round().astype(int)
    assert w <= F.FREE_WIDTH + 2 * 8 and h < 600, (w, h)
    saved = cv.save_figure(fig, tmp_path / "f.svg")
    root = svg_ok(saved)
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert long in titles  # the whole name is kept for hovering
    explorer = cv.DeconvExplorer(probe, [(long, photo)])
    ew, eh = (explorer.to_figure().get_size_inches() * 100).round().astype(int)
    assert ew < 2500 and eh < 2500, (ew, eh)  # was 100,275 px wide
    cmp = cv.CompareModels(probe, probe, [(long, photo)], names=("A" * 5000, "B"))
    cw, ch = (cmp.to_figure().get_size_inches() * 100).round().astype(int)
    assert cw < 2500 and ch < 2500, (cw, ch)
    sf = cv.figure_sparsity({"L" * 5000: {"c1": 0.2, "c2": 0.4}, "M": {"c1": 0.3}}, title="S" * 5000)
    assert tuple((sf.get_size_inches() * 100).round()) == (800, 460)
    svg_ok(cv.save_figure(sf, tmp_path / "s.svg"))


# ------------------------------------------------------------------ 3. load_images checks without converting

BAD_PICTURES = [
    np.full((4, 4, 3), np.nan, np.float32), np.full((4, 4, 3), np.inf), np.full((4, 4, 3), 1.5), np.full((4, 4), -0.5),
    np.full((4, 4, 3), -3, np.int32), np.full((4, 4, 3), 70_000, np.int64), np.zeros((0, 4, 3), np.uint8),
    np.zeros((4, 4, 2)), np.zeros((2, 4, 4, 3)), torch.full((3, 4, 4), float("nan")), torch.full((3, 4, 4), -1.0),
    torch.zeros(3, 4, 4, dtype=torch.complex64), torch.zeros(3, 4, 4, device="meta"), torch.zeros(2, 4, 4),
    torch.full((1, 4, 4), -1, dtype=torch.int16),
]


@pytest.mark.parametrize("bad", BAD_PICTURES, ids=lambda b: f"{type(b).__name__}{tuple(b.shape)}{b.dtype}")
def test_the_cheap_check_refuses_what_reading_refuses_with_the_same_message(bad):
    with pytest.raises(cv.ImageError) as read:
        read_picture(bad, "p")
    with pytest.raises(cv.ImageError) as checked:
        check_picture(bad, "p")
    assert str(checked.value) == str(read.value)
    with pytest.raises(cv.ImageError, match="image 1 \\(image 1\\)"):
        cv.load_images([np.zeros((4, 4, 3), np.uint8), bad])


def test_load_images_converts_no_in_memory_picture(monkeypatch):
    """What took 0.2 s a 12-megapixel picture (a float copy of each) reads two extremes now."""
    import cnnviz_widgets.images as images
    import cnnviz_widgets.imageset as imageset

    def never(*args, **kwargs):
        raise AssertionError("a picture was converted to check it")

    monkeypatch.setattr(images, "picture_to_tensor", never)
    monkeypatch.setattr(imageset, "picture_to_tensor", never)  # the name load_images' sets call
    monkeypatch.setattr(images, "scale_integer", lambda t, name: never() if np.asarray(t).size > 2 else None)
    big = [np.zeros((300, 400, 3), np.uint8), np.zeros((30, 40, 3), np.float32), torch.zeros(3, 30, 40, dtype=torch.int32),
           Image.new("RGB", (40, 30)), np.zeros((30, 40), np.uint16)]
    assert len(cv.load_images(big)) == 5


# ------------------------------------------------------------------ 4, 5, 7. save_figure's files and paths

@pytest.fixture()
def small_figure():
    sheet = F.Sheet()
    sheet.text("c1", 0, 0)
    sheet.picture(np.full((10, 10, 3), 99, np.uint8), 0, 20)
    return sheet.figure()


def test_save_figure_never_writes_through_a_planted_link(tmp_path, small_figure):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in (f".fig.png.{os.getpid()}.part", ".fig.png.part", "fig.png.part"):  # the old name and near guesses
        (tmp_path / name).symlink_to(victim)
    cv.save_figure(small_figure, tmp_path / "fig.png")
    assert victim.read_text() == "precious"
    assert Image.open(tmp_path / "fig.png").size[0] > 10
    assert not (tmp_path / "fig.png").is_symlink()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([".fig.png.part", f".fig.png.{os.getpid()}.part", "fig.png", "fig.png.part", "victim.txt"])


def test_a_saved_figure_has_the_mode_a_plain_new_file_gets(tmp_path, small_figure):
    old = os.umask(0o027)
    try:
        made = cv.save_figure(small_figure, tmp_path / "f.svg")
    finally:
        os.umask(old)
    assert stat.S_IMODE(made.stat().st_mode) == 0o640


def test_save_figure_expands_the_home_folder(tmp_path, monkeypatch, small_figure):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(), cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    made = cv.save_figure(small_figure, "~/figs/fig.png")
    assert made == home / "figs" / "fig.png" and made.is_file()
    assert list(cwd.iterdir()) == []  # no folder called "~"


def test_a_nul_in_a_path_is_a_message(tmp_path, small_figure):
    with pytest.raises(cv.CnnvizError, match="holds a NUL character"):
        cv.save_figure(small_figure, str(tmp_path / "a\x00b.png"))
    with pytest.raises(cv.WeightsFileError, match="holds a NUL character"):
        cv.load_model("alexnet_paper", weights=str(tmp_path / "w\x00.pth"))
    with pytest.raises(cv.ImageError, match="does not exist"):
        cv.load_images(str(tmp_path / "pic\x00.png"))
    with pytest.raises(cv.CnnvizError, match="holds a character no file name can"):
        cv.save_figure(small_figure, str(tmp_path / "a\ud800.svg"))
    with pytest.raises(cv.WeightsFileError, match="holds a character no file name can"):
        cv.load_model("alexnet_paper", weights=str(tmp_path / "w\ud800.pth"))
    with pytest.raises(cv.CnnvizError, match="cannot be a file name here: File name too long"):
        cv.save_figure(small_figure, str(tmp_path / ("x" * 300 + ".png")))
    with pytest.raises(cv.ImageError, match="cannot be a path here: File name too long"):
        cv.load_images(str(tmp_path / ("x" * 300 + ".png")))
    with pytest.raises(cv.ImageError, match="does not exist"):
        cv.load_images([str(tmp_path / ("x" * 300 + ".png"))])
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ 6. characters no SVG can hold

@pytest.mark.parametrize("char", ["\x07", "\x1b", "\x0c", "\x00", "\ufffe", "\x7f", "\r", "\ud800"])
def test_control_characters_in_names_and_labels_leave_a_valid_svg(tmp_path, photo, char):
    torch.manual_seed(0)
    labels = [f"class{char}{i}" for i in range(10)]
    probe = cv.Probe(TinyNet().eval(), input_size=32, labels=labels)
    fig = cv.figure_layers(probe, [(f"photo{char}name", photo)])
    root = svg_ok(cv.save_figure(fig, tmp_path / "f.svg"))
    texts = " ".join(t.text or "" for t in root.iter())
    assert F.printable(char) in texts and f"photo{F.printable(char)}name" in texts
    assert Image.open(cv.save_figure(fig, tmp_path / "f.png")).size[0] > 0
    assert cv.save_figure(fig, tmp_path / "f.pdf").read_bytes().rstrip().endswith(b"%%EOF")
    grid = cv.picture_grid([[photo]], column_labels=[f"a{char}b"], row_labels=[f"r{char}"])
    assert grid.size[0] > 0
    sf = cv.figure_sparsity({f"net{char}": {f"c{char}1": 0.2, "c2": 0.5}}, title=f"t{char}")
    svg_ok(cv.save_figure(sf, tmp_path / "s.svg"))


# ------------------------------------------------------------------ 8. two networks, two names

@pytest.mark.parametrize("names", [("A",), ("A", "B", "C"), "AB", ("A", 2)])
def test_compare_models_takes_two_names_only(probe, photo, names):
    w = cv.CompareModels(probe, probe, [photo], names=names)
    assert "names must be two names, one per network (strs)" in w.error
    with pytest.raises(cv.CnnvizError, match="nothing to save yet"):
        w.save("/nonexistent/never.svg")
    with pytest.raises(cv.CnnvizError, match="names must be two names, one per network"):
        cv.figure_compare(probe, probe, [photo], names=names)


# ------------------------------------------------------------------ 9. class names

def test_labels_without_an_order_are_refused():
    for unordered in ({"tree", "fish", "truck"}, frozenset({"a", "b"})):
        with pytest.raises(cv.CnnvizError, match="has no order .* pass a list"):
            cv.Probe(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), input_size=16, labels=unordered)
    keys = {"a": 1, "b": 2}.keys()  # a dict's keys keep their order: accepted
    assert cv.Probe(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), input_size=16, labels=keys).labels == ["a", "b"]


def _classifier(labels) -> cv.Probe:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4)).eval()
    with torch.no_grad():
        net[4].weight.copy_(torch.eye(4))
        net[4].bias.copy_(torch.tensor([0.0, 5.0, 0.0, 4.0]))  # outputs 1 then 3 lead
    return cv.Probe(net, input_size=16, labels=labels)


def test_repeated_labels_are_shown_apart_and_never_picked_silently():
    with pytest.warns(cv.CnnvizWarning, match=r"labels repeat 1 name \('crane' at outputs 1, 3\)"):
        probe = _classifier(["cat", "crane", "dog", "crane"])
    x = probe.preprocess([np.zeros((20, 20, 3), np.uint8)])
    top = probe.predict(x, k=2)[0]
    assert [name for name, _ in top] == ["crane (1)", "crane (3)"]  # two classes, two names
    with pytest.raises(cv.LabelNotFoundError, match=r"'crane' names 2 classes: 'crane \(1\)' \(output 1\), "
                                                    r"'crane \(3\)' \(output 3\)"):
        probe.class_index("crane")
    assert probe.class_index("crane (3)") == 3 and probe.class_index("cat") == 0 and probe.class_index(3) == 3


def test_labels_equal_but_for_case_are_found_exactly_and_ambiguity_is_said():
    probe = _classifier(["Cardigan", "cardigan", "dog", "Cat"])  # torchvision's ImageNet list has this pair
    assert probe.class_index("Cardigan") == 0 and probe.class_index("cardigan") == 1
    assert probe.class_index("cat") == 3  # one class fits when case is ignored: found
    with pytest.raises(cv.LabelNotFoundError, match="'CARDIGAN' names 2 classes"):
        probe.class_index("CARDIGAN")
    x = probe.preprocess([np.zeros((20, 20, 3), np.uint8)])
    with pytest.raises(cv.LabelNotFoundError, match="names 2 classes"):
        probe.reconstruct(x, layers=probe.output_layer.name, channel="CARDIGAN")


# ------------------------------------------------------------------ 10. maps no picture can show

@pytest.mark.parametrize("poison", ["all-nan", "one-nan", "one-inf", "minus-inf"])
@pytest.mark.parametrize("mode", ["signed", "contrast", "minmax", "auto"])
def test_a_map_with_nan_or_infinity_is_refused_not_drawn(poison, mode):
    t = torch.rand(3, 8, 8) - 0.5
    if poison == "all-nan":
        t[:] = float("nan")
    else:
        t[1, 2, 3] = {"one-nan": float("nan"), "one-inf": float("inf"), "minus-inf": -float("inf")}[poison]
    with pytest.raises(cv.ImageError, match="no picture can show it truthfully"):
        cv.to_display(t, mode)
    with pytest.raises(cv.ImageError, match="no picture can show it truthfully"):
        F.displayed([t], mode)
    huge = torch.full((3, 8, 8), 3e38)  # finite, though its sum overflows: still a picture
    assert cv.to_display(huge, mode).shape == (8, 8, 3)


# ------------------------------------------------------------------ 11. custom reverse rules

class _NoneBack(ReverseRule):
    name = "none-back"

    def backward(self, grad, saved):
        return None


class _WrongShape(ReverseRule):
    name = "wrong-shape"

    def backward(self, grad, saved):
        return grad[:, :1]


class _NoBackward(ReverseRule):
    name = "no-backward"


class _NoName(ReverseRule):
    def backward(self, grad, saved):
        return grad


class _NaN(ReverseRule):
    name = "nan"

    def backward(self, grad, saved):
        return grad / 0.0 * 0.0


class _BadSave(ReverseRule):
    name = "bad-save"

    def save(self, x):
        return x.tolist()

    def backward(self, grad, saved):
        return grad


class _Relu(ReverseRule):
    name = "my-deconvnet"

    def backward(self, grad, saved):
        return grad.clamp_min(0)


@pytest.mark.parametrize("rule, message", [
    (_NoneBack(), r"The reverse rule 'none-back': backward\(\) returned None; it must return a tensor shaped like grad"),
    (_WrongShape(), r"'wrong-shape': backward\(\) returned a tensor of shape \(1, 1, 16, 16\) for a signal of shape "
                    r"\(1, 16, 16, 16\)"),
    (_NoBackward(), r"'no-backward' \(_NoBackward\) defines no backward\(self, grad, saved\)"),
    (_NoName(), r"The reverse rule _NoName has no name: give the class one"),
    (_NaN(), r"'nan': backward\(\) returned NaN or infinite values"),
    (_BadSave(), r"'bad-save': save\(\) returned <list of 1 item>; it must return a tensor .* or None"),
])
def test_a_custom_rule_is_checked_when_first_used_and_told_what_is_wrong(probe, photo, rule, message):
    x = probe.preprocess([photo])
    with pytest.raises(cv.CnnvizError, match=message):
        probe.reconstruct(x, layers="c3", rule=rule)
    name = getattr(rule, "name", None)
    if name is None:
        return
    RULES[name] = rule  # registered, it joins the widgets' selectors; the widget says what is wrong with it
    try:
        w = cv.DeconvExplorer(probe, [photo], rule=name)
        assert [name, name] in w.rule_options
        assert re.search(message, w.error), w.error
    finally:
        del RULES[name]


def test_a_correct_custom_rule_gives_what_the_builtin_does(probe, photo):
    x = probe.preprocess([photo])
    mine = probe.reconstruct(x, layers=["c2", "c3"], rule=_Relu())
    builtin = probe.reconstruct(x, layers=["c2", "c3"], rule=Deconvnet())
    assert all(torch.equal(mine[k], builtin[k]) for k in ("c2", "c3"))


# ------------------------------------------------------------------ 12. SparsityChart's series

def test_sparsity_chart_takes_what_figure_sparsity_takes(probe, photo):
    w = cv.SparsityChart({"mine": {"c1": 0.25, "p2": 0.5}, 7: {"c1": 0.1}})
    assert not w.error.value and list(w.data) == ["mine", "7"]  # an int label is a name, as the figure has it
    w = cv.SparsityChart({"tiny": probe}, images=[photo])
    assert not w.error.value and set(w.data["tiny"]) >= {"c1", "c2", "c3"}
    w = cv.SparsityChart({"tiny": (probe, [photo])})
    assert not w.error.value
    fig = cv.figure_sparsity({"module": (nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval(), [photo])})  # wrapped
    assert fig.get_size_inches()[0] > 0
    with pytest.raises(cv.CnnvizError, match=r"series\['A'\]\[0\] must be a cv.Probe"):
        cv.figure_sparsity({"A": ("vgg", [photo])})


@pytest.mark.parametrize("series, kwargs, message", [
    ({"c1": 0.5, "c2": 0.4}, {}, "series looks like one network's {layer: fraction}"),
    ({"c1": 0.5, "c2": 0.4, "c3": 0.1}, {}, "give it a label"),
    ("probe", {}, "series is a probe: give it a label"),
    ({"A": "probe"}, {}, "series['A'] is a probe: give images="),
    ({"A": {"c1": "x"}}, {}, "series['A'] must be a cv.Sparsity"),
    ({"A": {"c1": 0.5}}, {"title": 123}, "title must be a str, got 123."),
    ({1: {"c1": 0.5}, "1": {"c1": 0.2}}, {}, "series has two labels that read '1'"),
])
def test_sparsity_chart_and_figure_say_what_to_pass(probe, series, kwargs, message):
    series = probe if series == "probe" else {k: probe if v == "probe" else v for k, v in series.items()}
    w = cv.SparsityChart(series, **kwargs)
    assert message in w.error.value.replace("&#x27;", "'")
    with pytest.raises(cv.CnnvizError) as err:
        cv.figure_sparsity(series, **kwargs)
    assert message in str(err.value)


# ------------------------------------------------------------------ 13. arguments of the wrong kind

@pytest.mark.parametrize("depths, message", [(2.5, "got 2.5"), (0, "got 0"), ("3", "got '3'"), (True, "got True")])
def test_compare_models_depths_must_be_a_whole_number(probe, photo, depths, message):
    w = cv.CompareModels(probe, probe, [photo], depths=depths)
    assert f"depths must be a positive whole number of layers, {message}." in w.error


def test_a_dict_of_named_pictures_is_a_set_of_pictures(probe, photo):
    w = cv.DeconvExplorer(probe, {"cat": photo, "dog": photo[::-1]})
    assert not w.error and w.image_names == ["cat", "dog"]
    images = cv.load_images({"a": photo, 3: photo})
    assert images.names == ["a", "3"] and np.array_equal(images[0], photo)
    assert probe.preprocess({"a": photo}).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("x, y, message", [(float("nan"), 0, "x must be a pixel's column"),
                                           (0, float("inf"), "y must be a pixel's row"), ("3", 0, "got '3'")])
def test_show_unit_at_names_a_coordinate_that_is_no_number(probe, photo, x, y, message):
    w = cv.DeconvExplorer(probe, [photo])
    with pytest.raises(cv.CnnvizError, match=message):
        w.show_unit_at("c2", x, y)


@pytest.mark.parametrize("title", [123, b"bytes", ["a"]])
def test_a_figure_title_must_be_text(probe, photo, title):
    with pytest.raises(cv.CnnvizError, match="title must be a str, got"):
        cv.figure_layers(probe, [photo], title=title)
    with pytest.raises(cv.CnnvizError, match="title must be a str, got"):
        cv.figure_sparsity({"A": {"c1": 0.5}}, title=title)


# ------------------------------------------------------------------ 14. weight files that hold no usable numbers

@pytest.fixture(scope="module")
def alex_state():
    return cv.load_model("alexnet_paper", weights=None, seed=0).state_dict()


def test_sparse_weights_load_as_the_same_numbers_dense(tmp_path, alex_state):
    sparse = {k: v.to_sparse() if v.ndim >= 2 else v for k, v in alex_state.items()}
    torch.save(sparse, tmp_path / "sparse.pth")
    for weights in (sparse, tmp_path / "sparse.pth"):
        model = cv.load_model("alexnet_paper", weights=weights)
        assert all(t.layout == torch.strided and torch.equal(t, alex_state[k]) for k, t in model.state_dict().items())
        cv.Probe(model, input_size=227)  # what failed with NotImplementedError (SparseCPU)


@pytest.mark.parametrize("change, message", [
    (lambda t: t.to("meta"), "is a meta tensor: it has a shape but no values"),
    (lambda t: t.round().long(), "holds int64 numbers where the model has float32 ones"),
    (lambda t: t.to(torch.complex64), "holds complex64 numbers where the model has float32 ones"),
    (lambda t: t.bool(), "holds bool numbers where the model has float32 ones"),
])
def test_weights_with_no_usable_numbers_are_named(tmp_path, alex_state, change, message):
    bad = {k: change(v) if k.endswith("weight") else v for k, v in alex_state.items()}
    first = next(k for k in alex_state if k.endswith("weight"))
    with pytest.raises(cv.WeightsFileError, match=f"'{first}' in the state dict passed as weights= {message}"):
        cv.load_model("alexnet_paper", weights=bad)
    if "meta" not in message:
        torch.save(bad, tmp_path / "bad.pth")
        with pytest.raises(cv.WeightsFileError, match=f"in 'bad.pth'|{message}"):
            cv.load_model("alexnet_paper", weights=tmp_path / "bad.pth")


def test_a_nameless_rule_registered_by_hand_is_said_by_the_widget_not_a_keyerror(probe, photo):
    RULES["nameless"] = _NoName()
    try:
        w = cv.DeconvExplorer(probe, [photo], rule="nameless")
        assert ["nameless", "nameless"] in w.rule_options
        assert "The reverse rule _NoName has no name" in w.error
    finally:
        del RULES["nameless"]
