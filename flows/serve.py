"""Serve the project's deployments from one long-running process: no work pool, no worker.

    PREFECT_API_URL=http://prefect:4200/api python -m flows.serve --out s3://bucket/runs

Reads the same deployment list as ``prefect deploy`` (``deploy/prefect.yaml``): each
deployment's entrypoint, parameters, schedules, description and tags; ``{{ $VAR }}``
placeholders are filled from the environment as ``prefect deploy`` fills them, and
``--out`` (if given) replaces every deployment's ``out``. Runs, logs and artifacts appear
in the Prefect UI. Export PREFECT_API_URL before starting, so Dask workers never start
their own server.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml
from prefect import serve
from prefect.flows import load_flow_from_entrypoint
from prefect.schedules import Cron
from prefect.utilities.templating import apply_values

ROOT = Path(__file__).resolve().parents[1]
PREFECT_FILE = ROOT / "deploy" / "prefect.yaml"


def deployment_specs(prefect_file: Path = PREFECT_FILE, *, out: str | None = None) -> list[dict]:
    """The deployments of a prefect.yaml, templated from the environment; ``out`` replaces
    each one's ``out`` parameter."""
    specs = yaml.safe_load(prefect_file.read_text()).get("deployments") or []
    specs = apply_values(specs, os.environ, remove_notset=False)
    for spec in specs:
        if out is not None:
            spec.setdefault("parameters", {})["out"] = out
    return specs


def deployments(prefect_file: Path = PREFECT_FILE, *, out: str | None = None, workers: int | None = None):
    """``RunnerDeployment`` objects for :func:`prefect.serve`."""
    result = []
    for spec in deployment_specs(prefect_file, out=out):
        params = dict(spec.get("parameters") or {})
        if workers is not None:
            params["workers"] = workers
        schedules = [Cron(s["cron"], timezone=s.get("timezone", "UTC")) for s in spec.get("schedules") or [] if s.get("active", True)]
        result.append(
            load_flow_from_entrypoint(spec["entrypoint"]).to_deployment(
                name=spec["name"],
                parameters=params,
                schedules=schedules or None,
                description=spec.get("description", ""),
                tags=spec.get("tags", []),
            )
        )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="output URL of every deployment (default: each one's own, e.g. $MHHS_OUT)")
    parser.add_argument("--prefect-file", default=str(PREFECT_FILE), help="the deployments (default: deploy/prefect.yaml)")
    parser.add_argument("--workers", type=int, help="local Dask worker processes per run")
    args = parser.parse_args(argv)
    serve(*deployments(Path(args.prefect_file), out=args.out, workers=args.workers))


if __name__ == "__main__":
    main()
