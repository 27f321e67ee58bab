"""Jupyter widgets (anywidget; bqplot for charts). They call the kernels and hold no math."""
from .charts import SparsityChart
from .compare import CompareModels
from .deconv_explorer import DeconvExplorer
from .embedding_map import EmbeddingMap
from .filter_grid import FilterGrid
from .rf_table import ReceptiveFieldTable
from .timeline import TrainingTimeline

PatchGallery = FilterGrid  # DESIGN's name for the same gallery of top patches

__all__ = ["CompareModels", "DeconvExplorer", "EmbeddingMap", "FilterGrid", "PatchGallery", "ReceptiveFieldTable",
           "SparsityChart", "TrainingTimeline"]
