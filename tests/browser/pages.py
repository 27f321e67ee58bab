"""What the browser tests measure in a page: text contrast from the rendered colours, and a bare page that
shows a widget from its synced state with no Jupyter around it (no --jp-* variables), as a plain HTML page,
VS Code's webview or Colab's output frame would."""
from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

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
    ``offline``: the element carries ipywidgets' jupyter-widgets-disconnected class (a saved page, no kernel)."""
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
const model = {{ get: k => data.state[k], set: (k, v) => {{ data.state[k] = v; (handlers[`change:${{k}}`] || []).forEach(f => f()); }},
  save_changes() {{}}, send(m) {{ window.sent.push(m); }}, on(e, f) {{ (handlers[e] = handlers[e] || []).push(f); }}, off() {{}} }};
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
