"""Parquet files of a unit's table and of any subset of its rows, prepared once per unit.

Every participant copy of a unit is a subset of the unit's rows (in order), and the same
values recur in every copy. pyarrow's writer re-encodes each copy from scratch (hashing
dictionaries, finding runs, computing deltas): ~60 ns per row written, the largest cost
of a Parquet-only run. :class:`PreparedParquet` does the per-unit work once and cuts each
copy from it:

| column kind | encoding | per copy |
|---|---|---|
| few runs (MPAN, MQ, quality, date, ...) | RLE_DICTIONARY, RLE runs | clip the unit's runs to the copy's row runs (no per-row work) |
| many runs, dictionary-friendly (kWh, strings) | RLE_DICTIONARY, bit-packed | gather codes, shrink the dictionary to the copy's values, pack |
| many runs, integers (instants, periods) | DELTA_BINARY_PACKED | gather values, encode deltas (a half-hourly series: ~0.02 B/row) |

Files are standard Parquet (format 2, data page v1, zstd, REQUIRED/OPTIONAL flat
columns, logical and legacy type annotations, min/max statistics on time columns, one
page per column chunk, row groups of at most 2**20 rows). The Arrow schema is not
stored: readers get the canonical types (``string`` where the table held dictionaries).
Tables with other types are written by pyarrow (:func:`supports`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.core.participants import row_runs
from mhhs_pipeline.formats import parquet_thrift as th
from mhhs_pipeline.formats.parquet_encodings import (
    bit_packed,
    delta_binary_packed,
    delta_binary_packed_sparse,
    levels_from_runs,
    plain,
    rle_runs,
    width_for,
)

ROW_GROUP_ROWS = 1 << 20
STATISTICS_COLUMNS = (
    "period_end_utc",
    "settlement_date",
    "effective_from",
)  # where readers prune by time
RUNS_MAX_SHARE = 1 / 16  # a column with fewer runs than this share of rows is encoded as runs
PIECES_MAX_SHARE = (
    1 / 64
)  # ...with fewer arithmetic pieces: sparse deltas (most 128-delta blocks plain)
CODES_MAX_DISTINCT = 1 << 12  # integers over a range this small: dictionary codes (periods 1..50)
KEEP_WHOLE_DICTIONARY = 64  # a dictionary this small goes whole into every copy (page made once)
ZSTD_LEVEL = 1
CREATED_BY = "mhhs-pipeline parquet writer"

_STRING_LOGICAL = [(1, th.T_STRUCT, [])]
_DATE_LOGICAL = [(6, th.T_STRUCT, [])]


def _type_info(typ: pa.DataType) -> tuple[str, int, int | None, list | None] | None:
    """(physical, parquet type, converted type, logical type) of a supported Arrow type."""
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "byte_array", th.BYTE_ARRAY, th.UTF8, _STRING_LOGICAL
    if pa.types.is_timestamp(typ) and typ.unit == "us":
        utc = typ.tz is not None
        logical = [
            (8, th.T_STRUCT, [(1, th.T_BOOL, utc), (2, th.T_STRUCT, [(2, th.T_STRUCT, [])])])
        ]
        return "int64", th.INT64, th.TIMESTAMP_MICROS if utc else None, logical
    if pa.types.is_date32(typ):
        return "int32", th.INT32, th.DATE, _DATE_LOGICAL
    if pa.types.is_int16(typ):
        return (
            "int32",
            th.INT32,
            th.INT_16,
            [(10, th.T_STRUCT, [(1, th.T_BYTE, 16), (2, th.T_BOOL, True)])],
        )
    if pa.types.is_int32(typ):
        return "int32", th.INT32, None, None
    if pa.types.is_int64(typ):
        return "int64", th.INT64, None, None
    if pa.types.is_float64(typ):
        return "double", th.DOUBLE, None, None
    return None


def supports(schema: pa.Schema) -> bool:
    """Whether every column has a type this writer encodes (else use pyarrow's)."""
    return all(_type_info(f.type) is not None for f in schema)


def _numbers(arr: pa.Array) -> np.ndarray:
    """Values of a fixed-width column straight from its buffer (int64, or float64 for
    doubles); null slots read as 0."""
    dtype = (
        np.dtype(arr.type.to_pandas_dtype())
        if not pa.types.is_timestamp(arr.type)
        else np.dtype("<i8")
    )
    if pa.types.is_date32(arr.type):
        dtype = np.dtype("<i4")
    values = (
        np.frombuffer(
            arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize
        )
        if len(arr)
        else np.zeros(0, dtype)
    )
    if arr.null_count:
        values = np.where(np.asarray(arr.is_valid()), values, 0)
    return values.astype(np.float64 if dtype.kind == "f" else np.int64, copy=False)


def _dense_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, code of each value): by a presence table when the values
    are integers (or exact thousandths, e.g. kWh) over a small range, else by sorting."""
    if len(values) == 0:
        return values, np.zeros(0, dtype=np.int64)
    if values.dtype == np.float64:
        milli = np.rint(values * 1000.0)
        ints = milli.astype(np.int64)
        exact = np.isfinite(values).all() and np.array_equal(
            (ints / 1000.0).view(np.int64), values.view(np.int64)
        )
        if exact:
            uniq, codes = _dense_codes(ints)
            return uniq / 1000.0, codes
        uniq, codes = _hashed_codes(values.view(np.int64))  # bit patterns: -0.0 and NaNs kept
        return uniq.view(np.float64), codes
    lo, hi = int(values.min()), int(values.max())
    if hi - lo < max(1 << 16, 4 * len(values)):
        present = np.zeros(hi - lo + 1, dtype=bool)
        present[values - lo] = True
        code_of = np.cumsum(present) - 1
        return np.flatnonzero(present) + lo, code_of[values - lo]
    return _hashed_codes(values)


def _hashed_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Like ``np.unique(return_inverse=True)`` by Arrow's hash kernel: sorting a few
    thousand distinct values instead of millions of rows."""
    encoded = pc.dictionary_encode(pa.array(values))
    distinct = np.asarray(encoded.dictionary)
    order = np.argsort(distinct, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return distinct[order], rank[np.asarray(encoded.indices)]


@dataclass
class _Column:
    name: str
    physical: str
    ptype: int
    converted: int | None
    logical: list | None
    nullable: bool
    mode: str  # "runs" | "codes" | "pieces" | "delta"
    statistics: bool
    valid: np.ndarray | None = None  # per row (codes / delta modes), None = no nulls
    codes: np.ndarray | None = None  # per row dictionary code (codes mode)
    values: np.ndarray | None = None  # per row value (delta and pieces modes)
    piece_start: np.ndarray | None = None  # pieces mode: rows where the delta is not ``step``
    step: int = 0
    run_start: np.ndarray | None = None  # runs mode: first row of each run
    run_code: np.ndarray | None = None  # runs mode: dictionary code of each run, -1 = null
    dictionary: pa.Array | np.ndarray | None = None  # numbers: ascending
    whole_dictionary_page: tuple | None = None  # made once, reused by every copy


def _prepare(field: pa.Field, arr: pa.Array, statistics: bool) -> _Column:
    physical, ptype, converted, logical = _type_info(field.type)
    n = len(arr)
    valid = np.asarray(arr.is_valid()) if arr.null_count else None
    if physical == "byte_array":
        if not pa.types.is_dictionary(arr.type):
            arr = pc.dictionary_encode(arr)
        dictionary = arr.dictionary
        per_row = np.asarray(arr.indices.fill_null(0) if arr.null_count else arr.indices).astype(
            np.int64
        )
        numbers = None
    else:
        numbers = _numbers(arr)
        per_row = numbers
    key = (
        per_row
        if valid is None
        else np.where(valid, per_row, -1 if physical == "byte_array" else 0)
    )
    change = key[1:] != key[:-1]
    if valid is not None:
        change |= valid[1:] != valid[:-1]
    run_start = np.r_[0, np.flatnonzero(change) + 1] if n else np.zeros(0, dtype=np.int64)
    col = _Column(
        field.name,
        physical,
        ptype,
        converted,
        logical,
        field.nullable,
        "runs",
        statistics,
        valid=valid,
    )
    if len(run_start) <= max(16, n * RUNS_MAX_SHARE):
        run_valid = valid[run_start] if valid is not None else np.ones(len(run_start), dtype=bool)
        run_code = np.full(len(run_start), -1, dtype=np.int64)
        if physical == "byte_array":
            col.dictionary = dictionary
            run_code[run_valid] = per_row[run_start][run_valid]
        else:
            col.dictionary, run_code[run_valid] = _dense_codes(numbers[run_start][run_valid])
        col.run_start, col.run_code = run_start.astype(np.int64), run_code
    elif physical == "byte_array":
        col.mode, col.dictionary, col.codes = "codes", dictionary, per_row.astype(np.int32)
    elif physical == "double":
        col.mode = "codes"
        col.dictionary, codes = _dense_codes(numbers)
        col.codes = codes.astype(np.int32)
    else:
        _integer_mode(col, numbers)
    return col


def _integer_mode(col: _Column, numbers: np.ndarray) -> None:
    """Integers with many runs: arithmetic pieces (instants of a half-hourly series) as
    sparse deltas; else few distinct values (periods) as dictionary codes; else deltas."""
    n = len(numbers)
    if col.valid is None and n > 1:
        head = np.diff(numbers[: 1 << 16])
        sample, counts = np.unique(head, return_counts=True)
        step = int(sample[np.argmax(counts)])
        if (
            np.count_nonzero(head != step) <= len(head) * PIECES_MAX_SHARE
        ):  # judged on a sample first
            piece_start = np.r_[0, np.flatnonzero(np.diff(numbers) != step) + 1]
        if (
            np.count_nonzero(head != step) <= len(head) * PIECES_MAX_SHARE
            and len(piece_start) <= n * PIECES_MAX_SHARE
        ):
            col.mode, col.values, col.piece_start, col.step = "pieces", numbers, piece_start, step
            return
    lo, hi = (int(numbers.min()), int(numbers.max())) if n else (0, 0)
    if hi - lo < CODES_MAX_DISTINCT:
        col.mode = "codes"
        col.dictionary, codes = _dense_codes(numbers)
        col.codes = codes.astype(np.int32)
        return
    col.mode, col.values = "delta", numbers


def _clip(
    start: np.ndarray, n_total: int, first: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments of the unit (beginning at rows ``start``) cut to the rows ``first[i]..last[i]``
    (inclusive, ascending): (segment index, first row, length) of each piece, in row
    order. O(segments), no per-row work."""
    lo = np.searchsorted(start, first, side="right") - 1
    hi = np.searchsorted(start, last, side="right")
    count = hi - lo
    base = np.repeat(np.cumsum(count) - count, count)
    idx = np.arange(int(count.sum())) - base + np.repeat(lo, count)
    begin = np.maximum(start[idx], np.repeat(first, count))
    end = np.minimum(np.r_[start[1:], n_total][idx] - 1, np.repeat(last, count))
    return idx, begin, end - begin + 1


def _clip_runs(
    start: np.ndarray, code: np.ndarray, n_total: int, first: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The runs of the rows as (lengths, codes), adjacent equal runs merged."""
    idx, _, lengths = _clip(start, n_total, first, last)
    return _merge(lengths, code[idx])


def _merge(lengths: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(codes) <= 1:
        return lengths, codes
    heads = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1]
    return np.add.reduceat(lengths, heads), codes[heads]


def _runs_of(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs (lengths, values) of a per-row array."""
    if len(flags) == 0:
        return np.zeros(0, dtype=np.int64), flags
    heads = np.r_[0, np.flatnonzero(flags[1:] != flags[:-1]) + 1]
    return np.diff(np.r_[heads, len(flags)]), flags[heads]


class _Selection:
    """Rows of one row group: the range ``lo..hi`` of the unit, or explicit ascending rows."""

    def __init__(self, lo: int, hi: int, rows: np.ndarray | None):
        self.lo, self.hi, self.rows = lo, hi, rows
        self.n = hi - lo if rows is None else len(rows)

    def take(self, per_row: np.ndarray) -> np.ndarray:
        return per_row[self.lo : self.hi] if self.rows is None else per_row[self.rows]

    @cached_property
    def intervals(self) -> tuple[np.ndarray, np.ndarray]:
        """First and last unit row of each run of consecutive rows."""
        if self.rows is None:
            return np.array([self.lo], dtype=np.int64), np.array([self.hi - 1], dtype=np.int64)
        return row_runs(self.rows)


@dataclass
class _Chunk:
    pages: list[bytes]
    meta: list  # ColumnMetaData fields, offsets added when placed
    has_dictionary: bool
    first_page_len: int  # bytes of the dictionary page (or 0): data page offset = start + this
    raw_size: int  # total_uncompressed_size


class PreparedParquet:
    """A unit's table, prepared once; :meth:`chunks` / :meth:`subset_chunks` give the
    bytes of a Parquet file of all rows / of ascending ``rows``, as chunks in order."""

    def __init__(
        self, table: pa.Table, *, zstd_level: int = ZSTD_LEVEL, row_group_rows: int = ROW_GROUP_ROWS
    ):
        if not supports(table.schema):
            raise ValueError(
                "table has a column type the page writer does not encode; use encode_parquet"
            )
        self.n = table.num_rows
        self.codec = pa.Codec("zstd", compression_level=zstd_level)
        self.row_group_rows = row_group_rows
        self.columns = [
            _prepare(
                f,
                table.column(f.name).combine_chunks() if table.num_rows else pa.array([], f.type),
                f.name in STATISTICS_COLUMNS,
            )
            for f in table.schema
        ]
        # The footer's schema and column orders are the same in every file of the unit.
        schema = [[(4, th.T_BINARY, "schema"), (5, th.T_I32, len(self.columns))]]
        for col in self.columns:
            element = [
                (1, th.T_I32, col.ptype),
                (3, th.T_I32, th.OPTIONAL if col.nullable else th.REQUIRED),
                (4, th.T_BINARY, col.name),
            ]
            if col.converted is not None:
                element.append((6, th.T_I32, col.converted))
            if col.logical is not None:
                element.append((10, th.T_STRUCT, col.logical))
            schema.append(element)
        self._schema = th.encode_value(th.T_LIST, (th.T_STRUCT, schema))
        self._column_orders = th.encode_value(
            th.T_LIST, (th.T_STRUCT, [[(1, th.T_STRUCT, [])] for _ in self.columns])
        )  # TYPE_ORDER

    def chunks(self) -> list[bytes]:
        step = self.row_group_rows
        return self._file(
            [_Selection(lo, min(lo + step, self.n), None) for lo in range(0, self.n, step)]
        )

    def whole(self) -> bytes:
        return b"".join(self.chunks())

    def subset_chunks(self, rows: np.ndarray) -> list[bytes]:
        rows = np.asarray(rows, dtype=np.int64)
        step = self.row_group_rows
        return self._file(
            [_Selection(0, 0, rows[lo : lo + step]) for lo in range(0, len(rows), step)]
        )

    # -- one column chunk --------------------------------------------------------------

    def _page(self, body: bytes, header) -> tuple[bytes, bytes, int]:
        compressed = self.codec.compress(body, asbytes=True)
        return header(uncompressed=len(body), compressed=len(compressed)), compressed, len(body)

    def _dictionary_page(
        self, col: _Column, used: np.ndarray | None
    ) -> tuple[bytes, bytes, int, int]:
        """(header, compressed body, raw body size, entries) of the dictionary page of the
        ``used`` entries, or of the whole dictionary (``None``; made once per unit)."""
        if used is None and col.whole_dictionary_page is not None:
            return col.whole_dictionary_page
        values = (
            col.dictionary
            if used is None
            else (
                col.dictionary.take(pa.array(used))
                if isinstance(col.dictionary, pa.Array)
                else col.dictionary[used]
            )
        )
        head, body, raw = self._page(
            plain(values, col.physical),
            lambda **k: th.dictionary_page_header(num_values=len(values), **k),
        )
        page = (head, body, raw, len(values))
        if used is None:
            col.whole_dictionary_page = page
        return page

    def _column_chunk(self, col: _Column, sel: _Selection) -> _Chunk:
        n = sel.n
        levels = data = b""
        stats = None  # (min, max) of the chunk's values, where the column has statistics
        null_count = 0
        dictionary: tuple | None = None
        keep_whole = col.dictionary is not None and len(col.dictionary) <= KEEP_WHOLE_DICTIONARY
        if col.mode == "runs":
            lengths, codes = _clip_runs(col.run_start, col.run_code, self.n, *sel.intervals)
            present = codes >= 0
            if col.nullable:
                levels = levels_from_runs(*_merge(lengths, present.astype(np.int64)))
                null_count = int(lengths[~present].sum())
            lengths, codes = _merge(lengths[present], codes[present])
            if len(codes):
                used = None if keep_whole else np.unique(codes)
                if used is not None:
                    codes = np.searchsorted(used, codes)
                dictionary = self._dictionary_page(col, used)
                width = width_for(dictionary[3])
                data = bytes([width]) + rle_runs(lengths, codes, width)
                if col.statistics and col.physical != "byte_array":  # numeric dictionaries ascend
                    lo, hi = (
                        (int(codes.min()), int(codes.max()))
                        if used is None
                        else (int(used[0]), int(used[-1]))
                    )
                    stats = col.dictionary[lo], col.dictionary[hi]
        elif col.mode == "pieces":  # no nulls (a column with nulls is never in pieces mode)
            if col.nullable:
                levels = levels_from_runs(np.array([n]), np.array([1]))
            data, stats = self._pieces(col, sel)
        else:
            valid = sel.take(col.valid) if col.valid is not None else None
            if col.nullable:
                levels = levels_from_runs(
                    *_runs_of(
                        valid.astype(np.int64) if valid is not None else np.ones(n, dtype=np.int64)
                    )
                )
                null_count = int(n - valid.sum()) if valid is not None else 0
            per_row = sel.take(col.codes if col.mode == "codes" else col.values)
            if valid is not None:
                per_row = per_row[valid]
            if col.mode == "codes" and len(per_row):
                used = None
                if not keep_whole or col.statistics:
                    seen = np.bincount(per_row, minlength=len(col.dictionary)) > 0
                    used = np.flatnonzero(seen)
                    # Entries the copy does not use cost their bytes in its dictionary page;
                    # shrinking costs a pass over its rows: shrink where the page would be big.
                    spare = (len(seen) - len(used)) * (8 if col.physical != "byte_array" else 16)
                    if keep_whole or spare * 50 <= len(per_row) * width_for(len(seen)) // 8:
                        stats = (
                            (col.dictionary[used[0]], col.dictionary[used[-1]])
                            if col.statistics
                            else None
                        )
                        used = None
                    else:
                        per_row = (np.cumsum(seen, dtype=np.int32) - 1)[per_row]
                        stats = (
                            (col.dictionary[used[0]], col.dictionary[used[-1]])
                            if col.statistics
                            else None
                        )
                dictionary = self._dictionary_page(col, used)
                width = width_for(dictionary[3])
                data = bytes([width]) + bit_packed(per_row, width)
            elif col.mode == "delta":
                data = delta_binary_packed(per_row, 32 if col.physical == "int32" else 64)
                if col.statistics and len(per_row):
                    stats = int(per_row.min()), int(per_row.max())
        if col.statistics and col.physical == "byte_array":
            stats = None  # string statistics: not written (see STATISTICS_COLUMNS)
        pages: list[bytes] = []
        if dictionary is not None:
            d_head, d_body, d_raw, _ = dictionary
            pages += [d_head, d_body]
            encoding, encodings = th.RLE_DICTIONARY, [th.PLAIN, th.RLE, th.RLE_DICTIONARY]
            dict_len, raw_total = len(d_head) + len(d_body), len(d_head) + d_raw
        else:
            delta = col.mode in ("delta", "pieces")
            if not delta:
                data = b""  # no values (all null): levels only, PLAIN
            encoding = th.DELTA_BINARY_PACKED if delta else th.PLAIN
            encodings = [th.RLE, encoding]
            dict_len = raw_total = 0
        p_head, p_body, p_raw = self._page(
            levels + data, lambda **k: th.data_page_header(num_values=n, encoding=encoding, **k)
        )
        pages += [p_head, p_body]
        raw_total += len(p_head) + p_raw
        meta = [
            (1, th.T_I32, col.ptype),
            (2, th.T_LIST, (th.T_I32, encodings)),
            (3, th.T_LIST, (th.T_BINARY, [col.name])),
            (4, th.T_I32, th.ZSTD),
            (5, th.T_I64, n),
            (6, th.T_I64, raw_total),
            (7, th.T_I64, sum(len(p) for p in pages)),
        ]
        if stats is not None:
            size = {"int32": 4, "int64": 8}.get(col.physical)
            enc = (
                (lambda x: int(x).to_bytes(size, "little", signed=True))
                if size
                else (lambda x: np.float64(x).tobytes())
            )
            meta.append(
                (
                    12,
                    th.T_STRUCT,
                    [
                        (3, th.T_I64, null_count),
                        (5, th.T_BINARY, enc(stats[1])),
                        (6, th.T_BINARY, enc(stats[0])),
                    ],
                )
            )
        return _Chunk(pages, meta, dictionary is not None, dict_len, raw_total)

    def _pieces(self, col: _Column, sel: _Selection) -> tuple[bytes, tuple[int, int] | None]:
        """DELTA_BINARY_PACKED of a pieces-mode column: the copy's deltas are ``step``
        except where it enters a new piece (its rows' pieces are the unit's, cut)."""
        idx, begin, length = _clip(col.piece_start, self.n, *sel.intervals)
        v = col.values
        ends = begin + length - 1
        pos = np.cumsum(length)[:-1] - 1  # delta index of each piece after the first
        data = delta_binary_packed_sparse(
            int(v[begin[0]]),
            sel.n,
            col.step,
            pos,
            v[begin[1:]] - v[ends[:-1]],
            32 if col.physical == "int32" else 64,
        )
        if not col.statistics:
            return data, None
        endpoints = np.r_[v[begin], v[ends]]  # a piece is arithmetic: its extremes are its ends
        return data, (int(endpoints.min()), int(endpoints.max()))

    # -- the file ----------------------------------------------------------------------

    def _file(self, selections: list[_Selection]) -> list[bytes]:
        out: list[bytes] = [b"PAR1"]
        pos = 4
        row_groups = []
        for ordinal, sel in enumerate(selections):
            columns, rg_start, rg_raw = [], pos, 0
            for col in self.columns:
                chunk = self._column_chunk(col, sel)
                meta = list(chunk.meta) + [(9, th.T_I64, pos + chunk.first_page_len)]
                if chunk.has_dictionary:
                    meta.append((11, th.T_I64, pos))
                columns.append([(2, th.T_I64, pos), (3, th.T_STRUCT, meta)])
                rg_raw += chunk.raw_size
                out += chunk.pages
                pos += sum(len(p) for p in chunk.pages)
            row_groups.append(
                [
                    (1, th.T_LIST, (th.T_STRUCT, columns)),
                    (2, th.T_I64, rg_raw),
                    (3, th.T_I64, sel.n),
                    (5, th.T_I64, rg_start),
                    (6, th.T_I64, pos - rg_start),
                    (7, th.T_I16, ordinal),
                ]
            )
        footer = th.encode_struct(
            [
                (1, th.T_I32, 2),
                (2, th.T_LIST, self._schema),
                (3, th.T_I64, sum(s.n for s in selections)),
                (4, th.T_LIST, (th.T_STRUCT, row_groups)),
                (6, th.T_BINARY, CREATED_BY),
                (7, th.T_LIST, self._column_orders),
            ]
        )
        return out + [footer, len(footer).to_bytes(4, "little"), b"PAR1"]
