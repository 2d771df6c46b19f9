"""One work unit end to end: synthesise -> generate -> split -> encode -> write.

No Dask and no Prefect here: ``run_unit`` is a plain function that Dask workers (or a
test, or a debugger) call with a picklable :class:`UnitJob`. It returns the manifest
records of the files it wrote and the row counts per participant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pyarrow as pa

from mhhs_pipeline.core.load import generate_consumption
from mhhs_pipeline.core.participants import consumption_slices, registration_slices
from mhhs_pipeline.core.registrations import synthesise_registrations
from mhhs_pipeline.deliver import UnitContext, deliver_consumption, write_tabular
from mhhs_pipeline.io.store import FileRecord, RunStore
from mhhs_pipeline.plan import WorkUnit
from mhhs_pipeline.spec.scenario import Scenario


@dataclass(frozen=True)
class UnitJob:
    scenario: Scenario
    out_url: str
    run_id: str
    unit: WorkUnit
    registrations: pa.Table | None = None  # a block of a cleansed extract; None = synthesise


@dataclass
class UnitResult:
    unit_id: str
    records: list[FileRecord] = field(default_factory=list)
    half_hours: int = 0  # canonical consumption rows generated (each delivered to 4 participants)
    mpans: int = 0
    generate_seconds: float = 0.0


def run_unit(job: UnitJob) -> UnitResult:
    scenario, unit = job.scenario, job.unit
    result = UnitResult(unit.unit_id)

    t0 = time.perf_counter()
    reg = job.registrations if job.registrations is not None else synthesise_registrations(scenario, unit.site_start, unit.site_stop)
    gen = generate_consumption(scenario, reg, unit.first_day, unit.last_day)
    result.generate_seconds = time.perf_counter() - t0
    result.half_hours = gen.table.num_rows
    result.mpans = len(set(reg.column("mpan_core").to_pylist()))

    ctx = UnitContext(scenario, RunStore(job.out_url, job.run_id), reg, unit.first_day, unit.last_day)
    for sl in consumption_slices(reg, gen.registration_row):
        whole = sl.role == "central"
        part = gen.table if whole else gen.table.take(sl.rows)
        reg_rows = gen.registration_row if whole else gen.registration_row[sl.rows]
        result.records += deliver_consumption(ctx, sl.role, sl.participant_id, unit.unit_id, part, reg_rows)

    if unit.day_chunk == 0:
        block_id = f"s{unit.site_start:09d}"
        for sl in registration_slices(reg):
            part = reg if sl.role == "central" else reg.take(sl.rows)
            result.records += write_tabular(ctx, sl.role, sl.participant_id, "registrations", block_id, part)
    return result
