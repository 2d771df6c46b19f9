"""Actual consumption plus the model: what is missing is manufactured, flagged as such.

``merge_actual_with_model(actual, modelled)`` takes clean actual rows and the generator's
canonical rows for the same MPANs and days, and returns one row per modelled half hour:

- a half hour with an actual value: the actual row, untouched (``provenance`` actual);
- a series (MPAN x measurement quantity) with no actual value on any modelled half hour:
  the modelled rows as generated (``provenance`` manufactured);
- a half hour missing from a series that has actual values (inside a gap, or before the
  first / after the last actual value -- a data service would call all of them missing):
  the modelled value scaled to the series' own level, ``quality`` E, ``estimation_reason``
  2 (Missing), ``provenance`` manufactured. The scale is the ratio of sums over the half
  hours that have both an actual and a modelled value, so the scaled model has the actual
  mean over those half hours; the model supplies the shape (time of day, weekday,
  season, weather). With fewer than ``min_overlap_periods`` such half hours, or a
  modelled sum of zero, the level is not estimable and the ratio is 1.
- with ``registrations``, a missing half hour on a day the registration in force is
  de-energised keeps the modelled row as generated (0.000, quality A): the market accepts
  only actual zeros while de-energised.

The output has exactly the modelled rows' keys, ordered by (mpan_core,
measurement_quantity, period_end_utc), so 48 rows per MPAN x MQ x UTC day wherever the
model has them; ``merge_with_model_index`` also returns which modelled row each output row
stands for (to carry the generator's ``registration_row`` along). Actual rows the model
does not cover (outside its days, or a measurement quantity it does not generate) are
left out unless ``keep_unmodelled``; ``unmodelled_actuals`` lists them for the report.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.cleanse.consumption_registry import RegistrationIndex, mpan_ints
from mhhs_pipeline.core import market
from mhhs_pipeline.core.schema import CONSUMPTION_SCHEMA, same_columns

MIN_OVERLAP_PERIODS = 48  # one day of half hours: enough to estimate a level
ESTIMATION_REASON_MISSING = 2  # DI-076
_MQ = tuple(sorted(market.MEASUREMENT_QUANTITIES))  # AE, AI, RE, RI: the codes sort like the text
_US_PER_HALF_HOUR = 1_800_000_000
_US_PER_DAY = 48 * _US_PER_HALF_HOUR
_HH_SHIFT = np.int64(5_000_000)  # half hours since 1970 of 1900..2199 become positive
_HH_BITS = np.int64(1 << 24)


def _prepare(table: pa.Table, what: str) -> pa.Table:
    problems = same_columns(table.schema, CONSUMPTION_SCHEMA)
    if problems:
        raise ValueError(f"{what} is not canonical consumption: {'; '.join(problems)}")
    return table.select(CONSUMPTION_SCHEMA.names).cast(CONSUMPTION_SCHEMA)


def _keys(t: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(MPAN int, MQ code, half-hour index) of each row."""
    mpan = mpan_ints(t.column("mpan_core").combine_chunks())
    mq = pc.index_in(t.column("measurement_quantity"), pa.array(_MQ)).to_numpy(zero_copy_only=False)
    if mpan.size and (mpan.min() < 0 or np.isnan(mq.astype(float)).any()):
        raise ValueError("mpan_core or measurement_quantity is not canonical")
    hh = t.column("period_end_utc").cast(pa.int64()).to_numpy(zero_copy_only=False) // _US_PER_HALF_HOUR
    return mpan, mq.astype(np.int64), hh.astype(np.int64)


def _series_keys(a: tuple, m: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Packed sortable keys of actual and modelled rows, and each row's series id (shared)."""
    a_pair = a[0] * 4 + a[1]
    m_pair = m[0] * 4 + m[1]
    _, inv = np.unique(np.concatenate([a_pair, m_pair]), return_inverse=True)
    a_sid, m_sid = inv[: len(a_pair)], inv[len(a_pair) :]
    a_key = a_sid * _HH_BITS + a[2] + _HH_SHIFT
    m_key = m_sid * _HH_BITS + m[2] + _HH_SHIFT
    return a_key, m_key, np.concatenate([a_sid, m_sid])


def _unique_or_raise(key: np.ndarray, what: str) -> None:
    s = np.sort(key)
    if len(s) > 1 and np.any(s[1:] == s[:-1]):
        raise ValueError(f"{what} has duplicate (mpan_core, measurement_quantity, period_end_utc) rows")


def _match(a_key: np.ndarray, m_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each actual row the modelled row with its key (-1 if none), and the reverse."""
    m_order = np.argsort(m_key, kind="stable")
    m_sorted = m_key[m_order]
    a_to_m = np.full(len(a_key), -1, dtype=np.int64)
    if len(m_sorted):
        pos = np.clip(np.searchsorted(m_sorted, a_key), 0, len(m_sorted) - 1)
        hit = m_sorted[pos] == a_key
        a_to_m[hit] = m_order[pos[hit]]
    m_to_a = np.full(len(m_key), -1, dtype=np.int64)
    m_to_a[a_to_m[a_to_m >= 0]] = np.flatnonzero(a_to_m >= 0)
    return a_to_m, m_to_a


def _ratios(a_kwh: np.ndarray, m_kwh: np.ndarray, a_to_m: np.ndarray, m_sid: np.ndarray, n_series: int, min_overlap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per series: (ratio, overlapping half hours, actual sum, modelled sum) over the overlap."""
    hit = np.flatnonzero(a_to_m >= 0)
    sid = m_sid[a_to_m[hit]]
    n = np.bincount(sid, minlength=n_series)
    sum_a = np.bincount(sid, weights=a_kwh[hit], minlength=n_series)
    sum_m = np.bincount(sid, weights=m_kwh[a_to_m[hit]], minlength=n_series)
    estimable = (n >= max(min_overlap, 1)) & (sum_m > 0)
    ratio = np.where(estimable, sum_a / np.where(sum_m > 0, sum_m, 1.0), 1.0)
    return ratio, n, sum_a, sum_m


def merge_with_model_index(
    actual: pa.Table,
    modelled: pa.Table,
    *,
    registrations: pa.Table | RegistrationIndex | None = None,
    min_overlap_periods: int = MIN_OVERLAP_PERIODS,
    keep_unmodelled: bool = False,
) -> tuple[pa.Table, np.ndarray]:
    """The merged table and, per output row, the index of the modelled row it stands for
    (-1 for an actual row the model does not cover, only with ``keep_unmodelled``)."""
    actual = _prepare(actual, "actual")
    modelled = _prepare(modelled, "modelled")
    a = _keys(actual)
    m = _keys(modelled)
    a_key, m_key, sid_all = _series_keys(a, m)
    _unique_or_raise(a_key, "actual")
    _unique_or_raise(m_key, "modelled")
    m_sid = sid_all[len(a_key) :]
    n_series = int(sid_all.max()) + 1 if len(sid_all) else 0
    a_to_m, m_to_a = _match(a_key, m_key)

    a_kwh = actual.column("consumption_kwh").to_numpy(zero_copy_only=False)
    m_kwh = modelled.column("consumption_kwh").to_numpy(zero_copy_only=False)
    ratio, overlap, _, _ = _ratios(a_kwh, m_kwh, a_to_m, m_sid, n_series, min_overlap_periods)

    # Modelled rows without an actual value: kept as generated, or filled at the series' level.
    gap = np.flatnonzero(m_to_a < 0)
    fill = overlap[m_sid[gap]] > 0
    if registrations is not None and fill.any():
        index = registrations if isinstance(registrations, RegistrationIndex) else RegistrationIndex.build(registrations)
        day = (m[2][gap] * _US_PER_HALF_HOUR - _US_PER_HALF_HOUR) // _US_PER_DAY
        row = index.in_force(m[0][gap], day)
        deen = (row >= 0) & (index.energisation_status[np.maximum(row, 0)] == "D") if len(index.keys) else np.zeros(len(gap), bool)
        fill &= ~deen
    model_part = modelled.take(pa.array(gap, pa.int64()))
    filled_kwh = np.round(m_kwh[gap] * ratio[m_sid[gap]], 3) + 0.0
    k = len(gap)
    model_part = pa.table(
        {
            **{c: model_part.column(c) for c in ("mpan_core", "measurement_quantity", "period_end_utc", "settlement_date", "settlement_period")},
            "consumption_kwh": pa.array(np.where(fill, filled_kwh, m_kwh[gap]), pa.float64()),
            "quality": pc.if_else(pa.array(fill, pa.bool_()), "E", model_part.column("quality").combine_chunks() if k else pa.array([], pa.string())),
            "estimation_reason": pc.if_else(
                pa.array(fill, pa.bool_()),
                pa.scalar(ESTIMATION_REASON_MISSING, pa.int16()),
                model_part.column("estimation_reason").combine_chunks() if k else pa.array([], pa.int16()),
            ),
            "provenance": pa.array(["manufactured"] * k, pa.string()),
        },
        schema=CONSUMPTION_SCHEMA,
    )

    take_a = np.flatnonzero(a_to_m >= 0) if not keep_unmodelled else np.arange(len(a_key))
    parts = [actual.take(pa.array(take_a, pa.int64())), model_part]
    model_index = np.concatenate([a_to_m[take_a], gap])
    key_mpan = np.concatenate([a[0][take_a], m[0][gap]])
    key_mq = np.concatenate([a[1][take_a], m[1][gap]])
    key_hh = np.concatenate([a[2][take_a], m[2][gap]])
    order = np.lexsort((key_hh, key_mq, key_mpan))
    merged = pa.concat_tables(parts).take(pa.array(order, pa.int64()))
    return merged.combine_chunks(), model_index[order]


def merge_actual_with_model(
    actual: pa.Table,
    modelled: pa.Table,
    *,
    registrations: pa.Table | RegistrationIndex | None = None,
    min_overlap_periods: int = MIN_OVERLAP_PERIODS,
    keep_unmodelled: bool = False,
) -> pa.Table:
    """Actual rows where they exist, the model elsewhere; see the module docstring.

    ``actual``: clean actual rows (``CONSUMPTION_SCHEMA``, unique keys). ``modelled``: the
    generator's canonical rows for the same MPANs and days. Both may carry dictionary
    string columns. Raises ``ValueError`` on non-canonical input or duplicate keys."""
    return merge_with_model_index(
        actual, modelled, registrations=registrations, min_overlap_periods=min_overlap_periods, keep_unmodelled=keep_unmodelled
    )[0]


def level_ratios(actual: pa.Table, modelled: pa.Table, *, min_overlap_periods: int = MIN_OVERLAP_PERIODS) -> pa.Table:
    """Per series with actual data: the scale the merge applies, for the run report.

    Columns: mpan_core, measurement_quantity, overlap_periods, actual_kwh, modelled_kwh,
    ratio (1.0 where the level is not estimable)."""
    actual = _prepare(actual, "actual")
    modelled = _prepare(modelled, "modelled")
    a, m = _keys(actual), _keys(modelled)
    a_key, m_key, sid_all = _series_keys(a, m)
    n_series = int(sid_all.max()) + 1 if len(sid_all) else 0
    a_to_m, _ = _match(a_key, m_key)
    a_sid = sid_all[: len(a_key)]
    m_sid = sid_all[len(a_key) :]
    ratio, overlap, sum_a, sum_m = _ratios(
        actual.column("consumption_kwh").to_numpy(zero_copy_only=False),
        modelled.column("consumption_kwh").to_numpy(zero_copy_only=False),
        a_to_m, m_sid, n_series, min_overlap_periods,
    )  # fmt: skip
    present = np.flatnonzero(overlap > 0)
    first = np.full(n_series, -1, dtype=np.int64)
    first[a_sid[::-1]] = np.arange(len(a_sid))[::-1]  # some actual row of each series
    rows = first[present]
    return pa.table(
        {
            "mpan_core": actual.column("mpan_core").take(pa.array(rows, pa.int64())),
            "measurement_quantity": actual.column("measurement_quantity").take(pa.array(rows, pa.int64())),
            "overlap_periods": pa.array(overlap[present], pa.int64()),
            "actual_kwh": pa.array(np.round(sum_a[present], 3)),
            "modelled_kwh": pa.array(np.round(sum_m[present], 3)),
            "ratio": pa.array(ratio[present]),
        }
    )


def unmodelled_actuals(actual: pa.Table, modelled: pa.Table) -> pa.Table:
    """Actual rows whose (MPAN, MQ, half hour) the model does not cover (left out of the merge)."""
    actual = _prepare(actual, "actual")
    modelled = _prepare(modelled, "modelled")
    a_key, m_key, _ = _series_keys(_keys(actual), _keys(modelled))
    a_to_m, _ = _match(a_key, m_key)
    return actual.filter(pa.array(a_to_m < 0))
