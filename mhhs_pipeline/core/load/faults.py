"""Data faults with ground truth: raw meter reads, their estimation, and the truth behind both.

Two views of the same half hours, kept apart:

- ``meter_reads_raw`` -- what a data service receives from meters (DCC for Smart, AMR for
  Advanced): comms outages and single missing reads (rows absent), stuck-at-zero runs,
  spikes, kWh/Wh unit slips (a day's batch x1000), 16,777,215 Wh maximum-value sentinels,
  duplicated rows, off-grid timestamps and late arrivals (``received_at_utc`` days later).
- the canonical consumption -- what a data service sends on: unusable reads (missing,
  zero runs, spikes, unit slips, sentinels) become estimates, DI-083 quality ``E`` with
  DI-076 reason 4 CommsFault (outages), 2 Missing (single missing reads) or 3 Invalid (failed
  validation); duplicates, off-grid stamps and late arrivals are repaired and stay actual.
  An estimate is profile-shaped and scaled to the day's register advance: the day's true
  total times the typical profile's share of that half hour (the archetype's mean shape by
  local clock and day type; the sun's elevation for export). It is unbiased, never equal
  to the true spiky value, and a whole day estimated keeps its true total.
- ``ground_truth`` -- one row per fault and half hour: the true value, what the raw read
  showed, and what the canonical consumption carries, so testers can score validation and
  estimation.

Events that span periods (outages, zero runs) are keyed by (seed, meter or series, start
day) and may start up to a few days before a window and reach into it; point faults by
(seed, series, half hour). A window regenerates alone, identically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from mhhs_pipeline.core import streams
from mhhs_pipeline.core.calendar import EPOCH_DAY
from mhhs_pipeline.core.load.weather import GSP_GROUPS, declination_rad, hour_angle_rad
from mhhs_pipeline.core.schema import UTC_US, coded_strings, dictionary_strings, fixed_width

OUTAGE, MISSING, ZERO_RUN, SPIKE, MAX_VALUE, UNIT_SLIP, DUPLICATE, OFF_GRID, LATE = (1 << k for k in range(9))
FAULT_TYPES = {
    OUTAGE: "comms_outage",
    MISSING: "missing_read",
    ZERO_RUN: "zero_run",
    SPIKE: "spike",
    MAX_VALUE: "max_value_sentinel",
    UNIT_SLIP: "unit_slip",
    DUPLICATE: "duplicate",
    OFF_GRID: "off_grid_timestamp",
    LATE: "late_arrival",
}
ABSENT = OUTAGE | MISSING
INVALID = ZERO_RUN | SPIKE | MAX_VALUE | UNIT_SLIP
ESTIMATED = ABSENT | INVALID
REASON_MISSING, REASON_INVALID, REASON_COMMS = 2, 3, 4
SENTINEL_WH = 16_777_215

RAW_SCHEMA = pa.schema(
    [
        pa.field("mpan_core", pa.string(), nullable=False),
        pa.field("measurement_quantity", pa.string(), nullable=False),
        pa.field("read_timestamp_utc", pa.timestamp("us", tz="UTC"), nullable=False),  # period end as the meter stamped it
        pa.field("value", pa.float64(), nullable=False),  # in ``unit``
        pa.field("unit", pa.string(), nullable=False),  # "Wh" (DCC) or "kWh" (AMR)
        pa.field("received_at_utc", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # "DCC" | "AMR"
    ]
)

GROUND_TRUTH_SCHEMA = pa.schema(
    [
        pa.field("mpan_core", pa.string(), nullable=False),
        pa.field("measurement_quantity", pa.string(), nullable=False),
        pa.field("period_end_utc", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("fault_type", pa.string(), nullable=False),  # FAULT_TYPES values
        pa.field("fault_event_id", pa.int64(), nullable=False),  # shared by the half hours of one event
        pa.field("true_kwh", pa.float64(), nullable=False),
        pa.field("raw_value", pa.float64(), nullable=True),  # null: no raw row (missing)
        pa.field("raw_unit", pa.string(), nullable=True),
        pa.field("raw_read_timestamp_utc", pa.timestamp("us", tz="UTC"), nullable=True),
        pa.field("raw_received_at_utc", pa.timestamp("us", tz="UTC"), nullable=True),
        pa.field("consumption_kwh", pa.float64(), nullable=False),  # what the canonical consumption carries
        pa.field("quality", pa.string(), nullable=False),
        pa.field("estimation_reason", pa.int16(), nullable=True),
    ]
)

# The generator builds these with dictionary-coded strings (see core.schema.dictionary_strings).
RAW_WORK_SCHEMA = dictionary_strings(RAW_SCHEMA)
TRUTH_WORK_SCHEMA = dictionary_strings(GROUND_TRUTH_SCHEMA)

_INV24 = 1.0 / float(1 << 24)
_U16 = np.uint64(0xFFFF)
_MQ = ("AI", "AE", "RI", "RE")


@dataclass(frozen=True)
class FaultPlan:
    codes: np.ndarray  # uint16 [S, H] fault bits (only on energised, registered half hours)
    event_start: np.ndarray  # int64 [S, H] start half-hour ordinal of the outage / zero run covering t (-1)
    late_days: np.ndarray  # int64 [n, D] days a meter-day's batch arrives late (0 = on time)
    smart: np.ndarray  # bool [S]: DCC (Wh) rather than AMR (kWh)
    entity: np.ndarray  # uint64 [S] series entity for point streams
    faulty: np.ndarray | None = None  # sorted flat [S*H] positions where codes != 0 (faults are rare)

    def faulty_positions(self) -> np.ndarray:
        return self.faulty if self.faulty is not None else np.flatnonzero(self.codes)


def _frac(u: np.ndarray, shift: int) -> np.ndarray:
    return ((u >> np.uint64(shift)) & _U16).astype(np.float64) / 65536.0


def _runs(key: np.uint64, entity: np.ndarray, ext_days: np.ndarray, rate: float, lo: int, hi: int, lookback: int, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Runs of half hours starting on (entity, day) with chance ``rate``; log-uniform length lo..hi.

    Returns (covered bool [r, H], start ordinal of the latest run covering each half hour, -1).
    """
    r = len(entity)
    H = n_days * 48
    covered = np.zeros((r, H), dtype=bool)
    start = np.full((r, H), -1, dtype=np.int64)
    rows, cov, st = _run_rows(key, entity, ext_days, rate, lo, hi, lookback, n_days)
    covered[rows] = cov
    start[rows] = st
    return covered, start


def _run_rows(key: np.uint64, entity: np.ndarray, ext_days: np.ndarray, rate: float, lo: int, hi: int, lookback: int, n_days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_runs`` for the rows that have a run only (runs are rare): (rows, covered [k, H], start [k, H])."""
    H = n_days * 48
    none = (np.zeros(0, dtype=np.int64), np.zeros((0, H), dtype=bool), np.full((0, H), -1, dtype=np.int64))
    if rate <= 0 or len(entity) == 0:
        return none
    u = streams.random_u64(key, entity[:, None], ext_days[None, :].astype(np.uint64))
    hit = (u >> np.uint64(40)).astype(np.float64) * _INV24 < rate
    ri, di = np.nonzero(hit)
    if not len(ri):
        return none
    rows, ki = np.unique(ri, return_inverse=True)  # runs are rare: work on the rows that have one
    span = (len(ext_days) + 1) * 48 + hi
    diff = np.zeros((len(rows), span + 1), dtype=np.int32)
    mark = np.full((len(rows), span), -1, dtype=np.int64)
    uh = u[ri, di]
    slot = np.minimum((_frac(uh, 16) * 48).astype(np.int64), 47)
    length = np.round(np.exp(math.log(lo) + _frac(uh, 0) * (math.log(hi) - math.log(lo)))).astype(np.int64)
    length = np.clip(length, lo, hi)
    p0 = di * 48 + slot
    np.add.at(diff, (ki, p0), 1)
    np.add.at(diff, (ki, p0 + length), -1)
    np.maximum.at(mark, (ki, p0), (ext_days[di] * 48 + slot).astype(np.int64))
    w = slice(lookback * 48, (lookback + n_days) * 48)
    cov = (np.cumsum(diff[:, :-1], axis=1) > 0)[:, w]
    return rows, cov, np.where(cov, np.maximum.accumulate(mark, axis=1)[:, w], -1)


def _series_of(series_mpan: np.ndarray, n: int, meter_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(series whose meter is in ``meter_rows``, the position of that meter in ``meter_rows``)."""
    pos = np.full(n, -1, dtype=np.int64)
    pos[meter_rows] = np.arange(len(meter_rows))
    sp = pos[series_mpan]
    sel = np.flatnonzero(sp >= 0)
    return sel, sp[sel]


def plan_faults(scenario, sim) -> FaultPlan:
    """Which half hours of which series carry which faults (deterministic, window-independent)."""
    fm = scenario.faults
    seed = scenario.seed
    m = sim.m
    S = len(sim.series_mpan)
    D = len(sim.days)
    H = D * 48
    meter_key = m.key[sim.series_mpan]
    entity = meter_key * np.uint64(4) + sim.series_mq.astype(np.uint64)
    lookback = math.ceil(max(fm.comms_outage_halfhours[1], fm.zero_run_halfhours[1]) / 48)
    ext_days = np.arange(sim.days[0] - lookback, sim.days[-1] + 1, dtype=np.int64)
    values3 = sim.values.reshape(S, D, 48)

    # Faults are rare: codes start at zero and only the series, days and half hours that have
    # one are touched (the same bits as masking the whole [S, H] arrays).
    codes = np.zeros((S, H), dtype=np.uint16)
    event_start = np.full((S, H), -1, dtype=np.int64)
    # Meter-level events: comms outages (all registers of the meter).
    o_rows, o_cov, o_start = _run_rows(streams.stream_key(seed, "fault.outage"), m.key, ext_days, fm.comms_outage_rate_per_meter_day, *fm.comms_outage_halfhours, lookback, D)
    o_series, o_of = _series_of(sim.series_mpan, m.n, o_rows)
    codes[o_series] |= np.where(o_cov[o_of], OUTAGE, 0).astype(np.uint16)
    event_start[o_series] = o_start[o_of]
    # Series-level stuck-at-zero runs (only where the true value is not already zero).
    z_rows, z_cov, z_start = _run_rows(streams.stream_key(seed, "fault.zero_run"), entity, ext_days, fm.zero_run_rate_per_meter_day, *fm.zero_run_halfhours, lookback, D)
    zr = z_cov & (values3[z_rows].reshape(len(z_rows), H) >= 0.0005)  # shows as non-zero at 3 decimals
    codes[z_rows] |= np.where(zr, ZERO_RUN, 0).astype(np.uint16)
    es = event_start[z_rows]
    event_start[z_rows] = np.where(zr & (es < 0), z_start, es)
    codes3 = codes.reshape(S, D, 48)
    # Meter-day events: unit slips and late batches (whole series-days).
    wdays = sim.days.astype(np.uint64)
    us = streams.random_u64(streams.stream_key(seed, "fault.unit_slip"), m.key[:, None], wdays[None, :])
    slip_day = (us >> np.uint64(40)).astype(np.float64) * _INV24 < fm.unit_slip_rate_per_meter_day
    ss, sd = np.nonzero(slip_day[sim.series_mpan])
    codes3[ss, sd] |= np.where(values3[ss, sd] >= 0.0005, UNIT_SLIP, 0).astype(np.uint16)
    ul = streams.random_u64(streams.stream_key(seed, "fault.late"), m.key[:, None], wdays[None, :])
    late = (ul >> np.uint64(40)).astype(np.float64) * _INV24 < fm.late_arrival_rate_per_meter_day
    lo, hi = fm.late_arrival_days
    late_days = np.where(late, lo + np.minimum((_frac(ul, 0) * (hi - lo + 1)).astype(np.int64), hi - lo), 0)
    ls, ld = np.nonzero(late[sim.series_mpan])
    codes3[ls, ld] |= np.uint16(LATE)
    # Point faults, one draw per series and half hour.
    missing = scenario.generation.estimate_share if fm.missing_read_rate is None else fm.missing_read_rate
    rates = np.array([missing, fm.spike_rate, fm.max_value_rate, fm.duplicate_rate, fm.off_grid_rate])
    if rates.sum() > 0:
        up = streams.random_u64(streams.stream_key(seed, "fault.point"), entity[:, None], sim.win.hh[None, :])
        cum = np.cumsum(rates)
        # x = (up >> 40) / 2**24 < cum[-1] exactly when up < ceil(cum[-1] * 2**24) * 2**40 (all
        # exact): select those candidates with one integer comparison, then test them as always.
        limit = math.ceil(float(cum[-1]) * (1 << 24)) + 1  # one more: a superset is harmless
        cand = np.flatnonzero(up < np.uint64(limit << 40)) if limit < (1 << 24) else np.arange(S * H)
        x = (up.reshape(-1)[cand] >> np.uint64(40)).astype(np.float64) * _INV24
        point = np.zeros(len(cand), dtype=np.uint16)
        lower = 0.0
        for bit, upper in zip((MISSING, SPIKE, MAX_VALUE, DUPLICATE, OFF_GRID), cum, strict=True):
            point |= np.where((x >= lower) & (x < upper), bit, 0).astype(np.uint16)
            lower = upper
        codes.reshape(-1)[cand] |= point
    # Only what a raw read can show: an absent row carries no other fault, and a read has one
    # value defect at most (a sentinel hides a spike, which hides a unit slip, which hides a zero).
    # Every rule maps code 0 to 0 and every set event start has a code, so only the non-zero
    # codes are resolved.
    flat = np.flatnonzero(codes)
    c = codes.reshape(-1)[flat]
    sdi = flat // 48  # series-day
    live = sim.day_energised[sim.series_mpan[sdi // D], sdi % D]
    c = np.where(live, c, 0).astype(np.uint16)
    c = np.where(c & OUTAGE, OUTAGE, np.where(c & MISSING, MISSING, c)).astype(np.uint16)
    value_fault = c & INVALID
    top = np.where(value_fault & MAX_VALUE, MAX_VALUE, np.where(value_fault & SPIKE, SPIKE, np.where(value_fault & UNIT_SLIP, UNIT_SLIP, value_fault)))
    c = ((c & ~np.uint16(INVALID)) | top).astype(np.uint16)
    codes.reshape(-1)[flat] = c
    es_flat = event_start.reshape(-1)
    es_flat[flat] = np.where(live & ((c & (OUTAGE | ZERO_RUN)) != 0), es_flat[flat], -1)
    smart = ~m.advanced[sim.series_mpan]
    return FaultPlan(codes=codes, event_start=event_start, late_days=late_days, smart=smart, entity=entity, faulty=flat[c != 0])


@dataclass(frozen=True)
class Canonical:
    kwh: np.ndarray  # [S, H] rounded to 3 decimals
    estimated: np.ndarray  # bool [S, H]
    reason: np.ndarray  # int16 [S, H] (0 where actual)
    true_kwh: np.ndarray  # [S, H] rounded to 3 decimals


def _profile(sim, s_idx: np.ndarray, d_idx: np.ndarray) -> np.ndarray:
    """Typical-profile weights [k, 48] for series-days: the archetype's mean shape by local
    clock and day type, or for export the sun's elevation."""
    from mhhs_pipeline.core.load.daily import variant_of

    cm, m, tr, win = sim.cm, sim.m, sim.traits, sim.win
    rows = sim.series_mpan[s_idx]
    t = d_idx[:, None] * 48 + np.arange(48)[None, :]
    variant = variant_of(cm, m, tr)[rows]
    dtype = win.day_type[variant[:, None], t]
    out = cm.typical[tr.arch_safe[rows][:, None], dtype, win.local_slot[t]]
    exp = m.arch[rows] < 0
    if exp.any():
        clim = cm.model.weather.gsp_climate
        g = m.gsp[rows[exp]]
        lat = np.deg2rad([clim[GSP_GROUPS[i]].latitude_deg for i in g])[:, None]
        lon = np.array([clim[GSP_GROUPS[i]].longitude_deg for i in g])[:, None]
        day = sim.days[d_idx[exp]]
        dates = EPOCH_DAY + day.astype("timedelta64[D]")
        doy = ((dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1).astype(np.float64)[:, None]
        utc_h = np.arange(48)[None, :] * 0.5 + 0.25
        h = hour_angle_rad(doy, utc_h, lon)
        decl = declination_rad(doy)
        out[exp] = np.maximum(np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(h), 0.0)
    return out


def canonical_values(sim, plan: FaultPlan) -> Canonical:
    """The canonical values: true reads where usable, register-constrained estimates elsewhere."""
    S = len(sim.series_mpan)
    D = len(sim.days)
    true = sim.values.reshape(S, D * 48)
    # Flags, reasons and estimates only where a half hour is estimated (rare); rounding is per
    # value, so the rounded truth is copied and only the estimated days are replaced and rounded.
    faulty = plan.faulty_positions()
    fc = plan.codes.reshape(-1)[faulty]
    estimated = (fc & ESTIMATED) != 0
    est_flat, ec = faulty[estimated], fc[estimated]
    est = np.zeros((S, D * 48), dtype=bool)
    est.reshape(-1)[est_flat] = True
    reason = np.zeros((S, D * 48), dtype=np.int16)
    reason.reshape(-1)[est_flat] = np.where((ec & OUTAGE) != 0, REASON_COMMS, np.where((ec & MISSING) != 0, REASON_MISSING, REASON_INVALID))
    true_kwh = np.round(true, 3)
    kwh = true_kwh.copy()
    if len(est_flat):
        e3 = est.reshape(S, D, 48)
        t3 = true.reshape(S, D, 48)
        day = np.unique(est_flat // 48)  # series-days with an estimate, in (series, day) order
        s_idx, d_idx = day // D, day % D
        mask = e3[s_idx, d_idx]  # [k, 48]
        vals = t3[s_idx, d_idx]
        w = _profile(sim, s_idx, d_idx)
        wsum = w.sum(axis=1, keepdims=True)
        w = np.where(wsum > 0, w / np.where(wsum > 0, wsum, 1.0), 1.0 / 48.0)
        k3 = kwh.reshape(S, D, 48)
        k3[s_idx, d_idx] = np.round(np.where(mask, vals.sum(axis=1, keepdims=True) * w, vals), 3)
    return Canonical(kwh=kwh, estimated=est, reason=reason, true_kwh=true_kwh)


def _arrival(scenario, sim, plan: FaultPlan) -> np.ndarray:
    """Normal arrival [S, D] in microseconds since the epoch: the morning after the UTC day."""
    m = sim.m
    fm = scenario.faults
    u = streams.uniform(streams.stream_key(scenario.seed, "raw.arrival"), m.key)[sim.series_mpan]
    (d0, d1), (a0, a1) = fm.dcc_arrival_hours, fm.amr_arrival_hours
    offset_min = np.floor(60.0 * np.where(plan.smart, d0 + (d1 - d0) * u, a0 + (a1 - a0) * u)).astype(np.int64)
    day_end_us = (sim.days.astype(np.int64) + 1) * 86_400_000_000
    late = plan.late_days[sim.series_mpan] * 86_400_000_000
    return day_end_us[None, :] + offset_min[:, None] * 60_000_000 + late


@dataclass(frozen=True)
class _Raw:
    idx: np.ndarray  # flat [S*H] index of each raw row
    dup: np.ndarray  # bool: this row is the duplicate delivery
    value: np.ndarray
    smart: np.ndarray
    read_us: np.ndarray
    received_us: np.ndarray
    series: np.ndarray  # int64 series of each row (idx // H)
    series_day: np.ndarray  # int64 series-day of each row (idx // 48 = series * D + day)


def raw_rows(scenario, sim, plan: FaultPlan, true_kwh: np.ndarray | None = None) -> _Raw:
    """The raw deliveries (values, stamps, arrival) behind ``meter_reads_raw``, computed once.

    ``true_kwh`` ([S, H], the true values rounded to 3 decimals: ``Canonical.true_kwh``) saves
    rounding them again."""
    return _raw_rows(scenario, sim, plan, true_kwh)


def _raw_rows(scenario, sim, plan: FaultPlan, true_kwh: np.ndarray | None = None) -> _Raw:
    fm = scenario.faults
    D = len(sim.days)
    H = D * 48
    codes = plan.codes.reshape(-1)
    # Rows: every half hour of the live (energised, registered) series-days, less the absent
    # reads, with duplicated reads delivered twice -- built from the rare faulty half hours.
    live_days = np.flatnonzero(sim.day_energised[sim.series_mpan].reshape(-1))
    faulty = plan.faulty_positions()
    fc = codes[faulty]
    live_pos = (live_days[:, None] * 48 + np.arange(48)).reshape(-1)
    absent = _among(faulty[(fc & ABSENT) != 0], live_pos)
    present = np.delete(live_pos, np.searchsorted(live_pos, absent)) if len(absent) else live_pos
    dups = _among(faulty[((fc & DUPLICATE) != 0) & ((fc & ABSENT) == 0)], present)
    at = np.searchsorted(present, dups, side="right")  # a duplicate follows its original
    idx = np.insert(present, at, dups) if len(dups) else present
    dup = np.zeros(len(idx), dtype=bool)
    dup[at + np.arange(len(dups))] = True
    sd = idx // 48  # series-day
    s = sd // D
    t = idx - s * H
    smart = plan.smart[s]
    true = true_kwh.reshape(-1)[idx] if true_kwh is not None else np.round(sim.values.reshape(-1)[idx], 3)
    scale = np.where(smart, 1000.0, 1.0)
    value = true * scale
    np.round(value, 3, out=value)
    # Defects and off-grid stamps only on the faulty rows (both deliveries of a duplicate).
    shown = _among(faulty[((fc & ABSENT) == 0) & ((fc & (ZERO_RUN | UNIT_SLIP | SPIKE | MAX_VALUE | OFF_GRID | DUPLICATE)) != 0)], present)
    first = np.searchsorted(idx, shown)
    f_rows = np.sort(np.concatenate([first, first[(codes[shown] & DUPLICATE) != 0] + 1]))
    c = codes[idx[f_rows]]
    fs = s[f_rows]
    u = streams.random_u64(streams.stream_key(scenario.seed, "fault.params"), plan.entity[fs], sim.win.hh[t[f_rows]])
    fv = value[f_rows]
    fscale = scale[f_rows]
    fsmart = smart[f_rows]
    fv = np.where((c & ZERO_RUN) != 0, 0.0, fv)
    fv = np.where((c & UNIT_SLIP) != 0, fv * 1000.0, fv)
    lo, hi = fm.spike_factor
    b0, b1 = fm.spike_offset_kwh
    spike = fv * (lo + (hi - lo) * _frac(u, 0)) + np.round((b0 + (b1 - b0) * _frac(u, 16)) * fscale, 3)
    fv = np.where((c & SPIKE) != 0, np.round(spike, 3), fv)
    fv = np.where((c & MAX_VALUE) != 0, np.where(fsmart, float(SENTINEL_WH), SENTINEL_WH / 1000.0), fv)
    value[f_rows] = fv
    end_us = sim.grid.period_end_utc.astype("datetime64[us]").astype(np.int64)
    read_us = end_us[t]
    secs = 1 + np.floor(_frac(u, 32) * fm.off_grid_max_seconds).astype(np.int64)
    sign = np.where(_frac(u, 48) < 0.5, -1, 1)
    read_us[f_rows] += np.where((c & OFF_GRID) != 0, sign * secs * 1_000_000, 0)
    received = _arrival(scenario, sim, plan).reshape(-1)[sd]
    h0, h1 = fm.duplicate_delay_hours
    delay_h = h0 + np.minimum(np.floor(_frac(u, 48) * (h1 - h0 + 1)).astype(np.int64), h1 - h0)
    received[f_rows] += np.where(dup[f_rows], delay_h * 3_600_000_000, 0)
    return _Raw(idx, dup, value, smart, read_us, received, s, sd)


def _among(x: np.ndarray, sorted_positions: np.ndarray) -> np.ndarray:
    """The elements of sorted ``x`` that occur in ``sorted_positions``."""
    at = np.minimum(np.searchsorted(sorted_positions, x), max(len(sorted_positions) - 1, 0))
    return x[sorted_positions[at] == x] if len(sorted_positions) else x[:0]


def raw_reads(scenario, sim, plan: FaultPlan, raw: _Raw | None = None) -> tuple[pa.Table, np.ndarray]:
    """``meter_reads_raw`` rows (RAW_SCHEMA), ordered by MPAN, quantity, read time, arrival;
    and each row's registration row (the registration in force on its UTC settlement day)."""
    raw = raw if raw is not None else _raw_rows(scenario, sim, plan)
    s, sd = raw.series, raw.series_day
    # Per-row codes gathered straight into the int32 the dictionary columns take, and the
    # registration row from the [series, day] table by the row's series-day (idx // 48).
    smart = raw.smart.astype(np.int32)
    table = pa.table(
        {
            "mpan_core": coded_strings(list(sim.m.core), sim.series_mpan.astype(np.int32)[s]),
            "measurement_quantity": coded_strings(list(_MQ), sim.series_mq.astype(np.int32)[s]),
            "read_timestamp_utc": fixed_width(raw.read_us, UTC_US),
            "value": pa.array(raw.value, pa.float64()),
            "unit": coded_strings(["kWh", "Wh"], smart),
            "received_at_utc": fixed_width(raw.received_us, UTC_US),
            "source": coded_strings(["AMR", "DCC"], smart),
        },
        schema=RAW_WORK_SCHEMA,
    )
    return table, sim.reg_idx[sim.series_mpan].reshape(-1)[sd]


def ground_truth(scenario, sim, plan: FaultPlan, canonical: Canonical, raw: _Raw | None = None) -> tuple[pa.Table, np.ndarray]:
    """``ground_truth`` rows (GROUND_TRUTH_SCHEMA): one per fault and half hour."""
    H = len(sim.days) * 48
    codes = plan.codes.reshape(-1)
    faulty = plan.faulty_positions()
    raw = raw if raw is not None else _raw_rows(scenario, sim, plan)
    # Raw row of each faulty half hour (the original, or for duplicates the second delivery).
    first = np.searchsorted(raw.idx, faulty, side="left")
    has_raw = (first < len(raw.idx)) & (raw.idx[np.minimum(first, len(raw.idx) - 1)] == faulty) if len(raw.idx) else np.zeros(len(faulty), dtype=bool)
    parts = []
    fc = codes[faulty]
    for bit, name in FAULT_TYPES.items():
        sel = (fc & bit) != 0
        if not sel.any():
            continue
        f = faulty[sel]
        r = first[sel] + (1 if bit == DUPLICATE else 0)
        present = has_raw[sel]
        parts.append((bit, name, f, np.where(present, r, -1)))
    if not parts:
        return TRUTH_WORK_SCHEMA.empty_table(), np.zeros(0, dtype=np.int64)
    bits = np.concatenate([np.full(len(p[2]), p[0]) for p in parts])
    names = [p[1] for p in parts]
    name_code = np.concatenate([np.full(len(p[2]), i) for i, p in enumerate(parts)])
    flat = np.concatenate([p[2] for p in parts])
    rrow = np.concatenate([p[3] for p in parts])
    order = np.lexsort((name_code, flat))
    bits, name_code, flat, rrow = bits[order], name_code[order], flat[order], rrow[order]
    s = flat // H
    t = flat % H
    rows = sim.series_mpan[s]
    start = plan.event_start.reshape(-1)[flat]
    day = sim.days[t // 48]
    hh = sim.win.hh[t].astype(np.int64)
    anchor = np.where(np.isin(bits, (OUTAGE, ZERO_RUN)) & (start >= 0), start, np.where(np.isin(bits, (UNIT_SLIP, LATE)), day, hh))
    ent = np.where(bits == OUTAGE, sim.m.key[rows], plan.entity[s])
    event_id = (streams.random_u64(streams.stream_key(scenario.seed, "fault.id"), ent, (anchor.astype(np.uint64) << np.uint64(9)) | bits.astype(np.uint64)) >> np.uint64(1)).astype(np.int64)
    ok = rrow >= 0
    rsafe = np.maximum(rrow, 0)
    est = canonical.estimated.reshape(-1)[flat]
    table = pa.table(
        {
            "mpan_core": coded_strings(list(sim.m.core), rows),
            "measurement_quantity": coded_strings(list(_MQ), sim.series_mq[s]),
            "period_end_utc": fixed_width(sim.grid.period_end_utc.view(np.int64)[t], UTC_US),
            "fault_type": coded_strings(names, name_code),
            "fault_event_id": pa.array(event_id, pa.int64()),
            "true_kwh": pa.array(canonical.true_kwh.reshape(-1)[flat], pa.float64()),
            "raw_value": pa.array(raw.value[rsafe] if len(raw.value) else np.zeros(len(flat)), pa.float64(), mask=~ok),
            "raw_unit": coded_strings(["kWh", "Wh"], raw.smart[rsafe] if len(raw.value) else np.ones(len(flat)), mask=~ok),
            "raw_read_timestamp_utc": fixed_width(raw.read_us[rsafe] if len(raw.value) else np.zeros(len(flat), dtype=np.int64), UTC_US, valid=ok),
            "raw_received_at_utc": fixed_width(raw.received_us[rsafe] if len(raw.value) else np.zeros(len(flat), dtype=np.int64), UTC_US, valid=ok),
            "consumption_kwh": pa.array(canonical.kwh.reshape(-1)[flat], pa.float64()),
            "quality": coded_strings(["A", "E"], est),
            "estimation_reason": pa.array(canonical.reason.reshape(-1)[flat], pa.int16(), mask=~est),
        },
        schema=TRUTH_WORK_SCHEMA,
    )
    return table, sim.reg_idx[rows, t // 48]
