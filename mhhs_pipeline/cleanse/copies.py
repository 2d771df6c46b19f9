"""Exact copies of a record, collapsed as they are read, so memory follows distinct records.

An extract may repeat one record many times (an export appended twice, a feed stuck in a
loop). Every copy of an MPAN lands in the same bucket, so a million copies would be a
million rows in memory at once. Rows of one chunk identical in every field but their record
number -- the same text as read, hence the same normalisation and the same faults -- are
kept once, with their number of copies and each copy's record number on the side (16 bytes
a copy). Resolution works on the kept rows as before; the copies follow their original:
merged duplicates when it is clean or merged, and each quarantined with the same reasons
when it is rejected (every rejected input record keeps its own quarantine row). The result
is the same as resolving every copy, which ``tests/test_cleanse_copies.py`` checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.cleanse.groups import equal_to_previous_row

COPIES = "copies"  # column of kept rows: how many more records were identical to it
# Copies share these; a chunk without repeats among them (the usual case) costs one sort.
_PROBE = ("raw_mpan_core", "raw_effective_from", "raw_effective_to")


@dataclass(frozen=True)
class Collapsed:
    kept: pa.Table  # the chunk without its copies, input order, plus the COPIES column
    copy_of: np.ndarray  # per removed copy: the row of ``kept`` it is a copy of
    copy_record: np.ndarray  # per removed copy: its own record number


def collapse_copies(chunk: pa.Table) -> Collapsed:
    """Collapse the rows of ``chunk`` (normalised records with a ``record`` column) that are
    identical in every other column onto the one with the lowest record number."""
    n = chunk.num_rows
    fields = [c for c in chunk.column_names if c != "record"]
    none = Collapsed(chunk.append_column(COPIES, pa.array(np.zeros(n, np.int64))), np.zeros(0, np.int64), np.zeros(0, np.int64))
    if n < 2:
        return none
    probe = [c for c in _PROBE if c in fields] or fields
    order = pc.sort_indices(chunk, sort_keys=[(c, "ascending", "at_end") for c in probe]).to_numpy()
    same = equal_to_previous_row(chunk.select(probe).take(pa.array(order)), probe)
    if not same.any():
        return none
    candidate = np.zeros(n, dtype=bool)
    candidate[order[same]] = True
    candidate[order[np.flatnonzero(same) - 1]] = True
    rows = np.flatnonzero(candidate)
    sub = chunk.take(pa.array(rows))
    sort2 = pc.sort_indices(sub, sort_keys=[*((c, "ascending", "at_end") for c in fields), ("record", "ascending")]).to_numpy()
    dup = equal_to_previous_row(sub.select(fields).take(pa.array(sort2)), fields)
    if not dup.any():
        return none
    group_first = np.maximum.accumulate(np.where(~dup, np.arange(len(dup)), 0))  # sorted position of each group's first
    original = rows[sort2[group_first]]  # chunk row each sorted candidate collapses onto
    copy_rows = rows[sort2[dup]]
    copy_orig = original[dup]
    keep = np.ones(n, dtype=bool)
    keep[copy_rows] = False
    kept_index = np.cumsum(keep) - 1  # chunk row -> row of kept
    copies = np.bincount(kept_index[copy_orig], minlength=int(keep.sum())).astype(np.int64)
    kept = chunk.filter(pa.array(keep)).append_column(COPIES, pa.array(copies))
    record = chunk.column("record").to_numpy()
    order3 = np.argsort(record[copy_rows], kind="stable")
    return Collapsed(kept, kept_index[copy_orig][order3], record[copy_rows][order3])
