"""Per-MPAN traits and daily energies: the layer that makes a calendar year sum to the annual.

Each MPAN's year is a sum of components with relative daily weights -- household
(seasonal, day type, lighting), space heating (heating degree-days; over the COP for heat
pumps), cooling (cooling degree-days), water heating, EV sessions -- scaled by the
component's share of the annual energy. The weights of the MPAN's *whole* calendar year
are computed from its own streams and the year's weather, and one normaliser per MPAN and
year makes them sum to ``annual_consumption_kwh``. A window takes its days from these
arrays, so the normaliser never depends on the window or the block. PV pairs (an export
MPAN and its linked import MPAN) are solved jointly: see :mod:`.pv`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from mhhs_pipeline.core import streams
from mhhs_pipeline.core.calendar import (
    EPOCH_DAY,
    SATURDAY,
    SUNDAY_OR_HOLIDAY,
    day_of_year,
    day_types,
    year_day_ordinals,
)
from mhhs_pipeline.core.load import pv as pvmod
from mhhs_pipeline.core.load.archetypes import ARCH_INDEX, PV_EXPORT, CompiledModel, archetype_index
from mhhs_pipeline.core.load.weather import (
    GSP_INDEX,
    SCOTTISH,
    DailyWeather,
    christmas_shutdown,
    school_holidays,
    year_weather,
)

_U16 = np.uint64(0xFFFF)


_LITTLE_ENDIAN = sys.byteorder == "little"
_U16_32 = np.uint32(0xFFFF)
_S16_32 = np.uint32(16)


def irwin_hall_normal(u64: np.ndarray) -> np.ndarray:
    """Approximately standard normal from the low 48 bits of one 64-bit draw (three 16-bit uniforms)."""
    if not (_LITTLE_ENDIAN and isinstance(u64, np.ndarray) and u64.ndim and u64.dtype == np.uint64):
        a = (u64 & _U16).astype(np.float64)
        b = ((u64 >> np.uint64(16)) & _U16).astype(np.float64)
        c = ((u64 >> np.uint64(32)) & _U16).astype(np.float64)
        return ((a + b + c) / 65536.0 - 1.5) * 2.0
    # ((a + b + c) / 65536 - 1.5) * 2 is exact in float64 for 16-bit a, b, c, so it equals
    # (a + b + c - 98304) / 32768, computed here in 32-bit integers (half the memory traffic
    # of the 64-bit draws) and converted once: the same bits, a market-scale unit draws millions.
    halves = np.ascontiguousarray(u64).view(np.uint32).reshape(-1, 2)  # [low 32 bits, high 32 bits]
    low = halves[:, 0]
    total = low & _U16_32
    total += low >> _S16_32
    total += halves[:, 1] & _U16_32
    centred = total.view(np.int32)
    centred -= 98304
    out = centred.astype(np.float64)
    out *= 1.0 / 32768.0
    return out.reshape(u64.shape)


def top16_uniform(u64: np.ndarray) -> np.ndarray:
    """A uniform in [0, 1) from the top 16 bits of a draw (independent of irwin_hall_normal's bits)."""
    return (u64 >> np.uint64(48)).astype(np.float64) / 65536.0


@dataclass(frozen=True)
class Mpans:
    """Static attributes of the block's MPANs (one row per distinct MPAN core, sorted)."""

    core: np.ndarray  # str
    key: np.ndarray  # uint64: the core as an integer, the entity of every stream
    arch: np.ndarray  # archetype index, PV_EXPORT for export MPANs
    annual_kwh: np.ndarray
    gsp: np.ndarray  # index into GSP_GROUPS
    scotland: np.ndarray
    advanced: np.ndarray
    link: np.ndarray  # export MPAN: row of its linked import MPAN in this block (-1 if absent)
    pv_row: np.ndarray  # import MPAN: row of its export MPAN (-1 if none)

    @property
    def n(self) -> int:
        return len(self.core)


def mpan_attributes(reg: pa.Table) -> Mpans:
    """Static per-MPAN attributes, taken from each MPAN's latest registration row."""
    core = np.asarray(reg.column("mpan_core").to_numpy(zero_copy_only=False)).astype(str)
    frm = reg.column("effective_from").cast(pa.int32()).to_numpy(zero_copy_only=False)
    order = np.lexsort((frm, core))
    last = np.r_[core[order][1:] != core[order][:-1], True] if len(core) else np.zeros(0, dtype=bool)
    rows = order[last]

    def pick(name: str) -> np.ndarray:
        return np.asarray(reg.column(name).to_numpy(zero_copy_only=False))[rows]

    cores = core[rows]
    gsp_names = pick("gsp_group").astype(str)
    names, name_of = np.unique(gsp_names, return_inverse=True)  # look up each distinct group once
    gsp = np.array([GSP_INDEX.get(g, GSP_INDEX["_C"]) for g in names], dtype=np.int64)[name_of.reshape(-1)]
    domestic = pick("domestic_premise").astype(bool)
    arch = archetype_index(pick("archetype"), domestic)
    exporting = pick("energy_direction").astype(str) == "E"
    arch = np.where(exporting, PV_EXPORT, np.where(arch == PV_EXPORT, ARCH_INDEX["domestic_unrestricted"], arch))
    linked = pick("linked_import_mpan") if "linked_import_mpan" in reg.column_names else np.full(len(rows), None)
    link = np.full(len(rows), -1, dtype=np.int64)
    exp_rows = np.flatnonzero(exporting)  # only export MPANs link (a few per block)
    if len(exp_rows):
        pos = {c: i for i, c in enumerate(cores)}
        link[exp_rows] = [pos.get(lk, -1) if lk is not None else -1 for lk in linked[exp_rows]]
    pv_row = np.full(len(rows), -1, dtype=np.int64)
    has = link >= 0
    pv_row[link[has]] = np.flatnonzero(has)
    return Mpans(
        core=cores,
        key=cores.astype(np.uint64),
        arch=arch,
        annual_kwh=pick("annual_consumption_kwh").astype(np.float64),
        gsp=gsp,
        scotland=SCOTTISH[gsp],
        advanced=pick("market_segment").astype(str) == "A",
        link=link,
        pv_row=pv_row,
    )


# ----------------------------------------------------------------------------- traits

HEAT_NONE, HEAT_DIRECT, HEAT_STORAGE, HEAT_PUMP = 0, 1, 2, 4


@dataclass(frozen=True)
class Traits:
    """Per-MPAN heterogeneity, drawn once from streams keyed by (seed, MPAN, trait)."""

    s_heat: np.ndarray
    s_cool: np.ndarray
    s_dhw: np.ndarray
    s_ev: np.ndarray
    heat_kind: np.ndarray
    night_window: np.ndarray  # bool: has an off-peak night window (E7 or storage heating)
    night_slot: np.ndarray  # local clock slot of the window start
    night_gmt: np.ndarray  # bool: the switching clock stays on GMT
    ev_p: np.ndarray  # chance of a charging session per day
    ev_slot: np.ndarray  # local slot of tariff start, -1 = on arrival
    hp_dhw_slot: np.ndarray
    standby_kwh: np.ndarray  # floor per half hour at the reference usage and above
    away: np.ndarray  # int 0/1
    shift: np.ndarray  # int, half hours
    combo: np.ndarray  # appliance ownership bits
    event_scale: np.ndarray
    base_fraction: np.ndarray  # non-domestic flat share
    tan_phi: np.ndarray
    pf_corrected: np.ndarray
    pv_azimuth_rad: np.ndarray
    arch_safe: np.ndarray  # archetype index with PV rows mapped to domestic_unrestricted (for table lookups)


def draw_traits(seed: int, cm: CompiledModel, m: Mpans) -> Traits:
    model = cm.model

    def u(name: str) -> np.ndarray:
        return streams.uniform(streams.stream_key(seed, f"trait.{name}"), m.key)

    def between(lo: np.ndarray, hi: np.ndarray, name: str) -> np.ndarray:
        return lo + (hi - lo) * u(name)

    a = np.where(m.arch >= 0, m.arch, ARCH_INDEX["domestic_unrestricted"])
    load = m.arch >= 0
    kind = cm.heating_kind[a]
    owner = u("heating_owner") < cm.heating_owner[a]
    storage = u("storage") < model.heating.storage_share_of_electric_heating
    heat_kind = np.select(
        [kind == 1, kind == 2, kind == 3, kind == 4],
        [HEAT_DIRECT, HEAT_STORAGE, np.where(storage, HEAT_STORAGE, HEAT_DIRECT), HEAT_PUMP],
        HEAT_NONE,
    )
    heat_kind = np.where(owner & load, heat_kind, HEAT_NONE)
    s_heat = np.where(heat_kind != HEAT_NONE, between(cm.heating_lo[a], cm.heating_hi[a], "s_heat"), 0.0)
    s_cool = np.where(load, between(cm.cooling_lo[a], cm.cooling_hi[a], "s_cool"), 0.0)
    e7 = cm.economy7[a] & load
    e7_dhw = between(np.full(m.n, model.economy7.hot_water_share[0]), np.full(m.n, model.economy7.hot_water_share[1]), "s_dhw")
    s_dhw = np.where(heat_kind == HEAT_PUMP, between(cm.hot_water_lo[a], cm.hot_water_hi[a], "s_dhw"), np.where(e7, e7_dhw, 0.0))
    ev = cm.ev[a] & load
    s_ev = np.where(ev, between(cm.ev_lo[a], cm.ev_hi[a], "s_ev"), 0.0)
    night = e7 | (heat_kind == HEAT_STORAGE)
    night_slot = cm.e7_start_slots[streams.choice(streams.stream_key(seed, "trait.e7_start"), m.key, cm.e7_start_weights)]
    night_gmt = u("e7_gmt") < model.economy7.gmt_clock_share
    lo, hi = model.ev.sessions_per_week
    ev_p = np.where(ev, (lo + (hi - lo) * u("ev_rate")) / 7.0, 0.0)
    ev_slot = cm.ev_start_slots[streams.choice(streams.stream_key(seed, "trait.ev_start"), m.key, cm.ev_start_weights)]
    jit = model.heating.heat_pump_hot_water_jitter_halfhours
    hp_dhw_slot = cm.hp_dhw_slots[streams.choice(streams.stream_key(seed, "trait.hp_dhw"), m.key, cm.hp_dhw_weights)]
    hp_dhw_slot = (hp_dhw_slot + np.floor(u("hp_dhw_jitter") * (2 * jit + 1)).astype(np.int64) - jit) % 48

    dom = model.domestic
    usage = np.maximum(m.annual_kwh * (1.0 - s_heat - s_cool - s_dhw - s_ev), 1.0) / dom.reference_annual_kwh
    standby_kw = dom.standby_kw[0] + (dom.standby_kw[1] - dom.standby_kw[0]) * u("standby")
    standby_kwh = 0.5 * standby_kw * usage**dom.usage_elasticity_standby
    away = (u("away") < dom.away_share).astype(np.int64)
    shift = np.floor(u("shift") * (2 * dom.shift_halfhours + 1)).astype(np.int64) - dom.shift_halfhours
    bits = np.zeros(m.n, dtype=np.int64)
    for j, share in enumerate(cm.appliance_ownership):  # one stream per appliance
        owns = u(f"own{j}")
        bits |= (owns < share).astype(np.int64) << j
    event_scale = usage**dom.usage_elasticity_events
    base_fraction = between(cm.base_lo[a], cm.base_hi[a], "base")
    pf = between(cm.pf_lo[a], cm.pf_hi[a], "pf")
    tan_phi = np.sqrt(1.0 - pf**2) / pf
    pf_corrected = u("pf_correction") < cm.pf_correction[a]
    azimuth = np.deg2rad(model.pv.orientation_spread_deg) * streams.normal(streams.stream_key(seed, "trait.pv_azimuth"), m.key)
    return Traits(
        s_heat=s_heat, s_cool=s_cool, s_dhw=s_dhw, s_ev=s_ev, heat_kind=heat_kind, night_window=night,
        night_slot=night_slot, night_gmt=night_gmt, ev_p=ev_p, ev_slot=ev_slot, hp_dhw_slot=hp_dhw_slot,
        standby_kwh=standby_kwh, away=away, shift=shift, combo=bits, event_scale=event_scale,
        base_fraction=base_fraction, tan_phi=tan_phi, pf_corrected=pf_corrected,
        pv_azimuth_rad=np.clip(azimuth, -np.pi / 2, np.pi / 2), arch_safe=a,
    )  # fmt: skip


# ----------------------------------------------------------------------------- day types


def day_variants(cm: CompiledModel, days: np.ndarray) -> np.ndarray:
    """Day types [8, n] for the variants (Scotland, term-time, Christmas shutdown) = bits 0, 1, 2."""
    out = np.empty((8, len(days)), dtype=np.int8)
    for scot in (0, 1):
        base = day_types(days, scotland=bool(scot))
        hol = school_holidays(cm.model, days, scotland=bool(scot))
        xmas = christmas_shutdown(days)
        for v in range(4):
            t = base.copy()
            if v & 1:
                t[hol] = SUNDAY_OR_HOLIDAY
            if v & 2:
                t[xmas] = SUNDAY_OR_HOLIDAY
            out[scot + 2 * v] = t
    return out


def variant_of(cm: CompiledModel, m: Mpans, tr: Traits) -> np.ndarray:
    a = tr.arch_safe
    return m.scotland.astype(np.int64) + 2 * cm.term_time[a].astype(np.int64) + 4 * cm.christmas[a].astype(np.int64)


# ----------------------------------------------------------------------------- daily energies


@dataclass(frozen=True)
class DailyEnergy:
    """Component energies [n, len(days)] in kWh for the requested days."""

    days: np.ndarray
    house: np.ndarray  # household / site load (lighting included)
    light: np.ndarray  # lighting part of ``house``
    heat: np.ndarray
    cool: np.ndarray
    dhw: np.ndarray
    ev: np.ndarray
    pv: np.ndarray  # export rows: generation
    self_use: np.ndarray  # export rows: daily self-consumption of the pair
    hdd: np.ndarray  # heating degree-days of the MPAN's GSP group
    temperature_c: np.ndarray
    clearness: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.house + self.heat + self.cool + self.dhw + self.ev


def _cop(cm: CompiledModel, temp: np.ndarray) -> np.ndarray:
    h = cm.model.heating
    return np.clip(h.heat_pump_cop_at_7c + h.heat_pump_cop_slope_per_c * (temp - 7.0), *h.heat_pump_cop_range)


@dataclass(frozen=True)
class YearComponents:
    """Relative daily weights of one calendar year (component shares already applied).

    Dense [n, D] arrays only for the components most MPANs have; cooling and EV rows are
    kept sparse; water heating is a per-day curve times the MPAN's share.
    """

    weather: DailyWeather
    house: np.ndarray  # [n, D]
    heat: np.ndarray  # [n, D]
    cool_rows: np.ndarray
    cool: np.ndarray  # [len(cool_rows), D]
    ev_rows: np.ndarray
    ev: np.ndarray  # [len(ev_rows), D]
    dhw_curve: np.ndarray  # [D]
    s_dhw: np.ndarray  # [n]
    seas: np.ndarray  # [n_arch, D] non-weather seasonality
    ell: np.ndarray  # [n] lighting share

    def dense(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """A component as a dense array for ``rows`` (all MPANs when None)."""
        n = self.house.shape[0]
        rows = np.arange(n) if rows is None else rows
        if name in ("house", "heat"):
            return getattr(self, name)[rows]
        if name == "dhw":
            return self.s_dhw[rows][:, None] * self.dhw_curve[None, :]
        sparse_rows, vals = (self.cool_rows, self.cool) if name == "cool" else (self.ev_rows, self.ev)
        out = np.zeros((len(rows), self.house.shape[1]))
        pos = np.full(n, -1)
        pos[sparse_rows] = np.arange(len(sparse_rows))
        have = pos[rows] >= 0
        out[have] = vals[pos[rows][have]]
        return out

    def total(self, rows: np.ndarray | None = None) -> np.ndarray:
        return sum(self.dense(k, rows) for k in ("house", "heat", "cool", "dhw", "ev"))

    def annual_sum(self) -> np.ndarray:
        tot = self.house.sum(axis=1) + self.heat.sum(axis=1) + self.s_dhw * self.dhw_curve.sum()
        np.add.at(tot, self.cool_rows, self.cool.sum(axis=1))
        np.add.at(tot, self.ev_rows, self.ev.sum(axis=1))
        return tot


def _year_components(seed: int, cm: CompiledModel, m: Mpans, tr: Traits, year: int) -> YearComponents:
    """Relative daily weights of every component for a whole calendar year."""
    model = cm.model
    yw = year_weather(seed, model, year)
    days = yw.days
    doy = day_of_year(days).astype(np.float64)
    a = tr.arch_safe
    g = m.gsp
    n_arch = len(cm.seasonal_amplitude)
    hdd_g = np.maximum(model.heating.base_temperature_c - yw.temperature_c, 0.0)
    cdd_g = np.maximum(yw.temperature_c - model.heating.cooling_base_temperature_c, 0.0)
    hp_g = hdd_g / _cop(cm, yw.temperature_c)

    def rel(x: np.ndarray) -> np.ndarray:  # per group, mean 1 over the year (0 if never)
        mean = x.mean(axis=1, keepdims=True)
        return np.where(mean > 0, x / np.where(mean > 0, mean, 1.0), 0.0)

    hdd_rel, hp_rel = rel(hdd_g), rel(hp_g)
    cdd_rel = rel(np.minimum(rel(cdd_g), model.heating.cooling_max_relative))
    # Day-type factors and seasonality as small tables [archetype x variant, day], gathered per MPAN.
    dt = cm.memo(("day_variants", year), lambda: day_variants(cm, days))  # [8, D]
    factor_tab = np.where(dt[None] == SATURDAY, cm.saturday_factor[:, None, None], np.where(dt[None] == SUNDAY_OR_HOLIDAY, cm.sunday_factor[:, None, None], 1.0))
    seas = 1.0 + cm.seasonal_amplitude[:, None] * np.cos(2.0 * np.pi * (doy[None, :] - cm.seasonal_peak_doy[:, None]) / 365.25)
    ell_arch = np.where(cm.is_domestic, model.domestic.lighting_share, 0.0)
    lit = ell_arch[:, None, None] * factor_tab  # [n_arch, 8, D]
    unlit = ((1.0 - ell_arch)[:, None] * seas)[:, None, :] * factor_tab
    av = a * 8 + variant_of(cm, m, tr)
    r = streams.random_u64(streams.stream_key(seed, "load.daily"), m.key[:, None], days[None, :].astype(np.uint64))
    sig = cm.daily_sigma[a][:, None]
    # exp(sig z - sig^2 / 2) and (unlit + lit * lighting) * noise * share, in place (the same operations).
    noise = irwin_hall_normal(r)
    noise *= sig
    noise -= 0.5 * sig * sig
    np.exp(noise, out=noise)
    s_house = 1.0 - tr.s_heat - tr.s_cool - tr.s_dhw - tr.s_ev
    house = lit.reshape(n_arch * 8, -1)[av]
    house *= yw.lighting[g]
    house += unlit.reshape(n_arch * 8, -1)[av]
    house *= noise
    house *= s_house[:, None]
    non_dom = ~cm.is_domestic[a]
    hp = tr.heat_kind == HEAT_PUMP
    # Heat only for the rows with a heating share: elsewhere it is (non-negative) x +0.0 = +0.0.
    heat = np.zeros_like(noise)
    hr = np.flatnonzero((tr.s_heat != 0.0) | np.signbit(tr.s_heat))
    heat[hr] = np.where(hp[hr][:, None], hp_rel[g[hr]], hdd_rel[g[hr]]) * np.sqrt(noise[hr]) * tr.s_heat[hr][:, None]
    nd_rows = np.flatnonzero(non_dom & (tr.s_heat > 0))
    if len(nd_rows):
        heat[nd_rows] *= factor_tab.reshape(n_arch * 8, -1)[av[nd_rows]]
    cool_rows = np.flatnonzero(tr.s_cool > 0)
    ws = model.heating.cooling_weather_share
    cool = ((1.0 - ws) + ws * cdd_rel[g[cool_rows]]) * tr.s_cool[cool_rows][:, None]
    cool = np.where(non_dom[cool_rows][:, None], cool * factor_tab.reshape(n_arch * 8, -1)[av[cool_rows]], cool)
    dhw_curve = 1.0 + model.heating.hot_water_seasonal_amplitude * np.cos(2.0 * np.pi * (doy - 15.0) / 365.25)
    # EV: a session on a day with chance ev_p; its size lognormal; more kWh per mile in winter.
    ev_rows = np.flatnonzero(tr.s_ev > 0)
    ev = np.zeros((len(ev_rows), len(days)))
    if len(ev_rows):
        session = top16_uniform(r[ev_rows]) < tr.ev_p[ev_rows][:, None]
        s = model.ev.session_sigma
        z = irwin_hall_normal(streams.random_u64(streams.stream_key(seed, "load.ev_size"), m.key[ev_rows][:, None], days[None, :].astype(np.uint64)))
        size = np.exp(s * z - 0.5 * s * s) * (1.0 + model.ev.winter_uplift * np.cos(2.0 * np.pi * (doy - 15.0) / 365.25))
        ev = session * size / tr.ev_p[ev_rows][:, None] * tr.s_ev[ev_rows][:, None]
    return YearComponents(yw, house, heat, cool_rows, cool, ev_rows, ev, dhw_curve, tr.s_dhw, seas, ell_arch[a])


def daily_energy(seed: int, cm: CompiledModel, m: Mpans, tr: Traits, days: np.ndarray) -> DailyEnergy:
    """Component energies of each MPAN on ``days`` (any day ordinals), each calendar year of an
    MPAN summing to its annual consumption (the PV pair's import net of self-consumption)."""
    days = np.asarray(days, dtype=np.int64)
    years = (EPOCH_DAY + days.astype("timedelta64[D]")).astype("datetime64[Y]").astype(np.int64) + 1970
    names = ("house", "light", "heat", "cool", "dhw", "ev", "pv", "self_use", "hdd", "temperature_c", "clearness")
    out = {k: np.zeros((m.n, len(days))) for k in names}
    load = m.arch >= 0
    exp_rows = np.flatnonzero(~load)
    heating = cm.model.heating
    a = tr.arch_safe
    for year in np.unique(years):
        yc = _year_components(seed, cm, m, tr, int(year))
        yw = yc.weather
        col = days[years == year] - yw.days[0]
        sel = np.flatnonzero(years == year)
        total = yc.annual_sum()
        scale = np.where(load, m.annual_kwh / np.where(total > 0, total, 1.0), 0.0)
        if len(exp_rows):
            scale, gen, self_use = pvmod.solve_pairs(cm, m, tr, yc, scale, year_day_ordinals(int(year)))
            out["pv"][:, sel] = gen[:, col]
            out["self_use"][:, sel] = self_use[:, col]
        out["house"][:, sel] = yc.house[:, col] * scale[:, None]
        out["heat"][:, sel] = yc.heat[:, col] * scale[:, None]
        out["dhw"][:, sel] = yc.s_dhw[:, None] * yc.dhw_curve[col][None, :] * scale[:, None]  # = dense("dhw")[:, col] * scale
        for k, rows, vals in (("cool", yc.cool_rows, yc.cool), ("ev", yc.ev_rows, yc.ev)):
            if len(rows):
                block = out[k][rows]
                block[:, sel] = vals[:, col] * scale[rows][:, None]
                out[k][rows] = block
        light_rel = yw.lighting[m.gsp][:, col]
        seas = yc.seas[a][:, col]
        ell = yc.ell[:, None]
        out["light"][:, sel] = out["house"][:, sel] * (ell * light_rel / ((1.0 - ell) * seas + ell * light_rel))
        temp = yw.temperature_c[:, col]
        out["hdd"][:, sel] = np.maximum(heating.base_temperature_c - temp, 0.0)[m.gsp]
        out["temperature_c"][:, sel] = temp[m.gsp]
        out["clearness"][:, sel] = yw.clearness[:, col][m.gsp]
    return DailyEnergy(days=days, **out)
