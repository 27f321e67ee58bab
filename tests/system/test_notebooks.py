"""Notebooks: the tour run by nbclient with ImageNet-size weights read from the cache (Binder's memory), a user's
mistake in a cell shown as a message, not a traceback, and the classroom's pack: every question keyed and checked,
every lesson in the teacher's pages. (Each notebook itself runs once, in JupyterLab: tests/browser/test_notebooks_in_lab.py.)"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient
from notebook_checks import ANSWERS, CLASSROOM, NOTEBOOKS, answer_key, check_outputs, check_results, with_checks


def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {"00_tour.ipynb", "01_receptive_fields.ipynb", "02_representation_space.ipynb", "03_what_each_layer_keeps.ipynb",
            "04_vgg_vs_alexnet.ipynb", "05_sparsity.ipynb", "06_filters.ipynb", "01_what_a_cnn_layer_keeps.ipynb",
            "02_bring_your_own_model.ipynb", "03_how_a_network_learns.ipynb", "04_patches.ipynb", "05_sanity_checks.ipynb", "answers.ipynb"} <= names


def test_every_lesson_question_has_a_key_and_a_check():
    """Each answer cell of a lesson is filled by answers.ipynb, each lesson with answers checks them, and no key
    names a cell that is gone (the lessons' runs then exercise every check). Lessons 1 to 4 have such questions."""
    key = answer_key()
    seen = set()
    for path in NOTEBOOKS:
        if path.parent != CLASSROOM or path == ANSWERS:
            continue
        nb = nbformat.read(path, as_version=4)
        answers = [c.id for c in nb.cells if "answer" in c.metadata.get("tags", [])]
        assert answers or path.name[:2] not in {"01", "02", "03", "04"}, f"{path.name} has no auto-checked questions"
        assert check_results(nb)[0] >= len(answers)
        for cell_id in answers:
            assert (path.name, cell_id) in key, f"answers.ipynb has no key for {path.name} cell {cell_id}"
            seen.add((path.name, cell_id))
    assert set(key) == seen, f"keys for cells no lesson has: {sorted(set(key) - seen)}"


def run_measuring_peak(path: Path) -> tuple[nbformat.NotebookNode, float]:
    """Run a notebook in a fresh kernel with nbclient; return it with its outputs and the kernel's peak memory (GiB).

    A classroom lesson runs with the answer key filled in (with_checks). VmHWM is the
    kernel's own high-water mark (ru_maxrss would carry over the size of the process that forked it, here
    pytest, through fork and exec).
    """
    nb = with_checks(path)
    nb.cells.append(nbformat.v4.new_code_cell(
        "print('PEAK_RSS_KIB', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb, int(nb.cells[-1].outputs[0]["text"].split()[1]) / 2**20


# Every notebook runs once, in JupyterLab, where all its checks (check_outputs) are made on what Lab saved:
# tests/browser/test_notebooks_in_lab.py. Here: the tour on the weights-cache path, and errors as a user sees them.


def test_tour_fits_binder_with_vgg16_weights_loaded_from_the_cache(tmp_path, monkeypatch):
    """Binder budget (issue 6) on the real loading path: a VGG16-size checkpoint (random values, 528 MB)
    sits in TORCH_HOME where a download would have put it, so the tour reads it like ImageNet weights."""
    import torch
    from torchvision.models import VGG16_Weights

    import cnnviz_widgets as cv
    from cnnviz_widgets.models.weights import checkpoint_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    target = checkpoint_path(VGG16_Weights.IMAGENET1K_V1.url)
    target.parent.mkdir(parents=True)
    state = cv.load_model("vgg16", weights=None, seed=1).state_dict()
    torch.save(state, target)
    size_mb = target.stat().st_size / 1e6
    del state
    tour = NOTEBOOKS[[p.name for p in NOTEBOOKS].index("00_tour.ipynb")]
    nb, peak = run_measuring_peak(tour)
    texts = str([o.get("data", {}).get("text/markdown", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs])
    assert "ImageNet weights loaded" in texts, "the tour did not take the cached weights"
    check_outputs(tour, nb, peak)
    print(f"\ntour with a {size_mb:.0f} MB VGG16 checkpoint read from the cache: peak kernel memory {peak:.2f} GiB")
    assert 500 < size_mb < 560


def test_a_typo_in_a_notebook_shows_the_message_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import cnnviz_widgets as cv\nprobe = cv.Probe(cv.load_model('alexnet_paper', weights=None))"),
        nbformat.v4.new_code_cell("probe.deconvnet(probe.preprocess(cv.sample_images()[0][1]), layers='c33')"),
        nbformat.v4.new_code_cell("cv.load_model('vgg61')"),
        nbformat.v4.new_code_cell("1 / 0"),
    ]
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True).execute()
    typo, model, other = (c.outputs[0] for c in nb.cells[1:])
    assert typo.output_type == "error" and typo.ename == "LayerNotFoundError"
    assert len(typo.traceback) == 2 and "No layer 'c33'" in typo.traceback[0] and "Valid names: c1" in typo.traceback[0]
    assert model.ename == "UnknownModelError" and len(model.traceback) == 2
    assert len(other.traceback) > 2  # other exceptions keep IPython's full traceback


def test_the_teachers_pack_names_every_lesson():
    """The teacher's pack (goals and timings) and the page on running the class (memory per lesson) cover every
    lesson; the lessons link the glossary."""
    lessons = [p for p in NOTEBOOKS if p.parent == CLASSROOM and p != ANSWERS]
    for page in ("teachers.md", "running_the_class.md"):
        text = (CLASSROOM / page).read_text()
        assert not [p.name for p in lessons if f"({p.name})" not in text], f"{page} misses a lesson"
    for path in lessons:
        assert "](glossary.md" in "".join(c.source for c in nbformat.read(path, as_version=4).cells), path.name
