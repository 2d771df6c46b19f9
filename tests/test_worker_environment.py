"""The embedded cluster's workers run with the settings the README tells external workers to
use: memory kept for the next unit, numpy without huge-page requests, no profiler; and the
calling process's own environment is left as it was, so a second cluster gets its own."""

from __future__ import annotations

import os

from dask.distributed import Client

from mhhs_pipeline.distributed import local_cluster


def _settings() -> dict:
    import dask

    keys = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MIMALLOC_PURGE_DELAY", "NUMPY_MADVISE_HUGEPAGE")
    return {**{k: os.environ.get(k) for k in keys}, "profile": dask.config.get("distributed.worker.profile.enabled")}


def test_workers_get_the_documented_environment():
    before = dict(os.environ)
    with local_cluster(1) as cluster, Client(cluster) as client:
        # Dask's nanny writes these into the parent's environment; local_cluster puts it back
        assert dict(os.environ) == before
        (got,) = client.run(_settings).values()
    assert got == {
        "MALLOC_ARENA_MAX": "1",
        "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
        "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
        "MIMALLOC_PURGE_DELAY": "-1",
        "NUMPY_MADVISE_HUGEPAGE": "0",
        "profile": False,
    }
    with local_cluster(1, malloc_trim=True) as cluster, Client(cluster) as client:
        (got,) = client.run(_settings).values()
    assert got["MALLOC_TRIM_THRESHOLD_"] == "65536" and got["MALLOC_MMAP_THRESHOLD_"] is None
