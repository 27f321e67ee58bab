"""Issue 28: every figure and widget made from a probe on random weights says so inside itself (a stamp in the saved
SVG's text, a note in the widget's synced state), and none made from loaded weights does."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import cnnviz_widgets as cv

STAMP = "random weights"


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """The paper's AlexNet with seeded random weights, and the same numbers loaded from a file (loaded weights)."""
    random = cv.load_model("alexnet_paper", weights=None, seed=0)
    path = tmp_path_factory.mktemp("weights") / "alexnet_paper.pth"
    torch.save(random.state_dict(), path)
    loaded = cv.load_model("alexnet_paper", weights=path)
    return {"random": cv.Probe(random, device="cpu"), "loaded": cv.Probe(loaded, device="cpu"), "model": random,
            "path": path}


@pytest.fixture(scope="module")
def photo():
    return cv.sample_images()[:1]


@pytest.fixture(scope="module")
def two_photos():
    return cv.sample_images()[:2]


def svg_text(figure, tmp_path) -> str:
    """The saved SVG's texts, each element's joined by a space (a stamp wrapped onto lines reads as one sentence)."""
    import re
    from html import unescape

    svg = cv.save_figure(figure, tmp_path / "figure.svg").read_text()
    return " ".join(unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg))


# ------------------------------------------------------------------ where the weights came from
def test_load_model_records_where_the_weights_came_from(nets):
    random, loaded = nets["random"], nets["loaded"]
    assert random.random_weights and random.weights.model == "alexnet_paper" and random.weights.source == "seed 0"
    assert random.weights_note.startswith("random weights: alexnet_paper (seed 0), not trained")
    assert not loaded.random_weights and loaded.weights.source == "file alexnet_paper.pth" and loaded.weights_note == ""
    with pytest.raises(AttributeError):
        random.random_weights = False  # read-only: the probe knows, a cell does not overrule it


def test_a_users_own_module_is_taken_as_trained_and_nothing_is_said():
    probe = cv.Probe(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), device="cpu", input_size=32)
    assert probe.weights is None and not probe.random_weights and probe.weights_note == ""


def test_weights_loaded_or_trained_into_a_random_model_count_as_loaded():
    model = cv.load_model("alexnet_paper", weights=None, seed=1)
    probe = cv.Probe(model, device="cpu")  # shares the model's parameters: what the cell does next is seen
    assert probe.random_weights and cv.Probe(copy.deepcopy(model), device="cpu").random_weights
    model.double().float()  # moving or converting is not loading
    assert probe.random_weights
    model.load_state_dict(cv.load_model("alexnet_paper", weights=None, seed=2).state_dict())  # a checkpoint, in place
    assert not probe.random_weights and probe.weights is None and probe.weights_note == ""
    trained = cv.load_model("alexnet_paper", weights=None, seed=1)
    with torch.no_grad():
        next(trained.parameters()).add_(1.0)  # an optimizer's step does the same
    assert not cv.Probe(trained, device="cpu").random_weights


def test_checkpoints_loaded_into_a_random_model_are_loaded_weights(nets, photo, tmp_path):
    model = nets["model"]
    ck = cv.Checkpoints(model, [model.state_dict()], steps=[0], device="cpu")
    assert not ck.load(0).random_weights  # load_state_dict(assign=True): the checkpoint's tensors
    fig = cv.figure_timeline(ck, photo, layers=["c1", "c5"], size=48)
    assert STAMP not in svg_text(fig, tmp_path)
    timeline = cv.TrainingTimeline(ck, photo, layers=["c1", "c5"])
    assert timeline.error == "" and timeline.get_state()["note"] == ""
    assert STAMP not in svg_text(timeline.to_figure(), tmp_path)


# ------------------------------------------------------------------ figures
FIGURES = {
    "figure_layers": lambda p, photos: cv.figure_layers(p, photos, layers=["c1", "c5", "fc8"], size=48),
    "figure_compare": lambda p, photos: cv.figure_compare(p, p, photos, depths=2, size=48),
    "figure_sparsity": lambda p, photos: cv.figure_sparsity({"alexnet": cv.sparsity(p, photos, progress=False)}),
    "figure_sparsity (probe, images)": lambda p, photos: cv.figure_sparsity({"alexnet": (p, photos)}),
    "figure_filters": lambda p, photos: cv.figure_filters(cv.top_patches(p, photos, "c2", k=2, progress=False),
                                                          filters=4),
    "figure_class_maps": lambda p, photos: cv.figure_class_maps(p, photos, size=48),
}


@pytest.mark.parametrize("weights", ["random", "loaded"])
@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_is_stamped_exactly_when_its_weights_are_random(name, weights, nets, photo, tmp_path):
    svg = svg_text(FIGURES[name](nets[weights], photo), tmp_path)
    if weights == "random":
        assert f"{STAMP}: " in svg and "seed 0), not trained" in svg
    else:
        assert STAMP not in svg


def test_figure_compare_names_the_random_one_of_two(nets, photo, tmp_path):
    fig = cv.figure_compare(nets["loaded"], nets["random"], photo, depths=2, size=48, names=["trained", "untrained"])
    svg = svg_text(fig, tmp_path)
    assert f"{STAMP}: untrained (alexnet_paper, seed 0)" in svg and "trained (alexnet_paper, file alexnet_paper.pth)" in svg


def test_a_plain_dict_of_sparsity_says_nothing_it_cannot_know(nets, photo, tmp_path):
    measured = cv.sparsity(nets["random"], photo, progress=False)
    assert measured.weights_note and STAMP not in svg_text(cv.figure_sparsity({"a": dict(measured)}), tmp_path)


def test_the_stamp_is_drawn_in_the_png(nets, photo, tmp_path):
    """Seen, not only in the SVG's text: the random figure is taller by the stamp, with red ink at its top."""
    import numpy as np
    from PIL import Image

    pngs = {}
    for weights in ("random", "loaded"):
        path = cv.save_figure(FIGURES["figure_layers"](nets[weights], photo), tmp_path / f"{weights}.png")
        pngs[weights] = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert pngs["random"].shape[0] > pngs["loaded"].shape[0]
    top = pngs["random"][:30]
    red = (top[..., 0] > 180) & (top[..., 1] < 90) & (top[..., 2] < 90)
    assert red.sum() > 50


# ------------------------------------------------------------------ widgets
WIDGETS = {
    "DeconvExplorer": lambda p, photos: cv.DeconvExplorer(p, photos, layers=["c1", "c5"]),
    "FilterGrid": lambda p, photos: cv.FilterGrid(p, photos, layer="c2", k=2, page_size=4),
    "PatchGallery": lambda p, photos: cv.PatchGallery(p, photos, layer="c5", k=2, page_size=4),
    "EmbeddingMap": lambda p, photos: cv.EmbeddingMap(p, photos, layer="c5", n_patches=120, grid=6),
    "CompareModels": lambda p, photos: cv.CompareModels(p, p, photos, depths=2),
}


@pytest.mark.parametrize("weights", ["random", "loaded"])
@pytest.mark.parametrize("name", list(WIDGETS))
def test_every_widget_says_so_in_its_state_and_its_saved_figure(name, weights, nets, two_photos, tmp_path):
    w = WIDGETS[name](nets[weights], two_photos)
    assert w.error == "", w.error
    note = w.get_state()["note"]  # synced: what the browser shows
    svg = svg_text(w.to_figure(), tmp_path)
    if weights == "random":
        assert note.startswith(STAMP) and "seed 0), not trained" in note and f"{STAMP}:" in svg
    else:
        assert STAMP not in note and STAMP not in svg


def test_compare_models_says_which_of_the_two_is_random(nets, photo):
    w = cv.CompareModels(nets["loaded"], nets["random"], photo, depths=2, names=("VGG-ish", "Alex"))
    assert w.error == "" and w.note.startswith(f"{STAMP}: Alex (alexnet_paper, seed 0), not trained; VGG-ish")
    assert "compares a trained network with an untrained one" in w.note


@pytest.mark.parametrize("weights", ["random", "loaded"])
def test_the_sparsity_chart_says_so_in_its_state_and_its_saved_figure(weights, nets, photo, tmp_path):
    chart = cv.SparsityChart({"alexnet": cv.sparsity(nets[weights], photo, progress=False)})
    svg = svg_text(chart.to_figure(), tmp_path)
    if weights == "random":
        assert STAMP in chart.note.get_state()["value"] and f"{STAMP}:" in svg
    else:
        assert chart.note.get_state()["value"] == "" and STAMP not in svg


# ------------------------------------------------------------------ cascading randomisation
def test_randomize_layers_redraws_from_the_top_down_to_a_layer_in_a_copy(nets):
    trained = cv.load_model("alexnet_paper", weights=nets["path"])
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    copy_ = cv.randomize_layers(trained, from_layer="c4", seed=3)
    assert copy_ is not trained
    assert all(torch.equal(v, trained.state_dict()[k]) for k, v in before.items())  # the model itself untouched
    probe = cv.Probe(copy_, device="cpu")
    kept = {l.module_path for l in probe.layers if l.name in ("c1", "c2", "c3")}
    redrawn = {l.module_path for l in probe.layers if l.name in ("c4", "c5", "fc6", "fc7", "fc8")}
    state = copy_.state_dict()
    for key, value in before.items():
        module = key.rsplit(".", 1)[0]
        if module in kept:
            assert torch.equal(state[key], value), key
        if module in redrawn and key.endswith("weight"):
            assert not torch.equal(state[key], value), key
    again = cv.randomize_layers(trained, from_layer="c4", seed=3).state_dict()
    assert all(torch.equal(again[k], v) for k, v in state.items())  # the seed decides
    other = cv.randomize_layers(trained, from_layer="c4", seed=4).state_dict()
    assert not all(torch.equal(other[k], v) for k, v in state.items())
    # it says so: partly random, which layers
    assert probe.random_weights and probe.weights.partly
    assert probe.weights_note.startswith("random weights: alexnet_paper (file alexnet_paper.pth; c4 to fc8 re-drawn, "
                                         "seed 3)")


def test_randomize_layers_takes_a_probe_and_names_a_wrong_layer(nets):
    only_top = cv.randomize_layers(nets["loaded"], from_layer="fc8")
    assert cv.Probe(only_top, device="cpu").weights.source == "file alexnet_paper.pth; fc8 re-drawn, seed 0"
    with pytest.raises(cv.LayerNotFoundError, match="No layer 'c9'"):
        cv.randomize_layers(nets["loaded"], from_layer="c9")
    with pytest.raises(cv.CnnvizError, match="must be a torch.nn.Module or a cv.Probe"):
        cv.randomize_layers("alexnet", from_layer="c1")


def test_the_receptive_field_table_says_so_only_where_it_measured_through_random_weights(photo, tmp_path):
    """Receptive fields follow from the architecture alone; effective fields (images=) are gradients, so depend on
    the weights. At 128 px, AlexNet's p5 sees more than the picture: its effective field is measured."""
    random = cv.Probe(cv.load_model("alexnet", weights=None), device="cpu", input_size=128)
    plain = cv.ReceptiveFieldTable({"alexnet": random})
    assert plain.error == "" and plain.get_state()["note"] == "" and STAMP not in svg_text(plain.to_figure(), tmp_path)
    measured = cv.ReceptiveFieldTable({"alexnet": random}, images=photo)
    assert measured.error == "" and any(any(e) for e in measured.effective)
    assert measured.get_state()["note"].startswith(f"{STAMP}: alexnet (seed 0)")
    assert f"{STAMP}: alexnet (seed 0)" in svg_text(measured.to_figure(), tmp_path)
    path = tmp_path / "alexnet.pth"
    torch.save(random.model.state_dict(), path)
    loaded = cv.Probe(cv.load_model("alexnet", weights=path), device="cpu", input_size=128)
    assert cv.ReceptiveFieldTable({"alexnet": loaded}, images=photo).get_state()["note"] == ""
