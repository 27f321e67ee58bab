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
import contextlib
import itertools
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import StoppedError

log = logging.getLogger("cnnviz_widgets")

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


class RunsJobs:
    """Every widget's requests, in lanes ("image", "unit", "page"...): a new request cancels the older ones of its lane,
    a result that is no longer the newest is dropped, a first part (``job.preview``) is shown while the rest is
    made. The widget (:class:`~cnnviz_widgets.widgets._base.CnnvizWidget`) holds the traits these set and the
    ``guard`` that turns an error into its message."""

    # what the widget gives: its synced traits, its guard and its error display
    busy: bool
    progress: float
    notice: str
    error: str
    guard: Callable[[str], contextlib.AbstractContextManager[None]]
    _show_error: Callable[[str, BaseException], None]

    def _open_lanes(self) -> None:
        """The lanes' state, empty (the widget's constructor calls it first)."""
        self._jobs: dict[int, Job] = {}
        self._latest: dict[str, int] = {}  # lane -> id of its newest request
        self._shown: dict[str, int] = {}  # lane -> id of the request whose result (or first part) is on screen
        self._frontend_thread: int | None = None  # the thread applying browser state, while it does
        remember_main_loop()  # widgets are made in a cell, on the kernel's main thread

    def _idle(self) -> None:
        if not self._jobs:
            self.busy = False
            self.progress = 0.0

    @contextlib.contextmanager
    def from_browser(self) -> Iterator[None]:
        """What runs inside was asked for by the browser: its kernel work runs as background jobs."""
        self._frontend_thread = threading.get_ident()
        try:
            yield
        finally:
            self._frontend_thread = None

    def run_job(self, what: str, lane: str, compute: Callable[[Job], Any], apply: Callable[[Any], None],
                supersedes: tuple[str, ...] = ()) -> Job:
        """Start a request: ``compute(job)`` does the kernel work (calling ``job.report`` between steps,
        touching no trait), ``apply(result)`` shows it. Earlier requests of the same lane, and of the
        lanes in ``supersedes``, are cancelled; a result that is no longer the newest is dropped.
        ``job.preview(part)`` applies a first part of the result with ``apply`` while the rest is made.

        Browser-started requests run on the background worker; Python-started ones run inline.
        """
        for old in list(self._jobs.values()):
            if old.lane == lane or old.lane in supersedes:
                old.cancel()
        for other in supersedes:
            self._latest[other] = -1
        loop = running_loop() if self._frontend_thread == threading.get_ident() else None
        job = Job(lane, what, self._job_progress(loop))
        job._on_status = self._job_status(loop)
        self._latest[lane] = job.id
        self.notice = ""

        def show(result: Any) -> None:  # what is shown, and which request it answers
            apply(result)
            self._shown[lane] = job.id

        if loop is None:
            try:
                with self.guard(what):
                    show(compute(job))
            except KeyboardInterrupt:  # the notebook's interrupt: the inputs go back to what is shown
                self.restore_inputs(job)
                raise
            finally:
                self._clear_status(job)
            return job
        job._on_preview = self._job_preview(loop, show)
        self._jobs[job.id] = job
        self.busy = True
        self.progress = 0.0
        submit(job, compute, self._job_done(show), loop)
        return job

    def _job_progress(self, loop) -> Callable[[Job, float], None]:
        def inline(job: Job, value: float) -> None:
            self.progress = value

        def on_loop(job: Job, value: float) -> None:
            if job.id in self._jobs:
                self.progress = value
            hook_interrupt()

        def threaded(job: Job, value: float) -> None:  # on the worker: hand the value to the event loop
            loop.call_soon_threadsafe(on_loop, job, value)

        return inline if loop is None else threaded

    def _job_status(self, loop) -> Callable[[Job, str], None]:
        """``job.status(text)`` -> ``notice`` (the browser shows it in place of "working…" while busy), if the job is
        still the newest of its lane."""
        def on_loop(job: Job, text: str) -> None:
            if job.id in self._jobs and not job.cancelled and self._latest.get(job.lane) == job.id:
                self.notice = text

        def inline(job: Job, text: str) -> None:
            self.notice = text

        return inline if loop is None else (lambda job, text: loop.call_soon_threadsafe(on_loop, job, text))

    def _clear_status(self, job: Job) -> None:
        if job.status_text and self.notice == job.status_text:
            self.notice = ""

    def _job_preview(self, loop, apply: Callable[[Any], None]) -> Callable[[Job, Any], None]:
        """On the worker: hand a first part of the result to the event loop, which shows it if the job is still
        the newest of its lane (the rest is then shown whatever comes meanwhile: never half a result)."""
        def on_loop(job: Job, part: Any) -> None:
            if job.id in self._jobs and not job.cancelled and self._latest.get(job.lane) == job.id:
                try:
                    apply(part)
                    job.previewed = True
                except Exception as e:  # noqa: BLE001
                    self._show_error(job.what, e)

        return lambda job, part: loop.call_soon_threadsafe(on_loop, job, part)

    def _job_done(self, apply: Callable[[Any], None]) -> Callable[[Job, Any, BaseException | None], None]:
        def done(job: Job, result: Any, exc: BaseException | None) -> None:
            self._jobs.pop(job.id, None)
            try:
                # the rest of a result whose first part is on screen, and still the last thing shown of its lane,
                # is shown even after a Stop or a newer request (which replaces it when done): a half result must
                # not stay, e.g. after going back to its image. A result shown since (a cell's) is not overwritten.
                finishes_preview = job.previewed and exc is None and self._shown.get(job.lane) == job.id
                if not finishes_preview and (job.cancelled or self._latest.get(job.lane) != job.id):
                    log.debug("dropped the result of %s (job %d): a newer request or a stop replaced it", job.what, job.id)
                    if job.stopped_by_user and job.previewed and self._shown.get(job.lane) == job.id:
                        self.notice = (f"{job.what}: stopped; the layers not computed yet stay empty (pick another "
                                       f"image and back to compute them).")
                    elif job.stopped_by_user:
                        self.notice = f"{job.what}: stopped; the previous result is still shown."
                        self.restore_inputs(job)
                elif exc is not None:
                    self._show_error(job.what, exc)
                else:
                    try:
                        apply(result)
                        self.error = ""
                    except Exception as e:  # noqa: BLE001
                        self._show_error(job.what, e)
            finally:
                self._clear_status(job)
                self._idle()

        return done

    def back_to_shown(self, lane: str) -> None:
        """The lane's input is back to what the result on screen answers: drop its requests in flight,
        and any error about the input that was left."""
        for job in list(self._jobs.values()):
            if job.lane == lane:
                job.cancel()
        self._latest[lane] = -1
        self.error = ""

    def stop(self) -> None:
        """Stop every request of this widget in flight (what the Stop control does)."""
        for job in list(self._jobs.values()):
            job.cancel(by_user=True)

    def restore_inputs(self, job: Job) -> None:
        """Hook: the user stopped ``job`` (Stop, or the notebook's interrupt), so put its lane's inputs (a
        picker, a page) back to what the result on screen answers. A failed request keeps its input and
        shows the error, while the browser labels the pictures as still those of the previous input."""
