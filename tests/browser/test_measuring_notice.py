"""The "measuring…" state in the browser: while a job measures a receptive field tracing could not give, the busy
line says so in place of "working…", and it goes when the job ends (tests/probe/test_measured_fields.py drives the kernel
side)."""
from __future__ import annotations

from pages import browser, needs_chromium, write_bare_page  # noqa: F401 - browser is a fixture

import torch
from torch import nn

import cnnviz_widgets as cv

pytestmark = needs_chromium

MEASURING = "measuring the receptive field of c3… (tracing cannot follow roll)"


def test_the_busy_line_says_which_field_is_being_measured(browser, photos, tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1)).eval()
    w = cv.FilterGrid(cv.Probe(net, input_size=32), photos[:2], layer="c1", k=2)
    assert w.error == ""
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(write_bare_page(tmp_path, "measuring", w))
        page.wait_for_function("() => window.rendered === true", timeout=30_000)
        busy = "() => document.querySelector('.cnnviz-busy').firstChild.textContent"  # the label before ■ stop
        page.evaluate("t => { window.model.set('notice', t); window.model.set('progress', 0); window.model.set('busy', true); }",
                      MEASURING)
        assert page.evaluate(busy).startswith(MEASURING + " 0%")
        assert "working" not in page.evaluate(busy)
        page.evaluate("() => { window.model.set('notice', ''); window.model.set('busy', false); }")
        assert page.evaluate(busy).strip() == ""
        page.evaluate("() => { window.model.set('busy', true); }")  # any other job: "working…" as before
        assert page.evaluate(busy).startswith("working… 0%")
        assert not errors, errors
    finally:
        page.close()
