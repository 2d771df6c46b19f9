"""The ``mhhs-drip-feed`` Prefect flow: one UTC settlement day of a population per run.

Scheduled daily (``deploy/prefect.yaml``), each run publishes the next day of the
population that is not yet published under ``out`` -- or the day it is given -- as its own
run ``<out>/<prefix>-YYYY-MM-DD`` with its own manifest. Participants pick up each day
by waiting for that run's ``manifest.json`` (written last). Re-running a day replaces it
with the same bytes.
"""

from __future__ import annotations

import datetime as dt
import os

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from flows.pipeline import (
    DASK_ADDRESS_ENV,
    check_cluster,
    check_out_url,
    cleanse_extract,
    load_scenario,
    plan,
    publish,
    resolve_scenario_url,
    scenario_overrides,
)
from mhhs_pipeline import drip
from mhhs_pipeline.io.claim import run_claim


@task(name="choose-day", cache_policy=NONE, retries=3)
def choose_day(out: str, prefix: str, window, day: dt.date | None) -> dt.date | None:
    published = drip.published_days(out, prefix) if day is None else []
    return drip.choose_day(window, published, day)


@flow(name="mhhs-drip-feed", log_prints=False)
def mhhs_drip_feed(
    scenario_url: str,
    out: str,
    day: dt.date | None = None,
    run_id_prefix: str | None = None,
    workers: int | None = None,
    dask_address: str | None = None,
    seed: int | None = None,
    mpans: int | None = None,
    progress: bool = False,
) -> dict:
    """Publish one UTC settlement day of the scenario's population as run
    ``<out>/<prefix>-YYYY-MM-DD`` (prefix default ``<scenario name>-day``): ``day`` if
    given, else the day after the last one published (the window's first day when none is).
    When every day of the window is published, it publishes nothing and says so."""
    logger = get_run_logger()
    dask_address = dask_address or os.environ.get(DASK_ADDRESS_ENV) or None
    out = check_out_url(out)
    loaded, _ = load_scenario(resolve_scenario_url(scenario_url), scenario_overrides(None, None, seed, mpans), None)
    sc = loaded.scenario
    prefix = drip.drip_prefix(sc.name, run_id_prefix)
    chosen = choose_day(out, prefix, sc.window, day)
    if chosen is None:
        logger.info("drip-feed %s: every day of the window %s..%s is published; nothing to do", prefix, sc.window.start, sc.window.end)
        return {"run_id": None, "day": None, "manifest_url": None}
    rid = drip.drip_run_id(prefix, chosen)
    logger.info("drip-feed %s: publishing UTC settlement day %s as run %s", prefix, chosen, rid)
    inputs = cleanse_extract(loaded)
    days = (chosen, chosen)
    jobs = plan(loaded, out, rid, inputs, days)
    check_cluster(dask_address)
    with run_claim(out, rid):
        result = publish(loaded, out, rid, inputs, jobs, workers=workers, dask_address=dask_address, progress=progress, days=days)
    return {**result, "day": chosen.isoformat()}
