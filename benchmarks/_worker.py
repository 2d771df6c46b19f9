"""Functions the benchmark ships to Dask workers (importable, so they pickle by reference).

``measured_run_unit`` wraps :func:`mhhs_pipeline.runner.run_unit` unchanged and returns,
with its result, what the benchmark needs from inside the worker process: the process's
resident-set high-water mark (the peak since the worker started, so the max over a
worker's tasks is that worker's peak), the CPU seconds the unit took (all threads of the
process), its wall seconds and its place in the worker's sequence of units.

The peak is ``VmHWM`` from ``/proc/self/status`` where there is one. ``ru_maxrss`` is kept
as a fallback only: Linux carries it across ``execve``, so a worker spawned by a parent
that once held a lot of memory reports the parent's peak (seen: 11.5 GB in every worker
after DuckDB had run in the parent).
"""

from __future__ import annotations

import os
import resource
import sys
import time

from mhhs_pipeline.runner import UnitJob, run_unit


def _ru_maxrss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _maxrss_bytes() -> int:
    """This process image's peak RSS: VmHWM (Linux), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return _ru_maxrss_bytes()


def _rss_now_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def rss_probe() -> dict:
    """The worker's RSS now and its high-water mark (run before any unit: the idle baseline)."""
    return {
        "pid": os.getpid(),
        "rss_bytes": _rss_now_bytes(),
        "maxrss_bytes": _maxrss_bytes(),
        "ru_maxrss_bytes": _ru_maxrss_bytes(),
    }


_units_run = 0  # in this worker process


def measured_run_unit(job: UnitJob) -> dict:
    global _units_run
    _units_run += 1
    seq = _units_run
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = run_unit(job)
    return {
        "result": result,
        "pid": os.getpid(),
        "seq": seq,  # 1 = the worker's first unit (pays its warm-up)
        "wall_s": time.perf_counter() - wall0,
        "cpu_s": time.process_time() - cpu0,
        "maxrss_bytes": _maxrss_bytes(),
        "ru_maxrss_bytes": _ru_maxrss_bytes(),
    }
