"""Colours where JupyterLab's theme is missing: each widget on a bare page (no --jp-* variable, as static HTML,
Colab's output frame or a plain page give it), light and dark as the page prefers, and under VS Code's
theme variables. Every text keeps a contrast ratio of 4.5:1 or more, computed from the rendered colours."""
from __future__ import annotations

from pathlib import Path

import pytest
from pages import LOW_CONTRAST, browser, needs_chromium, open_widget, widgets  # noqa: F401 - fixtures


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = needs_chromium

# VS Code's own values for these variables (Dark Modern and Light Modern), as its notebook webview defines them
VSCODE = {
    "dark": {"editor-background": "#1f1f1f", "editor-foreground": "#cccccc", "descriptionForeground": "#9d9d9d",
             "editorWidget-background": "#202020", "input-background": "#313131", "panel-border": "#2b2b2b",
             "focusBorder": "#0078d4", "list-activeSelectionBackground": "#04395e", "errorForeground": "#f85149",
             "inputValidation-errorBackground": "#5a1d1d", "font-family": "system-ui, sans-serif"},
    "light": {"editor-background": "#ffffff", "editor-foreground": "#3b3b3b", "descriptionForeground": "#3b3b3b",
              "editorWidget-background": "#f8f8f8", "input-background": "#ffffff", "panel-border": "#e5e5e5",
              "focusBorder": "#005fb8", "list-activeSelectionBackground": "#e8e8e8", "errorForeground": "#a1260d",
              "inputValidation-errorBackground": "#f2dede", "font-family": "system-ui, sans-serif"},
}


def luminance(rgb: str) -> float:
    """Relative luminance of a CSS rgb() colour."""
    r, g, b = (float(v) / 255 for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
    f = lambda v: v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4  # noqa: E731
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", ["explorer", "filter_grid", "embedding_map", "compare", "rf_table", "message",
                                  "explorer offline", "embedding_map offline"])
def test_on_a_bare_page_every_text_reads_in_light_and_dark(browser, widgets, tmp_path, name, scheme):
    """Each widget, and as a saved page shows it without a kernel (its note and greyed controls)."""
    ARTIFACTS.mkdir(exist_ok=True)
    offline = name.endswith(" offline")
    name = name.replace(" ", "_")
    page = open_widget(browser, tmp_path, widgets[name.replace("_offline", "")], name, scheme, offline=offline)
    try:
        assert page.evaluate("() => getComputedStyle(document.documentElement).getPropertyValue('--jp-ui-font-color1')") == ""
        root = page.locator(".cnnviz, .cnnviz-rf").first
        page.screenshot(path=str(ARTIFACTS / f"bare_{name}_{scheme}.png"), full_page=True)
        bg = root.evaluate("e => getComputedStyle(e).backgroundColor")
        assert (luminance(bg) < 0.05) if scheme == "dark" else (luminance(bg) > 0.9), f"{scheme} page, background {bg}"
        # native controls (select, number box, slider) follow: dark ones on the dark palette
        assert root.evaluate("e => getComputedStyle(e).colorScheme") == ("dark" if scheme == "dark" else "normal")
        found = root.evaluate(f"(root, min) => ({LOW_CONTRAST})([root, min])", 4.5)
        assert found["n"] >= 3, found  # the texts were found
        if offline:
            assert "Not connected to a kernel" in root.locator(".cnnviz-offline").inner_text()
        assert not found["low"], f"{name}, {scheme}: text under 4.5:1: {found['low']}"
    finally:
        page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_in_vs_code_the_widgets_wear_its_theme(browser, widgets, tmp_path, scheme):
    """VS Code's notebook webview defines --vscode-* (and no --jp-*): the widget takes its background and text
    colours from them, and every text still reads."""
    variables = "; ".join(f"--vscode-{k}: {v}" for k, v in VSCODE[scheme].items())
    head = f"<style>html {{ {variables} }} body {{ background: var(--vscode-editor-background) }}</style>"
    for name in ("explorer", "message", "rf_table"):
        page = open_widget(browser, tmp_path, widgets[name], f"vscode_{name}", scheme, head)
        try:
            root = page.locator(".cnnviz, .cnnviz-rf").first
            page.screenshot(path=str(ARTIFACTS / f"vscode_{name}_{scheme}.png"), full_page=True)
            colours = root.evaluate("e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]")
            expect = page.evaluate("""() => { const d = document.createElement('div'); document.body.append(d);
                d.style.cssText = 'background: var(--vscode-editor-background); color: var(--vscode-editor-foreground)';
                const c = getComputedStyle(d); return [c.backgroundColor, c.color]; }""")
            assert colours == expect, (name, colours, expect)
            found = root.evaluate(f"(root, min) => ({LOW_CONTRAST})([root, min])", 4.5)
            assert found["n"] >= 3 and not found["low"], f"{name}, VS Code {scheme}: {found['low']}"
        finally:
            page.close()
