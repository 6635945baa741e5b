"""Where a sweep's points run: in this process, or on Dask distributed (a local cluster or any scheduler).

One small interface, `Executor`: `run(fn, tasks)` yields (task index, result) as points finish, so
another backend (Ray, a batch queue) is one class more. `fn` must be importable by the workers
(a module-level function); a task a worker could not finish (the worker died) yields a `Lost` result.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from plurigrid.errors import UsageError


@dataclass(frozen=True)
class Lost:
    """A task whose worker failed outside the task's own code (killed, out of memory, connection lost)."""

    error: str


class Executor(Protocol):
    workers: int

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Yields (index in `tasks`, fn(task) or Lost) in the order the tasks finish."""
        ...

    def close(self) -> None: ...


class SerialExecutor:
    """Runs every task in this process, one after another (the reference a distributed run must equal)."""

    workers = 1

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        for i, task in enumerate(tasks):
            yield i, fn(task)

    def close(self) -> None:
        pass


class DaskExecutor:
    """Dask distributed: a local cluster of `workers` single-threaded processes, or the scheduler at `scheduler`."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise UsageError("sweeps on Dask need the sweep extra: pip install 'plurigrid[sweep]'") from None
        self._cluster = None
        if scheduler is not None:
            try:
                self._client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise UsageError(f"--scheduler: cannot reach a Dask scheduler at {scheduler} ({exc})") from None
            self.workers = max(len(self._client.scheduler_info().get("workers", {})), 1)
        else:
            n = workers or os.cpu_count() or 1
            self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                         scheduler_kwargs={"dashboard": False},
                                         silence_logs=logging.ERROR)
            self._client = Client(self._cluster)
            self.workers = n

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        futures = self._client.map(fn, list(tasks), pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        for future in as_completed(futures):
            i = index[future.key]
            try:
                yield i, future.result()
            except Exception as exc:  # the worker died or the task could not be sent: the point is lost, not the sweep
                yield i, Lost(f"{exc.__class__.__name__}: {exc}")
            future.release()

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(*, serial: bool = False, workers: int | None = None, scheduler: str | None = None) -> Executor:
    """The executor a sweep asked for: this process, a local Dask cluster (the default) or a scheduler's."""
    if workers is not None and workers < 1:
        raise UsageError(f"--workers: expected at least 1, got {workers}")
    if serial and (workers is not None or scheduler is not None):
        raise UsageError("--serial runs in this process; it takes neither --workers nor --scheduler")
    if scheduler is not None and workers is not None:
        raise UsageError("--workers sizes a local cluster; a scheduler at --scheduler has its own workers")
    if serial:
        return SerialExecutor()
    return DaskExecutor(workers, scheduler)
