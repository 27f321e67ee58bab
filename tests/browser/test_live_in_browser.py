"""Your own photo in a real browser (JupyterLab on localhost, Debian's Chromium): a file set into the picker, a
synthetic drop and a paste, refused files said in the widget, Chromium's fake camera for a snapshot and live frames (the track
ended after Stop), the class map over the input; CompareModels takes an upload too. Screenshots go to
test-artifacts/ (live_upload.png, live_class_map.png, live_camera.png)."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from conftest import THREADS
from PIL import Image
from pages import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from servers import ARTIFACTS, collect_errors, lab_server, run_all, write_notebook

import cnnviz_widgets as cv

pytestmark = needs_chromium

CELLS = [
    f"import torch, cnnviz_widgets as cv\ntorch.set_num_threads({THREADS})\n"
    "probe = cv.Probe(cv.load_model('alexnet_paper', weights=None, seed=0))\nphotos = cv.sample_images()[:2]",
    "explorer = cv.DeconvExplorer(probe, photos)\nexplorer",
    "compare = cv.CompareModels(probe, cv.Probe(cv.load_model('alexnet', weights=None, seed=0)), photos[:1], depths=3)\ncompare",
]
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]

# the first layer's reconstruction in the strip (c1: the picture's own edges), 32x32, as a list: to tell one
# picture's reconstructions from another's (a deep layer of random weights is a faint grey for every picture)
PIXELS = """root => { const img = root.querySelector('.cnnviz-strip img'); const c = document.createElement('canvas');
    c.width = 32; c.height = 32; const g = c.getContext('2d'); g.drawImage(img, 0, 0, 32, 32);
    return Array.from(g.getImageData(0, 0, 32, 32).data); }"""
OPTIONS = "root => [...root.querySelectorAll('select[aria-label=Image] option')].map(o => o.textContent)"
SETTLED = """root => root.dataset.ready === '1' && root.dataset.decoded === '1' && root.dataset.stale !== '1'
    && root.getAttribute('aria-busy') === 'false'"""


def jpeg_bytes(picture: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    write_notebook(root / "live.ipynb", CELLS)
    with lab_server(root) as url:
        yield url


@pytest.fixture(scope="module")
def camera_browser():
    """Chromium as every browser test starts it, with its fake camera (a test pattern) allowed without asking."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + FAKE_CAMERA)
        yield b
        b.close()


def test_upload_drop_camera_and_class_map(server, camera_browser, photos, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    page = camera_browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = collect_errors(page)
    page.goto(server + "/lab/tree/live.ipynb?reset")
    page.wait_for_selector(".jp-Notebook:visible", timeout=60_000)
    page.wait_for_timeout(1500)
    run_all(page, "lab")
    news = page.get_by_role("button", name="No", exact=True)
    if news.count():
        news.first.click()
    explorer = page.locator(".cnnviz[aria-label='Deconvnet explorer']").first
    explorer.wait_for(timeout=180_000)
    page.wait_for_function(f"() => ({SETTLED})(document.querySelector(\".cnnviz[aria-label='Deconvnet explorer']\"))",
                           timeout=180_000)
    settled = lambda: page.wait_for_function(  # noqa: E731
        f"() => ({SETTLED})(document.querySelector(\".cnnviz[aria-label='Deconvnet explorer']\"))", timeout=120_000)
    names = explorer.evaluate(OPTIONS)
    assert names == [n for n, _ in photos[:2]]
    before = explorer.evaluate(PIXELS)

    # a file set into the picker: it joins the list under its name, is picked, and its reconstructions differ
    coffee = jpeg_bytes(dict(photos)["coffee"])
    explorer.locator("input[type=file]").set_input_files(
        files=[{"name": "my coffee.jpg", "mimeType": "image/jpeg", "buffer": coffee}])
    page.wait_for_function("() => [...document.querySelectorAll('select[aria-label=Image] option')].some(o => o.textContent === 'my coffee.jpg')", timeout=60_000)
    settled()
    page.wait_for_timeout(300)
    assert explorer.evaluate(OPTIONS) == names + ["my coffee.jpg"]
    assert explorer.evaluate("r => r.querySelector('select[aria-label=Image]').value") == "2"
    uploaded = explorer.evaluate(PIXELS)
    assert np.abs(np.array(uploaded) - np.array(before)).mean() > 2
    explorer.screenshot(path=str(ARTIFACTS / "live_upload.png"))

    # a synthetic drop of a PNG onto the widget
    astronaut = Image.fromarray(dict(photos)["astronaut"])
    buf = io.BytesIO()
    astronaut.save(buf, format="PNG")
    explorer.evaluate("""(root, b64) => { const s = atob(b64), a = new Uint8Array(s.length);
        for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
        const dt = new DataTransfer(); dt.items.add(new File([a], 'dropped.png', {type: 'image/png'}));
        root.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
        root.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); }""",
                      base64.b64encode(buf.getvalue()).decode())
    page.wait_for_function("() => [...document.querySelectorAll('select[aria-label=Image] option')].some(o => o.textContent === 'dropped.png')", timeout=60_000)
    settled()
    page.wait_for_timeout(300)
    dropped = explorer.evaluate(PIXELS)
    assert np.abs(np.array(dropped) - np.array(uploaded)).mean() > 2
    names = explorer.evaluate(OPTIONS)
    assert names[-1] == "dropped.png"

    # too large (not even sent) and a text file renamed .jpg: a message each, the list unchanged
    explorer.locator("input[type=file]").set_input_files(
        files=[{"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8" + b"\0" * (26 * 2**20)}])
    page.wait_for_function("() => document.querySelector('.cnnviz-error').textContent.includes('25 MB')", timeout=60_000)
    assert "huge.jpg is 26.0 MB: pictures of up to 25 MB are accepted" in explorer.locator(".cnnviz-error").inner_text()
    explorer.locator("input[type=file]").set_input_files(
        files=[{"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"Not a picture at all, just text."}])
    page.wait_for_function("() => document.querySelector('.cnnviz-error').textContent.includes('notes.jpg')", timeout=60_000)
    assert "notes.jpg is not a readable picture" in explorer.locator(".cnnviz-error").inner_text()
    assert explorer.evaluate(OPTIONS) == names

    # the class map: a top-5 class picked shows where it is found, over the input
    explorer.locator("button.cnnviz-pred").nth(1).click()
    page.wait_for_function("() => document.querySelector(\".cnnviz[aria-label='Deconvnet explorer']\").dataset.classMap", timeout=60_000)
    page.wait_for_timeout(500)
    label = explorer.locator("button.cnnviz-pred").nth(1).get_attribute("title").removeprefix("reconstruct the class ")
    assert explorer.evaluate("r => r.dataset.classMap") == f"{label}@c5"
    assert f"where {label} is found (gradcam at c5)" in explorer.inner_text()
    overlay = explorer.locator("img.cnnviz-classmap")
    photo = explorer.locator("img.cnnviz-input")
    assert overlay.bounding_box() == photo.bounding_box() and overlay.evaluate("i => getComputedStyle(i).opacity") == "0.5"
    explorer.locator("input[aria-label='Class map opacity']").fill("0.8")
    assert overlay.evaluate("i => getComputedStyle(i).opacity") == "0.8"
    explorer.screenshot(path=str(ARTIFACTS / "live_class_map.png"))

    # the webcam: a snapshot joins the list; live frames show the layer on screen; Stop ends the track
    explorer.locator("button.cnnviz-camera").click()
    page.wait_for_function("() => document.querySelector(\".cnnviz[aria-label='Deconvnet explorer']\").dataset.camera === 'on'", timeout=30_000)
    page.wait_for_function("() => document.querySelector('video.cnnviz-video').videoWidth > 0", timeout=30_000)
    explorer.get_by_role("button", name="snapshot").click()
    page.wait_for_function("() => [...document.querySelectorAll('select[aria-label=Image] option')].some(o => o.textContent === 'webcam 1.jpg')", timeout=60_000)
    settled()
    explorer.get_by_role("button", name="▶ live").click()
    page.wait_for_function("() => Number(document.querySelector(\".cnnviz[aria-label='Deconvnet explorer']\").dataset.live || 0) >= 3", timeout=90_000)
    lag = explorer.evaluate("r => r.dataset.liveLag")
    print(f"\nlive: {explorer.evaluate('r => r.dataset.live')} frames shown, the last {lag} ms behind the camera")
    assert "live · layer" in explorer.locator(".cnnviz-figure span").nth(1).inner_text()
    assert explorer.locator("img.cnnviz-classmap").evaluate("i => i.style.display") == "none"  # the photo's, not the frame's
    explorer.screenshot(path=str(ARTIFACTS / "live_camera.png"))
    assert explorer.evaluate("r => r.cnnvizStream.getVideoTracks()[0].readyState") == "live"
    explorer.get_by_role("button", name="■ stop camera").click()
    assert explorer.evaluate("r => r.cnnvizStream.getVideoTracks()[0].readyState") == "ended"
    page.wait_for_function("() => !document.querySelector(\".cnnviz[aria-label='Deconvnet explorer']\").dataset.live", timeout=30_000)
    assert explorer.evaluate("r => r.dataset.camera") == "off"
    # a hidden tab releases the camera too
    explorer.locator("button.cnnviz-camera").click()
    page.wait_for_function("() => document.querySelector(\".cnnviz[aria-label='Deconvnet explorer']\").dataset.camera === 'on'", timeout=30_000)
    assert explorer.evaluate("r => r.cnnvizStream.getVideoTracks()[0].readyState") == "live"
    page.evaluate("() => { Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});"
                  " document.dispatchEvent(new Event('visibilitychange')); }")
    assert explorer.evaluate("r => r.cnnvizStream.getVideoTracks()[0].readyState") == "ended"
    page.evaluate("() => { Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true}); }")

    # CompareModels takes an upload too
    compare = page.locator(".cnnviz[aria-label='Compare two networks']").first
    compare.scroll_into_view_if_needed()
    compare.locator("input[type=file]").set_input_files(
        files=[{"name": "mine.jpg", "mimeType": "image/jpeg", "buffer": coffee}])
    page.wait_for_function("() => [...document.querySelectorAll(\".cnnviz[aria-label='Compare two networks'] select[aria-label=Image] option\")].some(o => o.textContent === 'mine.jpg')", timeout=60_000)
    page.wait_for_function("() => document.querySelector(\".cnnviz[aria-label='Compare two networks']\").dataset.stale !== '1'", timeout=120_000)
    assert not [e for e in errors if "pageerror" in e], errors
    page.close()


def test_a_refused_camera_is_said(server, camera_browser):
    """The browser's refusal (what getUserMedia rejects with when the user says no: a NotAllowedError, stubbed here
    since the fake camera is allowed without asking) is said in the widget, which stays usable."""
    page = camera_browser.new_page()
    page.add_init_script("navigator.mediaDevices.getUserMedia = () => "
                         "Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));")
    page.goto(server + "/lab/tree/live.ipynb?reset")
    page.wait_for_selector(".jp-Notebook:visible", timeout=60_000)
    page.wait_for_timeout(1500)
    run_all(page, "lab")
    explorer = page.locator(".cnnviz[aria-label='Deconvnet explorer']").first
    page.wait_for_function("() => document.querySelector(\".cnnviz[aria-label='Deconvnet explorer']\")?.dataset.ready === '1'",
                           timeout=180_000)
    explorer.locator("button.cnnviz-camera").click()
    page.wait_for_function("() => document.querySelector('.cnnviz-camera-note').textContent", timeout=30_000)
    said = explorer.locator(".cnnviz-camera-note").inner_text()
    assert said.startswith("The browser refused the camera (no permission)"), said
    assert explorer.evaluate("r => r.dataset.camera") != "on" and not explorer.locator("video.cnnviz-video:visible").count()
    page.close()


def test_a_saved_page_greys_out_upload_and_camera(camera_browser, tmp_path, photos):
    """Without a kernel (a saved page), the photo and camera buttons and the class map box are disabled like the
    other kernel controls, while the map's opacity slider (the browser's alone) still works; a drop sends nothing."""
    from pages import write_bare_page

    probe = cv.Probe(cv.load_model("alexnet_paper", weights=None, seed=0), device="cpu")
    w = cv.DeconvExplorer(probe, photos[:1], show_map=True)
    page = camera_browser.new_page()
    page.goto(write_bare_page(tmp_path, "offline", w, offline=True))
    page.wait_for_function("() => window.rendered === true")
    root = page.locator(".cnnviz").first
    assert root.locator("button.cnnviz-upload").is_disabled() and root.locator("button.cnnviz-camera").is_disabled()
    assert root.locator("input[aria-label='Show where the class is found (Grad-CAM)']").is_disabled()
    slider = root.locator("input[aria-label='Class map opacity']")
    assert not slider.is_disabled()
    slider.fill("0.2")
    assert root.locator("img.cnnviz-classmap").evaluate("i => getComputedStyle(i).opacity") == "0.2"
    root.evaluate("""r => { const dt = new DataTransfer(); dt.items.add(new File(['x'], 'a.png', {type: 'image/png'}));
        r.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); }""")
    page.wait_for_timeout(200)
    assert page.evaluate("window.sent.filter(m => m.event === 'upload').length") == 0
    page.close()


def test_a_paste_sends_the_picture(camera_browser, tmp_path, photos):
    """A picture pasted into the widget (Ctrl+V of a copied image) goes to the kernel like a file picked, with its
    bytes; text pasted sends nothing."""
    from pages import write_bare_page

    probe = cv.Probe(cv.load_model("alexnet_paper", weights=None, seed=0), device="cpu")
    page = camera_browser.new_page()
    page.goto(write_bare_page(tmp_path, "paste", cv.DeconvExplorer(probe, photos[:1])))
    page.wait_for_function("() => window.rendered === true")
    page.evaluate("""() => { const real = window.model.send; window.buffers = [];
        window.model.send = (m, cb, b) => { window.buffers.push(b ? b.map(x => x.byteLength) : []); real(m); }; }""")
    root = page.locator(".cnnviz").first
    root.evaluate("""r => { const text = new DataTransfer(); text.setData('text/plain', 'hello');
        r.dispatchEvent(new ClipboardEvent('paste', {clipboardData: text, bubbles: true, cancelable: true}));
        const dt = new DataTransfer(); dt.items.add(new File([new Uint8Array(1234)], 'image.png', {type: 'image/png'}));
        r.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true})); }""")
    page.wait_for_function("() => window.sent.length > 0")
    assert page.evaluate("window.sent") == [{"event": "upload", "name": "image.png", "size": 1234}]
    assert page.evaluate("window.buffers") == [[1234]]
    page.close()
