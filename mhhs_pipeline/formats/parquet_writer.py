"""Parquet files of a unit's table and of any subsets of its rows, prepared once per unit.

Every participant copy of a unit is a subset of the unit's rows (in order), and the same
values recur in every copy. pyarrow's writer re-encodes each copy from scratch (hashing
dictionaries, finding runs, computing deltas): ~60 ns per row written, the largest cost
of a Parquet-only run. :class:`PreparedParquet` does the per-unit work once, then encodes
every copy's column chunks together, a column at a time (:meth:`PreparedParquet.files`):
a unit has dozens of copies, and numpy's per-call cost, paid per page, would otherwise
outweigh the small ones.

| column kind | encoding | per copy |
|---|---|---|
| few runs (MPAN, MQ, quality, date, ...) | RLE_DICTIONARY, RLE runs | the unit's runs cut to the copy's row runs (no per-row work) |
| arithmetic pieces (instants of half-hourly series) | DELTA_BINARY_PACKED | only the 128-delta blocks where a piece starts are spelled out |
| many runs (kWh, periods, strings) | RLE_DICTIONARY, bit-packed | gather codes, shrink a large dictionary to the copy's values, pack |
| other integers | DELTA_BINARY_PACKED | gather values, encode deltas |

Files are standard Parquet (format 2, data page v1, zstd, REQUIRED/OPTIONAL flat
columns, logical and legacy type annotations, min/max statistics on time columns, one
page per column chunk, row groups of at most 2**20 rows). The Arrow schema is not
stored: readers get the canonical types (``string`` where the table held dictionaries).
Booleans are PLAIN bits. Tables with other types are written by pyarrow (:func:`supports`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import zstandard

from mhhs_pipeline.core.participants import row_runs, rows_of_runs
from mhhs_pipeline.formats import parquet_thrift as th
from mhhs_pipeline.formats.parquet_encodings import (
    all_present,
    bit_packed,
    bit_packed_groups,
    delta_binary_packed,
    delta_sparse_many,
    levels_from_runs,
    plain,
    rle_runs_many,
    width_for,
)

ROW_GROUP_ROWS = 1 << 20
# Statistics where readers prune: by time (a file holds a unit's day range).
STATISTICS_COLUMNS = ("period_end_utc", "settlement_date", "effective_from")
# A column with fewer runs than this share of its rows is encoded as runs.
RUNS_MAX_SHARE = 1 / 16
# ... with fewer arithmetic pieces: sparse deltas (most 128-delta blocks plain).
PIECES_MAX_SHARE = 1 / 64
# Integers over a range this small: dictionary codes (settlement periods 1..50).
CODES_MAX_DISTINCT = 1 << 12
# A dictionary this small goes whole into every copy (its page made once per unit).
KEEP_WHOLE_DICTIONARY = 64
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
    if pa.types.is_boolean(typ):
        return "boolean", th.BOOLEAN, None, None
    return None


def supports(schema: pa.Schema) -> bool:
    """Whether every column has a type this writer encodes (else use pyarrow's)."""
    return all(_type_info(f.type) is not None for f in schema)


# Below this, pyarrow's writer is as fast or faster (measured: registrations 44 vs 63 ms).
MIN_ROWS = 1 << 16


def worthwhile(table: pa.Table) -> bool:
    """Whether to write ``table`` (and its subsets) with this writer rather than pyarrow's:
    every column type supported and enough rows for preparing once to pay."""
    return table.num_rows >= MIN_ROWS and supports(table.schema)


def _validity(arr: pa.Array) -> np.ndarray | None:
    """Per row, whether the value is present (None: no nulls), unpacked from the validity
    bitmap (Arrow's own conversion to booleans costs ~20x more)."""
    if not arr.null_count:
        return None
    bits = np.unpackbits(np.frombuffer(arr.buffers()[0], dtype=np.uint8), count=len(arr) + arr.offset, bitorder="little")
    return bits[arr.offset :].view(bool)


def _native(arr: pa.Array) -> np.ndarray:
    """Values of a fixed-width column straight from its buffer, in their own width (int16,
    int32 for dates, int64 for instants, float64); null slots hold whatever is there."""
    if pa.types.is_timestamp(arr.type):
        dtype = np.dtype("<i8")
    elif pa.types.is_date32(arr.type):
        dtype = np.dtype("<i4")
    else:
        dtype = np.dtype(arr.type.to_pandas_dtype())
    if not len(arr):
        return np.zeros(0, dtype)
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def _widened(values: np.ndarray) -> np.ndarray:
    """int64 (or float64 for doubles) values for arithmetic that must not overflow."""
    return values.astype(np.float64 if values.dtype.kind == "f" else np.int64, copy=False)


def _presence_codes(offset: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(distinct offsets, ascending; int32 code of each) of non-negative ``offset`` < ``size``."""
    present = np.zeros(size, dtype=bool)
    present[offset] = True
    return np.flatnonzero(present), (np.cumsum(present, dtype=np.int32) - 1)[offset]


def _dense_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, int32 code of each value): by a presence table when the
    values are integers (or exact thousandths, e.g. kWh) over a small range, else hashed."""
    if len(values) == 0:
        return values, np.zeros(0, dtype=np.int32)
    if values.dtype == np.float64:
        ints = np.rint(values * 1000.0).astype(np.int64)
        # Exact thousandths, bit for bit (-0.0, NaN and infinities fail and are hashed).
        if np.array_equal((ints / 1000.0).view(np.int64), values.view(np.int64)):
            uniq, codes = _dense_codes(ints)
            return uniq / 1000.0, codes
        uniq, codes = _hashed_codes(values.view(np.int64))
        return uniq.view(np.float64), codes
    lo, hi = int(values.min()), int(values.max())
    offset = values - lo
    span = max(1 << 16, 4 * len(values))
    if hi - lo < span:
        distinct, codes = _presence_codes(offset, hi - lo + 1)
        return distinct + lo, codes
    # The range that holds ~97 % of the values, judged on a sample: a presence table for it.
    sample = np.sort(offset[:: max(1, len(offset) // 4096)])
    span = min(span, max(1 << 16, int(sample[int(len(sample) * 0.97)]) * 2 + 1))
    outside = offset >= span
    if np.count_nonzero(outside) > len(values) // 16:
        return _hashed_codes(values)
    # Mostly a small range with a few far values (raw register reads, fault sentinels):
    # a presence table for the range, sorting for the few; those all sort after it.
    near, near_codes = _presence_codes(np.where(outside, 0, offset), span)
    far, far_code = np.unique(values[outside], return_inverse=True)
    codes = near_codes
    codes[outside] = len(near) + far_code.reshape(-1)
    return np.r_[near + lo, far], codes


def _hashed_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Like ``np.unique(return_inverse=True)`` by Arrow's hash kernel: sorting a few
    thousand distinct values instead of millions of rows."""
    encoded = pc.dictionary_encode(pa.array(values))
    distinct = np.asarray(encoded.dictionary)
    order = np.argsort(distinct, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return distinct[order], rank.astype(np.int32)[np.asarray(encoded.indices)]


@dataclass
class _Column:
    name: str
    physical: str
    ptype: int
    converted: int | None
    logical: list | None
    nullable: bool
    mode: str  # "runs" | "codes" | "pieces" | "delta" | "bool"
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
    packed: bytes | None = None  # codes mode, whole dictionary: every row's code bit-packed

    def entries(self, used: np.ndarray | None) -> pa.Array | np.ndarray:
        """The dictionary's ``used`` entries (all for ``None``)."""
        if used is None:
            return self.dictionary
        return (
            self.dictionary.take(pa.array(used))
            if isinstance(self.dictionary, pa.Array)
            else self.dictionary[used]
        )


def _prepare(field: pa.Field, arr: pa.Array, statistics: bool) -> _Column:
    """One column of a unit's table, ready to cut: its mode and what that mode needs."""
    physical, ptype, converted, logical = _type_info(field.type)
    n = len(arr)
    valid = _validity(arr)
    col = _Column(field.name, physical, ptype, converted, logical, field.nullable, "runs", statistics, valid=valid)  # fmt: skip
    if physical == "boolean":  # PLAIN bits (Parquet has no dictionary for booleans)
        col.mode, col.statistics = "bool", False
        col.values = np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        return col
    if physical == "byte_array":
        if not pa.types.is_dictionary(arr.type):
            arr = pc.dictionary_encode(arr)
        dictionary = arr.dictionary
        per_row = _native(arr.indices)
    else:
        per_row = _native(arr)
    # Runs are found in the column's own width; null slots read as -1 (indices) or 0 (numbers).
    key = (
        per_row
        if valid is None
        else np.where(valid, per_row, -1 if physical == "byte_array" else 0)
    )
    change = key[1:] != key[:-1]
    if valid is not None:
        change |= valid[1:] != valid[:-1]
    # Counted before they are listed: a column that changes every row never lists its runs.
    if np.count_nonzero(change) + 1 <= max(16, n * RUNS_MAX_SHARE):
        run_start = np.r_[0, np.flatnonzero(change) + 1] if n else np.zeros(0, dtype=np.int64)
        run_valid = valid[run_start] if valid is not None else np.ones(len(run_start), dtype=bool)
        run_code = np.full(len(run_start), -1, dtype=np.int64)
        if physical == "byte_array":
            col.dictionary = dictionary
            run_code[run_valid] = per_row[run_start][run_valid]
        else:
            col.dictionary, run_code[run_valid] = _dense_codes(_widened(key[run_start][run_valid]))
        col.run_start, col.run_code = run_start.astype(np.int64), run_code
    elif physical == "byte_array":
        col.mode, col.dictionary = "codes", dictionary
        col.codes = (key if valid is None else np.maximum(key, 0)).astype(np.int32, copy=False)
    elif physical == "double":
        col.mode = "codes"
        col.dictionary, codes = _dense_codes(_widened(key))
        col.codes = codes.astype(np.int32, copy=False)
    else:
        _integer_mode(col, _widened(key))
    return col


def _integer_mode(col: _Column, numbers: np.ndarray) -> None:
    """Integers with many runs: arithmetic pieces (instants of a half-hourly series) as
    sparse deltas; else few distinct values (periods) as dictionary codes; else deltas."""
    n = len(numbers)
    if col.valid is None and n > 1:
        # The commonest step and how often it breaks, judged on a sample before the whole.
        head = np.diff(numbers[: 1 << 16])
        sample, counts = np.unique(head, return_counts=True)
        step = int(sample[np.argmax(counts)])
        if np.count_nonzero(head != step) <= len(head) * PIECES_MAX_SHARE:
            piece_start = np.r_[0, np.flatnonzero(np.diff(numbers) != step) + 1]
            if len(piece_start) <= n * PIECES_MAX_SHARE:
                col.mode, col.values, col.piece_start, col.step = (
                    "pieces",
                    numbers,
                    piece_start,
                    step,
                )
                return
    lo, hi = (int(numbers.min()), int(numbers.max())) if n else (0, 0)
    if hi - lo < CODES_MAX_DISTINCT:
        col.mode = "codes"
        col.dictionary, codes = _dense_codes(numbers)
        col.codes = codes.astype(np.int32, copy=False)
        return
    col.mode, col.values = "delta", numbers


def _clip(
    start: np.ndarray, n_total: int, first: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments of the unit (beginning at rows ``start``) cut to the rows ``first[i]..last[i]``
    (inclusive, ascending): (segment index, first row, length) of each piece, in row
    order, and how many pieces each interval has. O(segments), no per-row work."""
    lo = np.searchsorted(start, first, side="right") - 1
    hi = np.searchsorted(start, last, side="right")
    count = hi - lo
    base = np.repeat(np.cumsum(count) - count, count)
    idx = np.arange(int(count.sum())) - base + np.repeat(lo, count)
    begin = np.maximum(start[idx], np.repeat(first, count))
    end = np.minimum(np.r_[start[1:], n_total][idx] - 1, np.repeat(last, count))
    return idx, begin, end - begin + 1, count


def _merge_runs(
    lengths: np.ndarray, values: np.ndarray, segment: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adjacent runs of one value within one segment merged into one."""
    if len(values) <= 1:
        return lengths, values, segment
    heads = np.r_[
        0, np.flatnonzero((values[1:] != values[:-1]) | (segment[1:] != segment[:-1])) + 1
    ]
    return np.add.reduceat(lengths, heads), values[heads], segment[heads]


def _runs_of(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs (lengths, values) of a per-row array."""
    if len(flags) == 0:
        return np.zeros(0, dtype=np.int64), flags
    heads = np.r_[0, np.flatnonzero(flags[1:] != flags[:-1]) + 1]
    return np.diff(np.r_[heads, len(flags)]), flags[heads]


def _one_array(column: pa.ChunkedArray, typ: pa.DataType) -> pa.Array:
    """The column as one array: its only chunk as it is (``combine_chunks`` copies even one
    chunk: 8 ms for a unit's instants), else the chunks combined."""
    if column.num_chunks == 1:
        return column.chunk(0)
    return column.combine_chunks() if column.num_chunks else pa.array([], typ)


class _Segments:
    """The row groups of every file being written at once, in order: segment ``k`` is rows
    ``lo..hi`` of the unit (``runs`` None) or the ascending runs ``runs = (first, last)``
    (inclusive) of unit rows."""

    def __init__(self, n_unit: int, selections: list[tuple[np.ndarray, np.ndarray] | None], row_group_rows: int):
        self.parts: list[tuple[int, int, tuple[np.ndarray, np.ndarray] | None]] = []
        self.of_file: list[list[int]] = []  # each file's segments (its row groups)
        counts = []
        for sel in selections:
            first_part = len(self.parts)
            if sel is None:
                for lo in range(0, n_unit, row_group_rows):
                    self.parts.append((lo, min(lo + row_group_rows, n_unit), None))
                    counts.append(self.parts[-1][1] - lo)
            else:
                first, last = (np.asarray(x, dtype=np.int64) for x in sel)
                n = int((last - first).sum()) + len(first)
                for lo in range(0, n, row_group_rows):  # no rows: no row group
                    self.parts.append((0, 0, _cut_runs(first, last, lo, lo + row_group_rows) if n > row_group_rows else (first, last)))
                    counts.append(min(row_group_rows, n - lo))
            self.of_file.append(list(range(first_part, len(self.parts))))
        self.counts = np.array(counts, dtype=np.int64)
        self.offsets = np.r_[0, np.cumsum(self.counts)]

    def __len__(self) -> int:
        return len(self.parts)

    @cached_property
    def intervals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(first row, last row, segment) of each run of consecutive unit rows."""
        firsts, lasts, segs = [], [], []
        for k, (lo, hi, runs) in enumerate(self.parts):
            first, last = (np.array([lo], dtype=np.int64), np.array([hi - 1], dtype=np.int64)) if runs is None else runs
            firsts.append(first)
            lasts.append(last)
            segs.append(np.full(len(first), k, dtype=np.int64))
        return np.concatenate(firsts), np.concatenate(lasts), np.concatenate(segs)


def _cut_runs(first: np.ndarray, last: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """The runs covering positions ``lo`` .. ``hi - 1`` of the rows the runs list, in order."""
    lengths = last - first + 1
    ends = np.cumsum(lengths)  # position after each run
    starts = ends - lengths
    a = int(np.searchsorted(ends, lo, side="right"))  # the first run ending after lo
    b = int(np.searchsorted(starts, hi, side="left"))  # runs starting before hi: a .. b-1
    cut_first, cut_last = first[a:b].copy(), last[a:b].copy()
    if len(cut_first):
        cut_first[0] += lo - starts[a]
        cut_last[-1] -= max(0, int(ends[b - 1]) - hi)
    return cut_first, cut_last


def _take(source: np.ndarray, runs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``source``'s values at the runs' rows: slices joined where the runs are long (a
    participant's usual few hundred), else one gather."""
    first, last = runs
    if len(first) == 1:
        return source[int(first[0]) : int(last[0]) + 1]
    n = int((last - first).sum()) + len(first)
    if len(first) * 64 <= n:
        return np.concatenate([source[a : b + 1] for a, b in zip(first.tolist(), last.tolist(), strict=True)]) if len(first) else source[:0]
    return source[rows_of_runs(first, last)]


@dataclass
class _Encoded:
    """One column chunk before compression: its page body parts and what the footer says."""

    levels: bytes = b""
    data: bytes = b""
    encoding: int = th.PLAIN
    dictionary: tuple | None = None  # (header, compressed body, raw size, entries)
    stats: tuple | None = None  # (min, max)
    null_count: int = 0


def _bounds(ends: np.ndarray, segment: np.ndarray, n_segments: int) -> np.ndarray:
    """Start offsets (plus the total) of each segment's range in ``ends`` (cumulative ends
    of items grouped by ascending ``segment``)."""
    last_item = np.searchsorted(segment, np.arange(n_segments), side="right")
    return np.r_[0, ends][np.r_[0, last_item]]


class PreparedParquet:
    """A unit's table, prepared once; :meth:`files` gives the bytes of Parquet files of
    all rows or of ascending row subsets, as chunks in order, all encoded together."""

    def __init__(
        self, table: pa.Table, *, zstd_level: int = ZSTD_LEVEL, row_group_rows: int = ROW_GROUP_ROWS
    ):
        if not supports(table.schema):
            raise ValueError(
                "table has a column type the page writer does not encode; use encode_parquet"
            )
        self.n = table.num_rows
        # One zstd context for all of a unit's pages: pyarrow's codec makes a context per
        # call (~10 us each, and a unit compresses hundreds of small pages).
        self._zstd = zstandard.ZstdCompressor(level=zstd_level)
        self.row_group_rows = row_group_rows
        self.columns = [
            _prepare(
                f,
                _one_array(table.column(f.name), f.type),
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
        # ColumnMetaData's fixed fields, per column and encodings (filled as files are made).
        self._prefixes: dict[tuple, bytes] = {}
        self._column_orders = th.encode_value(
            th.T_LIST, (th.T_STRUCT, [[(1, th.T_STRUCT, [])] for _ in self.columns])
        )  # TYPE_ORDER

    def chunks(self) -> list[bytes]:
        return self.files([None])[0]

    def whole(self) -> bytes:
        return b"".join(self.chunks())

    def subset_chunks(self, rows: np.ndarray) -> list[bytes]:
        return self.files([rows])[0]

    def files(self, selections: list[tuple[np.ndarray, np.ndarray] | np.ndarray | None]) -> list[list[bytes]]:
        """One file per selection: ``None`` for every row, else ascending unit rows as runs
        ``(first, last)`` (inclusive; a participant slice's ``runs``) or as row indices."""
        segs = _Segments(
            self.n,
            [sel if sel is None or isinstance(sel, tuple) else row_runs(sel) for sel in selections],
            self.row_group_rows,
        )
        encoded = [self._encode(col, segs) for col in self.columns]  # [column][segment]
        return [self._file([(k, int(segs.counts[k])) for k in ks], encoded) for ks in segs.of_file]

    # -- columns, every segment at once ------------------------------------------------

    def _encode(self, col: _Column, segs: _Segments) -> list[_Encoded]:
        if len(segs) == 0:
            return []
        if col.mode == "runs":
            return self._runs(col, segs)
        if col.mode == "pieces":
            return self._pieces(col, segs)
        if col.mode == "bool":
            return self._booleans(col, segs)
        return self._per_row(col, segs)

    @staticmethod
    def _segment_values(col: _Column, source: np.ndarray, part: tuple, e: _Encoded) -> np.ndarray:
        """A segment's non-null values of a per-row column; its levels and null count on ``e``."""
        lo, hi, runs = part
        values = source[lo:hi] if runs is None else _take(source, runs)
        if col.valid is not None:
            valid = col.valid[lo:hi] if runs is None else _take(col.valid, runs)
            if col.nullable:
                e.levels = levels_from_runs(*_runs_of(valid.astype(np.int64)))
            e.null_count = int(len(values) - np.count_nonzero(valid))
            return values[valid]
        if col.nullable:
            e.levels = all_present(len(values))
        return values

    def _booleans(self, col: _Column, segs: _Segments) -> list[_Encoded]:
        out = []
        for part in segs.parts:
            e = _Encoded(encoding=th.PLAIN)
            e.data = np.packbits(
                self._segment_values(col, col.values, part, e), bitorder="little"
            ).tobytes()
            out.append(e)
        return out

    def _dictionary_page(
        self, col: _Column, used: np.ndarray | None
    ) -> tuple[bytes, bytes, int, int]:
        """The dictionary page of the ``used`` entries, or of the whole dictionary
        (``None``; made once per unit)."""
        if used is None and col.whole_dictionary_page is not None:
            return col.whole_dictionary_page
        values = col.entries(used)
        body = plain(values, col.physical)
        compressed = self._zstd.compress(body)
        page = (
            th.dictionary_page_header(
                uncompressed=len(body), compressed=len(compressed), num_values=len(values)
            ),
            compressed,
            len(body),
            len(values),
        )
        if used is None:
            col.whole_dictionary_page = page
        return page

    def _levels(
        self, lengths: np.ndarray, present: np.ndarray, segment: np.ndarray, n_segments: int
    ) -> list[bytes]:
        """Definition levels of each segment from runs (lengths, present, segment)."""
        lengths, present, segment = _merge_runs(lengths, present, segment)
        buf, ends = rle_runs_many(
            lengths, present.astype(np.uint64), np.ones(len(lengths), dtype=np.int64)
        )
        bounds = _bounds(ends, segment, n_segments).tolist()
        data = buf.tobytes()
        return [
            (bounds[k + 1] - bounds[k]).to_bytes(4, "little") + data[bounds[k] : bounds[k + 1]]
            for k in range(n_segments)
        ]

    def _runs(self, col: _Column, segs: _Segments) -> list[_Encoded]:
        """Runs-mode column: the unit's runs cut to every segment's rows, as RLE runs."""
        first, last, seg_of_interval = segs.intervals
        idx, begin, length, count = _clip(col.run_start, self.n, first, last)
        segment = np.repeat(seg_of_interval, count)
        codes = col.run_code[idx]
        n_seg = len(segs)
        out = [_Encoded(encoding=th.RLE_DICTIONARY) for _ in range(n_seg)]
        present = codes >= 0
        if col.nullable:
            for k, levels in enumerate(self._levels(length, present, segment, n_seg)):
                out[k].levels = levels
            nulls = np.bincount(segment[~present], weights=length[~present], minlength=n_seg)
            for k in np.flatnonzero(nulls).tolist():
                out[k].null_count = int(nulls[k])
        length, codes, segment = _merge_runs(length[present], codes[present], segment[present])
        has_values = np.bincount(segment, minlength=n_seg) > 0
        D = len(col.dictionary)
        if D <= KEEP_WHOLE_DICTIONARY:
            widths = np.full(n_seg, width_for(D), dtype=np.int64)
            used_of = None
        else:  # each segment's own dictionary: the distinct (segment, code) pairs
            pairs, new_key = np.unique(segment * D + codes, return_inverse=True)
            pair_seg = pairs // D
            pair_start = np.searchsorted(pair_seg, np.arange(n_seg + 1))
            codes = new_key.reshape(-1) - pair_start[segment]
            widths = np.array(
                [width_for(max(1, int(c))) for c in np.diff(pair_start)], dtype=np.int64
            )
            used_of = (pairs % D, pair_start)
        buf, ends = rle_runs_many(length, codes, (widths[segment] + 7) // 8)
        bounds = _bounds(ends, segment, n_seg).tolist()
        data = buf.tobytes()
        numeric_stats = col.statistics and col.physical != "byte_array"
        if numeric_stats and len(codes):
            lo_code = np.full(n_seg, np.iinfo(np.int64).max)
            hi_code = np.full(n_seg, -1)
            np.minimum.at(lo_code, segment, codes)
            np.maximum.at(hi_code, segment, codes)
        for k in np.flatnonzero(has_values).tolist():
            e = out[k]
            used = None if used_of is None else used_of[0][used_of[1][k] : used_of[1][k + 1]]
            e.dictionary = self._dictionary_page(col, used)
            e.data = bytes((int(widths[k]),)) + data[bounds[k] : bounds[k + 1]]
            if numeric_stats:
                values = col.entries(used)
                e.stats = values[int(lo_code[k])], values[int(hi_code[k])]
        for k in np.flatnonzero(~has_values).tolist():
            out[k].encoding = th.PLAIN  # all null: levels only
        return out

    def _pieces(self, col: _Column, segs: _Segments) -> list[_Encoded]:
        """Pieces-mode column (no nulls): sparse deltas, every segment at once."""
        first, last, seg_of_interval = segs.intervals
        idx, begin, length, count = _clip(col.piece_start, self.n, first, last)
        segment = np.repeat(seg_of_interval, count)
        v = col.values
        end = begin + length - 1
        n_seg = len(segs)
        seg_first_piece = np.searchsorted(segment, np.arange(n_seg))
        # A delta exception where a segment enters each piece after its first.
        later = np.ones(len(segment), dtype=bool)
        later[seg_first_piece[segs.counts > 0]] = False
        local_end = np.cumsum(length) - np.repeat(
            segs.offsets[:-1], np.bincount(segment, minlength=n_seg)
        )  # rows of the segment so far
        pos = (local_end - length)[later] - 1
        val = v[begin[later]] - v[end[np.flatnonzero(later) - 1]]
        firsts = np.where(
            segs.counts > 0,
            v[begin[np.minimum(seg_first_piece, len(begin) - 1)]] if len(begin) else 0,
            0,
        )
        pages = delta_sparse_many(
            firsts,
            segs.counts,
            col.step,
            segment[later],
            pos,
            val,
            32 if col.physical == "int32" else 64,
        )
        out = [_Encoded(data=p, encoding=th.DELTA_BINARY_PACKED) for p in pages]
        if col.nullable:
            for e, n in zip(out, segs.counts.tolist(), strict=True):
                e.levels = all_present(n)
        if col.statistics and len(begin):
            ends_v = np.maximum(v[begin], v[end])
            starts_v = np.minimum(
                v[begin], v[end]
            )  # a piece is arithmetic: its extremes are its ends
            lo = np.full(n_seg, np.iinfo(np.int64).max)
            hi = np.full(n_seg, np.iinfo(np.int64).min)
            np.minimum.at(lo, segment, starts_v)
            np.maximum.at(hi, segment, ends_v)
            for k in np.flatnonzero(segs.counts > 0).tolist():
                out[k].stats = int(lo[k]), int(hi[k])
        return out

    def _per_row(self, col: _Column, segs: _Segments) -> list[_Encoded]:
        """Codes- and delta-mode columns, segment by segment: the work is per row anyway,
        and a segment of the unit's rows is a view, not a gather."""
        out = []
        D = len(col.dictionary) if col.mode == "codes" else 0
        bits = 32 if col.physical == "int32" else 64
        source = col.codes if col.mode == "codes" else col.values
        # Codes every copy writes with the unit's whole dictionary (so the same codes, e.g.
        # settlement periods) are packed once for the unit; a segment whose runs start and end
        # on groups of 8 rows (whole series-days do) is cut from that, not packed again.
        whole = col.mode == "codes" and D <= KEEP_WHOLE_DICTIONARY and col.valid is None and not col.statistics
        for part in segs.parts:
            e = _Encoded()
            out.append(e)
            if whole and self._cut_codes(col, part, e):
                continue
            values = self._segment_values(col, source, part, e)
            if col.mode == "delta":
                e.data, e.encoding = delta_binary_packed(values, bits), th.DELTA_BINARY_PACKED
                if col.statistics and len(values):
                    e.stats = int(values.min()), int(values.max())
                continue
            if not len(values):
                continue  # all null: levels only, PLAIN
            used = None
            if D > KEEP_WHOLE_DICTIONARY or col.statistics:
                seen = np.bincount(values, minlength=D) > 0
                in_use = np.flatnonzero(seen)
                if col.statistics and col.physical != "byte_array":
                    e.stats = col.dictionary[in_use[0]], col.dictionary[in_use[-1]]
                # Entries a copy does not use cost their bytes in its dictionary page;
                # shrinking costs a pass over its rows: shrink where they would weigh.
                spare = (D - len(in_use)) * (8 if col.physical != "byte_array" else 16)
                if D > KEEP_WHOLE_DICTIONARY and spare * 50 > len(values) * width_for(D) // 8:
                    used = in_use
                    values = (np.cumsum(seen, dtype=np.int32) - 1)[values]
            e.encoding = th.RLE_DICTIONARY
            e.dictionary = self._dictionary_page(col, used)
            width = width_for(e.dictionary[3])
            e.data = bytes((width,)) + bit_packed(values, width)
        return out

    def _cut_codes(self, col: _Column, part: tuple, e: _Encoded) -> bool:
        """``e`` as the segment's codes cut from the unit's packed codes, where every run of
        the segment starts on a group of 8 rows and ends on one (or at the unit's end);
        False (``e`` untouched) otherwise. The bytes are those packing the segment gives."""
        lo, hi, runs = part
        first, last = (np.array([lo]), np.array([hi - 1])) if runs is None else runs
        ends = last + 1
        n = int((ends - first).sum())
        if n == 0 or np.any(first % 8) or np.any((ends % 8 != 0) & (ends != self.n)):
            return False
        width = width_for(len(col.dictionary))
        if col.packed is None:
            col.packed = bit_packed_groups(col.codes, width)
        cut = b"".join(col.packed[f // 8 * width : -(-x // 8) * width] for f, x in zip(first.tolist(), ends.tolist(), strict=True))
        if col.nullable:
            e.levels = all_present(n)
        e.encoding = th.RLE_DICTIONARY
        e.dictionary = self._dictionary_page(col, None)
        e.data = bytes((width,)) + th.varint((-(-n // 8) << 1) | 1) + cut
        return True

    # -- files -------------------------------------------------------------------------

    def _file(self, segments: list[tuple[int, int]], encoded: list[list[_Encoded]]) -> list[bytes]:
        out: list[bytes] = [b"PAR1"]
        pos = 4
        row_groups = []
        for ordinal, (k, n_rows) in enumerate(segments):
            columns, rg_start, rg_raw = [], pos, 0
            for col, per_segment in zip(self.columns, encoded, strict=True):
                e = per_segment[k]
                body = e.levels + e.data
                compressed = self._zstd.compress(body)
                head = th.data_page_header(
                    uncompressed=len(body),
                    compressed=len(compressed),
                    num_values=n_rows,
                    encoding=e.encoding,
                )
                pages = [head, compressed]
                raw = len(head) + len(body)
                meta_pos = pos
                if e.dictionary is not None:
                    d_head, d_body, d_raw, _ = e.dictionary
                    pages = [d_head, d_body, *pages]
                    raw += len(d_head) + d_raw
                    encodings = [th.PLAIN, th.RLE, th.RLE_DICTIONARY]
                else:
                    encodings = [th.RLE, e.encoding]
                size = sum(len(p) for p in pages)
                stats = None
                if e.stats is not None and col.physical != "byte_array":
                    width = {"int32": 4, "int64": 8}.get(col.physical)
                    enc = (
                        (lambda x, w=width: int(x).to_bytes(w, "little", signed=True))
                        if width
                        else (lambda x: np.float64(x).tobytes())
                    )
                    stats = (e.null_count, enc(e.stats[0]), enc(e.stats[1]))
                key = (col.name, tuple(encodings))
                if key not in self._prefixes:
                    self._prefixes[key] = th.column_chunk_prefix(col.ptype, encodings, col.name)
                columns.append(
                    th.column_chunk(
                        self._prefixes[key], file_offset=meta_pos, num_values=n_rows, uncompressed=raw, compressed=size,
                        data_page_offset=pos + size - len(head) - len(compressed),
                        dictionary_page_offset=pos if e.dictionary is not None else None, statistics=stats,
                    )
                )  # fmt: skip
                out += pages
                pos += size
                rg_raw += raw
            row_groups.append(
                [
                    (1, th.T_LIST, (th.T_STRUCT, columns)),
                    (2, th.T_I64, rg_raw),
                    (3, th.T_I64, n_rows),
                    (5, th.T_I64, rg_start),
                    (6, th.T_I64, pos - rg_start),
                    (7, th.T_I16, ordinal),
                ]
            )
        footer = th.encode_struct(
            [
                (1, th.T_I32, 2),
                (2, th.T_LIST, self._schema),
                (3, th.T_I64, sum(n for _, n in segments)),
                (4, th.T_LIST, (th.T_STRUCT, row_groups)),
                (6, th.T_BINARY, CREATED_BY),
                (7, th.T_LIST, self._column_orders),
            ]
        )
        return out + [footer, len(footer).to_bytes(4, "little"), b"PAR1"]
