"""Wide CSV: one row per MPAN x measurement quantity x day, a column per period.

Two day conventions, both asked for by participants migrating from legacy systems:

- ``csv_wide``: UTC settlement days, always 48 periods (``p01_kwh`` .. ``p48_kwh``).
- ``csv_wide_local``: local (Europe/London) settlement days with 46, 48 or 50 periods;
  50 columns, the columns beyond the day's ``periods`` left empty.

Each period has a value column (kWh, 3 decimals) and a quality column (DI-083); an
estimation reason column is not widened (it is rare; see the long format).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.core.calendar import HALF_HOUR
from mhhs_pipeline.core.schema import dictionary_parts
from mhhs_pipeline.formats.tabular import RenderedCsv, kwh_text, refuse_structural


def _day_and_period(table: pa.Table, local: bool) -> tuple[np.ndarray, np.ndarray]:
    if local:
        day = table.column("settlement_date").cast(pa.date32()).to_numpy(zero_copy_only=False).astype("datetime64[D]")
        period = table.column("settlement_period").to_numpy().astype(np.int64)
        return day, period
    end = table.column("period_end_utc").cast(pa.timestamp("us")).to_numpy()
    start = end - HALF_HOUR
    day = start.astype("datetime64[D]")
    period = ((start - day).astype("timedelta64[m]").astype(np.int64) // 30) + 1
    return day, period


def _lexical_codes(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the rank of its string among the column's distinct values (so integer
    order is string order), and the distinct values in that order. Works on the few
    distinct values, never on per-row strings."""
    dictionary, indices = dictionary_parts(col)
    values = np.asarray(dictionary.to_pylist(), dtype=str)
    idx = indices.astype(np.int64)
    order = np.argsort(values, kind="stable")
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values))
    return rank[idx], values[order]


@dataclass(frozen=True)
class _Pivot:
    table: pa.Table  # one row per (MPAN, MQ, day), ordered by MPAN, MQ, day
    first_row: np.ndarray  # per wide row: its first canonical row
    line_of_row: np.ndarray  # per canonical row: its wide row


def wide_table(table: pa.Table, *, local: bool) -> pa.Table:
    """Pivot canonical rows into one row per (MPAN, MQ, day)."""
    return _pivot(table, local=local).table


def _pivot(table: pa.Table, *, local: bool) -> _Pivot:
    n_cols = 50 if local else 48
    day, period = _day_and_period(table, local)
    core, core_values = _lexical_codes(table.column("mpan_core"))
    mq, mq_values = _lexical_codes(table.column("measurement_quantity"))
    day_i = day.astype(np.int64)
    d0 = int(day_i.min()) if len(day_i) else 0
    span = int(day_i.max()) - d0 + 1 if len(day_i) else 1
    # One integer per row ordered as (MPAN, MQ, day, period); a unit's rows arrive in this
    # order already, so the sort is usually skipped.
    line_key = (core * len(mq_values) + mq) * span + (day_i - d0)
    key = line_key * 64 + period
    order = np.arange(len(key)) if bool(np.all(key[1:] > key[:-1])) else np.argsort(key, kind="stable")
    line_key, period = line_key[order], period[order]
    new_group = np.r_[True, line_key[1:] != line_key[:-1]] if len(line_key) else np.zeros(0, dtype=bool)
    gid = np.cumsum(new_group) - 1
    n_groups = int(gid[-1]) + 1 if len(gid) else 0
    starts = np.flatnonzero(new_group)
    slot = gid * n_cols + (period - 1)
    identity = len(order) == 0 or (order[0] == 0 and order[-1] == len(order) - 1 and bool(np.all(np.diff(order) == 1)))
    kwh = table.column("consumption_kwh")
    quality = table.column("quality")
    if not identity:
        kwh, quality = kwh.take(pa.array(order)), quality.take(pa.array(order))
    values = kwh_text(kwh)  # dictionary-coded: the period columns below take 4-byte codes
    quality = quality.combine_chunks() if isinstance(quality, pa.ChunkedArray) else quality
    if pa.types.is_dictionary(quality.type):
        quality = quality.cast(quality.type.value_type)
    for strings in (pa.array(core_values, pa.string()), pa.array(mq_values, pa.string()), pc.unique(quality)):
        refuse_structural(strings)  # the only input text in a wide line; the rest we format
    # Position of each (group, period) cell in the sorted rows, -1 where the day has no such period.
    cell = np.full(n_groups * n_cols, -1, dtype=np.int64)
    cell[slot] = np.arange(len(slot))
    first = order[starts]
    cols: dict[str, pa.Array] = {
        "mpan_core": pa.array(core_values[core[first]], pa.string()),
        "measurement_quantity": pa.array(mq_values[mq[first]], pa.string()),
        "settlement_date": pa.array(day_i[first].astype("datetime64[D]"), pa.date32()),
        "periods": pa.array(np.bincount(gid, minlength=n_groups).astype(np.int16)),
    }
    idx = cell.reshape(n_groups, n_cols)
    for p in range(n_cols):
        take = pa.array(idx[:, p], mask=idx[:, p] < 0)
        cols[f"p{p + 1:02d}_kwh"] = pc.take(values, take)
    for p in range(n_cols):
        take = pa.array(idx[:, p], mask=idx[:, p] < 0)
        cols[f"p{p + 1:02d}_quality"] = pc.take(quality, take)
    line_of_row = np.empty(len(order), dtype=np.int64)
    line_of_row[order] = gid
    return _Pivot(pa.table(cols), first, line_of_row)


@dataclass(frozen=True)
class WideRendering:
    """A unit's wide CSV rendered once, and what is needed to cut a participant's from it."""

    text: RenderedCsv
    first_row: np.ndarray  # per line: its first canonical row
    line_of_row: np.ndarray  # per canonical row: its line
    periods: np.ndarray  # per line: the values it holds
    local: bool

    def chunks(self) -> list:
        return self.text.chunks()

    def subset_chunks(self, table: pa.Table, rows: np.ndarray) -> list:
        """The wide CSV of the canonical ``rows`` (ascending) of ``table`` as byte chunks.

        A line whose values all belong to ``rows`` is cut from the unit's text. A line
        shared with another participant -- in the local view, a BST day whose first hour
        falls in the UTC day before a change of supplier -- is pivoted from ``rows``'
        values alone, so each participant sees only its own half hours.
        """
        rows = np.asarray(rows, dtype=np.int64)
        lines = self.line_of_row[rows]
        own = np.bincount(lines, minlength=len(self.periods))
        full = own == self.periods
        shared = (own > 0) & ~full
        if not shared.any():
            return self.text.subset_chunks(np.flatnonzero(full))
        part = render_wide(table.take(pa.array(rows[shared[lines]])), local=self.local).text
        keep = np.flatnonzero(own > 0)
        is_full = full[keep]
        # Segments: runs of consecutive wholly-owned lines, and single shared lines.
        brk = np.r_[True, ~is_full[1:] | ~is_full[:-1] | (np.diff(keep) != 1)]
        seg_start = np.flatnonzero(brk)
        seg_end = np.r_[seg_start[1:], len(keep)]
        body, part_body = memoryview(self.text.body), memoryview(part.body)
        out, j = [self.text.header], 0
        for a, b in zip(seg_start.tolist(), seg_end.tolist(), strict=True):
            if is_full[a]:
                out.append(body[self.text.starts[keep[a]] : self.text.ends[keep[b - 1]]])
            else:
                out.append(part_body[part.starts[j] : part.ends[j]])
                j += 1
        return out


def render_wide(table: pa.Table, *, local: bool) -> WideRendering:
    """The wide CSV of a whole unit, rendered once, with the maps to cut participants' from it."""
    pv = _pivot(table, local=local)
    wide = pv.table
    dates = pc.strftime(wide.column("settlement_date").cast(pa.timestamp("s")), format="%Y-%m-%d")
    ready = wide.set_column(2, "settlement_date", dates)
    periods = wide.column("periods").to_numpy().astype(np.int64)
    return WideRendering(RenderedCsv.from_ready(wide.column_names, ready, checked=True), pv.first_row, pv.line_of_row, periods, local)


def encode_wide_csv(table: pa.Table, *, local: bool) -> bytes:
    return render_wide(table, local=local).text.whole()
