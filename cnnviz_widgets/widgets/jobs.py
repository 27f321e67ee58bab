"""Kernel work started from the browser: run off the kernel's main thread, stoppable, never stale.

A request from the browser (a new image, a click, a page) becomes a :class:`Job` with an id. It
runs on one background thread shared by all widgets (kernels already use every core, and one
thread means two widgets never drive the same model at once), so the kernel keeps reading
messages: a Stop press or a newer request cancels it between batches or layers. Its result is
applied back on the event loop that received the request (the kernel's main loop, or the thread
ipykernel 7 gives widget messages) only if it is still the newest request of its lane; a result
for an input the user has left is dropped. Work asked for from Python (a cell setting a trait)
runs inline instead, so scripts and notebooks see the result on the next line and the notebook's
interrupt button stops it. While background jobs run, that button (SIGINT, which an idle kernel
ignores) stops them too.
"""
from __future__ import annotations

import asyncio
import itertools
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import StoppedError

_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cnnviz-job")
_IDS = itertools.count(1)
_ACTIVE: set[Job] = set()  # background jobs in flight, of every widget
_MAIN_LOOP: asyncio.AbstractEventLoop | None = None


class Job:
    """One request: its id, its lane, and the flag that stops it at the next check."""

    def __init__(self, lane: str, what: str, on_progress: Callable[[Job, float], None] | None = None) -> None:
        self.id = next(_IDS)
        self.lane = lane
        self.what = what
        self.stopped_by_user = False
        self.previewed = False  # a first part of the result is on screen: the rest must follow it
        self._cancelled = threading.Event()
        self._on_progress = on_progress
        self._on_preview: Callable[[Job, Any], None] | None = None  # set for background jobs only
        self._on_status: Callable[[Job, str], None] | None = None  # set by the widget that runs it
        self.status_text = ""  # the last status line it showed ("measuring the receptive field of ...")

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self, by_user: bool = False) -> None:
        self.stopped_by_user = self.stopped_by_user or by_user
        self._cancelled.set()

    @property
    def stop_event(self) -> threading.Event:
        """The Event a Stop or a newer request sets: for kernels that take ``stop=`` (a field measurement)."""
        return self._cancelled

    def status(self, text: str) -> None:
        """Say what the job is doing now (the widget's ``notice``, shown beside its progress while it is busy), e.g.
        "measuring the receptive field of c2…"; the widget clears it when the job ends."""
        self.check()
        self.status_text = text
        if self._on_status is not None:
            self._on_status(self, text)

    def check(self) -> None:
        """Raise StoppedError if the job was cancelled (kernels call it through ``report``)."""
        if self._cancelled.is_set():
            raise StoppedError(f"{self.what}: stopped.")

    def preview(self, part: Any) -> None:
        """Show part of the result before the rest is ready (the explorer's layer on screen before the other
        layers are computed; again when the slider moves onto one not yet there). Only jobs started from the
        browser show one: a cell gets the whole result on its next line anyway. A Stop or a newer request still
        ends the work between layers; the part shown stays, and its missing layers are computed again when its
        image is picked again."""
        self.check()
        if self._on_preview is not None:
            self._on_preview(self, part)

    def report(self, done: int, total: int) -> None:
        """Progress callback for the kernels: stops the job if cancelled, else passes the fraction on."""
        self.check()
        if self._on_progress is not None:
            self._on_progress(self, done / total if total else 0.0)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running on this thread (the kernel's, inside Jupyter), or None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _on_sigint(signum: int, frame: Any) -> None:
    """The notebook's interrupt reaching an idle kernel while background jobs run: stop them."""
    for job in list(_ACTIVE):
        job.cancel(by_user=True)


def remember_main_loop() -> None:
    """Note the main thread's event loop (the kernel's). Widget messages may be handled on another
    thread (ipykernel 7 routes them to a subshell), and only the main thread may set signal handlers."""
    global _MAIN_LOOP
    if threading.current_thread() is threading.main_thread():
        loop = running_loop()
        if loop is not None:
            _MAIN_LOOP = loop


def _on_main_thread(fn: Callable[[], None]) -> None:
    if threading.current_thread() is threading.main_thread():
        fn()
    elif _MAIN_LOOP is not None and not _MAIN_LOOP.is_closed():
        _MAIN_LOOP.call_soon_threadsafe(fn)


def _install() -> None:
    if _ACTIVE and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_sigint)


def _uninstall() -> None:
    if not _ACTIVE and signal.getsignal(signal.SIGINT) is _on_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def hook_interrupt() -> None:
    """While jobs run, let SIGINT stop them where the kernel would ignore it (an idle ipykernel sets
    SIG_IGN and installs its KeyboardInterrupt handler only around each message it handles).

    Called after each submit and on each progress report, so a message handler that restores
    SIG_IGN on its way out cannot leave the jobs unstoppable. Anything other than SIG_IGN (a
    running cell's handler, a script's default) is left alone.
    """
    if _ACTIVE:
        _on_main_thread(_install)


def _unhook_interrupt() -> None:
    _on_main_thread(_uninstall)


def submit(job: Job, compute: Callable[[Job], Any], done: Callable[[Job, Any, BaseException | None], None],
           loop: asyncio.AbstractEventLoop) -> None:
    """Run ``compute(job)`` on the worker thread; ``done(job, result, error)`` then runs on ``loop``."""

    def work() -> Any:
        job.check()  # cancelled while it waited behind another job: skip it
        return compute(job)

    _ACTIVE.add(job)
    future = loop.run_in_executor(_EXECUTOR, work)
    # after the message handler that submitted the job has put the kernel's own SIGINT setting back
    loop.call_soon(hook_interrupt)

    def finished(f: asyncio.Future) -> None:
        _ACTIVE.discard(job)
        _unhook_interrupt()
        exc = f.exception()
        done(job, None if exc else f.result(), exc)

    future.add_done_callback(finished)
