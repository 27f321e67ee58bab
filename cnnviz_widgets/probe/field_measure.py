"""A background measurement of the receptive fields tracing could not give, for widgets to poll."""
from __future__ import annotations

import threading
from typing import Any


class FieldMeasurement:
    """Runs ``probe.measure_missing_fields(timeout)`` in a daemon thread.

    Poll ``done`` (an Event, set when it ends however it ends) or ``running``; ``cancel()`` asks it to stop
    after the layer it is measuring; ``wait()`` blocks. ``results`` maps each layer measured to its field
    (None: not measurable), ``error`` holds what it raised, if anything. The probe records the fields
    when it ends, so ``probe.receptive_field(name)`` then sees them without this handle.
    """

    def __init__(self, probe: Any, timeout: float) -> None:
        self.probe = probe
        self.timeout = float(timeout)
        self.done = threading.Event()
        self.cancelled = threading.Event()
        self.results: dict[str, Any] = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="cnnviz-field-measurement", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.results = self.probe.measure_missing_fields(self.timeout, stop=self.cancelled)
        except BaseException as exc:  # reported through the handle: a thread's exception would be lost
            self.error = exc
        finally:
            self.done.set()

    @property
    def running(self) -> bool:
        return not self.done.is_set()

    def cancel(self) -> None:
        self.cancelled.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until it ends (or ``timeout`` seconds pass); whether it ended."""
        return self.done.wait(timeout)
