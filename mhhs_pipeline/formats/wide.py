"""Wide CSV: one row per MPAN x measurement quantity x day, a column per period.

Two day conventions, both asked for by participants migrating from legacy systems:

- ``csv_wide``: UTC settlement days, always 48 periods (``p01_kwh`` .. ``p48_kwh``).
- ``csv_wide_local``: local (Europe/London) settlement days with 46, 48 or 50 periods;
  50 columns, the columns beyond the day's ``periods`` left empty.

Each period has a value column (kWh, 3 decimals) and a quality column (DI-083); an
estimation reason column is not widened (it is rare; see the long format).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.core.calendar import HALF_HOUR
from mhhs_pipeline.formats.tabular import RenderedCsv, fixed3


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


def wide_table(table: pa.Table, *, local: bool) -> pa.Table:
    """Pivot canonical rows into one row per (MPAN, MQ, day)."""
    return _pivot(table, local=local)[0]


def _pivot(table: pa.Table, *, local: bool) -> tuple[pa.Table, np.ndarray]:
    """The wide table and, per wide row, the index of its first canonical row."""
    n_cols = 50 if local else 48
    day, period = _day_and_period(table, local)
    cores = np.asarray(table.column("mpan_core").to_numpy(zero_copy_only=False)).astype(str)
    mqs = np.asarray(table.column("measurement_quantity").to_numpy(zero_copy_only=False)).astype(str)
    day_i = day.astype(np.int64)
    order = np.lexsort((period, day_i, mqs, cores))
    cores, mqs, day_i, period = cores[order], mqs[order], day_i[order], period[order]
    new_group = np.r_[True, (cores[1:] != cores[:-1]) | (mqs[1:] != mqs[:-1]) | (day_i[1:] != day_i[:-1])]
    gid = np.cumsum(new_group) - 1
    n_groups = int(gid[-1]) + 1 if len(gid) else 0
    starts = np.flatnonzero(new_group)
    slot = gid * n_cols + (period - 1)
    values = fixed3(table.column("consumption_kwh").take(pa.array(order)))
    quality = table.column("quality").take(pa.array(order)).combine_chunks()
    # Position of each (group, period) cell in the sorted rows, -1 where the day has no such period.
    cell = np.full(n_groups * n_cols, -1, dtype=np.int64)
    cell[slot] = np.arange(len(slot))
    cols: dict[str, pa.Array] = {
        "mpan_core": pa.array(cores[starts]),
        "measurement_quantity": pa.array(mqs[starts]),
        "settlement_date": pa.array(day_i[starts].astype("datetime64[D]"), pa.date32()),
        "periods": pa.array(np.bincount(gid, minlength=n_groups).astype(np.int16)),
    }
    idx = cell.reshape(n_groups, n_cols)
    for p in range(n_cols):
        take = pa.array(idx[:, p], mask=idx[:, p] < 0)
        cols[f"p{p + 1:02d}_kwh"] = pc.take(values, take)
    for p in range(n_cols):
        take = pa.array(idx[:, p], mask=idx[:, p] < 0)
        cols[f"p{p + 1:02d}_quality"] = pc.take(quality, take)
    return pa.table(cols), order[starts]


def render_wide(table: pa.Table, *, local: bool) -> tuple[RenderedCsv, np.ndarray, np.ndarray]:
    """The wide CSV of a whole unit, rendered once: (text, first canonical row of each line,
    values on each line). In the UTC view a line (MPAN, MQ, UTC day) belongs to one
    registration, so a participant's wide CSV is a subset of these lines."""
    wide, first_row = _pivot(table, local=local)
    dates = pc.strftime(wide.column("settlement_date").cast(pa.timestamp("s")), format="%Y-%m-%d")
    ready = wide.set_column(2, "settlement_date", dates)
    return RenderedCsv.from_ready(wide.column_names, ready), first_row, wide.column("periods").to_numpy().astype(np.int64)


def encode_wide_csv(table: pa.Table, *, local: bool) -> bytes:
    return render_wide(table, local=local)[0].whole()
