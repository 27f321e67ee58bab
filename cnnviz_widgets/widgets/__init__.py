"""Jupyter widgets (anywidget; bqplot for charts). They call the kernels and hold no math."""
from .charts import SparsityChart
from .deconv_explorer import DeconvExplorer
from .rf_table import ReceptiveFieldTable

__all__ = ["DeconvExplorer", "ReceptiveFieldTable", "SparsityChart"]
