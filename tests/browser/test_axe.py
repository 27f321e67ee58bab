"""An accessibility scan of each widget with axe-core (from npm: `npm ci` puts it in node_modules), injected into
a bare page in Chromium, light and dark: no violation of impact "serious" or "critical" in the widget's root.
Lesser ones ("moderate", "minor") are listed in the failure message of a serious one, not failed on. And the
keyboard's focus is seen: Tab reaches each widget's keyed element, which shows an outline that stands out."""
from __future__ import annotations

from pathlib import Path

import pytest
from pages import axe, browser, needs_chromium, open_widget, tab_to, widgets  # noqa: F401 - browser, widgets are fixtures

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = needs_chromium


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", ["explorer", "filter_grid", "embedding_map", "compare", "rf_table", "message", "timeline"])
def test_no_serious_or_critical_violation(browser, widgets, tmp_path, name, scheme):
    page = open_widget(browser, tmp_path, widgets[name], f"axe_{name}", scheme)
    try:
        found = axe(page, ".cnnviz, .cnnviz-rf")
        bad = [v for v in found if v["impact"] in ("serious", "critical")]
        assert not bad, f"{name}, {scheme}: " + "\n".join(f"{v['impact']} {v['id']}: {v['help']}: {v['nodes'][:3]}" for v in found)
    finally:
        page.close()


# what takes the keyboard in each widget, beside its ordinary controls
KEYED = {"explorer": ".cnnviz-unitpick", "filter_grid": ".cnnviz-tile", "embedding_map": ".cnnviz-unitpick",
         "rf_table": "tbody tr", "compare": "select"}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", list(KEYED))
def test_keyboard_focus_is_seen(browser, widgets, tmp_path, name, scheme):
    """Tab reaches the widget's own keyed element (the unit picker, a tile, a table row), which shows a focus
    outline of 2 px or more in a colour of 3:1 or more against the page; screenshots for a person to look at."""
    page = open_widget(browser, tmp_path, widgets[name], f"focus_{name}", scheme)
    try:
        tab_to(page, KEYED[name])
        outline = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
            return [s.outlineStyle, parseFloat(s.outlineWidth), s.outlineColor, getComputedStyle(document.querySelector('.cnnviz, .cnnviz-rf')).backgroundColor]; }""")
        assert outline[0] not in ("none", "hidden") and outline[1] >= 2, outline
        assert contrast(outline[2], outline[3]) >= 3, outline
        page.screenshot(path=str(ARTIFACTS / f"focus_{name}_{scheme}.png"))
    finally:
        page.close()


def contrast(a: str, b: str) -> float:
    """WCAG contrast of two CSS rgb() colours."""
    def lum(c: str) -> float:
        r, g, b = (float(v) / 255 for v in c[c.index("(") + 1 : c.index(")")].split(",")[:3])
        f = lambda v: v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4  # noqa: E731
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b)
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
