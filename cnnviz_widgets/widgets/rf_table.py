"""ReceptiveFieldTable (paper Tables 1 and 2): size and stride of every layer, one or two models."""
from __future__ import annotations

from typing import Any

import traitlets

from ._base import CnnvizWidget, as_probe, css, esm


class ReceptiveFieldTable(CnnvizWidget):
    """A table of receptive fields; give two probes (a dict label -> probe) to set them side by side."""

    _esm = esm("rf_table.js")
    _css = css()

    models = traitlets.List(traitlets.Unicode()).tag(sync=True)
    rows = traitlets.List(traitlets.List(traitlets.List())).tag(sync=True)  # per model: [name, kind, size, stride]
    # (a stride below one pixel, after upsampling, is a string such as "1/2"; "?" where there is no field)
    layer = traitlets.Unicode("").tag(sync=True)  # shared: the highlighted layer

    def __init__(self, probes: Any, include_fc: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        with self.guard("Reading receptive fields"):
            if not isinstance(probes, dict):
                probes = {type(getattr(probes, "model", probes)).__name__: probes}
            models, rows = [], []
            for label, p in probes.items():
                p = as_probe(p)
                models.append(str(label))
                table = []
                for l in p.layers:
                    if l.kind == "fc" and not include_fc:
                        continue
                    rf = p.receptive_field(l.name)  # None where an op below it cannot be traced: shown as "?"
                    table.append([l.name, l.kind, *((_number(rf.size), _number(rf.stride)) if rf else ("?", "?"))])
                rows.append(table)
            with self.hold_sync():
                self.models, self.rows = models, rows

    def to_figure(self):
        """The table shown: per model, every layer's name, kind, receptive field size and stride (Tables 1 and 2),
        the highlighted layer in colour."""
        if not self.rows:
            raise self.nothing_to_save("no receptive fields were read")
        return _table_figure(list(self.models), [list(t) for t in self.rows], self.layer)


def _number(v: Any) -> int | str:
    """An int, or a Fraction as "1/2" (JSON has no fractions)."""
    return v if isinstance(v, int) else str(v)


def _table_figure(models: list[str], rows: list[list[list]], current: str):
    from ..figures import MARK_COLOR, TEXT_COLOR, Sheet, text_width

    sheet = Sheet()
    heads = ("layer", "kind", "RF size", "stride")
    x = 0.0
    for model, table in zip(models, rows):
        cells = [heads] + [tuple(str(v) for v in r) for r in table]
        widths = [max(text_width(c[j], 12, bold=True) for c in cells) + 14 for j in range(4)]
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
    return sheet.figure()
