"""The ``mhhs-run`` Prefect flow: coarse tasks per stage, Dask fan-out inside one task.

Prefect adds ~100 ms per task run, so tasks stay coarse (per stage) and the fine-grained
per-unit fan-out is Dask's. No Prefect task runs inside Dask workers: with no
PREFECT_API_URL each worker would start its own temporary server.

Every stage logs what it did (units done / total and values per second while units run;
the Dask dashboard link), through the flow run's logger: the lines reach the terminal of a
CLI run and the flow run's page in the Prefect UI alike.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.tasks import exponential_backoff

from mhhs_pipeline import stages
from mhhs_pipeline.distributed import check_scheduler
from mhhs_pipeline.io.claim import run_claim
from mhhs_pipeline.io.store import RunStore, is_permanent
from mhhs_pipeline.progress import UnitProgress

ROOT = Path(__file__).resolve().parents[1]
DASK_ADDRESS_ENV = "MHHS_DASK_ADDRESS"  # a deployment's default scheduler (set on Kubernetes)
HOME_ENV = "MHHS_HOME"  # where relative scenario paths of deployments are found


def resolve_scenario_url(url: str) -> str:
    """A scenario path as a deployment gives it: URLs and absolute paths as they are; a
    relative path from the current directory if it is there, else from ``$MHHS_HOME`` (the
    container image's project folder) or this checkout, so ``configs/quickstart.yaml`` works
    whichever folder a worker starts flow runs in."""
    if "://" in url or os.path.isabs(url) or os.path.exists(url):
        return url
    return str(Path(os.environ.get(HOME_ENV) or ROOT) / url)


def check_out_url(out: str) -> str:
    if not out or "{{" in out:
        # A deployment's ``{{ $MHHS_OUT }}`` left unresolved: the variable was not set when
        # it was deployed. Refuse rather than write to a folder of that name.
        raise ValueError(f"output URL {out!r} is not set: set MHHS_OUT before `prefect deploy`, or pass out= to the run")
    return out


def scenario_overrides(start: dt.date | None, end: dt.date | None, seed: int | None, mpans: int | None) -> dict:
    """Dotted-path scenario overrides from a deployment's parameters (as the CLI's flags)."""
    values = {"window.start": start, "window.end": end, "seed": seed, "population.mpans": mpans}
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in values.items() if v is not None}


def _transient(task, task_run, state) -> bool:
    """Retry only what a retry can mend: not a full disk, a read-only folder, a denied bucket,
    nor bad input (a ValueError: the same extract or scenario fails the same way again)."""
    exc = getattr(state, "data", None)
    return not (isinstance(exc, BaseException) and (is_permanent(exc) or isinstance(exc, ValueError)))


RETRY = {"retries": 3, "retry_delay_seconds": exponential_backoff(backoff_factor=1), "retry_condition_fn": _transient}


def _units(n: int) -> str:
    return f"{n} unit{'' if n == 1 else 's'}"


@task(name="load-scenario", cache_policy=NONE)
def load_scenario(scenario_url: str, overrides: dict, run_id: str | None):
    loaded = stages.load_scenario(scenario_url, overrides)
    return loaded, run_id if run_id is not None else stages.default_run_id(loaded.scenario, dt.datetime.now(dt.UTC))


@task(name="cleanse-extract", cache_policy=NONE, retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=2), retry_condition_fn=_transient)
def cleanse_extract(loaded):
    t0 = time.perf_counter()
    inputs = stages.cleanse_inputs(loaded)
    if inputs is not None:
        create_markdown_artifact(key="cleansing-report", markdown=inputs.report_markdown, description="Cleansing of the registration extract")
        get_run_logger().info("cleanse-extract: %s (%.1f s)", inputs.stats["reconciliation"], time.perf_counter() - t0)
    return inputs


@task(name="plan-units", cache_policy=NONE)
def plan(loaded, out: str, run_id: str, inputs, days=None, unit_ids=None):
    jobs = stages.unit_jobs(loaded, out, run_id, inputs, days=days, unit_ids=unit_ids)
    if jobs:
        get_run_logger().info("plan-units: %s, %s .. %s", _units(len(jobs)), jobs[0].unit.unit_id, jobs[-1].unit.unit_id)
    return jobs


@task(name="deliver-quarantine", cache_policy=NONE, **RETRY)
def deliver_quarantine(out: str, run_id: str, inputs):
    return stages.write_quarantine(RunStore(out, run_id), inputs) if inputs is not None else []


@task(name="load-model-report", cache_policy=NONE, **RETRY)
def load_model_report(out: str, run_id: str, summary):
    records, png = stages.write_report(RunStore(out, run_id), summary)
    if png is not None:
        # Inline as a data URI: the Prefect UI shows it without access to the run's storage.
        encoded = base64.b64encode(png).decode()
        create_markdown_artifact(
            key="load-model-report",
            markdown=f"![load model report](data:image/png;base64,{encoded})\n\n`{records[0].path}` in run {run_id}",
            description="Average daily shapes by archetype and season, sample week, monthly totals, annual consumption",
        )
    return records


@task(name="prepare-run-dir", cache_policy=NONE, **RETRY)
def prepare_run_dir(out: str, run_id: str) -> None:
    stages.prepare_run(out, run_id)


@task(name="begin-repair", cache_policy=NONE, **RETRY)
def begin_repair(out: str, run_id: str, loaded):
    return stages.begin_repair(out, run_id, loaded)


@task(name="check-cluster", cache_policy=NONE)
def check_cluster(dask_address: str | None) -> None:
    if dask_address:
        workers = check_scheduler(dask_address)
        get_run_logger().info("check-cluster: Dask scheduler %s has %d workers", dask_address, workers)


@task(name="generate-and-deliver", cache_policy=NONE)
def generate_and_deliver(jobs, workers: int | None, dask_address: str | None, progress: bool):
    """(each unit's result, without its load-model summary; the summaries merged as the
    units completed)."""
    logger = get_run_logger()
    return stages.generate_units(
        jobs, workers=workers, address=dask_address, progress=progress,
        log=logger.info, on_result=UnitProgress("generate-and-deliver", logger.info),
    )  # fmt: skip


@task(name="participant-readmes", cache_policy=NONE, **RETRY)
def participant_readmes(out: str, run_id: str, results, extra):
    return stages.write_participant_readmes(RunStore(out, run_id), results, extra)


@task(name="write-manifest", cache_policy=NONE, **RETRY)
def write_manifest(out: str, run_id: str, manifest: dict) -> str:
    url = RunStore(out, run_id).write_manifest(manifest)
    get_run_logger().info("write-manifest: %d files, %d bytes: %s", manifest["totals"]["files"], manifest["totals"]["bytes"], url)
    return url


def publish(loaded, out: str, rid: str, inputs, jobs, *, workers, dask_address, progress: bool, days=None, unit_ids=None) -> dict:
    """Generate and deliver the planned units into a fresh run directory, then the
    quarantine, the report, the participants' READMEs and (last) the manifest. The caller
    holds the run's claim."""
    prepare_run_dir(out, rid)
    results, summary = generate_and_deliver(jobs, workers, dask_address, progress)
    extra = list(deliver_quarantine(out, rid, inputs)) + list(load_model_report(out, rid, summary))
    readmes = participant_readmes(out, rid, results, extra)
    manifest = stages.manifest_for(loaded, rid, results, extra + list(readmes), inputs, days=days, unit_ids=unit_ids)
    return _finish(out, rid, manifest, results)


def _finish(out: str, rid: str, manifest: dict, results) -> dict:
    manifest_url = write_manifest(out, rid, manifest)
    totals = manifest["totals"]
    gen_s = sum(r.generate_seconds for r in results)
    create_table_artifact(
        key="run-summary",
        table=[{"role": "all", "participant": "-", "dataset": "totals", "rows": totals["half_hour_values"], "files": totals["files"]}] + stages.summary_rows(manifest),
        description=(
            f"Run {rid}: {totals['mpans']} MPANs, {totals['half_hour_values']} half-hour values, "
            f"{totals['files']} files, {totals['bytes']} bytes; generation {gen_s:.1f} s of worker time"
        ),
    )
    return {"run_id": rid, "manifest_url": manifest_url, "totals": totals, "generate_seconds": gen_s, "cleansing": manifest.get("cleansing")}


@flow(name="mhhs-run", log_prints=False)
def mhhs_run(
    scenario_url: str,
    out: str,
    run_id: str | None = None,
    workers: int | None = None,
    dask_address: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    seed: int | None = None,
    mpans: int | None = None,
    units: list[str] | None = None,
    overrides: dict | None = None,
    progress: bool = True,
) -> dict:
    """A whole scenario into ``<out>/<run_id>``. ``start``/``end`` (UTC settlement days),
    ``seed`` and ``mpans`` override the scenario's; ``dask_address`` defaults to
    ``$MHHS_DASK_ADDRESS``, else a local cluster of ``workers`` processes. ``units``: those
    units alone -- into a complete run of the same scenario at ``run_id`` they replace
    their own files (a repair), else they make a run of their own."""
    logger = get_run_logger()
    dask_address = dask_address or os.environ.get(DASK_ADDRESS_ENV) or None
    out = check_out_url(out)
    loaded, rid = load_scenario(resolve_scenario_url(scenario_url), {**(overrides or {}), **scenario_overrides(start, end, seed, mpans)}, run_id)
    inputs = cleanse_extract(loaded)
    jobs = plan(loaded, out, rid, inputs, None, units)
    logger.info("run %s: %s", rid, _units(len(jobs)))
    # The cluster is checked and the run id claimed before anything at <out>/<run_id> is
    # touched: an unreachable scheduler or a second run with the same id leaves a previous
    # run as it was.
    check_cluster(dask_address)
    with run_claim(out, rid):
        if units:
            previous = begin_repair(out, rid, loaded)
            if previous is not None:
                results, _ = generate_and_deliver(jobs, workers, dask_address, progress)  # the report stays as it was
                manifest, changes = stages.repaired_manifest(previous, results)
                logger.info(
                    "repair of run %s: %d files rewritten, %d identical to the manifest's, %d changed, %d new",
                    rid, changes["rewritten"], changes["identical"], len(changes["changed"]), len(changes["new"]),
                )  # fmt: skip
                return {**_finish(out, rid, manifest, results), "repair": changes}
        return publish(loaded, out, rid, inputs, jobs, workers=workers, dask_address=dask_address, progress=progress, unit_ids=units)
