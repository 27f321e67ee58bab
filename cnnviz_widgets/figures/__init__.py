"""Figures: every way cnnviz lays pictures out for reading, on the kernel side (no widget is imported here).

- :func:`sprite`: tiles in one RGBA sheet with clear gutters (the widgets' galleries travel as these).
- :func:`picture_grid`: the paper's Figure 4 layout as one PIL picture for a notebook, labels drawn in a mid grey
  on a clear background, so it reads in a light and a dark theme alike.
- :func:`figure_layers`, :func:`figure_compare`, :func:`figure_sparsity`, :func:`figure_filters`: the paper's
  Figures 4-7 (and :func:`figure_timeline`: one network's checkpoints over its training) as matplotlib figures
  with their text as text, and :func:`save_figure` to write them (or a
  picture_grid) as PNG, SVG or PDF. The widgets' ``save(path)`` compose what they show with the same pieces
  (:class:`Sheet`, :func:`layers_sheet`, :func:`compare_sheet`, :func:`filters_sheet`, :func:`sparsity_figure`).

matplotlib is imported on first use only, so importing the package stays light. One module a job: :mod:`.style` (colours, sizes, bounds), :mod:`.text` (fitting text), :mod:`.sprites` (pictures
without matplotlib), :mod:`.sheet` (the pixel layout), :mod:`.layout` (the paper's layouts from ready pictures),
:mod:`.paper` (the paper's figures from a probe), :mod:`.save` (files)."""
from .layout import (  # noqa: F401 - the package's names, as before it was split
    _name_height,
    column_titles,
    compare_sheet,
    depths,
    displayed,
    field_label,
    field_words,
    filters_sheet,
    layers_sheet,
    metrics_caption,
    metrics_figure,
    sees_whole_picture,
    sparsity_figure,
    thinned,
    tile_field,
    timeline_steps,
    titles_height,
)
from .paper import (  # noqa: F401 - the package's names, as before it was split
    _probe,
    _strip,
    compare_rows,
    figure_class_maps,
    figure_compare,
    figure_filters,
    figure_layers,
    figure_sparsity,
    figure_timeline,
    matching_layers,
    model_names,
    models_rule_words,
    paper_layers,
    sparsity_series,
)
from .save import (  # noqa: F401 - the package's names, as before it was split
    _umask,
    figure_bytes,
    figure_path,
    figure_scale,
    save_figure,
)
from .sheet import (  # noqa: F401 - the package's names, as before it was split
    Sheet,
    _figure_class,
)
from .sprites import (  # noqa: F401 - the package's names, as before it was split
    _as_picture,
    _fit,
    _font,
    filter_sheet,
    filter_tile,
    on_white,
    picture_grid,
    sprite,
)
from .style import (  # noqa: F401 - the package's names, as before it was split
    CHAR_WIDTH,
    DPI,
    FORMATS,
    FREE_WIDTH,
    GRID_PIXELS,
    LABEL_COLOR,
    LEGEND_CHARS,
    LONG_TITLE,
    MARK_COLOR,
    MAX_LINES,
    PLOT_WIDTH,
    SERIES_COLORS,
    SERIES_DASHES,
    SERIES_LINESTYLES,
    SERIES_TEXT,
    series_hollow,
    SOFT_COLOR,
    TEXT_COLOR,
)
from .text import (  # noqa: F401 - the package's names, as before it was split
    _SPLIT,
    _UNPRINTABLE,
    _measurer,
    fitting_px,
    middle_cut,
    predictions_text,
    printable,
    text_width,
    title_lines,
    wrapped,
)
