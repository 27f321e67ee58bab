"""The explorer's first part of an image change, as the browser shows it: the photo and the layer on screen
arrive first and the other layers right after (widgets/deconv_explorer.py). Meanwhile the strip keeps its
layout: every thumbnail has its place and size, an empty tile where a picture has not arrived, and a slider
move there says the picture is on its way instead of showing the last image's."""
from __future__ import annotations

import base64
from pathlib import Path

from pages import browser, needs_chromium, write_bare_page  # noqa: F401 - browser is a fixture

import cnnviz_widgets as cv

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = needs_chromium


def boxes(page) -> dict:
    return page.evaluate("""() => { const r = document.querySelector('.cnnviz');
        const box = e => { const b = e.getBoundingClientRect(); return [Math.round(b.x), Math.round(b.y), Math.round(b.width), Math.round(b.height)]; };
        return {big: box(r.querySelector('.cnnviz-big')), thumbs: [...r.querySelectorAll('.cnnviz-thumb img')].map(box),
                empty: [...r.querySelectorAll('.cnnviz-thumb img')].map(i => i.classList.contains('cnnviz-empty')),
                bigEmpty: r.querySelector('.cnnviz-big').classList.contains('cnnviz-empty'),
                caption: r.querySelectorAll('.cnnviz-figure span')[1].textContent, decoded: r.dataset.decoded,
                arrived: r.dataset.arrived, layer: r.dataset.shownLayer}; }""")


def explorer_page(browser, tmp_path, name: str, w) -> tuple:
    """A new page showing explorer ``w`` on a bare page (its state as the kernel sent it), once drawn; with the list
    its page errors collect in until the test ends."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(write_bare_page(tmp_path, name, w))
    page.wait_for_function("() => window.rendered === true && document.querySelector('.cnnviz').dataset.ready === '1'",
                           timeout=30_000)
    return page, errors


def test_the_first_part_keeps_the_layout_and_says_what_is_arriving(browser, alex_probe, photos, tmp_path):
    w = cv.DeconvExplorer(alex_probe, photos[:2])
    whole = list(w.recs)
    current = w.layer_names.index(w.layer)
    w.recs = [b if i == current else b"" for i, b in enumerate(whole)]  # the first part, as the kernel sends it
    page, errors = explorer_page(browser, tmp_path, "first_part", w)
    try:
        first = boxes(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "explorer_first_part.png"), full_page=True)
        n = len(whole)
        assert first["arrived"] == "1" and first["decoded"] == ""  # not the whole strip yet
        assert first["empty"] == [i != current for i in range(n)] and not first["bigEmpty"]
        assert first["caption"] == f"layer {w.layer} · deconvnet (auto)"  # the rule that drew it, "auto" the default
        assert all(b[2:] == [76, 76] for b in first["thumbs"]), first["thumbs"]  # every tile in place: 72 px + border
        # the slider on a layer still on its way: an empty tile of the same size and a caption, not a stale picture
        page.locator(".cnnviz").focus()
        page.keyboard.press("ArrowRight")
        moved = boxes(page)
        assert moved["layer"] == w.layer_names[current + 1] and moved["bigEmpty"]
        assert moved["caption"] == f"layer {w.layer_names[current + 1]}: arriving… · deconvnet (auto)"
        assert moved["big"] == first["big"], (moved["big"], first["big"])
        # the other traits of the same message (captions, shown_image, busy) redraw the caption: it still says so
        page.evaluate("() => { for (const k of ['captions', 'shown_image', 'busy']) window.model.set(k, window.model.get(k)); }")
        assert boxes(page)["caption"] == f"layer {w.layer_names[current + 1]}: arriving… · deconvnet (auto)"
        # the rest arrives: every picture, decoded, the big view on the layer chosen meanwhile
        page.evaluate("b64s => window.model.set('recs', b64s.map(window.view))",
                      [base64.b64encode(b).decode() for b in whole])
        page.wait_for_function("() => document.querySelector('.cnnviz').dataset.decoded === '1'", timeout=30_000)
        done = boxes(page)
        assert done["arrived"] == str(n) and not any(done["empty"]) and not done["bigEmpty"]
        assert done["layer"] == w.layer_names[current + 1]  # the model's layer followed the key press
        assert done["caption"] == f"layer {w.layer_names[current + 1]} · deconvnet (auto)" and done["big"] == first["big"]
        assert done["thumbs"] == first["thumbs"]  # nothing moved when the pictures came
        natural = page.evaluate("() => [...document.querySelectorAll('.cnnviz-thumb img')].map(i => i.naturalWidth)")
        assert all(v == alex_probe.input_size for v in natural), natural
        assert not errors, errors
    finally:
        page.close()


def test_a_class_picked_before_the_top5_arrived_is_marked_in_it(browser, alex_probe, photos, tmp_path):
    """The unit view keeps a pick while the rest of its strip arrives (a cell's pick, or a class typed in the filter
    box on the output layer): when the top-5 comes, the picked class's bar is marked (it came unmarked)."""
    w = cv.DeconvExplorer(alex_probe, photos[:2])
    preds = [list(p) for p in w.predictions]
    picked = preds[1][2]
    w.show_class(picked)
    assert w.selected["channel"] == picked and "label" in w.selected
    w.predictions = []  # the first part: the top-5 not here yet
    page, errors = explorer_page(browser, tmp_path, "picked_class", w)
    try:
        assert page.locator("button.cnnviz-pred").count() == 0
        page.evaluate("p => window.model.set('predictions', p)", preds)
        assert page.locator("button.cnnviz-pred").count() == 5
        marked = page.evaluate("() => [...document.querySelectorAll('button.cnnviz-pred.active')].map(b => b.dataset.class)")
        assert marked == [str(picked)], marked
        assert not errors, errors
    finally:
        page.close()
