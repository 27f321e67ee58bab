"""An upload in marimo: a file set into the explorer's picker travels as an anywidget custom message with a binary
buffer, which marimo must deliver to the widget's Python side; the photo joins the list and is shown."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from servers import marimo_server
from pages import browser, needs_chromium  # noqa: F401 - browser is a fixture
from PIL import Image

import cnnviz_widgets as cv

pytest.importorskip("marimo")
from playwright.sync_api import expect  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
pytestmark = needs_chromium

APP = '''import marimo

app = marimo.App(width="full")


@app.cell
def _():
    import marimo as mo

    import cnnviz_widgets as cv

    probe = cv.Probe(cv.load_model("alexnet_paper", weights=None, seed=0))
    explorer = mo.ui.anywidget(cv.DeconvExplorer(probe, cv.sample_images()[:1]))
    explorer
    return


if __name__ == "__main__":
    app.run()
'''
EXPLORER = "[aria-label='Deconvnet explorer'][data-ready='1']"


@pytest.fixture(scope="module")
def marimo_url(tmp_path_factory):
    home = tmp_path_factory.mktemp("marimo-upload")
    (home / "upload_app.py").write_text(APP)
    with marimo_server(home / "upload_app.py") as url:
        yield url


def test_an_upload_reaches_python_in_marimo(marimo_url, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(marimo_url)
    explorer = page.locator(EXPLORER).first
    explorer.wait_for(timeout=300_000)
    first = cv.sample_images()[0][0]
    options = "r => [...r.querySelectorAll('select[aria-label=Image] option')].map(o => o.textContent)"
    assert explorer.evaluate(options) == [first]
    buf = io.BytesIO()
    Image.fromarray(dict(cv.sample_images())["coffee"]).save(buf, format="JPEG", quality=90)
    explorer.locator("input[type=file]").set_input_files(
        files=[{"name": "from marimo.jpg", "mimeType": "image/jpeg", "buffer": buf.getvalue()}])
    # Playwright's locators pierce marimo's shadow roots (document.querySelector does not)
    expect(explorer.locator("select[aria-label=Image] option", has_text="from marimo.jpg")).to_have_count(1, timeout=120_000)
    expect(explorer).to_have_attribute("aria-busy", "false", timeout=120_000)
    expect(explorer).not_to_have_attribute("data-stale", "1", timeout=120_000)
    assert explorer.evaluate(options) == [first, "from marimo.jpg"]
    assert explorer.evaluate("r => r.querySelector('select[aria-label=Image]').value") == "1"
    assert explorer.locator(".cnnviz-error").inner_text() == ""
    explorer.screenshot(path=str(ARTIFACTS / "marimo_upload.png"))
    page.close()
