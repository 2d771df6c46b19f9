"""The only module that imports Dask: run work units on a cluster.

By default a ``LocalCluster`` of single-threaded worker processes sized to the machine
(numpy work holds the GIL often enough that processes beat threads); with an address,
an existing scheduler. Units are idempotent (deterministic file names and bytes), so a
unit lost with a worker is simply retried.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

import dask
from dask.distributed import Client, LocalCluster, as_completed
from tqdm import tqdm


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def local_cluster(n_workers: int, *, malloc_trim: bool = False, **kwargs: Any) -> LocalCluster:
    """The embedded default: ``n_workers`` single-threaded worker processes.

    Workers keep the memory they free for the next unit instead of handing it back to the
    kernel. Each unit allocates and frees the same few hundred MB; given back, every page is
    faulted and zeroed again next unit -- and on virtual machines that return free memory
    to the host (the CI machine) the host backs it afresh, which made the first CSV write
    path spend ~40 % of a worker in the kernel. So: glibc's mmap threshold fixed at its
    32 MB maximum with a 1 GB trim threshold (Dask's own MALLOC_TRIM_THRESHOLD_=65536
    instead disabled the adaptive threshold, mapping every large array afresh: generation
    ~3x slower), and mimalloc (pyarrow's pool) never purges. Measured: page faults per
    unit after the first ~20,000 -> ~100; peak RSS is the largest unit's, as before.
    ``malloc_trim=True`` keeps Dask's setting (for comparison in benchmarks).
    """
    # Dask's statistical profiler samples each worker's stack every 10 ms (for the
    # dashboard's profile page, which the embedded cluster does not serve): measured at
    # ~8 % of a unit's CPU here (0.92 vs 1.00 s per 1,000-MPAN unit, one worker).
    # Tasks run in a worker thread, which glibc gives an arena of its own; over many units
    # it fragments (peak RSS 0.56 -> 0.66 GB from 4 to 16 units per worker). One arena:
    # 0.55 -> 0.59 GB, and no CPU cost measurable here.
    # numpy asks for transparent huge pages on every array of 4 MB or more; on this kind of
    # VM each first touch of a 2 MB page then costs ~50 us (zeroed, and backed afresh by the
    # host): a worker's first unit took 1.30 s instead of 0.87 s (system time 0.65 -> 0.20 s),
    # with no measurable difference on the units after it.
    cfg = {
        "distributed.worker.profile.enabled": False,
        "distributed.nanny.pre-spawn-environ.MALLOC_ARENA_MAX": 1,
        "distributed.nanny.pre-spawn-environ.MIMALLOC_PURGE_DELAY": -1,
        "distributed.nanny.pre-spawn-environ.NUMPY_MADVISE_HUGEPAGE": 0,
    }
    if not malloc_trim:
        cfg["distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"] = 1 << 30
        cfg["distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_"] = 32 << 20
    options = {"threads_per_worker": 1, "processes": True, "dashboard_address": None, "silence_logs": 40, **kwargs}
    saved = os.environ.copy()
    try:
        with dask.config.set(cfg):
            return LocalCluster(n_workers=n_workers, **options)
    finally:
        # Dask's nanny writes pre-spawn-environ into this process's own environment, where a
        # variable then overrides the next cluster's configuration (and reaches every child
        # process): put the environment back as it was.
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)


def run_on_dask(
    fn: Callable[[Any], Any],
    jobs: Iterable[Any],
    *,
    workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
    description: str = "generating",
    retries: int = 2,
) -> list[Any]:
    """``[fn(job) for job in jobs]`` on Dask, in job order, with a progress bar."""
    jobs = list(jobs)
    # Prefect's logging config turns Dask's INFO chatter on; the progress bar says enough.
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core", "distributed.worker"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if address:
        client = Client(address, set_as_default=False)
        cluster = None
    else:
        cluster = local_cluster(workers or default_workers())
        client = Client(cluster, set_as_default=False)
    try:
        futures = client.map(fn, jobs, pure=False, retries=retries)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(jobs)
        with tqdm(total=len(jobs), desc=description, unit="unit", disable=not progress, leave=False) as bar:
            for fut in as_completed(futures, loop=client.loop):
                results[index[fut.key]] = fut.result()
                bar.update(1)
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
