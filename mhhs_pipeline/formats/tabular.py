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

from mhhs_pipeline.core.participants import row_runs
from mhhs_pipeline.core.schema import coded_strings
from mhhs_pipeline.formats.parquet_writer import MIN_ROWS, PreparedParquet, worthwhile
from mhhs_pipeline.formats.parquet_writer import ROW_GROUP_ROWS as PARQUET_ROW_GROUP_ROWS


def encode_parquet(table: pa.Table) -> bytes:
    """Parquet bytes of ``table`` with the canonical column types on read: by our page
    writer (:mod:`~mhhs_pipeline.formats.parquet_writer`) for large tables of the types
    it encodes, else by pyarrow (:func:`encode_parquet_pyarrow`)."""
    if worthwhile(table):
        return PreparedParquet(table).whole()
    return encode_parquet_pyarrow(table)


def encode_parquet_pyarrow(table: pa.Table) -> bytes:
    """Parquet bytes of ``table`` by pyarrow's writer (any column type).

    Encodings chosen per column type (measured on one 1,000-MPAN x 28-day unit of
    1.5 M rows: 1.8x faster than pyarrow's defaults on plain strings, 6 % smaller):
    dictionary-coded strings are written as they are (no per-value hashing); instants
    use DELTA_BINARY_PACKED (ascending within a series: ~0.02 B/row); small ints are
    plain; kWh keeps dictionary encoding (three-decimal values repeat: 1.5 vs 2.2 B/row).
    The Arrow schema is not stored, so readers see ``string`` where the table held
    ``dictionary<string>`` -- the files carry the contract's types whatever the writer held.
    """
    delta = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
    plain = [f.name for f in table.schema if pa.types.is_int16(f.type)]
    dictionary = [c for c in table.column_names if c not in delta and c not in plain]
    if table.num_rows < MIN_ROWS:
        # Small tables (registration slices, ground truth): a dictionary per column costs
        # more than it saves; columns that already are dictionaries pass through as they
        # are. Measured on a unit's 39 registration files: 37 -> 24 ms, 12 % smaller.
        dictionary = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=1,
        use_dictionary=dictionary or False,
        column_encoding=dict.fromkeys(delta, "DELTA_BINARY_PACKED") or None,
        row_group_size=PARQUET_ROW_GROUP_ROWS,
        # Statistics where readers prune: by time (a file holds a unit's day range). Not on
        # mpan_core: a unit's MPANs span every distributor, so its min/max exclude almost
        # nothing, and for dictionary input they cost ~14 % of the encode.
        write_statistics=[c for c in ("period_end_utc", "settlement_date", "effective_from") if c in table.column_names] or False,
        store_schema=False,
    )
    return sink.getvalue().to_pybytes()


def fixed3(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Doubles as strings with exactly three decimals, e.g. 0.5 -> '0.500', -1.25 -> '-1.250'.

    The whole part is Arrow's int->string cast; the '.ddd' tail is written straight into
    the UTF-8 buffer with numpy (no per-value Python, no padding kernels).
    """
    v = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
    milli = np.rint(v * 1000.0).astype(np.int64)
    n = len(milli)
    neg = milli < 0
    a = np.abs(milli)
    whole = pa.array(np.where(neg, -(a // 1000), a // 1000)).cast(pa.string())
    frac = a % 1000
    w_off = np.frombuffer(whole.buffers()[1], dtype=np.int32, count=n + 1)
    w_len = np.diff(w_off).astype(np.int64)
    w_data = np.frombuffer(whole.buffers()[2], dtype=np.uint8, count=int(w_off[-1]) - int(w_off[0]), offset=int(w_off[0]))
    # "-0.250": the whole part of a negative value under 1 is "0"; add the sign ourselves.
    neg_small = neg & (a < 1000)
    lens = w_len + 4 + neg_small
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    starts = offsets[:-1] + neg_small
    out[offsets[:-1][neg_small]] = ord("-")
    w_pos = np.repeat(starts - (w_off[:-1] - w_off[0]), w_len) + np.arange(len(w_data))
    out[w_pos] = w_data
    dot = starts + w_len
    out[dot] = ord(".")
    out[dot + 1] = 48 + frac // 100
    out[dot + 2] = 48 + (frac // 10) % 10
    out[dot + 3] = 48 + frac % 10
    if offsets[-1] < 2**31:
        return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(out)])
    return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out)])


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
    return RenderedCsv(table).whole()


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


class RenderedCsv:
    """A table rendered to CSV once; any subset of its rows is then cut from the text.

    Every participant's slice of a unit is a subset of the central rows in the same order,
    and mostly long runs of consecutive rows (one MPAN's days under one registration), so
    copying byte ranges beats formatting the same values four times.

    Lines are built by Arrow's ``binary_join_element_wise`` over the text columns (about
    4x faster than ``pyarrow.csv.write_csv`` with ``quoting_style="none"``, which checks
    every value); the result's offsets are the line boundaries, so nothing is scanned for
    newlines. Values are never quoted: a field holding a comma, quote or line break is
    refused (ids and codes are validated before they get here).
    """

    def __init__(self, table: pa.Table):
        self._join(table.column_names, _merge_coded(_fields(table)), table.num_rows)

    @classmethod
    def from_ready(cls, names: list[str], ready: pa.Table, *, checked: bool = False) -> RenderedCsv:
        """Render a table whose columns are already formatted as text (e.g. a wide pivot).
        ``checked``: the caller has refused structural characters in every input string."""
        obj = cls.__new__(cls)
        obj._join(names, _fields(ready, check=not checked), ready.num_rows)
        return obj

    def _join(self, names: list[str], cols: list[pa.Array], n: int) -> None:
        """Lines from field columns (plain text, or dictionary-coded text expanded here)."""
        self.header = (",".join(names) + "\n").encode()
        k = len(cols)
        if cols:
            cols[-1] = _with_line_end(cols[-1])
        cols = [pc.take(c.dictionary, c.indices) if pa.types.is_dictionary(c.type) else c for c in cols]
        if sum(c.nbytes for c in cols) + n * k >= 1 << 31:  # beyond 32-bit offsets
            cols = [c.cast(pa.large_string()) for c in cols]
        lines = pc.binary_join_element_wise(*cols, ",") if cols else pa.array([], pa.string())
        wide = pa.types.is_large_string(lines.type)
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64 if wide else np.int32, count=n + 1, offset=lines.offset * (8 if wide else 4)).astype(np.int64)
        first = int(offsets[0]) if n else 0
        self.body = lines.buffers()[2][first : int(offsets[-1])] if n else pa.py_buffer(b"")
        self.starts = offsets[:-1] - first
        self.ends = offsets[1:] - first

    def chunks(self) -> list:
        """The whole CSV as byte chunks (header, body) for :meth:`RunStore.write` -- no copy."""
        return [self.header, memoryview(self.body)]

    def whole(self) -> bytes:
        return self.header + self.body.to_pybytes()

    def subset_chunks(self, rows: np.ndarray) -> list:
        """The CSV of ``rows`` (ascending row indices) as byte chunks, header first."""
        return self.runs_chunks(*row_runs(rows))

    def runs_chunks(self, first: np.ndarray, last: np.ndarray) -> list:
        """The CSV of the rows ``first[i]`` .. ``last[i]`` (inclusive, ascending) as byte chunks."""
        if len(first) == 0:
            return [self.header]
        body = memoryview(self.body)
        return [self.header, *(body[s:e] for s, e in zip(self.starts[first].tolist(), self.ends[last].tolist(), strict=True))]

    def subset(self, rows: np.ndarray) -> bytes:
        """The CSV of ``rows`` (ascending row indices), header included."""
        return b"".join(self.subset_chunks(rows))


_STRUCTURAL = r'[,"\r\n]'
_MERGE_MAX_CODES = 1 << 22  # dense code space of a merged field (a bool and an int32 per code)


def _fields(table: pa.Table, *, check: bool = True) -> list[pa.Array]:
    """Each column as CSV field text: dictionary-coded (distinct values formatted once)
    where the column is a dictionary, an instant, a date or a small-range integer; plain
    text otherwise (kWh). Nulls are empty fields. Input strings are checked for CSV
    structural characters (``check``); what we format ourselves cannot hold them."""
    out = []
    for name in table.column_names:
        col = table.column(name)
        if isinstance(col, pa.ChunkedArray):  # combine_chunks unifies dictionaries itself
            col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        out.append(_field(name, col, check))
    return out


def _field(name: str, arr: pa.Array, check: bool) -> pa.Array:
    typ = arr.type
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        enc = pc.dictionary_encode(arr.cast(pa.timestamp("s")) if pa.types.is_timestamp(typ) else arr)
        values = enc.dictionary.cast(pa.timestamp("s"))  # whole seconds: %S prints no fraction
        text = pc.strftime(values, format="%Y-%m-%dT%H:%M:%SZ" if pa.types.is_timestamp(typ) else "%Y-%m-%d")
        return _with_nulls(enc.indices, text)
    if pa.types.is_floating(typ) and name.endswith("_kwh"):
        return kwh_text(arr)
    if pa.types.is_floating(typ):
        enc = pc.dictionary_encode(arr)  # readings repeat; format each distinct value once
        return _with_nulls(enc.indices, enc.dictionary.cast(pa.string()))
    if pa.types.is_integer(typ) and len(arr) > 0 and arr.null_count < len(arr):
        lo, hi = (v.as_py() for v in pc.min_max(arr).values())
        if hi - lo < 1 << 16:
            codes = pc.subtract(arr.cast(pa.int64()), lo).fill_null(hi - lo + 1).to_numpy()
            text = pa.array([str(v) for v in range(lo, hi + 1)] + [""], pa.string())
            return coded_strings(text, codes)
    if pa.types.is_dictionary(typ):
        text = arr.dictionary.cast(pa.string())
        if check:
            refuse_structural(text)
        return _with_nulls(arr.indices, text)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        if check:
            refuse_structural(arr)
        return pc.fill_null(arr, "") if arr.null_count else arr
    arr = arr.cast(pa.string())
    return pc.fill_null(arr, "") if arr.null_count else arr


def kwh_text(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """kWh with three decimals, coded by the value in Wh when the range is small (it is:
    half-hourly energies span a few thousand Wh), else formatted row by row."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        return pc.if_else(arr.is_null(), pa.scalar("", pa.string()), fixed3(arr.fill_null(0.0)))
    if len(arr) == 0:
        return fixed3(arr)
    milli = np.rint(np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64) * 1000.0).astype(np.int64)
    lo, hi = int(milli.min()), int(milli.max())
    if hi - lo >= _MERGE_MAX_CODES:
        return fixed3(arr)
    used = np.zeros(hi - lo + 1, dtype=bool)
    used[milli - lo] = True
    distinct = np.flatnonzero(used)
    remap = np.cumsum(used, dtype=np.int64) - 1
    return coded_strings(fixed3(pa.array((distinct + lo) / 1000.0)), remap[milli - lo])


def _with_nulls(indices: pa.Array, text: pa.Array) -> pa.DictionaryArray:
    """Dictionary field whose null indices point at an extra empty value."""
    codes = indices.cast(pa.int32())
    if codes.null_count:
        codes = pc.fill_null(codes, len(text))
        text = pa.concat_arrays([text, pa.array([""], text.type)])
    return pa.DictionaryArray.from_arrays(codes, text)


def _merge_coded(fields: list[pa.Array]) -> list[pa.Array]:
    """Adjacent dictionary-coded fields joined into one while their code space stays small:
    e.g. (MPAN, MQ) and (instant, date, period) -- a few thousand distinct texts each,
    so the per-row work is integer arithmetic and one gather instead of a join per field."""
    out: list[pa.Array] = []
    # Merging pays while combinations repeat: keep the code space well under the rows.
    limit = min(_MERGE_MAX_CODES, len(fields[0]) // 8) if fields else 0
    for f in fields:
        prev = out[-1] if out else None
        if prev is not None and pa.types.is_dictionary(prev.type) and pa.types.is_dictionary(f.type) and len(prev.dictionary) * len(f.dictionary) <= limit:
            out[-1] = _merge_pair(prev, f)
        else:
            out.append(f)
    return out


def _merge_pair(a: pa.DictionaryArray, b: pa.DictionaryArray) -> pa.DictionaryArray:
    nb = len(b.dictionary)
    code = a.indices.to_numpy().astype(np.int64) * nb + b.indices.to_numpy()
    used = np.zeros(len(a.dictionary) * nb, dtype=bool)
    used[code] = True
    keys = np.flatnonzero(used)
    remap = np.cumsum(used, dtype=np.int64) - 1
    text = pc.binary_join_element_wise(pc.take(a.dictionary, pa.array(keys // nb)), pc.take(b.dictionary, pa.array(keys % nb)), ",")
    return coded_strings(text, remap[code])


def _with_line_end(field: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(field.type):
        return pa.DictionaryArray.from_arrays(field.indices, pc.binary_join_element_wise(field.dictionary, "", "\n"))
    return pc.binary_join_element_wise(field, "", "\n")


def refuse_structural(values: pa.Array) -> None:
    """Raise if any value holds a comma, quote or line break (we never quote CSV fields)."""
    if len(values) and pc.any(pc.match_substring_regex(values, _STRUCTURAL)).as_py():
        raise ValueError("a CSV field holds a comma, quote or line break; ids and codes must be validated first")
