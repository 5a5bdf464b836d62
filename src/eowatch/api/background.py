"""The scheduler and a worker embedded in the service process (``eowatch serve
--scheduler --worker``): two threads started with the app and stopped with it.

A small deployment then needs one process. Jobs still run on the worker's
executor (by default a pool of separate processes), so detection does not
compete with request handling for this process's GIL. On shutdown the threads
are asked to stop and given ``STOP_TIMEOUT_S`` to finish a job in flight; a job
still running after that is left to its lease, which expires and lets another
worker take it over.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ..services import Services

__all__ = ["EmbeddedMonitor", "STOP_TIMEOUT_S"]

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 30.0


class EmbeddedMonitor:
    """The scheduler and/or worker threads of one service process."""

    def __init__(self, services: Services, *, scheduler: bool, worker: bool) -> None:
        self.services = services
        self.want_scheduler, self.want_worker = scheduler, worker
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    @classmethod
    def from_settings(cls, services: Services) -> EmbeddedMonitor:
        """Threads as ``settings.serve_scheduler`` and ``settings.serve_worker`` ask (default: none)."""
        s = services.settings
        return cls(services, scheduler=s.serve_scheduler, worker=s.serve_worker)

    def start(self) -> None:
        from ..monitor import Scheduler

        if self.want_scheduler:
            sched = Scheduler(self.services)
            self._spawn("eowatch-scheduler", sched.run_forever, self.stop_event)
        if self.want_worker:
            self._spawn("eowatch-worker", self._work)
        if self.threads:
            log.info("embedded monitoring started: %s", ", ".join(t.name for t in self.threads))

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _work(self) -> None:
        from ..monitor import Worker

        worker = Worker(self.services)
        try:
            worker.run(self.stop_event)
        except Exception:  # logged; the service keeps answering, /ops/summary shows the queue growing
            log.exception("the embedded worker stopped on an error")
        finally:
            worker.close()

    @property
    def running(self) -> list[str]:
        return [t.name for t in self.threads if t.is_alive()]

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Ask the threads to stop and wait for each (at most ``timeout_s``)."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("%s did not stop within %.0f s; its job's lease will expire", thread.name,
                            timeout_s)  # fmt: skip
        if self.threads and not self.running:
            log.info("embedded monitoring stopped")
