"""Console entry point ``mhhs-pipeline``: the library's CLI plus the Prefect ``run`` command."""

from __future__ import annotations

import argparse
import os
import sys

from mhhs_pipeline import cli


def _run(args: argparse.Namespace) -> int:
    from mhhs_pipeline import stages
    from mhhs_pipeline.io.paths import check_run_id

    # Fail fast, before Prefect starts, on a bad scenario or run id: a clear message, no traceback.
    loaded = stages.load_scenario(args.scenario, cli.scenario_overrides(args))
    if args.run_id:
        check_run_id(args.run_id)
    if loaded.scenario.inputs.registrations:
        from mhhs_pipeline.io.extract import open_extract

        open_extract(loaded.scenario.inputs.registrations)  # an unreadable extract fails here, clearly
    if loaded.scenario.inputs.consumption:
        from mhhs_pipeline.io.consumption_extract import open_consumption_extract

        open_consumption_extract(loaded.scenario.inputs.consumption)

    # The embedded default starts a temporary Prefect server; on a busy machine its default
    # 20 s start-up limit is too tight. Users' own settings win.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.pipeline import mhhs_run

    result = mhhs_run(
        scenario_url=args.scenario,
        out=args.out,
        run_id=args.run_id,
        workers=args.workers,
        dask_address=args.dask_address,
        overrides=cli.scenario_overrides(args),
        progress=not args.no_progress,
    )
    t = result["totals"]
    if "quarantined" in t:
        print(f"cleansing: {result['cleansing']['reconciliation']}")
    print(f"run {result['run_id']}: {t['mpans']} MPANs, {t['half_hour_values']} half-hour values, {t['files']} files")
    print(f"manifest: {result['manifest_url']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, run_handler=_run)


if __name__ == "__main__":
    sys.exit(main())
