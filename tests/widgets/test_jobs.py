"""Browser-started work (issue 6): background jobs that a Stop or a newer request cancels, and whose
stale results are dropped, never shown for the wrong input.

The browser is simulated the way ipywidgets delivers its messages: ``set_state`` (a trait change)
and a custom ``{"event": "stop"}`` message, inside a running event loop as in a kernel.
"""
from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from conftest import settle
import torch

import cnnviz_widgets as cv
from cnnviz_widgets.display import to_display
from cnnviz_widgets.probe.hooks import hook_count
from cnnviz_widgets.widgets.encoding import picture_bytes, png_bytes


@pytest.fixture(scope="module")
def probe():
    return cv.Probe(cv.load_model("alexnet_paper", weights=None, seed=0), input_size=96)


def gate(widget, method: str):
    """Make ``widget.method`` wait on an event the test releases: a slow computation on demand."""
    release, started = threading.Event(), threading.Event()
    original = getattr(widget, method)

    def slow(*args, **kwargs):
        started.set()
        assert release.wait(30)
        return original(*args, **kwargs)

    setattr(widget, method, slow)
    return started, release


def expected_recs(probe, photos, index):
    images = cv.load_images(photos)
    x = probe.model_input(images.raw(index))
    out = probe.output_layer  # the explorer shows the top-1 class there (the paper's last column)
    targets = {out.name: probe.classify(x, k=1)[0][0][0]} if out is not None else {}
    recs = probe.deconvnet(x, layers=list(probe.layer_names), targets=targets)
    return picture_bytes([to_display(recs[n][0]) for n in probe.layer_names])


def test_a_newer_image_drops_the_stale_result(probe, photos):
    w = cv.DeconvExplorer(probe, photos[:4])
    shown = []
    w.observe(lambda c: shown.append(c["new"]), "shown_image")

    async def scenario():
        started, release = gate(w, "_reconstruct")
        w.set_state({"image_index": 1})  # the browser asks for image 1 ...
        assert w.busy  # ... the handler returned at once: the kernel stays responsive
        await asyncio.to_thread(started.wait, 10)
        w.set_state({"image_index": 2})  # ... and moves on before image 1 is done
        release.set()
        await settle(w)

    asyncio.run(scenario())
    assert shown == [2], f"results shown for images {shown}; image 1's was stale and must be dropped"
    assert w.image_index == w.shown_image == 2 and w.error == "" and not w.busy
    assert w.recs == expected_recs(probe, photos[:4], 2)


def test_a_result_already_computed_for_a_left_input_is_dropped(probe, photos):
    """The race the ids exist for: image 1's result is complete and on its way when image 2 is asked."""
    w = cv.DeconvExplorer(probe, photos[:4])
    shown = []
    w.observe(lambda c: shown.append(c["new"]), "shown_image")
    finished = threading.Event()
    original = w._reconstruct

    def reconstruct(*args):
        r = original(*args)
        finished.set()
        return r

    w._reconstruct = reconstruct

    async def scenario():
        w.set_state({"image_index": 1})
        assert finished.wait(30)  # blocking on purpose: image 1's result is queued, not yet applied
        w.set_state({"image_index": 2})
        await settle(w)

    asyncio.run(scenario())
    assert shown == [2], f"results shown for images {shown}"
    assert w.recs == expected_recs(probe, photos[:4], 2)


def test_stop_keeps_the_previous_result_and_the_widget_usable(probe, photos):
    w = cv.DeconvExplorer(probe, photos[:4])
    before = list(w.recs)
    hooks = hook_count(probe.model)

    async def scenario():
        started, release = gate(w, "_reconstruct")
        w.set_state({"image_index": 3})
        await asyncio.to_thread(started.wait, 10)
        w._on_custom_msg(w, {"event": "stop"}, [])  # the Stop control
        release.set()
        await settle(w)

    asyncio.run(scenario())
    assert "stopped" in w.notice and w.error == "" and not w.busy and w.progress == 0
    assert w.image_index == w.shown_image == 0, "the picker goes back to the image still shown"
    assert w.recs == before
    assert hook_count(probe.model) == hooks and not probe.model.training and torch._C._len_torch_function_stack() == 0

    async def again():
        w.set_state({"image_index": 3})
        await settle(w)

    asyncio.run(again())  # usable after the stop: the same request now completes
    assert w.shown_image == 3 and w.notice == "" and w.recs == expected_recs(probe, photos[:4], 3)


def test_stop_cancels_inside_the_kernel_between_layers(probe, photos):
    """Stop is honoured mid-computation (between layers), not only before the job starts."""
    w = cv.DeconvExplorer(probe, photos[:4])
    layers_done = []
    original = probe.reconstruct

    def spy(x, progress=None, **options):
        def report(d, t):
            layers_done.append(d)
            if d == 1:
                w.stop()  # pressed after the forward pass, before the layer on screen is reversed
            progress(d, t)
        return original(x, progress=report, **options)

    async def scenario():
        probe.reconstruct = spy
        try:
            w.set_state({"image_index": 1})
            await settle(w)
        finally:
            del probe.reconstruct

    asyncio.run(scenario())
    assert layers_done == [1], f"work went on after Stop: progress {layers_done}"
    assert w.shown_image == 0 and "stopped; the previous result is still shown" in w.notice


def test_a_unit_click_for_an_image_left_behind_is_dropped(probe, photos):
    w = cv.DeconvExplorer(probe, photos[:4])

    async def scenario():
        w._handle_custom_msg({"event": "click", "layer": w.layer_names[2], "x": 40, "y": 40}, [])
        w.set_state({"image_index": 2})  # a new image supersedes the click on the old one
        await settle(w)

    asyncio.run(scenario())
    assert w.shown_image == 2 and w.unit_png == b"" and w.selected == {}

    async def click():
        w._handle_custom_msg({"event": "click", "layer": w.layer_names[2], "x": 40, "y": 40}, [])
        await settle(w)

    asyncio.run(click())
    assert w.selected["layer"] == w.layer_names[2] and w.unit_png and w.error == ""


def test_errors_of_background_jobs_reach_the_widget(probe, photos):
    w = cv.DeconvExplorer(probe, photos[:4])

    async def scenario():
        w.set_state({"image_index": 9})
        await settle(w)

    asyncio.run(scenario())
    assert "image_index=9 is out of range: there are 4 images" in w.error and not w.busy
    assert w.shown_image == 0  # the pictures still say which image they are


def test_python_assignments_stay_synchronous(probe, photos):
    """A cell that sets a trait sees the result on its next line, even inside a running loop."""
    w = cv.DeconvExplorer(probe, photos[:4])

    async def scenario():
        w.image_index = 2
        assert w.shown_image == 2 and not w.busy

    asyncio.run(scenario())


def test_filter_grid_view_and_detail_are_never_stale(probe, photos):
    g = cv.FilterGrid(probe, photos[:4], layer="c3", k=4, page_size=8)
    sheets = []
    g.observe(lambda c: sheets.append(dict(c["new"])), "sheet_for")

    async def scenario():
        started, release = gate(g, "_draw")
        g.set_state({"page": 1})
        await asyncio.to_thread(started.wait, 10)
        g.set_state({"layer": "c5"})  # resets the page to 0: a newer view
        release.set()
        await settle(g)
        g.set_state({"selected": {"layer": "c5", "filter": 1}})
        g.set_state({"selected": {"layer": "c5", "filter": 2}})
        await settle(g)

    asyncio.run(scenario())
    assert sheets == [{"layer": "c5", "page": 0}], sheets
    assert g.detail_for == {"layer": "c5", "filter": 2, "rule": "auto", "drawn": "deconvnet (auto)"} and g.error == ""
    strongest_first = [int(c) for c in np.argsort(-g.top.values[:, 0].numpy(), kind="stable")]
    assert g.sheet_filters == strongest_first[: g.page_size]  # page 0 of c5, not page 1 of c3


def test_compare_drops_stale_images(photos):
    a = cv.Probe(cv.load_model("alexnet_paper", weights=None, seed=0), input_size=96)
    b = cv.Probe(cv.load_model("alexnet_paper", weights=None, seed=1), input_size=96)
    w = cv.CompareModels(a, b, photos[:3], depths=2)
    shown = []
    w.observe(lambda c: shown.append(c["new"]), "shown_image")

    async def scenario():
        w.set_state({"image_index": 1})
        w.set_state({"image_index": 2})
        await settle(w)

    asyncio.run(scenario())
    assert shown == [2] and w.error == ""


def test_probe_serialises_a_background_job_and_a_cell(probe, photos):
    """A cell that uses the probe while a widget job runs gets its own, correct activations."""
    x = probe.model_input(cv.load_images(photos[:2]).raw(0))
    want = probe.activations(x, ["c2"])["c2"]
    w = cv.DeconvExplorer(probe, photos[:4])

    async def scenario():
        for i in (1, 2, 3, 1, 2):
            w.set_state({"image_index": i})
            got = await asyncio.to_thread(lambda: probe.activations(x, ["c2"])["c2"])
            assert torch.equal(got, want)
        await settle(w)

    asyncio.run(scenario())
    assert w.shown_image == 2 and hook_count(probe.model) == 0


def test_an_interrupted_request_puts_the_picker_back(probe, photos):
    """Ctrl-C (the notebook's interrupt) mid-way returns the picker to the image on screen, says so,
    and leaves the widget usable. (A failed request keeps its input and shows the error instead, so
    that linked widgets stay linked.)"""
    w = cv.DeconvExplorer(probe, photos[:4])
    w.image_index = 7
    assert "image_index=7 is out of range" in w.error and w.image_index == 7 and w.shown_image == 0
    w.image_index = 0  # back to the image on screen: nothing to compute, the message goes
    assert w.error == "" and w.shown_image == 0

    original = probe.reconstruct

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    probe.reconstruct = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            w.image_index = 2
    finally:
        del probe.reconstruct
    assert probe.reconstruct.__func__ is original.__func__
    assert w.image_index == w.shown_image == 0 and "interrupted" in w.notice and not w.busy
    w.image_index = 2  # and it works again
    assert w.shown_image == 2 and w.error == ""


def test_stopping_the_filter_grid_restores_its_view_and_detail(probe, photos):
    g = cv.FilterGrid(probe, photos[:4], layer="c3", k=4, page_size=8)
    g.selected = {"layer": "c3", "filter": 1}
    shown_sheet, shown_detail = g.sheet, g.detail

    async def scenario():
        started, release = gate(g, "_draw")
        g.set_state({"layer": "p2"})  # not mined yet: a long job
        await asyncio.to_thread(started.wait, 10)
        g.stop()
        release.set()
        await settle(g)

    asyncio.run(scenario())
    assert g.layer == "c3" and g.sheet_for == {"layer": "c3", "page": 0} and g.sheet == shown_sheet
    assert "stopped" in g.notice and not g.busy

    async def detail():
        top = g.top
        release = threading.Event()
        original = type(top).reconstructions

        def slow(self, c, *a, **k):
            assert release.wait(30)
            return original(self, c, *a, **k)

        type(top).reconstructions = slow
        try:
            g.set_state({"selected": {"layer": "c3", "filter": 5}})
            await asyncio.sleep(0.05)
            g._on_custom_msg(g, {"event": "stop"}, [])
            release.set()
            await settle(g)
        finally:
            type(top).reconstructions = original

    asyncio.run(detail())
    assert g.selected == {"layer": "c3", "filter": 1} and g.detail == shown_detail
    assert g.detail_for == {"layer": "c3", "filter": 1, "rule": "auto", "drawn": "deconvnet (auto)"}


def test_the_notebooks_interrupt_stops_background_jobs(probe, photos):
    """An idle kernel ignores SIGINT; while a widget's job runs, the interrupt button stops it instead,
    and the kernel's own setting comes back when the job ends."""
    import os
    import signal

    w = cv.DeconvExplorer(probe, photos[:4])
    kernel_setting = signal.signal(signal.SIGINT, signal.SIG_IGN)  # what ipykernel does when idle
    try:
        async def scenario():
            started, release = gate(w, "_reconstruct")
            w.set_state({"image_index": 2})
            await asyncio.to_thread(started.wait, 10)
            await asyncio.sleep(0.05)  # the hook goes in once the submitting handler has returned
            assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)  # the interrupt button
            await asyncio.sleep(0.05)
            release.set()
            await settle(w)

        asyncio.run(scenario())
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN, "the kernel's own SIGINT setting is back"
    finally:
        signal.signal(signal.SIGINT, kernel_setting)
    assert "stopped" in w.notice and w.image_index == w.shown_image == 0 and not w.busy


def test_the_interrupt_reaches_jobs_whose_messages_arrive_on_another_thread(probe, photos):
    """ipykernel 7 handles widget messages on a subshell thread with its own event loop: the hook
    for the interrupt must still go in on the main thread (the only one that may set it)."""
    import os
    import signal

    kernel_setting = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        async def main_thread():
            w = cv.DeconvExplorer(probe, photos[:4])  # made in a cell: the main loop is noted
            started, release = gate(w, "_reconstruct")
            subshell_loop = asyncio.new_event_loop()
            subshell = threading.Thread(target=subshell_loop.run_forever, daemon=True)
            subshell.start()
            subshell_loop.call_soon_threadsafe(w.set_state, {"image_index": 3})  # the browser's pick
            await asyncio.to_thread(started.wait, 10)
            for _ in range(100):  # the main loop installs the hook
                if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
                    break
                await asyncio.sleep(0.01)
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(0.05)
            release.set()
            await settle(w)
            subshell_loop.call_soon_threadsafe(subshell_loop.stop)
            subshell.join(5)
            return w

        w = asyncio.run(main_thread())
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, kernel_setting)
    assert "stopped" in w.notice and w.shown_image == 0 and not w.busy


def test_embedding_map_follows_a_linked_layer_slider(probe, photos):
    import traitlets

    e = cv.EmbeddingMap(probe, photos[:3], layer="c3", n_patches=150, grid=8, cell=8)
    x = cv.DeconvExplorer(probe, photos[:3])
    traitlets.link((x, "layer"), (e, "layer"))
    x.layer = "c4"  # from Python: inline
    want = cv.representation_space(probe, photos[:3], "c4", n_patches=150, grid=8, progress=False)
    assert e.shown_layer == "c4" and e.space.layer == "c4" and e.error == ""
    assert np.array_equal(e.space.grid_index, want.grid_index) and e.mosaic == png_bytes(want.mosaic(cell=8))
    shown = []
    e.observe(lambda c: shown.append(c["new"]), "shown_layer")

    async def scenario():
        e.set_state({"layer": "c2"})
        e.set_state({"layer": "c5"})  # the slider moved on before c2 was embedded
        await settle(e)

    asyncio.run(scenario())
    assert shown == ["c5"] and e.layer == e.shown_layer == "c5" and e.depth == 0


def test_stop_reaches_inside_the_tsne(probe, photos):
    """The t-SNE half of representation_space reports progress and stops at the next report."""
    seen = []

    def progress(done, total):
        seen.append(done / total)
        if done / total > 0.7:
            raise cv.StoppedError("stopped")

    with pytest.raises(cv.StoppedError):
        cv.representation_space(probe, photos[:3], "c3", n_patches=300, grid=8, progress=progress)
    assert seen == sorted(seen) and 0.5 < seen[-1] < 0.8, seen  # stopped within the t-SNE, at its first report past 70%
    whole = []
    cv.representation_space(probe, photos[:3], "c3", n_patches=300, grid=8, progress=lambda d, t: whole.append(d / t))
    assert whole[-1] == 1.0 and len([f for f in whole if f > 0.5]) == 15  # every 25 of the 375 iterations


def test_stopping_a_rule_change_puts_the_selector_back(probe, photos):
    w = cv.DeconvExplorer(probe, photos[:3])
    before = list(w.recs)

    async def scenario():
        started, release = gate(w, "_reconstruct")
        w.set_state({"rule": "guided"})  # the selector
        await asyncio.to_thread(started.wait, 10)
        w._on_custom_msg(w, {"event": "stop"}, [])
        release.set()
        await settle(w)

    asyncio.run(scenario())
    assert w.rule == w.shown_rule == "auto" and w.recs == before  # nothing recomputed on the way back
    assert w.image_index == w.shown_image == 0 and "stopped" in w.notice and not w.busy and w.error == ""


def test_back_to_the_shown_image_under_a_new_rule_computes_it(probe, photos):
    w = cv.DeconvExplorer(probe, photos[:3])

    async def scenario():
        w.set_state({"rule": "guided"})
        w.set_state({"image_index": 1})
        w.set_state({"image_index": 0})  # the image on screen, but not by this rule: not a way back
        await settle(w)

    asyncio.run(scenario())
    assert w.shown_image == 0 and w.shown_rule == "guided" and w.error == ""
    x = probe.model_input(cv.load_images(photos[:3]).raw(0))
    c4 = probe.reconstruct(x, layers="c4", rule="guided")["c4"][0]
    assert w.recs[w.layer_names.index("c4")] == picture_bytes([to_display(c4)])[0]


def test_the_layer_on_screen_comes_first_then_the_whole_strip(probe, photos):
    """A browser-started image change shows the photo, the top-5 and the current layer's picture first (the other
    layers empty), then every layer; the pictures are those of the whole strip. A Python-started change sends
    the whole strip at once."""
    w = cv.DeconvExplorer(probe, photos[:4])
    w.layer = w.layer_names[3]
    sent = []
    w.observe(lambda c: sent.append(list(c["new"])), "recs")

    async def scenario():
        w.set_state({"image_index": 2})
        await settle(w)

    asyncio.run(scenario())
    expected = expected_recs(probe, photos[:4], 2)
    assert len(sent) == 2, [sum(map(bool, r)) for r in sent]
    first, whole = sent
    assert [i for i, b in enumerate(first) if b] == [3] and first[3] == expected[3]
    assert whole == expected and w.recs == expected and w.shown_image == 2 and not w.busy and w.error == ""
    sent.clear()
    w.image_index = 1  # from a cell: inline, one message
    assert len(sent) == 1 and sent[0] == expected_recs(probe, photos[:4], 1)


def _slow_after_preview(w, after=None):
    """The explorer's job pauses after its first part is handed over (``after`` runs then, on the worker): the
    kernel reads the next messages, or a cell runs, while the rest is encoded."""
    original = w._reconstruct
    previewed = threading.Event()

    def reconstruct(index, rule, job):
        real_preview = job.preview

        def preview(part):
            real_preview(part)
            previewed.set()
            time.sleep(0.3)
            if after is not None:
                after(index)

        job.preview = preview
        return original(index, rule, job)

    w._reconstruct = reconstruct
    return previewed


def test_a_stop_after_the_first_part_ends_the_work_and_the_image_is_computed_again_when_picked(probe, photos):
    """The layer on screen is shown before the others are computed; a Stop then ends the work between layers (it
    may be seconds on a CPU), the part shown stays and says so, and going back to that image computes it whole. A
    newer image cancels the rest the same way, and going back to the half-shown image computes it."""
    w = cv.DeconvExplorer(probe, photos[:4])
    previewed = _slow_after_preview(w)

    async def scenario():
        w.set_state({"image_index": 1})
        await asyncio.to_thread(previewed.wait, 30)
        await asyncio.sleep(0.05)  # the first part is applied on the loop
        assert w.shown_image == 1 and sum(map(bool, w.recs)) == 1
        w._on_custom_msg(w, {"event": "stop"}, [])  # a Stop while the other layers are computed
        await settle(w)
        assert sum(map(bool, w.recs)) == 1 and "the layers not computed yet stay empty" in w.notice
        w.set_state({"image_index": 0})
        await settle(w)
        w.set_state({"image_index": 1})
        await settle(w)
        assert w.recs == expected_recs(probe, photos[:4], 1)
        previewed.clear()
        w.set_state({"image_index": 2})
        await asyncio.to_thread(previewed.wait, 30)
        await asyncio.sleep(0.05)
        w.set_state({"image_index": 3})  # a newer image, then straight back to image 2
        w.set_state({"image_index": 2})
        await settle(w)

    asyncio.run(scenario())
    assert w.shown_image == w.image_index == 2 and w.recs == expected_recs(probe, photos[:4], 2) and w.error == ""


def pick_with_spy(w, probe, spying, index: int) -> list[list[int]]:
    """Pick image ``index`` from the browser while ``spying`` stands in for the probe's ``reconstruct``; returns each
    ``recs`` the browser was sent, as the indices of the layers it held."""
    sent: list[list[int]] = []
    w.observe(lambda c: sent.append([i for i, b in enumerate(c["new"]) if b]), "recs")
    w._probe = type("Spy", (), {"__getattr__": lambda self, a: getattr(probe, a), "reconstruct": staticmethod(spying)})()

    async def scenario():
        w.set_state({"image_index": index})
        await settle(w)

    try:
        asyncio.run(scenario())
    finally:
        w._probe = probe
    return sent


def test_the_layer_on_screen_is_computed_first_and_a_slider_move_is_computed_next(probe, photos):
    """The first part goes out when one layer's backward pass is done, not all; moving the slider onto a layer not
    yet there makes it the next one computed, sent on its own before the whole strip."""
    w = cv.DeconvExplorer(probe, photos[:4])
    w.layer = w.layer_names[3]
    done: list[str] = []
    reconstruct = probe.reconstruct

    def spying(*args, **kwargs):
        inner = kwargs.get("on_layer")
        if inner is None:  # the layer on screen, alone
            result = reconstruct(*args, **kwargs)
            done.extend(result)
            w.layer = w.layer_names[7]  # the slider moves on while the first part is sent
            return result

        def on_layer(name, rec):
            done.append(name)
            inner(name, rec)

        return reconstruct(*args, **{**kwargs, "on_layer": on_layer})

    sent = pick_with_spy(w, probe, spying, 2)
    assert done[:2] == [w.layer_names[3], w.layer_names[7]] and sorted(done) == sorted(w.layer_names)
    assert sent[0] == [3] and sent[1] == [3, 7] and sent[-1] == list(range(len(w.layer_names)))
    assert w.recs == expected_recs(probe, photos[:4], 2) and w.error == ""


def test_a_slider_move_onto_a_layer_computed_but_not_sent_sends_it_with_the_next_layer(probe, photos):
    """Layers computed while the slider was elsewhere are not sent one by one; moving onto one sends it as soon as
    the next layer is done, not only with the whole strip."""
    w = cv.DeconvExplorer(probe, photos[:4])
    w.layer = w.layer_names[0]
    reconstruct = probe.reconstruct
    heard: list[str] = []

    def spying(*args, **kwargs):
        inner = kwargs.get("on_layer")
        if inner is None:
            return reconstruct(*args, **kwargs)

        def on_layer(name, rec):
            heard.append(name)
            if len(heard) == 3:  # layers 1 and 2 are done (not sent): the slider moves back onto layer 1
                w.layer = w.layer_names[1]
            inner(name, rec)

        return reconstruct(*args, **{**kwargs, "on_layer": on_layer})

    sent = pick_with_spy(w, probe, spying, 2)
    assert heard[:3] == w.layer_names[1:4] and sent[0] == [0] and sent[1] == [0, 1]
    assert w.recs == expected_recs(probe, photos[:4], 2)


def test_a_cells_result_is_not_overwritten_by_the_rest_of_an_older_first_part(probe, photos):
    """A cell that picks image 2 while the browser's image 1 is being completed: image 2 stays on screen."""
    w = cv.DeconvExplorer(probe, photos[:4])
    previewed = _slow_after_preview(w)

    async def scenario():
        w.set_state({"image_index": 1})
        await asyncio.to_thread(previewed.wait, 30)
        await asyncio.sleep(0.05)  # image 1's first part is on screen
        assert w.shown_image == 1
        w.image_index = 2  # a cell: runs at once, in the cell
        assert w.shown_image == 2
        await settle(w)

    asyncio.run(scenario())
    assert w.shown_image == w.image_index == 2 and w.recs == expected_recs(probe, photos[:4], 2) and not w.busy


def test_a_first_part_whose_rest_failed_is_computed_again(probe, photos):
    """The rest of image 1 fails after its first part was shown and image 2 was asked: going back to image 1
    computes it (it is not taken as the image on screen), and the widget can still be saved afterwards."""
    w = cv.DeconvExplorer(probe, photos[:4])

    def fail(index):
        if index == 1 and not failed:
            failed.append(index)
            raise RuntimeError("encoding failed")

    failed: list[int] = []
    previewed = _slow_after_preview(w, fail)

    async def scenario():
        w.set_state({"image_index": 1})
        await asyncio.to_thread(previewed.wait, 30)
        await asyncio.sleep(0.05)
        with pytest.raises(cv.CnnvizError, match="still arriving"):
            w.to_figure()  # a save while only the first part is there says why
        w.set_state({"image_index": 2})  # image 1's rest then fails: dropped, a newer request is on its way
        await asyncio.to_thread(lambda: time.sleep(0.4))
        w.set_state({"image_index": 1})  # back to image 1 before image 2 is shown
        await settle(w)

    asyncio.run(scenario())
    assert failed == [1]
    assert w.shown_image == w.image_index == 1 and w.recs == expected_recs(probe, photos[:4], 1) and w.error == ""
    assert w.to_figure() is not None


@pytest.mark.parametrize("pick", ["class", "unit"])
def test_a_pick_made_while_the_rest_of_the_strip_arrives_stays(probe, photos, pick):
    """A class (or a unit) picked in a cell once the browser's photo is on screen, while its other layers are still
    computed on the worker: the rest of the same strip keeps the pick, its picture and its class map (it cleared
    them). Another photo then clears them."""
    w = cv.DeconvExplorer(probe, photos[:4])
    top1 = probe.classify(probe.model_input(cv.load_images(photos[:4]).raw(1)), k=1)[0][0][0]
    c = 1 if top1 != 1 else 2  # not the top-1: its map is told apart from the one the whole strip brings
    picked = threading.Event()

    def hold_first_part(index):  # the rest of the strip waits on the worker until the cell's pick is shown
        if not picked.is_set():
            assert picked.wait(30)

    previewed = _slow_after_preview(w, hold_first_part)

    async def scenario():
        w.set_state({"image_index": 1})
        await asyncio.to_thread(previewed.wait, 30)
        await asyncio.sleep(0.05)  # the first part is on screen
        assert w.shown_image == 1 and sum(map(bool, w.recs)) < len(w.recs)
        if pick == "class":
            w.show_class(c)  # a cell: inline
        else:
            w.show_unit(w.layer, (0, 2, 3))
        assert w.selected and w.unit_png
        picked.set()
        await settle(w)

    asyncio.run(scenario())
    assert w.recs == expected_recs(probe, photos[:4], 1) and w.shown_image == 1 and w.error == "" and not w.busy
    assert w.selected and w.unit_png and w._unit_picture is not None, "the rest of its own strip cleared the pick"
    if pick == "class":
        assert w.selected["channel"] == c and w.class_map_for["index"] == c != w.predictions[0][2]  # not the top-1's
    else:
        assert w.selected["unit"] == [0, 2, 3]
    w.image_index = 2  # another photo clears them (the map shown is its top-1's: a class picked turned maps on)
    assert w.selected == {} and w.unit_png == b"" and w._unit_picture is None
    assert w.class_map_for.get("index") == (w.predictions[0][2] if pick == "class" else None)


def test_a_pick_kept_while_the_strip_arrives_is_drawn_again_in_the_strips_display(probe, photos, monkeypatch):
    """The first part's display is chosen from the layer on screen alone, the whole strip's from every layer: where
    they differ, a unit picked meanwhile is drawn again in the whole strip's display (the unit view beside the strip,
    and its saved figure, are in one display)."""
    from cnnviz_widgets.widgets import deconv_explorer

    monkeypatch.setattr(deconv_explorer, "choose_display", lambda recs: "contrast" if len(recs[0]) > 1 else "signed")
    w = cv.DeconvExplorer(probe, photos[:4])
    picked = threading.Event()
    previewed = _slow_after_preview(w, lambda index: picked.is_set() or picked.wait(30))
    out = probe.output_layer.name  # a class: its reconstruction is never all zero, as a random net's unit can be

    async def scenario():
        w.set_state({"image_index": 1})
        await asyncio.to_thread(previewed.wait, 30)
        await asyncio.sleep(0.05)
        assert w._mode == "signed"  # the first part: one layer
        w.show_class(3)  # a cell, drawn in the first part's display
        first = w._unit_picture.copy()
        picked.set()
        await settle(w)
        return first

    first = asyncio.run(scenario())
    assert w._mode == "contrast" and w.selected["channel"] == 3 and not w.busy and w.error == ""
    again = w._one(w._x, w.rule, "contrast", out, channel=3)
    assert np.array_equal(w._unit_picture, again) and not np.array_equal(first, again)
    assert w.unit_png == picture_bytes([again])[0]


def test_a_class_map_unticked_while_the_strip_arrives_stays_off(probe, photos):
    """The worker drew the new photo's top-1 map (the box was ticked); the box is unticked before that result is
    shown: the map is not shown, and the box is not ticked again by it (it was)."""
    w = cv.DeconvExplorer(probe, photos[:4])
    w.show_map = True
    computed, unticked = threading.Event(), threading.Event()
    real_map_of = w._map_of

    def map_of(x, c):  # on the worker: the map is drawn, then the user unticks the box before it is shown
        r = real_map_of(x, c)
        computed.set()
        assert unticked.wait(30)
        return r

    w._map_of = map_of

    async def scenario():
        w.set_state({"image_index": 1})
        await asyncio.to_thread(computed.wait, 30)
        w.set_state({"show_map": False})
        unticked.set()
        await settle(w)

    asyncio.run(scenario())
    assert w.shown_image == 1 and not w.busy and w.error == ""
    assert w.show_map is False and w.class_map_for == {} and w.class_map_png == b""
