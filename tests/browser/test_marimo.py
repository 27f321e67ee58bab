"""The widgets in marimo: notebooks/marimo_tour.py served headless (``marimo run`` and ``marimo edit``), opened in
Debian's Chromium through Playwright.

marimo renders an anywidget widget inside a shadow root, so the styles must come through ``_css`` (Playwright's CSS
locators pierce open shadow roots; ``document.querySelector`` does not). Clicks, filter requests, zoom and Back
travel as anywidget custom messages (``model.send``), which marimo must deliver to the widget's Python side. The
SparsityChart (bqplot, which marimo cannot show) appears through its ``_display_`` hook as inline SVG.
Screenshots: test-artifacts/marimo_*.png.
"""
from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest
from servers import marimo_server
from pages import browser, drag_across, needs_chromium  # noqa: F401 - browser is a fixture

pytest.importorskip("marimo")
from playwright.sync_api import expect  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
TOUR = REPO / "notebooks" / "marimo_tour.py"

pytestmark = needs_chromium

EXPLORER = "[aria-label='Deconvnet explorer'][data-ready='1']"
EMAP = "[aria-label='Representation space'][data-ready='1']"
FGRID = "[aria-label='Filters by their top patches'][data-ready='1']"
COMPARE = "[aria-label='Compare two networks'][data-ready='1']"
RF_TABLE = ".cnnviz-rf[data-ready='1']"
SPARSITY = ".cnnviz-sparsity svg"

# each picture a widget shows (blob images, canvases) decoded in the page: its size and the spread of its grey levels
PICTURES = """root => [...root.querySelectorAll('img, canvas')].filter(e => e.tagName === 'CANVAS' || (e.getAttribute('src') && e.complete))
    .map(e => {
        const w = e.naturalWidth ?? e.width, h = e.naturalHeight ?? e.height;
        if (!w || !h) return {w: 0, std: 0};
        const c = document.createElement('canvas'); c.width = 32; c.height = 32;
        const g = c.getContext('2d'); g.drawImage(e, 0, 0, 32, 32);
        const d = g.getImageData(0, 0, 32, 32).data; let s = 0, s2 = 0, n = 0;
        for (let i = 0; i < d.length; i += 4) { if (d[i + 3] === 0) continue; s += d[i]; s2 += d[i] * d[i]; n++; }
        return {w, std: n ? Math.sqrt(s2 / n - (s / n) ** 2) : 0};
    })"""


@pytest.fixture(scope="module", params=["run", "edit"])
def marimo_app(request, tmp_path_factory):
    """``marimo run|edit notebooks/marimo_tour.py --headless``: the app's URL (the kernel imports this checkout)."""
    mode = request.param
    home = tmp_path_factory.mktemp(f"marimo-{mode}")
    # a copy of the tour, so marimo's session cache (__marimo__/ beside the notebook) lands in the temporary folder
    app = home / TOUR.name
    shutil.copy(TOUR, app)
    with marimo_server(app, mode) as url:
        yield mode, url, home / "server.log"



def drawn(widget, least: int, name: str) -> list[dict]:
    """The widget's pictures: at least ``least`` of them, each decoded, and not one of them flat."""
    stats = widget.evaluate(PICTURES)
    assert len(stats) >= least and all(s["w"] > 0 for s in stats), (name, stats)
    assert max(s["std"] for s in stats) > 5, (name, stats)
    return stats


def pixel_spread(png: bytes) -> float:
    import numpy as np
    from PIL import Image

    return float(np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float).std())


def test_every_widget_draws_and_answers_in_marimo(marimo_app, browser):
    mode, url, server_log = marimo_app
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.goto(url)
    if mode == "edit":  # marimo edit opens a notebook with its cells not yet run: run them, as a person would
        page.get_by_test_id("cell-editor").first.wait_for(timeout=60_000)
        page.locator("[data-testid=run-button]:not([data-testid=cell-tray] *)").click()  # "run all stale cells"

    explorer = page.locator(EXPLORER).first
    explorer.wait_for(timeout=300_000)
    emap, fgrid = page.locator(EMAP).first, page.locator(FGRID).first
    compare, table = page.locator(COMPARE).first, page.locator(RF_TABLE).first
    for widget in (emap, fgrid, compare, table):
        widget.wait_for(timeout=300_000)
    chart = page.locator(SPARSITY).first
    chart.wait_for(timeout=300_000)

    # marimo puts each anywidget in a shadow root; the styles reach it through _css
    assert explorer.evaluate("r => r.getRootNode() instanceof ShadowRoot")
    assert explorer.locator(".cnnviz-thumb img").first.evaluate("e => getComputedStyle(e).width") == "72px"
    assert explorer.evaluate("r => getComputedStyle(r).paddingTop") == "6px"
    assert table.evaluate("r => getComputedStyle(r.querySelector('table')).borderCollapse") == "collapse"

    # every widget draws, and its pictures are not blank
    page.wait_for_timeout(500)
    drawn(explorer, 10, "explorer")
    drawn(emap, 1, "embedding map")
    drawn(fgrid, 1, "filter grid")
    drawn(compare, 1 + 2 * 4, "compare")
    rows = table.locator("tr").count()
    assert rows >= 9 and "c5" in table.inner_text(), table.inner_text()  # the paper's AlexNet: 8 conv/pool layers + header

    # the layer slider and the arrow keys change the big picture, in the browser alone
    big = explorer.locator(".cnnviz-big")
    first = explorer.evaluate("r => r.dataset.shownLayer")
    before = big.get_attribute("src")
    explorer.focus()
    page.keyboard.press("ArrowRight")
    expect(explorer).not_to_have_attribute("data-shown-layer", first)
    assert big.get_attribute("src") != before
    page.keyboard.press("ArrowLeft")
    expect(explorer).to_have_attribute("data-shown-layer", first)
    explorer.get_by_label("Layer", exact=True).fill("0")
    expect(explorer).to_have_attribute("data-shown-layer", "c1")
    explorer.get_by_label("Layer", exact=True).fill("4")
    expect(explorer).to_have_attribute("data-shown-layer", "c3")

    # a click on the big picture is a custom message: the kernel reconstructs the unit under the pointer
    big.click(position={"x": 120, "y": 120})
    expect(explorer).to_have_attribute("data-unit", re.compile(r"^\d+,\d+,\d+$"), timeout=120_000)
    drawn(explorer, 11, "explorer with a unit")
    explorer.screenshot(path=str(ARTIFACTS / f"marimo_{mode}_explorer.png"))
    # the filter box (a custom message too, sent on Enter, which marimo's own shortcuts must leave alone)
    box = explorer.get_by_label("Reconstruct one filter of this layer")
    box.fill("5")
    box.press("Enter")
    expect(explorer).to_have_attribute("data-channel", "5", timeout=120_000)
    # the rule selector (a trait the browser sets): the pictures are computed again with guided backprop
    explorer.locator("select.cnnviz-rule").select_option("guided")
    expect(explorer).to_have_attribute("data-rule", "guided", timeout=180_000)
    expect(explorer).to_have_attribute("data-stale", "", timeout=180_000)
    drawn(explorer, 11, "explorer, guided")

    # a click on the embedding map (a custom message) selects a unit; the linked filter grid shows its filters
    filters_before = fgrid.get_attribute("data-filters")
    emap.locator(".cnnviz-sheet img").click(position={"x": 100, "y": 60})
    expect(emap).to_have_attribute("data-selected", re.compile(r"^\d+$"), timeout=120_000)
    expect(fgrid).not_to_have_attribute("data-filters", filters_before or "", timeout=120_000)
    filters = fgrid.get_attribute("data-filters").split(",")
    assert len(filters) == 6, filters
    assert fgrid.locator(".cnnviz-tile-no").all_inner_texts() == filters
    assert "strongest filters " + ", ".join(filters) in emap.inner_text()
    drawn(fgrid, 1, "filter grid after the click")
    emap.screenshot(path=str(ARTIFACTS / f"marimo_{mode}_embedding_map.png"))
    # a drag on the map zooms (the kernel lays the region out again), Back returns: custom messages both
    drag_across(emap.locator(".cnnviz-sheet img"), (0.1, 0.1), (0.5, 0.6))
    expect(emap).not_to_have_attribute("data-region", "0.000,0.000,1.000,1.000", timeout=120_000)
    region = [float(v) for v in emap.get_attribute("data-region").split(",")]
    assert region[0] == pytest.approx(0.1, abs=0.02) and region[3] == pytest.approx(0.6, abs=0.02), region
    emap.get_by_role("button", name="Zoom out to the previous view").click()
    expect(emap).to_have_attribute("data-region", "0.000,0.000,1.000,1.000", timeout=120_000)
    fgrid.screenshot(path=str(ARTIFACTS / f"marimo_{mode}_filter_grid.png"))
    compare.screenshot(path=str(ARTIFACTS / f"marimo_{mode}_compare.png"))
    table.screenshot(path=str(ARTIFACTS / f"marimo_{mode}_rf_table.png"))

    # the sparsity chart: marimo shows its _display_, the same chart as SVG with its text as text
    words = [w.strip() for w in chart.locator("text").all_text_contents()]
    for want in ("Sparsity per layer (fraction of zero activations)", "paper AlexNet", "torchvision AlexNet",
                 "c1", "p1", "c5", "p5", "sparsity"):
        assert want in words, (want, words)
    box = chart.bounding_box()
    assert box["width"] > 500 and box["height"] > 300, box
    shot = chart.screenshot(path=str(ARTIFACTS / f"marimo_{mode}_sparsity.png"))
    assert pixel_spread(shot) > 10

    # no widget is wider than the page, and no widget reports an error
    for widget in (explorer, emap, fgrid, compare):
        assert widget.bounding_box()["x"] + widget.bounding_box()["width"] <= 1400, widget
        assert widget.get_attribute("data-error") in (None, ""), widget.locator(".cnnviz-error").inner_text()
    bad = [e for e in errors if "cnnviz" in e.lower() or "anywidget" in e.lower() or "pageerror" in e]
    assert not bad, bad
    log = server_log.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    page.close()
