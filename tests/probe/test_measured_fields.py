"""Widgets use the receptive fields measured where tracing gives None (issue 22, item 4): they ask the probe, never
``Layer.rf``; a cell measures inline (bounded) so the widget opens with patches; the browser sees "measuring…" while
a job measures, then the patches; a field that is no box is an error naming the op, never a crop."""
from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from conftest import settle
import torch
from torch import nn

import cnnviz_widgets as cv
from oracles import unit_support


class Rolled(nn.Module):
    """c1, a roll of the channels (the tracer cannot tell it moves no position), a strided c2, c3: c2's and c3's
    fields are None when traced and measurable (c3: 9 px, stride 2)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.c3 = nn.Conv2d(6, 6, 3, padding=1)

    def forward(self, x):
        return self.c3(torch.relu(self.c2(self.c1(x).roll(1, 1))))


def rolled_probe() -> cv.Probe:  # a fresh one each time: a probe records the fields it measured
    torch.manual_seed(0)
    return cv.Probe(Rolled().eval(), input_size=32)


def circular_probe() -> cv.Probe:
    """A circular pad: corner units read the opposite edge, so no box holds every unit's support."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular"),
                        nn.Conv2d(4, 4, 3))
    return cv.Probe(net.eval(), input_size=16)


def support(probe: cv.Probe, name: str, y: int, x: int) -> tuple[int, int, int, int] | None:
    """Brute force: the input pixels (top, left, bottom, right) that unit (y, x) of ``name`` has a gradient from."""
    return unit_support(probe.model, probe.layer(name).module_path, probe.input_size, y, x)


def clipped(box, side: int) -> tuple[int, int, int, int]:
    t, l, b, r = box
    return (max(t, 0), max(l, 0), min(b, side), min(r, side))


def gate_measurement(probe):
    """Make the probe's measurement wait on an event the test releases (it takes milliseconds on these nets)."""
    started, release = threading.Event(), threading.Event()
    original = probe.measure_missing_fields

    def slow(*args, **kwargs):
        started.set()
        assert release.wait(30)
        return original(*args, **kwargs)

    probe.measure_missing_fields = slow
    return started, release


def assert_patches_at_the_measured_field(top, probe):
    rf = top.receptive_field()
    assert rf.measured and (rf.size, rf.stride, rf.offset) == (9, 2, -4)
    side = probe.input_size
    checked = 0
    for c in range(top.channels):
        for i in range(top.k):
            if int(top.image_index[c, i]) < 0:
                continue
            y, x = (int(v) for v in top.yx[c, i].tolist())
            box = top.patch_box(y, x)
            assert clipped(box, side) == support(probe, top.layer, y, x), (c, i, box)
            patch = top.patch(c, i)
            assert patch.shape == (9, 9, 3)
            t, l, b, r = box
            if t >= 0 and l >= 0 and b <= side and r <= side:  # inside: the very pixels of the picture
                assert np.array_equal(patch, top._source.seen(int(top.image_index[c, i]))[t:b, l:r])
            checked += 1
            if checked >= 6:
                return
    assert checked


def test_a_filter_grid_from_a_cell_measures_the_field_and_opens_with_patches(photos):
    probe = rolled_probe()
    assert probe.receptive_field("c3") is None and probe.field_pending("c3")
    w = cv.FilterGrid(probe, photos[:4], layer="c3", k=4)
    assert w.error == "", w.error
    assert w.sheet and w.sheet_for == {"layer": "c3", "page": 0} and "receptive field 9 px" in w.field
    assert not probe.field_pending("c3") and probe.receptive_field("c3").measured
    assert w.notice == "" and not w.busy  # the "measuring…" line went with the work
    assert "c3" not in w.note and "c2" in w.note  # c2 is still to be measured, when shown
    assert_patches_at_the_measured_field(w.top, probe)
    w.selected = {"layer": "c3", "filter": int(w.sheet_filters[0])}
    assert w.error == "" and w.detail and w.detail_for["layer"] == "c3"


def test_layers_without_a_traced_field_are_offered_and_the_default_has_one(photos):
    probe = rolled_probe()
    w = cv.FilterGrid(probe, photos[:2], k=2)
    assert w.error == "" and w.layer == "c1"  # the default needs no measuring
    assert w.layer_names == ["c1", "c2", "c3"] and probe.field_pending("c3")


def test_the_browser_sees_measuring_then_the_patches(photos):
    probe = rolled_probe()
    w = cv.FilterGrid(probe, photos[:4], layer="c1", k=4)
    assert w.error == "" and probe.field_pending("c3")
    started, release = gate_measurement(probe)

    async def scenario():
        w.set_state({"layer": "c3"})
        assert w.busy
        await asyncio.to_thread(started.wait, 10)
        for _ in range(100):  # the status travels through the event loop
            if w.notice:
                break
            await asyncio.sleep(0.01)
        assert w.notice == "measuring the receptive field of c3… (tracing cannot follow roll)"
        assert w.busy and w.sheet_for["layer"] == "c1"  # still the old sheet while measuring
        release.set()
        await settle(w)

    asyncio.run(scenario())
    assert w.error == "", w.error
    assert w.notice == "" and w.sheet_for == {"layer": "c3", "page": 0} and "receptive field 9 px" in w.field
    assert_patches_at_the_measured_field(w.top, probe)


def test_a_stop_while_measuring_keeps_the_old_sheet_and_the_layer_unmeasured(photos):
    probe = rolled_probe()
    w = cv.FilterGrid(probe, photos[:2], layer="c1", k=2)
    started, release = gate_measurement(probe)

    async def scenario():
        w.set_state({"layer": "c3"})
        await asyncio.to_thread(started.wait, 10)
        w._on_custom_msg(w, {"event": "stop"}, [])
        release.set()
        await settle(w)

    asyncio.run(scenario())
    assert w.error == "" and w.sheet_for["layer"] == "c1" and w.layer == "c1"
    assert "stopped" in w.notice and "measuring" not in w.notice
    assert probe.field_pending("c3")  # left for the next time it is shown


def test_a_field_that_is_no_box_is_an_error_naming_the_op_not_a_crop(photos):
    probe = circular_probe()
    w = cv.FilterGrid(probe, photos[:2], layer="c2", k=2)
    assert "conv2d" in w.error and "no box" in w.error and "'c2'" in w.error
    assert w.sheet == b"" and w.notice == ""
    assert probe.receptive_field("c2") is None and not probe.field_pending("c2")
    with pytest.raises(cv.UnsupportedModelError, match="no box"):
        w.top.patch(0, 0)

    w = cv.FilterGrid(circular_probe(), photos[:2], layer="c1", k=2)
    assert w.error == "" and w.sheet_for["layer"] == "c1"

    async def scenario():
        w.set_state({"layer": "c3"})
        await settle(w)

    asyncio.run(scenario())
    assert "conv2d" in w.error and "no box" in w.error and "'c3'" in w.error
    assert w.sheet_for["layer"] == "c1" and w.notice == ""  # the old sheet stays; no crop at a wrong box


def test_the_explorer_boxes_a_unit_at_its_measured_field(photos):
    probe = rolled_probe()
    w = cv.DeconvExplorer(probe, photos[:2], layers=["c1", "c2", "c3"])
    assert w.error == "" and w.rf[2] == []  # not measured yet
    w.show_unit("c3", (0, 5, 6))
    assert w.error == "", w.error
    rf = probe.receptive_field("c3")
    assert rf.measured and w.rf[2] == [9.0, 2.0, -4.0]
    assert w.selected["field"] == list(rf.box(5, 6)) == list(support(probe, "c3", 5, 6))
    # a click: the unit under it is the one whose measured field is centred nearest
    w.show_unit_at("c3", 6 * 2 + 0.5, 5 * 2 + 0.5)
    assert w.error == "" and w.selected["unit"][1:] == [5, 6]
    assert w.selected["field"] == list(support(probe, "c3", 5, 6))


def test_the_explorer_reconstructs_a_unit_without_a_box_where_none_exists(photos):
    probe = circular_probe()
    w = cv.DeconvExplorer(probe, photos[:1])
    w.show_unit("c2", (0, 3, 3))
    assert w.error == "" and w.unit_png and "field" not in w.selected


def test_an_embedding_map_from_a_cell_measures_its_field(photos):
    probe = rolled_probe()
    w = cv.EmbeddingMap(probe, photos[:4], layer="c3", n_patches=40, grid=4)
    assert w.error == "", w.error
    assert w.shown_layer == "c3" and w.notice == "" and probe.receptive_field("c3").measured
    assert w.space.patch(0).shape == (9, 9, 3)
