"""Rules across records of one MPAN: exact duplicates, conflicting duplicates, overlaps.

These rules need every record of an MPAN together. Records are first spread into
buckets by a stable hash of the MPAN (``bucket_of``), so a bucket holds all records of
its MPANs and fits in memory however large the extract; ``resolve`` then works on one
bucket with sorts and vectorised neighbour comparisons (no Python loop per row).

Decisions (see docs/reason-codes.md):
- Records identical after normalisation (same fields, same row faults) form one group;
  its first record (lowest record number) stands for it. If that record ends clean the
  others are *merged* duplicates; if it is rejected, every copy is quarantined with the
  same reasons (each rejected input record gets its own quarantine row).
- Distinct records with the same (MPAN, effective_from) are ``DUPLICATE_KEY``: all of
  them are quarantined, because which one is right cannot be known.
- Records of one MPAN whose inclusive periods intersect are ``OVERLAPPING_PERIOD``; all
  records involved are quarantined (the others of that MPAN stay). Records with a bad
  date or a bad MPAN take no part (they are quarantined for that already).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.cleanse.columns import INPUT_COLUMNS
from mhhs_pipeline.cleanse.reasons import bit
from mhhs_pipeline.core import streams

CLEAN, QUARANTINED, MERGED = 0, 1, 2
_BUCKET_KEY = streams.stream_key(0, "cleanse.bucket")
_DAY_SHIFT = 100_000  # day ordinals of 1900..2199 become positive
_OPEN_END = 1_000_000  # an open registration (effective_to null) ends after every date
_SPAN = np.int64(1 << 21)  # > _OPEN_END: packs (MPAN group, end day) in one int64


def bucket_of(table: pa.Table, n_buckets: int) -> np.ndarray:
    """Bucket of each normalised record: a stable hash of its MPAN core (never of a
    partition or process), or of the record number when the MPAN is unusable."""
    core = table.column("mpan_core")
    valid = np.asarray(pc.is_valid(core).to_numpy(zero_copy_only=False), dtype=bool)
    ints = pc.cast(pc.fill_null(core, "0"), pa.int64()).to_numpy(zero_copy_only=False)
    key = np.where(valid, ints, -1 - table.column("record").to_numpy(zero_copy_only=False))
    return (streams.random_u64(_BUCKET_KEY, key.astype(np.uint64)) % np.uint64(n_buckets)).astype(np.int64)


@dataclass(frozen=True)
class Resolution:
    reasons: np.ndarray  # uint64 final mask per row (input order)
    status: np.ndarray  # int8 CLEAN | QUARANTINED | MERGED per row


def same_as_previous(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """For sorted values: row i equals row i-1 (null equals null). Length n-1."""
    a = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    x, y = a.slice(1), a.slice(0, len(a) - 1)
    eq = pc.fill_null(pc.equal(x, y), False)
    both_null = pc.and_(pc.is_null(x), pc.is_null(y))
    return np.asarray(pc.or_(eq, both_null).to_numpy(zero_copy_only=False), dtype=bool)


def equal_to_previous_row(table: pa.Table, columns: list[str]) -> np.ndarray:
    """For sorted rows: row i equals row i-1 in every one of ``columns``. Length n (row 0: False)."""
    n = table.num_rows
    same = np.zeros(n, dtype=bool)
    if n > 1:
        eq = np.ones(n - 1, dtype=bool)
        for c in columns:
            eq &= same_as_previous(table.column(c))
        same[1:] = eq
    return same


def resolve(table: pa.Table) -> Resolution:
    """Final reasons and status of every record of a bucket (normalised by ``rules``)."""
    n = table.num_rows
    reasons = table.column("reasons").to_numpy(zero_copy_only=False).astype(np.uint64)
    final = reasons.copy()
    status = np.full(n, QUARANTINED, dtype=np.int8)
    keyed = np.flatnonzero(np.asarray(pc.is_valid(table.column("mpan_core")).to_numpy(zero_copy_only=False), dtype=bool))
    if len(keyed):
        _resolve_keyed(table, keyed, final, status)
    status[(final == 0) & (status != MERGED)] = CLEAN
    status[final != 0] = QUARANTINED
    return Resolution(final, status)


def _resolve_keyed(table: pa.Table, keyed: np.ndarray, final: np.ndarray, status: np.ndarray) -> None:
    compare = [*INPUT_COLUMNS, "reasons"]
    sub = table.select([*compare, "record"]).take(pa.array(keyed))
    order = pc.sort_indices(sub, sort_keys=[(c, "ascending", "at_end") for c in (*compare, "record")]).to_numpy()
    srt = sub.take(pa.array(order))
    rows = keyed[order]  # input row of each sorted position

    # 1. Exact duplicates: equal to the previous sorted row in every compared column.
    dup = equal_to_previous_row(srt, compare)
    group = np.cumsum(~dup) - 1
    survivors = np.flatnonzero(~dup)  # sorted positions; still ordered by (MPAN, from, to, ...)

    # 2. Key groups among survivors with usable dates: same MPAN and effective_from.
    sv = srt.take(pa.array(survivors))
    sv_reasons = sv.column("reasons").to_numpy(zero_copy_only=False).astype(np.uint64)
    date_faults = bit("BAD_DATE", "effective_from") | bit("BAD_DATE", "effective_to") | bit("EFFECTIVE_TO_BEFORE_FROM")
    usable = np.asarray(pc.is_valid(sv.column("effective_from")).to_numpy(zero_copy_only=False), dtype=bool)
    usable &= (sv_reasons & date_faults) == 0
    extra = np.zeros(len(survivors), dtype=np.uint64)
    u = np.flatnonzero(usable)
    if len(u):
        extra[u] = _period_faults(sv.take(pa.array(u)))

    survivor_final = sv_reasons | extra
    group_final = survivor_final  # one entry per group, groups numbered like survivors
    final[rows] = group_final[group]
    merged = dup & (group_final[group] == 0)
    status[rows[merged]] = MERGED


def _period_faults(t: pa.Table) -> np.ndarray:
    """DUPLICATE_KEY / OVERLAPPING_PERIOD bits for distinct records sorted by (MPAN, from)."""
    k = t.num_rows
    frm = t.column("effective_from").cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64) + _DAY_SHIFT
    to_col = t.column("effective_to").cast(pa.int32())
    to = np.where(
        np.asarray(to_col.is_null().to_numpy(zero_copy_only=False), dtype=bool),
        _OPEN_END,
        to_col.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) + _DAY_SHIFT,
    )
    same_mpan = np.zeros(k, dtype=bool)
    if k > 1:
        same_mpan[1:] = same_as_previous(t.column("mpan_core"))
    same_key = same_mpan.copy()
    same_key[1:] &= frm[1:] == frm[:-1]
    new_key = ~same_key
    kg = np.cumsum(new_key) - 1  # key group of each record
    starts = np.flatnonzero(new_key)
    size = np.diff(np.r_[starts, k])
    kg_from = frm[starts]
    kg_to = np.maximum.reduceat(to, starts)
    kg_mpan = np.cumsum(~same_mpan[starts]) - 1
    g = len(starts)

    # Overlap with an earlier key group of the same MPAN: from <= the latest end so far.
    packed = np.maximum.accumulate(kg_mpan.astype(np.int64) * _SPAN + kg_to)
    prev_end = np.full(g, -1, dtype=np.int64)
    same_prev = np.zeros(g, dtype=bool)
    same_prev[1:] = kg_mpan[1:] == kg_mpan[:-1]
    prev_end[1:] = np.where(same_prev[1:], packed[:-1] - kg_mpan[1:].astype(np.int64) * _SPAN, -1)
    overlaps = kg_from <= prev_end
    # ... and with a later one: it suffices to look at the next group (sorted by from).
    overlaps[:-1] |= same_prev[1:] & (kg_to[:-1] >= kg_from[1:])

    out = np.zeros(k, dtype=np.uint64)
    out[(size > 1)[kg]] |= bit("DUPLICATE_KEY")
    out[overlaps[kg]] |= bit("OVERLAPPING_PERIOD")
    return out
