"""cnnviz-widgets: look inside convolutional networks in Jupyter (Yu et al., Zeiler & Fergus)."""
from .errors import (
    CnnvizError,
    DeviceUnavailableError,
    ImageError,
    IndexOutOfRangeError,
    LayerNotFoundError,
    UnknownModelError,
    UnsupportedModelError,
    WeightsFileError,
    WeightsUnavailableError,
)
from .images import sample_images, to_display
from .models import load_model
from .probe import Layer, Probe, ReceptiveField

__version__ = "0.1.0"

__all__ = [
    "CnnvizError", "DeviceUnavailableError", "ImageError", "IndexOutOfRangeError", "Layer",
    "LayerNotFoundError", "Probe", "ReceptiveField", "UnknownModelError", "UnsupportedModelError",
    "WeightsFileError", "WeightsUnavailableError", "load_model", "sample_images", "to_display",
]
