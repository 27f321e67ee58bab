"""cnnviz-widgets: look inside convolutional networks in Jupyter (Yu et al., Zeiler & Fergus)."""
from typing import TYPE_CHECKING, Any

from .errors import (
    CheckpointError,
    CnnvizError,
    CnnvizWarning,
    DeviceUnavailableError,
    ImageError,
    IndexOutOfRangeError,
    LabelNotFoundError,
    LayerNotFoundError,
    StoppedError,
    UnknownModelError,
    UnsupportedModelError,
    WeightsFileError,
    WeightsUnavailableError,
)
from .catalog import WIDGETS as _WIDGETS
from .display import to_display
from .figures import (
    figure_class_maps, figure_compare, figure_filters, figure_layers, figure_sparsity, figure_timeline, picture_grid,
    save_figure,
)
from .images import sample_images
from .imageset import ImageSet, load_images
from .kernels.checkpoints import CheckpointRecorder, Checkpoints
from .kernels.embedding import RepresentationSpace, representation_space
from .kernels.mine import Mined, mine, sparsity, top_patches
from .kernels.options import StreamOptions
from .kernels.sparsity import Sparsity
from .kernels.topk import TopPatches
from .models import banner, load_model, load_model_or_random
from .probe import Layer, Probe, ReceptiveField, randomize_layers

if TYPE_CHECKING:
    from .widgets import CompareModels as CompareModels  # (as: exported, the widgets are not imported here)
    from .widgets import DeconvExplorer as DeconvExplorer
    from .widgets import EmbeddingMap as EmbeddingMap
    from .widgets import FilterGrid as FilterGrid
    from .widgets import PatchGallery as PatchGallery
    from .widgets import ReceptiveFieldTable as ReceptiveFieldTable
    from .widgets import SparsityChart as SparsityChart
    from .widgets import TrainingTimeline as TrainingTimeline

# The widgets are re-exported on first use (PEP 562): the kernels, mine_cli on a cluster's ranks and
# scripts on a GPU node then import neither the notebook stack (anywidget, ipywidgets, IPython) nor
# bqplot, which together cost 0.8 s of the import and are often not installed there.
# (the list: catalog.py; the TYPE_CHECKING import above names them for editors and type checkers, and a test
# holds it to the list)


def __getattr__(name: str) -> Any:
    if name in _WIDGETS:
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'cnnviz_widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WIDGETS))


__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "CheckpointRecorder", "Checkpoints", "CnnvizError", "CnnvizWarning", "DeviceUnavailableError",
    "ImageError", "ImageSet", "IndexOutOfRangeError", "LabelNotFoundError", "Layer", "LayerNotFoundError", "Mined",
    "Probe", "ReceptiveField", "RepresentationSpace", "Sparsity", "StoppedError", "StreamOptions", "TopPatches",
    "UnknownModelError", "UnsupportedModelError", "WeightsFileError", "WeightsUnavailableError",
    "banner", "figure_class_maps", "figure_compare", "figure_filters", "figure_layers", "figure_sparsity",
    "figure_timeline", "load_images", "load_model", "load_model_or_random", "mine", "picture_grid", "randomize_layers",
    "representation_space", "sample_images", "save_figure", "sparsity", "to_display", "top_patches",
    *_WIDGETS,
]
