"""Pipeline stages as plain functions; Prefect flows in ``flows/`` wrap them as tasks.

load scenario -> plan units -> reset run dir -> run units on Dask -> manifest (last).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.core.participants import CENTRAL_ID
from mhhs_pipeline.formats.participant_readme import participant_readme
from mhhs_pipeline.formats.tabular import encode_parquet
from mhhs_pipeline.io.consumption_extract import cleanse_consumption
from mhhs_pipeline.io.extract import ExtractError, cleanse_registrations
from mhhs_pipeline.io.paths import UnsafePathError, check_run_id, participant_prefix
from mhhs_pipeline.io.store import FileRecord, RunStore
from mhhs_pipeline.plan import plan_units, select_units
from mhhs_pipeline.report import ReportSummary, SummaryFold, render_png
from mhhs_pipeline.runner import UnitJob, UnitResult, run_unit
from mhhs_pipeline.spec.scenario import Scenario, apply_overrides_to_yaml, parse_scenario


@dataclass(frozen=True)
class LoadedScenario:
    scenario: Scenario
    text: str  # after CLI overrides
    sha256: str


def load_scenario(url: str, overrides: dict | None = None) -> LoadedScenario:
    """Read a scenario file (path or fsspec URL), apply overrides, validate strictly.

    At most ``MAX_SCENARIO_BYTES`` (+1, to know it is larger) are read: a scenario is a
    short text file, and a wrong path to a data file must fail at once, not after
    minutes of parsing."""
    from mhhs_pipeline.spec.scenario import MAX_SCENARIO_BYTES, ScenarioError

    try:
        with fsspec.open(url, "rb") as f:
            raw = f.read(MAX_SCENARIO_BYTES + 1)
            size = getattr(f, "size", None)  # for the message only; not every filesystem knows
    except IsADirectoryError:
        raise ScenarioError(f"{url} is a directory; give the scenario's YAML file") from None
    except PermissionError:
        raise ScenarioError(f"{url} cannot be read (permission denied); check the path and its permissions") from None
    if len(raw) > MAX_SCENARIO_BYTES:
        told = f"{size:,} bytes" if isinstance(size, int) else f"more than {MAX_SCENARIO_BYTES:,} bytes"
        raise ScenarioError(
            f"{url} is {told}, larger than the {MAX_SCENARIO_BYTES:,} bytes (1 MiB) a scenario may be; "
            "a scenario is a short YAML file (configs/quickstart.yaml is ~2 KB): check the path"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(f"{url} is not UTF-8 text; save the scenario as UTF-8 YAML") from None
    effective = apply_overrides_to_yaml(text, overrides or {})
    data = effective.encode("utf-8") if overrides else raw
    return LoadedScenario(parse_scenario(effective), effective, hashlib.sha256(data).hexdigest())


def default_run_id(scenario: Scenario, now_utc: dt.datetime) -> str:
    return check_run_id(f"{scenario.name}-{now_utc.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}")


def prepare_run(out_url: str, run_id: str) -> RunStore:
    store = RunStore(out_url, run_id)
    store.reset()
    return store


@dataclass(frozen=True)
class CleansedInputs:
    """A cleansed registration extract: the population of an extract-driven run."""

    registrations: pa.Table  # REGISTRATION_SCHEMA
    quarantine: pa.Table  # cleanse.QUARANTINE_SCHEMA
    report_markdown: str
    stats: dict
    actual: pa.Table | None = None  # clean actual consumption (CONSUMPTION_SCHEMA, provenance actual)
    consumption_quarantine: pa.Table | None = None


def cleanse_inputs(loaded: LoadedScenario) -> CleansedInputs | None:
    """First stage when the scenario names a registration extract: cleanse it (nothing lost:
    every input row is clean, merged or quarantined)."""
    url = loaded.scenario.inputs.registrations
    if not url:
        return None
    reg, quarantine, out = cleanse_registrations(url, seed=loaded.scenario.seed, population=loaded.scenario.population)
    if reg.num_rows == 0:
        # A run of no MPANs would land a manifest that validate rightly rejects.
        raise ExtractError(
            f"the registration extract {url} has no usable registration ({out.stats.reconciliation_line()}): "
            f"nothing to generate; `mhhs-pipeline cleanse {url} --out URL` lands every rejected row with its reason"
        )
    stats = {**out.stats.to_dict(), "reconciliation": out.stats.reconciliation_line()}
    report = out.report_markdown
    actual = c_quarantine = None
    if loaded.scenario.inputs.consumption:
        actual, c_quarantine, c_out = cleanse_consumption(loaded.scenario.inputs.consumption, reg)
        stats["consumption"] = {**c_out.stats.to_dict(), "reconciliation": c_out.stats.reconciliation_line()}
        report += "\n\n" + c_out.report_markdown
    return CleansedInputs(reg, quarantine, report, stats, actual, c_quarantine)


def unit_jobs(
    loaded: LoadedScenario,
    out_url: str,
    run_id: str,
    inputs: CleansedInputs | None = None,
    *,
    days: tuple[dt.date, dt.date] | None = None,
    unit_ids: list[str] | None = None,
) -> list[UnitJob]:
    """The run's work units as jobs. ``days``: only those days of the population (a
    drip-feed day; its registrations are those in force on them); ``unit_ids``: only those
    units of the plan (a partial re-run)."""
    sc = loaded.scenario
    if inputs is None:
        units = plan_units(sc, days=days)
        if unit_ids is not None:
            units = select_units(units, unit_ids)
        return [UnitJob(sc, out_url, run_id, u, registrations_in_force=days) for u in units]
    # Blocks of the extract's MPANs (sorted): each job carries its own registration rows.
    reg = inputs.registrations.sort_by([("mpan_core", "ascending"), ("effective_from", "ascending")])
    cores = np.asarray(reg.column("mpan_core").to_numpy(zero_copy_only=False)).astype(str)
    unique = np.unique(cores)
    units = plan_units(sc, len(unique), days=days)
    if unit_ids is not None:
        units = select_units(units, unit_ids)
    jobs = []
    for u in units:
        lo = int(np.searchsorted(cores, unique[u.site_start], side="left"))
        hi = int(np.searchsorted(cores, unique[u.site_stop - 1], side="right"))
        actual = None
        if inputs.actual is not None:
            a_cores = inputs.actual.column("mpan_core")
            in_block = pc.and_(pc.greater_equal(a_cores, unique[u.site_start]), pc.less_equal(a_cores, unique[u.site_stop - 1]))
            day = pc.cast(pc.subtract(inputs.actual.column("period_end_utc"), pa.scalar(dt.timedelta(minutes=30))), pa.timestamp("us")).cast(pa.date32())
            in_days = pc.and_(pc.greater_equal(day, pa.scalar(u.first_day)), pc.less_equal(day, pa.scalar(u.last_day)))
            actual = inputs.actual.filter(pc.and_(in_block, in_days))
        jobs.append(UnitJob(sc, out_url, run_id, u, reg.slice(lo, hi - lo), actual, registrations_in_force=days))
    return jobs


def write_quarantine(store: RunStore, inputs: CleansedInputs) -> list[FileRecord]:
    """Quarantine rows to central (all) and to each participant named on them (its own), so
    every participant can fix its source; the cleansing report to central."""
    q = inputs.quarantine
    records = [
        store.write("central/central/quarantine/quarantine.parquet", encode_parquet(q), role="central", participant_id=CENTRAL_ID, dataset="quarantine", fmt="parquet", rows=q.num_rows),
        store.write("central/central/cleansing_report/cleansing_report.md", inputs.report_markdown.encode(), role="central", participant_id=CENTRAL_ID, dataset="cleansing_report", fmt="markdown", rows=0),
    ]  # fmt: skip
    records += _route_quarantine(store, q, "quarantine.parquet")
    if inputs.consumption_quarantine is not None:
        cq = inputs.consumption_quarantine
        records.append(store.write("central/central/quarantine/consumption_quarantine.parquet", encode_parquet(cq), role="central", participant_id=CENTRAL_ID, dataset="quarantine", fmt="parquet", rows=cq.num_rows))
        records += _route_quarantine(store, cq, "consumption_quarantine.parquet")
    return records


def _route_quarantine(store: RunStore, q: pa.Table, name: str) -> list[FileRecord]:
    records = []
    for role, column in (("supplier", "route_supplier_id"), ("data_service", "route_data_service_id"), ("ldso", "route_ldso_id")):
        ids = q.column(column)
        for pid in pc.unique(ids.drop_null()).to_pylist():
            try:
                prefix = participant_prefix(role, pid)
            except UnsafePathError:
                continue  # an id that cannot be a path stays in the central copy only
            part = q.filter(pc.equal(ids, pid))
            records.append(store.write(f"{prefix}/quarantine/{name}", encode_parquet(part), role=role, participant_id=pid, dataset="quarantine", fmt="parquet", rows=part.num_rows))
    return records


def write_report(store: RunStore, summary: ReportSummary | None) -> tuple[list[FileRecord], bytes | None]:
    """The run's PNG load-model report, from the units' merged summary (``SummaryFold``)."""
    if summary is None:
        return [], None
    png = render_png(summary, title=store.run_id)
    rec = store.write("central/central/report/load_model.png", png, role="central", participant_id=CENTRAL_ID, dataset="report", fmt="png", rows=0)
    return [rec], png


def generate_units(jobs: list[UnitJob], **run_options) -> tuple[list[UnitResult], ReportSummary | None]:
    """Every unit on Dask (``distributed.run_on_dask`` options): each unit's result without
    its load-model summary, and the summaries merged as the units complete (``SummaryFold``:
    the driver holds a few, not one per unit)."""
    from mhhs_pipeline.distributed import run_on_dask

    fold = SummaryFold()
    results = run_on_dask(run_unit, jobs, keep=fold.keep, **run_options)
    return results, fold.result()


def run_jobs_serially(jobs: list[UnitJob]) -> list[UnitResult]:
    return [run_unit(j) for j in jobs]


def write_participant_readmes(store: RunStore, results: list[UnitResult], extra: list[FileRecord] = ()) -> list[FileRecord]:
    """A README.txt in every participant prefix (files, columns, units, time conventions, checksums)."""
    by_participant: dict[tuple[str, str], list[dict]] = {}
    for r in [r for res in results for r in res.records] + list(extra):
        by_participant.setdefault((r.participant_role, r.participant_id), []).append(r.to_dict())
    out = []
    for (role, pid), files in sorted(by_participant.items()):
        data = participant_readme(store.run_id, role, pid, files)
        out.append(store.write(f"{role}/{pid}/README.txt", data, role=role, participant_id=pid, dataset="readme", fmt="text", rows=0))
    return out


def manifest_for(
    loaded: LoadedScenario,
    run_id: str,
    results: list[UnitResult],
    extra: list[FileRecord] = (),
    inputs: CleansedInputs | None = None,
    *,
    days: tuple[dt.date, dt.date] | None = None,
    unit_ids: list[str] | None = None,
) -> dict:
    """The run's manifest. ``days``: a drip-feed run's days (its ``window``; the
    population's window is then ``population_window``); ``unit_ids``: a run of those units
    of the plan alone (listed as ``units``)."""
    records: list[FileRecord] = sorted([r for res in results for r in res.records] + list(extra), key=lambda r: r.path)
    paths = [r.path for r in records]
    if len(set(paths)) != len(paths):
        raise RuntimeError("two work units wrote the same file; the plan is broken")
    sc = loaded.scenario
    return {
        "run_id": run_id,
        "seed": sc.seed,
        "scenario": sc.name,
        "scenario_sha256": loaded.sha256,
        "window": {"start": (days or (sc.window.start,))[0].isoformat(), "end": (days or (None, sc.window.end))[1].isoformat()},
        **({"population_window": {"start": sc.window.start.isoformat(), "end": sc.window.end.isoformat()}} if days else {}),
        "generator": {"name": "mhhs-pipeline", "version": _version()},
        "totals": {
            "mpans": count_mpans(results),
            **({"quarantined": inputs.quarantine.num_rows} if inputs is not None else {}),
            "half_hour_values": sum(r.half_hours for r in results),
            "files": len(records),
            "bytes": sum(r.bytes for r in records),
        },
        **({"cleansing": inputs.stats} if inputs is not None else {}),
        **({"units": list(unit_ids)} if unit_ids is not None else {}),
        "files": [r.to_dict() for r in records],
    }


def count_mpans(results: list[UnitResult]) -> int:
    """Distinct MPANs of the run: a block's MPANs once, however many day ranges it has
    (blocks never share an MPAN)."""
    return sum({r.site_start: r.mpans for r in results}.values())


class RepairError(ValueError):
    """A partial re-run that cannot repair the run at its run id."""


def previous_run(out_url: str, run_id: str, loaded: LoadedScenario) -> dict | None:
    """The manifest of a complete run at ``run_id`` that a partial re-run would repair, or
    None when no complete run is there. Refused when it was made from another scenario
    (or other overrides): its other units' files would not match the re-run ones."""
    store = RunStore(out_url, run_id)
    if not store.has_manifest():
        return None
    previous = store.read_manifest()
    if previous.get("scenario_sha256") != loaded.sha256:
        raise RepairError(
            f"run {run_id} was made from another scenario (sha256 {str(previous.get('scenario_sha256'))[:12]}..., "
            f"this one {loaded.sha256[:12]}...): re-run its units with the same scenario and overrides, or use another --run-id"
        )
    return previous


def begin_repair(out_url: str, run_id: str, loaded: LoadedScenario) -> dict | None:
    """Before re-running some units of a complete run: its manifest (see
    :func:`previous_run`), then removed, so the run reads as incomplete while its files
    are rewritten."""
    previous = previous_run(out_url, run_id, loaded)
    if previous is not None:
        RunStore(out_url, run_id).remove_manifest()
    return previous


def repaired_manifest(previous: dict, results: list[UnitResult]) -> tuple[dict, dict]:
    """``previous`` with the re-run units' file records in place of its own, and what
    changed: ``{"rewritten": n, "identical": n, "changed": [paths], "new": [paths]}``."""
    by_path = {f["path"]: f for f in previous["files"]}
    stats = {"rewritten": 0, "identical": 0, "changed": [], "new": []}
    for rec in (r for res in results for r in res.records):
        old = by_path.get(rec.path)
        stats["rewritten"] += 1
        if old is None:
            stats["new"].append(rec.path)
        elif old["sha256"] == rec.sha256:
            stats["identical"] += 1
        else:
            stats["changed"].append(rec.path)
        by_path[rec.path] = rec.to_dict()
    files = [by_path[p] for p in sorted(by_path)]
    totals = {**previous["totals"], "files": len(files), "bytes": sum(f["bytes"] for f in files)}
    return {**previous, "totals": totals, "files": files}, stats


def summary_rows(manifest: dict) -> list[dict]:
    """Rows (half-hour values or registration rows) and files per participant and dataset.

    Every format of a dataset carries the same rows, so rows are counted once per format.
    """
    rows: dict[tuple, dict[str, int]] = {}
    files: Counter = Counter()
    for f in manifest["files"]:
        key = (f["participant_role"], f["participant_id"], f["dataset"])
        per_format = rows.setdefault(key, {})
        per_format[f["format"]] = per_format.get(f["format"], 0) + f["rows"]
        files[key] += 1
    return [
        {"role": k[0], "participant": k[1], "dataset": k[2], "rows": max(rows[k].values()), "files": files[k]}
        for k in sorted(rows)
    ]


def _version() -> str:
    from mhhs_pipeline import __version__

    return __version__
