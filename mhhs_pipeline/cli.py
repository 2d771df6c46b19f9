"""Command-line parsing and the library-only commands (``validate``; ``cleanse``).

The ``run`` command runs a Prefect flow, so its handler lives in ``flows.cli`` (the
console script's entry point): the library itself never imports Prefect.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable

from mhhs_pipeline.io.extract import ExtractError
from mhhs_pipeline.io.paths import UnsafePathError
from mhhs_pipeline.plan import UnknownUnitError
from mhhs_pipeline.runner import UnitError
from mhhs_pipeline.spec.scenario import ScenarioError
from mhhs_pipeline.stages import RepairError


def _date(text: str) -> str:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None
    return text


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _unit_ids(text: str) -> list[str]:
    ids = [t.strip() for t in text.split(",") if t.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("give at least one unit id, e.g. s000000000-d20261019")
    return ids


def _add_scenario_overrides(parser: argparse.ArgumentParser) -> None:
    """The flags ``run`` and ``plan`` share (read by :func:`scenario_overrides`)."""
    parser.add_argument("--seed", type=int, help="override the scenario seed")
    parser.add_argument("--mpans", type=_positive, help="override population.mpans")
    parser.add_argument("--start", type=_date, help="override window.start (UTC settlement day, inclusive)")
    parser.add_argument("--end", type=_date, help="override window.end (UTC settlement day, inclusive)")
    parser.add_argument("--mpans-per-unit", type=_positive, help="override partitioning.mpans_per_unit")
    parser.add_argument("--days-per-unit", type=_positive, help="override partitioning.days_per_unit")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mhhs-pipeline",
        description="Manufacture matched half-hourly consumption test data for MHHS participants.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the whole pipeline as a Prefect flow")
    run.add_argument("scenario", help="scenario YAML (path or fsspec URL)")
    run.add_argument("--out", required=True, help="output URL: a folder, or s3://bucket/prefix")
    run.add_argument("--run-id", help="run id (default: scenario name + UTC start time)")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive, help="local Dask worker processes (default: one per core)")
    where.add_argument("--dask-address", help="use an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    _add_scenario_overrides(run)
    run.add_argument("--registrations", help="registration extract to cleanse and use (path or fsspec URL)")
    run.add_argument("--consumption", help="actual half-hourly consumption extract for those MPANs")
    run.add_argument("--units", type=_unit_ids, help="only these units (comma-separated ids, as in the run's file names): into a complete run of the same scenario they replace its files of those units")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    drip = sub.add_parser("drip", help="publish one UTC settlement day of the scenario's population as its own run")
    drip.add_argument("scenario", help="scenario YAML (path or fsspec URL): its window is the population's")
    drip.add_argument("--out", required=True, help="output URL: a folder, or s3://bucket/prefix")
    drip.add_argument("--day", type=_date, help="the UTC settlement day (default: the day after the last one published under --out)")
    drip.add_argument("--run-id-prefix", help="run ids are <prefix>-YYYY-MM-DD (default: <scenario name>-day)")
    where = drip.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive, help="local Dask worker processes (default: one per core)")
    where.add_argument("--dask-address", help="use an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    drip.add_argument("--seed", type=int, help="override the scenario seed")
    drip.add_argument("--mpans", type=_positive, help="override population.mpans")

    pln = sub.add_parser("plan", help="a dry run: units, files, bytes by format and participant, core-hours; generates nothing")
    pln.add_argument("scenario", help="scenario YAML (path or fsspec URL)")
    _add_scenario_overrides(pln)
    pln.add_argument("--formats", type=lambda t: [f.strip() for f in t.split(",") if f.strip()], help="override outputs.formats, e.g. parquet or parquet,csv (a what-if)")
    pln.add_argument("--json", action="store_true", help="print the plan as JSON (every participant's bytes included)")

    val = sub.add_parser("validate", help="check a run directory: manifest, checksums, schemas, invariants")
    val.add_argument("run_url", help="run directory URL (<out>/<run_id>)")

    cle = sub.add_parser("cleanse", help="cleanse a registration extract: clean registrations, quarantine, report")
    cle.add_argument("extract", help="registration extract, CSV or Parquet (path or fsspec URL)")
    cle.add_argument("--out", required=True, help="output URL: a folder, or s3://bucket/prefix")
    cle.add_argument("--run-id", help="run id (default: cleanse- + UTC start time)")
    cle.add_argument("--seed", type=int, default=0, help="seed of the values manufactured for empty attributes")
    return parser


def scenario_overrides(args: argparse.Namespace) -> dict:
    """Dotted-path overrides from CLI flags (applied before hashing the scenario)."""
    mapping = {
        "seed": "seed",
        "mpans": "population.mpans",
        "start": "window.start",
        "end": "window.end",
        "mpans_per_unit": "partitioning.mpans_per_unit",
        "days_per_unit": "partitioning.days_per_unit",
        "registrations": "inputs.registrations",
        "consumption": "inputs.consumption",
        "formats": "outputs.formats",
    }
    return {path: getattr(args, name) for name, path in mapping.items() if getattr(args, name, None) is not None}


def drip_overrides(args: argparse.Namespace) -> dict:
    """The overrides a drip-feed takes: the population's, never its window."""
    return {k: v for k, v in scenario_overrides(args).items() if k in ("seed", "population.mpans")}


def cmd_plan(args: argparse.Namespace) -> int:
    import json

    from mhhs_pipeline import stages
    from mhhs_pipeline.projection import project

    loaded = stages.load_scenario(args.scenario, scenario_overrides(args))
    if loaded.scenario.inputs.registrations:
        raise ScenarioError(
            "plan projects a synthetic population; this scenario reads a registration extract, whose size is known only "
            "once it is cleansed: run `mhhs-pipeline cleanse` first, or plan with population.mpans set to its MPAN count"
        )
    projection = project(loaded.scenario)
    print(json.dumps(projection.to_dict(), indent=2) if args.json else projection.render())
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from mhhs_pipeline.validate import validate_run

    report = validate_run(args.run_url)
    print(report.render())
    return 0 if report.ok else 1


def cmd_cleanse(args: argparse.Namespace) -> int:
    from mhhs_pipeline.cleanse import ReconciliationError
    from mhhs_pipeline.io.extract import ExtractError, write_cleanse_run
    from mhhs_pipeline.io.paths import check_run_id

    run_id = check_run_id(args.run_id if args.run_id is not None else f"cleanse-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}")
    try:
        manifest_url, _, out = write_cleanse_run(args.extract, args.out, run_id, seed=args.seed)
    except ExtractError as exc:
        # One line, no traceback, nothing written: the message names the file, place and fix.
        print(f"mhhs-pipeline: cannot cleanse {exc}", file=sys.stderr)
        return 2
    except ReconciliationError as exc:
        print(f"mhhs-pipeline: internal error, no manifest written: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError:
        raise  # the input is missing: main() says so
    except OSError as exc:  # the output could not be written (permissions, credentials, space)
        print(f"mhhs-pipeline: cannot write the run to {args.out}: {exc}; no manifest written", file=sys.stderr)
        return 2
    print(out.stats.reconciliation_line())
    print(f"registrations {out.stats.clean}, quarantined {out.stats.quarantined}, merged duplicates {out.stats.merged}")
    print(f"manifest: {manifest_url}")
    return 0


def main(argv: list[str] | None = None, *, flow_handlers: dict[str, Callable[[argparse.Namespace], int]] | None = None) -> int:
    """Parse and dispatch; ``flow_handlers`` (``run``, ``drip``) come from ``flows.cli``."""
    args = build_parser().parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {"validate": cmd_validate, "cleanse": cmd_cleanse, "plan": cmd_plan, **(flow_handlers or {})}
    if args.command not in handlers:
        print(f"mhhs-pipeline: '{args.command}' needs the flows package (pip install the project)", file=sys.stderr)
        return 2
    try:
        return handlers[args.command](args)
    except (ScenarioError, UnsafePathError, ExtractError, UnknownUnitError, RepairError) as exc:
        print(f"mhhs-pipeline: {exc}", file=sys.stderr)
        return 2
    except UnitError as exc:
        # A permanent cause (full disk, no permission) is the user's to fix: exit 2, as for
        # other bad input; anything else is ours: exit 1.
        print(f"mhhs-pipeline: {exc}; no manifest written", file=sys.stderr)
        return 2 if exc.permanent else 1
    except FileNotFoundError as exc:
        print(f"mhhs-pipeline: file not found: {exc.filename or exc}", file=sys.stderr)
        return 2
