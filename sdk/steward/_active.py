"""The runs open in this process, innermost last, and ending them when the interpreter exits."""

from __future__ import annotations

import atexit
import sys
import threading
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steward.run import Run

_open_runs: list[Run] = []
_lock = threading.Lock()
_hooks_installed = False
_uncaught: BaseException | None = None


def active_run() -> Run | None:
    """The innermost run started and not yet ended in this process, or ``None``."""
    with _lock:
        return _open_runs[-1] if _open_runs else None


def open_runs() -> list[Run]:
    """Every run started and not yet ended in this process, oldest first."""
    with _lock:
        return list(_open_runs)


def push(run: Run) -> None:
    with _lock:
        _open_runs.append(run)
    _install_hooks()


def remove(run: Run) -> None:
    with _lock:
        if run in _open_runs:
            _open_runs.remove(run)


def _install_hooks() -> None:
    """At interpreter exit, end the runs still open (their buffers are flushed)."""
    global _hooks_installed
    with _lock:
        if _hooks_installed:
            return
        _hooks_installed = True
    previous = sys.excepthook

    def excepthook(exc_type, exc, tb):
        global _uncaught
        _uncaught = exc
        previous(exc_type, exc, tb)

    sys.excepthook = excepthook
    atexit.register(_end_open_runs_at_exit)


def _end_open_runs_at_exit() -> None:
    for run in reversed(open_runs()):
        try:
            if _uncaught is not None:
                text = "".join(traceback.format_exception(_uncaught))
                status = "KILLED" if isinstance(_uncaught, KeyboardInterrupt) else "FAILED"
                run.end(status, error=text)
            else:
                run.end("FINISHED")
        except Exception as exc:  # noqa: BLE001 - at exit, report and go on with the next run
            print(f"steward: run {run.id}: {exc}", file=sys.stderr)
