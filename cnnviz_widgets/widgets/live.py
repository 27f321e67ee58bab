"""The explorer's live mode: frames from the webcam, each reconstructed at the layer on screen, never queued (what
is shown is at most one frame behind the camera). A mixin of
:class:`~cnnviz_widgets.widgets.deconv_explorer.DeconvExplorer` (lane "live")."""
from __future__ import annotations

from typing import Any

import traitlets

from ..display import choose_display, to_display
from ..errors import ImageError
from .strip import ShowsStrip
from .encoding import picture_bytes
from .jobs import Job


class LiveCamera(ShowsStrip):
    """Part of the explorer: the live traits, the "frame" event's handler and :meth:`live_off`."""

    live_input_png = traitlets.Bytes(b"").tag(sync=True)  # live mode: the camera's last frame shown, as the network sees it
    live_rec_png = traitlets.Bytes(b"").tag(sync=True)  # and its reconstruction at the layer on screen
    live_frame = traitlets.Dict().tag(sync=True)  # {"n", "t", "layer"} of that frame (t: the browser's, for the lag)

    _probe: Any
    layer: str  # the explorer's layer on screen
    _layers: list[str]
    _live_job: Job | None = None  # the frame worked on
    _live_next: tuple | None = None  # the newest frame that came meanwhile
    _live_dropped: int = 0  # frames replaced before they were worked on

    def live_event(self, message: dict) -> None:
        """A camera frame from the browser (its JPEG in the message's buffer): the layer on screen is reconstructed
        for it. One frame is worked on at a time; a frame that comes meanwhile waits, and a newer one replaces it
        (never a queue: what is shown is at most one frame behind the camera)."""
        buffers = getattr(self, "_message_buffers", None) or []
        if not buffers:
            raise ImageError("The browser sent a camera frame without its picture; nothing was shown.")
        frame = (bytes(buffers[0]), message.get("n"), message.get("t"))
        running = self._live_job is not None and self._live_job.id in self._jobs
        if running:
            self._live_dropped += self._live_next is not None
            self._live_next = frame
            return
        self._live_start(frame)

    def _live_start(self, frame: tuple) -> None:
        data, n, t = frame
        layer, rule = (self.layer if self.layer in self._layers else self._layers[0]), self.rule

        def compute(job) -> dict:
            return self.live_picture(data, layer, rule) | {"n": n, "t": t}

        def apply(r: dict) -> None:
            with self.hold_sync():
                self.live_input_png, self.live_rec_png = r["input_png"], r["rec_png"]
                self.live_frame = {"n": r["n"], "t": r["t"], "layer": layer, "dropped": self._live_dropped}
            if self._live_next is not None:  # the newest frame that came meanwhile
                frame, self._live_next = self._live_next, None
                with self.from_browser():
                    self._live_start(frame)

        self._live_job = self.run_job("Showing the camera's picture", "live", compute, apply)

    def live_picture(self, data: bytes, layer: str, rule: str) -> dict:
        """One camera frame (a picture file's bytes) as the network sees it and its reconstruction at ``layer``:
        {"input_png", "rec_png"} (JPEG, or the widget's picture format)."""
        probe = self._probe
        assert probe is not None  # made in __init__: nothing here runs without it
        x = probe.model_input(data, "the camera's picture")
        rec = probe.reconstruct(x, layers=layer, rule=rule)[probe.layer(layer).name]
        mode = choose_display([rec])
        input_png, rec_png = picture_bytes([probe.to_image(x)[0], to_display(rec[0], mode)])
        return {"input_png": input_png, "rec_png": rec_png}

    def live_off(self) -> None:
        """Live mode ends (the camera stopped or paused): the photo and the layers shown before come back."""
        self._live_next = None
        if self._live_job is not None:
            self._live_job.cancel()
        with self.hold_sync():
            self.live_input_png = b""
            self.live_rec_png = b""
            self.live_frame = {}
