"""TrainingTimeline through its synced state: each step shows that checkpoint's kernels' pixels, the slider,
the picture, the rule and the two-step comparison recompute, bad input is said in the widget, save() writes it."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from conftest import TinyNet
from PIL import Image

import cnnviz_widgets as cv
from cnnviz_widgets.figures import filter_sheet
from cnnviz_widgets.kernels.filters import filter_pictures


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture(autouse=True)
def exact_pictures(monkeypatch):
    monkeypatch.setenv("CNNVIZ_PICTURES", "bmp")  # raw pixels, compared with the kernels' own


@pytest.fixture()
def ck(tmp_path):
    torch.manual_seed(0)
    model = TinyNet().eval()
    rec = cv.CheckpointRecorder(model, folder=tmp_path / "rec")
    gen = torch.Generator().manual_seed(3)
    for step in range(4):
        rec.snapshot(step * 50, loss=2.0 - step * 0.5, accuracy=0.1 + step * 0.25)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.2 * torch.randn(p.shape, generator=gen))
    return rec.checkpoints(device="cpu", input_size=32)


def test_each_step_shows_its_checkpoint(ck, photos):
    w = cv.TrainingTimeline(ck, photos[:2], rule="deconvnet")
    assert w.error == "" and w.steps == [0, 50, 100, 150] and w.step_index == 3 and w.shown_step == 3
    assert w.layer_names == [l.name for l in ck.probe.layers] and len(w.recs) == len(w.layer_names)
    assert w.metrics == {"loss": [2.0, 1.5, 1.0, 0.5], "accuracy": [0.1, 0.35, 0.6, 0.85]}
    for i in (3, 0):
        w.step_index = i  # the slider
        assert w.shown_step == i and w.error == ""
        probe = ck.load(i)
        x = ck.model_input(photos[0][1], photos[0][0])
        rec = probe.reconstruct(x, layers="c3", rule="deconvnet")["c3"]
        strip = torch.cat([probe.reconstruct(x, layers=n, rule="deconvnet",
                                             targets={"fc5": probe.classify(x, 1)[0][0][0]})[n]
                           for n in w.layer_names])
        mode = cv.display.choose_display([strip])
        assert np.array_equal(decode(w.recs[w.layer_names.index("c3")]), cv.to_display(rec[0], mode))
        assert np.array_equal(decode(w.filters_png), filter_sheet(filter_pictures(probe), cell=40)[..., :3])
        assert [p[0] for p in w.predictions] == [label for label, _ in probe.predict(x)[0]]
        zeros = dict(w.sparsity)
        act = probe.activations(x, "c2")["c2"]
        assert zeros["c2"] == pytest.approx(float((act == 0).float().mean()), abs=1e-4)
        assert "fc4" not in zeros and "p2" in zeros  # conv and pool layers, as cv.sparsity
    w0 = list(w.recs)
    w.step_index = 3
    assert w.recs != w0


def test_picture_rule_and_kept_steps(ck, photos):
    w = cv.TrainingTimeline(ck, photos[:2], step=50)
    assert w.step_index == 1 and w.rule == "auto"
    before = list(w.recs)
    w.image_index = 1
    assert w.shown_image == 1 and w.recs != before
    w.set_state({"rule": "gradient"})  # what the selector sends
    assert w.shown_rule == "gradient" and w.error == ""
    loads = []
    original = ck.load
    ck.load = lambda i: loads.append(i) or original(i)
    w.set_state({"rule": "auto"})
    w.image_index = 0
    assert loads == [] and w.recs == before  # a step shown before comes back without recomputing


def test_two_steps_side_by_side(ck, photos):
    w = cv.TrainingTimeline(ck, photos[:1], depths=2, rule="deconvnet")
    assert w.compare_steps == [0, 3] and w.compare_rows == []
    w.view = "compare"
    assert w.error == "" and w.compare_shown == [0, 3, 0] and w.columns == ["c2", "c3"]
    x = ck.model_input(photos[0][1])
    for row, i in zip(w.compare_rows, (0, 3)):
        rec = ck.load(i).reconstruct(x, layers="c3", rule="deconvnet")["c3"][0]
        assert np.array_equal(decode(row[1]), cv.to_display(rec, cv.display.choose_display([ck.load(i).reconstruct(
            x, layers=["c2", "c3"], rule="deconvnet")[n][0] for n in ("c2", "c3")])))
    w.set_state({"compare_steps": [1, 2]})
    assert w.compare_shown == [1, 2, 0]
    w.set_state({"compare_steps": [1, 9]})
    assert "compare_steps must be two step indices, 0 to 3, got [1, 9]" in w.error and w.compare_shown == [1, 2, 0]
    w.set_state({"view": "film"})
    assert "{'view': 'film'}, which this widget cannot take" in w.error and w.view == "compare"


def test_save_writes_what_is_shown(ck, photos, tmp_path):
    w = cv.TrainingTimeline(ck, photos[:1], layers=["c1", "c3"])
    fig = w.to_figure()
    texts = [t.get_text() for t in fig.texts]
    assert texts[0].startswith("step 150 of 4:") and "step 150" in texts and "loss 0.5 accuracy 0.85" in texts
    assert "filters" in texts and "c3" in texts
    assert w.save(tmp_path / "t.svg").stat().st_size > 0
    w.view = "compare"
    texts = [t.get_text() for t in w.to_figure().texts]
    assert "step 0" in texts and "step 150" in texts and "step 0: top-5" in texts


def test_bad_input_is_said(ck, photos, tiny):
    bad = cv.TrainingTimeline(cv.Probe(tiny, input_size=32), photos[:1])
    assert "TrainingTimeline needs a cv.Checkpoints" in bad.error
    with pytest.raises(cv.CnnvizError, match="nothing to save yet"):
        bad.save("x.png")
    assert "No checkpoint at step 7" in cv.TrainingTimeline(ck, photos[:1], step=7).error
    w = cv.TrainingTimeline(ck, photos[:1])
    w.set_state({"step_index": 9})
    assert "step_index=9 is out of range: there are 4 checkpoints" in w.error and w.shown_step == 3
    with pytest.raises(cv.CnnvizError, match="has no argument 'layer'; did you mean 'layers'"):
        cv.TrainingTimeline(ck, photos[:1], layer="c1")


def test_a_bad_checkpoint_is_said_in_the_widget_and_the_others_show(ck, photos, tmp_path):
    files = [ck._sources[0], tmp_path / "lost_50.pt", ck._sources[2]]
    broken = cv.Checkpoints(TinyNet(), files, device="cpu", input_size=32)
    w = cv.TrainingTimeline(broken, photos[:1], step=0)
    assert w.error == "" and w.shown_step == 0
    w.step_index = 1
    assert "checkpoint 1 (step 50" in w.error and "lost_50.pt" in w.error and w.shown_step == 0
    w.step_index = 2
    assert w.error == "" and w.shown_step == 2


def test_metrics_chart_follows_the_slider(ck, photos, tmp_path):
    w = cv.TrainingTimeline(ck, photos[:1], layers=["c1"])
    chart = w.metrics_chart()
    lines = [m for m in chart.figure.marks if m is not chart.mark]
    assert [m.labels[0] for m in lines] == ["loss", "accuracy"]
    assert list(lines[1].y) == pytest.approx([0.1, 0.35, 0.6, 0.85]) and list(lines[1].x) == [0, 50, 100, 150]
    assert list(chart.mark.x) == [150, 150]
    w.step_index = 1
    assert list(chart.mark.x) == [50, 50] and chart.marked == 50
    fig = chart.to_figure()
    assert [a.get_title() for a in fig.axes] == ["loss", "accuracy"]
    assert chart.save(tmp_path / "m.png").stat().st_size > 0
