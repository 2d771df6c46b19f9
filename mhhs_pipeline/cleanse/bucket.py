"""Cleanse one bucket of normalised records: resolve, manufacture, quarantine, count.

A bucket may come with collapsed copies (``cleanse.copies``): each follows the record it
copies -- merged when that stands or is merged, quarantined with the same reasons (one
quarantine row per copy, in record order) when it is rejected -- and is counted so."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.cleanse.columns import INPUT_COLUMNS
from mhhs_pipeline.cleanse.copies import COPIES
from mhhs_pipeline.cleanse.groups import CLEAN, MERGED, QUARANTINED, resolve
from mhhs_pipeline.cleanse.manufacture import manufacture
from mhhs_pipeline.cleanse.quarantine import quarantine_rows
from mhhs_pipeline.cleanse.report import CleanseStats
from mhhs_pipeline.spec.scenario import Population

QUARANTINE_PART_ROWS = 100_000  # quarantine rows built at a time


@dataclass(frozen=True)
class BucketResult:
    registrations: pa.Table  # REGISTRATION_SCHEMA, sorted by (mpan_core, effective_from)
    quarantine_parts: list[pa.Table]  # QUARANTINE_SCHEMA, together sorted by record
    stats: CleanseStats

    @property
    def quarantine(self) -> pa.Table:
        return pa.concat_tables(self.quarantine_parts)


def cleanse_bucket(
    records: pa.Table, seed: int = 0, population: Population | None = None, *, copies: Callable[[], pa.Table | None] | None = None
) -> BucketResult:
    """All records of some MPANs (every record of each) -> clean rows, quarantine, counts.
    ``copies``: reads the collapsed copies of these records (``of``, ``record``), called
    only when a rejected record has copies (each needs its own quarantine row)."""
    res = resolve(records)
    clean_idx = np.flatnonzero(res.status == CLEAN)
    clean = records.select(list(INPUT_COLUMNS)).take(pa.array(clean_idx, pa.int64()))
    registrations, fills = manufacture(clean, seed, population)
    if registrations.num_rows:
        registrations = registrations.take(
            pc.sort_indices(registrations, [("mpan_core", "ascending"), ("effective_from", "ascending")])
        )
    record = records.column("record").to_numpy(zero_copy_only=False)
    q_idx = np.flatnonzero(res.status == QUARANTINED)
    # Quarantine rows: the rejected records, then each copy of one as its own row.
    q_row, q_record = q_idx, record[q_idx]
    n_copies = records.column(COPIES).to_numpy(zero_copy_only=False) if COPIES in records.column_names else np.zeros(records.num_rows, np.int64)
    copy_table = copies() if copies is not None and len(q_idx) and n_copies[q_idx].any() else None
    if copy_table is not None and copy_table.num_rows:
        by_record = np.argsort(record, kind="stable")
        of_row = by_record[np.searchsorted(record[by_record], copy_table.column("of").to_numpy())]
        rejected = res.status[of_row] == QUARANTINED
        q_row = np.concatenate([q_row, of_row[rejected]])
        q_record = np.concatenate([q_record, copy_table.column("record").to_numpy()[rejected]])
    order = np.argsort(q_record, kind="stable")
    q_row, q_record = q_row[order], q_record[order]
    parts = []
    for start in range(0, max(len(q_row), 1), QUARANTINE_PART_ROWS):
        rows = q_row[start : start + QUARANTINE_PART_ROWS]
        part = quarantine_rows(records.take(pa.array(rows, pa.int64())), res.reasons[rows])
        parts.append(part.set_column(0, part.schema.field(0), pa.array(q_record[start : start + QUARANTINE_PART_ROWS], pa.int64())))
    stats = CleanseStats()
    manufactured = int(np.count_nonzero(registrations.column("provenance").to_numpy(zero_copy_only=False) == "manufactured"))
    routes = records.select(["route_supplier_id", "route_data_service_id", "route_ldso_id"])
    stats.add_bucket(routes, res.status, res.reasons, fills, manufactured)
    if n_copies.any():
        # Copies count as records of their own: merged, or quarantined for the same reasons.
        has = np.flatnonzero(n_copies)
        copy_status = np.where(res.status[has] == QUARANTINED, QUARANTINED, MERGED).astype(np.int8)
        stats.add_bucket(routes.take(pa.array(has)), copy_status, res.reasons[has], {}, 0, weights=n_copies[has])
    return BucketResult(registrations, parts, stats)
