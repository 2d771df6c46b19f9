"""Weather and sun per GSP group: daily temperature and clearness, solar geometry, lighting.

Daily mean temperature is a climatological cosine per GSP group plus an anomaly; the
daily clearness index (irradiation over its extraterrestrial value) is a seasonal mean on
the logit scale plus an anomaly. Each anomaly is a stationary AR(1) process built as a
truncated moving sum of innovations, ``x_d = sqrt(1 - phi^2) * sum_k phi^k e_(d-k)``, and
each innovation is keyed by (seed, GSP group, day) -- a national innovation keyed by
(seed, day) is shared by all groups. So the weather of any day is a pure function of its
keys: a window regenerates alone, and every MPAN of a GSP group sees the same weather.

Everything here is per GSP group (14 rows), never per MPAN: it is cheap, and results for a
calendar year are cached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from mhhs_pipeline.core import streams
from mhhs_pipeline.core.calendar import EPOCH_DAY, LONDON, day_of_year, day_types, year_day_ordinals
from mhhs_pipeline.spec.load_model import GSP_GROUPS, LoadModel, Weather

N_GSP = len(GSP_GROUPS)
GSP_INDEX = {g: i for i, g in enumerate(GSP_GROUPS)}
SCOTTISH = np.array([g in ("_N", "_P") for g in GSP_GROUPS])
_SOLAR_CONSTANT_KW = 1.367


def _ar1(seed: int, name: str, entities: np.ndarray, days: np.ndarray, phi: float) -> np.ndarray:
    """Unit-variance stationary AR(1) values [len(entities), len(days)], keyed by (seed, entity, day)."""
    if phi <= 0.0:
        return streams.normal(streams.stream_key(seed, name), entities[:, None], days[None, :].astype(np.uint64))
    lags = int(min(400, max(1, math.ceil(math.log(1e-4) / math.log(phi)))))
    first = int(days.min()) - lags + 1
    span = np.arange(first, int(days.max()) + 1, dtype=np.int64)
    e = streams.normal(streams.stream_key(seed, name), entities[:, None], span[None, :].astype(np.uint64))
    out = np.zeros((len(entities), len(span) - lags + 1))
    for k in range(lags):  # x_d = sum_k phi^k e_(d-k), newest lag first
        out += phi**k * e[:, lags - 1 - k : len(span) - k]
    out *= math.sqrt(1.0 - phi * phi)
    pos = days - (first + lags - 1)
    return out[:, pos]


def _anomaly(seed: int, name: str, days: np.ndarray, phi: float, national_share: float) -> np.ndarray:
    """[N_GSP, n] unit-variance anomalies: a national AR(1) plus a regional one."""
    regional = _ar1(seed, f"weather.{name}.regional", np.arange(1, N_GSP + 1, dtype=np.uint64), days, phi)
    national = _ar1(seed, f"weather.{name}.national", np.zeros(1, dtype=np.uint64), days, phi)
    return math.sqrt(national_share) * national + math.sqrt(1.0 - national_share) * regional


def declination_rad(doy: np.ndarray) -> np.ndarray:
    return np.deg2rad(23.44) * np.sin(2.0 * np.pi * (284.0 + doy) / 365.0)


def equation_of_time_h(doy: np.ndarray) -> np.ndarray:
    b = 2.0 * np.pi * (doy - 81.0) / 364.0
    return (9.87 * np.sin(2 * b) - 7.53 * np.cos(b) - 1.5 * np.sin(b)) / 60.0


def hour_angle_rad(doy: np.ndarray, utc_hours: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Solar hour angle (0 at solar noon) for UTC clock hours and longitude (east positive)."""
    solar_time = utc_hours + lon_deg / 15.0 + equation_of_time_h(doy)
    return np.deg2rad(15.0 * (solar_time - 12.0))


def sin_elevation(lat_rad: np.ndarray, decl: np.ndarray, hour_angle: np.ndarray) -> np.ndarray:
    return np.sin(lat_rad) * np.sin(decl) + np.cos(lat_rad) * np.cos(decl) * np.cos(hour_angle)


def extraterrestrial_kwh_m2(lat_rad: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Daily extraterrestrial irradiation on a horizontal plane [kWh/m2/day] (Duffie & Beckman 1.10.3)."""
    decl = declination_rad(doy)
    ws = np.arccos(np.clip(-np.tan(lat_rad) * np.tan(decl), -1.0, 1.0))
    e0 = 1.0 + 0.033 * np.cos(2.0 * np.pi * doy / 365.0)
    return 24.0 / np.pi * _SOLAR_CONSTANT_KW * e0 * (np.cos(lat_rad) * np.cos(decl) * np.sin(ws) + ws * np.sin(lat_rad) * np.sin(decl))


def utc_offset_halfhours(day_ordinals: np.ndarray) -> np.ndarray:
    """Europe/London offset from UTC at noon UTC of each day, in half hours (0 GMT, 2 BST)."""
    days = np.asarray(day_ordinals, dtype=np.int64)
    noon = pd.DatetimeIndex((EPOCH_DAY + days.astype("timedelta64[D]")).astype("datetime64[us]") + np.timedelta64(12, "h"))
    local = noon.tz_localize("UTC").tz_convert(LONDON).tz_localize(None)
    return ((local - noon.tz_localize(None)) / pd.Timedelta(minutes=30)).to_numpy().astype(np.int64)


def local_to_utc_index(day_ordinals: np.ndarray, local_slot: int) -> np.ndarray:
    """Half hours from 00:00 UTC of each day to local clock ``local_slot`` (0..47) on that local date."""
    days = np.asarray(day_ordinals, dtype=np.int64)
    naive = pd.DatetimeIndex((EPOCH_DAY + days.astype("timedelta64[D]")).astype("datetime64[us]") + np.timedelta64(30 * local_slot, "m"))
    utc = naive.tz_localize(LONDON, ambiguous=np.zeros(len(days), dtype=bool), nonexistent="shift_forward").tz_convert("UTC").tz_localize(None)
    midnight = pd.DatetimeIndex((EPOCH_DAY + days.astype("timedelta64[D]")).astype("datetime64[us]"))
    return ((utc - midnight) / pd.Timedelta(minutes=30)).to_numpy().astype(np.int64)


@dataclass(frozen=True)
class DailyWeather:
    """Weather of a run of days for every GSP group (rows in GSP_GROUPS order)."""

    days: np.ndarray  # day ordinals [n]
    temperature_c: np.ndarray  # [N_GSP, n] daily mean
    clearness: np.ndarray  # [N_GSP, n] daily clearness index Kt
    irradiation_kwh_m2: np.ndarray  # [N_GSP, n] global horizontal
    daylight_fraction: np.ndarray  # [N_GSP, n] share of the day with the sun up
    lighting: np.ndarray  # [N_GSP, n] relative daily lighting need (mean 1 over the year)

    def take(self, idx: np.ndarray) -> DailyWeather:
        return DailyWeather(*(a[..., idx] for a in (self.days, self.temperature_c, self.clearness, self.irradiation_kwh_m2, self.daylight_fraction, self.lighting)))


def _climate_arrays(w: Weather) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    c = [w.gsp_climate[g] for g in GSP_GROUPS]
    return (
        np.array([x.mean_temperature_c for x in c]),
        np.array([x.amplitude_c for x in c]),
        np.deg2rad(np.array([x.latitude_deg for x in c])),
        np.array([x.longitude_deg for x in c]),
    )


def _lighting_need(model: LoadModel, days: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Half-hour lighting need [N_GSP, n_days, 48]: darkness x people awake (local clock)."""
    dom = model.domestic
    doy = day_of_year(days).astype(np.float64)
    utc_h = np.arange(48) * 0.5 + 0.25
    ha = hour_angle_rad(doy[None, :, None], utc_h[None, None, :], lon[:, None, None])
    s = sin_elevation(lat[:, None, None], declination_rad(doy)[None, :, None], ha)
    elev = np.rad2deg(np.arcsin(np.clip(s, -1.0, 1.0)))
    dark = np.clip((dom.lighting_elevation_deg - elev) / dom.lighting_ramp_deg, 0.0, 1.0)
    off = utc_offset_halfhours(days)
    local_slot = (np.arange(48)[None, :] + off[:, None]) % 48
    table = np.repeat(np.asarray(dom.lighting_awake), 2)
    delay = dom.weekend_morning_delay_halfhours
    late = np.where(local_slot < 26, np.maximum(local_slot - delay, 0), local_slot)
    awake = np.empty((N_GSP, len(days), 48))
    for scot in (False, True):
        weekend = (day_types(days, scotland=scot) != 0)[:, None]
        awake[SCOTTISH == scot] = np.where(weekend, table[late], table[local_slot])[None, :, :]
    return dark * awake


def _model_key(model: LoadModel) -> str:
    return model.model_dump_json()


_YEAR_CACHE: dict[tuple, DailyWeather] = {}


def year_weather(seed: int, model: LoadModel, year: int) -> DailyWeather:
    """Weather of every day of a calendar year (cached: a few hundred values per group)."""
    key = (seed, _model_key(model), year)
    hit = _YEAR_CACHE.get(key)
    if hit is not None:
        return hit
    w = model.weather
    days = year_day_ordinals(year)
    doy = day_of_year(days).astype(np.float64)
    mean, amp, lat, lon = _climate_arrays(w)
    season = np.cos(2.0 * np.pi * (doy - w.coldest_doy) / 365.25)  # +1 midwinter, -1 midsummer
    sd = 0.5 * (w.temperature_anomaly_sd_winter_c + w.temperature_anomaly_sd_summer_c) + 0.5 * (w.temperature_anomaly_sd_winter_c - w.temperature_anomaly_sd_summer_c) * season
    temp = mean[:, None] - amp[:, None] * season[None, :] + sd[None, :] * _anomaly(seed, "temperature", days, w.temperature_persistence, w.national_share)
    summer = 0.5 * (1.0 - np.cos(2.0 * np.pi * (doy - 355.0) / 365.25))  # 0 at the winter solstice, 1 at the summer one
    kt_mean = w.clearness_winter + (w.clearness_summer - w.clearness_winter) * summer
    logit = np.log(kt_mean / (1.0 - kt_mean))[None, :] + w.clearness_spread * _anomaly(seed, "clearness", days, w.clearness_persistence, w.clearness_national_share)
    kt = np.clip(1.0 / (1.0 + np.exp(-logit)), 0.04, 0.8)
    h0 = extraterrestrial_kwh_m2(lat[:, None], doy[None, :])
    decl = declination_rad(doy)
    daylight = np.arccos(np.clip(-np.tan(lat[:, None]) * np.tan(decl[None, :]), -1.0, 1.0)) / np.pi
    need = _lighting_need(model, days, lat, lon).sum(axis=2)
    out = DailyWeather(days, temp, kt, kt * h0, daylight, need / need.mean(axis=1, keepdims=True))
    if len(_YEAR_CACHE) > 32:
        _YEAR_CACHE.clear()
    _YEAR_CACHE[key] = out
    return out


def weather_for_days(seed: int, model: LoadModel, days: np.ndarray) -> DailyWeather:
    """Weather for arbitrary day ordinals, assembled from the calendar years they fall in."""
    days = np.asarray(days, dtype=np.int64)
    years = (EPOCH_DAY + days.astype("timedelta64[D]")).astype("datetime64[Y]").astype(np.int64) + 1970
    parts = []
    for year in np.unique(years):
        yw = year_weather(seed, model, int(year))
        parts.append((np.flatnonzero(years == year), yw.take(days[years == year] - yw.days[0])))
    if len(parts) == 1:
        return parts[0][1]
    n = len(days)
    arrays = []
    for field in ("days", "temperature_c", "clearness", "irradiation_kwh_m2", "daylight_fraction", "lighting"):
        shape = (n,) if field == "days" else (N_GSP, n)
        a = np.empty(shape)
        for idx, p in parts:
            a[..., idx] = getattr(p, field)
        arrays.append(a)
    arrays[0] = arrays[0].astype(np.int64)
    return DailyWeather(*arrays)


def lighting_profile(model: LoadModel, days: np.ndarray) -> np.ndarray:
    """Half-hour lighting need [N_GSP, n_days * 48], each UTC day summing to 1 (or 0)."""
    _, _, lat, lon = _climate_arrays(model.weather)
    need = _lighting_need(model, np.asarray(days, dtype=np.int64), lat, lon)
    tot = need.sum(axis=2, keepdims=True)
    return (need / np.where(tot > 0, tot, 1.0)).reshape(N_GSP, -1)


@lru_cache(maxsize=8)
def _easter(year: int) -> int:
    """Day ordinal of Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month = (h + el - 7 * m + 114) // 31
    day = ((h + el - 7 * m + 114) % 31) + 1
    return int((np.datetime64(f"{year}-{month:02d}-{day:02d}") - EPOCH_DAY).astype(np.int64))


def school_holidays(model: LoadModel, days: np.ndarray, scotland: bool) -> np.ndarray:
    """True on school-holiday days (England & Wales or Scotland calendar)."""
    days = np.asarray(days, dtype=np.int64)
    terms = model.school_terms
    dates = EPOCH_DAY + days.astype("timedelta64[D]")
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    mmdd = np.char.add(np.char.zfill((dates.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(str), 2), "-")
    mmdd = np.char.add(mmdd, np.char.zfill(((dates - dates.astype("datetime64[M]")).astype(np.int64) + 1).astype(str), 2))
    out = np.zeros(len(days), dtype=bool)
    for a, b in terms.scotland if scotland else terms.england_wales:
        out |= (mmdd >= a) & (mmdd <= b)
    for year in np.unique(years):
        e = _easter(int(year))
        out |= (days >= e - terms.easter_days_before) & (days <= e + terms.easter_days_after)
    return out


def christmas_shutdown(days: np.ndarray) -> np.ndarray:
    """True from 24 December to 1 January."""
    dates = EPOCH_DAY + np.asarray(days, dtype=np.int64).astype("timedelta64[D]")
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1
    is_leap = ((dates.astype("datetime64[Y]").astype(np.int64) + 1970) % 4) == 0
    dec24 = 358 + is_leap.astype(np.int64)
    return (doy >= dec24) | (doy == 1)
