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


def _self_use(k: float, lam_d: np.ndarray, daytime_w: np.ndarray, lam_g: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``k * _smin(lam_d * daytime_w, lam_g * g)`` evaluated in place (the same operations)."""
    x = lam_d[:, None] * daytime_w
    y = lam_g[:, None] * g
    out = x * y
    x *= x
    y *= y
    x += y
    x += 1e-300
    np.sqrt(x, out=x)
    out /= x
    out *= k
    return out


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
    w_sum, g_sum = w.sum(axis=1), g.sum(axis=1)  # loop invariants
    lam_d = a_imp / np.maximum(w_sum, 1e-12)
    lam_g = a_exp / np.maximum(g_sum, 1e-12) * 1.3
    for _ in range(_ITERATIONS):  # fixed count: identical whatever else is in the block
        sc_sum = _self_use(k, lam_d, daytime_w, lam_g, g).sum(axis=1)
        imp = lam_d * w_sum - sc_sum
        exp = lam_g * g_sum - sc_sum
        lam_d = lam_d * a_imp / np.maximum(imp, 1e-9)
        lam_g = lam_g * a_exp / np.maximum(exp, 1e-9)
    sc = _self_use(k, lam_d, daytime_w, lam_g, g)
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
    # The sun's geometry and the cloud noise depend on a row only through its GSP group (and
    # the group's coordinates): computed once per distinct group, then gathered per row, with
    # every per-row expression evaluated in its original order (the same bits).
    site_key = np.stack([np.asarray(gsp, dtype=np.float64), np.asarray(lat_deg, dtype=np.float64), np.asarray(lon_deg, dtype=np.float64)], axis=1)
    uniq, g_of = np.unique(site_key, axis=0, return_inverse=True)
    g_of = g_of.reshape(-1)
    lat = np.deg2rad(uniq[:, 1])[:, None]
    decl = declination_rad(doy)[None, :]
    h = hour_angle_rad(doy[None, :], utc_h[None, :], uniq[:, 2][:, None])
    sin_el = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(h)
    tilt = np.deg2rad(cm.model.pv.tilt_deg)
    cos_h, sin_h = np.cos(h), np.sin(h)
    gam = np.asarray(azimuth_rad)[:, None]
    cos_gam = np.cos(gam)
    # Duffie & Beckman eq. 1.6.2, hour angle and azimuth positive towards the west:
    # a - b + c + d + e with b, d, e carrying the row's azimuth.
    term_a = np.sin(decl) * np.sin(lat) * np.cos(tilt)
    b_g = np.sin(decl) * np.cos(lat) * np.sin(tilt)
    term_c = np.cos(decl) * np.cos(lat) * np.cos(tilt) * cos_h
    d_g = np.cos(decl) * np.sin(lat) * np.sin(tilt)
    e_1 = np.cos(decl) * np.sin(tilt)
    cos_t = term_a[g_of]
    cos_t -= b_g[g_of] * cos_gam
    cos_t += term_c[g_of]
    d = d_g[g_of] * cos_gam
    d *= cos_h[g_of]
    cos_t += d
    e = e_1 * np.sin(gam)
    e *= sin_h[g_of]
    cos_t += e
    del d, e
    kt = np.repeat(clearness, 48, axis=1)
    kd = np.clip(1.0 - 1.13 * kt, 0.15, 1.0)  # diffuse fraction (after Erbs et al. 1982, simplified)
    ghi_g = np.where(sin_el > 0.0, np.maximum(sin_el, 0.0) ** 1.15, 0.0)
    np.maximum(cos_t, 0.0, out=cos_t)
    cos_t /= np.maximum(sin_el, 0.05)[g_of]
    beam_ratio = np.clip(cos_t, 0.0, 5.0, out=cos_t)
    poa = 1.0 - kd
    poa *= beam_ratio
    poa += kd * 0.5 * (1.0 + np.cos(tilt))
    poa *= ghi_g[g_of]
    # Cloud noise: shared by the GSP group, correlated between adjacent half hours.
    sigma = cm.model.weather.intraday_cloud_sigma * 4.0 * kt * (1.0 - kt)
    hh = grid.half_hour_ordinal.astype(np.uint64)
    key = streams.stream_key(seed, "weather.cloud_hh")
    gsp_entity = (uniq[:, 0].astype(np.int64) + 1).astype(np.uint64)[:, None]
    if len(hh) > 1 and np.all(np.diff(hh) == 1):  # e1 at hh - 1 is e0 one half hour earlier
        e_ext = streams.normal(key, gsp_entity, np.concatenate([hh[:1] - np.uint64(1), hh])[None, :])
        e0, e1 = e_ext[:, 1:], e_ext[:, :-1]
    else:
        e0 = streams.normal(key, gsp_entity, hh[None, :])
        e1 = streams.normal(key, gsp_entity, hh[None, :] - np.uint64(1))
    z = ((e0 + e1) / np.sqrt(2.0))[g_of]
    site = cm.model.pv.site_sigma
    zs = streams.normal(streams.stream_key(seed, "pv.site"), np.asarray(keys)[:, None], hh[None, :])
    z *= sigma
    z -= 0.5 * sigma * sigma
    zs *= site
    z += zs
    z -= 0.5 * site * site
    shape = poa
    shape *= np.exp(z, out=z)
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
