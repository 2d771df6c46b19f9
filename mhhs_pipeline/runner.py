"""One work unit end to end: synthesise -> generate -> split -> encode -> write.

No Dask and no Prefect here: ``run_unit`` is a plain function that Dask workers (or a
test, or a debugger) call with a picklable :class:`UnitJob`. It returns the manifest
records of the files it wrote and the row counts per participant.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.cleanse.consumption_merge import merge_with_model_index
from mhhs_pipeline.core.load import generate_consumption, generate_load
from mhhs_pipeline.core.participants import consumption_slices, registration_slices, take_ranges
from mhhs_pipeline.core.registrations import in_force, synthesise_registrations
from mhhs_pipeline.deliver import UnitContext, deliver_consumption, write_tabular
from mhhs_pipeline.formats.parquet_writer import PreparedParquet, worthwhile
from mhhs_pipeline.formats.tabular import RenderedCsv
from mhhs_pipeline.formats.wide import render_wide
from mhhs_pipeline.io.store import FileRecord, RunStore, is_permanent
from mhhs_pipeline.plan import WorkUnit
from mhhs_pipeline.report import ReportSummary, summarise
from mhhs_pipeline.spec.scenario import Scenario


@dataclass(frozen=True)
class UnitJob:
    scenario: Scenario
    out_url: str
    run_id: str
    unit: WorkUnit
    registrations: pa.Table | None = None  # a block of a cleansed extract; None = synthesise
    actual: pa.Table | None = None  # clean actual consumption of this unit's MPANs and days
    # Deliver only the registration rows in force on these days (a drip-feed day), not the
    # block's whole history in the window.
    registrations_in_force: tuple[dt.date, dt.date] | None = None

    def describe(self, registrations: pa.Table | None = None) -> str:
        """``unit <id> (sites a-b, MPANs first..last, days d1..d2)``, for error messages."""
        u = self.unit
        text = f"unit {u.unit_id} (sites {u.site_start}-{u.site_stop - 1}"
        reg = registrations if registrations is not None else self.registrations
        if reg is not None and reg.num_rows:
            cores = reg.column("mpan_core")
            text += f", MPANs {pc.min(cores).as_py()}..{pc.max(cores).as_py()}"
        return text + f", days {u.first_day}..{u.last_day})"


class UnitError(RuntimeError):
    """A work unit failed: the message names the unit, its MPAN range and days, and the
    cause; ``permanent`` when a retry cannot mend it (a full disk, a denied bucket)."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message, permanent)
        self.permanent = permanent

    def __str__(self) -> str:
        return self.args[0]

    def __repr__(self) -> str:
        return f"UnitError({self.args[0]!r})"


@dataclass
class UnitResult:
    unit_id: str
    site_start: int = 0  # the unit's block: MPANs are counted once per block
    records: list[FileRecord] = field(default_factory=list)
    half_hours: int = 0  # canonical consumption rows generated (each delivered to 4 participants)
    mpans: int = 0
    generate_seconds: float = 0.0
    report: ReportSummary | None = None  # for the run's PNG report


def run_unit(job: UnitJob) -> UnitResult:
    # Large files land behind the unit's work (io.direct_write); all have landed, or the
    # unit fails, before its records are returned.
    store = RunStore(job.out_url, job.run_id, write_behind=True)
    try:
        try:
            return _run_unit(job, store)
        finally:
            store.flush()
    except Exception as exc:
        raise UnitError(f"{_describe_failed(job)} failed: {type(exc).__name__}: {exc}", is_permanent(exc)) from exc


def _describe_failed(job: UnitJob) -> str:
    """The unit's description, with the MPAN range of its block where it can be made."""
    if job.registrations is not None:
        return job.describe()
    try:
        return job.describe(synthesise_registrations(job.scenario, job.unit.site_start, job.unit.site_stop))
    except Exception:  # the block cannot be synthesised: say what is known without it
        return job.describe()


def _run_unit(job: UnitJob, store: RunStore) -> UnitResult:
    scenario, unit = job.scenario, job.unit
    result = UnitResult(unit.unit_id, unit.site_start)

    t0 = time.perf_counter()
    reg = job.registrations if job.registrations is not None else synthesise_registrations(scenario, unit.site_start, unit.site_stop)
    faults = scenario.outputs.fault_datasets
    out = generate_load(scenario, reg, unit.first_day, unit.last_day) if faults else None
    gen = out.consumption if out else generate_consumption(scenario, reg, unit.first_day, unit.last_day)
    table, reg_rows_all = gen.table, gen.registration_row
    actual_mpans = None
    if job.actual is not None and job.actual.num_rows:
        # Actual values pass through; gaps are filled at the MPAN's own level (provenance manufactured).
        table, idx = merge_with_model_index(job.actual, gen.table, registrations=reg)
        reg_rows_all = gen.registration_row[idx]
        actual_mpans = pc.unique(job.actual.column("mpan_core"))
    result.generate_seconds = time.perf_counter() - t0
    raw_sets = [] if out is None else [("meter_reads_raw", out.meter_reads_raw, out.raw_registration_row), ("ground_truth", out.ground_truth, out.truth_registration_row)]
    out = gen = None  # the consumption table stays referenced by ``table`` alone (released below)
    result.half_hours = table.num_rows
    # The registrations this unit delivers: the block's, or those in force on its days.
    delivered = reg if job.registrations_in_force is None else in_force(reg, *job.registrations_in_force)
    result.mpans = len(pc.unique(delivered.column("mpan_core")))
    if scenario.outputs.report:
        result.report = summarise(table, reg, reg_rows_all)

    ctx = UnitContext(scenario, store, reg, unit.first_day, unit.last_day)
    formats = set(scenario.outputs.formats)
    csv_on = "csv" in formats
    # CSV, wide CSV and Parquet files are cut from one preparation per unit (every copy's
    # Parquet encoded together); the other formats (IF-021, DCC) need the rows themselves.
    prepared = prepared_parquet(table, formats)
    needs_rows = bool(formats - {"csv", "csv_wide", "csv_wide_local", "parquet"}) or ("parquet" in formats and prepared is None)
    needs_reg_rows = bool(formats & {"if021_json", "dcc_xml"})  # the encoders that read them
    rendered = RenderedCsv(table) if csv_on else None
    wides = {fmt: render_wide(table, local=fmt == "csv_wide_local") for fmt in ("csv_wide", "csv_wide_local") if fmt in formats}
    slices = consumption_slices(reg, reg_rows_all)
    parquet_files = parquet_files_of(prepared, slices)
    for i, sl in enumerate(slices):
        whole = sl.role == "central"
        part = table if whole or not needs_rows else take_ranges(table, *sl.runs)
        reg_rows = reg_rows_all if whole else reg_rows_all[sl.rows] if needs_reg_rows else None
        pre = {}
        if rendered:
            pre["csv"] = _csv_cut(rendered, sl)
        if parquet_files:
            pre["parquet"] = parquet_files[i]
        for fmt, wide in wides.items():
            pre[fmt] = wide.chunks() if whole else wide.subset_chunks(table, sl.rows)
        result.records += deliver_consumption(ctx, sl.role, sl.participant_id, unit.unit_id, part, reg_rows, pre_encoded=pre, n_rows=sl.n_rows)
        if parquet_files:
            parquet_files[i] = None  # landed: its bytes can go
    # The consumption phase (table, renderings, encodings) is released before the raw reads
    # are prepared: a unit's peak memory is then one phase's, not two.
    table = reg_rows_all = rendered = wides = prepared = parquet_files = part = pre = reg_rows = None

    if raw_sets:
        # Raw meter reads (with faults) and their ground truth go to data services and central.
        for dataset, data, rows in raw_sets:
            if actual_mpans is not None:  # an MPAN with actual data has no manufactured raw reads
                keep = pc.invert(pc.is_in(data.column("mpan_core"), actual_mpans))
                rows = rows[keep.to_numpy(zero_copy_only=False)]
                data = data.filter(keep)
            rendered = RenderedCsv(data) if csv_on else None
            prepared = prepared_parquet(data, formats)
            rows_needed = "parquet" in formats and prepared is None  # only tabular formats here
            slices = [sl for sl in consumption_slices(reg, rows) if sl.role in ("data_service", "central")]
            parquet_files = parquet_files_of(prepared, slices)
            for i, sl in enumerate(slices):
                whole = sl.role == "central"
                part = data if whole or not rows_needed else take_ranges(data, *sl.runs)
                pre = {"csv": _csv_cut(rendered, sl)} if rendered else {}
                if parquet_files:
                    pre["parquet"] = parquet_files[i]
                result.records += write_tabular(ctx, sl.role, sl.participant_id, dataset, unit.unit_id, part, pre_encoded=pre, n_rows=sl.n_rows)

    if unit.day_chunk == 0:
        block_id = f"s{unit.site_start:09d}"
        reg = delivered
        # Rendered once, cut per participant (dozens of small CSVs: per-call set-up dominated).
        rendered = RenderedCsv(reg) if csv_on else None
        for sl in registration_slices(reg):
            # The rows themselves only for Parquet (CSV is cut from the rendering).
            part = reg if sl.role == "central" or "parquet" not in formats else reg.take(sl.rows)
            pre = {"csv": _csv_cut(rendered, sl)} if rendered else {}
            result.records += write_tabular(ctx, sl.role, sl.participant_id, "registrations", block_id, part, pre_encoded=pre, n_rows=sl.n_rows)
    return result


def _csv_cut(rendered: RenderedCsv, sl) -> list:
    """A slice's CSV chunks cut from its dataset's rendering (central: the whole of it)."""
    return rendered.chunks() if sl.role == "central" else rendered.runs_chunks(*sl.runs)


def prepared_parquet(table: pa.Table, formats: set[str]) -> PreparedParquet | None:
    """The table prepared for Parquet, where Parquet is wanted and our writer pays."""
    return PreparedParquet(table) if "parquet" in formats and worthwhile(table) else None


def parquet_files_of(prepared: PreparedParquet | None, slices: list) -> list[list[bytes]] | None:
    """Every participant's Parquet file (as chunks), encoded together; central gets all rows."""
    return prepared.files([None if sl.role == "central" else sl.runs for sl in slices]) if prepared else None
