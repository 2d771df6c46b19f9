"""Rooftop PV: daily yield, half-hour generation, and the import/export split of a PV home.

Daily generation follows the GSP group's daily irradiation (clearness x extraterrestrial)
with a seasonal tilt gain. Within a day, generation follows the sun on a tilted plane
(tilt 35 degrees, azimuth per system) -- beam on the plane plus isotropic diffuse, the
diffuse fraction rising as the day gets cloudier -- times half-hour cloud noise shared by
the GSP group, and is scaled to the day's yield. It is zero whenever the sun is down.

A PV home has two MPANs: its import MPAN (the linked import) and the export MPAN. The
home's gross demand ``D`` and the generation ``G`` give, each half hour, self-consumption
``sc <= min(D, G)``, import ``D - sc`` and export ``G - sc``. For annual matching the day's
self-consumption is modelled at daily resolution, ``SC = k * smin(daytime demand, G)``
(``smin(x, y) = x y / sqrt(x^2 + y^2)``), and the two annual targets (import and export)
are met by solving the home's demand and generation scales jointly for the MPAN's whole
year (a fixed number of fixed-point steps, so the result never depends on the block).
Half hours are then shaped to match the daily values exactly.
"""

from __future__ import annotations

import numpy as np

from mhhs_pipeline.core import streams
from mhhs_pipeline.core.calendar import day_of_year
from mhhs_pipeline.core.load.weather import DailyWeather, declination_rad, hour_angle_rad

_ITERATIONS = 16


def tilt_gain(cm, doy: np.ndarray) -> np.ndarray:
    """Yield of a tilted array relative to horizontal: more in winter (low sun)."""
    return 1.0 + cm.model.pv.tilt_gain_winter * 0.5 * (1.0 + np.cos(2.0 * np.pi * (doy - 355.0) / 365.25))


def _smin(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smooth minimum x y / sqrt(x^2 + y^2) of non-negative arrays (0 where both are 0)."""
    return x * y / np.sqrt(x * x + y * y + 1e-300)


def solve_pairs(cm, m, tr, yc, scale: np.ndarray, days: np.ndarray):
    """Scales of import MPANs (updated for PV homes), generation and self-use [n, D] for export rows."""
    from mhhs_pipeline.core.load.daily import HEAT_STORAGE

    yw: DailyWeather = yc.weather
    n, nd = m.n, len(days)
    doy = day_of_year(days).astype(np.float64)
    gen = np.zeros((n, nd))
    self_use = np.zeros((n, nd))
    scale = scale.copy()
    exp_rows = np.flatnonzero(m.arch < 0)
    g_rel = yw.irradiation_kwh_m2[m.gsp[exp_rows]] * tilt_gain(cm, doy)[None, :]
    g_total = g_rel.sum(axis=1)
    alone = m.link[exp_rows] < 0
    lam_g = m.annual_kwh[exp_rows] / np.where(g_total > 0, g_total, 1.0)
    gen[exp_rows[alone]] = g_rel[alone] * lam_g[alone][:, None]
    pair = ~alone
    if not pair.any():
        return scale, gen, self_use
    j = exp_rows[pair]
    i = m.link[j]
    g = g_rel[pair]
    w = yc.total(i)
    heat = np.where((tr.heat_kind[i] != HEAT_STORAGE)[:, None], yc.dense("heat", i), 0.0)
    daytime_w = (yc.dense("house", i) + heat + yc.dense("cool", i)) * yw.daylight_fraction[m.gsp[i]]
    a_imp = m.annual_kwh[i]
    a_exp = m.annual_kwh[j]
    k = cm.model.pv.self_consumption_factor
    lam_d = a_imp / np.maximum(w.sum(axis=1), 1e-12)
    lam_g = a_exp / np.maximum(g.sum(axis=1), 1e-12) * 1.3
    for _ in range(_ITERATIONS):  # fixed count: identical whatever else is in the block
        sc = k * _smin(lam_d[:, None] * daytime_w, lam_g[:, None] * g)
        imp = lam_d * w.sum(axis=1) - sc.sum(axis=1)
        exp = lam_g * g.sum(axis=1) - sc.sum(axis=1)
        lam_d = lam_d * a_imp / np.maximum(imp, 1e-9)
        lam_g = lam_g * a_exp / np.maximum(exp, 1e-9)
    sc = k * _smin(lam_d[:, None] * daytime_w, lam_g[:, None] * g)
    scale[i] = lam_d
    gen[j] = lam_g[:, None] * g
    self_use[j] = sc
    return scale, gen, self_use


def generation_shape(seed: int, cm, gsp: np.ndarray, keys: np.ndarray, azimuth_rad: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray, grid, clearness: np.ndarray) -> np.ndarray:
    """Half-hour generation shape [p, H] of p export MPANs, each UTC day summing to 1 (0 at night).

    Per row: GSP group index, MPAN key, array azimuth (0 south, positive west), the group's
    latitude and longitude, and its daily clearness [p, n_days].
    """
    p = len(keys)
    n_days = grid.n_days
    mid = grid.period_end_utc - np.timedelta64(15, "m")
    utc_h = (mid.astype("datetime64[m]").astype(np.int64) % 1440) / 60.0
    doy = day_of_year((mid.astype("datetime64[D]") - np.datetime64("1970-01-01", "D")).astype(np.int64)).astype(np.float64)
    lat = np.deg2rad(lat_deg)[:, None]
    decl = declination_rad(doy)[None, :]
    h = hour_angle_rad(doy[None, :], utc_h[None, :], lon_deg[:, None])
    sin_el = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(h)
    up = sin_el > 0.0
    gam = np.asarray(azimuth_rad)[:, None]
    tilt = np.deg2rad(cm.model.pv.tilt_deg)
    cos_t = (
        np.sin(decl) * np.sin(lat) * np.cos(tilt)
        - np.sin(decl) * np.cos(lat) * np.sin(tilt) * np.cos(gam)
        + np.cos(decl) * np.cos(lat) * np.cos(tilt) * np.cos(h)
        + np.cos(decl) * np.sin(lat) * np.sin(tilt) * np.cos(gam) * np.cos(h)
        + np.cos(decl) * np.sin(tilt) * np.sin(gam) * np.sin(h)
    )  # Duffie & Beckman eq. 1.6.2, hour angle and azimuth positive towards the west
    kt = np.repeat(clearness, 48, axis=1)
    kd = np.clip(1.0 - 1.13 * kt, 0.15, 1.0)  # diffuse fraction (after Erbs et al. 1982, simplified)
    ghi = np.where(up, np.maximum(sin_el, 0.0) ** 1.15, 0.0)
    beam_ratio = np.clip(np.maximum(cos_t, 0.0) / np.maximum(sin_el, 0.05), 0.0, 5.0)
    poa = ghi * ((1.0 - kd) * beam_ratio + kd * 0.5 * (1.0 + np.cos(tilt)))
    # Cloud noise: shared by the GSP group, correlated between adjacent half hours.
    sigma = cm.model.weather.intraday_cloud_sigma * 4.0 * kt * (1.0 - kt)
    hh = grid.half_hour_ordinal.astype(np.uint64)
    key = streams.stream_key(seed, "weather.cloud_hh")
    gsp_entity = (np.asarray(gsp) + 1).astype(np.uint64)[:, None]
    e0 = streams.normal(key, gsp_entity, hh[None, :])
    e1 = streams.normal(key, gsp_entity, hh[None, :] - np.uint64(1))
    z = (e0 + e1) / np.sqrt(2.0)
    site = cm.model.pv.site_sigma
    zs = streams.normal(streams.stream_key(seed, "pv.site"), np.asarray(keys)[:, None], hh[None, :])
    shape = poa * np.exp(sigma * z - 0.5 * sigma * sigma + site * zs - 0.5 * site * site)
    s3 = shape.reshape(p, n_days, 48)
    tot = s3.sum(axis=2, keepdims=True)
    return (s3 / np.where(tot > 0, tot, 1.0)).reshape(p, -1)


def combine(demand: np.ndarray, gen: np.ndarray, self_use: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Import and export [p, D, 48] of PV homes from gross demand, generation and daily self-use.

    Each day: ``sc = min(D, G) * f`` with ``f = min(1, SC / sum(min(D, G)))``; when the daily
    self-use exceeds what the half hours allow, import and export are scaled so the day's
    totals are still ``sum(D) - SC`` and ``sum(G) - SC``.
    """
    both = np.minimum(demand, gen)
    m_day = both.sum(axis=2, keepdims=True)
    sc_day = self_use[:, :, None]
    f = np.where(m_day > 0, np.minimum(1.0, sc_day / np.where(m_day > 0, m_day, 1.0)), 0.0)
    sc = both * f
    imp = demand - sc
    exp = gen - sc
    short = sc_day > m_day
    d_tot = demand.sum(axis=2, keepdims=True)
    g_tot = gen.sum(axis=2, keepdims=True)
    a = np.where(short & (d_tot - m_day > 0), (d_tot - sc_day) / np.where(d_tot - m_day > 0, d_tot - m_day, 1.0), 1.0)
    b = np.where(short & (g_tot - m_day > 0), (g_tot - sc_day) / np.where(g_tot - m_day > 0, g_tot - m_day, 1.0), 1.0)
    return np.maximum(imp * np.clip(a, 0.0, 1.0), 0.0), np.maximum(exp * np.clip(b, 0.0, 1.0), 0.0)
