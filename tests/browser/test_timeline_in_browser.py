"""TrainingTimeline in a real browser: a small marimo app here, and lesson 03 (which trains its network, about a
minute) in JupyterLab with every notebook (test_notebooks_in_lab.py, through :func:`exercise`); in both, the step slider, play and the two-step comparison change the pictures and the marked
step, with no error. Screenshots of the lesson's timeline at its first and last step: test-artifacts/timeline_*.png.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from pages import browser, needs_chromium  # noqa: F401 - browser is a fixture
from playwright.sync_api import expect
from servers import collect_errors, marimo_server

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
LESSON = REPO / "notebooks" / "classroom" / "03_how_a_network_learns.ipynb"
TIMELINE = "[aria-label='Training timeline'][data-ready='1']"

pytestmark = needs_chromium

# the strip's and the comparison's pictures, decoded in the page: a fingerprint of each (mean and spread of grey)
PICTURES = """(root, sel) => [...root.querySelectorAll(sel)].filter(i => i.getAttribute('src') && i.complete && i.naturalWidth)
    .map(img => {
        const c = document.createElement('canvas'); c.width = 16; c.height = 16;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0, 16, 16);
        const d = g.getImageData(0, 0, 16, 16).data; let s = 0, s2 = 0;
        for (let i = 0; i < d.length; i += 4) { s += d[i]; s2 += d[i] * d[i]; }
        const n = d.length / 4; return [Math.round(s / n), Math.round(Math.sqrt(s2 / n - (s / n) ** 2))];
    })"""


def pictures(widget, selector: str) -> list:
    return widget.evaluate(PICTURES, selector)


def marked(widget) -> list[str]:
    """The step each metric chart marks."""
    return widget.locator("svg.cnnviz-metric").evaluate_all("cs => cs.map(c => c.dataset.marked)")


# pairs of texts of a metric chart whose boxes overlap (a value label over the metric's name, ticks over each other)
OVERLAPS = """c => { const r = [...c.querySelectorAll('text')].map(t => [t.textContent, t.getBoundingClientRect()]);
    const out = []; for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++) { const [a, b] = [r[i][1], r[j][1]];
        if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) out.push([r[i][0], r[j][0]]); }
    return out; }"""


def charts_readable(widget) -> None:
    for chart in widget.locator("svg.cnnviz-metric").all():
        assert chart.evaluate(OVERLAPS) == []


def exercise(page, widget, steps: list[int], shots: str | None = None) -> None:
    """Slider, play and the comparison, as a user: each changes the pictures and the marked step."""
    last = len(steps) - 1
    expect(widget).to_have_attribute("data-shown-step", str(last), timeout=120_000)
    assert marked(widget) and set(marked(widget)) == {str(steps[last])}
    charts_readable(widget)
    strip = pictures(widget, ".cnnviz-strip img")
    assert len(strip) >= 5 and max(s[1] for s in strip) > 3, strip  # drawn, not blank
    filters_at_last = pictures(widget, "img.cnnviz-filters")
    if shots:
        widget.screenshot(path=str(ARTIFACTS / f"{shots}_last_step.png"))

    # the slider: the first step (the kernel swaps the weights and sends that step's pictures)
    widget.get_by_label("Step", exact=True).fill("0")
    expect(widget).to_have_attribute("data-shown-step", "0", timeout=120_000)
    assert set(marked(widget)) == {str(steps[0])}
    charts_readable(widget)
    assert widget.locator(".cnnviz-step-label").inner_text().startswith(f"step {steps[0]} (1 of {len(steps)})")
    assert pictures(widget, ".cnnviz-strip img") != strip
    assert pictures(widget, "img.cnnviz-filters") != filters_at_last  # the first layer's filters changed
    if shots:
        page.wait_for_timeout(300)
        widget.screenshot(path=str(ARTIFACTS / f"{shots}_first_step.png"))

    # play: the steps advance by themselves, each shown before the next, the mark following them
    play = widget.get_by_role("button", name="Play")
    play.click()
    expect(widget).to_have_attribute("data-shown-step", "2", timeout=120_000)
    widget.get_by_role("button", name="Pause").click()
    shown = widget.get_attribute("data-shown-step")
    page.wait_for_timeout(1500)
    assert widget.get_attribute("data-playing") == ""
    now = int(widget.get_attribute("data-shown-step"))
    assert now >= 2 and set(marked(widget)) == {str(steps[now])}
    assert now <= int(shown) + 1  # paused: it stops (a step asked for before the pause may still arrive)

    # two steps side by side, in CompareModels' layout
    widget.get_by_label("Compare two steps").check()
    expect(widget).to_have_attribute("data-compared", f"{steps[0]},{steps[last]}", timeout=120_000)
    rows = widget.locator(".cnnviz-compare-row")
    assert rows.count() == 2 and widget.locator(".cnnviz-compare-name").all_inner_texts() == [
        f"step {steps[0]}", f"step {steps[last]}"]
    before = pictures(widget, ".cnnviz-compare-row img")
    widget.get_by_label("First step to compare").select_option(str(last // 2))
    expect(widget).to_have_attribute("data-compared", f"{steps[last // 2]},{steps[last]}", timeout=120_000)
    assert pictures(widget, ".cnnviz-compare-row img") != before
    if shots:
        widget.screenshot(path=str(ARTIFACTS / f"{shots}_compare.png"))
    widget.get_by_label("Compare two steps").uncheck()
    expect(widget.locator(".cnnviz-strip")).to_be_visible()
    assert widget.get_attribute("data-error") == ""


MARIMO_APP = '''import marimo

app = marimo.App(width="full")


@app.cell
def _():
    import marimo as mo
    import torch
    from torch import nn

    import cnnviz_widgets as cv

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 8 * 8, 10))
    recorder = cv.CheckpointRecorder(model)
    gen = torch.Generator().manual_seed(1)
    for step in range(6):
        recorder.snapshot(step * 10, loss=2.0 / (step + 1), accuracy=0.1 + 0.15 * step)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.3 * torch.randn(p.shape, generator=gen))
    timeline = mo.ui.anywidget(cv.TrainingTimeline(recorder.checkpoints(input_size=32), cv.sample_images()[:2]))
    timeline
    return (timeline,)


if __name__ == "__main__":
    app.run()
'''


def test_the_timeline_in_marimo(tmp_path, browser):
    pytest.importorskip("marimo")
    app = tmp_path / "timeline_app.py"
    app.write_text(MARIMO_APP)
    with marimo_server(app) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = collect_errors(page)
        page.goto(url)
        widget = page.locator(TIMELINE).first
        widget.wait_for(timeout=180_000)
        assert widget.evaluate("r => r.getRootNode() instanceof ShadowRoot")  # marimo's shadow root: styles via _css
        assert widget.locator("img.cnnviz-filters").evaluate("e => getComputedStyle(e).imageRendering") == "pixelated"
        exercise(page, widget, [0, 10, 20, 30, 40, 50], shots="marimo_timeline")
        assert not [e for e in errors if "favicon" not in e], errors
        page.close()


def test_a_saved_page_shows_the_saved_step_and_says_what_needs_a_kernel(tmp_path, browser):
    """With no kernel (a page nbconvert made from a notebook saved with its widget state), the timeline shows the
    step it was saved at and says that another step needs a kernel; its controls are disabled."""
    import torch
    from conftest import TinyNet
    from pages import write_bare_page

    import cnnviz_widgets as cv

    torch.manual_seed(0)
    rec = cv.CheckpointRecorder(TinyNet().eval(), folder=tmp_path / "rec")
    for step in range(3):
        rec.snapshot(step, accuracy=0.3 * step)
    w = cv.TrainingTimeline(rec.checkpoints(input_size=32, device="cpu"), cv.sample_images()[:1])
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors = collect_errors(page)
    page.goto(write_bare_page(tmp_path, "saved", w, offline=True))
    widget = page.locator(TIMELINE).first
    widget.wait_for(timeout=30_000)
    assert widget.get_attribute("data-offline") == "1"
    assert "another step, image, rule or comparison needs a running kernel" in widget.locator(".cnnviz-offline").inner_text()
    for label in ("Step", "Image", "Play", "Compare two steps"):
        assert widget.get_by_label(label, exact=True).first.is_disabled(), label
    assert len(pictures(widget, ".cnnviz-strip img")) == len(w.layer_names)
    assert set(marked(widget)) == {"2"}
    assert not errors, errors
    page.close()
