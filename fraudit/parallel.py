"""Where parallel work runs: this machine's processes (joblib's loky pool) or a Dask
cluster (``dask.distributed``: a running scheduler, or a local cluster of
processes started for the run). fraudit schedules nothing itself.

Scans submit one task per candidate and read the results back in input order; zoo
builds hand their per-model work to joblib, whose Dask backend sends it to the
cluster (scattering the cached features once)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

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


class Future(Protocol):
    def result(self) -> Any: ...


class Pool(Protocol):
    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future: ...


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


class _DaskPool:
    def __init__(self, client: Any) -> None:
        self.client = client

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        # pure=False: two candidates with equal arguments are still two tasks
        return self.client.submit(fn, *args, pure=False)


@contextmanager
def task_pool(workers: Workers) -> Iterator[Pool]:
    """Something to ``submit(fn, *args)`` to: futures whose ``result()`` raises what the
    task raised, or why its worker died."""
    if workers.backend is Backend.DASK:
        with dask_client(workers) as client:
            yield _DaskPool(client)
        return
    from joblib.externals.loky import get_reusable_executor

    yield get_reusable_executor(max_workers=workers.jobs)


@contextmanager
def joblib_backend(workers: Workers) -> Iterator[int]:
    """joblib's parallel backend for ``workers``; yields the ``n_jobs`` to pass to
    ``joblib.Parallel`` (−1 on a cluster: as many as it has)."""
    if workers.backend is Backend.LOCAL:
        yield workers.jobs
        return
    from joblib import parallel_config

    with dask_client(workers), parallel_config(backend="dask"):
        yield -1
