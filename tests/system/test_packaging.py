"""The wheel carries the widgets' JavaScript, so a user never needs Node or the source tree."""
from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import cnnviz_widgets as cv

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_the_js_modules(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("cnnviz_widgets-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for js in sorted((ROOT / "js").glob("*.[jc]s")):  # the modules and the styles
        assert f"cnnviz_widgets/js/{js.name}" in names, js.name
    assert "cnnviz_widgets/js/cnnviz.css" in names
    assert "cnnviz_widgets/widgets/deconv_explorer.py" in names
    assert not any(n.startswith(("tests/", "notebooks/", "benchmarks/")) for n in names)


def test_every_widget_module_is_joined_with_the_shared_helpers():
    """Each widget file is a module importing what it uses from ./_shared.js; esm() joins the two into the one
    self-contained module anywidget loads (no import left), and every widget ships the styles as _css."""
    import re

    from cnnviz_widgets.widgets.assets import css, esm

    shared = (ROOT / "js" / "_shared.js").read_text()
    exported = set(re.findall(r"^export (?:const|let|function|class) (\w+)", shared, re.M))
    for js in sorted((ROOT / "js").glob("*.js")):
        if js.name.startswith("_"):
            continue
        own = js.read_text()
        assert own.startswith("// @ts-check"), js.name
        imported = set()
        for names in re.findall(r'^import \{([^}]*)\} from "\./_shared\.js";$', own, re.M):
            imported |= {n.strip() for n in names.split(",")}
        used = {n for n in exported if re.search(rf"\b{n}\b", own.split("export default")[1])}
        assert imported == used, (js.name, imported ^ used)  # imports exactly what it uses
        source = esm(js.name)
        assert source.startswith(shared) and source.count("export default") == 1
        assert not re.search(r"^\s*import\b", source, re.M)  # nothing left for a Blob URL to resolve
        assert "innerHTML" not in source  # text from data goes through textContent only
        assert "document.head" not in source  # styles go through _css (marimo's shadow DOM)
    assert ".cnnviz-rf" in css() and ".cnnviz-tile-no" in css()
    for w in (cv.DeconvExplorer, cv.FilterGrid, cv.EmbeddingMap, cv.CompareModels, cv.ReceptiveFieldTable,
              cv.TrainingTimeline):
        assert w._css == css(), w


@pytest.mark.parametrize("problem, own, message", [
    ("unknown import", 'import { h, nope } from "./_shared.js";\nexport default {};\n', "imports ['nope'] that _shared.js does not export"),
    ("other import", 'import x from "./other.js";\nexport default {};\n', "imports something other than ./_shared.js"),
    ("clash", 'import { h } from "./_shared.js";\nconst pngURL = 1;\nexport default {};\n', "declares ['pngURL'], which _shared.js declares too"),
])
def test_a_module_that_cannot_be_joined_is_named(tmp_path, monkeypatch, problem, own, message):
    from cnnviz_widgets.widgets import assets

    (tmp_path / "_shared.js").write_text((ROOT / "js" / "_shared.js").read_text())
    (tmp_path / "w.js").write_text(own)
    monkeypatch.setattr(assets, "js_path", lambda name: tmp_path / name)
    with pytest.raises(RuntimeError, match=re.escape(f"js/w.js {message}")):
        assets.esm("w.js")


NOTEBOOK_STACK = ("anywidget", "ipywidgets", "IPython", "bqplot", "traitlets")


def test_kernels_and_the_cli_import_without_the_notebook_stack():
    """Scripts, torchrun ranks and GPU nodes use the kernels without Jupyter: importing the package (or
    mine_cli) loads no widget library; the widgets still come out of ``cv`` on first use."""
    code = (
        "import sys, cnnviz_widgets as cv, cnnviz_widgets.mine_cli\n"
        f"print(sorted(m for m in {NOTEBOOK_STACK!r} if m in sys.modules))\n"
        "assert {'DeconvExplorer', 'PatchGallery', 'SparsityChart'} <= set(dir(cv)) and set(cv.__all__) <= set(dir(cv))\n"
        "from cnnviz_widgets import PatchGallery\n"
        "assert PatchGallery is cv.FilterGrid and cv.DeconvExplorer.__module__ == 'cnnviz_widgets.widgets.deconv_explorer'\n"
        "try:\n    cv.DeconvExplorr\nexcept AttributeError as e:\n    print(e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded, missing = proc.stdout.splitlines()
    assert loaded == "[]", f"importing cnnviz_widgets loaded {loaded}"
    assert missing == "module 'cnnviz_widgets' has no attribute 'DeconvExplorr'"


def _typedef_keys(source: str, name: str) -> set[str]:
    """The keys of the object types in the JSDoc ``@typedef {...} name`` of a JS file (what tsc checks against)."""
    block = re.search(r"@typedef \{(.*?)\}\}? " + name + r"\b", source, re.S).group(1)
    keys = set(re.findall(r"(\w+): ", re.sub(r"^\s*\* ?", "", block, flags=re.M)))
    for shared in re.findall(r'import\("\./_shared\.js"\)\.(\w+Traits)', block):
        keys |= _typedef_keys((ROOT / "js" / "_shared.js").read_text(), shared)
    return keys


@pytest.mark.parametrize("widget, js", [("DeconvExplorer", "deconv_explorer.js"), ("FilterGrid", "filter_grid.js"),
                                        ("EmbeddingMap", "embedding_map.js"), ("CompareModels", "compare.js"),
                                        ("ReceptiveFieldTable", "rf_table.js"), ("TrainingTimeline", "timeline.js")])
def test_the_js_types_name_exactly_the_synced_traits(widget, js):
    """tsc checks each widget's model.get/set against its Traits typedef: that typedef must be the Python
    widget's synced traits, no more, no fewer, or the type check would pass on names that never arrive."""
    base = {"layout", "tabbable", "tooltip", "comm", "keys", "log"}
    traits = {n for n in getattr(cv, widget).class_traits(sync=True) if not n.startswith("_") and n not in base}
    assert _typedef_keys((ROOT / "js" / js).read_text(), "Traits") == traits
