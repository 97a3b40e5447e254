"""Which Prefect task runner runs the heavy, partitioned stages (embedding, scoring): ``execution.runner``.

``local``: partitions run in the flow's process (Prefect's thread pool, one at a time: torch already uses every
core). ``dask``: ``prefect-dask``'s ``DaskTaskRunner``, on the cluster at ``execution.dask.address`` or on a
``distributed.LocalCluster`` it starts for the flow run (``n_workers`` processes x ``threads_per_worker``, on
loopback, no dashboard) and stops at the end. No cluster code of our own.
"""
from __future__ import annotations

from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from genre_core.config import GenreConfig


def task_runner_for(cfg: GenreConfig) -> Any:
    """The task runner for ``cfg.execution`` (a fresh instance: a runner is entered by one flow run)."""
    ex = cfg.execution
    if ex.runner == "local":
        return ThreadPoolTaskRunner(max_workers=1)
    try:
        from prefect_dask import DaskTaskRunner  # noqa: PLC0415
    except ImportError as exc:
        raise RuntimeError("execution.runner=dask needs prefect-dask: pip install 'prefect-dask==0.3.7' "
                           "(or the project's 'dask' extra)") from exc
    if ex.dask.address:
        return DaskTaskRunner(address=ex.dask.address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": ex.dask.n_workers, "threads_per_worker": ex.dask.threads_per_worker,
                        "processes": True, "host": "127.0.0.1", "dashboard_address": None},
    )
