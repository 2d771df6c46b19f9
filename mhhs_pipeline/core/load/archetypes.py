"""The load model compiled to numpy tables: archetype parameters, half-hour shapes, appliances.

``compile_model(LoadModel)`` turns the scenario's pydantic parameters (spec/load_model.py)
into arrays indexed by archetype and local clock half hour, once per distinct model
(cached by its JSON), so the generator's hot path is gathers and arithmetic only.

Hourly tables are interpolated to half hours periodically between hour centres (the day
stays continuous across midnight) and normalised: site shapes to a mean of 1 per day
type, activity shapes to a sum of 1 per day type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mhhs_pipeline.spec.archetypes import DOMESTIC_ARCHETYPES, NON_DOMESTIC_ARCHETYPES
from mhhs_pipeline.spec.load_model import LoadModel

ARCHETYPE_NAMES: tuple[str, ...] = DOMESTIC_ARCHETYPES + NON_DOMESTIC_ARCHETYPES
ARCH_INDEX = {name: i for i, name in enumerate(ARCHETYPE_NAMES)}
PV_EXPORT = -1  # archetype index of an export (PV) MPAN
N_DOMESTIC = len(DOMESTIC_ARCHETYPES)
HEATING_KINDS = ("none", "direct", "storage", "storage_or_direct", "heat_pump")
WEEKDAY, SATURDAY, SUNDAY = 0, 1, 2


def to_half_hours(hourly) -> np.ndarray:
    """24 hourly levels -> 48 half-hour levels by periodic linear interpolation between hour centres."""
    centres = np.arange(24) + 0.5
    slots = np.arange(48) / 2 + 0.25
    y = np.asarray(hourly, dtype=np.float64)
    return np.interp(slots, np.concatenate([centres - 24, centres, centres + 24]), np.tile(y, 3))


def _slot_of(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 2 + int(m) // 30


@dataclass(frozen=True)
class CompiledModel:
    model: LoadModel
    # per archetype [n_arch]
    is_domestic: np.ndarray
    seasonal_amplitude: np.ndarray
    seasonal_peak_doy: np.ndarray
    saturday_factor: np.ndarray
    sunday_factor: np.ndarray
    daily_sigma: np.ndarray
    halfhour_sigma: np.ndarray
    base_lo: np.ndarray
    base_hi: np.ndarray
    event_rate: np.ndarray
    event_size: np.ndarray
    heating_kind: np.ndarray  # index into HEATING_KINDS
    heating_lo: np.ndarray
    heating_hi: np.ndarray
    heating_owner: np.ndarray
    cooling_lo: np.ndarray
    cooling_hi: np.ndarray
    hot_water_lo: np.ndarray
    hot_water_hi: np.ndarray
    economy7: np.ndarray
    ev: np.ndarray
    ev_lo: np.ndarray
    ev_hi: np.ndarray
    term_time: np.ndarray
    christmas: np.ndarray
    pf_lo: np.ndarray
    pf_hi: np.ndarray
    pf_correction: np.ndarray
    # shapes
    site_shape: np.ndarray  # [n_arch, 3, 48], mean 1 per day type (non-domestic site load)
    occupied_shape: np.ndarray  # [n_arch, 3, 48], mean 1: site shape above its minimum (HVAC)
    activity: np.ndarray  # [n_arch * 2 (away), 3, 48], sum 1 (domestic activity)
    typical: np.ndarray  # [n_arch, 3, 48], sum 1: smooth expected shape (estimates)
    heat_pump_shape: np.ndarray  # [48] mean 1
    direct_heating_shape: np.ndarray  # [48] mean 1
    # appliances
    appliance_q: np.ndarray  # [K, 48] events per half hour for an owner at the reference usage
    appliance_kwh_lo: np.ndarray  # [K]
    appliance_kwh_hi: np.ndarray  # [K]
    appliance_ownership: np.ndarray  # [K]
    combo_p: np.ndarray  # [2**K, 48] total event probability per half hour by ownership combination
    combo_cdf: np.ndarray  # [2**K, 48, K] cumulative choice of appliance given an event
    combo_daily_kwh: np.ndarray  # [2**K] expected event energy per day
    # tariffs
    e7_start_slots: np.ndarray
    e7_start_weights: np.ndarray
    ev_start_slots: np.ndarray  # -1 = arrival
    ev_start_weights: np.ndarray
    ev_arrival_slots: tuple[int, int]
    hp_dhw_slots: np.ndarray
    hp_dhw_weights: np.ndarray
    # Per-model cache of calendar tables (day types of a year or window), see ``memo``.
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    def memo(self, key: tuple, make):
        """``make()`` cached on this model by ``key`` (which must say everything ``make``
        depends on besides the model). Bounded; arrays come back read-only."""
        hit = self.cache.get(key)
        if hit is None:
            if len(self.cache) >= _MEMO_MAX:
                self.cache.clear()
            hit = make()
            if isinstance(hit, np.ndarray):
                hit.setflags(write=False)
            self.cache[key] = hit
        return hit


def _table(fn) -> np.ndarray:
    return np.array([fn(name) for name in ARCHETYPE_NAMES], dtype=np.float64)


def _build(model: LoadModel) -> CompiledModel:
    arch = [model.archetypes[name] for name in ARCHETYPE_NAMES]
    dom = model.domestic

    def per(field: str, i: int | None = None) -> np.ndarray:
        vals = [getattr(a, field) for a in arch]
        return np.array([v[i] if i is not None else v for v in vals], dtype=np.float64)

    site = np.empty((len(arch), 3, 48))
    occupied = np.empty_like(site)
    for i, a in enumerate(arch):
        for j, hourly in enumerate((a.weekday, a.saturday, a.sunday)):
            s = to_half_hours(hourly)
            site[i, j] = s / s.mean()
            occ = s - s.min()
            occupied[i, j] = occ / occ.mean() if occ.sum() > 0 else np.ones(48)
    # Domestic activity: the away variant has weekday 09:00-16:00 activity reduced.
    daytime = np.zeros(48, dtype=bool)
    daytime[18:32] = True
    activity = np.empty((len(arch) * 2, 3, 48))
    for i in range(len(arch)):
        for away in (0, 1):
            t = site[i].copy()
            if away:
                t[WEEKDAY, daytime] *= dom.away_daytime_factor
            activity[i * 2 + away] = t / t.sum(axis=1, keepdims=True)
    typical = site / site.sum(axis=2, keepdims=True)

    apps = list(dom.appliances.values())
    k = len(apps)
    q = np.array([to_half_hours(a.hourly_propensity) for a in apps])
    q = q / q.sum(axis=1, keepdims=True) * np.array([a.events_per_day for a in apps])[:, None]
    kwh_lo = np.array([a.kwh_per_event[0] for a in apps])
    kwh_hi = np.array([a.kwh_per_event[1] for a in apps])
    combos = np.array([[(c >> j) & 1 for j in range(k)] for c in range(2**k)], dtype=np.float64)  # [2**K, K]
    per_app = combos[:, :, None] * q[None, :, :]  # [2**K, K, 48]
    combo_p = np.minimum(per_app.sum(axis=1), 0.95)
    cdf = np.cumsum(per_app, axis=1) / np.maximum(per_app.sum(axis=1, keepdims=True), 1e-12)
    combo_cdf = np.moveaxis(cdf, 1, 2)  # [2**K, 48, K]
    combo_daily = (combos * (np.array([a.events_per_day for a in apps]) * 0.5 * (kwh_lo + kwh_hi))[None, :]).sum(axis=1)

    def opts(times: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        items = list(times.items())
        slots = np.array([-1 if t == "arrival" else _slot_of(t) for t, _ in items], dtype=np.int64)
        w = np.array([v for _, v in items], dtype=np.float64)
        return slots, w

    e7s, e7w = opts(model.economy7.start_times)
    evs, evw = opts(model.ev.start_times)
    hps, hpw = opts(model.heating.heat_pump_hot_water_times)
    hp = to_half_hours(model.heating.heat_pump_shape)
    dh = to_half_hours(model.heating.direct_heating_shape)
    return CompiledModel(
        model=model,
        is_domestic=np.array([name in DOMESTIC_ARCHETYPES for name in ARCHETYPE_NAMES]),
        seasonal_amplitude=per("seasonal_amplitude"),
        seasonal_peak_doy=per("seasonal_peak_doy"),
        saturday_factor=per("saturday_factor"),
        sunday_factor=per("sunday_factor"),
        daily_sigma=per("daily_sigma"),
        halfhour_sigma=per("halfhour_sigma"),
        base_lo=per("base_fraction", 0),
        base_hi=per("base_fraction", 1),
        event_rate=per("event_rate"),
        event_size=per("event_size"),
        heating_kind=np.array([HEATING_KINDS.index(a.heating) for a in arch], dtype=np.int64),
        heating_lo=per("heating_share", 0),
        heating_hi=per("heating_share", 1),
        heating_owner=per("heating_owner_share"),
        cooling_lo=per("cooling_share", 0),
        cooling_hi=per("cooling_share", 1),
        hot_water_lo=per("hot_water_share", 0),
        hot_water_hi=per("hot_water_share", 1),
        economy7=np.array([a.economy7 for a in arch]),
        ev=np.array([a.ev for a in arch]),
        ev_lo=per("ev_share", 0),
        ev_hi=per("ev_share", 1),
        term_time=np.array([a.term_time for a in arch]),
        christmas=np.array([a.christmas_shutdown for a in arch]),
        pf_lo=per("power_factor", 0),
        pf_hi=per("power_factor", 1),
        pf_correction=per("pf_correction_share"),
        site_shape=site,
        occupied_shape=occupied,
        activity=activity,
        typical=typical,
        heat_pump_shape=hp / hp.mean(),
        direct_heating_shape=dh / dh.mean(),
        appliance_q=q,
        appliance_kwh_lo=kwh_lo,
        appliance_kwh_hi=kwh_hi,
        appliance_ownership=np.array([a.ownership for a in apps]),
        combo_p=combo_p,
        combo_cdf=combo_cdf,
        combo_daily_kwh=combo_daily,
        e7_start_slots=e7s,
        e7_start_weights=e7w,
        ev_start_slots=evs,
        ev_start_weights=evw,
        ev_arrival_slots=(_slot_of(model.ev.arrival_window[0]), _slot_of(model.ev.arrival_window[1])),
        hp_dhw_slots=hps,
        hp_dhw_weights=hpw,
    )


_CACHE: dict[str, CompiledModel] = {}
_MEMO_MAX = 64  # calendar tables cached per compiled model (a few years and windows)


def compile_model(model: LoadModel) -> CompiledModel:
    """The compiled tables of a load model (cached by the model's JSON)."""
    key = model.model_dump_json()
    hit = _CACHE.get(key)
    if hit is None:
        if len(_CACHE) > 16:
            _CACHE.clear()
        hit = _CACHE[key] = _build(model)
    return hit


def archetype_index(names: np.ndarray, domestic: np.ndarray) -> np.ndarray:
    """Archetype index per registration archetype name; PV_EXPORT for ``pv_export``; unknown
    names fall back to ``domestic_unrestricted`` (domestic) or ``office``."""
    names = np.asarray(names).astype(str)
    uniq, inv = np.unique(names, return_inverse=True)
    mapped = np.array([ARCH_INDEX.get(u, PV_EXPORT if u == "pv_export" else -2) for u in uniq], dtype=np.int64)
    out = mapped[inv] if len(uniq) else np.zeros(0, dtype=np.int64)
    unknown = out == -2
    return np.where(unknown, np.where(domestic, ARCH_INDEX["domestic_unrestricted"], ARCH_INDEX["office"]), out)
