"""Generation-stage scaling across Dask worker processes (for the lent 16-core machine).

    python -m benchmarks.scaling --workers 1,2,4,8,16 --mpans 32000 --days 28 --json out.json

Parquet-only delivery (every participant slice), the bench scenario, fixed work units.
For each worker count: start a LocalCluster (single-threaded worker processes), warm every
worker (imports, holiday tables), then time only the fan-out of all units. Efficiency at n
workers = T(1) / (n x T(n)). Prefect is not involved (the stage runs on Dask alone).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from dask.distributed import Client, wait

from mhhs_pipeline import stages
from mhhs_pipeline.distributed import local_cluster
from mhhs_pipeline.runner import run_unit

ROOT = Path(__file__).resolve().parents[1]


def _warm():
    import numpy as np

    import mhhs_pipeline.runner  # noqa: F401  (imports are part of start-up, not of the stage)
    from mhhs_pipeline.core.calendar import day_types

    day_types(np.arange(20000, 21000), scotland=True)
    day_types(np.arange(20000, 21000), scotland=False)
    return os.getpid()


def _peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(n_workers: int, mpans: int, days: int, unit_mpans: int) -> dict:
    overrides = {
        "population.mpans": mpans,
        "window.end": None,
        "partitioning.mpans_per_unit": unit_mpans,
        "partitioning.days_per_unit": days,
        "outputs.formats": ["parquet"],
        "outputs.report": False,
    }
    import datetime as dt

    base = stages.load_scenario(str(ROOT / "configs/scenarios/bench.yaml"))
    overrides["window.end"] = (base.scenario.window.start + dt.timedelta(days=days - 1)).isoformat()
    loaded = stages.load_scenario(str(ROOT / "configs/scenarios/bench.yaml"), overrides)
    out = tempfile.mkdtemp(prefix="mhhs-scaling-")
    try:
        jobs = stages.unit_jobs(loaded, out, f"w{n_workers}")
        t0 = time.perf_counter()
        cluster = local_cluster(n_workers, memory_limit=0)
        client = Client(cluster)
        client.wait_for_workers(n_workers)
        pids = client.run(_warm)
        start_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        futures = client.map(run_unit, jobs, pure=False)
        wait(futures)
        results = client.gather(futures)
        stage_s = time.perf_counter() - t1
        rss = client.run(_peak_rss_mb)
        client.close()
        cluster.close()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    unique = sum(r.half_hours for r in results)
    parquet_rows = sum(rec.rows for r in results for rec in r.records if rec.format == "parquet")
    return {
        "workers": n_workers,
        "units": len(jobs),
        "cluster_start_s": round(start_s, 2),
        "stage_s": round(stage_s, 2),
        "unique_half_hour_values": unique,
        "parquet_rows_all_copies": parquet_rows,
        "values_per_s": round(unique / stage_s),
        "parquet_rows_per_s_per_worker": round(parquet_rows / stage_s / n_workers),
        "peak_rss_mb_max_worker": round(max(rss.values()), 1),
        "worker_processes": len(pids),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts; the first is the baseline")
    ap.add_argument("--mpans", type=int, default=4000)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--unit-mpans", type=int, default=500)
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    rows = [measure(n, args.mpans, args.days, args.unit_mpans) for n in counts]
    base = rows[0]
    for r in rows:
        r["efficiency_vs_first"] = round(base["stage_s"] * base["workers"] / (r["workers"] * r["stage_s"]), 3)
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}, "mpans": args.mpans, "days": args.days, "unit_mpans": args.unit_mpans, "runs": rows}
    print("| workers | units | stage s | values/s | parquet rows/s/worker | efficiency | peak RSS MB/worker |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['units']} | {r['stage_s']} | {r['values_per_s']:,} | {r['parquet_rows_per_s_per_worker']:,} | {r['efficiency_vs_first']} | {r['peak_rss_mb_max_worker']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
