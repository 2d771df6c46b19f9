"""The only module that imports Dask: run work units on a cluster.

By default a ``LocalCluster`` of single-threaded worker processes sized to the machine
(numpy work holds the GIL often enough that processes beat threads); with an address,
an existing scheduler. Units are idempotent (deterministic file names and bytes), so a
unit lost with a worker is simply retried.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import dask
import yaml
from dask.distributed import Client, LocalCluster, as_completed
from tqdm import tqdm


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


WORKER_CONFIG = Path(__file__).with_name("dask_worker.yaml")
_GLIBC_KEEP = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


def worker_config(*, malloc_trim: bool = False) -> dict[str, Any]:
    """The Dask settings of ``dask_worker.yaml`` as dotted keys (for ``dask.config.set``,
    which replaces a whole subtree when given a nested dict). The container image installs
    the same file as ``/etc/dask/mhhs.yaml``. ``malloc_trim=True`` leaves glibc's trimming
    as Dask sets it (for comparison in benchmarks)."""
    cfg = _flatten(yaml.safe_load(WORKER_CONFIG.read_text()))
    if malloc_trim:
        for name in _GLIBC_KEEP:
            cfg.pop(f"distributed.nanny.pre-spawn-environ.{name}")
    return cfg


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
    # Why each setting (measured on a 2-core VM): Dask's statistical profiler cost ~8 % of a
    # unit's CPU (0.92 vs 1.00 s per 1,000-MPAN unit, one worker); a worker thread's own
    # glibc arena fragments over many units (peak RSS 0.56 -> 0.66 GB from 4 to 16 units per
    # worker; one arena: 0.55 -> 0.59 GB); numpy's transparent huge pages made each first
    # touch of a 2 MB page cost ~50 us (a worker's first unit 1.30 s instead of 0.87 s).
    cfg = worker_config(malloc_trim=malloc_trim)
    # Workers log a failed unit with its traceback; the error reaches the client, which says it in one line.
    options = {"threads_per_worker": 1, "processes": True, "dashboard_address": None, "silence_logs": logging.CRITICAL, **kwargs}
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


class ClusterUnavailable(RuntimeError):
    """The Dask scheduler named by an address cannot be used."""


def check_scheduler(address: str, timeout_s: float = 15.0) -> int:
    """Connect to the scheduler at ``address`` and return its number of workers; raise
    :class:`ClusterUnavailable` with one clear line when it cannot be reached. Run before
    a run touches its output, so an unreachable cluster never costs a previous run."""
    from distributed.comm.addressing import parse_address

    try:
        parse_address(address, strict=True)
    except ValueError:
        raise ClusterUnavailable(f"--dask-address {address!r} is not a scheduler address: use e.g. tcp://10.0.0.5:8786") from None
    try:
        with Client(address, timeout=timeout_s, set_as_default=False) as client:
            return len(client.scheduler_info(n_workers=-1).get("workers", {}))
    except (OSError, TimeoutError) as exc:
        raise ClusterUnavailable(f"cannot reach the Dask scheduler at {address} within {timeout_s:.0f} s: {exc}") from None


def run_on_dask(
    fn: Callable[[Any], Any],
    jobs: Iterable[Any],
    *,
    workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
    description: str = "generating",
    retries: int = 2,
    log: Callable[[str], None] | None = None,
    on_result: Callable[[int, int, Any], None] | None = None,
    max_in_flight: int | None = None,
    keep: Callable[[int, Any], Any] | None = None,
) -> list[Any]:
    """``[fn(job) for job in jobs]`` on Dask, in job order, with a progress bar.

    ``log`` receives one line naming the cluster and its dashboard link; ``on_result`` is
    called as ``on_result(done, total, result)`` as each job completes (in completion order),
    and once as ``on_result(0, total, None)`` when the jobs are submitted.
    Local workers are capped at the number of jobs and of cores: a worker without a job or
    a core of its own only costs its start-up and memory. ``max_in_flight``: jobs on the
    cluster at once (default four per worker thread, at least 8). ``keep(index, result)``:
    what to hold of each result (e.g. without a part already folded elsewhere).
    """
    jobs = list(jobs)
    # Prefect's logging config turns Dask's INFO chatter on; the progress bar says enough.
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core", "distributed.worker"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if address:
        client = Client(address, set_as_default=False)
        cluster = None
        where = f"Dask scheduler {address}"
    else:
        requested = workers or default_workers()
        n = max(1, min(requested, len(jobs), default_workers()))
        # The dashboard on loopback only, on a free port (bokeh is installed for it).
        cluster = local_cluster(n, dashboard_address="127.0.0.1:0")
        client = Client(cluster, set_as_default=False)
        where = f"local Dask cluster of {n} worker process{'es' if n > 1 else ''}"
        if n < requested:
            where += f" (not {requested}: {len(jobs)} unit{'' if len(jobs) == 1 else 's'}, {default_workers()} cores)"
    try:
        if log is not None:
            link = client.dashboard_link if _has_dashboard(client) else None
            log(f"{where}: {len(jobs)} unit{'' if len(jobs) == 1 else 's'}" + (f"; dashboard {link}" if link else "; no dashboard"))
        # A bounded window of jobs is on the cluster at a time, refilled as each completes:
        # the scheduler holds a few tasks per worker thread, never the whole plan (a market
        # year is 360,000 units), and a finished future is dropped at once, so its result
        # leaves the worker's memory.
        window = max_in_flight or max(8, 4 * _threads(client))
        index: dict[str, int] = {}
        tries = [0] * len(jobs)
        results: list[Any] = [None] * len(jobs)
        done = 0
        queued = iter(range(len(jobs)))
        pending = as_completed(loop=client.loop)

        def submit(i: int) -> None:
            fut = client.submit(fn, jobs[i], pure=False)
            index[fut.key] = i
            pending.add(fut)

        for i in itertools.islice(queued, window):
            submit(i)
        if on_result is not None:
            on_result(0, len(jobs), None)  # submitted: the stage's clock starts
        with tqdm(total=len(jobs), desc=description, unit="unit", disable=not progress, leave=False) as bar:
            for fut in pending:
                i = index.pop(fut.key)
                if fut.status == "error":
                    exc = fut.exception()
                    # A unit that failed for good (e.g. a full disk) fails the run now; others
                    # (a lost worker, a storage hiccup) are run again, up to ``retries`` times.
                    if getattr(exc, "permanent", False) or tries[i] >= retries:
                        client.cancel(list(pending.futures))
                        raise exc.with_traceback(fut.traceback())
                    tries[i] += 1
                    submit(i)
                    continue
                results[i] = fut.result() if keep is None else keep(i, fut.result())
                fut.release()
                done += 1
                bar.update(1)
                nxt = next(queued, None)
                if nxt is not None:
                    submit(nxt)
                if on_result is not None:
                    on_result(done, len(jobs), results[i])
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _threads(client: Client) -> int:
    try:
        return sum(w.get("nthreads", 1) for w in client.scheduler_info(n_workers=-1).get("workers", {}).values()) or 1
    except Exception:  # an unusual scheduler: the floor of 8 in flight holds
        return 1


def _has_dashboard(client: Client) -> bool:
    try:
        return "dashboard" in client.scheduler_info().get("services", {})
    except Exception:  # an old or unusual scheduler: no link rather than no run
        return False
