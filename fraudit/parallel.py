"""Where parallel work runs: this machine's processes (joblib's loky pool) or a Dask
cluster (``dask.distributed``: a running scheduler, or a local cluster of
processes started for the run). fraudit schedules nothing itself.

Scans submit one task per candidate and read the results back in input order
(``results_in_order``); zoo builds hand their per-model work to joblib, whose Dask
backend sends it to the cluster (the base and cached features scattered once per
round, ``joblib_backend``)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fraudit.errors import FrauditError


class Backend(enum.StrEnum):
    LOCAL = "local"
    DASK = "dask"


class BackendUnavailableError(FrauditError):
    """The Dask backend is not installed, or its scheduler cannot be reached."""


@dataclass(frozen=True)
class Workers:
    """``jobs``: local processes, or the workers of the local Dask cluster started when
    no ``scheduler`` address is given (a running cluster has its own)."""

    backend: Backend = Backend.LOCAL
    jobs: int = 1
    scheduler: str | None = None

    def describe(self) -> str:
        if self.backend is Backend.LOCAL:
            return f"{self.jobs} local process(es)"
        return f"the Dask cluster at {self.scheduler}" if self.scheduler else f"a local Dask cluster of {self.jobs} process(es)"


@dataclass(frozen=True)
class TaskFailed:
    """A task that did not return: what it raised, or why its worker died."""

    error: BaseException

    def __str__(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"


@contextmanager
def dask_client(workers: Workers) -> Iterator[Any]:
    """A ``distributed.Client`` for ``workers``, closed (with its local cluster) on exit."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise BackendUnavailableError("--backend dask needs Dask: pip install 'fraudit[dask]'") from None
    cluster = None
    try:
        if workers.scheduler is not None:
            client = Client(workers.scheduler, timeout="10s")
        else:
            cluster = LocalCluster(n_workers=workers.jobs, threads_per_worker=1, processes=True,
                                   dashboard_address=":0")
            client = Client(cluster)
    except OSError as exc:  # a scheduler that does not answer: distributed raises TimeoutError/OSError
        raise BackendUnavailableError(f"cannot reach the Dask scheduler at {workers.scheduler}: {exc}") from None
    except RuntimeError as exc:  # a local cluster whose worker processes did not start
        raise BackendUnavailableError(f"cannot start a local Dask cluster: {exc}") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def results_in_order(workers: Workers, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> Iterator[Any]:
    """``fn(*call)`` for every call on ``workers``, yielded in the calls' order as each
    is ready: the value, or a ``TaskFailed``. One task's failure is its own: a task
    whose worker died — it crashed it, or a crash beside it took it down — runs once
    more, and its second answer is final. On Dask a dead worker takes down the tasks
    it held; loky's pool breaks as a whole, so there the task runs again alone and the
    later ones the break took down are submitted again."""
    if workers.backend is Backend.DASK:
        from distributed import KilledWorker

        with dask_client(workers) as client:
            # pure=False: two calls with equal arguments are still two tasks
            futures = [client.submit(fn, *call, pure=False) for call in calls]
            for call, future in zip(calls, futures):
                outcome = _outcome(future)
                if isinstance(outcome, TaskFailed) and isinstance(outcome.error, KilledWorker):
                    outcome = _outcome(client.submit(fn, *call, pure=False))
                yield outcome
        return
    from joblib.externals.loky import ProcessPoolExecutor

    # a pool of its own (not joblib's shared one), so a break here is this scan's alone
    pool = ProcessPoolExecutor(max_workers=workers.jobs)
    try:
        futures = [pool.submit(fn, *call) for call in calls]
        for i, call in enumerate(calls):
            outcome = _outcome(futures[i])
            if isinstance(outcome, TaskFailed) and isinstance(outcome.error, BrokenProcessPool):
                pool.shutdown(wait=False)
                with ProcessPoolExecutor(max_workers=1) as alone:
                    outcome = _outcome(alone.submit(fn, *call))
                pool = ProcessPoolExecutor(max_workers=workers.jobs)
                futures[i + 1 :] = [f if f.done() and f.exception() is None else pool.submit(fn, *c)
                                    for f, c in zip(futures[i + 1 :], calls[i + 1 :])]
            yield outcome
    finally:
        pool.shutdown(wait=False)


def _outcome(future: Any) -> Any:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - the task's failure, reported as its own
        return TaskFailed(exc)


@contextmanager
def joblib_backend(workers: Workers, *, scatter: Sequence[Any] = ()) -> Iterator[int]:
    """joblib's parallel backend for ``workers``; yields the ``n_jobs`` to pass to
    ``joblib.Parallel`` (−1 on a cluster: as many as it has). ``scatter``: arguments
    every task shares, sent to the cluster once instead of inside each task."""
    if workers.backend is Backend.LOCAL:
        yield workers.jobs
        return
    from joblib import parallel_config

    with dask_client(workers), parallel_config(backend="dask", scatter=list(scatter) or None):
        yield -1
