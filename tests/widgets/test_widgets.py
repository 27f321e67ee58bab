"""Widgets through their synced state: what the kernels computed, sent as binary buffers; errors inside."""
from __future__ import annotations

import io

import numpy as np
import pytest
from ipywidgets.widgets.widget import _remove_buffers
from PIL import Image
from torch import nn

import cnnviz_widgets as cv


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.fixture(scope="module", autouse=True)
def exact_pictures():
    """These tests compare the pictures sent with the kernels' pixels, so they ask for raw pixels (BMP); JPEG, the
    default, is checked on its own below."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNVIZ_PICTURES", "bmp")
        yield


@pytest.fixture(scope="module")
def explorer(alex_probe, photos):
    return cv.DeconvExplorer(alex_probe, photos[:3])


def test_explorer_traits_hold_the_kernels_results(explorer, alex_probe, photos):
    assert explorer.error == "" and not explorer.busy
    assert explorer.layer_names == list(alex_probe.layer_names)
    assert explorer.image_names == [n for n, _ in photos[:3]]
    assert explorer.layer in explorer.layer_names
    x = alex_probe.preprocess(photos[0][1])
    assert np.array_equal(decode(explorer.input_png), alex_probe.to_image(x)[0])
    recs = alex_probe.deconvnet(x)
    (top1, label, _), *_ = alex_probe.classify(x, k=1)[0]
    recs["fc8"] = alex_probe.deconvnet(x, layers="fc8", channel=top1)["fc8"]  # the paper's last column
    assert explorer.display == "display: zero = grey, scaled to the largest value (the paper's)"
    for name, png in zip(explorer.layer_names, explorer.recs):
        assert np.array_equal(decode(png), cv.to_display(recs[name][0])), name
    assert explorer.captions[-1] == f"the top-1 class, {label}" and explorer.captions[:-1] == [""] * 10
    assert explorer.rf[explorer.layer_names.index("c2")] == [47, 8, alex_probe.receptive_field("c2").offset]
    assert explorer.grid[explorer.layer_names.index("p5")] == [6, 6]
    assert explorer.channels == [l.channels for l in alex_probe.layers]  # the filter box's range per layer
    assert explorer.switches == [False] + [True] * 10  # c1 lies below the first max-pool
    preds = alex_probe.classify(x, k=5)[0]
    assert explorer.predictions == [[l, round(p, 4), c] for c, l, p in preds]
    # the widgets' default "auto" draws every layer of the paper's AlexNet by the deconvnet, and says so
    assert explorer.rule == explorer.shown_rule == "auto" and explorer.drawn == ["deconvnet (auto)"] * 11


def test_state_travels_as_binary_buffers_not_base64(explorer):
    state = explorer.get_state()
    stripped, paths, buffers = _remove_buffers(state)
    assert ["input_png"] in paths and ["recs", 0] in paths and len(buffers) >= len(explorer.recs) + 1
    assert all(bytes(b[:2]) == b"BM" for b in buffers if len(b))  # raw pixels, as this module asks (CNNVIZ_PICTURES=bmp)
    import json

    text = json.dumps({k: v for k, v in stripped.items() if k not in ("_esm", "_css")})  # module and styles travel once
    assert "iVBORw0KGgo" not in text  # no base64 PNG anywhere in the JSON part
    assert len(text) < 5000


def test_pictures_are_jpeg_unless_asked_otherwise(monkeypatch, explorer, alex_probe, photos):
    from cnnviz_widgets.widgets.encoding import picture_bytes, picture_format

    monkeypatch.delenv("CNNVIZ_PICTURES")
    assert picture_format() == "jpeg"  # small in a notebook saved with its widget state, wherever the kernel runs
    w = cv.DeconvExplorer(alex_probe, photos[:1])
    assert w.input_png[:2] == b"\xff\xd8" and all(r[:2] == b"\xff\xd8" for r in w.recs)
    monkeypatch.setenv("CNNVIZ_PICTURES", "PNG")  # the user's choice wins
    assert picture_format() == "png"
    monkeypatch.setenv("CNNVIZ_PICTURES", "gif")  # not one of ours: the default
    assert picture_format() == "jpeg"
    shown = [decode(b) for b in explorer.recs]
    for fmt, magic, worst in (("bmp", b"BM", 0), ("png", b"\x89PNG", 0), ("jpeg", b"\xff\xd8", 16)):
        encoded = picture_bytes(shown, fmt)
        assert all(e.startswith(magic) for e in encoded)
        back = [decode(e) for e in encoded]
        assert all(b.shape == s.shape for b, s in zip(back, shown))
        err = np.mean([np.abs(b.astype(int) - s).mean() for b, s in zip(back, shown)])
        assert err <= worst, (fmt, err)  # lossless, or JPEG's few grey levels on average


def test_new_image_recomputes_and_click_reconstructs_a_unit(alex_probe, photos):
    w = cv.DeconvExplorer(alex_probe, photos[:3])
    first = list(w.recs)
    w.image_index = 2
    assert w.error == "" and w.recs != first and not w.busy
    x = alex_probe.preprocess(photos[2][1])
    assert np.array_equal(decode(w.input_png), alex_probe.to_image(x)[0])
    w._handle_custom_msg({"event": "click", "layer": "c3", "x": 112.0, "y": 100.0}, [])  # a click on the big picture
    layer, (c, gy, gx) = w.selected["layer"], w.selected["unit"]
    rf = alex_probe.receptive_field("c3")
    top, left, bottom, right = rf.box(gy, gx)
    assert layer == "c3" and top <= 100 < bottom and left <= 112 < right  # the unit under the pointer
    assert w.selected["field"] == [top, left, bottom, right]  # what the browser boxes on the input
    act = alex_probe.activations(x, ["c3"])["c3"][0, :, gy, gx]
    assert c == int(act.argmax())  # its strongest filter
    rec = alex_probe.deconvnet(x, layers="c3", unit=(c, gy, gx))["c3"][0]
    assert np.array_equal(decode(w.unit_png), cv.to_display(rec))
    w.show_unit("c5", (3, 1, 2))
    assert w.selected == {"layer": "c5", "unit": [3, 1, 2], "field": list(alex_probe.receptive_field("c5").box(1, 2))}
    w._handle_custom_msg({"event": "channel", "layer": "c4", "channel": 11}, [])  # what the filter box sends
    rec = alex_probe.deconvnet(x, layers="c4", channel=11)["c4"][0]
    assert w.selected == {"layer": "c4", "channel": 11} and np.array_equal(decode(w.unit_png), cv.to_display(rec))
    w.show_filter("c4", 4000)
    assert "channel=4000 is out of range for layer 'c4'" in w.error


def test_keyboard_cursor_reconstructs_the_unit_at_a_map_position(alex_probe, photos):
    """The explorer's keyboard cursor sends a map position ({"event": "cell"}): the strongest filter there is
    reconstructed, as a click on that unit would; a position off the map is said in the widget."""
    w = cv.DeconvExplorer(alex_probe, photos[:2])
    x = alex_probe.preprocess(photos[0][1])
    w._handle_custom_msg({"event": "cell", "layer": "c3", "y": 4, "x": 7}, [])
    act = alex_probe.activations(x, ["c3"])["c3"][0, :, 4, 7]
    assert w.selected["layer"] == "c3" and w.selected["unit"] == [int(act.argmax()), 4, 7]
    assert w.selected["field"] == list(alex_probe.receptive_field("c3").box(4, 7))
    rec = alex_probe.deconvnet(x, layers="c3", unit=(int(act.argmax()), 4, 7))["c3"][0]
    assert np.array_equal(decode(w.unit_png), cv.to_display(rec))
    h, wd = w.grid[w.layer_names.index("c3")]
    w._handle_custom_msg({"event": "cell", "layer": "c3", "y": h, "x": 0}, [])
    assert f"Map position ({h}, 0) is outside c3's {h}x{wd} map" in w.error
    w._handle_custom_msg({"event": "cell", "layer": "c3", "y": "top", "x": 0}, [])
    assert "has no usable 'y' (a whole number)" in w.error


def test_text_scale_is_every_widgets_and_bounded(alex_probe):
    """``text_scale`` (every widget's: 1.5 for a projector) is synced; a value outside 0.5-3 is refused by name."""
    import traitlets

    table = cv.ReceptiveFieldTable(alex_probe)
    assert table.text_scale == 1.0 and table.trait_metadata("text_scale", "sync")
    table.text_scale = 1.5
    assert table.get_state()["text_scale"] == 1.5
    with pytest.raises(traitlets.TraitError, match="text_scale must be from 0.5 to 3"):
        table.text_scale = 10


def test_one_layer_slider_drives_several_widgets(alex_probe, photos):
    import traitlets

    a = cv.DeconvExplorer(alex_probe, photos[:1])
    b = cv.ReceptiveFieldTable({"paper AlexNet": alex_probe})
    g = cv.FilterGrid(alex_probe, photos[:2], layer="c3", k=2)
    traitlets.link((a, "layer"), (b, "layer"))
    traitlets.link((a, "layer"), (g, "layer"))
    a.layer = "c5"
    assert b.layer == "c5" and g.layer == "c5" and g.error == ""
    a.layer = "p2"  # not mined at first: the grid mines it on demand
    assert g.layer == "p2" and g.error == "" and g.top.layer == "p2" and "p2" in g.layer_names
    g.layer = "nope"
    assert "No layer 'nope'" in g.error


@pytest.mark.parametrize("make,match", [
    (lambda p, ph: cv.DeconvExplorer(p, []), "no images given"),
    (lambda p, ph: cv.DeconvExplorer(p, ph[:1], layers=["c9"]), "No layer 'c9'"),
    (lambda p, ph: cv.DeconvExplorer(nn.Sequential(nn.Flatten(), nn.Linear(3, 2)), ph[:1]), "no torch.nn.Conv2d"),
    (lambda p, ph: cv.DeconvExplorer(p, ph[:1], image_index=5), "image_index 5 is out of range: there is 1 picture"),
    (lambda p, ph: cv.ReceptiveFieldTable({"x": "not a model"}), "needs a torch.nn.Module"),
])
def test_bad_input_sets_the_error_instead_of_raising(alex_probe, photos, make, match):
    import re

    w = make(alex_probe, photos)
    assert re.search(match, w.error), w.error
    assert not w.busy


def test_bad_image_index_from_the_browser(alex_probe, photos):
    w = cv.DeconvExplorer(alex_probe, photos[:2])
    w.image_index = 7
    assert "out of range" in w.error
    w.image_index = 1
    assert w.error == ""


def test_receptive_field_table_rows(vgg_probe, alex_probe):
    t = cv.ReceptiveFieldTable({"VGG16": vgg_probe, "AlexNet": alex_probe})
    assert t.models == ["VGG16", "AlexNet"]
    vgg = {r[0]: (r[2], r[3]) for r in t.rows[0]}
    assert vgg["c5_3"] == (196, 16) and vgg["p5"] == (212, 32) and "fc6" not in vgg
    assert [r[0] for r in t.rows[1]] == ["c1", "p1", "c2", "p2", "c3", "c4", "c5", "p5"]


def test_sparsity_chart_series(alex_probe, photos):
    s = cv.sparsity(alex_probe, photos[:2], progress=False)
    chart = cv.SparsityChart({"AlexNet": s, "AlexNet again": (alex_probe, photos[:2])})
    lines = [m for m in chart.figure.marks if type(m).__name__ == "Lines"]
    assert len(lines) == 2 and list(lines[0].y) == pytest.approx([s[n] for n in s])
    squares = [m for m in chart.figure.marks if getattr(m, "marker", "") == "square"]
    assert list(squares[0].names) == [n for n in s if alex_probe.layer(n).kind == "pool"] == ["p1", "p2", "p5"]
    assert s.kinds["c3"] == "conv" and s.kinds["p5"] == "pool"
    bad = cv.SparsityChart({"broken": (alex_probe, [])})
    assert "no images given" in bad.error.value


def test_sparsity_chart_shows_itself_in_marimo_as_svg_with_text(alex_probe, photos):
    """marimo cannot show bqplot: its display hook gets the same chart as inline SVG, the layer names as text."""
    import html
    import re

    s = cv.sparsity(alex_probe, photos[:2], progress=False)
    mime, markup = cv.SparsityChart({"AlexNet <b>$1": s, "again": s})._display_()._mime_()
    assert mime == "text/html" and markup.startswith("<div class='cnnviz-sparsity'") and "<svg" in markup
    words = [html.unescape(w) for w in re.findall(r"<text[^>]*>([^<]*)</text>", markup)]
    assert all(n in words for n in s) and "sparsity" in words and "AlexNet <b>$1" in words  # a label is text, "$" too
    assert "<b>$1" not in markup
    mime, markup = cv.SparsityChart({"broken": (alex_probe, [])})._display_()._mime_()
    assert "no images given" in markup and "<svg" not in markup


def test_chart_series_differ_in_more_than_hue(alex_probe, photos):
    """Two series read apart in greyscale: their colours differ in luminance, their lines in dashes, and the second
    one's markers are hollow, in the bqplot chart and in its saved figure; each series' axis text reads 4.5:1 on
    white and its line 3:1."""
    from cnnviz_widgets.figures import SERIES_COLORS, SERIES_TEXT

    def lum(c: str) -> float:
        f = lambda v: v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4  # noqa: E731
        r, g, b = (int(c[i:i + 2], 16) / 255 for i in (1, 3, 5))
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b)

    a, b = sorted(lum(c) for c in SERIES_COLORS[:2])
    assert (b + 0.05) / (a + 0.05) >= 1.7  # the old blue and red: 1.04
    assert all(1.05 / (lum(c) + 0.05) >= 4.5 for c in SERIES_TEXT) and all(1.05 / (lum(c) + 0.05) >= 3 for c in SERIES_COLORS)
    s = cv.sparsity(alex_probe, photos[:2], progress=False)
    chart = cv.SparsityChart({"A": s, "B": dict(s)})
    lines = [m for m in chart.figure.marks if type(m).__name__ == "Lines"]
    assert [m.line_style for m in lines] == ["solid", "dashed"]
    scatters = [m for m in chart.figure.marks if type(m).__name__ == "Scatter"]
    assert {m.fill for m in scatters if m.colors == [SERIES_COLORS[0]]} == {True}
    assert {m.fill for m in scatters if m.colors == [SERIES_COLORS[1]]} == {False}
    ax = chart.to_figure().axes[0]
    drawn = [l for l in ax.lines if l.get_label() in ("A", "B")]
    assert [l.get_linestyle() for l in drawn] == ["-", "--"]
    faces = {l.get_color(): l.get_markerfacecolor() for l in ax.lines if l.get_linestyle() == "None"}
    assert faces[SERIES_COLORS[1]] == "white" and faces[SERIES_COLORS[0]] == SERIES_COLORS[0]
    assert min(t.get_fontsize() for t in ax.get_xticklabels() + ax.get_yticklabels()) >= 10  # was 8 pt


def test_sparsity_chart_names_each_network_on_its_own_axis(alex_probe, photos):
    from cnnviz_widgets.figures import CHAR_WIDTH, PLOT_WIDTH
    from cnnviz_widgets.widgets.charts import js_key, thinned

    s = cv.sparsity(alex_probe, photos[:2], progress=False)
    vgg = {f"c{i}_{j}": 0.5 for i in range(1, 6) for j in range(1, 4)}
    deep = cv.Sparsity({n: 1 for n in vgg}, {n: 2 for n in vgg}, 1)
    chart = cv.SparsityChart({"AlexNet": s, "deep": deep, "third": s})
    x_axes = [a for a in chart.figure.axes if a.orientation != "vertical"]
    assert [a.side for a in x_axes] == ["bottom", "top"]  # the first two networks' names; the third is hovered
    assert [a.color for a in x_axes] == chart.COLORS[:2] and "AlexNet" in x_axes[0].label and "deep" in x_axes[1].label
    n = len(s)
    assert list(x_axes[0].tick_values) == [j / (n - 1) for j in range(n)]  # relative depth, ends at 0 and 1
    assert [x_axes[0].tick_labels[js_key(v)] for v in x_axes[0].tick_values] == list(s)
    assert [x_axes[1].tick_labels[js_key(v)] for v in x_axes[1].tick_values] == list(deep)
    assert js_key(1.0) == "1" and js_key(0.0) == "0" and js_key(1 / 7) == "0.14285714285714285"  # as JS prints them
    assert "● convolution" in chart.key.value and "■ max-pool" in chart.key.value
    assert "relative depth" in chart.key.value and "first two networks" in chart.key.value
    # the names an axis prints fit side by side; the first and the last layer are always among them
    for n in (3, 8, 18, 50, 160):
        names = [f"layer{i // 3}.{i % 3}.conv{i % 2}" for i in range(n)]
        picked = thinned(names)
        positions = [names.index(p) * PLOT_WIDTH / n for p in picked]
        assert picked[0] == names[0] and picked[-1] == names[-1] and picked == sorted(picked, key=names.index)
        assert min(b - a for a, b in zip(positions, positions[1:]) or [PLOT_WIDTH]) >= CHAR_WIDTH * max(map(len, picked)), n


def test_sprite_sheets_are_clear_between_tiles():
    """Gutters and empty places let the page's background through (a white gutter glared in the dark theme)."""
    from cnnviz_widgets.figures import sprite

    red, blue = np.full((5, 5, 3), (255, 0, 0), np.uint8), np.full((10, 10, 3), (0, 0, 255), np.uint8)
    out = sprite([red, None, blue], columns=2, cell=5, pad=3)
    assert out.shape == (13, 13, 4)
    assert (out[:5, :5] == (255, 0, 0, 255)).all() and (out[8:, :5] == (0, 0, 255, 255)).all()
    assert (out[5:8, :, 3] == 0).all() and (out[:, 5:8, 3] == 0).all() and (out[:5, 8:, 3] == 0).all()


@pytest.fixture(scope="module")
def grid(alex_probe, photos):
    return cv.FilterGrid(alex_probe, photos[:4], layer="c3", k=4, page_size=20)


def test_filter_grid_pages_show_the_top_patches(grid, alex_probe, photos):
    assert grid.error == "" and grid.layer == "c3" and grid.n_pages == 384 // 20 + 1
    top = cv.top_patches(alex_probe, photos[:4], "c3", k=4, progress=False)
    strongest = [int(c) for c in np.argsort(-top.values[:, 0].numpy(), kind="stable")[:20]]
    assert grid.sheet_filters == strongest
    sheet = decode(grid.sheet)
    tile = grid.per_row * (grid.cell + 1) - 1
    assert sheet.shape[1] == grid.columns * (tile + 6) - 6
    first = np.asarray(Image.fromarray(top.patch(strongest[0], 0)).resize((grid.cell, grid.cell), Image.BILINEAR))
    assert np.array_equal(sheet[: grid.cell, : grid.cell], first)
    alpha = np.asarray(Image.open(io.BytesIO(grid.sheet)))[..., 3]
    assert (alpha[:, tile : tile + 6] == 0).all() and (alpha[: grid.cell, : grid.cell] == 255).all()  # clear gutters
    grid.page = 3
    assert grid.sheet_filters == [int(c) for c in np.argsort(-top.values[:, 0].numpy(), kind="stable")[60:80]]
    grid.page = 0
    grid.selected = {"layer": "c3", "filter": 7}
    detail = decode(grid.detail)
    assert detail.shape == (64 * 2 + 2, 4 * 64 + 3 * 2, 3)
    assert grid.detail_values == [round(float(v), 4) for v in top.values[7]]


def test_filter_grid_shows_given_filters_and_names_bad_ones(grid):
    grid.filters = [5, 1, 9]
    assert grid.sheet_filters == [5, 1, 9] and grid.page == 0 and grid.n_pages == 1
    grid.filters = [5, 999]
    assert "filters [999] are out of range" in grid.error
    grid.filters = []
    assert grid.error == "" and len(grid.sheet_filters) == 20


def test_embedding_map_select_zoom_back_and_link(alex_probe, photos):
    emap = cv.EmbeddingMap(alex_probe, photos[:4], layer="c3", n_patches=300, grid=10, cell=8)
    grid = cv.FilterGrid(alex_probe, photos[:4], layer="c2", k=4)
    emap.link(grid)
    assert grid.layer == "c3"
    assert emap.error == "" and decode(emap.mosaic).shape == (80, 80, 3)
    assert emap.grid_index == emap.space.grid_index.tolist()
    emap._handle_custom_msg({"event": "select", "cell": [2, 7]}, [])  # what a click in the browser sends
    i = emap.space.grid_index[2, 7]
    assert emap.selected["unit"] == i and emap.filters == emap.space.top_filters(i, k=6)
    assert emap.selected["image_name"] == photos[emap.selected["image"]][0]  # the browser names the photo
    assert np.array_equal(decode(emap.patch_png), emap.space.patch(i))
    assert grid.filters == emap.filters and grid.sheet_filters == emap.filters
    whole = list(emap.grid_index)
    emap._handle_custom_msg({"event": "zoom", "x0": 0.5, "y0": 0.0, "x1": 0.0, "y1": 0.5}, [])  # a drag from right to left
    assert emap.region == [0.0, 0.0, 0.5, 0.5] and emap.depth == 1 and emap.grid_index != whole
    emap.zoom_into(0.5, 0.5, 1.0, 1.0)
    assert emap.region == [0.25, 0.25, 0.5, 0.5] and emap.depth == 2
    emap._handle_custom_msg({"event": "back"}, [])  # the Back button
    emap.zoom_out()
    emap.zoom_out()  # at the whole map already: nothing happens
    assert emap.error == ""
    assert emap.region == [0.0, 0.0, 1.0, 1.0] and emap.depth == 0 and emap.grid_index == whole
    emap.zoom_into(0.3, 0.3, 0.3, 0.3)
    assert "Drag a rectangle" in emap.error and emap.depth == 0
    emap.select(99, 0)
    assert "outside the 10x10 grid" in emap.error


def test_compare_models_rows(alex_probe, vgg_probe, photos):
    c = cv.CompareModels(vgg_probe, alex_probe, photos[:2], depths=4, names=("VGG16", "AlexNet"))
    assert c.error == "" and c.model_names == ["VGG16", "AlexNet"]
    assert c.columns == [["c2_2", "c3_3", "c4_3", "c5_3"], ["c2", "c3", "c4", "c5"]]
    x = alex_probe.preprocess(photos[0][1])
    rec = alex_probe.deconvnet(x, layers="c4")["c4"][0]
    assert np.array_equal(decode(c.rows[1][2]), cv.to_display(rec))
    assert [p[0] for p in c.predictions[1]] == [p[0] for p in alex_probe.predict(x)[0]]
    before = list(c.rows[0])
    c.image_index = 1
    assert c.rows[0] != before and c.error == ""


def test_compare_models_defaults_offline(tmp_path, monkeypatch, photos):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import torchvision

    for weights in (torchvision.models.VGG16_Weights, torchvision.models.AlexNet_Weights):
        monkeypatch.setattr(weights, "get_state_dict", lambda self, *a, **k: (_ for _ in ()).throw(OSError("offline")))
    c = cv.CompareModels(images=photos[:1], depths=3)
    # Figure 5 compares trained networks: torchvision's AlexNet (published weights), not the paper's variant (none)
    assert c.error == "" and c.model_names == ["VGG16", "AlexNet"]
    assert c.note.startswith("random weights: VGG16 (vgg16, seed 0), AlexNet (alexnet, seed 0), not trained")


def test_widgets_report_progress_through_their_trait(alex_probe, photos):
    seen = []
    g = cv.FilterGrid.__new__(cv.FilterGrid)
    cv.FilterGrid.__init__(g, alex_probe, photos[:3], layer="c5", k=2)
    g.observe(lambda ch: seen.append(ch["new"]), "progress")
    g.report(1, 4)
    assert seen == [0.25]


def test_explorer_on_a_backbone_without_class_scores(photos):
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3), nn.ReLU())
    w = cv.DeconvExplorer(cv.Probe(backbone, input_size=64), photos[:1])
    assert w.error == "" and w.predictions == [] and len(w.recs) == 3


def test_the_rule_selector_recomputes_and_a_bad_rule_is_refused(alex_probe, photos):
    w = cv.DeconvExplorer(alex_probe, photos[:2], rule="guided")
    assert w.rule == w.shown_rule == "guided" and [r[0] for r in w.rule_options] == ["auto", "deconvnet", "guided", "gradient"]
    x = alex_probe.preprocess(photos[0][1])
    guided = alex_probe.reconstruct(x, layers="c4", rule="guided")["c4"][0]
    assert np.array_equal(decode(w.recs[w.layer_names.index("c4")]), cv.to_display(guided))
    w.set_state({"rule": "gradient"})  # what the selector sends; a background job in a kernel, inline here
    assert w.shown_rule == "gradient" and w.error == ""
    gradient = alex_probe.reconstruct(x, layers="c4", rule="gradient")["c4"][0]
    assert np.array_equal(decode(w.recs[w.layer_names.index("c4")]), cv.to_display(gradient))
    w.show_filter("c4", 11)  # a filter by the rule now chosen
    assert np.array_equal(decode(w.unit_png), cv.to_display(alex_probe.reconstruct(x, layers="c4", channel=11,
                                                                                    rule="gradient")["c4"][0]))
    w.set_state({"rule": "saliency"})
    assert w.rule == "gradient" and "rule='saliency' is not a reverse rule" in w.error
    w._handle_custom_msg({"event": "channel", "layer": "c4", "channel": "twelve"}, [])  # a message, not a traceback
    assert "A class name ('twelve') picks a class of the output layer" in w.error  # a word on a filter layer
    for make in (cv.DeconvExplorer, cv.FilterGrid, cv.CompareModels):  # rule= in the constructor: the same message
        bad = make(alex_probe, alex_probe, photos[:1], rule="nope") if make is cv.CompareModels else make(
            alex_probe, photos[:1], rule="nope")
        assert "rule='nope' is not a reverse rule; use one of 'auto', 'deconvnet', 'guided', 'gradient'" in bad.error


def test_top5_bars_reconstruct_their_class(vgg_probe, photos):
    w = cv.DeconvExplorer(vgg_probe, photos[1:2], layers=["c5_3", "fc8"])
    label, p, index = w.predictions[2]
    assert vgg_probe.labels[index] == label and 0 <= p <= 1
    w._on_custom_msg(w, {"event": "class", "index": index}, [])  # what a click on the third bar sends
    x = vgg_probe.preprocess(photos[1][1])
    assert w.selected == {"layer": "fc8", "channel": index, "label": label} and w.error == ""
    assert np.array_equal(decode(w.unit_png), cv.to_display(vgg_probe.deconvnet(x, layers="fc8", channel=label)["fc8"][0]))
    w.show_class("espresso")
    assert w.selected["channel"] == 967
    w.show_class("espreso")
    assert "Close matches: 'espresso'" in w.error
    w._on_custom_msg(w, {"event": "class", "index": "x"}, [])
    assert "no usable 'index' (a whole number)" in w.error  # malformed: a message in the widget


def test_a_backbone_without_classes_has_no_bars_and_no_class_view(photos):
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3), nn.ReLU())
    w = cv.DeconvExplorer(backbone, photos[:1])
    assert w.error == "" and w.predictions == [] and w.captions == ["", "", ""]
    w.show_class(3)
    assert "does not end in class scores" in w.error


def test_filter_grid_knows_which_layers_have_switches(alex_probe, photos):
    """The grid says when its deconvnet reconstructions have no max-pool switches below the layer (they then
    look alike for every patch): it needs each layer's switches, as the explorer has them."""
    grid = cv.FilterGrid(alex_probe, photos[:2], layer="c1", k=1)
    assert grid.switches == [alex_probe.layer(n).switches for n in grid.layer_names]
    assert grid.switches[grid.layer_names.index("c1")] is False and grid.switches[grid.layer_names.index("c2")] is True
