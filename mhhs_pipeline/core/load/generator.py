"""Consumption generator: one block of MPANs over a range of UTC settlement days.

For every MPAN the daily energy of each component over its whole calendar year is derived
from its own streams and its GSP group's weather, normalised so the year sums to the
MPAN's annual consumption (:mod:`.daily`), and only then shaped within each UTC day
(:mod:`.components`, :mod:`.pv`). The normaliser therefore never depends on which days or
which block are generated. Within a day, behaviour follows the *local clock* (so BST
shifts it in UTC); PV follows the sun.

Then the meter's view: faults (:mod:`.faults`) decide which half hours a data service
receives as defective raw reads; those become estimates (DI-083 ``E`` with a DI-076
reason) in the canonical consumption, and ``ground_truth`` keeps their true values.

All randomness comes from :mod:`mhhs_pipeline.core.streams` keyed by (seed, MPAN core,
stream name, day or half-hour ordinal) -- weather by (seed, GSP group, day): any block and
any day range regenerates alone, identically.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from mhhs_pipeline.core import streams
from mhhs_pipeline.core.calendar import EPOCH_DAY, day_ordinal, settlement_grid
from mhhs_pipeline.core.load import components as comp
from mhhs_pipeline.core.load import faults as faultmod
from mhhs_pipeline.core.load import pv as pvmod
from mhhs_pipeline.core.load.archetypes import CompiledModel, compile_model
from mhhs_pipeline.core.load.daily import (
    HEAT_DIRECT,
    HEAT_PUMP,
    HEAT_STORAGE,
    DailyEnergy,
    Mpans,
    Traits,
    daily_energy,
    day_variants,
    draw_traits,
    irwin_hall_normal,
    mpan_attributes,
    top16_uniform,
    variant_of,
)
from mhhs_pipeline.core.load.weather import GSP_GROUPS, lighting_profile
from mhhs_pipeline.core.registrations import registrations_on_days
from mhhs_pipeline.core.schema import (
    CONSUMPTION_SCHEMA,
    UTC_US,
    coded_strings,
    dictionary_strings,
    fixed_width,
)
from mhhs_pipeline.spec.scenario import Scenario

LOOKBACK_DAYS = 3  # blocks (EV, night heating) started up to 3 days earlier can reach into a window
MQ_CODES = ("AI", "AE", "RI", "RE")
WORK_SCHEMA = dictionary_strings(CONSUMPTION_SCHEMA)  # what the generator builds (see core.schema)


@dataclass(frozen=True)
class GeneratedConsumption:
    """Canonical consumption rows and, per row, the index of its registration row."""

    table: pa.Table
    registration_row: np.ndarray  # int64 index into the registrations table given


@dataclass(frozen=True)
class LoadOutputs:
    """Everything the load model makes for a block: the canonical consumption (what a data
    service sends on), the raw reads it received, and the ground truth behind every fault."""

    consumption: GeneratedConsumption
    meter_reads_raw: pa.Table  # faults.RAW_SCHEMA
    raw_registration_row: np.ndarray
    ground_truth: pa.Table  # faults.GROUND_TRUTH_SCHEMA
    truth_registration_row: np.ndarray


@dataclass(frozen=True)
class Simulation:
    """True half-hour values of every series of a block (internal, also used by the report tests)."""

    m: Mpans
    traits: Traits
    grid: object
    days: np.ndarray  # window day ordinals
    reg_idx: np.ndarray  # [n, D]
    day_energised: np.ndarray  # [n, D]
    series_mpan: np.ndarray  # [S] row in m
    series_mq: np.ndarray  # [S] index into MQ_CODES
    values: np.ndarray  # [S, D, 48] true kWh per half hour (unrounded)
    daily: DailyEnergy  # window days only
    win: comp.Window
    cm: CompiledModel


def _window(cm: CompiledModel, grid, days: np.ndarray) -> comp.Window:
    # Day types and lighting depend only on the model and the window's days (the grid is a
    # function of them): cached on the compiled model, as every unit of a run shares them.
    def day_type() -> np.ndarray:
        local_days = (grid.settlement_date_local - EPOCH_DAY).astype(np.int64)
        uniq, inv = np.unique(local_days, return_inverse=True)
        return day_variants(cm, uniq)[:, inv]

    window = ("window", int(days[0]), len(days))
    return comp.Window(
        n_days=grid.n_days,
        local_slot=grid.local_slot,
        day_type=cm.memo((*window, "day_type"), day_type),
        hh=grid.half_hour_ordinal.astype(np.uint64),
        lighting=cm.memo((*window, "lighting"), lambda: lighting_profile(cm.model, days)),
    )


_GRIDS: dict[tuple[dt.date, dt.date], object] = {}


def _grid(first_day: dt.date, last_day: dt.date):
    """``settlement_grid``, cached per window (bounded; its arrays are made read-only)."""
    key = (first_day, last_day)
    hit = _GRIDS.get(key)
    if hit is None:
        if len(_GRIDS) >= 16:
            _GRIDS.clear()
        hit = settlement_grid(first_day, last_day)
        for f in dataclasses.fields(hit):
            a = getattr(hit, f.name)
            if isinstance(a, np.ndarray):
                a.setflags(write=False)
        _GRIDS[key] = hit
    return hit


def _slice(de: DailyEnergy, sl: slice) -> DailyEnergy:
    return DailyEnergy(*(getattr(de, f)[..., sl] for f in DailyEnergy.__dataclass_fields__))


def _year_end_limit(days: np.ndarray) -> np.ndarray:
    """Half hours from 00:00 UTC of each day to the end of its calendar year."""
    dates = EPOCH_DAY + days.astype("timedelta64[D]")
    next_year = (dates.astype("datetime64[Y]") + np.timedelta64(1, "Y")).astype("datetime64[D]")
    return (next_year - dates).astype(np.int64) * 48


def _ev(seed: int, cm: CompiledModel, m: Mpans, tr: Traits, rows: np.ndarray, ext_days: np.ndarray, energy: np.ndarray, n_days: int) -> np.ndarray:
    """EV charging blocks [len(rows), H]: tariff start (staggered) or on arrival home."""
    ev = cm.model.ev
    u = streams.random_u64(streams.stream_key(seed, "load.ev_size"), m.key[rows][:, None], ext_days[None, :].astype(np.uint64))
    v = top16_uniform(u)
    a0, a1 = cm.ev_arrival_slots
    arrival = tr.ev_slot[rows] < 0
    local = np.where(arrival[:, None], a0 + np.floor(v * (a1 - a0 + 1)).astype(np.int64), tr.ev_slot[rows][:, None])
    start = np.empty_like(local)
    for s in np.unique(local):
        mask = local == s
        table = comp.block_starts(np.array([s]), np.array([False]), ext_days)[0]
        start[mask] = np.broadcast_to(table[None, :], local.shape)[mask]
    jitter = np.where(arrival[:, None], 0, np.floor(v * (ev.smart_jitter_halfhours + 1)).astype(np.int64))
    return comp.blocks(start + jitter, energy, np.full(energy.shape, ev.charger_kw / 2.0), ev.max_session_halfhours, LOOKBACK_DAYS, n_days, _year_end_limit(ext_days))


def simulate(scenario: Scenario, registrations: pa.Table, first_day: dt.date, last_day: dt.date) -> Simulation:
    """True half-hour values of every series (AI/AE, plus RI/RE for Advanced) of the block."""
    seed = scenario.seed
    cm = compile_model(scenario.load_model)
    model = cm.model
    m = mpan_attributes(registrations)
    tr = draw_traits(seed, cm, m)
    n = m.n
    grid = _grid(first_day, last_day)
    D = grid.n_days
    days = day_ordinal(first_day) + np.arange(D, dtype=np.int64)
    ext_days = np.arange(days[0] - LOOKBACK_DAYS, days[-1] + 1, dtype=np.int64)
    reg_idx = registrations_on_days(registrations, m.core, days)
    energised = np.asarray(registrations.column("energisation_status").to_numpy(zero_copy_only=False)).astype(str) == "E"
    day_energised = (reg_idx >= 0) & energised[np.maximum(reg_idx, 0)]

    ext = daily_energy(seed, cm, m, tr, ext_days)
    de = _slice(ext, slice(LOOKBACK_DAYS, None))
    win = _window(cm, grid, days)
    H = win.H
    values = np.zeros((n, H))
    variant = variant_of(cm, m, tr)
    a = tr.arch_safe
    load = m.arch >= 0
    dom = np.flatnonzero(load & cm.is_domestic[a])
    nd = np.flatnonzero(load & ~cm.is_domestic[a])

    if len(dom):
        trd = _rows(tr, dom)
        # Heating reuses the household noise of its rows, heat pumps also its raw draws (only those are kept).
        heated = np.flatnonzero(np.isin(trd.heat_kind, (HEAT_DIRECT, HEAT_PUMP)))
        pumps = np.flatnonzero(trd.heat_kind == HEAT_PUMP)
        hh, z, u = comp.household(seed, cm, win, m.key[dom], a[dom], variant[dom], m.gsp[dom], trd, de.house[dom] + de.cool[dom], de.light[dom], heated, pumps)
        values[dom] = hh
        del hh
        h = model.heating
        for kind, table, sigma, flat in (
            (HEAT_DIRECT, cm.direct_heating_shape, h.direct_heating_sigma, h.direct_heating_cold_flattening),
            (HEAT_PUMP, cm.heat_pump_shape, h.heat_pump_sigma, h.heat_pump_cold_flattening),
        ):
            sub = pumps if kind == HEAT_PUMP else np.flatnonzero(trd.heat_kind == kind)
            if len(sub):
                rows = dom[sub]
                kept = np.searchsorted(heated, sub)
                cyc = top16_uniform(u) if kind == HEAT_PUMP else None  # ``u``: the pumps' draws, in order
                values[rows] += comp.shaped(cm, win, table, trd.shift[sub], de.heat[rows], de.hdd[rows], z[kept], sigma, flat, cyc)
        nh2 = 2 * model.economy7.night_hours
        limit = _year_end_limit(ext_days)
        night = np.flatnonzero(tr.night_window & load)
        if len(night):
            start = comp.block_starts(tr.night_slot[night], tr.night_gmt[night], ext_days)
            storage = np.where((tr.heat_kind[night] == HEAT_STORAGE)[:, None], ext.heat[night], 0.0)
            values[night] += comp.blocks(start, storage, storage / nh2, nh2, LOOKBACK_DAYS, D, limit)
            water = np.where((tr.heat_kind[night] != HEAT_PUMP)[:, None], ext.dhw[night], 0.0)
            power = np.maximum(model.economy7.immersion_kw / 2.0, water / nh2)
            values[night] += comp.blocks(start, water, power, nh2, LOOKBACK_DAYS, D, limit)
        hp = np.flatnonzero(tr.heat_kind == HEAT_PUMP)
        if len(hp):
            start = comp.block_starts(tr.hp_dhw_slot[hp], np.zeros(len(hp), dtype=bool), ext_days)
            values[hp] += comp.blocks(start, ext.dhw[hp], ext.dhw[hp] / 2.0, 2, LOOKBACK_DAYS, D, limit)
        evr = np.flatnonzero(tr.s_ev > 0)
        if len(evr):
            values[evr] += _ev(seed, cm, m, tr, evr, ext_days, ext.ev[evr], D)

    if len(nd):
        values[nd] = comp.site(seed, cm, win, m.key[nd], a[nd], variant[nd], _rows(tr, nd), de.house[nd], de.heat[nd] + de.cool[nd])

    exp_rows = np.flatnonzero(~load)
    if len(exp_rows):
        clim = model.weather.gsp_climate
        lat = np.array([clim[GSP_GROUPS[g]].latitude_deg for g in m.gsp[exp_rows]])
        lon = np.array([clim[GSP_GROUPS[g]].longitude_deg for g in m.gsp[exp_rows]])
        shape = pvmod.generation_shape(seed, cm, m.gsp[exp_rows], m.key[exp_rows], tr.pv_azimuth_rad[exp_rows], lat, lon, grid, de.clearness[exp_rows])
        values[exp_rows] = shape * np.repeat(de.pv[exp_rows], 48, axis=1)
        paired = exp_rows[m.link[exp_rows] >= 0]
        if len(paired):
            imp_rows = m.link[paired]
            imp, exp = pvmod.combine(values[imp_rows].reshape(-1, D, 48), values[paired].reshape(-1, D, 48), de.self_use[paired])
            values[imp_rows] = imp.reshape(len(paired), H)
            values[paired] = exp.reshape(len(paired), H)

    v3 = values.reshape(n, D, 48)
    v3 *= day_energised[:, :, None]

    # Series: AI for import MPANs (+ RI, RE for Advanced), AE for export MPANs.
    series_mpan = [np.arange(n)]
    series_mq = [np.where(load, 0, 1)]
    series_vals = [v3]
    adv = np.flatnonzero(m.advanced & load)
    if len(adv):
        ri, re = _reactive(seed, model, m, tr, adv, v3[adv], win)
        series_mpan += [adv, adv]
        series_mq += [np.full(len(adv), 2), np.full(len(adv), 3)]
        series_vals += [ri * day_energised[adv][:, :, None], re * day_energised[adv][:, :, None]]
    s_mpan = np.concatenate(series_mpan)
    s_mq = np.concatenate(series_mq)
    order = np.lexsort((np.array(MQ_CODES)[s_mq], m.core[s_mpan]))
    S = len(s_mpan)
    if S == n and np.array_equal(order, np.arange(n)):
        s_vals = v3  # already in order: no copy
    else:
        # Each part straight to its place in the ordered array (one copy, not concatenate + gather).
        at = np.empty(S, dtype=np.int64)
        at[order] = np.arange(S)
        s_vals = np.empty((S, D, 48))
        first = 0
        for part in series_vals:
            s_vals[at[first : first + len(part)]] = part
            first += len(part)
    return Simulation(m, tr, grid, days, reg_idx, day_energised, s_mpan[order], s_mq[order], s_vals, de, win, cm)


def _rows(tr: Traits, rows: np.ndarray) -> Traits:
    return Traits(*(getattr(tr, f)[rows] for f in Traits.__dataclass_fields__))


def _reactive(seed: int, model, m: Mpans, tr: Traits, adv: np.ndarray, p: np.ndarray, win: comp.Window) -> tuple[np.ndarray, np.ndarray]:
    """Reactive import/export [a, D, 48] (kvarh) from active import: Q = tan(phi) P + magnetising - capacitors.

    Sites with power-factor correction carry a fixed capacitor bank sized to most of their
    mean reactive demand, so at light load (nights, weekends) they go leading: RE > 0.
    """
    tan_phi = tr.tan_phi[adv][:, None, None]
    mean_p = (m.annual_kwh[adv] / 17520.0)[:, None, None]
    u = streams.random_u64(streams.stream_key(seed, "load.reactive"), m.key[adv][:, None], win.hh[None, :])
    z = irwin_hall_normal(u).reshape(p.shape)
    cap_u = streams.uniform(streams.stream_key(seed, "trait.capacitor"), m.key[adv])
    rp = model.reactive
    c0, c1 = rp.capacitor_size
    cap = np.where(tr.pf_corrected[adv], c0 + (c1 - c0) * cap_u, 0.0)[:, None, None] * tan_phi * mean_p
    s = rp.noise_sigma
    q = tan_phi * p * np.exp(s * z - 0.5 * s * s) + rp.magnetising_share * tan_phi * mean_p - cap
    return np.maximum(q, 0.0), np.maximum(-q, 0.0)


def _table(sim: Simulation, kwh: np.ndarray, quality_e: np.ndarray, reason: np.ndarray) -> GeneratedConsumption:
    """Canonical rows for the series-days with a registration in force."""
    n_days = sim.grid.n_days
    reg_of_day = sim.reg_idx[sim.series_mpan]  # [S, D]
    # Rows come in whole series-days: index the (series, day) pairs, then expand by 48
    # (no division of every row index).
    pairs = np.flatnonzero(reg_of_day.reshape(-1) >= 0)
    series_of_pair, day_of_pair = pairs // n_days, pairs % n_days
    hh_of_row = (day_of_pair[:, None] * 48 + np.arange(48)).reshape(-1)
    flat_idx = (pairs[:, None] * 48 + np.arange(48)).reshape(-1)
    est = quality_e.reshape(-1)[flat_idx]
    grid = sim.grid
    core_dict = pa.array(sim.m.core)
    mq_vals = pa.array(list(MQ_CODES))
    table = pa.table(
        {
            "mpan_core": coded_strings(core_dict, np.repeat(sim.series_mpan[series_of_pair], 48)),
            "measurement_quantity": coded_strings(mq_vals, np.repeat(sim.series_mq[series_of_pair], 48)),
            # Gathered in the columns' own widths and wrapped without a copy (fixed_width).
            "period_end_utc": fixed_width(grid.period_end_utc.view(np.int64)[hh_of_row], UTC_US),
            "settlement_date": fixed_width((grid.settlement_date_local - EPOCH_DAY).astype(np.int32)[hh_of_row], pa.date32()),
            "settlement_period": pa.array(grid.settlement_period_local[hh_of_row], pa.int16()),
            "consumption_kwh": pa.array(kwh.reshape(-1)[flat_idx], pa.float64()),
            "quality": coded_strings(["A", "E"], est),
            "estimation_reason": fixed_width(np.where(est, reason.reshape(-1)[flat_idx], 0).astype(np.int16), pa.int16(), valid=est),
            "provenance": coded_strings(["manufactured"], np.zeros(len(flat_idx), dtype=np.int32)),
        },
        schema=WORK_SCHEMA,
    )
    reg_row = np.repeat(reg_of_day[series_of_pair, day_of_pair], 48)
    return GeneratedConsumption(table=table, registration_row=reg_row)


def generate_load(scenario: Scenario, registrations: pa.Table, first_day: dt.date, last_day: dt.date) -> LoadOutputs:
    """Canonical consumption, raw meter reads and ground truth for the block and UTC days first..last."""
    sim = simulate(scenario, registrations, first_day, last_day)
    plan = faultmod.plan_faults(scenario, sim)
    canonical = faultmod.canonical_values(sim, plan)
    consumption = _table(sim, canonical.kwh, canonical.estimated, canonical.reason)
    rows = faultmod.raw_rows(scenario, sim, plan, canonical.true_kwh)
    raw, raw_reg = faultmod.raw_reads(scenario, sim, plan, rows)
    truth, truth_reg = faultmod.ground_truth(scenario, sim, plan, canonical, rows)
    return LoadOutputs(consumption, raw, raw_reg, truth, truth_reg)


def generate_consumption(scenario: Scenario, registrations: pa.Table, first_day: dt.date, last_day: dt.date) -> GeneratedConsumption:
    """Canonical consumption for every MPAN in ``registrations`` over UTC days first..last.

    Rows exist for the UTC settlement days on which a registration is in force; they are
    ordered by MPAN core, measurement quantity, period_end_utc. Half hours whose raw reads
    are defective (see :mod:`.faults`) are estimates (quality ``E``, DI-076 reason).
    """
    sim = simulate(scenario, registrations, first_day, last_day)
    plan = faultmod.plan_faults(scenario, sim)
    canonical = faultmod.canonical_values(sim, plan)
    return _table(sim, canonical.kwh, canonical.estimated, canonical.reason)
