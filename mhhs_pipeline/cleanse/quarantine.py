"""The quarantine table: one row per rejected input record, its original text and why.

``record`` is the 1-based number of the data record in the file (CSV: rows after the
header, blank lines not counted; Parquet: row index + 1).

Original fields stay exactly as read (untrimmed text; null where the file has no such
column; columns that are not ours as a JSON object in ``other_fields``) so the sender can find and fix the record. The ``route_*`` columns hold the
normalised MPIDs the record would have gone to, where they are valid, so a delivery can
give each participant the quarantine rows of its own records; they are never used to
build paths unless they are valid MPIDs.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from mhhs_pipeline.cleanse.columns import INPUT_COLUMNS
from mhhs_pipeline.cleanse.reasons import describe_many
from mhhs_pipeline.cleanse.rules import OTHER_PREFIX


def quarantine_schema(columns: tuple[str, ...]) -> pa.Schema:
    """The quarantine schema for an extract whose input columns are ``columns``."""
    return pa.schema(
        [
            pa.field("record", pa.int64(), nullable=False),
            *[pa.field(c, pa.string()) for c in columns],
            pa.field("other_fields", pa.string()),
            pa.field("reason_code", pa.string(), nullable=False),
            pa.field("reason", pa.string(), nullable=False),
            pa.field("route_supplier_id", pa.string()),
            pa.field("route_data_service_id", pa.string()),
            pa.field("route_ldso_id", pa.string()),
        ]
    )


QUARANTINE_SCHEMA = quarantine_schema(INPUT_COLUMNS)


def quarantine_rows(records: pa.Table, reasons: np.ndarray) -> pa.Table:
    """Quarantine rows for normalised records (``rules.normalise`` output) and their masks."""
    codes, texts = describe_many(reasons)
    return quarantine_table(records, INPUT_COLUMNS, codes, texts, QUARANTINE_SCHEMA)


def quarantine_table(records: pa.Table, columns: tuple[str, ...], codes, texts, schema: pa.Schema) -> pa.Table:
    """Quarantine rows in ``schema``: ``record``, the original text of ``columns`` (the
    ``raw_<column>`` fields of normalised records), ``other_fields``, the reason code and
    text, and the ``route_*`` columns."""
    cols = {
        "record": records.column("record"),
        **{c: records.column(f"raw_{c}") for c in columns},
        "other_fields": _other_fields(records),
        "reason_code": pa.array(codes, pa.string()),
        "reason": pa.array(texts, pa.string()),
        "route_supplier_id": records.column("route_supplier_id"),
        "route_data_service_id": records.column("route_data_service_id"),
        "route_ldso_id": records.column("route_ldso_id"),
    }
    return pa.table(cols).cast(schema)


def _other_fields(records: pa.Table) -> pa.Array:
    """Columns we do not use, as one JSON object per row (built for rejected rows only)."""
    names = [c for c in records.column_names if c.startswith(OTHER_PREFIX)]
    if not names:
        return pa.nulls(records.num_rows, pa.string())
    values = [records.column(c).to_pylist() for c in names]
    keys = [c[len(OTHER_PREFIX):] for c in names]
    return pa.array([json.dumps(dict(zip(keys, row, strict=True)), ensure_ascii=False) for row in zip(*values, strict=True)], pa.string())
