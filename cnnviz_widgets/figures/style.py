"""Colours, sizes and bounds every figure shares (a figure of W x H sheet pixels saves as a W x H PNG at DPI)."""
from __future__ import annotations

LABEL_COLOR = (128, 128, 128, 255)  # contrast 3.9:1 on white, 4.8:1 on JupyterLab Dark's #111

GRID_PIXELS = 40_000_000  # picture_grid's largest canvas (160 MB of RGBA): 8 x 5 pictures of 1,000 px

DPI = 100  # a figure of W x H sheet pixels saves as a W x H PNG

TEXT_COLOR = "#222222"

SOFT_COLOR = "#666666"  # second lines: receptive fields, captions

MARK_COLOR = "#d62728"  # the current layer's frame, the selected cell's box

# The charts' series (SparsityChart, MetricsChart, their saved figures) are told apart by more than hue, so that a
# greyscale handout or a reader who does not see red from blue still can: their colours differ in luminance (grey
# levels 100, 142, 138, 80; the old blue and red were 0.168 and 0.159 in relative luminance, one grey), their lines
# in dashes, and every second series' markers are hollow. Lines are 3:1 or more on white (WCAG's for graphics).
SERIES_COLORS = ["#2166ac", "#e66c00", "#33a02c", "#5e3c99"]
SERIES_TEXT = ["#2166ac", "#a04400", "#1d6b18", "#5e3c99"]  # their texts on a light page (axis names): 4.5:1 on white
SERIES_DASHES = ["solid", "dashed", "dotted", "dash_dotted"]  # bqplot's line_style names
SERIES_LINESTYLES = ["-", "--", ":", "-."]  # matplotlib's, the same dashes


def series_hollow(i: int) -> bool:
    """Whether series ``i``'s markers are hollow (every second series): a third cue beside luminance and dashes."""
    return i % 2 == 1


SHEET_MIN_PX = 8  # the smallest a sheet's text shrinks to fit its column (was 6-7 px); what does not fit is cut "…"

FIGURE_MIN_PT = 10  # the smallest text a matplotlib chart figure writes (ticks, keys): 8 pt did not read on a projector

FORMATS = (".png", ".svg", ".pdf")

FREE_WIDTH = 1600  # px: how wide a text may make a figure beyond its pictures (a title over one narrow column)

MAX_LINES = 8  # lines of one text (a caption wrapped at words, a name holding line breaks)

PLOT_WIDTH = 640  # px: the plot area the layer names are thinned for (about that of a 1280 px screen with Lab's sidebar open)

CHAR_WIDTH = 6.5  # px per character of an axis tick label, and the gap kept between two labels

LONG_TITLE = 200  # characters: a longer column title is cut in the middle rather than broken into lines

LEGEND_CHARS = 60  # a series label in Figure 6's legend (a fixed 800 px figure) is cut in the middle beyond this
