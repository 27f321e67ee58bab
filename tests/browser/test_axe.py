"""An accessibility scan of each widget with axe-core (from npm: `npm ci` puts it in node_modules), injected into
a bare page in Chromium, light and dark: no violation of impact "serious" or "critical" in the widget's root.
Lesser ones ("moderate", "minor") are listed in the failure message of a serious one, not failed on."""
from __future__ import annotations

import pytest
from pages import axe, browser, needs_chromium, open_widget, widgets  # noqa: F401 - browser, widgets are fixtures

pytestmark = needs_chromium


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", ["explorer", "filter_grid", "embedding_map", "compare", "rf_table", "message"])
def test_no_serious_or_critical_violation(browser, widgets, tmp_path, name, scheme):
    page = open_widget(browser, tmp_path, widgets[name], f"axe_{name}", scheme)
    try:
        found = axe(page, ".cnnviz, .cnnviz-rf")
        bad = [v for v in found if v["impact"] in ("serious", "critical")]
        assert not bad, f"{name}, {scheme}: " + "\n".join(f"{v['impact']} {v['id']}: {v['help']}: {v['nodes'][:3]}" for v in found)
    finally:
        page.close()
