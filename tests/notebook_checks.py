"""What every notebook's run must show, whoever ran it (JupyterLab in tests/browser/test_notebooks_in_lab.py, where
each notebook runs once; nbclient in tests/system/test_notebooks.py): no error, a widget or a picture, and what each
notebook's own check cells printed."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOKS_DIR.rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)  # JupyterLab's autosave copies are not notebooks of ours

# cells run after a notebook's own, printing one line of JSON after a marker that its checks read
CHECKS = {
    "03_how_a_network_learns.ipynb": "import json\nprint('LEARNED', json.dumps({'accuracy': checkpoints.metrics['accuracy'], "
                                     "'change': checkpoints.weights_change(), 'error': timeline.error}))",
    # the answers checked as a student who read them right would give them, then the numbers the lesson's text reads
    "05_sanity_checks.ipynb": "import json\ncheck('c', round(similarity['c1'], 2), round(similarity['c1'], 2), 0.02)\n"
                              "check('f', 'gradcam' if similar_gradcam < similar_guided else 'guided', "
                              "'gradcam' if similar_gradcam < similar_guided else 'guided')\n"
                              "print('SANITY', json.dumps({'cascade': similarity, 'guided': similar_guided, "
                              "'gradcam': similar_gradcam, 'random': trained.random_weights}))",
}

BINDER_GIB = 2.0  # what Binder gives a session


def clean_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook as committed: outputs and widget state that a JupyterLab session saved into the working
    copy are dropped (CI checks the committed files are clean: .ci/run)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    return nb


def with_checks(path: Path) -> nbformat.NotebookNode:
    """The clean notebook with its check cells (if any) after its own."""
    nb = clean_notebook(path)
    if path.name in CHECKS:
        nb.cells.append(nbformat.v4.new_code_cell(CHECKS[path.name]))
    return nb


def printed(nb: nbformat.NotebookNode, marker: str) -> dict:
    """The JSON a check cell printed after ``marker``."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            if out.get("output_type") == "stream" and marker in text:
                return json.loads(text.split(marker, 1)[1])
    raise AssertionError(f"no output printed {marker}")


def check_outputs(path: Path, nb: nbformat.NotebookNode, peak_gib: float) -> None:
    """The executed notebook ``nb`` (from ``path``) and its kernel's peak memory pass every check of its own."""
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: {[(o.get('ename'), o.get('evalue')) for o in errors]}"
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets or path.name == "00_tour.ipynb", "each notebook shows at least one widget"
    assert widgets or [o for o in outputs if "image/png" in o.get("data", {})]
    errors_in_widgets = [o for o in outputs if "error" in str(o.get("data", {}).get("text/plain", "")).lower()
                         and "Widget" in str(o.get("data", {}).get("text/plain", ""))]
    assert not errors_in_widgets
    print(f"\n{path.name}: peak kernel memory {peak_gib:.2f} GiB")
    if path.name == "03_how_a_network_learns.ipynb":
        learned = printed(nb, "LEARNED")
        accuracy = learned["accuracy"]
        print(f"test accuracy over the steps: {[round(a, 2) for a in accuracy]}; the first layer's weights moved "
              f"{learned['change']:.0%}")
        assert accuracy[0] < 0.2 and max(accuracy) > 0.9 and accuracy[-1] > 0.9  # from chance (10 digits) to > 90%
        assert learned["change"] > 0.2  # the first layer's filters change measurably (by a fifth of their size)
        assert learned["error"] == ""
    if path.name == "05_sanity_checks.ipynb":
        sane = printed(nb, "SANITY")
        print(f"rank similarity down the cascade: {sane['cascade']}; two classes: guided {sane['guided']:.2f}, "
              f"Grad-CAM {sane['gradcam']:.2f} (random weights: {sane['random']})")
        cascade = list(sane["cascade"].values())
        assert all(-1 <= s <= 1 for s in cascade) and cascade[0] > cascade[-1]  # more re-drawn, less alike
        assert sane["guided"] > 0.8 > sane["gradcam"]  # guided backprop nearly class-blind, Grad-CAM not (the text)
    if path.name == "00_tour.ipynb":
        assert peak_gib < BINDER_GIB, f"the tour needs {peak_gib:.2f} GiB; Binder gives {BINDER_GIB:g} GiB"
