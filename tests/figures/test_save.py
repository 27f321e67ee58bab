"""Saved figures: the paper's figures from the kernels (cv.figure_*) and every widget's save(path), opened again and
compared with what they were composed from: pixel sizes, the pictures themselves (pixel for pixel where they are
drawn at their own size), the mid-grey zero, and every layer name and receptive field in the SVG's text."""
from __future__ import annotations

import base64
import io
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import cnnviz_widgets as cv
from cnnviz_widgets import figures as F

M = 8  # the sheet's margin: pictures drawn at sheet (x, y) land at PNG pixel (x + M, y + M)


@pytest.fixture(scope="module")
def alex_probe(alexnet_paper):
    """The seeded AlexNet's numbers as loaded weights (a state dict): these tests measure the layout, which a random
    network's figures put under a stamp (tests/api/test_honest_weights.py holds the stamp to its place and text)."""
    return cv.Probe(cv.load_model("alexnet_paper", weights=alexnet_paper.state_dict()), device="cpu")


@pytest.fixture(scope="module")
def vgg_probe(vgg16):
    return cv.Probe(cv.load_model("vgg16", weights=vgg16.state_dict()), device="cpu")


@pytest.fixture(scope="module", autouse=True)
def exact_pictures():
    """The saved figures hold the kernel's exact pixels; these tests compare them with the pictures the widgets
    sent, so they ask for raw pixels (the default, JPEG, is a few grey levels off)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNVIZ_PICTURES", "bmp")
        yield


def png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def pixel_size(fig) -> tuple[int, int]:
    w, h = fig.get_size_inches() * fig.dpi
    return round(w), round(h)


def assert_not_blank(a: np.ndarray) -> None:
    assert a.std() > 10 and len(np.unique(a.reshape(-1, 3), axis=0)) > 50


def at(a: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    """The PNG's pixels where the sheet drew a w x h picture at (x, y)."""
    return a[y + M : y + M + h, x + M : x + M + w]


def resized(picture: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(picture).resize((size, size), Image.BILINEAR))


def tile_width(grid) -> int:
    return grid.per_row * (grid.cell + 1) - 1


def rf(probe, name: str) -> str:
    return f"RF {probe.receptive_field(name).size} px"


# ------------------------------------------------------------------ save_figure

@pytest.mark.parametrize("path, message", [
    ("x.gif", "path must end in .png, .svg or .pdf, got 'x.gif'."),
    ("figure", "path must end in .png, .svg or .pdf, got 'figure'."),
    (3, "path must be a file name (a str or pathlib.Path) ending in .png, .svg or .pdf, got 3."),
    (b"x.png", "path must be a file name (a str or pathlib.Path)"),
])
def test_save_figure_names_a_bad_path_and_writes_nothing(tmp_path, monkeypatch, path, message):
    monkeypatch.chdir(tmp_path)
    sheet = F.Sheet()
    sheet.text("c1", 0, 0)
    with pytest.raises(cv.CnnvizError) as err:
        cv.save_figure(sheet.figure(), path)
    assert message in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_save_figure_refuses_a_folder_text_formats_for_a_picture_and_what_is_no_figure(tmp_path):
    sheet = F.Sheet()
    sheet.text("c1", 0, 0)
    (tmp_path / "out.png").mkdir()
    with pytest.raises(cv.CnnvizError, match="is a folder: give a file name ending in .png, .svg or .pdf"):
        cv.save_figure(sheet.figure(), tmp_path / "out.png")
    grid = cv.picture_grid([[np.zeros((4, 4, 3), np.uint8)]])
    with pytest.raises(cv.CnnvizError) as err:
        cv.save_figure(grid, tmp_path / "grid.svg")
    assert "path must end in .png (a picture without text; compose a figure with text to save SVG or PDF), got" \
           in str(err.value)
    with pytest.raises(cv.CnnvizError, match="figure must be a matplotlib Figure .* got 'c1'"):
        cv.save_figure("c1", tmp_path / "x.png")
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert cv.save_figure(grid, str(tmp_path / "grid.png")) == tmp_path / "grid.png"  # a str, a PIL picture
    assert np.array_equal(np.asarray(Image.open(tmp_path / "grid.png")), np.asarray(grid))


def test_save_figure_writes_each_format_whole_or_not_at_all(tmp_path, monkeypatch):
    sheet = F.Sheet()
    sheet.text("c3_2", 0, 0)
    sheet.text("a $5$ cat & <dog>", 0, 50)  # text as it is: no mathtext, escaped in the SVG
    sheet.picture(np.full((20, 30, 3), 200, np.uint8), 0, 20)
    fig = sheet.figure()
    assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"  # a notebook shows it without pyplot
    made = cv.save_figure(fig, tmp_path / "new" / "folder" / "f.PNG")  # missing folders made, suffix in any case
    assert made == tmp_path / "new" / "folder" / "f.PNG" and png(made).shape[1] > 30 + 2 * M
    assert cv.save_figure(fig, tmp_path / "f.pdf").read_bytes().startswith(b"%PDF-")
    assert {"c3_2", "a $5$ cat & <dog>"} <= set(svg_texts(cv.save_figure(fig, tmp_path / "f.svg")))  # text stays text
    before = (tmp_path / "f.svg").read_bytes()
    assert cv.save_figure(fig, tmp_path / "f.svg").read_bytes() == before  # no date, no random ids: the same bytes

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(type(fig), "savefig", broken)
    with pytest.raises(RuntimeError):
        cv.save_figure(fig, tmp_path / "f.svg")
    assert (tmp_path / "f.svg").read_bytes() == before  # the old file is untouched, nothing half-written
    with pytest.raises(RuntimeError):
        cv.save_figure(fig, tmp_path / "g.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.svg", "new"]


def test_pictures_land_pixel_for_pixel_and_a_zero_reconstruction_is_the_papers_mid_grey(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (50, 37, 3), dtype=np.uint8)
    zero = cv.to_display(torch.zeros(3, 16, 16))
    assert (zero == 128).all()  # the display's zero: mid-grey
    sheet = F.Sheet()
    sheet.picture(a, 13, 21)
    sheet.picture(zero, 70, 33, 64)
    sheet.frame(70, 33, 64, 64)
    sheet.picture(a[..., 0], 0, 80)  # a grey picture stays grey (imshow would colour-map it)
    out = png(cv.save_figure(sheet.figure(), tmp_path / "s.png"))
    assert np.array_equal(at(out, 0, 80, 37, 50), np.repeat(a[..., :1], 3, axis=2))
    assert out.shape == (80 + 50 + 2 * M, 70 + 64 + 2 + 2 * M, 3)
    assert np.array_equal(at(out, 13, 21, 37, 50), a)
    assert (at(out, 70, 33, 64, 64) == 128).all()  # the frame is drawn outside the picture


def test_a_scaled_png_has_each_pictures_pixel_as_a_block_and_the_same_layout(tmp_path):
    """scale=3: three times the pixels each way, every picture's pixel a 3x3 block where the layout put it (the
    pictures are drawn nearest, not smoothed), and an SVG keeps its page size."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    sheet = F.Sheet()
    sheet.picture(a, 13, 21)
    sheet.text("c1", 0, 0)
    fig = sheet.figure()
    one = png(cv.save_figure(fig, tmp_path / "one.png"))
    three = png(cv.save_figure(fig, tmp_path / "three.png", scale=3))
    assert three.shape == (3 * one.shape[0], 3 * one.shape[1], 3)
    block = three[3 * (21 + M): 3 * (21 + M + 20), 3 * (13 + M): 3 * (13 + M + 30)]
    assert np.array_equal(block, np.repeat(np.repeat(a, 3, axis=0), 3, axis=1))
    half = png(cv.save_figure(fig, tmp_path / "half.png", scale=0.5))
    assert all(abs(h - o / 2) <= 1 for h, o in zip(half.shape[:2], one.shape[:2]))  # matplotlib rounds down
    svgs = [ET.parse(cv.save_figure(fig, tmp_path / f"{k}.svg", scale=k)).getroot() for k in (1, 3)]
    assert svgs[0].get("width") == svgs[1].get("width") and svgs[0].get("height") == svgs[1].get("height")
    inside = [[decode(base64.b64decode(i.get("{http://www.w3.org/1999/xlink}href").split(",", 1)[1]))
               for i in svg.iter("{http://www.w3.org/2000/svg}image")] for svg in svgs]
    # the picture as it is (stored bottom row first: the SVG flips it back, scale(1 -1)), then three times its pixels
    assert [p.shape for p in inside[0]] == [a.shape] and np.array_equal(inside[0][0][::-1], a)
    assert np.array_equal(inside[1][0][::-1], np.repeat(np.repeat(a, 3, axis=0), 3, axis=1))
    assert pixel_size(fig) == one.shape[:2][::-1]  # saving at a scale leaves the figure as it was


@pytest.mark.parametrize("scale, message", [
    (0, "scale must be from 0.25 to 8 (pixels of the file per pixel shown; 2 or 3 for print), got 0."),
    (9, "scale must be from 0.25 to 8"),
    (float("nan"), "scale must be a number from 0.25 to 8 (pixels of the file per pixel shown), got nan."),
    ("3", "scale must be a number from 0.25 to 8 (pixels of the file per pixel shown), got '3'."),
    (True, "scale must be a number from 0.25 to 8"),
    (None, "scale must be a number from 0.25 to 8"),
])
def test_a_bad_scale_is_said_and_nothing_is_written(tmp_path, scale, message):
    sheet = F.Sheet()
    sheet.text("c1", 0, 0)
    with pytest.raises(cv.CnnvizError) as err:
        cv.save_figure(sheet.figure(), tmp_path / "f.png", scale=scale)
    assert message in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_picture_of_pixels_is_not_blown_up(tmp_path):
    grid = cv.picture_grid([[np.zeros((4, 4, 3), np.uint8)]])
    with pytest.raises(cv.CnnvizError, match=r"scale=2 draws a figure larger, but this is a picture of pixels .*"
                                             r"\(picture_grid's size=\)"):
        cv.save_figure(grid, tmp_path / "grid.png", scale=2)
    assert list(tmp_path.iterdir()) == []
    assert np.array_equal(png(cv.save_figure(grid, tmp_path / "grid.png", scale=1)), np.asarray(grid.convert("RGB")))


# ------------------------------------------------------------------ the paper's figures from the kernels

class Dead(nn.Module):
    """Every activation is zero (a conv with zero weights and a negative bias): every reconstruction is zero."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1),
                                      nn.ReLU())
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.zeros_(m.weight)
                nn.init.constant_(m.bias, -1.0)

    def forward(self, x):
        return self.features(x)


def test_figure_layers_zero_reconstructions_are_mid_grey(tmp_path, photos):
    probe = cv.Probe(Dead(), input_size=32, device="cpu")
    fig = cv.figure_layers(probe, photos[:2], layers=["c1", "c2"], size=32, title="dead")
    out = png(cv.save_figure(fig, tmp_path / "dead.png"))
    assert out.shape[:2] == pixel_size(fig)[::-1]
    for r in range(2):  # layout: title 24, labels 36, rows of (size + gap 6); the row names' band 22 wide
        y = 24 + 36 + r * (32 + 6)
        x = probe.preprocess(photos[r][1])
        assert np.array_equal(at(out, 22, y, 32, 32), resized(probe.to_image(x)[0], 32))
        for c in (1, 2):
            assert (at(out, 22 + c * 38, y, 32, 32) == 128).all(), (r, c)


def test_figure_layers_is_figure_4_labelled_by_layer_and_receptive_field(tmp_path, alex_probe, photos):
    fig = cv.figure_layers(alex_probe, photos[:2], size=64)
    names = F.paper_layers(alex_probe)
    assert names == ["c2", "c4", "fc8"]  # every second conv layer and the output layer
    texts = svg_texts(cv.save_figure(fig, tmp_path / "fig4.svg"))
    for n in names:
        assert n in texts and rf(alex_probe, n) in texts
    assert {"input", "224 px", photos[0][0], photos[1][0], "What each layer keeps (auto: deconvnet)"} <= set(texts)
    x = alex_probe.preprocess(photos[1][1])
    top1 = alex_probe.predict(x, k=1)[0][0][0]
    assert top1 in texts  # the output layer shows the top-1 class, named under it
    out = png(cv.save_figure(fig, tmp_path / "fig4.png"))
    assert out.shape[:2] == pixel_size(fig)[::-1]
    assert_not_blank(out)
    recs = alex_probe.reconstruct(x, layers=names[:-1])
    pictures = F.displayed([recs[n][0] for n in names[:-1]] + [
        alex_probe.reconstruct(x, layers="fc8", channel=alex_probe.class_index(top1))["fc8"][0]])
    y = 24 + 36 + (64 + 6 + 18)  # the second row, under the first row's captions
    for c, p in enumerate(pictures, start=1):
        assert np.array_equal(at(out, 22 + c * 70, y, 64, 64), resized(p, 64)), names[c - 1]
    assert cv.save_figure(fig, tmp_path / "fig4.pdf").read_bytes()[:5] == b"%PDF-"


def test_figure_compare_is_figure_5_with_both_networks_and_their_top_5(tmp_path, alex_probe, vgg_probe, photos):
    fig = cv.figure_compare(vgg_probe, alex_probe, photos[:1], depths=2, names=("VGG16", "AlexNet"), size=48)
    texts = svg_texts(cv.save_figure(fig, tmp_path / "fig5.svg"))
    x = alex_probe.preprocess(photos[0][1])
    for probe, cols in ((vgg_probe, ["c3_3", "c5_3"]), (alex_probe, ["c3", "c5"])):
        assert F.matching_layers(probe, 2) == cols
        for c in cols:
            assert c in texts and rf(probe, c) in texts
        for i, (label, p) in enumerate(probe.predict(probe.preprocess(photos[0][1]), k=5)[0]):
            assert f"{i + 1}. {label}  {100 * p:.1f}%" in texts
    assert {"VGG16", "AlexNet", "VGG16: top-5", "AlexNet: top-5", f"{photos[0][0]} (auto: deconvnet)"} <= set(texts)
    out = png(cv.save_figure(fig, tmp_path / "fig5.png"))
    assert out.shape[:2] == pixel_size(fig)[::-1]
    assert_not_blank(out)
    assert np.array_equal(at(out, 22, 24 + 36, 48, 48), resized(vgg_probe.to_image(vgg_probe.preprocess(photos[0][1]))[0], 48))
    rec = F.displayed([alex_probe.reconstruct(x, layers=["c3", "c5"])[c][0] for c in ("c3", "c5")])[1]
    x0 = 22 + 48 + 18
    assert np.array_equal(at(out, x0 + 48 + 6, 24 + 48 + 36 + 6 + 36, 48, 48), resized(rec, 48))  # AlexNet's c5


def test_figure_sparsity_is_figure_6_with_each_networks_names_on_its_axis(tmp_path, alex_probe, photos):
    s = cv.sparsity(alex_probe, photos[:2], progress=False)
    vgg = cv.Sparsity({f"c{i}_{j}": i * j for i in range(1, 6) for j in range(1, 4)},
                      {f"c{i}_{j}": 20 for i in range(1, 6) for j in range(1, 4)}, 1)
    fig = cv.figure_sparsity({"AlexNet": s, "deep": vgg, "again": (alex_probe, photos[:2])})
    ax = fig.axes[0]
    lines = [l for l in ax.lines if l.get_linestyle() != "None"]
    assert [l.get_label() for l in lines] == ["AlexNet", "deep", "again"]
    assert list(lines[0].get_xdata()) == pytest.approx(F.depths(list(s)))
    assert list(lines[0].get_ydata()) == pytest.approx([s[n] for n in s]) == list(lines[2].get_ydata())
    squares = [l for l in ax.lines if l.get_marker() == "s"]
    assert list(squares[0].get_ydata()) == pytest.approx([s[n] for n in ("p1", "p2", "p5")])
    texts = svg_texts(cv.save_figure(fig, tmp_path / "fig6.svg"))
    assert set(F.thinned(list(s))) | set(F.thinned(list(vgg))) <= set(texts)
    assert {"sparsity", "AlexNet", "deep", "again", "Sparsity per layer (fraction of zero activations)"} <= set(texts)
    out = png(cv.save_figure(fig, tmp_path / "fig6.png"))
    assert out.shape[:2] == pixel_size(fig)[::-1] == (460, 800)
    assert out.std() > 10
    assert list(cv.figure_sparsity({"p": alex_probe}, images=photos[:2]).axes[0].lines[0].get_ydata()) == pytest.approx(
        [s[n] for n in s])


@pytest.mark.parametrize("series, kwargs, message", [
    ({}, {}, "series must be a dict label -> sparsity (or probe), at least one, got {}."),
    ([0.5], {}, "series must be a dict"),
    ({"a": "x"}, {}, "series['a'] must be a cv.Sparsity, a dict layer -> fraction of zeros, a probe or (probe, images), got 'x'."),
    ({"a": {"c1": "high"}}, {}, "series['a'] must be a cv.Sparsity"),
    ({"a": None}, {}, "series['a'] must be"),
])
def test_figure_sparsity_names_bad_series(series, kwargs, message):
    with pytest.raises(cv.CnnvizError) as err:
        cv.figure_sparsity(series, **kwargs)
    assert message in str(err.value)


def test_figure_sparsity_asks_for_images_for_a_probe(alex_probe):
    with pytest.raises(cv.CnnvizError, match=r"series\['p'\] is a probe: give images= to measure its sparsity over"):
        cv.figure_sparsity({"p": alex_probe})


@pytest.fixture(scope="module")
def mined(alex_probe, photos):
    return cv.mine(alex_probe, photos[:2], top_layers=["c1", "c3"], k=4, sparsity=False, progress=False).top


def test_figure_filters_is_figure_7_tiles_of_top_patches_numbered(tmp_path, mined, alex_probe):
    fig = cv.figure_filters(mined, filters=5, cell=20, columns=4)
    texts = svg_texts(cv.save_figure(fig, tmp_path / "fig7.svg"))
    for layer in ("c1", "c3"):
        top = mined[layer]
        assert f"{layer}  ({rf(alex_probe, layer)})  4 top patches a filter" in texts
        strongest = [int(c) for c in np.argsort(-top.values[:, 0].numpy(), kind="stable")[:5]]
        assert all(f"#{c}" in texts for c in strongest)
    out = png(cv.save_figure(fig, tmp_path / "fig7.png"))
    assert out.shape[:2] == pixel_size(fig)[::-1]
    top = mined["c1"]
    first = int(np.argsort(-top.values[:, 0].numpy(), kind="stable")[0])
    tile = F.filter_tile(top, first, 2, 20)
    assert tile.shape == (41, 41, 4)
    solid = tile[..., 3] == 255  # the gutters are clear: the white page shows through them
    assert np.array_equal(at(out, 0, 22 + 16, 41, 41)[solid], tile[..., :3][solid])
    fig = cv.figure_filters(mined["c3"], filters=[7, 2])
    assert [t for t in svg_texts(cv.save_figure(fig, tmp_path / "two.svg")) if t.startswith("#")] == ["#7", "#2"]


@pytest.mark.parametrize("kwargs, message", [
    ({"top": [1]}, "top must be a TopPatches (from cv.top_patches) or a list or dict of them, got [1]."),
    ({"filters": 0}, "filters must be a positive number of filters, or a list of them, got 0."),
    ({"filters": [999]}, "filter 999 is out of range: layer 'c1' has 96 filters (0 to 95)."),
    ({"filters": []}, "filters is empty"),
    ({"cell": -2}, "cell must be a positive whole number of pixels, got -2."),
])
def test_figure_filters_names_bad_input(mined, kwargs, message):
    kwargs = {"top": mined["c1"], **kwargs}
    with pytest.raises(cv.CnnvizError) as err:
        cv.figure_filters(**kwargs)
    assert message in str(err.value)


@pytest.mark.parametrize("call, message", [
    (lambda p, ph: cv.figure_layers("vgg", ph), "probe must be a cv.Probe (or a torch.nn.Module to wrap in one), got 'vgg'."),
    (lambda p, ph: cv.figure_layers(p, ph[:1], layers=["c9"]), "No layer 'c9'"),
    (lambda p, ph: cv.figure_layers(p, ph[:1], rule="nope"), "rule='nope' is not a reverse rule"),
    (lambda p, ph: cv.figure_layers(p, ph[:1], size=0), "size must be a positive whole number of pixels, got 0."),
    (lambda p, ph: cv.figure_layers(p, ph[:1], layers=["c1"], display="loud"),
     "display must be one of 'signed', 'contrast', 'minmax', 'auto', got 'loud'."),
    (lambda p, ph: cv.figure_compare(p, None, ph[:1]), "probe_b must be a cv.Probe"),
    (lambda p, ph: cv.figure_compare(p, p, ph[:1], layers=["c1"]), "layers must be a pair of lists of layer names"),
    (lambda p, ph: cv.figure_compare(p, p, ph[:1], names=("a",)), "names must be two names, one per network"),
    (lambda p, ph: cv.figure_compare(p, p, ph[:1], depths=0), "depths must be a positive whole number of layers"),
])
def test_the_figure_helpers_name_bad_input(alex_probe, photos, call, message):
    with pytest.raises(cv.CnnvizError) as err:
        call(alex_probe, photos)
    assert message in str(err.value)


def test_the_helpers_never_touch_pyplot(tmp_path):
    """In a fresh process (captum, used by other tests, imports pyplot): making and saving a figure loads no pyplot
    and no GUI backend, and importing the package loads no matplotlib at all."""
    import subprocess
    import sys

    code = (
        "import sys, torch, cnnviz_widgets as cv\n"
        "assert 'matplotlib' not in sys.modules\n"
        "net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2))\n"
        "fig = cv.figure_layers(cv.Probe(net, input_size=16, device='cpu'), [cv.sample_images()[0][1]], size=16)\n"
        f"cv.save_figure(fig, {str(tmp_path / 'f.svg')!r})\n"
        "print(sorted(m for m in ('matplotlib.pyplot', 'tkinter', 'PyQt5', 'PySide6') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]" and (tmp_path / "f.svg").stat().st_size > 0


# ------------------------------------------------------------------ every widget's save()

@pytest.fixture(scope="module")
def explorer(alex_probe, photos):
    return cv.DeconvExplorer(alex_probe, photos[:2])


def test_explorer_saves_what_it_shows(tmp_path, explorer, alex_probe):
    explorer.layer = "c3"
    out = png(explorer.save(tmp_path / "e.png"))
    assert out.shape[:2] == pixel_size(explorer.to_figure())[::-1]
    assert out.shape[1] >= 8 * 96 + 7 * 6 and out.shape[0] >= 224 + 2 * 96  # 11 layers: two rows of the strip
    assert_not_blank(out)
    y = 24 + 36  # under the title and the labels: the input and the current layer, at their own size
    assert np.array_equal(at(out, 0, y, 224, 224), decode(explorer.input_png))  # raw pixels: lossless here
    assert np.array_equal(at(out, 224 + 6, y, 224, 224), decode(explorer.recs[explorer.layer_names.index("c3")]))
    texts = svg_texts(explorer.save(tmp_path / "e.svg"))
    for name in explorer.layer_names:
        assert name in texts and rf(alex_probe, name) in texts
    assert f"{explorer.image_names[0]} (auto: deconvnet); {explorer.display}" in texts
    assert all(f"{i + 1}. {label}  {100 * p:.1f}%" in texts for i, (label, p, _) in enumerate(explorer.predictions))
    assert explorer.captions[-1] in " ".join(texts)  # the output layer's top-1 class (wrapped in two lines)
    explorer.show_unit("c3", (5, 3, 4))  # a unit view: saved beside the current layer
    out = png(explorer.save(tmp_path / "unit.png"))
    assert np.array_equal(at(out, 2 * (224 + 6), y, 224, 224), decode(explorer.unit_png))
    assert "c3: unit 5 at (3, 4)" in svg_texts(explorer.save(tmp_path / "unit.svg"))
    explorer.layer = "c5"
    assert np.array_equal(at(png(explorer.save(tmp_path / "c5.png")), 224 + 6, y, 224, 224),
                          decode(explorer.recs[explorer.layer_names.index("c5")]))
    assert explorer.save(str(tmp_path / "e.pdf")).read_bytes()[:5] == b"%PDF-"


def test_filter_grid_saves_its_page_and_the_selected_filter(tmp_path, alex_probe, photos):
    grid = cv.FilterGrid(alex_probe, photos[:2], layer="c3", k=4, page_size=12)
    assert grid.tops["c3"] is grid.top and set(grid.tops) == {"c1", "c2", "c3", "c4", "c5"}  # for cv.figure_filters
    grid.page = 1
    texts = svg_texts(grid.save(tmp_path / "g.svg"))
    assert f"c3  ({rf(alex_probe, 'c3')})  page 2 of {grid.n_pages}, strongest first; 4 top patches a filter" in texts
    assert [t for t in texts if t.startswith("#")] == [f"#{c}" for c in grid.sheet_filters]
    out = png(grid.save(tmp_path / "g.png"))
    assert out.shape[:2] == pixel_size(grid.to_figure())[::-1]
    assert out.shape[1] >= grid.columns * tile_width(grid) and out.shape[0] >= 2 * tile_width(grid)  # 12 tiles: 2 rows
    assert_not_blank(out)
    tile = F.filter_tile(grid.top, grid.sheet_filters[0], grid.per_row, grid.cell)  # the widget's own zoom
    solid = tile[..., 3] == 255
    assert np.array_equal(at(out, 0, 22 + 16, *tile.shape[1::-1])[solid], tile[..., :3][solid])
    sheet = decode(grid.sheet)  # the same tile the browser got
    assert np.array_equal(sheet[: tile.shape[0], : tile.shape[1]][solid], tile[..., :3][solid])
    grid.selected = {"layer": "c3", "filter": 7}
    texts = svg_texts(grid.save(tmp_path / "detail.svg"))
    assert any(t.startswith(f"filter 7 of c3 ({rf(alex_probe, 'c3')}): its top patches") for t in texts)
    assert [f"{v:.2f}" for v in grid.detail_values] == [t for t in texts if t[:1].isdigit() and "." in t][:4]
    grid.layer = "c4"  # the page moves on; the close-up of c3's filter 7 stays shown, and saved
    texts = svg_texts(grid.save(tmp_path / "moved.svg"))
    assert any(t.startswith("c4  (") for t in texts)
    assert any(t.startswith(f"filter 7 of c3 ({rf(alex_probe, 'c3')}): its top patches") for t in texts)


def test_embedding_map_frames_the_selected_unit_where_the_zoomed_view_shows_it(tmp_path, alex_probe, photos):
    """Select, then zoom: the unit now lies in another cell (as the browser's mark follows it), or in none."""
    emap = cv.EmbeddingMap(alex_probe, photos[:2], layer="c3", n_patches=200, grid=8, cell=10)
    emap.select(2, 3)
    unit = emap.selected["unit"]
    emap.zoom_into(0.0, 0.0, 0.5, 0.5)
    hits = np.argwhere(np.asarray(emap.space.grid_index) == unit)
    assert emap.marked_cell() == (tuple(int(v) for v in hits[0]) if len(hits) else None)
    red = np.array([0xd6, 0x27, 0x28])
    out = png(emap.save(tmp_path / "z.png"))
    if emap.marked_cell() is not None:
        r, c = emap.marked_cell()
        assert np.abs(at(out, c * 10 - 1, 24 + r * 10 - 1, 1, 1)[0, 0, :3].astype(int) - red).max() < 40  # its frame
    emap.zoom_into(0.9, 0.9, 1.0, 1.0)  # a corner where the unit may not be
    if emap.marked_cell() is None:
        assert np.all(np.abs(png(emap.save(tmp_path / "n.png"))[..., :3].astype(int) - red).max(axis=-1) > 40)  # no frame at all


def test_embedding_map_saves_its_mosaic_at_the_current_zoom_with_the_selection(tmp_path, alex_probe, photos):
    emap = cv.EmbeddingMap(alex_probe, photos[:2], layer="c3", n_patches=200, grid=8, cell=10)
    out = png(emap.save(tmp_path / "m.png"))
    assert out.shape[:2] == pixel_size(emap.to_figure())[::-1]
    assert np.array_equal(at(out, 0, 24, 80, 80), decode(emap.mosaic))
    assert any(t.startswith(f"c3 ({rf(alex_probe, 'c3')}): representation space, 8x8 cells, the whole space")
               for t in svg_texts(emap.save(tmp_path / "m.svg")))
    emap.zoom_into(0.0, 0.0, 0.5, 0.5)
    emap.select(1, 2)
    out = png(emap.save(tmp_path / "z.png"))
    mosaic = decode(emap.mosaic)
    inside = at(out, 0, 24, 80, 80).copy()
    assert np.array_equal(inside[:6], mosaic[:6])  # the rows above the framed cell (row 1) are the new mosaic's
    assert np.array_equal(at(out, 80 + 16, 24, 128, 128), resized(emap.space.patch(emap.selected["unit"]), 128))
    texts = svg_texts(emap.save(tmp_path / "z.svg"))
    assert any("zoomed to x 0.00-0.50, y 0.00-0.50" in t for t in texts)
    assert "strongest filters: " + ", ".join(map(str, emap.filters)) in texts


def test_compare_models_saves_both_rows_and_their_top_5(tmp_path, alex_probe, photos):
    seeded = cv.load_model("alexnet", weights=None, seed=0).state_dict()  # as loaded weights: no stamp over the layout
    tv = cv.Probe(cv.load_model("alexnet", weights=seeded), device="cpu")
    c = cv.CompareModels(tv, alex_probe, photos[:2], depths=3, names=("torchvision", "paper"))
    c.image_index = 1
    texts = svg_texts(c.save(tmp_path / "c.svg"))
    for probe, cols in zip((tv, alex_probe), c.columns):
        assert all(name in texts and rf(probe, name) in texts for name in cols)
    for name, preds in zip(c.model_names, c.predictions):
        assert f"{name}: top-5" in texts and all(f"{i + 1}. {l}  {100 * p:.1f}%" in texts for i, (l, p) in enumerate(preds))
    assert f"{c.image_names[1]} (auto: deconvnet); {c.display}" in texts
    out = png(c.save(tmp_path / "c.png"))
    assert out.shape[:2] == pixel_size(c.to_figure())[::-1]
    assert out.shape[1] >= 22 + 4 * (112 + 6) and out.shape[0] >= 2 * (36 + 112)  # input + 3 layers; two rows
    assert_not_blank(out)
    assert np.array_equal(at(out, 22, 24 + 36, 112, 112), resized(decode(c.input_png), 112))
    x0 = 22 + 112 + 18
    assert np.array_equal(at(out, x0, 24 + 36, 112, 112), resized(decode(c.rows[0][0]), 112))


def test_sparsity_chart_saves_the_names_its_axes_show(tmp_path, alex_probe, photos):
    s = cv.sparsity(alex_probe, photos[:2], progress=False)
    deep = cv.Sparsity({f"c{i}_{j}": 1 for i in range(1, 6) for j in range(1, 4)},
                       {f"c{i}_{j}": 2 for i in range(1, 6) for j in range(1, 4)}, 1)
    chart = cv.SparsityChart({"AlexNet": s, "deep": deep}, title="Figure 6")
    texts = svg_texts(chart.save(tmp_path / "s.svg"))
    for axis in chart.figure.axes:
        if axis.orientation != "vertical":
            assert set(axis.tick_labels.values()) <= set(texts)
    assert {"Figure 6", "AlexNet", "deep"} <= set(texts)
    fig = chart.to_figure()
    assert [l.get_color() for l in fig.axes[0].lines if l.get_label() in ("AlexNet", "deep")] == chart.COLORS[:2]
    out = png(chart.save(tmp_path / "s.png"))
    assert out.shape[:2] == (460, 800) and out.std() > 10
    assert chart.save(tmp_path / "s.pdf").read_bytes()[:5] == b"%PDF-"


def test_receptive_field_table_saves_every_row(tmp_path, vgg_probe, alex_probe):
    t = cv.ReceptiveFieldTable({"VGG16": vgg_probe, "AlexNet": alex_probe})
    t.layer = "c3"
    texts = svg_texts(t.save(tmp_path / "t.svg"))
    assert {"VGG16", "AlexNet", "layer", "RF size", "stride"} <= set(texts)
    for table in t.rows:
        for name, kind, size, stride in table:
            assert {name, kind, str(size), str(stride)} <= set(texts)
    out = png(t.save(tmp_path / "t.png"))
    assert out.shape[:2] == pixel_size(t.to_figure())[::-1] and out.shape[0] >= 24 + 19 * 18  # 18 VGG16 rows
    assert out.std() > 10


def test_a_widget_with_nothing_to_show_says_so(tmp_path, alex_probe):
    broken = cv.DeconvExplorer(alex_probe, [])
    with pytest.raises(cv.CnnvizError) as err:
        broken.save(tmp_path / "x.png")
    assert str(err.value).startswith("DeconvExplorer has nothing to save yet: no image has been reconstructed. "
                                     "It says: ") and "no images given" in str(err.value)
    chart = cv.SparsityChart({"broken": (alex_probe, [])})
    with pytest.raises(cv.CnnvizError, match="SparsityChart has nothing to save yet: no sparsity was computed") as err:
        chart.save(tmp_path / "x.svg")
    assert "It says: Could not compute sparsity: " in str(err.value) and "<" not in str(err.value)  # plain text, no markup
    table = cv.ReceptiveFieldTable({"x": "not a model"})
    with pytest.raises(cv.CnnvizError, match="ReceptiveFieldTable has nothing to save yet: no receptive fields"):
        table.save(tmp_path / "x.pdf")
    assert list(tmp_path.iterdir()) == []


def test_a_path_that_cannot_be_written_is_a_message(tmp_path, explorer):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(cv.CnnvizError, match=r"Could not write the figure to '.*a_file/x.png': .*Choose another path."):
        explorer.save(tmp_path / "a_file" / "x.png")  # its folder is a file
    if os.geteuid() != 0:  # root may write anywhere
        (tmp_path / "locked").mkdir(mode=0o500)
        with pytest.raises(cv.CnnvizError, match="Could not write the figure"):
            explorer.save(tmp_path / "locked" / "x.svg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"] + (["locked"] if os.geteuid() != 0 else [])


def test_a_widget_refuses_a_bad_suffix_before_drawing(tmp_path, explorer, monkeypatch):
    monkeypatch.setattr(type(explorer), "to_figure", lambda self: pytest.fail("drew before checking the path"))
    with pytest.raises(cv.CnnvizError) as err:
        explorer.save(tmp_path / "x.gif")
    assert str(err.value) == f"path must end in .png, .svg or .pdf, got {str(tmp_path / 'x.gif')!r}."


def test_a_widget_saves_at_a_scale_and_refuses_a_bad_one_before_drawing(tmp_path, explorer, monkeypatch):
    one = png(explorer.save(tmp_path / "one.png"))
    two = png(explorer.save(tmp_path / "two.png", scale=2))
    assert two.shape == (2 * one.shape[0], 2 * one.shape[1], 3)
    y = 24 + 36  # the input photo under the title and the labels, at its own size: each pixel a 2x2 block
    assert np.array_equal(two[2 * (y + M): 2 * (y + M + 224), 2 * M: 2 * (M + 224)],
                          np.repeat(np.repeat(at(one, 0, y, 224, 224), 2, axis=0), 2, axis=1))
    monkeypatch.setattr(type(explorer), "to_figure", lambda self: pytest.fail("drew before checking the scale"))
    with pytest.raises(cv.CnnvizError, match="scale must be from 0.25 to 8"):
        explorer.save(tmp_path / "x.png", scale=20)
    assert not (tmp_path / "x.png").exists()
