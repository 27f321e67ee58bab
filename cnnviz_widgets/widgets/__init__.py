"""Jupyter widgets (anywidget; bqplot for charts). They call the kernels and hold no math."""
from ..catalog import WIDGETS

# each imported `as` itself: exported, since __all__ is computed from the list
from .charts import SparsityChart as SparsityChart
from .compare import CompareModels as CompareModels
from .deconv_explorer import DeconvExplorer as DeconvExplorer
from .embedding_map import EmbeddingMap as EmbeddingMap
from .filter_grid import FilterGrid as FilterGrid
from .rf_table import ReceptiveFieldTable as ReceptiveFieldTable
from .timeline import TrainingTimeline as TrainingTimeline

PatchGallery = FilterGrid  # DESIGN's name for the same gallery of top patches

__all__ = list(WIDGETS)  # the package's list (cnnviz_widgets/catalog.py); a test checks each is defined here
