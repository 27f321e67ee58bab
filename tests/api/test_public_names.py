"""The public names: every name in DESIGN.md's API and the package's __all__ resolves, and the widgets come from
one list (cnnviz_widgets/catalog.py) that both __init__ files and the editors' TYPE_CHECKING import agree with."""
from __future__ import annotations

import ast
from pathlib import Path

import anywidget

import cnnviz_widgets as cv
from cnnviz_widgets import widgets
from cnnviz_widgets.catalog import WIDGETS

ROOT = Path(cv.__file__).resolve().parent


def test_every_exported_name_resolves():
    assert len(set(cv.__all__)) == len(cv.__all__)
    for name in cv.__all__:
        assert getattr(cv, name) is not None, name
    assert set(WIDGETS) <= set(cv.__all__) and set(WIDGETS) <= set(dir(cv))


def test_the_widgets_come_from_one_list():
    assert widgets.__all__ == list(WIDGETS)
    for name in WIDGETS:
        assert getattr(cv, name) is getattr(widgets, name)
        assert issubclass(getattr(widgets, name), anywidget.AnyWidget) or name == "SparsityChart"  # bqplot's Figure
    tree = ast.parse((ROOT / "__init__.py").read_text())
    typed = {a.name for node in ast.walk(tree) if isinstance(node, ast.If)
             for inner in node.body if isinstance(inner, ast.ImportFrom) and inner.module == "widgets"
             for a in inner.names}
    assert typed == set(WIDGETS), "the TYPE_CHECKING import in __init__.py names other widgets than catalog.WIDGETS"


def test_every_widget_in_the_package_is_listed():
    """A widget class defined under widgets/ but missing from the list would not be exported."""
    defined = {name for name in dir(widgets) if isinstance(getattr(widgets, name), type)
               and getattr(getattr(widgets, name), "__module__", "").startswith("cnnviz_widgets.widgets")}
    assert defined <= set(WIDGETS), defined - set(WIDGETS)


def test_design_api_names_resolve(tiny):
    """The names DESIGN.md gives as the public API (a contract for checks outside the repository)."""
    for name in ("load_model", "Probe", "sample_images", "load_images", "sparsity", "top_patches",
                 "representation_space", "to_display", "DeconvExplorer", "PatchGallery", "FilterGrid", "EmbeddingMap",
                 "CompareModels", "SparsityChart", "Checkpoints", "CheckpointRecorder", "TrainingTimeline",
                 "WeightsUnavailableError", "LayerNotFoundError", "UnsupportedModelError", "CnnvizError"):
        assert hasattr(cv, name), name
    for method in ("layers", "layer_names", "receptive_field", "preprocess", "to_image", "activations", "deconvnet",
                   "reconstruct", "predict", "output_layer", "class_map"):
        assert hasattr(cv.Probe(tiny, device="cpu", input_size=32), method), method
