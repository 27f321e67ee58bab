"""FilterGrid (paper Fig. 7, Fig. 3 column d): every filter of a layer shown by its top patches.

One mining pass finds the top-k patches of every conv layer; a page of filters travels as one
sprite sheet, so paging and zooming are cheap. Selecting a filter adds its patches large with the
reconstruction of each by the synced ``rule`` (computed for that filter only). A layer whose receptive field
tracing cannot give (an op below it the tracer cannot follow) has it measured by gradient support when it is
shown ("measuring…" meanwhile, bounded in time); one whose field is no box has no patches, and the widget says so.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import traitlets

from .. import checks
from ..errors import CnnvizError, IndexOutOfRangeError, short_repr
from ..kernels.mine import mine
from ..figures import field_label, filter_tile, filters_sheet, layers_sheet, sprite, tile_field
from ..probe.rules import WIDGET_RULE
from ._base import ReversingWidget, as_probe, message_field, within
from .assets import css, esm
from .picker import widget_images
from .encoding import png_bytes
from .layer_fields import layer_field, patch_layers


class FilterGrid(ReversingWidget):
    """Filters of one layer as tiles of their top patches; paged, zoomable, selectable, linkable."""

    _esm = esm("filter_grid.js")
    _css = css()

    layer_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)  # shared
    filters = traitlets.List(traitlets.Int()).tag(sync=True)  # shown, in order; [] = all, strongest first
    page = traitlets.Int(0).tag(sync=True)
    page_size = traitlets.Int(32).tag(sync=True)  # 4 rows of 8: the page and its detail fit a laptop screen
    n_pages = traitlets.Int(0).tag(sync=True)
    k = traitlets.Int(9).tag(sync=True)
    cell = traitlets.Int(24).tag(sync=True)  # pixels per patch in the sheet
    per_row = traitlets.Int(3).tag(sync=True)  # patches per row inside one filter's tile
    columns = traitlets.Int(8).tag(sync=True)  # tiles per row of the sheet
    sheet = traitlets.Bytes(b"").tag(sync=True)
    sheet_filters = traitlets.List(traitlets.Int()).tag(sync=True)
    selected = traitlets.Dict().tag(sync=True)  # {"layer", "filter"}; shared
    detail = traitlets.Bytes(b"").tag(sync=True)  # patches (top row) and reconstructions (bottom row)
    detail_values = traitlets.List(traitlets.Float()).tag(sync=True)
    sheet_for = traitlets.Dict().tag(sync=True)  # {"layer", "page"} the sheet now shown answers
    detail_for = traitlets.Dict().tag(sync=True)  # {"layer", "filter", "rule"} the detail now shown answers
    switches = traitlets.List(traitlets.Bool()).tag(sync=True)  # per layer of layer_names: a max-pool lies below it
    field = traitlets.Unicode("").tag(sync=True)  # the field the sheet's patches are cropped to, in words

    _detail: dict[str, Any] | None  # the detail shown, for save()

    def __init__(self, probe: Any, images: Any = None, layer: str | None = None, k: int = 9, page_size: int = 32,
                 rule: str = WIDGET_RULE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._probe, self._top, self._images, self._shown_view, self._restoring = None, {}, None, None, False
        self._detail = None
        with self.guard("Finding the top patches"):
            self._set_rule(rule)
            k = checks.positive_int("k", k, "a positive whole number of patches per filter")
            page_size = checks.positive_int("page_size", page_size, "a positive whole number of filters a page")
            self._probe = as_probe(probe)
            self.say_weights([self._probe])
            images = widget_images(images)
            convs, name = patch_layers(self._probe, layer)
            self._set_note()
            if name not in convs:
                convs.append(name)
            self._images = images
            self._top = mine(self._probe, images, top_layers=convs, k=k, sparsity=False, progress=self.report).top
            with self.hold_sync():
                self.k, self.page_size = k, page_size
                self.per_row = math.ceil(math.sqrt(k))
                self.layer_names = [n for n in self._probe.layer_names if n in self._top]
                self.switches = [self._probe.layer(n).switches for n in self.layer_names]
                self.layer = name
            self._render()

    def _set_note(self) -> None:
        """Which layers have no patches (measured: no box), and which have their field measured when shown."""
        p = self._probe
        assert p is not None  # made in __init__: nothing here runs without it
        blind = [l.name for l in p.layers if p.receptive_field(l.name) is None and not p.field_pending(l.name)]
        pending = [l.name for l in p.layers if p.field_pending(l.name)]
        few = lambda names: f"{', '.join(names[:3])}{', ...' if len(names) > 3 else ''}"  # noqa: E731
        parts = [self.weights_note().rstrip(".")] if self.weights_note() else []
        if blind:
            parts.append(f"{len(blind)} layer(s) have no receptive field, so no patches: {few(blind)}")
        if pending:
            parts.append(f"{len(pending)} layer(s) have a field tracing cannot follow, measured by gradient support "
                         f"when shown: {few(pending)}")
        self.note = "; ".join(parts)

    @property
    def top(self):
        """The TopPatches of the current layer."""
        return self._top.get(self.layer)

    @property
    def tops(self) -> dict:
        """Every layer mined so far (all conv layers at first), name -> TopPatches: what cv.figure_filters takes."""
        return dict(self._top)

    def _view(self) -> dict:
        return {"layer": self.layer, "filters": list(self.filters), "page": int(self.page), "page_size": int(self.page_size)}

    def _render(self) -> None:
        """Draw the current view (mining its layer first if needed), as a job: stoppable, never stale."""
        view = self._view()
        self.run_job("Drawing the filters", "view", lambda job: self._draw(view, job), self._show_sheet)

    def _draw(self, view: dict, job) -> dict:
        """The sheet of ``view``; mines the layer first when a linked slider moved to one not mined yet."""
        mined = {}
        top = self._top.get(view["layer"])
        if top is None:  # a pool, an fc: mine it now
            assert self._probe is not None  # made in __init__: nothing here runs without it
            name = self._probe.layer(view["layer"]).name
            top = self._top.get(name) or mine(self._probe, self._images, top_layers=[name], k=self.k, sparsity=False,
                                             progress=job.report).top[name]
            mined = {name: top, view["layer"]: top}
        # a field tracing could not give is measured first ("measuring…"), bounded; no box: the error names the op
        layer_field(self._probe, top.layer, job)
        if view["filters"]:
            bad = [f for f in view["filters"] if not 0 <= f < top.channels]
            if bad:
                raise IndexOutOfRangeError(f"filters {bad} are out of range: {view['layer']!r} has {top.channels} (0 to {top.channels - 1}).")
            order = list(view["filters"])
        else:
            order = [int(c) for c in np.argsort(-top.values[:, 0].numpy(), kind="stable")]
        size = max(1, view["page_size"])
        n_pages = max(1, math.ceil(len(order) / size))
        page = min(max(view["page"], 0), n_pages - 1)
        shown = order[page * size : (page + 1) * size]
        tiles = []
        for c in shown:
            job.check()
            tiles.append(filter_tile(top, c, self.per_row, self.cell))
        sheet = sprite(tiles, self.columns, tiles[0].shape[0] if tiles else self.cell, pad=6) if tiles else np.zeros((8, 8, 4), np.uint8)
        return {"mined": mined, "view": {**view, "page": page}, "n_pages": n_pages, "shown": shown, "sheet": png_bytes(sheet),
                "field": f"patches: {top.field_words()}", "measured": bool(job.status_text)}

    def _show_sheet(self, r: dict) -> None:
        if r.get("measured"):
            self._set_note()
        if r["mined"]:
            assert self._probe is not None  # made in __init__: nothing here runs without it
            self._top.update(r["mined"])
            self.layer_names = [n for n in self._probe.layer_names if n in self._top]
        self._shown_view = r["view"]
        with self.hold_sync():
            self.n_pages, self.page = r["n_pages"], r["view"]["page"]
            self.sheet_filters = r["shown"]
            self.sheet = r["sheet"]
            self.field = r["field"]
            self.sheet_for = {"layer": r["view"]["layer"], "page": r["view"]["page"]}

    def restore_inputs(self, job) -> None:
        if job.lane == "view" and self._shown_view is not None:
            self._restoring = True
            try:
                v = self._shown_view
                self.layer, self.filters, self.page, self.page_size = v["layer"], v["filters"], v["page"], v["page_size"]
            finally:
                self._restoring = False
        elif job.lane == "detail":
            shown = dict(self.detail_for)
            shown.pop("drawn", None)
            self.restore_rule(shown.pop("rule", ""))
            self.selected = shown

    _sizes = traitlets.validate("page_size", "cell", "per_row", "k")(within(1))
    _page = traitlets.validate("page")(within(0))

    @traitlets.observe("layer", "filters", "page", "page_size")
    def _on_view(self, change: dict) -> None:
        if self._probe is None or not self._top or change["old"] == change["new"] or self._restoring:
            return
        if change["name"] in ("layer", "filters") and self.page != 0:
            self.page = 0  # re-renders through this observer
            return
        if self._view() == self._shown_view:  # back to what is on screen (or the page clamp of a result)
            self.back_to_shown("view")
            return
        self._render()

    def rule_changed(self) -> None:
        if self.selected and self._probe is not None:
            self._request_detail(dict(self.selected))

    @traitlets.observe("selected")
    def _on_select(self, change: dict) -> None:
        sel = change["new"]
        shown = {k: v for k, v in self.detail_for.items() if k != "drawn"}
        if not sel or self._probe is None or {**sel, "rule": self.rule} == shown:  # what the detail shows
            return
        self._request_detail(sel)

    def _request_detail(self, sel: dict) -> None:
        sel = {k: v for k, v in sel.items() if k not in ("rule", "drawn")}
        name = sel.get("layer", self.layer)
        if not isinstance(name, str):
            self._show_error("Selecting a filter", CnnvizError(
                f"The browser sent {short_repr(sel)}, whose 'layer' is not a layer name; nothing was changed."))
            return
        top = self._top.get(name)
        if top is None:
            return
        rule = self.rule

        def compute(job) -> dict:
            c = message_field(sel, "filter", int)
            layer_field(self._probe, top.layer, job)
            if not 0 <= c < top.channels:
                raise IndexOutOfRangeError(f"filter {c} is out of range: 0 to {top.channels - 1}.")
            patches = [top.patch(c, i) for i in range(top.k) if int(top.image_index[c, i]) >= 0]
            recs, mode = self.displayed(list(top.reconstructions(c, rule=rule)))
            return {"png": png_bytes(sprite(patches + recs, len(patches), 64, pad=2)), "mode": mode,
                    "patches": patches, "recs": recs,
                    "values": [round(float(v), 4) for v in top.values[c, : len(patches)]],
                    "for": {"layer": name, "filter": c, "rule": rule, "drawn": self.drawn_by(rule, name, self._probe)}}

        def apply(r: dict) -> None:
            self._detail = r  # the pictures themselves, for save()
            with self.hold_sync():
                self.detail = r["png"]
                self.detail_values = r["values"]
                self.show_display(r["mode"])
                self.detail_for = r["for"]

        self.run_job("Reconstructing the filter's patches", "detail", compute, apply)

    def to_figure(self):
        """The page shown: its filters' tiles of top patches (numbered, at the current zoom), under the layer's name
        and receptive field; with a selected filter, its patches and their reconstructions below."""
        view = self._shown_view
        top = self._top.get(view["layer"]) if view else None
        if top is None:
            raise self.nothing_to_save("no page of filters is drawn")
        shown = list(self.sheet_filters)
        which = (f"filters {', '.join(map(str, shown))}" if view["filters"] else
                 f"page {view['page'] + 1} of {self.n_pages}, strongest first")
        sheet = filters_sheet(top.layer, top.receptive_field(), [(c, filter_tile(top, c, self.per_row, self.cell))
                                                                  for c in shown], columns=self.columns,
                              title=f"{which}; {top.k} top patches a filter", field=tile_field(top))
        r = self._detail
        if r is not None and self.selected and self.detail_for:  # the close-up stays shown when the page moves on
            f = r["for"]
            of = self._top.get(f["layer"])
            labels = [(f"#{i + 1}", f"{v:.2f}") for i, v in enumerate(r["values"])]
            layers_sheet([r["patches"], r["recs"]], labels, size=64, sheet=sheet, y0=sheet.bottom + 16,
                         title=f"filter {f['filter']} of {f['layer']} ({tile_field(of) if of else field_label(None)}): its top "
                               f"patches and their reconstructions ({f.get('drawn', f['rule'])}); {self.display}")
        return self.stamped(sheet)
