"""Keyboard, touch and screen readers (issue 28, part 4), in Chromium on a bare page: each widget driven by the
keyboard alone (Tab to reach a control, arrows, Enter), a touch drag as pointer events, and what a screen reader
is told. What the page sends and saves is handed to the widget's Python side by ``pages.relay`` (as the comm
would), so each test ends on the Python trait the action changes."""
from __future__ import annotations

from pathlib import Path

import pytest
from pages import browser, needs_chromium, open_widget, relay, tab_to, widgets  # noqa: F401 - fixtures

import cnnviz_widgets as cv

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = needs_chromium


def focused(page, attribute: str) -> str | None:
    return page.evaluate(f"() => document.activeElement && document.activeElement.getAttribute({attribute!r})")


def test_explorer_unit_chosen_by_keyboard(browser, alex_probe, photos, tmp_path):
    """Tab reaches the big picture; the arrow keys move the cursor one unit of the layer's map a press (not the
    layer); Enter reconstructs the strongest filter there: ``selected`` in Python names that unit. The strip is
    one tab stop whose arrow keys turn the layer, aria-activedescendant naming the option on screen."""
    explorer = cv.DeconvExplorer(alex_probe, photos[:2])
    layer = explorer.layer
    h, w = explorer.grid[explorer.layer_names.index(layer)]
    page = open_widget(browser, tmp_path, explorer, "keyboard_explorer", "light")
    try:
        tab_to(page, ".cnnviz-unitpick")
        assert "arrow keys move a cursor" in focused(page, "aria-label")
        assert page.evaluate("() => getComputedStyle(document.querySelector('.cnnviz-cursor')).display") == "block"
        for key in ("ArrowRight", "ArrowRight", "ArrowDown"):
            page.keyboard.press(key)
        root = page.locator(".cnnviz").first
        assert root.get_attribute("data-shown-layer") == layer  # the arrows moved the cursor, not the layer
        assert root.get_attribute("data-cursor") == f"{h // 2 + 1},{w // 2 + 2}"
        assert page.locator(".cnnviz-unitpick div.cnnviz-sr").inner_text() == f"row {h // 2 + 1}, column {w // 2 + 2}"
        page.screenshot(path=str(ARTIFACTS / "keyboard_explorer_cursor.png"))
        page.keyboard.press("Enter")
        sent, _ = relay(page, explorer)
        assert sent == [{"event": "cell", "layer": layer, "y": h // 2 + 1, "x": w // 2 + 2}]
        assert not explorer.error, explorer.error
        assert explorer.selected["layer"] == layer and explorer.selected["unit"][1:] == [h // 2 + 1, w // 2 + 2]
        # the strip: one tab stop, the arrow keys turn the layer, the option on screen is the active descendant
        tab_to(page, ".cnnviz-strip")
        page.keyboard.press("ArrowRight")
        nxt = explorer.layer_names[explorer.layer_names.index(layer) + 1]
        active = page.evaluate("() => document.getElementById(document.activeElement.getAttribute('aria-activedescendant'))"
                               ".getAttribute('aria-label')")
        assert active == f"layer {nxt}"
        relay(page, explorer)
        assert explorer.layer == nxt
        assert "at layer " + nxt in page.locator(".cnnviz-big").get_attribute("alt")  # the alt text names the layer
    finally:
        page.close()


def test_filter_grid_tile_picked_and_zoom_keys(browser, alex_probe, photos, tmp_path):
    """Tiles are buttons: Tab reaches the first, an arrow key the next, Enter picks it (``selected`` in Python).
    The zoom slider's arrow keys zoom and leave the page as it was (they paged the grid)."""
    grid = cv.FilterGrid(alex_probe, photos[:3], layer="c2", k=4, page_size=8)
    page = open_widget(browser, tmp_path, grid, "keyboard_grid", "light")
    try:
        tab_to(page, ".cnnviz-tile")
        assert focused(page, "aria-label") == f"filter {grid.sheet_filters[0]}"
        page.keyboard.press("ArrowRight")
        assert focused(page, "aria-label") == f"filter {grid.sheet_filters[1]}"
        page.screenshot(path=str(ARTIFACTS / "keyboard_grid_tile.png"))
        page.keyboard.press("Enter")
        relay(page, grid)
        assert grid.selected == {"layer": "c2", "filter": int(grid.sheet_filters[1])}
        # the zoom slider: its arrow keys zoom, the page stays
        tab_to(page, "input[aria-label=Zoom]")
        zoom = page.locator("input[aria-label=Zoom]")
        before, label = zoom.input_value(), page.locator(".cnnviz-row span[aria-live]").inner_text()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        _, saved = relay(page, grid)
        assert float(zoom.input_value()) == float(before) + 0.5
        assert grid.page == 0 and not any("page" in s for s in saved)
        assert page.locator(".cnnviz-row span[aria-live]").inner_text() == label
    finally:
        page.close()


def test_rf_table_row_selected_by_keyboard(browser, alex_probe, tmp_path):
    """Each table is one tab stop on its current row; the arrow keys move between rows, Enter makes the focused
    one current (``layer`` in Python), and the keyboard stays on it. Header cells have scope."""
    table = cv.ReceptiveFieldTable(alex_probe)
    table.layer = "c2"
    names = [r[0] for r in table.rows[0]]
    page = open_widget(browser, tmp_path, table, "keyboard_rf", "light")
    try:
        assert page.evaluate("() => [...document.querySelectorAll('thead th')].every(th => th.scope === 'col')")
        assert page.evaluate("() => [...document.querySelectorAll('tbody th')].every(th => th.scope === 'row')")
        tab_to(page, "tbody tr")
        assert focused(page, "data-layer") == "c2" and focused(page, "aria-current") == "true"
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        want = names[names.index("c2") + 2]
        assert focused(page, "data-layer") == want
        page.keyboard.press("Enter")
        relay(page, table)
        assert table.layer == want
        assert focused(page, "data-layer") == want and focused(page, "aria-current") == "true"
        page.screenshot(path=str(ARTIFACTS / "keyboard_rf_row.png"))
    finally:
        page.close()


TOUCH_DRAG = """([x0, y0, x1, y1]) => {
    const m = document.querySelector('.cnnviz-sheet img');
    const at = (type, x, y, target) => target.dispatchEvent(new PointerEvent(type, { pointerId: 7, pointerType: 'touch',
        isPrimary: true, clientX: x, clientY: y, bubbles: true, cancelable: true, button: 0, buttons: type === 'pointerup' ? 0 : 1 }));
    at('pointerdown', x0, y0, m);
    for (let i = 1; i <= 5; i++) at('pointermove', x0 + (x1 - x0) * i / 5, y0 + (y1 - y0) * i / 5, m);
    at('pointerup', x1, y1, m);
}"""


def test_embedding_map_touch_drag_zooms_and_keyboard_selects(browser, alex_probe, photos, tmp_path):
    """A touch drag (pointer events, pointerType 'touch') zooms the map in Python; on the map the arrow keys
    move a cursor over the cells and Enter selects that cell's patch."""
    emap = cv.EmbeddingMap(alex_probe, photos[:3], layer="c3", n_patches=80, grid=6, cell=16)
    page = open_widget(browser, tmp_path, emap, "touch_emap", "light")
    try:
        box = page.locator(".cnnviz-sheet img").bounding_box()
        x, y, w, h = box["x"], box["y"], box["width"], box["height"]
        page.evaluate(TOUCH_DRAG, [x + 0.1 * w, y + 0.1 * h, x + 0.6 * w, y + 0.7 * h])
        sent, _ = relay(page, emap)
        assert [m["event"] for m in sent] == ["zoom"], sent
        assert not emap.error, emap.error
        assert emap.depth == 1 and emap.region != [0.0, 0.0, 1.0, 1.0]
        # the keyboard: Tab to the map, move the cursor, Enter selects
        tab_to(page, ".cnnviz-unitpick")
        for key in ("ArrowDown", "ArrowRight", "ArrowRight"):
            page.keyboard.press(key)
        page.screenshot(path=str(ARTIFACTS / "keyboard_emap_cursor.png"))
        page.keyboard.press("Enter")
        sent, _ = relay(page, emap)
        assert sent == [{"event": "select", "cell": [1, 2]}]
        assert emap.selected.get("cell") == [1, 2], emap.selected
    finally:
        page.close()


def test_progress_is_announced_at_start_and_end_only(browser, alex_probe, photos, tmp_path):
    """The status a screen reader hears changes when a job starts and when it ends, not with each progress
    tick; the note under the explorer's controls and the progress line are not live regions."""
    explorer = cv.DeconvExplorer(alex_probe, photos[:2])
    page = open_widget(browser, tmp_path, explorer, "quiet_explorer", "light")
    try:
        heard = page.evaluate("""() => {
            const said = document.querySelector('.cnnviz-busy [role=status]');
            const log = [];
            new MutationObserver(rs => rs.forEach(r => r.addedNodes.forEach(n => log.push(n.textContent))))
                .observe(said, { childList: true, characterData: true, subtree: true });
            window.heard = log;
            model.set('busy', true);
            for (let p = 0; p <= 1; p += 0.1) model.set('progress', p);
            model.set('busy', false);
            return new Promise(r => setTimeout(() => r(log), 50));
        }""")
        assert heard == ["working…", "done"], heard
        assert page.evaluate("() => [...document.querySelectorAll('.cnnviz-note, .cnnviz-busy')].every(e => !e.closest('[aria-live]'))")
    finally:
        page.close()


@pytest.mark.parametrize("name", ["explorer", "filter_grid", "embedding_map", "compare", "rf_table"])
def test_text_scale_scales_every_text(browser, widgets, tmp_path, name):
    """``text_scale`` (a projector: 1.5) scales the widget's texts; none is under 12 px at the default."""
    page = open_widget(browser, tmp_path, widgets[name], f"scale_{name}", "light")
    sizes = """() => [...document.querySelectorAll('.cnnviz *, .cnnviz-rf *')].filter(e => [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())
        && e.getClientRects().length && !e.closest('.cnnviz-sr')).map(e => parseFloat(getComputedStyle(e).fontSize))"""
    try:
        at1 = page.evaluate(sizes)
        assert min(at1) >= 12, sorted(at1)[:5]
        page.evaluate("() => model.set('text_scale', 1.5)")
        at15 = page.evaluate(sizes)
        assert min(at15) >= 18 and len(at15) == len(at1)
        page.screenshot(path=str(ARTIFACTS / f"text_scale_1.5_{name}.png"), full_page=True)
    finally:
        page.close()


@pytest.mark.parametrize("name, must", [
    ("explorer", ["reconstruction of astronaut at layer c4", "input: astronaut"]),
    ("compare", ["AlexNetPaper, layer c1:", "reconstruction of astronaut", "input: astronaut"]),
    ("timeline", ["reconstruction of astronaut at layer c1, step 150", "input: astronaut", "filters (c1) at step 150"]),
    ("filter_grid", ["of c2, each shown by its top patches", "filter "]),
])
def test_alt_texts_name_photo_layer_and_rule(browser, widgets, tmp_path, name, must):
    """A screen reader hears what each picture is: the photo, the layer (and step), the rule that drew it."""
    page = open_widget(browser, tmp_path, widgets[name], f"alt_{name}", "light")
    try:
        alts = page.evaluate("() => [...document.querySelectorAll('.cnnviz img')].map(i => i.alt)")
        for text in must:
            assert any(text in a for a in alts), (text, alts)
        assert not any(a in ("input", "input image", "reconstruction of the selected layer") for a in alts), alts
        rules = {"deconvnet", "guided", "gradient"}
        if name != "filter_grid":
            assert any(r in a for a in alts for r in rules), alts
    finally:
        page.close()
