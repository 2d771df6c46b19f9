"""Parquet and CSV encoders for canonical tables.

Parquet: zstd, dictionary-encoded strings, statistics on; row groups sized by rows so
readers can skip by MPAN. CSV: header, ISO 8601 dates and UTC instants (``...Z``),
consumption with exactly 3 decimals, written by pyarrow's C++ writer. Timestamps and
floats are pre-formatted as strings because pyarrow's CSV writer is ~20x slower on
timezone-aware timestamps and would print floats with full precision.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

PARQUET_ROW_GROUP_ROWS = 1 << 20


def encode_parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=1,
        use_dictionary=True,
        row_group_size=PARQUET_ROW_GROUP_ROWS,
        write_statistics=True,
    )
    return sink.getvalue().to_pybytes()


def fixed3(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Doubles as strings with exactly three decimals (values are non-negative or not)."""
    v = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
    milli = np.rint(v * 1000.0).astype(np.int64)
    neg = milli < 0
    a = np.abs(milli)
    whole = pa.array(a // 1000).cast(pa.string())
    frac = pc.utf8_lpad(pa.array(a % 1000).cast(pa.string()), 3, "0")
    text = pc.binary_join_element_wise(whole, frac, ".")
    if neg.any():
        text = pc.if_else(pa.array(neg), pc.binary_join_element_wise(pa.scalar("-"), text, ""), text)
    return text


def _iso_utc(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """UTC instants as 'YYYY-MM-DDTHH:MM:SSZ', formatted once per distinct value."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    enc = pc.dictionary_encode(arr.cast(pa.timestamp("s")))  # whole seconds: %S prints no fraction
    text = pc.strftime(enc.dictionary, format="%Y-%m-%dT%H:%M:%SZ")
    return pc.take(text, enc.indices)


def csv_ready(table: pa.Table) -> pa.Table:
    """The table with timestamps, dates and kWh formatted as the CSV contract says."""
    cols = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = _iso_utc(col)
        elif name.endswith("_kwh"):
            col = fixed3(col)
        elif pa.types.is_date(col.type):
            arr = col.combine_chunks()
            enc = pc.dictionary_encode(arr)
            col = pc.take(pc.strftime(enc.dictionary.cast(pa.timestamp("s")), format="%Y-%m-%d"), enc.indices)
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def encode_csv(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    # pyarrow always quotes header names; the contract's header is plain, so write it here.
    sink.write((",".join(table.column_names) + "\n").encode())
    pacsv.write_csv(
        csv_ready(table),
        sink,
        write_options=pacsv.WriteOptions(include_header=False, batch_size=1 << 20, quoting_style="none"),
    )
    return sink.getvalue().to_pybytes()


def decode_csv(data: bytes, schema: pa.Schema) -> pa.Table:
    """Parse a canonical CSV back into ``schema`` types (for validation and round trips)."""
    types = {f.name: f.type for f in schema}
    table = pacsv.read_csv(
        pa.BufferReader(data),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            strings_can_be_null=False,
            null_values=[""],
            timestamp_parsers=[pacsv.ISO8601],
        ),
    )
    # Empty strings in nullable string columns are nulls in the canonical table.
    cols = []
    for f in schema:
        col = table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        if pa.types.is_string(f.type) and f.nullable:
            col = pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
        cols.append(col.cast(f.type))
    return pa.table(cols, schema=schema)
