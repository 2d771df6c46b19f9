"""Consumption generator: one block of MPANs over a range of UTC settlement days.

For every MPAN the daily energy of its whole calendar year is derived from its own
streams (seasonality x day type x day-to-day noise), normalised so the year sums to the
MPAN's annual consumption, and only then shaped within each UTC day. The normaliser
therefore never depends on which days or which block are generated. Within a day, the
shape follows the *local clock* (so BST shifts it in UTC), with per-MPAN standby level
and time shift, half-hour noise and appliance spikes; PV export follows *solar* time.

All randomness comes from :mod:`mhhs_pipeline.core.streams` keyed by (seed, MPAN core,
stream name, day or half-hour ordinal): any block regenerates alone, identically.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from mhhs_pipeline.core import streams
from mhhs_pipeline.core.calendar import (
    EPOCH_DAY,
    SATURDAY,
    SUNDAY_OR_HOLIDAY,
    day_of_year,
    day_ordinal,
    day_types,
    settlement_grid,
    year_day_ordinals,
)
from mhhs_pipeline.core.load.archetypes import ARCHETYPE_NAMES, half_hour_shapes, parameter_table
from mhhs_pipeline.core.market import SCOTTISH_GSP_GROUPS
from mhhs_pipeline.core.registrations import registrations_on_days
from mhhs_pipeline.core.schema import CONSUMPTION_SCHEMA
from mhhs_pipeline.spec.scenario import Scenario

_SHAPES = half_hour_shapes()  # [n_arch, 2, 48]
_SEASONAL_A = parameter_table("seasonal_amplitude")
_SAT = parameter_table("saturday_factor")
_SUN = parameter_table("sunday_factor")
_DAILY_SIGMA = parameter_table("daily_sigma")
_HH_SIGMA = parameter_table("halfhour_sigma")
_SPIKE_P = parameter_table("spike_probability")
_TAN_PHI = parameter_table("tan_phi")
_ARCH_INDEX = {name: i for i, name in enumerate(ARCHETYPE_NAMES)}
_PV = -1  # archetype index of PV export

_U16 = np.uint64(0xFFFF)
_SQRT3 = np.sqrt(3.0)


def _irwin_hall_normal(u64: np.ndarray) -> np.ndarray:
    """Approximately standard normal from one 64-bit draw (sum of three 16-bit uniforms).

    One mix per value instead of Box-Muller's two plus log/cos: this noise is cosmetic,
    and the cost matters at half-hour volume.
    """
    a = (u64 & _U16).astype(np.float64)
    b = ((u64 >> np.uint64(16)) & _U16).astype(np.float64)
    c = ((u64 >> np.uint64(32)) & _U16).astype(np.float64)
    s = (a + b + c) / 65536.0  # mean 1.5, variance 3/12
    return (s - 1.5) * 2.0


def _seasonal(amplitude: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """1 + A cos(2 pi (doy - 15) / 365.25): heaviest mid-January, lightest mid-July."""
    return 1.0 + amplitude[..., None] * np.cos(2.0 * np.pi * (doy - 15.0) / 365.25)


def _pv_seasonal(doy: np.ndarray) -> np.ndarray:
    """Relative daily PV yield in GB: ~5x more in June than in December."""
    return 1.0 + 0.68 * np.cos(2.0 * np.pi * (doy - 172.0) / 365.25)


@dataclass(frozen=True)
class _Mpans:
    core: np.ndarray  # str
    key: np.ndarray  # uint64: the core as an integer, the entity of every stream
    arch: np.ndarray  # archetype index, _PV for export
    annual_kwh: np.ndarray
    scotland: np.ndarray  # bool
    advanced: np.ndarray  # bool
    gsp_key: np.ndarray  # uint64 entity for GSP-group-wide streams (cloudiness)


def _mpan_attributes(reg: pa.Table) -> _Mpans:
    """Static per-MPAN attributes, taken from each MPAN's latest registration row."""
    core = np.asarray(reg.column("mpan_core").to_numpy(zero_copy_only=False)).astype(str)
    frm = reg.column("effective_from").cast(pa.int32()).to_numpy(zero_copy_only=False)
    order = np.lexsort((frm, core))
    last = np.r_[core[order][1:] != core[order][:-1], True]
    rows = order[last]
    pick = lambda name: np.asarray(reg.column(name).to_numpy(zero_copy_only=False))[rows]  # noqa: E731
    arch_names = pick("archetype").astype(str)
    gsp = pick("gsp_group").astype(str)
    arch = np.array([_ARCH_INDEX.get(a, _PV if a == "pv_export" else 0) for a in arch_names], dtype=np.int64)
    return _Mpans(
        core=core[rows],
        key=core[rows].astype(np.uint64),
        arch=arch,
        annual_kwh=pick("annual_consumption_kwh").astype(np.float64),
        scotland=np.isin(gsp, list(SCOTTISH_GSP_GROUPS)),
        advanced=pick("market_segment").astype(str) == "A",
        gsp_key=np.array([int.from_bytes(g.encode(), "little") for g in gsp], dtype=np.uint64),
    )


def _daily_weights(seed: int, m: _Mpans, days: np.ndarray) -> np.ndarray:
    """Unnormalised daily energy weights [n_mpans, n_days] for day ordinals ``days``."""
    doy = day_of_year(days).astype(np.float64)
    n = len(m.core)
    w = np.empty((n, len(days)))
    load = m.arch >= 0
    if load.any():
        a = m.arch[load]
        dt_eng = day_types(days, scotland=False)
        dt_sct = day_types(days, scotland=True)
        dtype_ = np.where(m.scotland[load][:, None], dt_sct[None, :], dt_eng[None, :])
        factor = np.where(dtype_ == SATURDAY, _SAT[a][:, None], np.where(dtype_ == SUNDAY_OR_HOLIDAY, _SUN[a][:, None], 1.0))
        z = _irwin_hall_normal(streams.random_u64(streams.stream_key(seed, "load.daily"), m.key[load][:, None], days[None, :]))
        w[load] = _seasonal(_SEASONAL_A[a], doy) * factor * np.exp(_DAILY_SIGMA[a][:, None] * z)
    pv = ~load
    if pv.any():
        # Cloudiness is shared by every PV system of a GSP group on a day.
        cloud = streams.uniform(streams.stream_key(seed, "weather.cloud"), m.gsp_key[pv][:, None], days[None, :])
        w[pv] = _pv_seasonal(doy)[None, :] * (0.25 + 0.75 * cloud)
    return w


def _daily_energy_kwh(seed: int, m: _Mpans, days: np.ndarray) -> np.ndarray:
    """Daily energy [n_mpans, n_days]: each calendar year of an MPAN sums to its annual kWh."""
    years = (EPOCH_DAY + days.astype("timedelta64[D]")).astype("datetime64[Y]").astype(np.int64) + 1970
    out = np.empty((len(m.core), len(days)))
    for year in np.unique(years):
        in_year = years == year
        total = _daily_weights(seed, m, year_day_ordinals(int(year))).sum(axis=1)
        out[:, in_year] = _daily_weights(seed, m, days[in_year]) * (m.annual_kwh / total)[:, None]
    return out


@dataclass(frozen=True)
class GeneratedConsumption:
    """Canonical consumption rows and, per row, the index of its registration row."""

    table: pa.Table
    registration_row: np.ndarray  # int64 index into the registrations table given


def generate_consumption(scenario: Scenario, registrations: pa.Table, first_day: dt.date, last_day: dt.date) -> GeneratedConsumption:
    """Canonical consumption for every MPAN in ``registrations`` over UTC days first..last.

    Rows exist for the UTC settlement days on which a registration is in force; they are
    ordered by MPAN core, measurement quantity, period_end_utc.
    """
    seed = scenario.seed
    m = _mpan_attributes(registrations)
    n = len(m.core)
    grid = settlement_grid(first_day, last_day)
    n_days = grid.n_days
    days = day_ordinal(first_day) + np.arange(n_days, dtype=np.int64)
    reg_idx = registrations_on_days(registrations, m.core, days)  # [n, n_days]
    energised = np.asarray(registrations.column("energisation_status").to_numpy(zero_copy_only=False)).astype(str) == "E"
    day_energised = (reg_idx >= 0) & energised[np.maximum(reg_idx, 0)]

    energy = _daily_energy_kwh(seed, m, days)  # [n, n_days]
    hh_ord = grid.half_hour_ordinal.astype(np.uint64)  # [H]
    H = n_days * 48

    # Intra-day weights [n, H] by local clock slot and local day type.
    weights = np.empty((n, H))
    load = m.arch >= 0
    if load.any():
        a = m.arch[load]
        keys = m.key[load]
        local_days = (grid.settlement_date_local - EPOCH_DAY).astype(np.int64)
        weekend_eng = day_types(local_days, scotland=False) != 0
        weekend_sct = day_types(local_days, scotland=True) != 0
        weekend = np.where(m.scotland[load][:, None], weekend_sct[None, :], weekend_eng[None, :]).astype(np.int64)
        shift = (streams.random_u64(streams.stream_key(seed, "load.shift"), keys) % np.uint64(5)).astype(np.int64) - 2
        slot = (grid.local_slot[None, :].astype(np.int64) + shift[:, None]) % 48
        shape = _SHAPES[a[:, None], weekend, slot]
        base_u = streams.uniform(streams.stream_key(seed, "load.base"), keys)
        base = 0.1 + 0.3 * base_u
        shape = base[:, None] * _SHAPES[a].mean(axis=(1, 2))[:, None] + (1.0 - base[:, None]) * shape
        z = _irwin_hall_normal(streams.random_u64(streams.stream_key(seed, "load.hh"), keys[:, None], hh_ord[None, :]))
        ev = streams.random_u64(streams.stream_key(seed, "load.event"), keys[:, None], hh_ord[None, :])
        spike_u = (ev >> np.uint64(40)).astype(np.float64) / float(1 << 24)
        spike = np.where(spike_u < _SPIKE_P[a][:, None], 2.0 + 6.0 * ((ev & _U16).astype(np.float64) / 65536.0), 1.0)
        weights[load] = shape * np.exp(_HH_SIGMA[a][:, None] * z) * spike
    pv = ~load
    if pv.any():
        weights[pv] = _pv_intraday(grid)[None, :]

    w3 = weights.reshape(n, n_days, 48)
    day_sum = w3.sum(axis=2, keepdims=True)
    values = np.where(day_sum > 0, w3 / np.where(day_sum > 0, day_sum, 1.0), 0.0) * energy[:, :, None]
    values = np.where(day_energised[:, :, None], values, 0.0)

    # Series: AI for import MPANs (+ RI, RE for Advanced), AE for export MPANs.
    series_mpan = [np.arange(n)]
    series_mq = [np.where(load, "AI", "AE")]
    adv = np.flatnonzero(m.advanced & load)
    series_vals = [values]
    if len(adv):
        tan_phi = _TAN_PHI[m.arch[adv]]
        zr = _irwin_hall_normal(streams.random_u64(streams.stream_key(seed, "load.reactive"), m.key[adv][:, None], np.arange(n_days, dtype=np.uint64)[None, :] + np.uint64(days[0])))
        ri = values[adv] * (tan_phi[:, None] * np.exp(0.15 * zr))[:, :, None]
        re = values[adv] * 0.02 * (1.0 + 0.5 * zr)[:, :, None].clip(0.0)
        series_mpan += [adv, adv]
        series_mq += [np.full(len(adv), "RI"), np.full(len(adv), "RE")]
        series_vals += [ri, re]
    s_mpan = np.concatenate(series_mpan)
    s_mq = np.concatenate(series_mq)
    s_vals = np.concatenate(series_vals, axis=0)  # [S, n_days, 48]
    order = np.lexsort((s_mq, m.core[s_mpan]))
    s_mpan, s_mq, s_vals = s_mpan[order], s_mq[order], s_vals[order]

    # Estimates: a share of energised half hours delivered as estimates (missing reads).
    est_u = streams.uniform(streams.stream_key(seed, "load.estimate"), m.key[s_mpan][:, None], hh_ord[None, :]).reshape(len(s_mpan), n_days, 48)
    is_est = (est_u < scenario.generation.estimate_share) & day_energised[s_mpan][:, :, None]
    reason = np.where(est_u < scenario.generation.estimate_share / 2, 2, 4)  # Missing / CommsFault

    has_reg = reg_idx[s_mpan] >= 0  # [S, n_days]
    sel = np.broadcast_to(has_reg[:, :, None], s_vals.shape).reshape(-1)
    flat_idx = np.flatnonzero(sel)
    series_of_row = flat_idx // H
    hh_of_row = flat_idx % H
    day_of_row = hh_of_row // 48

    kwh = np.round(s_vals.reshape(-1)[flat_idx], 3)
    est_row = is_est.reshape(-1)[flat_idx]
    quality = np.where(est_row, "E", "A")
    core_dict = pa.array(m.core)
    mq_vals = np.array(["AE", "AI", "RE", "RI"])
    table = pa.table(
        {
            "mpan_core": pa.DictionaryArray.from_arrays(pa.array(s_mpan[series_of_row].astype(np.int32)), core_dict).cast(pa.string()),
            "measurement_quantity": pa.DictionaryArray.from_arrays(
                pa.array(np.searchsorted(mq_vals, s_mq[series_of_row]).astype(np.int32)), pa.array(mq_vals)
            ).cast(pa.string()),
            "period_end_utc": pa.array(grid.period_end_utc[hh_of_row], pa.timestamp("us", tz="UTC")),
            "settlement_date": pa.array(grid.settlement_date_local[hh_of_row], pa.date32()),
            "settlement_period": pa.array(grid.settlement_period_local[hh_of_row], pa.int16()),
            "consumption_kwh": pa.array(kwh, pa.float64()),
            "quality": pa.array(quality),
            "estimation_reason": pa.array(np.where(est_row, reason.reshape(-1)[flat_idx], 0).astype(np.int16), pa.int16(), mask=~est_row),
            "provenance": pa.array(np.full(len(flat_idx), "manufactured")),
        },
        schema=CONSUMPTION_SCHEMA,
    )
    reg_row = reg_idx[s_mpan[series_of_row], day_of_row]
    return GeneratedConsumption(table=table, registration_row=reg_row)


def _pv_intraday(grid) -> np.ndarray:
    """PV output shape by *solar* time (UTC): zero at night, peak near solar noon.

    GB solar noon is ~12:10 UTC; half the day length swings between ~3.9 h (December)
    and ~8.3 h (June) at 52-53 N.
    """
    mid = (grid.period_end_utc - np.timedelta64(15, "m")).astype("datetime64[m]").astype(np.int64) % 1440 / 60.0
    doy = grid.local_doy.astype(np.float64)
    half_day = 6.1 - 2.2 * np.cos(2.0 * np.pi * (doy + 10.0) / 365.25)
    x = (mid - 12.17) / half_day
    return np.where(np.abs(x) < 1.0, np.cos(0.5 * np.pi * np.clip(x, -1.0, 1.0)) ** 1.5, 0.0)
