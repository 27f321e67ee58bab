"""What the explorer and the training timeline share: one picture and every layer's reconstruction of it as a strip,
with the top-5, the rule that drew each picture and the display they are shown in."""
from __future__ import annotations

import traitlets

from ._base import ReversingWidget


class ShowsStrip(ReversingWidget):
    """A widget that shows a strip: its synced traits, and :meth:`_show_strip` to put a computed strip on screen."""

    layer_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    input_png = traitlets.Bytes(b"").tag(sync=True)
    recs = traitlets.List(traitlets.Bytes()).tag(sync=True)  # one picture per layer, in layer_names order
    captions = traitlets.List(traitlets.Unicode()).tag(sync=True)  # per layer: what its picture shows, when not the whole layer
    drawn = traitlets.List(traitlets.Unicode()).tag(sync=True)  # per layer: the rule that drew its picture, "guided (auto)"
    predictions = traitlets.List(traitlets.List()).tag(sync=True)  # [[label, probability, class index or -1], ...]
    shown_rule = traitlets.Unicode("").tag(sync=True)  # the rule the pictures shown were made by

    def _show_strip(self, r: dict) -> None:
        """Show strip ``r`` (its "input_png", "recs", "captions", "drawn", "predictions", display "mode" and
        "rule"); the caller holds the sync, with whatever else it shows."""
        self.input_png = r["input_png"]
        self.recs = r["recs"]
        self.captions = r["captions"]
        self.drawn = r["drawn"]
        self.predictions = r["predictions"]
        self.show_display(r["mode"])
        self.shown_rule = r["rule"]
