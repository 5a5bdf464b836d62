"""Where jobs run: an ``Executor`` Protocol and a registry of implementations.

* ``inline``: in the calling thread (tests, ``eowatch worker --once``);
* ``local``: a pool of worker processes (``concurrent.futures``, spawn start
  method: safe in a threaded process, no inherited GDAL state);
* ``dask``: a Dask distributed cluster at ``settings.dask_scheduler_address``
  (or a ``distributed.Client`` passed in), e.g. a ``LocalCluster``.

``get_executor(None, settings)`` picks ``dask`` when a scheduler address is
configured, else ``local``. New kinds: ``register_executor(name, factory)``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol, runtime_checkable

from ..errors import InputError
from ..settings import Settings

__all__ = [
    "Executor",
    "FutureLike",
    "InlineExecutor",
    "LocalProcessExecutor",
    "DaskExecutor",
    "register_executor",
    "get_executor",
    "list_executors",
]


@runtime_checkable
class FutureLike(Protocol):
    """What ``submit`` returns: ``concurrent.futures.Future`` and ``distributed.Future`` both fit."""

    def done(self) -> bool: ...

    def result(self, timeout: float | None = None) -> Any: ...


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


class LocalProcessExecutor:
    """A pool of ``workers`` processes (default: CPU count, at most 4)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = int(workers or min(4, os.cpu_count() or 1))
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> FutureLike:
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


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
