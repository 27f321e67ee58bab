"""What the browser tests measure in a page: text contrast from the rendered colours, and a bare page that
shows a widget from its synced state with no Jupyter around it (no --jp-* variables), as a plain HTML page,
VS Code's webview or Colab's output frame would. Each widget in a state that shows its texts (``widgets``), a
relay that hands what such a page sends to the widget's Python side (``relay``), and axe-core's scan (``axe``)."""
from __future__ import annotations

import base64
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

import cnnviz_widgets as cv

# Debian's Chromium, driven by Playwright (never `playwright install`); every browser test runs it the same way
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                    reason="Debian's chromium is not installed (apt-get install chromium)")


def launch(pw: Any):
    """Chromium from a sync_playwright() context, as every browser test starts it."""
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module (import it into the module: ``from pages import browser``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch(pw)
        yield b
        b.close()

# Every visible text of ``root`` whose colour, over the background it is drawn on (the first opaque one up
# its ancestors, with the translucent ones between blended in), has a WCAG contrast ratio under ``min``;
# the opacity of ancestors dims the text too. HTML text by its ``color``, SVG text by its ``fill``.
LOW_CONTRAST = """([root, min]) => {
    const rgba = c => { const m = /rgba?\\(([^)]*)\\)/.exec(c || ''); if (!m) return null;
        const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
    const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
    const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
    const canvas = rgba(getComputedStyle(document.documentElement).backgroundColor);
    const background = el => { const layers = [];
        for (let e = el; e; e = e.parentElement) { const c = rgba(getComputedStyle(e).backgroundColor);
            if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
        let bg = canvas && canvas[3] >= 1 ? canvas : [255, 255, 255, 1];
        for (const c of layers.reverse()) bg = over(c, bg);
        return bg; };
    const opacity = el => { let o = 1; for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity); return o; };
    const owns = e => [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const shown = e => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden' && !e.closest('[display=none]');
    const all = [root, ...root.querySelectorAll('*')].filter(e => owns(e) && shown(e) && !e.disabled
        && !['OPTION', 'STYLE', 'SCRIPT'].includes(e.tagName));
    const out = [];
    for (const e of all) {
        const bg = background(e);
        const fg0 = rgba(e instanceof SVGElement ? getComputedStyle(e).fill : getComputedStyle(e).color);
        if (!fg0) continue;
        const fg = over([fg0[0], fg0[1], fg0[2], fg0[3] * opacity(e)], bg);
        const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
        const ratio = (a + 0.05) / (b + 0.05);
        if (ratio < min) out.push(`${JSON.stringify(e.textContent.trim().slice(0, 40))} (${e.tagName.toLowerCase()}.${e.getAttribute('class') || ''}): `
            + `${ratio.toFixed(2)}:1, rgb(${fg.slice(0, 3).map(Math.round)}) on rgb(${bg.slice(0, 3).map(Math.round)})`);
    }
    return {n: all.length, low: out};
}"""


def bare_page(widget: Any, head: str = "", offline: bool = False) -> str:
    """An HTML page that renders ``widget`` from its synced state (binary buffers as DataViews) with a stand-in
    for anywidget's model, its _css in a <style> as anywidget puts it, and nothing of Jupyter. ``head``: more
    for the page's head (e.g. a host's CSS variables). Messages the widget sends collect in ``window.sent``.
    What it saves collects in ``window.saved``. ``offline``: the element carries ipywidgets' jupyter-widgets-disconnected class (a saved page, no kernel)."""
    from ipywidgets.widgets.widget import _remove_buffers

    state = widget.get_state()
    module, css = state.pop("_esm"), state.pop("_css")
    stripped, paths, buffers = _remove_buffers(state)
    data = {"state": stripped, "paths": paths, "buffers": [base64.b64encode(bytes(b)).decode() for b in buffers]}
    return f"""<!doctype html><html><head><meta charset="utf-8">{head}<style>{css}</style></head>
<body><div id="widget"{' class="jupyter-widgets-disconnected"' if offline else ''}></div><script type="module">
const data = {json.dumps(data)};
const view = b64 => {{ const s = atob(b64), a = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i); return new DataView(a.buffer); }};
data.paths.forEach((p, i) => {{ let o = data.state; for (const k of p.slice(0, -1)) o = o[k]; o[p[p.length - 1]] = view(data.buffers[i]); }});
const handlers = {{}};
window.sent = [];
window.saved = [];  // what the widget saved (model.set, then save_changes): {{name: value}} each time
let changed = {{}};
const model = {{ get: k => data.state[k], set: (k, v) => {{ data.state[k] = v; changed[k] = v; (handlers[`change:${{k}}`] || []).forEach(f => f()); }},
  save_changes() {{ window.saved.push(changed); changed = {{}}; }}, send(m) {{ window.sent.push(m); }},
  on(e, f) {{ (handlers[e] = handlers[e] || []).push(f); }}, off() {{}} }};
const url = URL.createObjectURL(new Blob([{json.dumps(module)}], {{ type: "text/javascript" }}));
const mod = await import(url);
mod.default.render({{ model, el: document.getElementById("widget") }});
window.model = model;  // a test changes the state as the kernel would: model.set(name, value), view(base64)
window.view = view;
window.rendered = true;
</script></body></html>"""


def write_bare_page(folder: Path, name: str, widget: Any, head: str = "", offline: bool = False) -> str:
    """:func:`bare_page` written to ``folder``/``name``.html; its file:// URL."""
    path = folder / f"{name}.html"
    path.write_text(bare_page(widget, head, offline), encoding="utf-8")
    return path.as_uri()


@pytest.fixture(scope="module")
def widgets(alex_probe, photos, tmp_path_factory):
    """Each widget in a state that shows its texts: a unit and predictions, a selected filter, a selected
    patch, two networks, a table with its current row, a message, and a training timeline of a tiny network's
    four checkpoints with their metrics."""
    explorer = cv.DeconvExplorer(alex_probe, photos[:2])
    explorer.show_unit("c3", (0, 5, 5))
    grid = cv.FilterGrid(alex_probe, photos[:3], layer="c2", k=4, page_size=8)
    grid.selected = {"layer": "c2", "filter": int(grid.sheet_filters[0])}
    emap = cv.EmbeddingMap(alex_probe, photos[:3], layer="c3", n_patches=80, grid=6, cell=16)
    emap.select(1, 1)
    compare = cv.CompareModels(alex_probe, alex_probe, photos[:2])
    table = cv.ReceptiveFieldTable(alex_probe)
    table.layer = "c3"
    failed = cv.DeconvExplorer(alex_probe, photos[:2])
    failed.error = "A message: the unit could not be reconstructed."
    for w in (explorer, grid, emap, compare, table):
        assert not w.error, w.error
    import torch
    from conftest import TinyNet

    torch.manual_seed(0)
    model = TinyNet().eval()
    recorder = cv.CheckpointRecorder(model, folder=tmp_path_factory.mktemp("checkpoints"))
    for step in range(4):
        recorder.snapshot(step * 50, loss=2.0 - step * 0.5, accuracy=0.1 + step * 0.25)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.2 * torch.randn_like(p))
    timeline = cv.TrainingTimeline(recorder.checkpoints(device="cpu", input_size=32), photos[:1])
    assert not timeline.error, timeline.error
    return {"explorer": explorer, "filter_grid": grid, "embedding_map": emap, "compare": compare,
            "rf_table": table, "message": failed, "timeline": timeline}


def open_widget(browser, tmp_path, widget, name: str, scheme: str, head: str = "", offline: bool = False):
    """A new page showing ``widget`` on a bare page (:func:`bare_page`) in the ``scheme`` ("light", "dark") the
    page prefers, 1280 px wide, once rendered; a page error fails the test."""
    page = browser.new_page(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(write_bare_page(tmp_path, f"{name}_{scheme}", widget, head, offline))
    page.wait_for_function("() => window.rendered === true", timeout=30_000)
    page.wait_for_timeout(500)  # pictures decode
    assert not errors, errors
    return page


def relay(page: Any, widget: Any) -> tuple[list[dict], list[dict]]:
    """Hand what a bare page's widget sent and saved since the last call to ``widget``'s Python side, as the
    comm would: each message to its message handler, each saved state to ``set_state``, then waits for the work
    they started. Playwright's sync API runs an event loop on this thread, so that work runs as in a kernel: on
    the background worker, its result applied on the loop (which turns while the page is waited on). Returns
    (messages, saved states). The Python side's answer is not sent back to the page."""
    sent, saved = page.evaluate("() => { const s = [window.sent, window.saved]; window.sent = []; window.saved = []; return s; }")
    for state in saved:
        widget.set_state(state)
    for message in sent:
        widget._on_custom_msg(widget, message, [])
    deadline = time.monotonic() + 120
    while widget._jobs and time.monotonic() < deadline:
        page.wait_for_timeout(20)
    assert not widget._jobs, f"{type(widget).__name__}: work from the page still running after 120 s"
    return sent, saved


# axe-core from npm (package.json's devDependencies): CI runs `npm ci` before the tests
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def axe(page: Any, selector: str) -> list[dict]:
    """axe-core's violations in the element ``selector`` names: [{id, impact, help, nodes: [html, ...]}]. A
    missing axe.min.js fails (it is not a reason to skip: the scan is the check)."""
    assert AXE.exists(), f"{AXE} is missing: run `npm ci` in the repository (axe-core is a devDependency)"
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async (sel) => { const r = await axe.run(document.querySelector(sel), { resultTypes: ['violations'] });
        return r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                                        nodes: v.nodes.map(n => n.html.slice(0, 160) + ' ' + n.failureSummary) })); }""", selector)
    return found


def tab_to(page: Any, selector: str, presses: int = 80) -> None:
    """Press Tab (the keyboard alone) until the focused element matches ``selector``; fail if it never does."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{presses} presses of Tab never reached {selector}")


def drag_across(target: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag the mouse over ``target`` (a locator) from ``start`` to ``end``, fractions of its width and height: scrolled
    into view first (the page's own mouse at a bounding box read before a scroll pressed outside the picture, and a
    zoom on a loaded machine never came). The widgets read a drag's press and release, so one move is enough."""
    box = target.bounding_box()
    assert box is not None, "the drag's target is not on the page"
    w, h = box["width"], box["height"]
    target.drag_to(target, source_position={"x": w * start[0], "y": h * start[1]},
                   target_position={"x": w * end[0], "y": h * end[1]})
