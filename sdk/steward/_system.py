"""The ``steward-system-metrics`` thread: CPU and memory samples as ``system/*`` metrics.

Samples go straight into the run's buffer. They never pass through
``Run.log_metric``, which raises the server's deferred refusals: raised here
they would end this thread and never reach the user.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steward.config import Settings
    from steward.options import RunOptions

log = logging.getLogger("steward")

DEFAULT_INTERVAL = 10.0  # seconds, as MLflow samples


def sampling_interval(options: RunOptions, settings: Settings) -> float | None:
    """Seconds between a run's samples, from its options and the configuration; None samples nothing.

    ``system_metrics`` (an interval) wins; ``log_system_metrics=False`` turns
    sampling off, ``True`` turns it on at the configured interval (10 s
    unless configured) and ``None`` leaves it to the configuration.
    """
    if options.system_metrics is not None:
        return float(options.system_metrics)
    if options.log_system_metrics is False:
        return None
    if options.log_system_metrics:
        return float(settings.system_metrics_interval or DEFAULT_INTERVAL)
    return float(settings.system_metrics_interval) if settings.system_metrics_interval else None


class SystemMetrics:
    """Samples every ``interval`` seconds until :meth:`stop`; needs psutil."""

    def __init__(self, interval: float, sink: Callable[[list], None]) -> None:
        self.interval = interval
        self._sink = sink
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Start sampling; False (with a warning) when psutil is not installed."""
        try:
            import psutil
        except ImportError:
            log.warning("steward: system metrics need psutil (pip install 'steward-sdk[system]').")
            return False
        process = psutil.Process()
        psutil.cpu_percent(None)  # the first call only sets the baseline for the next

        def sample() -> None:
            step = 0
            while not self._stop.wait(self.interval):
                try:
                    memory = psutil.virtual_memory()
                    values = {
                        "system/cpu_percent": float(psutil.cpu_percent(None)),
                        "system/memory_percent": float(memory.percent),
                        "system/memory_used_mb": (memory.total - memory.available) / 2**20,
                        "system/process_rss_mb": process.memory_info().rss / 2**20,
                    }
                except Exception:  # noqa: BLE001 - a failed sample must not end the run's sampling
                    log.debug("steward: a system metrics sample failed", exc_info=True)
                    continue
                ts = int(time.time() * 1000)
                self._sink([(key, value, step, ts) for key, value in values.items()])
                step += 1

        self._thread = threading.Thread(target=sample, name="steward-system-metrics", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
