"""Cleanse one bucket of normalised records: resolve, manufacture, quarantine, count."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.cleanse.columns import INPUT_COLUMNS
from mhhs_pipeline.cleanse.groups import CLEAN, QUARANTINED, resolve
from mhhs_pipeline.cleanse.manufacture import manufacture
from mhhs_pipeline.cleanse.quarantine import quarantine_rows
from mhhs_pipeline.cleanse.report import CleanseStats
from mhhs_pipeline.spec.scenario import Population


@dataclass(frozen=True)
class BucketResult:
    registrations: pa.Table  # REGISTRATION_SCHEMA, sorted by (mpan_core, effective_from)
    quarantine: pa.Table  # QUARANTINE_SCHEMA, sorted by record
    stats: CleanseStats


def cleanse_bucket(records: pa.Table, seed: int = 0, population: Population | None = None) -> BucketResult:
    """All records of some MPANs (every record of each) -> clean rows, quarantine, counts."""
    res = resolve(records)
    clean_idx = np.flatnonzero(res.status == CLEAN)
    clean = records.select(list(INPUT_COLUMNS)).take(pa.array(clean_idx, pa.int64()))
    registrations, fills = manufacture(clean, seed, population)
    if registrations.num_rows:
        registrations = registrations.take(
            pc.sort_indices(registrations, [("mpan_core", "ascending"), ("effective_from", "ascending")])
        )
    q_idx = np.flatnonzero(res.status == QUARANTINED)
    q_idx = q_idx[np.argsort(records.column("record").to_numpy(zero_copy_only=False)[q_idx], kind="stable")]
    quarantine = quarantine_rows(records.take(pa.array(q_idx, pa.int64())), res.reasons[q_idx])
    stats = CleanseStats()
    manufactured = int(np.count_nonzero(registrations.column("provenance").to_numpy(zero_copy_only=False) == "manufactured"))
    routes = records.select(["route_supplier_id", "route_data_service_id", "route_ldso_id"])
    stats.add_bucket(routes, res.status, res.reasons, fills, manufactured)
    return BucketResult(registrations, quarantine, stats)
