"""The ``mhhs-run`` Prefect flow: coarse tasks per stage, Dask fan-out inside one task.

Prefect adds ~100 ms per task run, so tasks stay coarse (per stage) and the fine-grained
per-unit fan-out is Dask's. No Prefect task runs inside Dask workers: with no
PREFECT_API_URL each worker would start its own temporary server.
"""

from __future__ import annotations

import base64
import datetime as dt

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.tasks import exponential_backoff

from mhhs_pipeline import stages
from mhhs_pipeline.distributed import run_on_dask
from mhhs_pipeline.io.store import RunStore
from mhhs_pipeline.runner import run_unit


@task(name="load-scenario", cache_policy=NONE)
def load_scenario(scenario_url: str, overrides: dict, run_id: str | None):
    loaded = stages.load_scenario(scenario_url, overrides)
    return loaded, run_id or stages.default_run_id(loaded.scenario, dt.datetime.now(dt.UTC))


@task(name="cleanse-extract", cache_policy=NONE, retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=2))
def cleanse_extract(loaded):
    inputs = stages.cleanse_inputs(loaded)
    if inputs is not None:
        create_markdown_artifact(key="cleansing-report", markdown=inputs.report_markdown, description="Cleansing of the registration extract")
    return inputs


@task(name="plan-units", cache_policy=NONE)
def plan(loaded, out: str, run_id: str, inputs):
    return stages.unit_jobs(loaded, out, run_id, inputs)


@task(name="deliver-quarantine", cache_policy=NONE, retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=1))
def deliver_quarantine(out: str, run_id: str, inputs):
    return stages.write_quarantine(RunStore(out, run_id), inputs) if inputs is not None else []


@task(name="load-model-report", cache_policy=NONE, retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=1))
def load_model_report(out: str, run_id: str, results):
    records, png = stages.write_report(RunStore(out, run_id), results)
    if png is not None:
        # Inline as a data URI: the Prefect UI shows it without access to the run's storage.
        encoded = base64.b64encode(png).decode()
        create_markdown_artifact(
            key="load-model-report",
            markdown=f"![load model report](data:image/png;base64,{encoded})\n\n`{records[0].path}` in run {run_id}",
            description="Average daily shapes by archetype and season, sample week, monthly totals, annual consumption",
        )
    return records


@task(name="prepare-run-dir", cache_policy=NONE, retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=1))
def prepare_run_dir(out: str, run_id: str) -> None:
    stages.prepare_run(out, run_id)


@task(name="generate-and-deliver", cache_policy=NONE)
def generate_and_deliver(jobs, workers: int | None, dask_address: str | None, progress: bool):
    return run_on_dask(run_unit, jobs, workers=workers, address=dask_address, progress=progress)


@task(name="participant-readmes", cache_policy=NONE, retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=1))
def participant_readmes(out: str, run_id: str, results, extra):
    return stages.write_participant_readmes(RunStore(out, run_id), results, extra)


@task(name="write-manifest", cache_policy=NONE, retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=1))
def write_manifest(out: str, run_id: str, manifest: dict) -> str:
    return RunStore(out, run_id).write_manifest(manifest)


@flow(name="mhhs-run", log_prints=False)
def mhhs_run(
    scenario_url: str,
    out: str,
    run_id: str | None = None,
    workers: int | None = None,
    dask_address: str | None = None,
    overrides: dict | None = None,
    progress: bool = True,
) -> dict:
    logger = get_run_logger()
    loaded, rid = load_scenario(scenario_url, overrides or {}, run_id)
    inputs = cleanse_extract(loaded)
    jobs = plan(loaded, out, rid, inputs)
    logger.info("run %s: %d work units", rid, len(jobs))
    prepare_run_dir(out, rid)
    results = generate_and_deliver(jobs, workers, dask_address, progress)
    extra = list(deliver_quarantine(out, rid, inputs)) + list(load_model_report(out, rid, results))
    readmes = participant_readmes(out, rid, results, extra)
    manifest = stages.manifest_for(loaded, rid, results, extra + list(readmes), inputs)
    manifest_url = write_manifest(out, rid, manifest)
    rows = stages.summary_rows(manifest)
    totals = manifest["totals"]
    gen_s = sum(r.generate_seconds for r in results)
    create_table_artifact(
        key="run-summary",
        table=[{"role": "all", "participant": "-", "dataset": "totals", "rows": totals["half_hour_values"], "files": totals["files"]}] + rows,
        description=(
            f"Run {rid}: {totals['mpans']} MPANs, {totals['half_hour_values']} half-hour values, "
            f"{totals['files']} files, {totals['bytes']} bytes; generation {gen_s:.1f} s of worker time"
        ),
    )
    return {"run_id": rid, "manifest_url": manifest_url, "totals": totals, "generate_seconds": gen_s, "cleansing": manifest.get("cleansing")}
