"""Synthesise a registration population, one block of sites at a time.

Site ``i`` of a scenario is a premises with one import MPAN (and, for PV homes, a linked
export MPAN). Every attribute of site ``i`` is drawn from streams keyed by (seed, i,
field), so any block ``[start, stop)`` can be synthesised alone and equals the same rows
of the whole population. Registration history inside the window (change of supplier,
change of data service, de-energisation and re-energisation, new connections) becomes
consecutive registration rows with inclusive ``effective_from``/``effective_to`` UTC
settlement days.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.core import market, streams
from mhhs_pipeline.core.calendar import EPOCH_DAY, day_ordinal
from mhhs_pipeline.core.mpan import cores_to_str, make_cores
from mhhs_pipeline.core.schema import REGISTRATION_SCHEMA
from mhhs_pipeline.spec.scenario import Scenario, ShareEntry

_NEVER = np.int64(10_000_000)  # a day ordinal far beyond any window: "no such event"
_UNIQUE_SPACE = 10**10

# Median annual consumption of each domestic archetype relative to the domestic median
# (Ofgem TDCVs: Economy 7 and electrically heated homes use more; low users less).
DOMESTIC_KWH_FACTOR = {
    "domestic_unrestricted": 1.0,
    "domestic_economy7": 1.55,
    "domestic_electric_heating": 3.0,
    "domestic_heat_pump": 1.9,
    "domestic_ev": 1.7,
    "domestic_low_user": 0.6,
}
NON_DOMESTIC_KWH_FACTOR = {
    "office": 1.0,
    "retail": 1.2,
    "industrial_1_shift": 1.5,
    "industrial_2_shift": 2.5,
    "industrial_3_shift": 4.0,
    "always_on": 3.0,
    "school": 1.5,
    "agricultural": 0.8,
}


def _affine_permutation(seed: int, index: np.ndarray) -> np.ndarray:
    """A bijection of [0, 1e10) seeded by the scenario: unique ids never collide."""
    key = streams.stream_key(seed, "reg.unique_id")
    a = int(streams.random_u64(key, np.array([0], dtype=np.uint64))[0]) % _UNIQUE_SPACE
    b = int(streams.random_u64(key, np.array([1], dtype=np.uint64))[0]) % _UNIQUE_SPACE
    a |= 1  # odd ...
    if a % 5 == 0:  # ... and not a multiple of 5, so coprime with 10**10
        a = (a + 2) % _UNIQUE_SPACE
    idx = np.asarray(index, dtype=object)  # exact big-int arithmetic; blocks are small
    return np.array([(a * int(i) + b) % _UNIQUE_SPACE for i in idx], dtype=np.int64)


def _pick(seed: int, name: str, sites: np.ndarray, entries: list[ShareEntry]) -> np.ndarray:
    ids = np.array([e.id for e in entries])
    return ids[streams.choice(streams.stream_key(seed, name), sites, np.array([e.share for e in entries]))]


def _pick_other(seed: int, name: str, sites: np.ndarray, entries: list[ShareEntry], current: np.ndarray) -> np.ndarray:
    """A participant different from ``current`` (by share among the others) where possible."""
    ids = np.array([e.id for e in entries])
    if len(ids) == 1:
        return current.copy()
    shares = np.array([e.share for e in entries], dtype=np.float64)
    u = streams.uniform(streams.stream_key(seed, name), sites)
    out = current.copy()
    for cur in np.unique(current):
        mask = current == cur
        w = np.where(ids == cur, 0.0, shares)
        cdf = np.cumsum(w) / w.sum()
        out[mask] = ids[np.minimum(np.searchsorted(cdf, u[mask], side="right"), len(ids) - 1)]
    return out


def _event_day(seed: int, name: str, sites: np.ndarray, prob: float, first: np.ndarray, last: int) -> np.ndarray:
    """With probability ``prob``, a day in (first, last]; else _NEVER."""
    key = streams.stream_key(seed, name)
    happens = streams.uniform(key, sites, 0) < prob
    lo = np.maximum(first + 1, first)  # events take effect the day after the registration starts at the earliest
    span = np.maximum(last - lo + 1, 0)
    day = lo + np.floor(streams.uniform(key, sites, 1) * span).astype(np.int64)
    return np.where(happens & (span > 0), day, _NEVER)


def synthesise_registrations(scenario: Scenario, site_start: int, site_stop: int) -> pa.Table:
    """Registration rows (canonical columns) for sites ``[site_start, site_stop)``.

    Rows are ordered by site, import MPAN before its export MPAN, then effective_from.
    """
    seed = scenario.seed
    pop = scenario.population
    parts = scenario.participants
    sites = np.arange(site_start, site_stop, dtype=np.uint64)
    n = len(sites)
    if n == 0:
        return REGISTRATION_SCHEMA.empty_table()

    def u(name: str, counter: int = 0) -> np.ndarray:
        return streams.uniform(streams.stream_key(seed, name), sites, counter)

    def z(name: str) -> np.ndarray:
        return streams.normal(streams.stream_key(seed, name), sites)

    advanced = u("reg.segment") < pop.advanced_share
    domestic = ~advanced & (u("reg.domestic") < pop.domestic_share_of_smart)

    # Distributor and GSP group: DNO areas by customer weight, a share on iDNO networks.
    dno_ids = np.array(list(market.DNO_WEIGHTS))
    dno_w = np.array(list(market.DNO_WEIGHTS.values()))
    dno = dno_ids[streams.choice(streams.stream_key(seed, "reg.dno"), sites, dno_w)]
    idno_ids = np.array(sorted(market.IDNOS))
    on_idno = u("reg.idno") < pop.idno_share
    idno = idno_ids[streams.choice(streams.stream_key(seed, "reg.idno_id"), sites, np.ones(len(idno_ids)))]
    distributor = np.where(on_idno, idno, dno)
    gsp = np.array([market.DNO_AREAS[d][1] for d in dno])  # an iDNO network sits in a DNO's area

    connection = np.where(
        advanced,
        np.array(["L", "H", "E"])[streams.choice(streams.stream_key(seed, "reg.ct"), sites, np.array([0.72, 0.25, 0.03]))],
        "W",
    )
    segment = np.where(advanced, "A", "S")

    dom_names = list(pop.archetypes.domestic)
    nd_names = list(pop.archetypes.non_domestic)
    dom_arch = np.array(dom_names)[
        streams.choice(streams.stream_key(seed, "reg.arch_dom"), sites, np.array(list(pop.archetypes.domestic.values())))
    ]
    nd_arch = np.array(nd_names)[
        streams.choice(streams.stream_key(seed, "reg.arch_nd"), sites, np.array(list(pop.archetypes.non_domestic.values())))
    ]
    archetype = np.where(domestic, dom_arch, nd_arch)

    # Annual consumption: lognormal (heavy right tail) around a median by segment and archetype.
    dom_factor = np.array([DOMESTIC_KWH_FACTOR[a] for a in dom_arch])
    nd_factor = np.array([NON_DOMESTIC_KWH_FACTOR[a] for a in nd_arch])
    zk = z("reg.annual_kwh")
    annual = np.where(
        domestic,
        pop.domestic_median_kwh * dom_factor * np.exp(pop.domestic_sigma * zk),
        np.where(
            advanced,
            pop.advanced_median_kwh * nd_factor * np.exp(pop.advanced_sigma * zk),
            pop.non_domestic_median_kwh * nd_factor * np.exp(pop.non_domestic_sigma * zk),
        ),
    )
    # A connection type bounds what a site can draw in a year (whole current ~100 A three
    # phase, then LV / HV / EHV CT): cap the lognormal tail at half of the bound cleansing
    # enforces on extracts (ANNUAL_KWH_ABSURD), so synthetic sites never look absurd.
    cap = np.select([connection == "W", connection == "L", connection == "H"], [5e5, 1e7, 1e8], 2.5e9)
    annual = np.minimum(annual, cap)
    annual = np.round(np.clip(annual, 50.0, 5e8), 0)

    dcc_u = u("reg.dcc")
    dcc = np.where(advanced, "N", np.where(dcc_u < pop.dcc_active_share_of_smart, "A", np.where(dcc_u < (1 + pop.dcc_active_share_of_smart) / 2, "I", "N")))

    supplier0 = _pick(seed, "reg.supplier", sites, parts.suppliers)
    ds_smart = _pick(seed, "reg.ds_smart", sites, parts.data_services.smart)
    ds_adv = _pick(seed, "reg.ds_adv", sites, parts.data_services.advanced)
    ds0 = np.where(advanced, ds_adv, ds_smart)
    ms = np.where(
        advanced,
        _pick(seed, "reg.ms_adv", sites, parts.metering_services.advanced),
        _pick(seed, "reg.ms_smart", sites, parts.metering_services.smart),
    )
    supplier1 = _pick_other(seed, "reg.supplier_new", sites, parts.suppliers, supplier0)
    ds1 = np.where(
        advanced,
        _pick_other(seed, "reg.ds_adv_new", sites, parts.data_services.advanced, ds_adv),
        _pick_other(seed, "reg.ds_smart_new", sites, parts.data_services.smart, ds_smart),
    )

    # History: first registration before the window, or a new connection inside it.
    w_first = day_ordinal(scenario.window.start)
    w_last = day_ordinal(scenario.window.end)
    days = w_last - w_first + 1
    new_conn = u("reg.new_connection") < pop.new_connection_share
    first = np.where(
        new_conn,
        w_first + np.floor(u("reg.new_connection", 1) * days).astype(np.int64),
        w_first - 1 - np.floor(u("reg.first_from") * 3650).astype(np.int64),
    )
    frac = days / 365.25
    cos = _event_day(seed, "reg.cos", sites, min(1.0, pop.change_of_supplier_rate_per_year * frac), np.maximum(first, w_first - 1), w_last)
    cods = _event_day(seed, "reg.cods", sites, min(1.0, pop.change_of_data_service_rate_per_year * frac), np.maximum(first, w_first - 1), w_last)
    cods = np.where(cods == cos, _NEVER, cods)  # one change per day keeps segments simple
    de_energised_always = u("reg.de_energised") < pop.de_energised_share
    deen = _event_day(seed, "reg.deen", sites, min(1.0, pop.de_energisation_rate_per_year * frac), np.maximum(first, w_first - 1), w_last)
    deen = np.where(de_energised_always | (deen == cos) | (deen == cods), _NEVER, deen)
    reen = np.where(
        (deen < _NEVER) & (u("reg.reen") < 0.5),
        _event_day(seed, "reg.reen_day", sites, 1.0, deen, w_last),
        _NEVER,
    )
    reen = np.where((reen == cos) | (reen == cods), _NEVER, reen)

    bounds = np.sort(np.stack([first, cos, cods, deen, reen], axis=1), axis=1)  # [n, 5]
    starts = bounds
    ends = np.concatenate([bounds[:, 1:] - 1, np.full((n, 1), _NEVER)], axis=1)
    valid = starts < _NEVER
    ends = np.where(ends >= _NEVER - 1, -1, ends)  # -1 marks an open registration

    site_idx, seg_k = np.nonzero(valid)
    s = starts[site_idx, seg_k]
    e = ends[site_idx, seg_k]
    sup = np.where(s >= cos[site_idx], supplier1[site_idx], supplier0[site_idx])
    dsv = np.where(s >= cods[site_idx], ds1[site_idx], ds0[site_idx])
    energised = ~de_energised_always[site_idx] & ~((s >= deen[site_idx]) & (s < reen[site_idx]))
    energisation = np.where(energised, "E", "D")

    cores_import = cores_to_str(make_cores(distributor.astype(np.int64), _affine_permutation(seed, sites)))
    pv = domestic & (u("reg.pv") < pop.pv_share_of_domestic)
    cores_export = cores_to_str(
        make_cores(distributor.astype(np.int64), _affine_permutation(seed, _UNIQUE_SPACE - 1 - sites.astype(np.int64)))
    )
    export_kwh = np.round(pop.pv_export_median_kwh * np.exp(0.35 * z("reg.pv_kwh")), 0)

    def rows(mask: np.ndarray, export: bool) -> dict[str, np.ndarray]:
        i = site_idx[mask]
        return {
            "site": i,
            "k": seg_k[mask],
            "export": np.full(len(i), export),
            "mpan_core": (cores_export if export else cores_import)[i],
            "effective_from": s[mask],
            "effective_to": e[mask],
            "supplier_id": sup[mask],
            "data_service_id": dsv[mask],
            "metering_service_id": ms[i],
            "distributor_id": distributor[i],
            "gsp_group": gsp[i],
            "market_segment": segment[i],
            "connection_type": connection[i],
            "energisation_status": energisation[mask],
            "energy_direction": np.full(len(i), "E" if export else "I"),
            "domestic_premise": domestic[i],
            "annual_consumption_kwh": (export_kwh if export else annual)[i],
            "dcc_service_flag": dcc[i],
            "archetype": np.full(len(i), "pv_export") if export else archetype[i],
            "linked_import_mpan": cores_import[i] if export else np.full(len(i), None, dtype=object),
        }

    imp = rows(np.ones(len(site_idx), dtype=bool), export=False)
    exp = rows(pv[site_idx], export=True)
    cols = {k: np.concatenate([imp[k], exp[k]]) for k in imp}
    order = np.lexsort((cols["k"], cols["export"], cols["site"]))
    cols = {k: v[order] for k, v in cols.items()}
    eff_to = cols["effective_to"]
    arrays = {
        "mpan_core": pa.array(cols["mpan_core"].astype(str)),
        "effective_from": pa.array((EPOCH_DAY + cols["effective_from"].astype("timedelta64[D]")), pa.date32()),
        "effective_to": pa.array(
            np.where(eff_to < 0, np.datetime64("NaT"), EPOCH_DAY + eff_to.astype("timedelta64[D]")), pa.date32()
        ),
        **{
            k: pa.array(cols[k].astype(str))
            for k in (
                "supplier_id", "data_service_id", "metering_service_id", "distributor_id", "gsp_group",
                "market_segment", "connection_type", "energisation_status", "energy_direction",
            )
        },  # fmt: skip
        "domestic_premise": pa.array(cols["domestic_premise"].astype(bool)),
        "annual_consumption_kwh": pa.array(cols["annual_consumption_kwh"].astype(np.float64)),
        "dcc_service_flag": pa.array(cols["dcc_service_flag"].astype(str)),
        "archetype": pa.array(cols["archetype"].astype(str)),
        "provenance": pa.array(np.full(len(order), "manufactured")),
        "linked_import_mpan": pa.array(cols["linked_import_mpan"], pa.string()),
    }
    return pa.table(arrays, schema=REGISTRATION_SCHEMA)


def registrations_on_days(reg: pa.Table, mpan_cores: np.ndarray, day_ordinals: np.ndarray) -> np.ndarray:
    """For each MPAN (rows) and UTC settlement day (columns), the index of the registration
    row in force, or -1 where none is (before connection). Registrations of one MPAN must
    not overlap (the synthetic population never does; cleansing enforces it for extracts).
    """
    reg_core = np.asarray(reg.column("mpan_core").to_numpy(zero_copy_only=False)).astype(str)
    core_index = {c: i for i, c in enumerate(mpan_cores)}
    reg_m = np.array([core_index.get(c, -1) for c in reg_core], dtype=np.int64)
    frm = reg.column("effective_from").cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
    to_arr = reg.column("effective_to").cast(pa.int32())
    to = np.where(to_arr.is_null().to_numpy(zero_copy_only=False), _NEVER, to_arr.fill_null(0).to_numpy(zero_copy_only=False)).astype(np.int64)
    keep = reg_m >= 0
    rows = np.flatnonzero(keep)
    big = np.int64(1 << 32)
    keys = reg_m[rows] * big + frm[rows]
    order = np.argsort(keys, kind="stable")
    keys, rows = keys[order], rows[order]
    days = np.asarray(day_ordinals, dtype=np.int64)
    q = np.arange(len(mpan_cores), dtype=np.int64)[:, None] * big + days[None, :]
    pos = np.searchsorted(keys, q, side="right") - 1
    cand = rows[np.clip(pos, 0, max(len(rows) - 1, 0))] if len(rows) else np.zeros_like(q)
    ok = (pos >= 0) & (len(rows) > 0)
    if len(rows):
        ok &= (reg_m[cand] == np.arange(len(mpan_cores))[:, None]) & (days[None, :] <= to[cand])
    return np.where(ok, cand, -1)


def in_force(registrations: pa.Table, first_day: dt.date, last_day: dt.date) -> pa.Table:
    """The registration rows in force on any UTC settlement day of ``first_day`` ..
    ``last_day`` (inclusive; an open ``effective_to`` runs on), in their order."""

    starts_in_time = pc.less_equal(registrations.column("effective_from"), pa.scalar(last_day, pa.date32()))
    to = registrations.column("effective_to")
    still_open = pc.or_kleene(pc.is_null(to), pc.greater_equal(to, pa.scalar(first_day, pa.date32())))
    return registrations.filter(pc.and_kleene(starts_in_time, still_open))


def dcc_enrolled(registrations: pa.Table) -> np.ndarray:
    """Per registration row: a Smart meter enrolled with DCC (service flag A), so its import
    and export are read as DCC profile data."""
    flag = np.asarray(registrations.column("dcc_service_flag").to_numpy(zero_copy_only=False)).astype(str)
    seg = np.asarray(registrations.column("market_segment").to_numpy(zero_copy_only=False)).astype(str)
    return (flag == "A") & (seg == "S")
