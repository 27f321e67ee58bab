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

BINDER_GIB = 2.0  # what Binder gives a session: the tour and every lesson must fit
CLASSROOM = NOTEBOOKS_DIR / "classroom"
ANSWERS = CLASSROOM / "answers.ipynb"  # the teacher's answer key: its cells tagged fills:<lesson>#<cell id>
# lesson 02 offers a list of torchvision CNNs; it is run with the one that needs the most memory (measured once
# over the list: densenet161 1.27 GiB, regnet_y_8gf 1.26, inception_v3 1.17, convnext_tiny 1.12, resnet50 1.08 GiB
# with this machine's CUDA build of PyTorch), so the measured peak holds for every offered model
HEAVIEST = {"02_bring_your_own_model.ipynb": "densenet161"}


def clean_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook as committed: outputs and widget state that a JupyterLab session saved into the working
    copy are dropped (CI checks the committed files are clean: .ci/run)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    return nb


def answer_key() -> dict[tuple[str, str], str]:
    """(lesson file, answer cell id) -> the source the answer key fills it with."""
    key = {}
    for cell in nbformat.read(ANSWERS, as_version=4).cells:
        for tag in cell.metadata.get("tags", []):
            if tag.startswith("fills:"):
                lesson, cell_id = tag[len("fills:"):].split("#")
                key[lesson, cell_id] = cell.source
    return key


def with_answers(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The lesson with the answer key pasted over its answer cells (every one must have a key), and, for lesson 02,
    the heaviest model it offers."""
    key = answer_key()
    for cell in nb.cells:
        if "answer" in cell.metadata.get("tags", []):
            assert (name, cell.id) in key, f"answers.ipynb has no key for {name} cell {cell.id}"
            cell.source = key[name, cell.id]
        if name in HEAVIEST and cell.source.startswith("MODEL = "):
            assert f'"{HEAVIEST[name]}"' in "".join(c.source for c in nb.cells), "the heaviest model left the list"
            cell.source = cell.source.replace(cell.source.split("\n")[0], f'MODEL = "{HEAVIEST[name]}"')
    return nb


def check_results(nb: nbformat.NotebookNode) -> tuple[int, list[str]]:
    """How many check(...) calls a lesson's check cells make, and the lines they printed."""
    cells = [c for c in nb.cells if c.cell_type == "code" and "check" in c.metadata.get("tags", [])]
    calls = sum(line.startswith("check(") for c in cells for line in c.source.splitlines())
    printed = [line for c in cells for o in c.get("outputs", []) if o.get("output_type") == "stream"
               for line in o.get("text", "").splitlines()]
    return calls, printed


def with_checks(path: Path) -> nbformat.NotebookNode:
    """The clean notebook as the tests run it: a classroom lesson with the answer key filled in, and its check
    cells (if any) after its own."""
    nb = clean_notebook(path)
    if path.parent == CLASSROOM and path != ANSWERS:
        nb = with_answers(nb, path.name)
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
    if path == ANSWERS:  # the key: markdown and the answers' values, nothing to show
        return
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets or path.name == "00_tour.ipynb", "each notebook shows at least one widget"
    assert widgets or [o for o in outputs if "image/png" in o.get("data", {})]
    errors_in_widgets = [o for o in outputs if "error" in str(o.get("data", {}).get("text/plain", "")).lower()
                         and "Widget" in str(o.get("data", {}).get("text/plain", ""))]
    assert not errors_in_widgets
    print(f"\n{path.name}: peak kernel memory {peak_gib:.2f} GiB")
    calls, said = check_results(nb)
    if calls:  # the lesson's auto-checked answers, filled from the key: each check says right
        print("\n".join(said))
        assert len([line for line in said if line.startswith("✔")]) == calls, said
    if path.parent == CLASSROOM:
        assert peak_gib < BINDER_GIB, f"{path.name} needs {peak_gib:.2f} GiB; Binder gives {BINDER_GIB:g} GiB"
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
