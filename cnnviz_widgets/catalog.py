"""The public widgets by name: the one list that ``cnnviz_widgets`` (which imports them on first use) and
``cnnviz_widgets.widgets`` (which defines them) both take their exports from. A new widget is a line here, its
module in widgets/ with its import in widgets/__init__.py, and its ES module in js/ (CONTRIBUTING.md)."""

WIDGETS: tuple[str, ...] = (
    "CompareModels", "DeconvExplorer", "EmbeddingMap", "FilterGrid", "PatchGallery", "ReceptiveFieldTable",
    "SparsityChart", "TrainingTimeline",
)
