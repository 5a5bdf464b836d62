"""Where jobs run: an ``Executor`` Protocol and a registry of implementations.

* ``inline``: in the calling thread (tests, ``eowatch worker --once``);
* ``local``: each job in a worker process of its own (spawn start method: safe
  in a threaded process, no inherited GDAL state), so that a job stopped for
  its time limit, or lost to another worker, really stops: its process is
  ended (SIGTERM: the run removes its staging folder; SIGKILL after a grace
  period). A process per job also returns its memory when the job ends;
  starting one costs about 3 s of imports, small beside a detection;
* ``dask``: a Dask distributed cluster at ``settings.dask_scheduler_address``
  (or a ``distributed.Client`` passed in), e.g. a ``LocalCluster``.

``get_executor(None, settings)`` picks ``dask`` when a scheduler address is
configured, else ``local``. New kinds: ``register_executor(name, factory)``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from multiprocessing.connection import Connection
from typing import Any, Protocol, runtime_checkable

from ..errors import EowatchError, InputError
from ..settings import Settings

__all__ = [
    "Executor",
    "FutureLike",
    "InlineExecutor",
    "LocalProcessExecutor",
    "ProcessFuture",
    "JobProcessError",
    "DaskExecutor",
    "register_executor",
    "get_executor",
    "list_executors",
]


#: How long a stopped job's process may take to clean up before it is killed.
STOP_GRACE_S = 10.0


class JobProcessError(EowatchError):
    """A job's process ended without a result (killed, out of memory, crashed);
    another attempt may succeed."""

    retryable = True


@runtime_checkable
class FutureLike(Protocol):
    """What ``submit`` returns: ``concurrent.futures.Future`` and ``distributed.Future`` both fit."""

    def done(self) -> bool: ...

    def result(self, timeout: float | None = None) -> Any: ...

    def cancel(self) -> bool: ...


@runtime_checkable
class Executor(Protocol):
    """Runs picklable top-level functions somewhere and hands back futures."""

    name: str

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> FutureLike: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Runs each function at once in the calling thread."""

    name = "inline"

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> FutureLike:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed to the caller through the future
            future.set_exception(exc)
        return future

    def close(self) -> None:
        pass


def _run_in_child(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """The body of a job's process: send back ``(True, result)`` or ``(False, error)``."""
    try:
        outcome: tuple[bool, Any] = (True, fn(*args))
    except BaseException as exc:  # handed to the parent, which records it on the job
        outcome = (False, exc)
    try:
        conn.send(outcome)
    except Exception as exc:  # an error that does not pickle: its text still reaches the parent
        conn.send((False, RuntimeError(f"{type(outcome[1]).__name__}: {outcome[1]} ({exc})")))
    finally:
        conn.close()


class ProcessFuture:
    """One job running in a process of its own; ``cancel`` ends the process."""

    def __init__(self, context: Any, fn: Callable[..., Any], args: tuple[Any, ...], grace_s: float) -> None:
        self._receive, send = context.Pipe(duplex=False)
        self.process = context.Process(target=_run_in_child, args=(send, fn, args), daemon=True)
        self.process.start()
        send.close()
        self.grace_s = grace_s
        self._outcome: tuple[bool, Any] | None = None

    def _settle(self) -> None:
        try:
            self._outcome = self._receive.recv()
        except EOFError:  # the process died without a word (killed, out of memory, a crash)
            self.process.join(self.grace_s)
            code = self.process.exitcode
            self._outcome = (False, JobProcessError(f"the job's process ended with exit code {code}"))
        self._receive.close()
        self.process.join(self.grace_s)

    def done(self) -> bool:
        if self._outcome is None and (self._receive.poll() or not self.process.is_alive()):
            self._settle()
        return self._outcome is not None

    def result(self, timeout: float | None = None) -> Any:
        if self._outcome is None:
            if not self._receive.poll(timeout) and self.process.is_alive():
                raise TimeoutError(f"the job did not finish within {timeout} s")
            self._settle()
        assert self._outcome is not None
        ok, value = self._outcome
        if ok:
            return value
        raise value

    def cancel(self) -> bool:
        """End the job's process (SIGTERM, then SIGKILL after ``grace_s``); False when
        the job had already ended."""
        if self.done():
            return False
        self.process.terminate()
        self.process.join(self.grace_s)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self._receive.close()
        self._outcome = (False, CancelledError("the job was stopped"))
        return True


class LocalProcessExecutor:
    """Each job in a spawned process of its own; ``workers`` (default: CPU count, at
    most 4) is how many the worker should run at once."""

    name = "local"

    def __init__(self, workers: int | None = None, grace_s: float = STOP_GRACE_S) -> None:
        self.workers = int(workers or min(4, os.cpu_count() or 1))
        self.grace_s = grace_s
        self._context = multiprocessing.get_context("spawn")
        self._running: list[ProcessFuture] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> FutureLike:
        self._running = [f for f in self._running if not f.done()]
        future = ProcessFuture(self._context, fn, args, self.grace_s)
        self._running.append(future)
        return future

    def running(self) -> int:
        """How many job processes are alive."""
        return sum(f.process.is_alive() for f in self._running)

    def close(self) -> None:
        """Stop the jobs still running (a worker closes after its jobs in flight)."""
        for future in self._running:
            future.cancel()
        self._running = []


class DaskExecutor:
    """Submits to a Dask distributed scheduler (``address``) or an existing ``client``."""

    name = "dask"

    def __init__(self, address: str | None = None, client: Any = None) -> None:
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - depends on the install
            raise InputError(
                "the 'dask' executor needs dask.distributed: pip install 'eowatch[dask]'"
            ) from None
        if client is None and not address:
            raise InputError("the 'dask' executor needs a scheduler address (EOWATCH_DASK_SCHEDULER_ADDRESS)")
        self._own = client is None
        self.client = client if client is not None else Client(address)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> FutureLike:
        # pure=False: a retried job must really run again, not reuse a cached result.
        return self.client.submit(fn, *args, pure=False)

    def close(self) -> None:
        if self._own:
            self.client.close()


ExecutorFactory = Callable[[Settings], Executor]
_REGISTRY: dict[str, ExecutorFactory] = {}


def register_executor(name: str, factory: ExecutorFactory) -> None:
    """Make ``factory(settings)`` available as executor ``name``."""
    _REGISTRY[name.lower()] = factory


def list_executors() -> list[str]:
    return sorted(_REGISTRY)


def get_executor(name: str | None, settings: Settings) -> Executor:
    """The executor ``name`` (default ``settings.executor``, else ``dask`` when
    ``settings.dask_scheduler_address`` is set, else ``local``)."""
    chosen = name or settings.executor
    if not chosen:
        chosen = "dask" if settings.dask_scheduler_address else "local"
    try:
        factory = _REGISTRY[chosen.lower()]
    except KeyError:
        raise InputError(f"unknown executor {chosen!r}; available: {', '.join(list_executors())}") from None
    return factory(settings)


register_executor("inline", lambda settings: InlineExecutor())
register_executor("local", lambda settings: LocalProcessExecutor(settings.worker_processes))
register_executor("dask", lambda settings: DaskExecutor(settings.dask_scheduler_address))
