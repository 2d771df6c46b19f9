"""One work unit end to end: synthesise -> generate -> split -> encode -> write.

No Dask and no Prefect here: ``run_unit`` is a plain function that Dask workers (or a
test, or a debugger) call with a picklable :class:`UnitJob`. It returns the manifest
records of the files it wrote and the row counts per participant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mhhs_pipeline.core.load import generate_consumption
from mhhs_pipeline.core.participants import consumption_slices, registration_slices
from mhhs_pipeline.core.registrations import synthesise_registrations
from mhhs_pipeline.formats.tabular import encode_csv, encode_parquet
from mhhs_pipeline.io.paths import participant_prefix
from mhhs_pipeline.io.store import FileRecord, RunStore
from mhhs_pipeline.plan import WorkUnit
from mhhs_pipeline.spec.scenario import Scenario

ENCODERS = {"parquet": (encode_parquet, "parquet"), "csv": (encode_csv, "csv")}


@dataclass(frozen=True)
class UnitJob:
    scenario: Scenario
    out_url: str
    run_id: str
    unit: WorkUnit


@dataclass
class UnitResult:
    unit_id: str
    records: list[FileRecord] = field(default_factory=list)
    half_hours: int = 0  # canonical consumption rows generated (each delivered to 4 participants)
    mpans: int = 0
    generate_seconds: float = 0.0


def run_unit(job: UnitJob) -> UnitResult:
    import time

    scenario, unit = job.scenario, job.unit
    store = RunStore(job.out_url, job.run_id)
    result = UnitResult(unit.unit_id)

    t0 = time.perf_counter()
    reg = synthesise_registrations(scenario, unit.site_start, unit.site_stop)
    gen = generate_consumption(scenario, reg, unit.first_day, unit.last_day)
    result.generate_seconds = time.perf_counter() - t0
    result.half_hours = gen.table.num_rows
    result.mpans = len(set(reg.column("mpan_core").to_pylist()))

    for sl in consumption_slices(reg, gen.registration_row):
        part = gen.table.take(sl.rows) if sl.role != "central" else gen.table
        result.records += _write_all(store, scenario, sl.role, sl.participant_id, "consumption", unit.unit_id, part, part.num_rows)

    if unit.day_chunk == 0:
        block_id = f"s{unit.site_start:09d}"
        for sl in registration_slices(reg):
            part = reg.take(sl.rows) if sl.role != "central" else reg
            result.records += _write_all(store, scenario, sl.role, sl.participant_id, "registrations", block_id, part, part.num_rows)
    return result


def _write_all(store: RunStore, scenario: Scenario, role: str, pid: str, dataset: str, name: str, table, rows: int) -> list[FileRecord]:
    prefix = participant_prefix(role, pid)
    out = []
    for fmt in scenario.outputs.formats:
        encode, ext = ENCODERS[fmt]
        data = encode(table)
        out.append(store.write(f"{prefix}/{dataset}/{name}.{ext}", data, role=role, participant_id=pid, dataset=dataset, fmt=fmt, rows=rows))
    return out
