"""Cancelling a fit: a cooperative stop between iterations, and a hard stop (the pool process
ends itself) for a fit stuck in C code.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from django.db import DatabaseError, connection

from core import jobs
from core.models import Job, JobStatus

# --- the worker ----------------------------------------------------------------------------


class FitInterrupted(BaseException):
    """Raised in the main thread when the job is cancelled mid-fit.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception``
    inside scikit-learn or SciPy swallows it.
    """


CANCEL_POLL_SECONDS = 0.5
# How long a cancelled fit may stay inside one C call (libsvm, liblinear, SGD's
# epochs) before its pool process is ended instead.
CANCEL_GRACE_SECONDS = 5.0
# SIGUSR1 is taken: billiard raises soft time limits with it in pool processes.
INTERRUPT_SIGNAL = signal.SIGUSR2
_EXIT_CANCELLED = 75

_process = {"hard_stop": False, "installed": False, "previous": None, "watch": None}
logger = logging.getLogger(__name__)


def allow_hard_stop() -> None:
    """Called in each prefork pool process: ending it is safe, the pool starts a new one."""
    _process["hard_stop"] = True


def _on_interrupt(signum, frame):
    watch = _process["watch"]
    if watch is not None and watch.armed:
        watch.armed = False  # raise once, whatever else arrives
        watch.interrupted.set()
        raise FitInterrupted()
    previous = _process["previous"]
    if callable(previous):
        previous(signum, frame)


class FitWatch:
    """While a fit runs, a thread watches for a cancel (or for the attempt being re-queued).

    On a cancel it interrupts the main thread with a signal whose handler
    raises FitInterrupted; Python runs the handler between bytecodes, which
    scikit-learn's per-tree, per-stage and per-iteration loops reach often. A
    fit inside one long C call never gets there: in a prefork pool process the
    thread then marks the job cancelled and ends the process, the pool starts a
    new one, and the redelivered message (acks_late) finds the job ended and is
    skipped. Elsewhere (the solo pool, a thread) the cancel lands when the fit
    returns. Signal handlers can only be set from the main thread, so off it
    the cancel waits for the next progress report. (The heartbeat is job_run's.)
    """

    def __init__(self, job: Job):
        self.job_id = job.pk
        self.attempt = job.attempts
        self.sweep_id = job.params.get("sweep_id")
        self.armed = False
        self.interrupted = threading.Event()
        self.stop = threading.Event()
        self.main_ident = threading.main_thread().ident
        self.thread = threading.Thread(target=self._watch, name=f"watch-job-{job.pk}", daemon=True)

    def start(self) -> None:
        if threading.current_thread() is threading.main_thread():
            if not _process["installed"]:
                _process["previous"] = signal.signal(INTERRUPT_SIGNAL, _on_interrupt)
                _process["installed"] = True
            _process["watch"] = self
            self.armed = True
        self.thread.start()

    def close(self) -> None:
        self.armed = False
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
        _process["watch"] = None

    def _cancelled(self) -> bool:
        row = Job.objects.filter(pk=self.job_id).values_list("status", "cancel_requested", "attempts").first()
        # No row visible (deleted, or not committed yet): nothing says stop.
        return row is not None and (row[1] or row[0] != JobStatus.RUNNING or row[2] != self.attempt)

    def _watch(self) -> None:
        cancelled_at = None
        try:
            while not self.stop.wait(CANCEL_POLL_SECONDS):
                now = time.monotonic()
                if cancelled_at is None:
                    try:
                        if self._cancelled():
                            cancelled_at = now
                            if self.armed:
                                signal.pthread_kill(self.main_ident, INTERRUPT_SIGNAL)
                    except DatabaseError:
                        # A lost connection must not end the fit; the next poll reconnects.
                        logger.warning("Job %s: could not read its row while fitting", self.job_id,
                                       exc_info=True)
                        connection.close()
                elif self.interrupted.is_set():
                    return
                elif _process["hard_stop"] and now - cancelled_at >= CANCEL_GRACE_SECONDS:
                    self._end_process()
        finally:
            connection.close()  # this thread's own connection

    def _end_process(self) -> None:
        jobs.job_mark_cancelled(job=Job(pk=self.job_id, attempts=self.attempt),
                                message="Cancelled (the fit was stopped by ending its worker process)")
        if self.sweep_id:
            from training import sweeps

            sweeps.sweep_advance(sweep_id=self.sweep_id)
        logger.warning("Job %s was cancelled inside a fit that cannot be interrupted; ending this "
                       "worker process so the pool starts a fresh one.", self.job_id)
        connection.close()
        os._exit(_EXIT_CANCELLED)
