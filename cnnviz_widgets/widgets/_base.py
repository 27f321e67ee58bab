"""Shared widget machinery: the save mixin, error/busy/progress traits, messages from the browser (jobs in lanes:
:mod:`.jobs`).

Widgets hold no math: they call kernels, and any error a kernel raises is shown inside the
widget as a readable message while the traceback goes to the log, never to the cell.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import traitlets

from ..display import DISPLAYS, pictures
from ..errors import CnnvizError, short_repr
from ..probe.rules import WIDGET_RULE, drawn_by, rule_name, rule_options
from .jobs import RunsJobs

if TYPE_CHECKING:
    from ..probe.probe import Probe

log = logging.getLogger("cnnviz_widgets")


class SavesFigure:
    """``save(path)``: what the widget shows now, as a figure composed in Python from the widget's own data (the
    kernels' results it holds, never a screenshot) by :mod:`cnnviz_widgets.figures`; ``to_figure()`` gives the
    matplotlib Figure itself. Each widget defines ``to_figure``."""

    def to_figure(self) -> Any:
        """The matplotlib Figure of what the widget shows (its current layer, page, selection, zoom)."""
        raise NotImplementedError

    def save(self, path: str | os.PathLike, scale: float = 1) -> Path:
        """Write what the widget shows to ``path``: .png, .svg or .pdf by its suffix (SVG and PDF keep the labels as
        text); ``scale`` (0.25 to 8) pixels of the file per pixel shown, e.g. 3 for print. Returns the path. A
        widget with nothing to show yet raises a CnnvizError that says why."""
        from ..figures import figure_path, figure_scale, save_figure

        figure_path(path)  # a wrong suffix or scale is said before anything is drawn
        figure_scale(scale)
        return save_figure(self.to_figure(), path, scale=scale)

    def nothing_to_save(self, what: str) -> CnnvizError:
        """The error for a save before anything is shown: names the widget, what is missing, and its error if any."""
        error = getattr(self, "error_text", None) or getattr(self, "error", "")  # the SparsityChart's: plain text
        error = error if isinstance(error, str) else ""
        return CnnvizError(f"{type(self).__name__} has nothing to save yet: {what}."
                           + (f" It says: {error}" if error else ""))


def within(low: float, high: float = math.inf, note: str = "") -> Callable[[Any, dict], Any]:
    """A trait validator refusing values outside [low, high] (a page size of 0 from the browser, an opacity of 2):
    its TraitError names the trait and the range (and ``note``) and becomes a message in the widget through
    ``set_state``. Use: ``_v = traitlets.validate("page")(within(0))``."""
    words = f"{low} or more" if high == math.inf else f"from {low} to {high}"

    def check(self: Any, proposal: dict) -> Any:
        if not low <= proposal["value"] <= high:
            raise traitlets.TraitError(f"{proposal['trait'].name} must be {words}{note}, got {proposal['value']}")
        return proposal["value"]

    return check


class CnnvizWidget(SavesFigure, RunsJobs, anywidget.AnyWidget):
    """Base of every cnnviz widget: ``error`` (shown in the widget), ``busy``, ``progress``, ``notice``,
    and the job machinery that keeps browser-started work stoppable and never stale (see :mod:`.jobs`)."""

    error = traitlets.Unicode("").tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)
    progress = traitlets.Float(0.0).tag(sync=True)  # 0..1 while busy
    notice = traitlets.Unicode("").tag(sync=True)  # a calm status line, e.g. "stopped"
    # a standing note: that the weights are random (from the probe, Probe.weights_note) and what else the reader must
    # know about what is shown (a FilterGrid's layers without patches)
    note = traitlets.Unicode("").tag(sync=True)
    # every text of the widget, scaled: 1 is the theme's UI size, 1.5 reads on a projector (widget.text_scale = 1.5)
    text_scale = traitlets.Float(1.0).tag(sync=True)

    _text_scale = traitlets.validate("text_scale")(within(0.5, 3, " (1 is the theme's size)"))

    def __init__(self, **kwargs: Any) -> None:
        self._weighed: tuple[list[Any], list[str] | None] = ([], None)  # the probes (and names) the note speaks of
        self._open_lanes()
        unknown = [k for k in kwargs if not self.has_trait(k)]
        if unknown:  # traitlets would only warn, and a typo such as layers= would change nothing
            import difflib
            import inspect

            own = [n for n in inspect.signature(type(self).__init__).parameters if n not in ("self", "kwargs")]
            near = difflib.get_close_matches(unknown[0], own + [n for n in self.trait_names() if not n.startswith("_")], 1)
            raise CnnvizError(
                f"{type(self).__name__} has no argument {unknown[0]!r}"
                f"{f'; did you mean {near[0]!r}' if near else ''}? Its arguments: {', '.join(own)}."
            )
        super().__init__(**kwargs)
        self.on_msg(self._on_custom_msg)

    # ------------------------------------------------------------------ random weights
    def say_weights(self, probes: list[Any], names: list[str] | None = None) -> None:
        """The ``note`` says when a probe's weights are random (:attr:`Probe.weights_note`; of two networks, which),
        and :meth:`stamped` figures say it too."""
        self._weighed = (list(probes), None if names is None else list(names))
        self.note = self.weights_note()

    def weights_note(self) -> str:
        """What this widget says about random weights now: "" where none is known to be random."""
        from ..figures.paper import probes_note

        probes, names = self._weighed
        return probes_note(probes, names) if probes else ""

    def stamped(self, sheet: Any) -> Any:
        """``sheet``'s Figure, stamped with :meth:`weights_note` where the weights are random (what save() writes)."""
        sheet.stamp(self.weights_note())
        return sheet.figure()

    # ------------------------------------------------------------------ errors and progress
    def _show_error(self, what: str, exc: BaseException) -> None:
        if isinstance(exc, CnnvizError):
            log.info("%s failed: %s", what, exc, exc_info=exc)
            self.error = str(exc)
        else:  # a widget must never put a traceback in the cell
            log.error("%s failed", what, exc_info=exc)
            self.error = f"{what} failed: {type(exc).__name__}: {exc}"

    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Run kernel work inline: busy while it runs; an error becomes ``self.error``, its traceback a
        log entry; an interrupt leaves the widget as it was, says so, and goes on up."""
        self.busy = True
        self.error = ""
        try:
            yield
        except KeyboardInterrupt:
            self.notice = f"{what}: interrupted; the previous result is still shown."
            raise
        except Exception as exc:  # noqa: BLE001
            self._show_error(what, exc)
        finally:
            self._idle()

    def _say(self, text: str) -> None:
        """A status line for inline work outside a job (a constructor measuring a field): the ``notice``."""
        self.notice = text

    def report(self, done: int, total: int) -> None:
        """Progress callback for the kernels: feeds the ``progress`` trait (a bar in the widget)."""
        self.progress = done / total if total else 0.0

    def set_state(self, sync_data: dict) -> None:
        """State from the browser: observers started by it run their kernel work as background jobs. A value
        a trait refuses (None for a dict, a page size of 0) is said in the widget, and nothing changes."""
        with self.from_browser():
            try:
                super().set_state(sync_data)
            except traitlets.TraitError as exc:
                self._show_error("Reading the browser's message", CnnvizError(
                    f"The browser sent {short_repr(sync_data)}, which this widget cannot take ({exc}); nothing was "
                    f"changed."))

    def browser_events(self) -> dict[str, tuple[str, Callable[[dict], None]]]:
        """The events this widget takes from the browser as custom messages ``{"event": name, ...}``: name ->
        (what it does, for a message if it fails; its handler). Stop is every widget's."""
        return {}

    def _on_custom_msg(self, widget: Any, content: Any, buffers: Any) -> None:
        """A message from the browser. Clicks, zooms and requests happen once: they travel as messages (a trait
        set to the same value twice would not change, hence the timestamps traits needed), and their kernel
        work runs as browser-started jobs, stoppable and never stale."""
        event = content.get("event") if isinstance(content, dict) else None
        if event == "stop":
            self.stop()
            return
        known = self.browser_events()
        if event not in known:
            self._show_error("Reading the browser's message", CnnvizError(
                f"The browser sent {short_repr(content)}, which {type(self).__name__} does not know; nothing was "
                f"changed. It knows the events: {', '.join(['stop', *known])}."))
            return
        what, handler = known[event]
        self._message_buffers = list(buffers or [])  # an upload's bytes (widgets/uploads.py)
        try:
            with self.from_browser(), self.guard(what):
                handler(content)
        finally:
            self._message_buffers = []


def message_field(msg: Any, key: str, kind: type = int) -> Any:
    """Field ``key`` of a message from the browser as ``kind`` (int, float or str); a CnnvizError (shown in the
    widget by its guard) names a malformed message instead of a KeyError or ValueError escaping set_state."""
    value = msg.get(key) if isinstance(msg, dict) else None
    if kind is str:
        if isinstance(value, str):
            return value
    elif isinstance(value, int) and not isinstance(value, bool) and (kind is int or abs(value) < 2**53):
        return kind(value)
    elif isinstance(value, float) and math.isfinite(value) and (kind is float or value.is_integer()):
        return kind(value)
    what = {int: "a whole number", float: "a number", str: "a name"}[kind]
    raise CnnvizError(f"The browser sent {short_repr(msg)}, which has no usable {key!r} ({what}); nothing was changed.")


class ReversingWidget(CnnvizWidget):
    """A widget that shows reconstructions: a synced reverse ``rule`` with its selector, and the display
    (see :mod:`cnnviz_widgets.display`) its pictures use, described for the reader."""

    rule = traitlets.Unicode(WIDGET_RULE).tag(sync=True)  # "auto", "deconvnet", "guided" or "gradient"
    rule_options = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)  # [[name, title]], "auto" first
    display = traitlets.Unicode("").tag(sync=True)  # how the pictures shown map values to grey levels

    @traitlets.default("rule_options")
    def _rule_options(self) -> list[list[str]]:
        return rule_options()  # made with the widget: a rule registered after the import is listed

    def _set_rule(self, rule: Any) -> None:
        """The constructor's ``rule=``, checked (a CnnvizError names the rules)."""
        self._rule_ready = False
        self.rule = rule_name(rule)
        self._rule_ready = True

    @staticmethod
    def drawn_by(rule: str, layer: Any, probe: Any) -> str:
        """What a caption says drew ``layer``'s picture under ``rule``: "guided (auto)", "deconvnet"."""
        return drawn_by(rule, probe.layer(layer), probe)

    @traitlets.observe("rule")
    def _on_rule(self, change: dict) -> None:
        if not getattr(self, "_rule_ready", False) or change["old"] == change["new"]:
            return
        try:
            name = rule_name(change["new"])
        except CnnvizError as exc:  # a bad value from the browser or a cell: say so, keep the old rule
            self._show_error("Changing the rule", exc)
            self.restore_rule(change["old"])
            return
        if name != change["new"]:  # "Guided" -> "guided"
            self.rule = name
            return
        self.rule_changed()

    def restore_rule(self, name: str) -> None:
        """Put the selector back to ``name`` (the rule of the pictures shown, after a Stop or a bad value),
        computing nothing."""
        if name and name != self.rule:
            self._rule_ready = False
            try:
                self.rule = name
            finally:
                self._rule_ready = True

    def rule_changed(self) -> None:
        """Hook: recompute what the widget shows with ``self.rule``."""

    def displayed(self, recs: Any) -> tuple[list[np.ndarray], str]:
        """Reconstructions (a list of (3, H, W), or one (N, 3, H, W) batch: one pass for a whole strip) as
        pictures, one display chosen for all of them (:func:`cnnviz_widgets.display.pictures`)."""
        return pictures(recs)

    def show_display(self, mode: str) -> None:
        self.display = f"display: {DISPLAYS[mode]}"


def as_probe(model_or_probe: Any, **kwargs: Any) -> Probe:
    """A Probe from a Probe or an nn.Module (errors surface as CnnvizError)."""
    from ..probe import Probe

    return model_or_probe if isinstance(model_or_probe, Probe) else Probe(model_or_probe, **kwargs)
