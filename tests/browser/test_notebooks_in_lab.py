"""Every notebook, run once, as a student runs it: opened in JupyterLab on a 1280 px screen, Run All, offline (an
empty TORCH_HOME: random weights). On that one run: what a person sees (no error, nothing wider than its cell, no
chart text over another, text at 4.5:1 contrast, screenshots in the light and the dark theme under
test-artifacts/nb_*), what some notebooks must do besides (the tour's widgets and its README screenshot; lesson 03's
timeline answering its slider, play and comparison), and then, on the notebook as Lab saves it, every check of
its outputs (tests/notebook_checks.py) with the kernel's peak memory read from outside it."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from servers import (ARTIFACTS, REPO, kernel_of, kernel_peak_gib, lab_server, open_and_run, save_and_read, set_theme,
                 shut_down, wait_until_run)
from notebook_checks import ANSWERS, NOTEBOOKS, check_outputs, with_checks
from pages import LOW_CONTRAST, browser, needs_chromium  # noqa: F401 - browser is a fixture

pytestmark = needs_chromium

# every output that shows something (a widget, a picture, the chart): what the screenshots and width checks look at
SHOWN = ".jp-OutputArea-output:has(.cnnviz, .cnnviz-rf, .bqplot, .widget-html, img, table)"

# Boxes of the chart's texts (tick labels, axis labels, title, legend) that overlap another's by more than a
# pixel each way; texts hidden or empty are skipped
CHART_OVERLAPS = """root => {
    const texts = [...root.querySelectorAll('svg text')].filter(t => t.textContent.trim() && t.getBBox().width > 0
        && getComputedStyle(t).visibility !== 'hidden' && getComputedStyle(t).display !== 'none' && t.closest('[display=none]') === null);
    const boxes = texts.map(t => { const r = t.getBoundingClientRect(); return {text: t.textContent.trim(), l: r.left, r: r.right, t: r.top, b: r.bottom}; });
    const bad = [];
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i], b = boxes[j];
        if (Math.min(a.r, b.r) - Math.max(a.l, b.l) > 1 && Math.min(a.b, b.b) - Math.max(a.t, b.t) > 1) bad.push(a.text + ' / ' + b.text);
    }
    return {n: boxes.length, bad};
}"""

# What is wider than the output area that holds it (a widget a student would have to scroll sideways to see)
TOO_WIDE = """out => {
    const o = out.getBoundingClientRect();
    // a strip that scrolls inside a widget which fits is fine: only what sticks out of the output counts
    const scrolled = e => { for (let a = e.parentElement; a && a !== out; a = a.parentElement) {
        if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(a).overflowX) && a.getBoundingClientRect().right <= o.right + 1) return true; }
        return false; };
    const wide = [...out.querySelectorAll('.cnnviz, .cnnviz-rf, .bqplot, .widget-box, img, table')]
        .filter(e => e.getBoundingClientRect().right > o.right + 1 && !scrolled(e))
        .map(e => `${e.className || e.tagName} ${Math.round(e.getBoundingClientRect().width)} px`);
    if (out.scrollWidth > out.clientWidth + 1) wide.push(`the output scrolls: ${out.scrollWidth} > ${out.clientWidth} px`);
    if (wide.length) wide.push(`the output is ${Math.round(o.width)} px`);
    return wide;
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on clean copies of the notebooks (with their check cells) and of docs/ (their pictures)."""
    import shutil

    root = tmp_path_factory.mktemp("notebooks")
    for path in NOTEBOOKS:  # as committed, without the outputs a user's own Lab session saved into them
        target = root / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(with_checks(path), target)
    shutil.copytree(REPO / "docs", root / "docs", ignore=shutil.ignore_patterns("*.py"))  # so ../docs/ pictures load
    with lab_server(root) as url:
        yield url, root


def the_tour(page) -> None:
    """The README's main experience: every widget of the tour draws, the rules figure loads, and the explorer's
    view is docs/tour.png's source (test-artifacts/tour.png)."""
    for label in ("Deconvnet explorer", "Representation space", "Filters by their top patches", "Compare two networks"):
        page.locator(f"[aria-label='{label}'][data-ready='1']").first.wait_for(timeout=300_000)
    assert "Offline: using seeded random weights" in page.locator(".jp-RenderedMarkdown").all_inner_texts().__str__() \
        or "ImageNet weights loaded" in page.content()
    figure = page.locator("img[src*='rules.jpg']").first  # the README's picture of the rules, in the tour
    figure.scroll_into_view_if_needed()
    page.wait_for_function("() => { const i = document.querySelector(\"img[src*='rules.jpg']\"); return i && i.complete && i.naturalWidth > 0; }",
                           timeout=30_000)
    assert figure.evaluate("i => i.naturalWidth") == 1156
    viewport = page.viewport_size
    page.set_viewport_size({"width": 1300, "height": 1500})
    explorer = page.locator("[aria-label='Deconvnet explorer']").first
    explorer.evaluate("""e => {  // bring the explorer's cell to the top of JupyterLab's own scroller
        const scroller = e.closest('.jp-WindowedPanel-outer') || e.closest('.jp-Notebook');
        const cell = e.closest('.jp-Cell');
        scroller.scrollTop += cell.getBoundingClientRect().top - scroller.getBoundingClientRect().top - 60;
    }""")
    page.wait_for_timeout(700)
    page.screenshot(path=str(ARTIFACTS / "tour.png"))  # docs/tour.png in the README is a copy of this
    page.set_viewport_size(viewport)


def the_timeline_lesson(page) -> None:
    """Lesson 03 trains its network, then its timeline answers the slider, play and the comparison (screenshots
    test-artifacts/timeline_*)."""
    from test_timeline_in_browser import TIMELINE, exercise

    widget = page.locator(TIMELINE).first
    widget.wait_for(timeout=420_000)
    widget.scroll_into_view_if_needed()
    steps = [int(s.removeprefix("step ")) for s in widget.locator("select[aria-label='First step to compare'] option")
             .evaluate_all("os => os.map(o => o.textContent)")]  # (the comparison is hidden: its options render no text)
    assert len(steps) == 20 and steps[0] == 0
    exercise(page, widget, steps, shots="timeline")
    assert page.evaluate("() => document.querySelector('.cnnviz-metric') !== null")


# what a notebook must do in the browser beyond what every notebook must
EXTRA: dict[str, Callable] = {
    "00_tour.ipynb": the_tour,
    "03_how_a_network_learns.ipynb": the_timeline_lesson,
}


THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


def theme_of(page) -> str:
    """The theme the page wears: "light" or "dark" (a server setting: a page opens in the theme the last one left)."""
    return "dark" if page.evaluate("() => document.body.dataset.jpThemeLight") == "false" else "light"


def looks_right(page, stem: str) -> None:
    """Every shown output in the light and the dark theme (the one the page wears first, so no page switches
    back): a screenshot, and nothing too wide, cut off, shrunk, faint or overlapping."""
    shown = page.locator(SHOWN)
    assert shown.count() > 0
    first = theme_of(page)
    for theme in (first, "dark" if first == "light" else "light"):
        if theme != first:
            set_theme(page, THEMES[theme])
        for k in range(shown.count()):
            out = shown.nth(k)
            out.scroll_into_view_if_needed()
            out.screenshot(path=str(ARTIFACTS / f"nb_{stem}_{k}_{theme}.png"))  # first: a failure below has its picture
            wide = out.evaluate(TOO_WIDE)
            assert not wide, f"{stem}, output {k}: wider than its cell at 1280 px: {wide}"
            cut = out.evaluate("""out => [...out.querySelectorAll('.cnnviz-thumb.active')].filter(t => {
                const r = t.getBoundingClientRect(), s = t.parentElement.getBoundingClientRect();
                return r.left < s.left - 1 || r.right > s.right + 1; }).map(t => t.title)""")
            assert not cut, f"{stem}, output {k}: the current layer's thumbnail is cut off by its strip: {cut}"
            shrunk = out.evaluate("""out => [...out.querySelectorAll('.jp-RenderedImage img')]
                .filter(i => i.naturalWidth && i.clientWidth < 0.95 * i.naturalWidth).map(i => `${i.naturalWidth} px shown at ${i.clientWidth}`)""")
            assert not shrunk, f"{stem}, output {k}: a picture is shrunk to fit, its labels with it: {shrunk}"
            for part in out.locator(".cnnviz, .cnnviz-rf, .bqplot, .widget-html").all():
                found = part.evaluate(f"(root, min) => ({LOW_CONTRAST})([root, min])", 4.5)
                assert not found["low"], f"{stem}, output {k}, {theme}: text under 4.5:1 contrast: {found['low']}"
            for chart in out.locator(".bqplot").all():
                texts = chart.evaluate(CHART_OVERLAPS)
                assert texts["n"] > 10 and not texts["bad"], f"{stem}, output {k}: chart texts overlap: {texts['bad']}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(REPO / "notebooks")) for p in NOTEBOOKS])
def test_notebook_in_jupyterlab(lab, browser, path: Path):
    server, root = lab
    ARTIFACTS.mkdir(exist_ok=True)
    rel = str(path.relative_to(REPO))
    stem = str(path.relative_to(REPO / "notebooks").with_suffix("")).replace("/", "_")
    code_cells = sum(c.cell_type == "code" for c in nbformat.read(root / rel, as_version=4).cells)
    page, errors, known = open_and_run(browser, server, rel, {"width": 1280, "height": 900})
    session = None
    try:
        wait_until_run(page, code_cells)
        session = kernel_of(server, rel)
        assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'] .ansi-red-fg").count() == 0
        assert page.get_by_text("Error displaying widget").count() == 0
        assert page.locator(".cnnviz[data-error='1']").count() == 0, page.locator(".cnnviz-error").all_inner_texts()
        if path.name in EXTRA:
            if theme_of(page) == "dark":  # their screenshots (docs/tour.png's source) are the light theme's
                set_theme(page, THEMES["light"])
            EXTRA[path.name](page)
        if path != ANSWERS:  # the answer key shows nothing: markdown and the answers' values
            looks_right(page, stem)
        bad = [e for e in errors if e.split(" for comm id")[0] not in known]
        assert not bad, bad
        peak = kernel_peak_gib(session["kernel"]["id"])
        check_outputs(path, save_and_read(page, root, rel), peak)
    finally:
        page.close()
        if session is not None:
            shut_down(server, session)
