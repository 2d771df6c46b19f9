"""Canonical Arrow schemas: the contract for consumption and registration datasets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CONSUMPTION_SCHEMA = pa.schema(
    [
        pa.field("mpan_core", pa.string(), nullable=False),
        pa.field("measurement_quantity", pa.string(), nullable=False),
        pa.field("period_end_utc", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("settlement_date", pa.date32(), nullable=False),
        pa.field("settlement_period", pa.int16(), nullable=False),
        pa.field("consumption_kwh", pa.float64(), nullable=False),
        pa.field("quality", pa.string(), nullable=False),
        pa.field("estimation_reason", pa.int16(), nullable=True),
        pa.field("provenance", pa.string(), nullable=False),
    ]
)

REGISTRATION_SCHEMA = pa.schema(
    [
        pa.field("mpan_core", pa.string(), nullable=False),
        pa.field("effective_from", pa.date32(), nullable=False),
        pa.field("effective_to", pa.date32(), nullable=True),
        pa.field("supplier_id", pa.string(), nullable=False),
        pa.field("data_service_id", pa.string(), nullable=False),
        pa.field("metering_service_id", pa.string(), nullable=False),
        pa.field("distributor_id", pa.string(), nullable=False),
        pa.field("gsp_group", pa.string(), nullable=False),
        pa.field("market_segment", pa.string(), nullable=False),
        pa.field("connection_type", pa.string(), nullable=False),
        pa.field("energisation_status", pa.string(), nullable=False),
        pa.field("energy_direction", pa.string(), nullable=False),
        pa.field("domestic_premise", pa.bool_(), nullable=False),
        pa.field("annual_consumption_kwh", pa.float64(), nullable=False),
        pa.field("dcc_service_flag", pa.string(), nullable=False),
        pa.field("archetype", pa.string(), nullable=False),
        pa.field("provenance", pa.string(), nullable=False),
        pa.field("linked_import_mpan", pa.string(), nullable=True),
    ]
)

CONSUMPTION_KEY = ("mpan_core", "measurement_quantity", "period_end_utc")

CODE = pa.dictionary(pa.int32(), pa.string())
UTC_US = pa.timestamp("us", tz="UTC")


def dictionary_strings(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every string column as ``dictionary<int32, string>``.

    The generator builds tables of this "work" schema: a unit has a few thousand distinct
    MPAN cores and a handful of codes over millions of rows, so participant slices
    (``take``) move 4-byte indices instead of strings, and Parquet writes the dictionary
    as it is instead of hashing every value. Files still carry the canonical types: Parquet
    is written without the Arrow schema (readers see ``string``) and CSV prints the values.
    """
    return pa.schema([pa.field(f.name, CODE, f.nullable) if f.type == pa.string() else f for f in schema])


def coded_strings(values: Sequence[str] | pa.Array, codes: np.ndarray, mask: np.ndarray | None = None) -> pa.DictionaryArray:
    """A ``dictionary<int32, string>`` column: ``values[codes]``, null where ``mask``."""
    text = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
    codes = np.asarray(codes, dtype=np.int32)
    # Bounds checked by numpy's min and max (Arrow's own check costs ~6x more per row).
    if len(codes) and (int(codes.min()) < 0 or int(codes.max()) >= len(text)):
        raise ValueError(f"dictionary codes outside 0..{len(text) - 1}")
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=mask), text, safe=False)


def fixed_width(values: np.ndarray, typ: pa.DataType, valid: np.ndarray | None = None) -> pa.Array:
    """A fixed-width Arrow array over ``values`` without copying them, null where not
    ``valid``: int64 microseconds for instants, int32 days for dates, int16, float64.
    (``pa.array`` copies datetime64 input, scans it for NaT and converts masks slowly:
    ~5 ms per column of a unit's 1.5 M rows.)"""
    values = np.ascontiguousarray(values)
    if values.dtype.itemsize * 8 != typ.bit_width:
        raise TypeError(f"{values.dtype} values for an Arrow {typ} column")
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    nulls = 0 if valid is None else len(values) - int(np.count_nonzero(valid))
    return pa.Array.from_buffers(typ, len(values), [bitmap, pa.py_buffer(values)], null_count=nulls)


def dictionary_parts(column: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(distinct values, each row's index into them) of a string column without null
    indices: one array (``combine_chunks`` unifies the chunks' dictionaries), plain text
    dictionary-encoded. Work on strings is then done once per distinct value."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    return arr.dictionary, np.asarray(arr.indices)


def plain_strings(table: pa.Table) -> pa.Table:
    """``table`` with dictionary columns decoded to their value type (the canonical types)."""
    if not any(pa.types.is_dictionary(f.type) for f in table.schema):
        return table
    fields = [pa.field(f.name, f.type.value_type, f.nullable) if pa.types.is_dictionary(f.type) else f for f in table.schema]
    return table.cast(pa.schema(fields))


def same_columns(actual: pa.Schema, expected: pa.Schema) -> list[str]:
    """Differences between two schemas by column name and type (dictionary<string> == string)."""
    problems = []
    got = {f.name: f.type for f in actual}
    for field in expected:
        if field.name not in got:
            problems.append(f"missing column {field.name}")
            continue
        typ = got[field.name]
        if pa.types.is_dictionary(typ):
            typ = typ.value_type
        if typ != field.type:
            problems.append(f"column {field.name} has type {typ}, expected {field.type}")
    extra = sorted(set(got) - {f.name for f in expected})
    if extra:
        problems.append(f"unexpected columns {extra}")
    return problems
