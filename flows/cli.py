"""Console entry point ``mhhs-pipeline``: the library's CLI plus the Prefect commands
(``run``: the whole scenario; ``drip``: one day of its population)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import sys

from mhhs_pipeline import cli


def _preflight(args: argparse.Namespace, overrides: dict):
    """Fail fast, before Prefect starts, on a bad scenario, run id or extract: a clear
    message, no traceback."""
    from mhhs_pipeline import stages
    from mhhs_pipeline.io.paths import check_run_id
    from mhhs_pipeline.spec.scenario import ScenarioError

    try:
        loaded = stages.load_scenario(args.scenario, overrides)
    except FileNotFoundError:
        raise  # cli.main names the missing file
    except OSError as exc:  # a folder, or unreadable: not an output problem
        raise ScenarioError(f"cannot read the scenario {args.scenario}: {exc.strerror or exc}") from None
    if getattr(args, "run_id", None) is not None:  # '' is refused by name, never taken as "not given"
        check_run_id(args.run_id)
    if loaded.scenario.inputs.registrations:
        from mhhs_pipeline.io.extract import open_extract

        open_extract(loaded.scenario.inputs.registrations)  # an unreadable extract fails here, clearly
    if loaded.scenario.inputs.consumption:
        from mhhs_pipeline.io.consumption_extract import open_consumption_extract

        open_consumption_extract(loaded.scenario.inputs.consumption)
    if getattr(args, "units", None):
        if not loaded.scenario.inputs.registrations:
            stages.unit_jobs(loaded, args.out, "preflight", unit_ids=args.units)  # planning only: unknown ids fail here
        if args.run_id is not None:
            stages.previous_run(args.out, args.run_id, loaded)  # a run of another scenario is refused here
    if getattr(args, "day", None):
        from mhhs_pipeline.drip import choose_day

        choose_day(loaded.scenario.window, [], dt.date.fromisoformat(args.day))  # a day outside the window fails here
    if args.dask_address:
        from mhhs_pipeline.distributed import check_scheduler

        check_scheduler(args.dask_address)  # unreachable or malformed: fails here, nothing touched
    if getattr(args, "run_id", None):
        from mhhs_pipeline.io.claim import run_claim

        # Taken and given back at once: the output is writable and no live run holds the id.
        # The flow claims it again for the run itself.
        with run_claim(args.out, args.run_id, heartbeat_s=3600):
            pass
    # The embedded default starts a temporary Prefect server; on a busy machine its default
    # 20 s start-up limit is too tight. Users' own settings win.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return loaded


def _print_result(result: dict) -> None:
    t = result["totals"]
    if "quarantined" in t:
        print(f"cleansing: {result['cleansing']['reconciliation']}")
    if "repair" in result:
        c = result["repair"]
        print(f"repaired: {c['rewritten']} files rewritten, {c['identical']} identical to the manifest's, {len(c['changed'])} changed, {len(c['new'])} new")
    print(f"run {result['run_id']}: {t['mpans']} MPANs, {t['half_hour_values']} half-hour values, {t['files']} files")
    print(f"manifest: {result['manifest_url']}")


def _run(args: argparse.Namespace) -> int:
    overrides = cli.scenario_overrides(args)
    _preflight(args, overrides)
    from flows.pipeline import mhhs_run

    result = mhhs_run(
        scenario_url=args.scenario,
        out=args.out,
        run_id=args.run_id,
        workers=args.workers,
        dask_address=args.dask_address,
        units=args.units,
        overrides=overrides,
        progress=not args.no_progress,
    )
    _print_result(result)
    return 0


def _drip(args: argparse.Namespace) -> int:
    overrides = cli.drip_overrides(args)
    _preflight(args, overrides)
    from flows.drip import mhhs_drip_feed

    result = mhhs_drip_feed(
        scenario_url=args.scenario,
        out=args.out,
        day=args.day,
        run_id_prefix=args.run_id_prefix,
        workers=args.workers,
        dask_address=args.dask_address,
        seed=args.seed,
        mpans=args.mpans,
    )
    if result["run_id"] is None:
        print("every day of the population's window is published; nothing to do")
        return 0
    print(f"day {result['day']}:", end=" ")
    _print_result(result)
    return 0


def _clean_errors(handler):
    """Errors a user can act on, as one line and exit 2: a claimed run id, an unreachable
    cluster, an output that cannot be written. Prefect's own log of the failed task keeps
    its message but not the traceback."""

    def run(args: argparse.Namespace) -> int:
        from mhhs_pipeline.distributed import ClusterUnavailable
        from mhhs_pipeline.io.claim import RunClaimedError
        from mhhs_pipeline.io.extract import ExtractError
        from mhhs_pipeline.runner import UnitError

        _quiet_tracebacks((RunClaimedError, ClusterUnavailable, OSError, UnitError, ExtractError))
        try:
            return handler(args)
        except (RunClaimedError, ClusterUnavailable) as exc:
            print(f"mhhs-pipeline: {exc}", file=sys.stderr)
            return 2
        except FileNotFoundError:
            raise  # a missing input: cli.main names it
        except OSError as exc:
            print(f"mhhs-pipeline: cannot write the run to {args.out}: {exc}; no manifest written", file=sys.stderr)
            return 2

    return run


class _NoTraceback(logging.Filter):
    def __init__(self, kinds: tuple[type[BaseException], ...]):
        super().__init__()
        self.kinds = kinds

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], self.kinds):
            record.exc_info = None
            record.exc_text = None
        return True


def _quiet_tracebacks(kinds: tuple[type[BaseException], ...]) -> None:
    """Drop the traceback from Prefect's log records of these errors (the CLI says the
    cause in one line); other errors keep theirs."""
    for name in ("prefect.task_runs", "prefect.flow_runs", "prefect.task_engine", "prefect.flow_engine"):
        logging.getLogger(name).addFilter(_NoTraceback(kinds))


class _ShutdownNoise(logging.Filter):
    """The embedded Prefect server's SQLite pool, stopped with the process, logs "Exception
    closing connection" with a CancelledError traceback (PrefectHQ/prefect#16504): the
    connection was being closed anyway, and a user reads the traceback as a failed run.
    Only that record is dropped; any other pool error still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, asyncio.CancelledError) and record.getMessage().startswith("Exception closing connection"))


SQLALCHEMY_POOLS = ("NullPool", "AsyncAdaptedQueuePool", "QueuePool", "StaticPool", "SingletonThreadPool")


def _quiet_shutdown() -> None:
    for pool in SQLALCHEMY_POOLS:
        logging.getLogger(f"sqlalchemy.pool.impl.{pool}").addFilter(_ShutdownNoise())


def main(argv: list[str] | None = None) -> int:
    _quiet_shutdown()
    return cli.main(argv, flow_handlers={"run": _clean_errors(_run), "drip": _clean_errors(_drip)})


if __name__ == "__main__":
    sys.exit(main())
