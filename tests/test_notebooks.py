"""Every notebook runs top to bottom offline (empty TORCH_HOME, random weights) without error."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from conftest import clean_notebook
from nbclient import NotebookClient

NOTEBOOKS = sorted(p for p in (Path(__file__).resolve().parent.parent / "notebooks").rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)  # JupyterLab's autosave copies are not notebooks of ours



def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {"00_tour.ipynb", "01_receptive_fields.ipynb", "02_representation_space.ipynb", "03_what_each_layer_keeps.ipynb",
            "04_vgg_vs_alexnet.ipynb", "05_sparsity.ipynb", "06_filters.ipynb", "01_what_a_cnn_layer_keeps.ipynb",
            "02_bring_your_own_model.ipynb", "03_how_a_network_learns.ipynb"} <= names
    assert "05_sanity_checks.ipynb" in names  # classroom: the sanity checks of Adebayo et al. (issue 28)


# cells run after a notebook's own, printing one line of JSON after a marker that its test reads
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


def run_measuring_peak(path: Path) -> tuple[nbformat.NotebookNode, float]:
    """Run a notebook in a fresh kernel; return it with its outputs and the kernel's peak memory (GiB).

    VmHWM is the kernel's own high-water mark (ru_maxrss would carry over the size of the process
    that forked it, here pytest, through fork and exec).
    """
    nb = clean_notebook(path)
    if path.name in CHECKS:
        nb.cells.append(nbformat.v4.new_code_cell(CHECKS[path.name]))
    nb.cells.append(nbformat.v4.new_code_cell(
        "print('PEAK_RSS_KIB', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb, int(nb.cells[-1].outputs[0]["text"].split()[1]) / 2**20


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_offline(path, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    nb, peak = run_measuring_peak(path)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets or path.name == "00_tour.ipynb", "each notebook shows at least one widget"
    assert widgets or [o for o in outputs if "image/png" in o.get("data", {})]
    errors_in_widgets = [o for o in outputs if "error" in str(o.get("data", {}).get("text/plain", "")).lower()
                         and "Widget" in str(o.get("data", {}).get("text/plain", ""))]
    assert not errors_in_widgets
    print(f"\n{path.name}: peak kernel memory {peak:.2f} GiB")
    if path.name == "03_how_a_network_learns.ipynb":
        learned = json.loads(nb.cells[-2].outputs[0]["text"].split("LEARNED", 1)[1])
        accuracy = learned["accuracy"]
        print(f"test accuracy over the steps: {[round(a, 2) for a in accuracy]}; the first layer's weights moved "
              f"{learned['change']:.0%}")
        assert accuracy[0] < 0.2 and max(accuracy) > 0.9 and accuracy[-1] > 0.9  # from chance (10 digits) to > 90%
        assert learned["change"] > 0.2  # the first layer's filters change measurably (by a fifth of their size)
        assert learned["error"] == ""
    if path.name == "05_sanity_checks.ipynb":
        sane = json.loads(nb.cells[-2].outputs[-1]["text"].split("SANITY", 1)[1])
        print(f"rank similarity down the cascade: {sane['cascade']}; two classes: guided {sane['guided']:.2f}, "
              f"Grad-CAM {sane['gradcam']:.2f} (random weights: {sane['random']})")
        cascade = list(sane["cascade"].values())
        assert all(-1 <= s <= 1 for s in cascade) and cascade[0] > cascade[-1]  # more re-drawn, less alike
        assert sane["guided"] > 0.8 > sane["gradcam"]  # guided backprop nearly class-blind, Grad-CAM not (the text)
    if path.name == "00_tour.ipynb":
        assert peak < 2.0, f"the tour needs {peak:.2f} GiB; Binder gives 2 GiB"


def test_tour_fits_binder_with_vgg16_weights_loaded_from_the_cache(tmp_path, monkeypatch):
    """Binder budget (issue 6) on the real loading path: a VGG16-size checkpoint (random values, 528 MB)
    sits in TORCH_HOME where a download would have put it, so the tour reads it like ImageNet weights."""
    import torch
    from torchvision.models import VGG16_Weights

    import cnnviz_widgets as cv
    from cnnviz_widgets.models.weights import checkpoint_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    target = checkpoint_path(VGG16_Weights.IMAGENET1K_V1.url)
    target.parent.mkdir(parents=True)
    state = cv.load_model("vgg16", weights=None, seed=1).state_dict()
    torch.save(state, target)
    size_mb = target.stat().st_size / 1e6
    del state
    nb, peak = run_measuring_peak(NOTEBOOKS[[p.name for p in NOTEBOOKS].index("00_tour.ipynb")])
    texts = str([o.get("data", {}).get("text/markdown", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs])
    assert "ImageNet weights loaded" in texts, "the tour did not take the cached weights"
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    print(f"\ntour with a {size_mb:.0f} MB VGG16 checkpoint read from the cache: peak kernel memory {peak:.2f} GiB")
    assert 500 < size_mb < 560
    assert peak < 2.0, f"the tour needs {peak:.2f} GiB with VGG16 weights loaded; Binder gives 2 GiB"


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
