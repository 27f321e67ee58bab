"""ReceptiveFieldTable (paper Tables 1 and 2): size and stride of every layer, one or two models.

The size is the theoretical receptive field (Tables 1-2). Where it is wider than the picture and ``images=`` is
given, an "effective" column gives the effective field measured over up to eight of them ("whole picture", or its
size: :func:`cnnviz_widgets.kernels.effective.effective_field`), which is what FilterGrid crops those patches to."""
from __future__ import annotations

from typing import Any

import traitlets

from ._base import CnnvizWidget, as_probe

from .assets import css, esm


class ReceptiveFieldTable(CnnvizWidget):
    """A table of receptive fields; give two probes (a dict label -> probe) to set them side by side."""

    _esm = esm("rf_table.js")
    _css = css()

    models = traitlets.List(traitlets.Unicode()).tag(sync=True)
    rows = traitlets.List(traitlets.List(traitlets.List())).tag(sync=True)  # per model: [name, kind, size, stride]
    # (a stride below one pixel, after upsampling, is a string such as "1/2"; "?" where there is no field)
    effective = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)  # per model, per row: "" where the
    # field fits the picture or images= was not given, else "whole picture" or the effective field's size ("143")
    # measured over images=
    input_sizes = traitlets.List(traitlets.Int()).tag(sync=True)  # per model: the picture's side
    layer = traitlets.Unicode("").tag(sync=True)  # shared: the highlighted layer

    def __init__(self, probes: Any, include_fc: bool = False, images: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        with self.guard("Reading receptive fields"):
            if not isinstance(probes, dict):
                probes = {type(getattr(probes, "model", probes)).__name__: probes}
            models, rows, effective, sides = [], [], [], []
            measured: list[tuple[str, Any]] = []  # the effective field is the gradient's: it depends on the weights
            for label, p in probes.items():
                p = as_probe(p)
                models.append(str(label))
                table, eff = [], []
                x = None
                for l in p.layers:
                    if l.kind == "fc" and not include_fc:
                        continue
                    rf = p.receptive_field(l.name)  # None where an op below it cannot be traced: shown as "?"
                    table.append([l.name, l.kind, *((_number(rf.size), _number(rf.stride)) if rf else ("?", "?"))])
                    wide = rf is not None and not rf.is_global and rf.size > p.input_size
                    if wide and images is not None:
                        from ..imageset import load_images
                        from ..kernels.effective import PICTURES, effective_field

                        if x is None:
                            pictures = load_images(images)
                            x = p.preprocess([pictures.raw(i) for i in range(min(PICTURES, len(pictures)))])
                        e = effective_field(p, x, l.name)
                        eff.append("whole picture" if e.size >= p.input_size else str(e.size))
                    else:
                        eff.append("")  # not measured: images= measures it
                if x is not None:
                    measured.append((str(label), p))
                rows.append(table)
                effective.append(eff)
                sides.append(int(p.input_size))
            with self.hold_sync():
                self.models, self.rows, self.effective, self.input_sizes = models, rows, effective, sides
                # receptive fields follow from the architecture alone; effective fields measured on random weights
                # are said to be (the note and the saved figure's stamp)
                self.say_weights([p for _, p in measured], [n for n, _ in measured])

    def to_figure(self):
        """The table shown: per model, every layer's name, kind, receptive field size and stride (Tables 1 and 2),
        the highlighted layer in colour."""
        if not self.rows:
            raise self.nothing_to_save("no receptive fields were read")
        return _table_figure(list(self.models), [list(t) for t in self.rows], self.layer,
                             [list(e) for e in self.effective], list(self.input_sizes), stamp=self.weights_note())


def _number(v: Any) -> int | str:
    """An int, or a Fraction as "1/2" (JSON has no fractions)."""
    return v if isinstance(v, int) else str(v)


def _table_figure(models: list[str], rows: list[list[list]], current: str, effective: list[list[str]] | None = None,
                  sides: list[int] | None = None, stamp: str = ""):
    from ..figures import MARK_COLOR, TEXT_COLOR, Sheet, text_width

    sheet = Sheet()
    x = 0.0
    for m, (model, table) in enumerate(zip(models, rows)):
        eff = (effective or [])[m] if effective and m < len(effective) else []
        wide = any(eff)
        heads = ("layer", "kind", "RF size", "stride") + ((f"effective ({sides[m]} px picture)" if sides else "effective",)
                                                          if wide else ())
        cells = [heads] + [tuple(str(v) for v in r) + ((eff[i],) if wide else ()) for i, r in enumerate(table)]
        widths = [max(text_width(c[j], 12, bold=True) for c in cells) + 14 for j in range(len(heads))]
        sheet.text(model, x, 0, px=14, ha="left", bold=True)
        for i, cell in enumerate(cells):
            y = 24 + i * 18
            mark = i > 0 and cell[0] == current
            cx = x
            for j, text in enumerate(cell):
                sheet.text(text, cx + (0 if j < 2 else widths[j] - 14), y, px=12, ha="left" if j < 2 else "right",
                           bold=i == 0 or mark, color=MARK_COLOR if mark else TEXT_COLOR)
                cx += widths[j]
        x += sum(widths) + 24
    sheet.stamp(stamp)
    return sheet.figure()
