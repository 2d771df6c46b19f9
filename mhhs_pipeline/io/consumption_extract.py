"""Read an actual half-hourly consumption extract (CSV or Parquet, any fsspec URL) in chunks
and cleanse it against the clean registrations.

The reader is the registration reader's (``io.extract.Extract``: format sniffed from the
bytes, streaming CSV / Parquet batches, every field as text, 1-based ``record``, one-line
``ExtractError`` naming the file, line/column and the fix); only the header mapping
(``cleanse.consumption_columns``) and the messages that name the kind of extract differ.

``cleanse_consumption_to_dir`` streams the file: chunks are normalised (row rules and the
rules against the registrations) and spilled to local Arrow files by a hash of the MPAN,
so every record of an MPAN meets in one bucket; each bucket is resolved alone
(duplicates, overlaps). Peak memory follows the chunk and bucket sizes, not the file.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mhhs_pipeline.cleanse.consumption import (
    CONSUMPTION_QUARANTINE_SCHEMA,
    ConsumptionStats,
    RegistrationIndex,
    normalise_consumption,
    render_consumption_markdown,
    resolve_consumption,
)
from mhhs_pipeline.cleanse.consumption_columns import map_consumption_header
from mhhs_pipeline.cleanse.rules import RepairLog
from mhhs_pipeline.core.schema import CONSUMPTION_KEY, CONSUMPTION_SCHEMA
from mhhs_pipeline.io.extract import (
    PARQUET_OUT,
    Extract,
    ExtractError,
    file_sha256,
    open_extract,
    spill_by_mpan,
)

__all__ = [
    "CONSUMPTION_BUCKET_ROWS",
    "ConsumptionCleanseOutput",
    "ExtractError",
    "cleanse_consumption",
    "cleanse_consumption_to_dir",
    "open_consumption_extract",
]

CONSUMPTION_BUCKET_ROWS = 1_000_000  # normalised records per bucket in pass 2 (~250 MB)
_WHAT = "consumption extract"
_HEADER_HINT = "mpan_core, period_end_utc (or settlement_date, settlement_period), consumption_kwh, ..."


def open_consumption_extract(url: str) -> Extract:
    """Open and check a consumption extract; ExtractError (or FileNotFoundError) when it
    cannot be read as a whole. Record-level faults are left to the cleansing rules."""
    return open_extract(url, what=_WHAT, header_hint=_HEADER_HINT, map_columns=map_consumption_header)


@dataclass
class ConsumptionCleanseOutput:
    """Local results of a consumption cleansing pass (files in the folder given)."""

    clean_path: str  # Parquet, CONSUMPTION_SCHEMA, provenance actual; sorted within each bucket
    quarantine_path: str  # Parquet, CONSUMPTION_QUARANTINE_SCHEMA
    report_markdown: str  # a section to append to the cleansing report
    stats: ConsumptionStats
    source_sha256: str
    source_bytes: int
    source_format: str


def cleanse_consumption_to_dir(url: str, folder: str, registrations: pa.Table | RegistrationIndex) -> ConsumptionCleanseOutput:
    """Cleanse the consumption extract at ``url`` against the clean ``registrations`` into
    ``folder`` (local). Raises ExtractError for a file that cannot be read; a
    ReconciliationError would be a bug."""
    extract = open_consumption_extract(url)
    registry = registrations if isinstance(registrations, RegistrationIndex) else RegistrationIndex.build(registrations)
    log = RepairLog()
    spill_dir = os.path.join(folder, "consumption-spill")
    spill = spill_by_mpan(extract, spill_dir, CONSUMPTION_BUCKET_ROWS, lambda chunk: normalise_consumption(chunk, registry, log))

    stats = ConsumptionStats(source=extract.name, source_format=extract.format, ignored_columns=extract.unused_columns)
    stats.repairs = log
    clean_path = os.path.join(folder, "consumption_actual.parquet")
    q_path = os.path.join(folder, "consumption_quarantine.parquet")
    with (
        pq.ParquetWriter(clean_path, CONSUMPTION_SCHEMA, **PARQUET_OUT) as clean_out,
        pq.ParquetWriter(q_path, CONSUMPTION_QUARANTINE_SCHEMA, **PARQUET_OUT) as q_out,
    ):
        for table in spill.buckets():
            res = resolve_consumption(table)
            clean_out.write_table(res.clean)
            q_out.write_table(res.quarantine)
            stats.merge(res.stats)
    os.rmdir(spill_dir)
    stats.check_reconciliation()
    return ConsumptionCleanseOutput(
        clean_path, q_path, render_consumption_markdown(stats), stats, file_sha256(extract.fs, extract.path),
        extract.size, extract.format,
    )  # fmt: skip


def cleanse_consumption(url: str, registrations: pa.Table | RegistrationIndex) -> tuple[pa.Table, pa.Table, ConsumptionCleanseOutput]:
    """In-memory form for the ``run`` command: (clean actual rows ordered by
    mpan_core, measurement_quantity, period_end_utc; quarantine ordered by record; output).
    The output's file paths point into a folder that no longer exists."""
    with tempfile.TemporaryDirectory(prefix="mhhs-consumption-") as tmp:
        out = cleanse_consumption_to_dir(url, tmp, registrations)
        clean = pq.read_table(out.clean_path, memory_map=False)
        quarantine = pq.read_table(out.quarantine_path, memory_map=False)
    if clean.num_rows:
        clean = clean.sort_by([(c, "ascending") for c in CONSUMPTION_KEY])
    if quarantine.num_rows:
        quarantine = quarantine.take(pc.sort_indices(quarantine, [("record", "ascending")]))
    return clean.combine_chunks(), quarantine.combine_chunks(), out
