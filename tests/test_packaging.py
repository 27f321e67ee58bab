"""The wheel carries the widgets' JavaScript, so a user never needs Node or the source tree."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_the_js_modules(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("cnnviz_widgets-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for js in sorted((ROOT / "js").glob("*.js")):
        assert f"cnnviz_widgets/js/{js.name}" in names, js.name
    assert "cnnviz_widgets/widgets/deconv_explorer.py" in names
    assert not any(n.startswith(("tests/", "notebooks/", "benchmarks/")) for n in names)


def test_every_widget_module_is_joined_with_the_shared_helpers():
    from cnnviz_widgets.widgets._base import esm

    for js in sorted((ROOT / "js").glob("*.js")):
        if js.name.startswith("_"):
            continue
        source = esm(js.name)
        assert "function h(" in source and "export default" in source
        assert "innerHTML" not in source  # text from data goes through textContent only
        assert "import " not in source.split("export default")[0].replace("// ", "")  # no relative imports


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
