"""cnnviz-widgets: look inside convolutional networks in Jupyter (Yu et al., Zeiler & Fergus)."""
from .errors import (
    CnnvizError,
    DeviceUnavailableError,
    ImageError,
    IndexOutOfRangeError,
    LayerNotFoundError,
    StoppedError,
    UnknownModelError,
    UnsupportedModelError,
    WeightsFileError,
    WeightsUnavailableError,
)
from .images import sample_images, to_display
from .imageset import ImageSet, load_images
from .kernels.embedding import RepresentationSpace, representation_space
from .kernels.mine import Mined, mine
from .kernels.sparsity import Sparsity, sparsity
from .kernels.topk import TopPatches, top_patches
from .models import banner, load_model, load_model_or_random
from .probe import Layer, Probe, ReceptiveField
from .widgets import (
    CompareModels, DeconvExplorer, EmbeddingMap, FilterGrid, PatchGallery, ReceptiveFieldTable, SparsityChart,
)

__version__ = "0.1.0"

from ._ipython import install as _install_ipython_errors  # noqa: E402

_install_ipython_errors()

__all__ = [
    "CnnvizError", "CompareModels", "DeconvExplorer", "EmbeddingMap", "FilterGrid", "DeviceUnavailableError", "ImageError", "ImageSet", "IndexOutOfRangeError", "Layer",
    "LayerNotFoundError", "Mined", "PatchGallery", "Probe", "ReceptiveField", "ReceptiveFieldTable", "RepresentationSpace", "Sparsity", "SparsityChart", "StoppedError", "TopPatches",
    "UnknownModelError", "UnsupportedModelError", "WeightsFileError", "WeightsUnavailableError",
    "banner", "load_images", "load_model", "load_model_or_random", "mine", "representation_space", "sample_images", "sparsity", "to_display",
    "top_patches",
]
