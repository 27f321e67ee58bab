"""A notebook shared as static HTML: executed with its widget state stored (nbclient), converted by nbconvert,
opened in Chromium with no kernel and no internet.

Every request the page makes is answered by Playwright: the CDN files it asks for (require.js, the
@jupyter-widgets/html-manager front end, the anywidget front end the manager asks for by module name and
version, their fonts) from the npm packages in ./node_modules (`npm ci` at the repository root), the page itself
from the temporary folder, anything else aborted (the test fails if it was needed). Then the explorer must
draw its picture, the arrow key must change it, every slider position must show its own picture, and
what needs a kernel must say so. The other test bounds the size of a saved VGG16 explorer.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from conftest import THREADS
from pages import launch, needs_chromium

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
NODE = REPO / "node_modules"
ORIGIN = "http://notebook.invalid"  # the page's own address: no server, Playwright answers it


SETUP = (f"import torch, cnnviz_widgets as cv\ntorch.set_num_threads({THREADS})\n"
         "probe = cv.Probe(cv.load_model({model!r}, weights=None, seed=0))\nphotos = cv.sample_images()[:2]")


def front_ends() -> None:
    """The widget front ends the page loads, from npm (package.json): installed here by `npm ci` when missing and
    npm is at hand (CI runs it before the tests); without npm, as without Chromium, the test cannot run."""
    if not ((NODE / "@jupyter-widgets" / "html-manager").is_dir() and (NODE / "requirejs").is_dir()):
        if not shutil.which("npm"):
            pytest.skip("the widget front ends come from npm: install Node and npm (apt-get install nodejs npm), then `npm ci`")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=REPO, check=True, timeout=600)


def executed_html(tmp_path: Path, cells: list[str]) -> Path:
    """The notebook run by nbclient with its widget state stored, as `jupyter nbconvert --to html` writes it."""
    import nbclient
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    # the kernel imports this checkout, as the test does
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("CNNVIZ_PICTURES", None)  # the default format is what a saved notebook holds
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", store_widget_state=True,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    assert "application/vnd.jupyter.widget-state+json" in nb.metadata.get("widgets", {})
    body, _ = HTMLExporter().from_notebook_node(nb)
    out = tmp_path / "notebook.html"
    out.write_text(body, encoding="utf-8")
    return out


def node_file(url: str) -> Path | None:
    """The file of ./node_modules that a CDN address of the page stands for; None for any other address."""
    from urllib.parse import unquote

    u = unquote(url.split("?")[0])
    if re.fullmatch(r"https://cdnjs\.cloudflare\.com/ajax/libs/require\.js/[\d.]+/require(\.min)?\.js", u):
        return NODE / "requirejs" / "require.js"
    m = re.fullmatch(r"https://(?:unpkg\.com|cdn\.jsdelivr\.net/npm)/(@jupyter-widgets/html-manager|anywidget)@([^/]+)/dist/([\w.-]+)", u)
    if m:
        package, wanted, name = m.groups()
        have = json.loads((NODE / package / "package.json").read_text())["version"]
        prefix = wanted.lstrip("~^").replace("*", "").rstrip(".")  # "~0.11.*" -> "0.11"; "*" -> ""
        assert have.startswith(prefix), f"the page asks for {package}@{wanted}; node_modules has {have}: run npm ci"
        return NODE / package / "dist" / name
    return None


TYPES = {".js": "application/javascript", ".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf",
         ".eot": "application/vnd.ms-fontobject", ".svg": "image/svg+xml", ".css": "text/css"}
# what the page may ask for and go without: MathJax typesets LaTeX (there is none here); requirejs first looks
# for a widget module beside the page (ORIGIN/anywidget.js) before html-manager falls back to the CDN
OPTIONAL = (re.compile(r"https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/"), re.compile(re.escape(ORIGIN) + r"/anywidget\.js"))


@needs_chromium
def test_saved_notebook_works_as_static_html_without_kernel(tmp_path):
    from playwright.sync_api import sync_playwright

    front_ends()
    html = executed_html(tmp_path, [
        SETUP.format(model="alexnet_paper"),
        "explorer = cv.DeconvExplorer(probe, photos)\nexplorer",
        "grid = cv.FilterGrid(probe, photos, layer='c3', k=4, page_size=16)\ngrid",
    ])
    served, aborted, errors = [], [], []

    def answer(route):
        url = route.request.url
        if url == f"{ORIGIN}/notebook.html":
            return route.fulfill(path=str(html), content_type="text/html; charset=utf-8")
        try:
            local = node_file(url)
        except AssertionError as e:  # said after the wait below: an exception here would only stall the page
            errors.append(str(e))
            return route.abort()
        if local is not None and local.is_file():
            served.append(url)
            return route.fulfill(path=str(local), content_type=TYPES.get(local.suffix, "application/octet-stream"),
                                 headers={"Access-Control-Allow-Origin": "*"})
        aborted.append(url)
        return route.abort()

    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, service_workers="block")
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route("**/*", answer)
            page.goto(f"{ORIGIN}/notebook.html")
            explorer = page.locator('.cnnviz[aria-label="Deconvnet explorer"]')
            grid = page.locator('.cnnviz[aria-label="Filters by their top patches"]')
            try:
                page.wait_for_selector('.cnnviz[aria-label="Deconvnet explorer"][data-ready="1"][data-decoded="1"]', timeout=60_000)
                page.wait_for_selector('.cnnviz[aria-label="Filters by their top patches"][data-ready="1"]', timeout=60_000)
            except Exception as e:
                raise AssertionError(f"the widgets did not render: errors {errors}, aborted {aborted}, served {served}") from e
            assert not errors, errors
            needed = [u for u in aborted if not any(p.match(u) for p in OPTIONAL)]
            assert not needed, f"the page needed {needed}, which no local file answers"
            assert any("anywidget" in u for u in served) and any("embed-amd" in u for u in served), served
            print("served from node_modules:", served, "\naborted (optional):", aborted)

            # no kernel: the explorer and the grid say what needs one; their kernel-only controls are off
            for w in (explorer, grid):
                assert w.get_attribute("data-offline") == "1"
                assert "Not connected to a kernel" in w.locator(".cnnviz-offline").inner_text()
            assert "layer slider" in explorer.locator(".cnnviz-offline").inner_text() and "needs a running kernel" in explorer.locator(".cnnviz-offline").inner_text()
            assert explorer.locator('select[aria-label="Image"]').is_disabled()
            assert explorer.locator('select[aria-label="Reverse rule"]').is_disabled()
            assert grid.locator('button[aria-label="Next page"]').is_disabled()
            assert explorer.locator(".cnnviz-pred").count() == 0  # the top-5 are bars, not buttons that would ask a kernel
            # the signal is ipywidgets' class on the view's element, which follows model.comm_live: when it changes
            # (a kernel comes, or goes), the widget follows
            assert explorer.evaluate("r => r.parentElement.classList.contains('jupyter-widgets-disconnected')")
            explorer.evaluate("r => r.parentElement.classList.remove('jupyter-widgets-disconnected')")
            page.wait_for_function("r => r.dataset.offline === ''", arg=explorer.element_handle())
            assert explorer.locator('select[aria-label="Image"]').is_enabled() and not explorer.locator(".cnnviz-offline").is_visible()
            assert explorer.locator(".cnnviz-pred").count() == 5  # clickable again
            explorer.evaluate("r => r.parentElement.classList.add('jupyter-widgets-disconnected')")
            page.wait_for_function("r => r.dataset.offline === '1'", arg=explorer.element_handle())
            assert explorer.locator('select[aria-label="Image"]').is_disabled() and explorer.locator(".cnnviz-pred").count() == 0

            big = explorer.locator("img.cnnviz-big")
            pixels = """img => { const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
                const g = c.getContext('2d'); g.drawImage(img, 0, 0); const d = g.getImageData(0, 0, c.width, c.height).data;
                let s = 0, s2 = 0, hash = 0; for (let i = 0; i < d.length; i += 4) { s += d[i]; s2 += d[i] * d[i];
                hash = (hash * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) >>> 0; }
                const n = d.length / 4, mean = s / n; return { w: c.width, std: Math.sqrt(s2 / n - mean * mean), hash }; }"""
            label = explorer.locator('strong.cnnviz-layer-name')  # the layer's name beside the slider
            first = {"src": big.get_attribute("src"), "label": label.inner_text(), **big.evaluate(pixels)}
            assert first["w"] == 224 and first["std"] > 5, first  # a picture, not a blank tile

            explorer.focus()
            page.keyboard.press("ArrowRight")
            after = {"src": big.get_attribute("src"), "label": label.inner_text(), **big.evaluate(pixels)}
            assert after["label"] != first["label"] and after["src"] != first["src"] and after["hash"] != first["hash"], (first, after)
            assert explorer.get_attribute("data-shown-layer") == after["label"]

            # every slider position shows its own picture, from the saved state alone
            n = int(explorer.locator('input[aria-label="Layer"]').get_attribute("max")) + 1
            for _ in range(n):
                page.keyboard.press("ArrowLeft")
            seen = {}
            for i in range(n):
                if i:
                    page.keyboard.press("ArrowRight")
                seen[label.inner_text()] = big.evaluate(pixels)["hash"]
            assert len(seen) == n and len(set(seen.values())) == n, seen
            assert not errors, errors

            for _ in range(n // 2):
                page.keyboard.press("ArrowLeft")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "static_html.png"), full_page=True)
        finally:
            browser.close()


def test_saved_vgg16_explorer_stays_small(tmp_path):
    """A VGG16 explorer (21 layers at 224 px) saved with its state: the pictures travel as JPEG, so the page
    stays about a megabyte (raw BMP pixels made it 4.9 MB)."""
    html = executed_html(tmp_path, [SETUP.format(model="vgg16"), "explorer = cv.DeconvExplorer(probe, photos)\nexplorer"])
    text = html.read_text(encoding="utf-8")
    state = json.loads(re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', text, re.S).group(1))
    explorer, = [m for m in state["state"].values() if m["state"].get("_view_name") == "AnyView"]
    assert len(explorer["buffers"]) >= 22  # the input and every layer's picture: the slider needs no kernel
    pictures = sum(len(b["data"]) for b in explorer["buffers"])
    print(f"saved VGG16 explorer: {len(text) / 1e6:.2f} MB of HTML, {pictures / 1e6:.2f} MB of it base64 pictures")
    assert len(text) < 1.5e6, len(text)
