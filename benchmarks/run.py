"""Market-scale benchmark (issue 6): throughput, baseline, scaling, memory, size, in one run.

    .venv/bin/python -m benchmarks.run [--quick] [--workers N] [--out DIR] [--profile]
        [--sections parquet,scaling,memory,mixed,csv,quickstart,stages,profile] [--scale F]
        [--sizes parquet=24000,csv=18000,mixed=8000] [--dask-malloc-trim]

(``make bench`` runs it with the defaults: ~4.5 min on 2 cores.) Every measurement runs in
this one process tree in this one run, so the baseline and the ratios see the same
machine and the same load:

parquet     Parquet-only run (``outputs.formats: [parquet]``, every participant slice) of
            ``configs/scenarios/bench.yaml``, through the library exactly as the flow runs
            it but without Prefect: ``stages`` -> a ``LocalCluster`` of single-threaded
            worker processes -> ``distributed.run_on_dask(runner.run_unit)`` (wrapped by
            ``benchmarks._worker`` to measure inside the worker) -> README files ->
            manifest. Rate = every row the manifest lists for a Parquet file (all
            datasets -- consumption, meter_reads_raw, ground_truth, registrations -- and
            all participant copies) / wall seconds / cores used; the mix is printed.
csv         The same with ``outputs.formats: [csv]``: CSV rate; then the same bytes landed
            alone from memory through the page cache and with direct I/O (how the store
            lands large local files), for what landing costs each way on this machine.
scaling     The parquet run again with one worker: efficiency = T1 / (N x TN) of the
            run-units stage (cluster already up). Beyond 32 units the one worker runs
            the first 32 and T1 is extrapolated (x planned / run).
memory      The parquet run at a quarter of the volume, same work unit: peak RSS per
            worker process (VmHWM read inside the worker) at both volumes.
mixed       The quickstart's formats (read from configs/quickstart.yaml) on the bench
            population, and in the same run DuckDB (threads = cores used, in a child
            process) building a table of the same row count and shape (mpan_core
            VARCHAR(13), period_end_utc TIMESTAMPTZ, consumption_kwh DOUBLE pseudo-random,
            quality VARCHAR) and writing it with COPY ... TO Parquet (zstd) and CSV. Rows
            counted on both sides: the rows written as Parquet plus those written as CSV
            (ours: all datasets and participant copies, as above). Our other formats
            (wide CSV, IF-021, DCC XML) are written in our wall time but not counted.
quickstart  ``python -m flows.cli run configs/quickstart.yaml --out TMP --no-progress`` as a
            subprocess: the user's wall time, Prefect's temporary server included.
stages      one work unit in this process, stage by stage (``benchmarks.stage_costs``):
            CPU seconds of generation, slicing, Parquet encoding, CSV rendering, sha256
            and file writes, per row written -- what bounds the end-to-end rates.
profile     (``--profile``) one work unit per format set under pyinstrument, in this
            process; text profiles and a hot-spot table go to the output folder.

"Wall" of a pipeline run = plan + prepare run dir + cluster start + run units + READMEs +
manifest (the run is complete when its manifest lands); cluster shutdown is reported apart.
"Start-up" = plan + prepare + cluster start. Cores used = min(workers, CPUs available).
Rates per worker-CPU-second are printed too: they move less than wall rates when other
processes share the machine. Landed data goes to a temporary folder under the system
temp dir: each section's files are emptied (truncated, freeing the disk) when it ends and
deleted only at the end of the benchmark -- on ext4 without a journal (this VM's disk) a
file created within minutes of many deletions costs ~0.3-1 ms of kernel time instead of
~0.04 (the allocator steps over every recently deleted inode: ``recently_deleted`` in
perf), so deleting one section's thousands of files would slow the next section's.
Results go to ``--out`` (default ``benchmarks/results``)
as ``bench-<N>w.json`` / ``.md`` (``quick-<N>w.*`` with ``--quick``), rewritten after
every section so a killed run keeps what it measured, plus ``profile-*.txt``.
Workers are started exactly as the pipeline starts them (``distributed.local_cluster``:
without the ``MALLOC_TRIM_THRESHOLD_=65536`` Dask puts in their environment);
``--dask-malloc-trim`` keeps Dask's setting, for comparison.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import defaultdict
from pathlib import Path

import yaml

# The scheduler's HTTP server falls back to a free port when another cluster holds 8787.
warnings.filterwarnings("ignore", message="Port 8787 is already in use")

ROOT = Path(__file__).resolve().parents[1]
BENCH_SCENARIO = ROOT / "configs" / "scenarios" / "bench.yaml"
QUICKSTART = ROOT / "configs" / "quickstart.yaml"
GB = 1e9
ENV0 = dict(
    os.environ
)  # Dask's nanny exports MALLOC_TRIM_THRESHOLD_ into this process; children get the original
MIB = 1 << 20

# MPANs per worker for each measurement at full size (the bench unit is 1,000 MPANs x 28 days,
# ~1.48 M canonical rows, ~5.9 M rows once split to the four participant copies). Chosen so
# that start-up stays under 10 % of the wall time and the whole run takes ~6-8 min on 2 cores.
FULL = {"parquet": 24_000, "csv": 18_000, "mixed": 8_000, "overrides": {}, "quickstart_args": []}
# --quick: exercises every code path in about two minutes; its figures are not the floors' test.
QUICK = {
    "parquet": 2_000,
    "csv": 1_000,
    "mixed": 500,
    "overrides": {
        "window.end": "2026-10-25",
        "partitioning.mpans_per_unit": 500,
        "partitioning.days_per_unit": 7,
    },
    "quickstart_args": ["--mpans", "200"],
}
SECTIONS = ("parquet", "csv", "scaling", "memory", "mixed", "quickstart", "stages", "profile")
CSV_BYTES_PER_ROW = 80  # for the free-disk check before a CSV run
PROBE_BYTES = 8 << 30  # the landing probes: enough to leave the page cache's cheap start behind
SCALING_MAX_UNITS = 32  # the 1-worker run's units; more are extrapolated (T1 = t x planned / run)

FLOORS = {
    "parquet_rows_per_s_per_core": 10e6,
    "csv_rows_per_s_per_core": 4e6,
    "mixed_vs_duckdb": 1.0,
    "efficiency_2": 0.75,
    "efficiency_16": 0.80,
    "peak_rss_per_worker_bytes": 1.5 * GB,
    "parquet_bytes_per_value": 2.0,
}


def log(msg: str) -> None:
    print(f"[bench {dt.datetime.now(dt.UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def available_cores() -> int:
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )


# ----------------------------------------------------------------------------------------
# One pipeline run without Prefect, timed stage by stage.


def pipeline_run(
    label: str,
    scenario_url: str,
    overrides: dict,
    workers: int,
    tmp_root: Path,
    max_units: int | None = None,
    malloc_trim: bool = False,
) -> dict:
    from dask.distributed import Client

    from benchmarks._worker import measured_run_unit, rss_probe
    from mhhs_pipeline import stages
    from mhhs_pipeline.distributed import local_cluster, run_on_dask

    out = str(tmp_root / label)
    run_id = f"bench-{label}"
    load_before = os.getloadavg()
    t = {}
    t0 = time.perf_counter()
    loaded = stages.load_scenario(scenario_url, overrides)
    planned = stages.unit_jobs(loaded, out, run_id)
    jobs = (
        planned[:max_units] if max_units else planned
    )  # a prefix: the 1-worker scaling run on a big machine
    t["plan"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    store = stages.prepare_run(out, run_id)
    t["prepare"] = time.perf_counter() - t1

    t1 = time.perf_counter()
    # The pipeline's own cluster; malloc_trim=True keeps Dask's MALLOC_TRIM_THRESHOLD_ (the
    # comparison behind proposal 1).
    cluster = local_cluster(workers, malloc_trim=malloc_trim)
    client = Client(cluster, set_as_default=False)
    try:
        client.wait_for_workers(workers)
        t["cluster_start"] = time.perf_counter() - t1
        idle = list(client.run(rss_probe).values())
        worker_env = list(client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values())

        t1 = time.perf_counter()
        outs = run_on_dask(
            measured_run_unit, jobs, address=cluster.scheduler_address, progress=False
        )
        t["run_units"] = time.perf_counter() - t1

        t1 = time.perf_counter()
        results = [o["result"] for o in outs]
        readmes = stages.write_participant_readmes(store, results)
        manifest = stages.manifest_for(loaded, run_id, results, readmes)
        store.write_manifest(manifest)
        t["readmes_manifest"] = time.perf_counter() - t1
    finally:
        t1 = time.perf_counter()
        client.close()
        cluster.close()
        t["cluster_close"] = time.perf_counter() - t1

    wall = t["plan"] + t["prepare"] + t["cluster_start"] + t["run_units"] + t["readmes_manifest"]
    startup = t["plan"] + t["prepare"] + t["cluster_start"]
    cores = min(workers, available_cores())
    peak_by_pid: dict[int, int] = {}
    for o in outs:
        peak_by_pid[o["pid"]] = max(peak_by_pid.get(o["pid"], 0), o["maxrss_bytes"])
    sc = loaded.scenario
    files = manifest["files"]
    warmup = warmup_cpu_s(outs)
    return {
        "label": label,
        "scenario": {
            "file": str(Path(scenario_url).relative_to(ROOT))
            if Path(scenario_url).is_relative_to(ROOT)
            else scenario_url,
            "overrides": overrides,
            "mpans": sc.population.mpans,
            "days": sc.window.days,
            "window": [sc.window.start.isoformat(), sc.window.end.isoformat()],
            "formats": list(sc.outputs.formats),
            "unit": {
                "mpans": sc.partitioning.mpans_per_unit,
                "days": sc.partitioning.days_per_unit,
            },
            "units": len(jobs),
            "units_planned": len(planned),
        },
        "workers": workers,
        "cores_used": cores,
        "worker_malloc_trim_threshold": worker_env[0] if worker_env else None,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "seconds": t,
        "wall_s": wall,
        "startup_s": startup,
        "startup_share": startup / wall,
        "canonical_rows": manifest["totals"]["half_hour_values"],
        "mpans_with_rows": manifest["totals"]["mpans"],
        "units": [
            {
                "unit": o["result"].unit_id,
                "pid": o["pid"],
                "wall_s": o["wall_s"],
                "cpu_s": o["cpu_s"],
                "generate_s": o["result"].generate_seconds,
            }
            for o in outs
        ],
        "unit_cpu_s": sum(o["cpu_s"] for o in outs),
        "warmup_cpu_s": warmup,
        "warmup_share": warmup / (wall * cores),
        "unit_wall_s": sum(o["wall_s"] for o in outs),
        "generate_s": sum(o["result"].generate_seconds for o in outs),
        "peak_rss_bytes_by_worker": {str(k): v for k, v in sorted(peak_by_pid.items())},
        "peak_rss_bytes": max(peak_by_pid.values()) if peak_by_pid else 0,
        "idle_rss_bytes": max((p["rss_bytes"] for p in idle), default=0),
        "by_format": tally(files),
    }


def warmup_cpu_s(outs: list[dict]) -> float:
    """CPU seconds each worker's first unit took beyond its other units' median, summed
    over workers: imports, caches and the first touch of its memory -- start-up that
    "cluster start" does not see, paid once per worker process."""
    by_pid: dict[int, list[tuple[int, float]]] = {}
    for o in outs:
        by_pid.setdefault(o["pid"], []).append((o["seq"], o["cpu_s"]))
    extra = 0.0
    for units in by_pid.values():
        cpus = [c for _, c in sorted(units)]  # in the order the worker ran them
        if len(cpus) > 1:
            extra += max(0.0, cpus[0] - statistics.median(cpus[1:]))
    return extra


def tally(files: list[dict]) -> dict:
    """Per format: manifest rows and bytes of every file of that format (all datasets, all
    participant copies), the central copy's, and the same per dataset."""
    out: dict[str, dict] = {}
    for f in files:
        if f["format"] == "text":  # participant READMEs
            continue
        d = out.setdefault(
            f["format"],
            {
                "rows": 0,
                "bytes": 0,
                "files": 0,
                "central_rows": 0,
                "central_bytes": 0,
                "by_dataset": {},
            },
        )
        ds = d["by_dataset"].setdefault(
            f["dataset"], {"rows": 0, "bytes": 0, "files": 0, "central_rows": 0, "central_bytes": 0}
        )
        for x in (d, ds):
            x["rows"] += f["rows"]
            x["bytes"] += f["bytes"]
            x["files"] += 1
            if f["participant_role"] == "central":
                x["central_rows"] += f["rows"]
                x["central_bytes"] += f["bytes"]
    return out


def dataset_mix(run: dict, fmt: str) -> str:
    """'consumption 80.1 %, meter_reads_raw 19.2 %, ...' of the rows counted for a format."""
    d = run["by_format"].get(fmt)
    if not d or not d["rows"]:
        return "-"
    parts = sorted(d["by_dataset"].items(), key=lambda kv: -kv[1]["rows"])
    return ", ".join(f"{k} {v['rows'] / d['rows']:.1%}" for k, v in parts)


def rates(run: dict, fmt: str) -> dict:
    rows = run["by_format"].get(fmt, {}).get("rows", 0)
    return {
        "format": fmt,
        "rows": rows,
        "rows_per_s": rows / run["wall_s"],
        "rows_per_s_per_core": rows / run["wall_s"] / run["cores_used"],
        "rows_per_worker_cpu_s": rows / run["unit_cpu_s"] if run["unit_cpu_s"] else 0.0,
    }


# ----------------------------------------------------------------------------------------
# DuckDB baseline


def duckdb_baseline(rows_parquet: int, rows_csv: int, days: int, threads: int, tmp: Path) -> dict:
    """The baseline in a fresh child process (its memory never inflates the parent or later workers)."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(_duckdb_baseline, rows_parquet, rows_csv, days, threads, tmp).result()


def _duckdb_baseline(rows_parquet: int, rows_csv: int, days: int, threads: int, tmp: Path) -> dict:
    """DuckDB builds a table of (MPAN, period, pseudo-random kWh, quality) and COPYs
    ``rows_parquet`` of its rows to Parquet and ``rows_csv`` to CSV.

    The row source is a materialised table of row numbers, not ``range()`` directly, and the
    kWh and quality come from ``hash(i)``, not ``random()``: on 16 threads the obvious query
    (``random()`` over ``range()``) built 191 M rows in 50 s, about one core's worth, which
    would understate DuckDB. kWh is uniform on [0, 2) with 3 decimals; ~0.2 % quality E.
    """
    import duckdb

    tmp.mkdir(parents=True, exist_ok=True)
    hh = days * 48
    rows = max(rows_parquet, rows_csv)
    con = duckdb.connect()
    try:
        con.execute(f"SET threads = {int(threads)}")
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET preserve_insertion_order = true")
        t0 = time.perf_counter()
        con.execute(f"CREATE TABLE ids AS SELECT range AS i FROM range({int(rows)})")
        con.execute(
            f"""CREATE TABLE t AS SELECT
                  CAST(1000000000000 + i // {hh} AS VARCHAR) AS mpan_core,
                  TIMESTAMPTZ '2026-10-19 00:00:00+00' + to_minutes(CAST((i % {hh} + 1) * 30 AS BIGINT)) AS period_end_utc,
                  CAST(hash(i) % 2000 AS DOUBLE) / 1000.0 AS consumption_kwh,
                  CASE WHEN hash(2 * i + 1) % 500 = 0 THEN 'E' ELSE 'A' END AS quality
                FROM ids"""
        )
        con.execute("DROP TABLE ids")
        build = time.perf_counter() - t0
        pq_path, csv_path = tmp / "duckdb.parquet", tmp / "duckdb.csv"
        t0 = time.perf_counter()
        src = "t" if rows_parquet == rows else f"(SELECT * FROM t LIMIT {int(rows_parquet)})"
        con.execute(f"COPY {src} TO '{pq_path}' (FORMAT parquet, COMPRESSION zstd)")
        pq_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        src = "t" if rows_csv == rows else f"(SELECT * FROM t LIMIT {int(rows_csv)})"
        con.execute(f"COPY {src} TO '{csv_path}' (FORMAT csv, HEADER)")
        csv_s = time.perf_counter() - t0
    finally:
        con.close()
    res = {
        "rows": {"table": rows, "parquet": rows_parquet, "csv": rows_csv},
        "threads": threads,
        "seconds": {"build": build, "copy_parquet": pq_s, "copy_csv": csv_s},
        "wall_s": build + pq_s + csv_s,
        "bytes": {"parquet": pq_path.stat().st_size, "csv": csv_path.stat().st_size},
    }
    res["rows_per_s"] = (rows_parquet + rows_csv) / res["wall_s"]
    # Per-format rates charge the table build to each format, as our runs charge generation.
    res["parquet_rows_per_s"] = rows_parquet / (build + pq_s)
    res["csv_rows_per_s"] = rows_csv / (build + csv_s)
    shutil.rmtree(tmp, ignore_errors=True)
    return res


# ----------------------------------------------------------------------------------------
# Quickstart through the CLI (Prefect included)


def quickstart_run(tmp: Path, extra: list[str], workers: int | None) -> dict:
    env = dict(ENV0, PREFECT_SERVER_ANALYTICS_ENABLED="false")
    cmd = [
        sys.executable,
        "-m",
        "flows.cli",
        "run",
        str(QUICKSTART),
        "--out",
        str(tmp),
        "--no-progress",
        "--run-id",
        "bench-quickstart",
        *extra,
    ]
    if workers:
        cmd += ["--workers", str(workers)]
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    wall = time.perf_counter() - t0
    res = {
        "command": " ".join(["python", *cmd[1:]])
        .replace(str(tmp), "<tmp>")
        .replace(str(ROOT) + "/", ""),
        "returncode": proc.returncode,
        "wall_s": wall,
    }
    manifest = tmp / "bench-quickstart" / "manifest.json"
    if proc.returncode == 0 and manifest.exists():
        m = json.loads(manifest.read_text())
        res["totals"] = m["totals"]
    else:
        res["stderr_tail"] = proc.stderr[-3000:]
    return res


# ----------------------------------------------------------------------------------------
# Profile of one unit


def profile_units(
    overrides: dict, format_sets: dict[str, list[str]], out_dir: Path, tmp: Path
) -> dict:
    from pyinstrument import Profiler

    from mhhs_pipeline import stages
    from mhhs_pipeline.runner import run_unit

    # Warm-up: imports and first-call caches out of the profile.
    warm = stages.load_scenario(
        str(BENCH_SCENARIO),
        {**overrides, "population.mpans": 20, "partitioning.mpans_per_unit": 20},
    )
    run_unit(stages.unit_jobs(warm, str(tmp / "warm"), "warm")[0])

    summary = {}
    for label, formats in format_sets.items():
        loaded = stages.load_scenario(
            str(BENCH_SCENARIO), {**overrides, "outputs.formats": formats}
        )
        mpu = loaded.scenario.partitioning.mpans_per_unit
        loaded = stages.load_scenario(
            str(BENCH_SCENARIO), {**overrides, "outputs.formats": formats, "population.mpans": mpu}
        )
        job = stages.unit_jobs(loaded, str(tmp / label), "profile")[0]
        stages.prepare_run(str(tmp / label), "profile")
        profiler = Profiler(interval=0.002)
        profiler.start()
        result = run_unit(job)
        session = profiler.stop()
        text = profiler.output_text(unicode=False, color=False, show_all=False)
        flat = profiler.output_text(unicode=False, color=False, flat=True, flat_time="self")
        (out_dir / f"profile-{label}.txt").write_text(
            f"# one unit ({job.unit.site_stop - job.unit.site_start} MPANs x {job.unit.n_days} days, formats {formats})\n\n"
            + text
            + "\n\n# flat, self time\n\n"
            + flat
        )
        inclusive = _inclusive_by_function(session.root_frame())
        total = session.duration
        summary[label] = {
            "formats": formats,
            "unit": {"mpans": job.unit.site_stop - job.unit.site_start, "days": job.unit.n_days},
            "canonical_rows": result.half_hours,
            "rows_written": sum(r.rows for r in result.records if r.dataset != "registrations"),
            "duration_s": total,
            "top_inclusive": [
                {"function": k, "seconds": v, "share": v / total} for k, v in inclusive[:25]
            ],
        }
        shutil.rmtree(tmp / label, ignore_errors=True)
    return summary


def _inclusive_by_function(root) -> list[tuple[str, float]]:
    """Inclusive time per project function (outermost call only when recursive), largest first."""
    acc: dict[str, float] = defaultdict(float)

    def walk(frame, active: frozenset) -> None:
        path = frame.file_path or ""
        key = None
        if "mhhs_pipeline" in path and not frame.is_synthetic:
            key = f"{path.split('mhhs_pipeline/')[-1]}:{frame.function}"
            if key not in active:
                acc[key] += frame.time
                active = active | {key}
        for child in frame.children:
            walk(child, active)

    if root is not None:
        walk(root, frozenset())
    return sorted(acc.items(), key=lambda kv: -kv[1])


# ----------------------------------------------------------------------------------------
# Report


def landing_probe(folder: Path, total_bytes: int, *, direct: bool, file_bytes: int = 640 << 20) -> dict:
    """The machine alone landing ``total_bytes`` as files of ``file_bytes`` from memory,
    sha256 included (as the store lands them), no rendering: ``direct`` through
    :func:`mhhs_pipeline.io.direct_write.land`, else buffered writes of 1 MiB through the
    page cache. What the CSV run's bytes cost each way.

    On this VM the page cache's cost per byte rises once a few GB of fresh page cache have
    been written (pages the host has to back), whatever the free memory says.
    """
    import hashlib
    import resource

    from mhhs_pipeline.io import direct_write

    folder.mkdir(parents=True, exist_ok=True)
    block = memoryview(os.urandom(1 << 20))
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    written, i = 0, 0
    while written < total_bytes:
        chunks = [block] * (min(file_bytes, total_bytes - written) >> 20 or 1)
        path = folder / f"probe-{i}.bin"
        if direct:
            landed = direct_write.land(str(path), chunks, wait=False)
            if landed is None:
                raise OSError(f"{folder} refuses direct I/O")
        else:
            digest = hashlib.sha256()
            with open(path, "wb") as f:
                for c in chunks:
                    digest.update(c)
                    f.write(c)
        written += sum(len(c) for c in chunks)
        i += 1
    direct_write.drain()
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    shutil.rmtree(folder, ignore_errors=True)
    return {"bytes": written, "wall_s": wall, "user_s": r1.ru_utime - r0.ru_utime, "sys_s": r1.ru_stime - r0.ru_stime}


def startup_text(run: dict) -> str:
    return f"start-up {run['startup_share']:.1%} + worker warm-up {run.get('warmup_share', 0):.1%}"


def startup_note(run: dict) -> str:
    total = run["startup_share"] + run.get("warmup_share", 0)
    return "" if total < 0.10 else "start-up + warm-up ≥ 10 %: volume too small for a valid test"


def fmt_rate(x: float) -> str:
    return f"{x / 1e6:.2f} M" if x >= 1e5 else f"{x / 1e3:.1f} k"


def scenario_text(run: dict) -> str:
    s = run["scenario"]
    units = (
        f"{s['units']} units"
        if s["units"] == s.get("units_planned", s["units"])
        else f"first {s['units']} of {s['units_planned']} units"
    )
    return f"{s['mpans']:,} MPANs x {s['days']} d ({units} of {s['unit']['mpans']} x {s['unit']['days']} d)"


def build_report(res: dict) -> tuple[str, list[dict]]:
    floors: list[dict] = []
    notes_after_floors: list[str] = []
    lines = [
        f"# Benchmark results ({'quick' if res['quick'] else 'full'}, {res['workers']} workers)"
        + ("" if res.get("complete") else " -- PARTIAL, run still going or killed"),
        "",
    ]
    m = res["machine"]
    lines += [
        f"- when: {res['started_utc']}; total {res['total_s']:.0f} s; command: `{res['command']}`",
        f"- machine: {m['cpus_available']} CPUs available ({m['processor']}), {m['memory_gb']:.0f} GB RAM; "
        f"load average at start {m['loadavg_start'][0]:.2f}, at end {m['loadavg_end'][0]:.2f}"
        + (
            " -- **other work was running: wall-time figures are pessimistic, see per-CPU-second rates**"
            if m["loadavg_start"][0] > 0.5
            else ""
        ),
        f"- code: {res['git']}; python {m['python']}, pyarrow {m['pyarrow']}, dask {m['dask']}, duckdb {m['duckdb']}",
        "- small-file creation in the landing folder: "
        + " -> ".join(f"{m[k]:.0f}" for k in ("file_create_us_start", "file_create_us_end") if k in m)
        + " us CPU per file (start -> end; ~40 on a healthy disk, hundreds within minutes of mass deletions on ext4 without a journal)",
        f"- workers N = {res['workers']} single-threaded Dask worker processes; cores used = {res['cores_used']}"
        + (
            ""
            if not res.get("malloc_trim", False)
            else "; **comparison: workers keep Dask's MALLOC_TRIM_THRESHOLD_=65536**"
        ),
        "",
    ]
    runs = res["runs"]
    errors = res["errors"]

    def floor(name, required, measured, ok, note=""):
        floors.append(
            {"floor": name, "required": required, "measured": measured, "result": ok, "note": note}
        )

    # ---- throughput table
    lines += [
        "## Pipeline runs (library + Dask, no Prefect)",
        "",
        "| run | scenario | workers | wall s | start-up share | worker warm-up share | rows counted | rows/s/core (wall) | rows per worker-CPU-s | generate s (sum over units) | generate share of unit time | peak RSS/worker |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, fmt in (
        ("parquet", "parquet"),
        ("csv", "csv"),
        ("scaling_1", "parquet"),
        ("memory_small", "parquet"),
        ("mixed", None),
    ):
        run = runs.get(key)
        if not run:
            continue
        if fmt:
            r = rates(run, fmt)
            counted, rate, cpu_rate = (
                f"{r['rows']:,} {fmt}",
                fmt_rate(r["rows_per_s_per_core"]),
                fmt_rate(r["rows_per_worker_cpu_s"]),
            )
        else:
            n = sum(run["by_format"].get(f, {}).get("rows", 0) for f in ("parquet", "csv"))
            counted, rate, cpu_rate = (
                f"{n:,} parquet+csv",
                fmt_rate(n / run["wall_s"] / run["cores_used"]),
                fmt_rate(n / run["unit_cpu_s"]),
            )
        lines.append(
            f"| {key} | {scenario_text(run)}, {'+'.join(run['scenario']['formats'])} | {run['workers']} | {run['wall_s']:.1f} | "
            f"{run['startup_share']:.1%} | {run.get('warmup_share', 0):.1%} | {counted} | {rate} | {cpu_rate} | {run['generate_s']:.1f} | "
            f"{run['generate_s'] / run['unit_wall_s']:.0%} | {run['peak_rss_bytes'] / MIB:.0f} MiB |"
        )
    lines += [
        "",
        "Rows counted: every row the manifest lists for a file of that format -- all datasets, all participant "
        "copies (consumption goes to central, supplier, data service and LDSO: 4 copies). "
        "Wall = plan + prepare + cluster start + run units + READMEs + manifest. "
        "Start-up = plan + prepare + cluster start. Worker warm-up = what each worker's first unit took beyond "
        "the median of its others (imports, caches, first touch of its memory), summed over workers, as a share of "
        "wall x cores.",
        "",
    ]
    for key, fmt in (
        ("parquet", "parquet"),
        ("csv", "csv"),
        ("mixed", "parquet"),
        ("mixed", "csv"),
    ):
        if key in runs:
            lines.append(f"- {key} run, {fmt} rows by dataset: {dataset_mix(runs[key], fmt)}")
    lines.append("")

    if "parquet" in runs:
        run = runs["parquet"]
        r = rates(run, "parquet")
        floor(
            "Parquet-only rows/s/core (all copies)",
            "≥ 10 M",
            f"{fmt_rate(r['rows_per_s_per_core'])} ({scenario_text(run)}; {startup_text(run)})",
            r["rows_per_s_per_core"] >= FLOORS["parquet_rows_per_s_per_core"],
            startup_note(run),
        )
        lines += [
            "Parquet run stage seconds: "
            + ", ".join(f"{k} {v:.2f}" for k, v in run["seconds"].items()),
            "",
        ]
    elif "parquet" in errors:
        floor(
            "Parquet-only rows/s/core (all copies)",
            "≥ 10 M",
            "error",
            False,
            errors["parquet"][:200],
        )
    if "csv" in runs:
        run = runs["csv"]
        r = rates(run, "csv")
        floor(
            "CSV-only rows/s/core (all copies)",
            "≥ 4 M",
            f"{fmt_rate(r['rows_per_s_per_core'])} ({scenario_text(run)}; {startup_text(run)})",
            r["rows_per_s_per_core"] >= FLOORS["csv_rows_per_s_per_core"],
            startup_note(run),
        )
    elif "csv" in errors:
        floor("CSV-only rows/s/core (all copies)", "≥ 4 M", "error", False, errors["csv"][:200])
    probes = {k: res[k] for k in ("landing_probe_page_cache", "landing_probe_direct") if isinstance(res.get(k), dict)}
    if probes:
        text = "; ".join(
            f"{'through the page cache' if k.endswith('cache') else 'direct I/O (io.direct_write, as the pipeline lands)'}: "
            f"{p['bytes'] / p['wall_s'] / 1e6:.0f} MB/s, {(p['user_s'] + p['sys_s']) / (p['bytes'] / GB):.2f} CPU-s per GB "
            f"({p['sys_s'] / (p['bytes'] / GB):.2f} of them in the kernel)"
            for k, p in probes.items()
        )
        first = next(iter(probes.values()))
        notes_after_floors.append(
            f"Landing alone (one process landing {first['bytes'] / GB:.1f} GB (the CSV run's bytes, at most 8 GiB) as files of 640 MB from "
            f"memory, sha256 included, no rendering; disk, after the CSV run): {text}. Through the page cache the "
            "kernel's cost per GB on this VM depends on what was written and freed before (pages the host backs "
            "afresh); direct I/O does not touch those pages."
        )

    # ---- DuckDB
    if "mixed" in runs and "duckdb" in res:
        run, duck = runs["mixed"], res["duckdb"]
        ours_rows = sum(run["by_format"].get(f, {}).get("rows", 0) for f in ("parquet", "csv"))
        ours_rate = ours_rows / run["wall_s"]
        ratio = ours_rate / duck["rows_per_s"]
        res["mixed_vs_duckdb"] = {
            "ours_rows": ours_rows,
            "ours_rows_per_s": ours_rate,
            "duckdb_rows_per_s": duck["rows_per_s"],
            "ratio": ratio,
        }
        lines += [
            "## Quickstart formats vs DuckDB (same run, same cores)",
            "",
            f"Ours: the bench population ({scenario_text(run)}) with the quickstart's formats "
            f"({', '.join(run['scenario']['formats'])}), end to end. DuckDB: `SET threads = {duck['threads']}`, "
            f"`CREATE TABLE` of {duck['rows']['table']:,} rows (mpan_core VARCHAR(13), period_end_utc TIMESTAMPTZ, "
            "consumption_kwh DOUBLE pseudo-random from hash(row), quality VARCHAR; built from a materialised row-number "
            "table so every thread works), then `COPY ... TO` Parquet (zstd) and CSV (header), in a child process.",
            "Rows counted on both sides = rows written as Parquet + rows written as CSV (ours: every row the manifest "
            "lists for a Parquet or CSV file, all datasets and participant copies; DuckDB: the same numbers, one file "
            "per format). Our wide CSV, IF-021 and DCC XML are produced inside our wall time but not counted.",
            "",
            "| side | rows counted | wall s | rows/s | rows/s/core | ratio ours/DuckDB |",
            "|---|---:|---:|---:|---:|---:|",
            f"| ours (all quickstart formats) | {ours_rows:,} | {run['wall_s']:.1f} | {fmt_rate(ours_rate)} | {fmt_rate(ours_rate / run['cores_used'])} | {ratio:.3f} |",
            f"| DuckDB build + COPY parquet + COPY csv | {duck['rows']['parquet'] + duck['rows']['csv']:,} | {duck['wall_s']:.1f} | {fmt_rate(duck['rows_per_s'])} | {fmt_rate(duck['rows_per_s'] / duck['threads'])} | 1 |",
            "",
            f"DuckDB stages: build {duck['seconds']['build']:.2f} s, COPY Parquet {duck['seconds']['copy_parquet']:.2f} s, "
            f"COPY CSV {duck['seconds']['copy_csv']:.2f} s; per-format rates (build charged to each): Parquet "
            f"{fmt_rate(duck['parquet_rows_per_s'] / duck['threads'])} rows/s/core, CSV {fmt_rate(duck['csv_rows_per_s'] / duck['threads'])} rows/s/core; "
            f"bytes/row Parquet {duck['bytes']['parquet'] / max(duck['rows']['parquet'], 1):.2f}, CSV {duck['bytes']['csv'] / max(duck['rows']['csv'], 1):.1f}.",
            "",
        ]
        for key, fmt, dk in (
            ("parquet", "parquet", "parquet_rows_per_s"),
            ("csv", "csv", "csv_rows_per_s"),
        ):
            if key in runs:
                r = rates(runs[key], fmt)
                lines.append(
                    f"- {fmt}-only run vs DuckDB {fmt} (rows/s/core): {r['rows_per_s_per_core'] / (duck[dk] / duck['threads']):.3f}x"
                )
        lines.append("")
        floor(
            "Quickstart formats vs DuckDB (parquet+csv rows/s)",
            "≥ 1.0x",
            f"{ratio:.3f}x ({fmt_rate(ours_rate)} vs {fmt_rate(duck['rows_per_s'])} rows/s; {startup_text(run)})",
            ratio >= FLOORS["mixed_vs_duckdb"],
            startup_note(run),
        )
    elif "mixed" in errors or "duckdb" in errors:
        floor(
            "Quickstart formats vs DuckDB",
            "≥ 1.0x",
            "error",
            False,
            (errors.get("mixed") or errors.get("duckdb"))[:200],
        )

    # ---- scaling
    if "parquet" in runs and "scaling_1" in runs:
        n = runs["parquet"]["workers"]
        s1 = runs["scaling_1"]["scenario"]
        extrapolated = s1["units"] < s1["units_planned"]
        t1 = runs["scaling_1"]["seconds"]["run_units"] * s1["units_planned"] / s1["units"]
        tn = runs["parquet"]["seconds"]["run_units"]
        eff = t1 / (n * tn)
        cpu1 = runs["scaling_1"]["unit_cpu_s"] / len(runs["scaling_1"]["units"])
        cpun = runs["parquet"]["unit_cpu_s"] / len(runs["parquet"]["units"])
        if extrapolated:
            lines += [
                f"T1 extrapolated: one worker ran the first {s1['units']} of the {s1['units_planned']} units "
                f"({runs['scaling_1']['seconds']['run_units']:.1f} s) x {s1['units_planned'] / s1['units']:.1f}.",
                "",
            ]
        res["scaling"] = {
            "workers": n,
            "t1_extrapolated": extrapolated,
            "t1_s": t1,
            "tn_s": tn,
            "efficiency": eff,
            "cpu_per_unit_1": cpu1,
            "cpu_per_unit_n": cpun,
            "cpu_efficiency": cpu1 / cpun,
        }
        lines += [
            "## Scaling (run-units stage, cluster already up)",
            "",
            "| workers | run-units wall s | CPU s per unit (mean) |",
            "|---:|---:|---:|",
            f"| 1 | {t1:.1f}{' (extrapolated)' if extrapolated else ''} | {cpu1:.2f} |",
            f"| {n} | {tn:.1f} | {cpun:.2f} |",
            "",
            f"Efficiency T1 / ({n} x T{n}) = **{eff:.1%}**. CPU per unit {cpun / cpu1:.2f}x with {n} workers; "
            f"CPU-time efficiency (CPU per unit, 1 worker / {n} workers) {cpu1 / cpun:.1%}: below 100 % the workers "
            "slow each other down (memory bandwidth, caches, or other processes on the machine).",
            "",
        ]
        need = FLOORS["efficiency_16"] if n >= 16 else FLOORS["efficiency_2"]
        floor(
            f"Efficiency, {n} workers vs 1",
            f"≥ {need:.0%}",
            f"{eff:.1%}",
            eff >= need,
            "" if n <= available_cores() else "more workers than CPUs",
        )

    # ---- memory
    if "parquet" in runs and "memory_small" in runs:
        big, small = runs["parquet"], runs["memory_small"]
        growth = big["peak_rss_bytes"] / small["peak_rss_bytes"]
        res["memory"] = {
            "small_peak": small["peak_rss_bytes"],
            "big_peak": big["peak_rss_bytes"],
            "growth": growth,
        }
        lines += [
            "## Peak memory per worker (VmHWM read inside each worker; ru_maxrss where there is none)",
            "",
            "| volume | canonical rows | units per worker | peak RSS, max over workers | idle worker RSS |",
            "|---|---:|---:|---:|---:|",
        ]
        for run in (small, big):
            lines.append(
                f"| {scenario_text(run)} | {run['canonical_rows']:,} | {len(run['units']) / run['workers']:.1f} | "
                f"{run['peak_rss_bytes'] / MIB:.0f} MiB | {run['idle_rss_bytes'] / MIB:.0f} MiB |"
            )
        lines += [
            "",
            f"Large / small peak = {growth:.2f} for {big['canonical_rows'] / max(small['canonical_rows'], 1):.1f}x the volume.",
            "",
        ]
        top = max(runs, key=lambda k: runs[k]["peak_rss_bytes"])
        peak = runs[top]["peak_rss_bytes"]
        lines += [f"Highest peak of any run in this benchmark: {peak / MIB:.0f} MiB ({top}).", ""]
        floor(
            "Peak RSS per worker, regardless of volume",
            "≤ 1.5 GB, flat",
            f"{big['peak_rss_bytes'] / GB:.2f} GB at {big['canonical_rows'] / 1e6:.1f} M canonical rows, "
            f"{small['peak_rss_bytes'] / GB:.2f} GB at {small['canonical_rows'] / 1e6:.1f} M; "
            f"highest of all runs {peak / GB:.2f} GB ({top})",
            peak <= FLOORS["peak_rss_per_worker_bytes"] and growth <= 1.15,
            "flat = large-volume peak within 15 % of small-volume peak (Parquet runs, same unit)",
        )
    elif runs:
        top = max(runs, key=lambda k: runs[k]["peak_rss_bytes"])
        peak = runs[top]["peak_rss_bytes"]
        floor(
            "Peak RSS per worker",
            "≤ 1.5 GB",
            f"{peak / GB:.2f} GB ({top}; one volume only)",
            peak <= FLOORS["peak_rss_per_worker_bytes"],
        )

    # ---- bytes per value
    bpv_rows = []
    for key in ("parquet", "csv", "mixed"):
        run = runs.get(key)
        if not run:
            continue
        for fmt, fd in sorted(run["by_format"].items()):
            for ds, d in sorted(fd["by_dataset"].items()):
                if not d["rows"]:
                    continue
                central = d["central_bytes"] / d["central_rows"] if d["central_rows"] else None
                bpv_rows.append((key, fmt, ds, central, d["bytes"] / d["rows"], d["rows"]))
    if bpv_rows:
        lines += [
            "## Bytes per row (per half-hour value; registrations: per registration row)",
            "",
            "| run | format | dataset | central copy bytes/row | all copies bytes/row | rows (all copies) |",
            "|---|---|---|---:|---:|---:|",
        ]
        for key, fmt, ds, central, allc, rows in bpv_rows:
            lines.append(
                f"| {key} | {fmt} | {ds} | {'-' if central is None else f'{central:.2f}'} | {allc:.2f} | {rows:,} |"
            )
        lines += [
            "",
            "A dataset without a central copy (dcc_xml) is delivered to data services only.",
            "",
        ]
    if "parquet" in runs and "consumption" in runs["parquet"]["by_format"].get("parquet", {}).get(
        "by_dataset", {}
    ):
        d = runs["parquet"]["by_format"]["parquet"]["by_dataset"]["consumption"]
        bpv = d["central_bytes"] / d["central_rows"]
        res["parquet_bytes_per_value"] = bpv
        floor(
            "Parquet bytes per half-hour value (central consumption copy)",
            "≤ 2",
            f"{bpv:.2f}",
            bpv <= FLOORS["parquet_bytes_per_value"],
        )

    # ---- quickstart
    if "quickstart" in res:
        q = res["quickstart"]
        lines += [
            "## Quickstart through the CLI (Prefect temporary server included)",
            "",
            f"`{q['command']}`: exit {q['returncode']}, **{q['wall_s']:.1f} s** wall"
            + (
                f", {q['totals']['half_hour_values']:,} half-hour values, {q['totals']['files']} files"
                if "totals" in q
                else ""
            ),
            "",
        ]
        floor(
            "Quickstart wall time (info; quickstart.yaml says 'well under a minute')",
            "< 60 s",
            f"{q['wall_s']:.1f} s (exit {q['returncode']})",
            q["returncode"] == 0 and q["wall_s"] < 60,
            "not an issue-6 floor",
        )

    # ---- stages
    if "stages" in res:
        from benchmarks.stage_costs import markdown as stage_markdown

        lines += stage_markdown(res["stages"])

    # ---- profile
    if "profile" in res:
        lines += [
            "## Profile of one unit (pyinstrument, inclusive time of project functions)",
            "",
            "Profiled in the benchmark's own process, which has no MALLOC_TRIM_THRESHOLD_: generation is cheaper "
            "here than inside Dask workers (compare the runs' generate share).",
            "",
        ]
        for label, p in res["profile"].items():
            lines += [
                f"**{label}** ({p['unit']['mpans']} MPANs x {p['unit']['days']} d, {p['canonical_rows']:,} canonical rows, "
                f"{p['rows_written']:,} values written, {p['duration_s']:.2f} s; full text in `profile-{label}.txt`)",
                "",
                "| function | s | share |",
                "|---|---:|---:|",
            ]
            for row in p["top_inclusive"][:12]:
                lines.append(f"| `{row['function']}` | {row['seconds']:.2f} | {row['share']:.0%} |")
            lines.append("")

    if errors:
        lines += (
            ["## Errors", ""]
            + [
                f"- {k}: `{v.strip().splitlines()[-1] if v.strip() else v}`"
                for k, v in errors.items()
            ]
            + [""]
        )

    head = [
        "## Floors (issue 6)",
        "",
        "| floor | required | measured | result | note |",
        "|---|---|---|---|---|",
    ]
    for f in floors:
        head.append(
            f"| {f['floor']} | {f['required']} | {f['measured']} | {'PASS' if f['result'] else 'FAIL'} | {f['note']} |"
        )
    head.append("")
    for note in notes_after_floors:
        head += [note, ""]
    return "\n".join(lines[:7] + head + lines[7:]) + "\n", floors


# ----------------------------------------------------------------------------------------


def empty_files(folder: Path) -> None:
    """Truncate every file under ``folder``: the disk space is freed but no inode is deleted
    (deleted inodes slow the next file creations on ext4 without a journal; see the module
    docstring). The benchmark deletes its whole temporary folder at the end."""
    for dirpath, _, names in os.walk(folder):
        for name in names:
            try:
                os.truncate(os.path.join(dirpath, name), 0)
            except OSError:
                pass


def file_create_us(folder: Path, n: int = 300) -> float:
    """Kernel + user CPU microseconds to create and write one small file in ``folder``
    (a new sub-folder, left in place): ~40 on a healthy local disk; hundreds where the
    filesystem is slow to allocate inodes (recent mass deletions on ext4 without a journal)."""
    import resource

    probe = folder / f"create-probe-{time.monotonic_ns()}"
    probe.mkdir(parents=True)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    for i in range(n):
        with open(probe / f"f{i:04d}", "wb") as f:
            f.write(b"x" * 4096)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / n * 1e6


def machine_info() -> dict:
    import dask
    import duckdb
    import psutil
    import pyarrow

    proc = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                proc = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus_available": available_cores(),
        "processor": proc,
        "memory_gb": psutil.virtual_memory().total / GB,
        "python": platform.python_version(),
        "pyarrow": pyarrow.__version__,
        "dask": dask.__version__,
        "duckdb": duckdb.__version__,
        "loadavg_start": os.getloadavg(),
    }


def git_info() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return f"commit {head}" + (" with uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small sizes (tests the harness; figures are not the floors' test)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Dask worker processes for the multi-worker runs (default: one per CPU)",
    )
    ap.add_argument(
        "--out",
        default=str(ROOT / "benchmarks" / "results"),
        help="folder for results JSON, Markdown and profiles",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="also profile one unit per format set with pyinstrument",
    )
    ap.add_argument(
        "--sections",
        default=None,
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all; profile only with --profile)",
    )
    ap.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply the population sizes (e.g. 0.5 on a slow machine)",
    )
    ap.add_argument(
        "--dask-malloc-trim",
        action="store_true",
        help="comparison: keep Dask's MALLOC_TRIM_THRESHOLD_=65536 in the workers (the pipeline drops it)",
    )
    ap.add_argument(
        "--sizes",
        default=None,
        help="MPANs per worker per run, e.g. parquet=16000,csv=3000,mixed=2000 (whole units)",
    )
    args = ap.parse_args(argv)

    sections = set(args.sections.split(",")) if args.sections else set(SECTIONS) - {"profile"}
    if args.profile:
        sections.add("profile")
    unknown = sections - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}; choose from {','.join(SECTIONS)}")

    workers = args.workers or available_cores()
    cores = min(workers, available_cores())
    sizes = dict(QUICK if args.quick else FULL)
    for item in filter(None, (args.sizes or "").split(",")):
        key, _, value = item.partition("=")
        if key not in ("parquet", "csv", "mixed") or not value.isdigit():
            ap.error(f"--sizes: {item!r} is not parquet=N, csv=N or mixed=N")
        sizes[key] = int(value)
    base = dict(sizes["overrides"])
    unit_mpans = (
        base.get("partitioning.mpans_per_unit")
        or yaml.safe_load(BENCH_SCENARIO.read_text())["partitioning"]["mpans_per_unit"]
    )

    def mpans(key: str) -> int:
        # whole units, at least one per worker
        n = int(sizes[key] * workers * args.scale)
        return max(unit_mpans * workers, (n // unit_mpans) * unit_mpans)

    qs_formats = list(yaml.safe_load(QUICKSTART.read_text())["outputs"]["formats"])
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(prefix="mhhs-bench-"))
    started = time.perf_counter()
    res: dict = {
        "quick": args.quick,
        "command": "python -m benchmarks.run "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "git": git_info(),
        "workers": workers,
        "cores_used": cores,
        "floors_required": FLOORS,
        "sizes_mpans_per_worker": {k: sizes[k] for k in ("parquet", "csv", "mixed")},
        "scale": args.scale,
        "malloc_trim": args.dask_malloc_trim,
        "runs": {},
        "errors": {},
    }
    if workers > available_cores():
        log(
            f"warning: {workers} workers on {available_cores()} CPUs; rates are per CPU used ({cores})"
        )
    log(f"landing data under {tmp_root}; workers={workers}; sections={sorted(sections)}")
    res["machine"]["file_create_us_start"] = file_create_us(tmp_root)
    log(f"small-file creation: {res['machine']['file_create_us_start']:.0f} us CPU per file")

    stem = f"{'quick' if args.quick else 'bench'}-{workers}w" + (
        "-daskmalloctrim" if args.dask_malloc_trim else ""
    )

    def save(final: bool = False) -> str:
        res["machine"]["loadavg_end"] = os.getloadavg()
        res["total_s"] = time.perf_counter() - started
        res["complete"] = final
        report, floors = build_report(res)
        res["floors"] = floors
        (out_dir / f"{stem}.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
        (out_dir / f"{stem}.md").write_text(report)
        return report

    def attempt(name: str, fn):
        log(f"{name} ...")
        t0 = time.perf_counter()
        try:
            value = fn()
            log(f"{name} done in {time.perf_counter() - t0:.1f} s")
            return value
        except Exception:  # noqa: BLE001 - one failing section must not lose the others
            res["errors"][name] = traceback.format_exc()
            log(f"{name} FAILED:\n{res['errors'][name]}")
            return None
        finally:
            empty_files(tmp_root / name)
            try:
                save()  # partial results survive a run that is killed later
            except Exception:  # noqa: BLE001
                log("could not write partial results:\n" + traceback.format_exc())

    def bench_run(
        name: str,
        n_mpans: int,
        formats: list[str],
        n_workers: int,
        max_units: int | None = None,
    ):
        overrides = {**base, "population.mpans": n_mpans, "outputs.formats": formats}
        run = attempt(
            name,
            lambda: pipeline_run(
                name,
                str(BENCH_SCENARIO),
                overrides,
                n_workers,
                tmp_root,
                max_units,
                args.dask_malloc_trim,
            ),
        )
        if run:
            res["runs"][name] = run
        return run

    try:
        if sections & {"parquet", "scaling", "memory"}:
            bench_run("parquet", mpans("parquet"), ["parquet"], workers)
        if "memory" in sections:
            bench_run(
                "memory_small",
                max(unit_mpans * workers, mpans("parquet") // 4 // unit_mpans * unit_mpans),
                ["parquet"],
                workers,
            )
        if "scaling" in sections and workers > 1:
            # One worker runs every unit on a small machine; on a big one the first 32 (x n/32).
            bench_run("scaling_1", mpans("parquet"), ["parquet"], 1, max_units=SCALING_MAX_UNITS)
        if "mixed" in sections:
            run = bench_run("mixed", mpans("mixed"), qs_formats, workers)
            if run:
                rp = run["by_format"].get("parquet", {}).get("rows", 0)
                rc = run["by_format"].get("csv", {}).get("rows", 0)
                duck = attempt(
                    "duckdb",
                    lambda: duckdb_baseline(
                        rp, rc, run["scenario"]["days"], cores, tmp_root / "duckdb"
                    ),
                )
                if duck:
                    res["duckdb"] = duck
        if "csv" in sections:
            n = mpans("csv")
            free = shutil.disk_usage(tmp_root).free
            need = n * 28 * 48 * 6 * CSV_BYTES_PER_ROW  # ~6 rows written per value: 4 copies + raw reads
            if need > free / 2:
                n = max(unit_mpans, int(n * free / 2 / need) // unit_mpans * unit_mpans)
                log(f"csv: only {free / GB:.0f} GB free; reduced to {n} MPANs")
            bench_run("csv", n, ["csv"], workers)
            csv_bytes = res.get("runs", {}).get("csv", {}).get("by_format", {}).get("csv", {}).get("bytes", 0)
            if csv_bytes:
                # Why the store lands large files with direct I/O: the same bytes both ways.
                for key, direct in (("landing_probe_page_cache", False), ("landing_probe_direct", True)):
                    res[key] = attempt(key, lambda direct=direct: landing_probe(tmp_root / "probe", min(csv_bytes, PROBE_BYTES), direct=direct))
        if "quickstart" in sections:
            q = attempt(
                "quickstart",
                lambda: quickstart_run(
                    tmp_root / "quickstart", sizes["quickstart_args"], args.workers
                ),
            )
            if q:
                res["quickstart"] = q
                if q["returncode"] != 0:
                    res["errors"]["quickstart"] = q.get("stderr_tail", "")
        if "stages" in sections:
            from benchmarks.stage_costs import measure as stage_measure

            st = attempt("stages", lambda: stage_measure(BENCH_SCENARIO, base, tmp_root / "stages"))
            if st:
                res["stages"] = st
        if "profile" in sections:
            p = attempt(
                "profile",
                lambda: profile_units(
                    base,
                    {"parquet": ["parquet"], "csv": ["csv"], "quickstart-formats": qs_formats},
                    out_dir,
                    tmp_root / "profile",
                ),
            )
            if p:
                res["profile"] = p
    finally:
        try:
            res["machine"]["file_create_us_end"] = file_create_us(tmp_root)
        finally:
            shutil.rmtree(tmp_root, ignore_errors=True)

    report = save(final=True)
    print(report)
    log(f"wrote {out_dir / (stem + '.json')} and {out_dir / (stem + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
