"""Serve the ``mhhs-run`` flow as scheduled Prefect deployments (long-running process).

    PREFECT_API_URL=http://prefect:4200/api python -m flows.serve --out s3://bucket/runs

Each deployment in ``configs/deployments.yaml`` becomes a schedule (cron, UTC) running a
scenario into ``--out``; runs, logs and the run-summary artifact appear in the Prefect UI.
Export PREFECT_API_URL before starting, so Dask workers never start their own server.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from prefect import serve
from prefect.schedules import Cron

from flows.pipeline import mhhs_run

ROOT = Path(__file__).resolve().parents[1]


def deployments(config_path: Path, out: str, workers: int | None = None):
    spec = yaml.safe_load(config_path.read_text())
    result = []
    for d in spec["deployments"]:
        scenario = str((ROOT / d["scenario"]).resolve()) if "://" not in d["scenario"] else d["scenario"]
        result.append(
            mhhs_run.to_deployment(
                name=d["name"],
                parameters={"scenario_url": scenario, "out": out, "workers": workers, "progress": False},
                schedules=[Cron(d["cron"], timezone="UTC")] if d.get("cron") else None,
                description=d.get("description", ""),
                tags=d.get("tags", []),
            )
        )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output URL for scheduled runs")
    parser.add_argument("--config", default=str(ROOT / "configs" / "deployments.yaml"))
    parser.add_argument("--workers", type=int)
    args = parser.parse_args(argv)
    serve(*deployments(Path(args.config), args.out, args.workers))


if __name__ == "__main__":
    main()
