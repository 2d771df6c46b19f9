"""Statistical properties of the load model on generated data.

One full calendar year of a mixed population (every archetype, PV pairs, Advanced sites)
is generated once per module; a winter and a summer fortnight of many ordinary homes
check the GB aggregate shape. Thresholds are set from GB calibration targets with room for
sampling noise (docs/model.md lists the values measured).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import scenario

from mhhs_pipeline.core.load import generate_consumption
from mhhs_pipeline.core.load.archetypes import ARCH_INDEX
from mhhs_pipeline.core.load.daily import HEAT_PUMP
from mhhs_pipeline.core.load.generator import simulate
from mhhs_pipeline.core.load.weather import (
    GSP_GROUPS,
    declination_rad,
    hour_angle_rad,
    weather_for_days,
    year_weather,
)
from mhhs_pipeline.core.registrations import synthesise_registrations

YEAR = {
    "window.start": "2026-01-01",
    "window.end": "2026-12-31",
    "population.mpans": 260,
    "population.advanced_share": 0.12,
    "population.domestic_share_of_smart": 0.8,
    "population.pv_share_of_domestic": 0.25,
    "population.de_energisation_rate_per_year": 0.0,
    "population.de_energised_share": 0.0,
    "population.new_connection_share": 0.0,
    "population.archetypes.domestic": {
        "domestic_unrestricted": 1, "domestic_economy7": 1, "domestic_electric_heating": 1,
        "domestic_heat_pump": 1, "domestic_ev": 1, "domestic_low_user": 1,
    },
    "population.archetypes.non_domestic": {
        "office": 1, "retail": 1, "industrial_1_shift": 1, "industrial_2_shift": 1,
        "industrial_3_shift": 1, "always_on": 1, "school": 1, "agricultural": 1,
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def year():
    sc = scenario(**YEAR)
    reg = synthesise_registrations(sc, 0, YEAR["population.mpans"])
    d0, d1 = dt.date(2026, 1, 1), dt.date(2026, 12, 31)
    sim = simulate(sc, reg, d0, d1)
    gen = generate_consumption(sc, reg, d0, d1)
    return sc, reg, sim, gen


def _fortnight_shape(start: str, end: str, n: int = 1500) -> pd.DataFrame:
    sc = scenario(**{"window.start": start, "window.end": end, "population.mpans": n, "population.advanced_share": 0.0, "population.pv_share_of_domestic": 0.0,
                     "population.archetypes.domestic": {"domestic_unrestricted": 1.0}})  # fmt: skip
    reg = synthesise_registrations(sc, 0, n)
    gen = generate_consumption(sc, reg, sc.window.start, sc.window.end)
    t = gen.table
    energised = np.asarray(reg.column("energisation_status").to_numpy(zero_copy_only=False))[gen.registration_row] == "E"
    domestic = np.asarray(reg.column("domestic_premise").to_numpy(zero_copy_only=False))[gen.registration_row]
    local = pd.DatetimeIndex(t.column("period_end_utc").to_numpy()).tz_localize("UTC").tz_convert("Europe/London") - pd.Timedelta(minutes=30)
    df = pd.DataFrame({"kwh": t.column("consumption_kwh").to_numpy(), "hour": local.hour + local.minute / 60.0, "weekend": local.day_of_week >= 5})
    df = df[energised & domestic]
    return df.groupby(["weekend", "hour"]).kwh.mean().unstack(0) * 2.0  # mean kW per home


def test_gb_domestic_aggregate_shape_winter_and_summer():
    for start, end in (("2026-01-12", "2026-01-25"), ("2026-06-15", "2026-06-28")):
        kw = _fortnight_shape(start, end)
        wd, we = kw[False], kw[True]
        assert 2.5 <= wd.idxmin() < 5.5 and 2.5 <= we.idxmin() < 5.5, (start, wd.idxmin(), we.idxmin())  # night trough
        assert 17.0 <= wd.idxmax() <= 19.5, (start, wd.idxmax())  # evening peak
        assert wd.max() / wd.min() > 2.2
        morning_wd = wd.loc[6.0:8.5].idxmax()
        assert 6.5 <= morning_wd <= 8.5 and wd.loc[morning_wd] > 1.5 * wd.min()  # morning rise
        # weekends: a later morning, busier middle of the day, flatter overall
        assert wd.loc[6.5:7.5].mean() > 1.1 * we.loc[6.5:7.5].mean()
        assert we.loc[10.0:14.0].mean() > 1.1 * wd.loc[10.0:14.0].mean()
        assert we.max() / we.mean() < wd.max() / wd.mean()


def test_single_homes_are_spiky_with_a_standby_floor(year):
    _, _, sim, _ = year
    rows = np.flatnonzero((sim.series_mq == 0) & (sim.m.arch[sim.series_mpan] == ARCH_INDEX["domestic_unrestricted"]))
    v = sim.values[rows].reshape(len(rows), -1)
    peak_to_mean = v.max(axis=1) / v.mean(axis=1)
    floor_kw = 2.0 * np.quantile(v, 0.02, axis=1)
    assert np.median(peak_to_mean) > 8  # kettles, showers, ovens
    assert 0.06 <= np.median(floor_kw) <= 0.25  # standby ~100-200 W
    lag1 = [np.corrcoef(x[1:], x[:-1])[0, 1] for x in v[:20]]
    assert 0.0 < np.median(lag1) < 0.7  # intermittent, not white noise nor smooth


def _daily(sim, arch_name: str, mq: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rows = np.flatnonzero((sim.series_mq == mq) & (sim.m.arch[sim.series_mpan] == (ARCH_INDEX[arch_name] if arch_name != "pv_export" else -1)))
    return rows, sim.values[rows].sum(axis=2)


def test_seasonal_and_weekly_ratios(year):
    _, _, sim, _ = year
    days = pd.to_datetime(sim.days, unit="D")
    winter = np.isin(days.month, [12, 1, 2])
    summer = np.isin(days.month, [6, 7, 8])
    weekend = days.day_of_week >= 5
    ratios = {}
    for name in ("domestic_unrestricted", "domestic_heat_pump", "domestic_electric_heating", "office", "industrial_3_shift"):
        _, d = _daily(sim, name)
        agg = d.mean(axis=0)
        ratios[name] = (agg[winter].mean() / agg[summer].mean(), agg[~weekend].mean() / agg[weekend].mean())
    assert 1.15 < ratios["domestic_unrestricted"][0] < 1.9
    assert ratios["domestic_heat_pump"][0] > 2.5 and ratios["domestic_electric_heating"][0] > 2.5
    assert ratios["domestic_unrestricted"][1] < 1.0  # homes use more at weekends
    assert ratios["office"][1] > 1.8 and 0.9 < ratios["industrial_3_shift"][1] < 1.3


def test_heat_pump_responds_to_temperature(year):
    _, _, sim, _ = year
    rows = np.flatnonzero((sim.series_mq == 0) & (sim.traits.heat_kind[sim.series_mpan] == HEAT_PUMP))
    assert len(rows) >= 5
    d = sim.values[rows].sum(axis=2)
    rel = d / d.mean(axis=1, keepdims=True)
    temp = sim.daily.temperature_c[sim.series_mpan[rows]]
    assert np.corrcoef(temp.ravel(), rel.ravel())[0, 1] < -0.8
    assert rel[temp < 3].mean() > 2.5 * rel[temp > 13].mean()


def test_full_year_matches_annual_consumption_within_one_percent(year):
    _, reg, _, gen = year
    t = gen.table
    df = pd.DataFrame({"core": t.column("mpan_core").to_numpy(zero_copy_only=False), "mq": t.column("measurement_quantity").to_numpy(zero_copy_only=False), "kwh": t.column("consumption_kwh").to_numpy()})
    sums = df[df.mq.isin(["AI", "AE"])].groupby("core").kwh.sum()
    r = reg.to_pandas().groupby("mpan_core").last()
    rel = (sums / r.annual_consumption_kwh.loc[sums.index] - 1).abs()
    assert set(r.archetype) >= {"domestic_ev", "domestic_economy7", "domestic_heat_pump", "pv_export", "school", "always_on"}
    assert rel.max() < 0.01, rel.groupby(r.archetype.loc[sums.index]).max()


def test_pv_export_zero_at_night_peaks_near_solar_noon_and_is_seasonal(year):
    sc, _, sim, _ = year
    rows, d = _daily(sim, "pv_export", mq=1)
    assert len(rows) >= 10
    v = sim.values[rows]  # [p, D, 48]
    clim = sc.load_model.weather.gsp_climate
    gsp = sim.m.gsp[sim.series_mpan[rows]]
    lat = np.deg2rad([clim[GSP_GROUPS[g]].latitude_deg for g in gsp])[:, None, None]
    lon = np.array([clim[GSP_GROUPS[g]].longitude_deg for g in gsp])[:, None, None]
    doy = (np.arange(v.shape[1]) + 1.0)[None, :, None]
    h = hour_angle_rad(doy, (np.arange(48) * 0.5 + 0.25)[None, None, :], lon)
    decl = declination_rad(doy)
    sin_el = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(h)
    assert (v[np.broadcast_to(sin_el < -0.02, v.shape)] == 0).all()  # the sun is down: nothing
    by_slot = v.sum(axis=(0, 1))
    peak_utc = (np.argmax(by_slot) + 0.5) / 2.0
    assert 11.0 <= peak_utc <= 13.5  # GB solar noon ~12:10 UTC
    months = pd.to_datetime(sim.days, unit="D").month
    assert d[:, months == 6].mean() > 4 * d[:, months == 12].mean()
    # Import of the linked home is reduced while the sun shines: PV homes import less at noon.
    imp_rows = np.flatnonzero(np.isin(sim.series_mpan, sim.m.link[sim.series_mpan[rows]]) & (sim.series_mq == 0))
    share_noon = sim.values[imp_rows][:, months == 6, 22:28].sum() / sim.values[imp_rows][:, months == 6].sum()
    other = np.flatnonzero((sim.series_mq == 0) & (sim.m.arch[sim.series_mpan] == ARCH_INDEX["domestic_unrestricted"]) & (sim.m.pv_row[sim.series_mpan] < 0))
    share_other = sim.values[other][:, months == 6, 22:28].sum() / sim.values[other][:, months == 6].sum()
    assert share_noon < 0.8 * share_other


def test_non_domestic_load_factors_match_profile_classes(year):
    _, _, sim, _ = year
    lf = {}
    for name in ("office", "retail", "school", "industrial_1_shift", "industrial_2_shift", "industrial_3_shift", "always_on", "agricultural"):
        rows, _ = _daily(sim, name)
        v = sim.values[rows].reshape(len(rows), -1)
        lf[name] = float(np.median(v.mean(axis=1) / v.max(axis=1)))
    # Legacy profile classes 5-8 band load factors at 20/30/40 %: day-time sites low, 24-hour sites high.
    for name in ("office", "school", "industrial_1_shift", "agricultural"):
        assert 0.1 < lf[name] < 0.45, lf
    assert lf["industrial_2_shift"] > lf["industrial_1_shift"]
    assert lf["industrial_3_shift"] > 0.5 and lf["always_on"] > 0.6, lf


def test_reactive_power_for_advanced_sites(year):
    _, _, sim, gen = year
    t = gen.table.to_pandas()
    adv = set(sim.m.core[sim.m.advanced & (sim.m.arch >= 0)])
    a = t[t.mpan_core.isin(adv)]
    assert set(a.measurement_quantity) == {"AI", "RI", "RE"}
    tot = a.pivot_table(index="mpan_core", columns="measurement_quantity", values="consumption_kwh", aggfunc="sum")
    pf = tot.AI / np.sqrt(tot.AI**2 + (tot.RI - tot.RE) ** 2)
    assert pf.between(0.75, 1.0).all() and 0.85 < pf.median() < 0.99
    assert ((tot.RE > 0).mean() > 0.05) and ((tot.RE == 0).mean() > 0.3)  # only capacitor-corrected sites export reactive


def test_weather_is_seasonal_persistent_shared_and_window_independent():
    sc = scenario()
    model = sc.load_model
    yw = year_weather(sc.seed, model, 2026)
    t = yw.temperature_c
    london, north = GSP_GROUPS.index("_C"), GSP_GROUPS.index("_P")
    assert t[london, 170:230].mean() - t[london, :45].mean() > 8  # seasonal
    assert t[north].mean() < t[london].mean() - 2  # Scotland colder
    doy = np.arange(1, 366)
    anomaly = t[london] - (11.6 - 6.8 * np.cos(2 * np.pi * (doy - 20) / 365.25))
    assert 0.6 < np.corrcoef(anomaly[1:], anomaly[:-1])[0, 1] < 0.92  # day-to-day persistence
    assert np.corrcoef(t[london] - t[london].mean(), t[north] - t[north].mean())[0, 1] > 0.8  # shared weather
    assert 0.2 < yw.clearness.mean() < 0.55
    days = yw.days[100:110]
    assert np.array_equal(weather_for_days(sc.seed, model, days).temperature_c, t[:, 100:110])
    other = year_weather(sc.seed + 1, model, 2026)
    assert not np.allclose(other.temperature_c, t)


def _offices(gsps: list[str], start: str, end: str):
    sc = scenario(**{"window.start": start, "window.end": end, "population.mpans": 2 * len(gsps), "population.de_energisation_rate_per_year": 0.0, "population.de_energised_share": 0.0, "population.new_connection_share": 0.0, "population.pv_share_of_domestic": 0.0})
    reg = synthesise_registrations(sc, 0, 2 * len(gsps)).slice(0, len(gsps))
    reg = reg.set_column(reg.schema.get_field_index("gsp_group"), "gsp_group", pa.array(gsps))
    reg = reg.set_column(reg.schema.get_field_index("archetype"), "archetype", pa.array(["office"] * len(gsps)))
    reg = reg.set_column(reg.schema.get_field_index("domestic_premise"), "domestic_premise", pa.array([False] * len(gsps)))
    return sc, reg


def test_bank_holidays_follow_england_or_scotland():
    sc, reg = _offices(["_C", "_C", "_N", "_P"], "2026-08-01", "2026-08-31")
    sim = simulate(sc, reg, sc.window.start, sc.window.end)
    d = sim.values.sum(axis=2)  # [S, 31]
    d = d / np.median(d[:, [3, 4, 5, 6, 10, 11, 12, 13, 17, 18, 19, 20]], axis=1, keepdims=True)  # typical Tue-Fri
    scot = sim.m.scotland[sim.series_mpan]
    aug3, aug31 = 2, 30  # first Monday (Scottish bank holiday), last Monday (England & Wales)
    assert (d[scot, aug3] < 0.6).all() and (d[~scot, aug3] > 0.75).all(), d[:, aug3]
    assert (d[~scot, aug31] < 0.6).all() and (d[scot, aug31] > 0.75).all(), d[:, aug31]


def test_behaviour_follows_the_local_clock():
    """Offices open at 08:00 local: 08:00 UTC in winter, 07:00 UTC in summer."""
    for start, open_utc in (("2026-01-12", 8.0), ("2026-06-15", 7.0)):
        end = (dt.date.fromisoformat(start) + dt.timedelta(days=4)).isoformat()  # Monday..Friday
        sc, reg = _offices(["_C"] * 6, start, end)
        sim = simulate(sc, reg, sc.window.start, sc.window.end)
        prof = sim.values.sum(axis=(0, 1))
        ramp = np.argmax(np.diff(prof)) / 2.0 + 0.5  # steepest rise, in UTC hours (period end)
        assert abs(ramp - open_utc) <= 1.0, (start, ramp)
