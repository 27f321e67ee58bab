"""EmbeddingMap (paper Fig. 3 a-c): a layer's representation space as one mosaic of patches.

Hover a cell to see its patch large; click to select that unit (its strongest filters go to the
``filters`` trait, which a linked FilterGrid shows); drag a rectangle to zoom, where the kernel
re-lays the region at full grid resolution; Back returns to the previous view.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import traitlets

from .. import checks
from ..errors import CnnvizError, short_repr
from ..kernels.embedding import RepresentationSpace, representation_space
from ..figures import Sheet, field_label
from ._base import CnnvizWidget, as_probe, message_field, within
from .assets import css, esm
from .picker import widget_images
from .encoding import png_bytes
from .layer_fields import layer_field, patch_layers


class EmbeddingMap(CnnvizWidget):
    """t-SNE layout of sampled patches on a grid; hover, click to select, drag to zoom, Back to return."""

    _esm = esm("embedding_map.js")
    _css = css()

    layer = traitlets.Unicode("").tag(sync=True)
    grid = traitlets.Int(40).tag(sync=True)
    cell = traitlets.Int(20).tag(sync=True)
    mosaic = traitlets.Bytes(b"").tag(sync=True)
    grid_index = traitlets.List(traitlets.List(traitlets.Int())).tag(sync=True)
    region = traitlets.List(traitlets.Float(), [0.0, 0.0, 1.0, 1.0]).tag(sync=True)
    depth = traitlets.Int(0).tag(sync=True)  # how many zooms deep (Back is possible when > 0)
    selected = traitlets.Dict().tag(sync=True)  # {"layer", "unit", "image", "image_name", "y", "x", "cell"}; shared
    filters = traitlets.List(traitlets.Int()).tag(sync=True)  # strongest filters at the selected unit; link to FilterGrid
    patch_png = traitlets.Bytes(b"").tag(sync=True)

    shown_layer = traitlets.Unicode("").tag(sync=True)  # the layer the mosaic now shown belongs to

    _stack: list[RepresentationSpace]  # the spaces zoomed out of, last the one before the shown
    _mosaic: np.ndarray | None  # the mosaic shown, for save(); None before the first

    def __init__(self, probe: Any, images: Any = None, layer: str | None = None, n_patches: int = 2000,
                 grid: int = 30, cell: int = 20, n_filters: int = 6, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._space, self._stack, self._n_filters, self._probe, self._mosaic = None, [], 6, None, None
        with self.guard("Embedding the representation space"):
            self._n_filters = checks.positive_int("n_filters", n_filters)
            cell = checks.positive_int("cell", cell, "a positive whole number of pixels")

            probe = as_probe(probe)
            self.say_weights([probe])
            images = widget_images(images)
            _, name = patch_layers(probe, layer)
            layer_field(probe, name, say=self._say)  # measured here if tracing gave no field (bounded)
            self._options = {"images": images, "n_patches": n_patches, "grid": grid, "seed": seed}
            space = representation_space(probe, images, name, n_patches=n_patches, grid=grid, seed=seed,
                                         progress=self.report)
            with self.hold_sync():
                self.layer, self.grid, self.cell = name, space.grid, cell
                self._show_new(space)
            self._probe = probe

    @traitlets.observe("layer")
    def _on_layer(self, change: dict) -> None:
        """A linked layer slider moved: embed that layer (a job: stoppable, dropped if the slider moves on)."""
        if self._probe is None or change["old"] == change["new"]:
            return
        if change["new"] == self.shown_layer:
            self.back_to_shown("view")
            return
        name, o = change["new"], self._options

        def compute(job):
            layer_field(self._probe, name, job)  # "measuring…" first where tracing gave no field
            return representation_space(self._probe, o["images"], name, n_patches=o["n_patches"], grid=o["grid"],
                                        seed=o["seed"], progress=job.report)

        self.run_job("Embedding the representation space", "view", compute, self._show_new)

    def restore_inputs(self, job) -> None:
        if job.lane == "view" and self.shown_layer:
            self.layer = self.shown_layer

    def _show_new(self, space) -> None:
        """A freshly embedded layer: the zoom history starts over."""
        self._stack = []
        with self.hold_sync():
            self._show(space)
            self.shown_layer = space.layer
            self.selected, self.filters, self.patch_png = {}, [], b""

    @property
    def space(self):
        """The RepresentationSpace now shown (zoomed or whole)."""
        return self._space

    def _show(self, space) -> None:
        with self.hold_sync():
            self._space = space
            self._mosaic = space.mosaic(cell=self.cell)  # the picture itself, for save()
            self.mosaic = png_bytes(self._mosaic)
            self.grid_index = space.grid_index.tolist()
            self.region = list(space.region)
            self.depth = len(self._stack)

    _sizes = traitlets.validate("grid", "cell")(within(1))

    def zoom_into(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """Zoom into the rectangle between corners (x0, y0) and (x1, y1), fractions of the view now shown (0 =
        left/top, 1 = right/bottom; corners in any order): what a drag on the map does."""
        if self._space is None:
            return
        with self.guard("Zooming in"):
            corners = [float(v) for v in (x0, y0, x1, y1)]
            if not all(math.isfinite(v) for v in corners):
                raise CnnvizError(f"The corners of a zoom must be finite fractions of the view, got {short_repr(corners)}.")
            x0, y0, x1, y1 = self._space.region
            (fx0, fx1), (fy0, fy1) = sorted(corners[0::2]), sorted(corners[1::2])
            fx0, fy0, fx1, fy1 = (min(max(v, 0.0), 1.0) for v in (fx0, fy0, fx1, fy1))
            if fx1 - fx0 < 1e-3 or fy1 - fy0 < 1e-3:
                raise CnnvizError("Drag a rectangle (not a point) to zoom in.")
            region = (x0 + fx0 * (x1 - x0), y0 + fy0 * (y1 - y0), x0 + fx1 * (x1 - x0), y0 + fy1 * (y1 - y0))
            self._stack.append(self._space)
            self._show(self._space.zoom(*region))

    def zoom_out(self) -> None:
        """Back to the view before the last zoom (Back does this); nothing at the whole map."""
        if self._stack:
            with self.guard("Zooming out"):
                self._show(self._stack.pop())

    def select(self, row: int, col: int) -> None:
        """Select the unit shown in grid cell (row, col), as a click does."""
        with self.guard("Selecting a patch"):
            if self._space is None:
                raise CnnvizError("Nothing is embedded yet.")
            g = self._space.grid
            if not (0 <= row < g and 0 <= col < g):
                raise CnnvizError(f"cell ({row}, {col}) is outside the {g}x{g} grid.")
            i = int(self._space.grid_index[row, col])
            img, y, x = (int(v) for v in self._space.units[i])
            with self.hold_sync():
                self.patch_png = png_bytes(self._space.patch(i))
                self.filters = self._space.top_filters(i, k=self._n_filters)
                self.selected = {"layer": self._space.layer, "unit": i, "image": img, "y": y, "x": x, "cell": [row, col],
                                 "image_name": self._options["images"].names[img]}

    def browser_events(self) -> dict:
        return {
            "select": ("Selecting a patch", self._select_message),
            "zoom": ("Zooming in", lambda m: self.zoom_into(*(message_field(m, k, float) for k in ("x0", "y0", "x1", "y1")))),
            "back": ("Zooming out", lambda m: self.zoom_out()),
        }

    def _select_message(self, message: dict) -> None:
        cell = message.get("cell")
        if not (isinstance(cell, (list, tuple)) and len(cell) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) for v in cell)):
            raise CnnvizError(f"The browser sent the cell {short_repr(cell)}; a cell is [row, column] in whole numbers. "
                              f"Nothing was selected.")
        self.select(*cell)

    def link(self, grid) -> None:
        """Make ``grid`` (a FilterGrid) follow this map: same layer, and the selected unit's strongest filters."""
        traitlets.dlink((self, "layer"), (grid, "layer"))
        traitlets.dlink((self, "filters"), (grid, "filters"))

    def marked_cell(self) -> tuple[int, int] | None:
        """The grid cell that shows the selected unit in the view now shown (the one clicked if it still does),
        or None where no cell shows it: what the browser marks (js/embedding_map.js markedCell)."""
        sel, space = self.selected, self._space
        if space is None or not isinstance(sel.get("unit"), int):
            return None
        cell = sel.get("cell")
        g = space.grid_index
        if isinstance(cell, list) and len(cell) == 2 and 0 <= cell[0] < g.shape[0] and 0 <= cell[1] < g.shape[1] \
                and int(g[cell[0], cell[1]]) == sel["unit"]:
            return int(cell[0]), int(cell[1])
        found = (g == sel["unit"]).nonzero()
        return (int(found[0][0]), int(found[1][0])) if len(found[0]) else None

    def to_figure(self):
        """The mosaic shown (the current zoom), under the layer's name, receptive field and region; with a selected
        patch, its cell framed and the patch beside the mosaic with its picture and strongest filters."""
        space, mosaic = self._space, self._mosaic
        if space is None or mosaic is None:
            raise self.nothing_to_save("no representation space is embedded")
        rf = self._probe.receptive_field(space.layer) if self._probe is not None else None
        x0, y0, x1, y1 = space.region
        where = "the whole space" if self.depth == 0 else f"zoomed to x {x0:.2f}-{x1:.2f}, y {y0:.2f}-{y1:.2f}"
        sheet = Sheet()
        wide = rf is not None and space.field_kind == "effective"
        label = field_label(rf, self._probe.input_size, space.patch_field()) if wide else field_label(rf)
        sheet.text(f"{space.layer} ({label}): representation space, {space.grid}x{space.grid} cells, {where}",
                   0, 0, px=14, ha="left", bold=True)
        sheet.picture(mosaic, 0, 24)
        sel = self.selected
        if sel.get("layer") == space.layer and isinstance(sel.get("unit"), int) and self.patch_png:
            cell = self.marked_cell()
            if cell is not None:  # the selected unit where the view now shows it (none: zoomed away from it)
                h, w = mosaic.shape[0] / space.grid, mosaic.shape[1] / space.grid
                sheet.frame(cell[1] * w, 24 + cell[0] * h, w, h)
            x = mosaic.shape[1] + 16
            sheet.picture(space.patch(int(sel["unit"])), x, 24, 128)
            where = f" ({sel['y']}, {sel['x']})" if "y" in sel and "x" in sel else ""
            sheet.text(f"{sel.get('image_name', '')}{where}", x, 24 + 134, px=11, ha="left")
            sheet.text("strongest filters: " + ", ".join(map(str, self.filters)), x, 24 + 152, px=11, ha="left")
        return self.stamped(sheet)
