"""Fixtures for the scale-out tests: a real Dask LocalCluster (2 workers x 1 thread) shared by the module,
a Prefect test harness, and the tiny encoders of the features tests."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.features.conftest import poster_dir, tiny_bert, tiny_vit  # noqa: F401 - shared fixtures

@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    """Address of a local Dask cluster with 2 worker processes of 1 thread each, on loopback."""
    pytest.importorskip("prefect_dask", reason="execution.runner=dask needs prefect-dask (the 'dask' extra)")
    distributed = pytest.importorskip("distributed", reason="needs dask.distributed (the 'dask' extra)")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    # the workers import the model stack while the Prefect harness starts (exec: pickled by reference, like
    # any builtin, where a function of this conftest could not be imported by the workers)
    warm = [client.submit(exec, "import transformers, genre_core.features.partitioned, genre_core.recommend.pipeline",
                          workers=[w], pure=False) for w in client.scheduler_info()["workers"]]
    try:
        yield cluster.scheduler_address
    finally:
        del warm
        client.close()
        cluster.close()

@pytest.fixture(scope="module")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect server and database for the flows of the module."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield

@pytest.fixture
def recs_factory():
    from tests.recommend.conftest import synthetic_recs

    return synthetic_recs

@pytest.fixture
def run_factory():
    from tests.recommend.conftest import run_record

    return run_record
