"""The load model's parameters: every number the consumption generator uses, settable in YAML.

A scenario carries them under ``load_model:`` (shapes, weather, heating, EV, PV, per-archetype
parameters) and ``faults:`` (raw-read defects and their estimation). Every model forbids
unknown keys. Mappings keyed by name (``archetypes``, ``domestic.appliances``,
``weather.gsp_climate``) are *merged* over the defaults, so a scenario states only what it
changes::

    load_model:
      archetypes:
        office: {saturday_factor: 0.5}
      ev: {charger_kw: 11.0}
    faults:
      comms_outage_rate_per_meter_day: 0.01

Units are in the names: ``_kw``, ``_kwh``, ``_c`` (degrees Celsius), ``_deg`` (degrees of
arc), ``_doy`` (day of year). Hourly tables are 24 relative levels by *local clock* hour
(index 0 = 00:00-01:00 local); only their relative form matters. What each parameter is
calibrated to is in ``docs/model.md``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from mhhs_pipeline.spec.archetypes import (
    ALL_ARCHETYPES,
    DOMESTIC_ARCHETYPES,
    NON_DOMESTIC_ARCHETYPES,
)
from mhhs_pipeline.spec.strict import StrictModel

GSP_GROUPS = ("_A", "_B", "_C", "_D", "_E", "_F", "_G", "_H", "_J", "_K", "_L", "_M", "_N", "_P")
# Applied with fullmatch (re.match with "$" would take a trailing newline); [0-9], as \d
# also matches non-ASCII digits.
_HHMM = re.compile(r"([01][0-9]|2[0-3]):(00|30)")
_MMDD = re.compile(r"(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")

NonNeg = Annotated[float, Field(ge=0.0)]
Pos = Annotated[float, Field(gt=0.0)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Rate = Annotated[float, Field(ge=0.0, le=0.2)]


_Strict = StrictModel


def _hourly(value: Any, where: str = "hourly table") -> tuple[float, ...]:
    vals = tuple(float(v) for v in value)
    if len(vals) != 24:
        raise ValueError(f"{where} needs 24 values (one per local clock hour 00..23), got {len(vals)}")
    if min(vals) < 0 or max(vals) <= 0:
        raise ValueError(f"{where} values must be >= 0 with at least one > 0")
    return vals


Hourly = Annotated[tuple[float, ...], Field(min_length=24, max_length=24)]


def _range(lo_hi: tuple[float, float], name: str) -> tuple[float, float]:
    lo, hi = lo_hi
    if hi < lo:
        raise ValueError(f"{name} is a (low, high) range; low {lo} > high {hi}: swap them")
    return lo_hi


def _merge(defaults: dict, given: Any, what: str, allow_new: bool = False) -> Any:
    """Deep-merge a user mapping over the defaults (one level of models inside)."""
    if not isinstance(given, dict):
        return given
    unknown = sorted(set(given) - set(defaults))
    if unknown and not allow_new:
        raise ValueError(f"unknown {what} {unknown}; choose from {sorted(defaults)}")
    out = dict(defaults)
    for key, val in given.items():
        base = defaults.get(key)
        if isinstance(base, BaseModel) and isinstance(val, dict):
            out[key] = {**base.model_dump(), **val}
        else:
            out[key] = val
    return out


# --------------------------------------------------------------------------- weather


class GspClimate(_Strict):
    """Climate normals of one GSP group (Met Office 1991-2020 district averages, rounded)."""

    mean_temperature_c: float
    amplitude_c: Pos  # half the difference between the warmest and coldest month means
    latitude_deg: Annotated[float, Field(ge=49.0, le=61.0)]
    longitude_deg: Annotated[float, Field(ge=-9.0, le=2.5)]


_CLIMATE = {
    "_A": (10.6, 6.6, 52.2, 0.6), "_B": (10.1, 6.4, 52.9, -1.2), "_C": (11.6, 6.8, 51.5, -0.1),
    "_D": (10.2, 5.8, 53.2, -3.0), "_E": (10.0, 6.3, 52.5, -2.0), "_F": (9.2, 5.9, 54.9, -1.6),
    "_G": (9.9, 5.9, 53.7, -2.6), "_H": (10.9, 6.2, 51.1, -1.4), "_J": (10.9, 6.4, 51.2, 0.6),
    "_K": (10.5, 5.7, 51.6, -3.4), "_L": (11.0, 5.3, 50.6, -4.0), "_M": (9.8, 6.1, 53.8, -1.3),
    "_N": (8.8, 5.6, 55.7, -3.5), "_P": (8.2, 5.3, 57.3, -4.0),
}  # fmt: skip


def _default_climate() -> dict[str, GspClimate]:
    return {g: GspClimate(mean_temperature_c=m, amplitude_c=a, latitude_deg=la, longitude_deg=lo) for g, (m, a, la, lo) in _CLIMATE.items()}


class Weather(_Strict):
    """Daily weather per GSP group: temperature and clearness, seasonal and persistent (AR(1)).

    An anomaly is the sum of a national and a regional AR(1) process, so neighbouring
    groups share most of their weather. Every value is keyed by (seed, GSP group, day).
    """

    gsp_climate: dict[str, GspClimate] = Field(default_factory=_default_climate)
    coldest_doy: Annotated[float, Field(ge=1, le=366)] = 20.0
    temperature_anomaly_sd_winter_c: NonNeg = 2.8
    temperature_anomaly_sd_summer_c: NonNeg = 2.0
    temperature_persistence: Annotated[float, Field(ge=0.0, le=0.98)] = 0.78
    national_share: Share = 0.85  # share of temperature anomaly variance common to all groups
    clearness_national_share: Share = 0.6  # ... of clearness (cloud) anomaly variance
    clearness_winter: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.30  # mean daily clearness index, December
    clearness_summer: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.45  # ... June
    clearness_spread: Pos = 0.9  # sd of the logit of the clearness index
    clearness_persistence: Annotated[float, Field(ge=0.0, le=0.98)] = 0.45
    intraday_cloud_sigma: NonNeg = 0.55  # half-hour cloud noise at the most broken (mid) clearness

    @field_validator("gsp_climate", mode="before")
    @classmethod
    def _merge_climate(cls, value: Any) -> Any:
        return _merge(_default_climate(), value, "GSP groups")

    @field_validator("gsp_climate")
    @classmethod
    def _all_groups(cls, value: dict[str, GspClimate]) -> dict[str, GspClimate]:
        unknown = sorted(set(value) - set(GSP_GROUPS))
        if unknown:
            raise ValueError(f"unknown GSP groups {unknown}; use {list(GSP_GROUPS)}")
        return value


# --------------------------------------------------------------------------- domestic behaviour


class Appliance(_Strict):
    """A discrete appliance event: one half hour carries ``kwh_per_event``."""

    kwh_per_event: tuple[Pos, Pos]  # (low, high), uniform per event
    events_per_day: NonNeg  # mean, for an owner with median consumption
    ownership: Share
    hourly_propensity: Hourly  # when events happen (local clock)

    @field_validator("hourly_propensity", mode="before")
    @classmethod
    def _h(cls, v: Any) -> Any:
        return _hourly(v, "hourly_propensity")

    @field_validator("kwh_per_event")
    @classmethod
    def _r(cls, v: tuple[float, float]) -> tuple[float, float]:
        return _range(v, "kwh_per_event")


def _default_appliances() -> dict[str, Appliance]:
    return {
        "kettle": Appliance(
            kwh_per_event=(0.06, 0.14), events_per_day=4.0, ownership=0.97,
            hourly_propensity=(0.1, 0.05, 0.02, 0.02, 0.05, 0.2, 1.0, 1.6, 1.3, 0.9, 0.8, 0.8,
                               1.0, 0.8, 0.7, 0.8, 1.0, 1.2, 1.0, 0.9, 0.9, 0.8, 0.5, 0.25)),
        "electric_shower": Appliance(
            kwh_per_event=(0.8, 1.4), events_per_day=0.8, ownership=0.4,
            hourly_propensity=(0.05, 0.0, 0.0, 0.0, 0.05, 0.3, 1.6, 2.0, 1.4, 0.8, 0.4, 0.2,
                               0.1, 0.1, 0.1, 0.15, 0.3, 0.4, 0.5, 0.6, 0.7, 0.7, 0.5, 0.2)),
        "oven_hob": Appliance(
            kwh_per_event=(0.5, 1.1), events_per_day=0.7, ownership=0.7,
            hourly_propensity=(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.2, 0.2, 0.1, 0.1, 0.4,
                               0.8, 0.5, 0.2, 0.3, 1.0, 2.3, 2.4, 1.2, 0.4, 0.15, 0.05, 0.0)),
        "washing_dryer": Appliance(
            kwh_per_event=(0.4, 1.2), events_per_day=0.5, ownership=0.95,
            hourly_propensity=(0.05, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 0.6, 1.0, 1.3, 1.3, 1.2,
                               1.0, 1.0, 1.0, 0.9, 0.9, 0.9, 0.9, 1.0, 1.0, 0.8, 0.4, 0.15)),
    }  # fmt: skip


class Domestic(_Strict):
    """Single-home behaviour shared by every domestic archetype."""

    standby_kw: tuple[NonNeg, NonNeg] = (0.10, 0.20)  # always-on floor (fridge, router, standby)
    standby_max_share: Share = 0.45  # the floor never exceeds this share of a day's mean
    usage_elasticity_standby: NonNeg = 0.3  # floor ~ (annual / 2700 kWh) ** this
    usage_elasticity_events: NonNeg = 0.6  # appliance events per day ~ (annual / 2700 kWh) ** this
    appliances: dict[str, Appliance] = Field(default_factory=_default_appliances)
    activity_sigma: NonNeg = 0.55  # half-hour lognormal noise of the activity load
    activity_correlation: Annotated[float, Field(ge=0.0, le=0.5)] = 0.45  # correlation of that noise between adjacent half hours
    shift_halfhours: Annotated[int, Field(ge=0, le=4)] = 2  # per-home routine shift, +-
    away_share: Share = 0.55  # homes empty on weekday daytime (09:00-16:00)
    away_daytime_factor: NonNeg = 0.45  # their weekday daytime activity relative to others
    lighting_share: Share = 0.10  # of the household (non-heating, non-EV) energy, annual mean
    lighting_elevation_deg: float = 8.0  # lights start coming on below this solar elevation ...
    lighting_ramp_deg: Pos = 12.0  # ... and are fully on this many degrees lower
    weekend_morning_delay_halfhours: Annotated[int, Field(ge=0, le=6)] = 2  # weekend mornings start later
    lighting_awake: Hourly = (0.3, 0.15, 0.05, 0.05, 0.05, 0.15, 0.7, 1.0, 0.8, 0.45, 0.35, 0.3,
                              0.3, 0.3, 0.35, 0.45, 0.7, 1.0, 1.0, 1.0, 0.95, 0.85, 0.7, 0.5)  # fmt: skip
    reference_annual_kwh: Pos = 2700.0  # the "median user" the elasticities refer to
    activity_min_share: Share = 0.15  # activity keeps at least this share of a day when floor + events are large

    @field_validator("appliances", mode="before")
    @classmethod
    def _merge_apps(cls, value: Any) -> Any:
        return _merge(_default_appliances(), value, "appliances", allow_new=True)

    @field_validator("lighting_awake", mode="before")
    @classmethod
    def _h(cls, v: Any) -> Any:
        return _hourly(v, "lighting_awake")

    @field_validator("standby_kw")
    @classmethod
    def _r(cls, v: tuple[float, float]) -> tuple[float, float]:
        return _range(v, "standby_kw")


# --------------------------------------------------------------------------- heating, E7, EV, PV


class Heating(_Strict):
    """Space and water heating driven by heating degree-days."""

    base_temperature_c: float = 15.5  # heating degree-day base (CIBSE / Met Office convention)
    cooling_base_temperature_c: float = 15.5  # cooling degree-day base (CIBSE TM41 uses 15.5 C for both)
    cooling_weather_share: Share = 0.5  # of cooling energy that follows degree-days; the rest runs all year
    cooling_max_relative: Annotated[float, Field(ge=1.0)] = 4.0  # chillers saturate: a hot day's cooling <= this x its mean
    heat_pump_cop_at_7c: Annotated[float, Field(gt=1.0, le=8.0)] = 3.0
    heat_pump_cop_slope_per_c: NonNeg = 0.075
    heat_pump_cop_range: tuple[Pos, Pos] = (1.8, 4.5)
    heat_pump_shape: Hourly = (0.85, 0.82, 0.8, 0.8, 0.85, 1.0, 1.25, 1.3, 1.15, 1.0, 0.95, 0.92,
                               0.9, 0.9, 0.92, 1.0, 1.12, 1.2, 1.2, 1.15, 1.1, 1.02, 0.95, 0.9)  # fmt: skip
    heat_pump_cold_flattening: Share = 0.6  # on the coldest days the shape is this much flatter
    heat_pump_sigma: NonNeg = 0.3  # modulation / defrost noise per half hour
    heat_pump_hot_water_times: dict[str, NonNeg] = Field(default_factory=lambda: {"02:00": 0.6, "13:00": 0.4})
    heat_pump_hot_water_jitter_halfhours: Annotated[int, Field(ge=0, le=8)] = 2  # per-home offset, +-
    direct_heating_shape: Hourly = (0.1, 0.08, 0.08, 0.08, 0.1, 0.5, 1.6, 1.9, 1.4, 0.7, 0.5, 0.45,
                                    0.45, 0.45, 0.5, 0.7, 1.3, 1.8, 1.9, 1.8, 1.6, 1.3, 0.7, 0.25)  # fmt: skip
    direct_heating_sigma: NonNeg = 0.45
    direct_heating_cold_flattening: Share = 0.3  # on the coldest days direct heating runs this much flatter
    cold_day_hdd: Pos = 15.0  # degree-days of a "coldest" day for the flattening above
    heat_pump_mild_hdd: NonNeg = 6.0  # below this, heat pumps cycle on and off within the day
    storage_share_of_electric_heating: Share = 0.6  # the rest is direct (panel) heating
    hot_water_seasonal_amplitude: NonNeg = 0.15  # colder mains water: more water-heating energy in winter

    @field_validator("heat_pump_shape", "direct_heating_shape", mode="before")
    @classmethod
    def _h(cls, v: Any) -> Any:
        return _hourly(v)

    @field_validator("heat_pump_hot_water_times")
    @classmethod
    def _times(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_times(v, "heating.heat_pump_hot_water_times")


def _check_times(v: dict[str, float], where: str) -> dict[str, float]:
    if not v or sum(v.values()) <= 0:
        raise ValueError(f"{where} needs at least one 'HH:MM' time with a positive weight")
    bad = [k for k in v if not _HHMM.fullmatch(k)]
    if bad:
        raise ValueError(f"{where} keys {bad} must be local times on the half hour, 'HH:MM' (e.g. '00:30')")
    return v


class Economy7(_Strict):
    """Multi-rate (Economy 7) night window: storage heaters and immersion heaters charge in it."""

    night_hours: Annotated[int, Field(ge=1, le=12)] = 7
    start_times: dict[str, NonNeg] = Field(default_factory=lambda: {"23:30": 0.15, "00:00": 0.2, "00:30": 0.5, "01:00": 0.15})
    gmt_clock_share: Share = 0.5  # meters whose switching clock stays on GMT all year
    storage_heating_share: Share = 0.45  # E7 homes with storage heaters
    immersion_kw: Pos = 3.0
    hot_water_share: tuple[Share, Share] = (0.12, 0.25)  # of annual energy, by immersion, at night

    @field_validator("start_times")
    @classmethod
    def _times(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_times(v, "economy7.start_times")


class EV(_Strict):
    """Home EV charging in blocks at the charger's power."""

    charger_kw: Pos = 7.0
    sessions_per_week: tuple[NonNeg, NonNeg] = (2.0, 5.0)  # per-home range
    session_sigma: NonNeg = 0.45  # lognormal spread of session energy
    start_times: dict[str, NonNeg] = Field(
        default_factory=lambda: {"23:30": 0.25, "00:00": 0.1, "00:30": 0.3, "02:00": 0.05, "arrival": 0.3}
    )
    arrival_window: tuple[str, str] = ("17:00", "20:00")  # unmanaged "plug in on arrival" charging
    smart_jitter_halfhours: Annotated[int, Field(ge=0, le=8)] = 2  # staggered starts after a tariff start
    max_session_halfhours: Annotated[int, Field(ge=4, le=48)] = 30
    winter_uplift: NonNeg = 0.15  # more kWh per mile in winter

    @field_validator("start_times")
    @classmethod
    def _times(cls, v: dict[str, float]) -> dict[str, float]:
        if not v or sum(v.values()) <= 0:
            raise ValueError("ev.start_times needs at least one entry with a positive weight")
        bad = [k for k in v if k != "arrival" and not _HHMM.fullmatch(k)]
        if bad:
            raise ValueError(f"ev.start_times keys {bad} must be 'HH:MM' local times on the half hour, or 'arrival'")
        return v

    @field_validator("arrival_window")
    @classmethod
    def _win(cls, v: tuple[str, str]) -> tuple[str, str]:
        _check_times(dict.fromkeys(v, 1.0), "ev.arrival_window")
        return v


class PV(_Strict):
    """Rooftop PV behind an export MPAN; the linked import MPAN is reduced by self-consumption."""

    tilt_deg: Annotated[float, Field(ge=0.0, le=90.0)] = 35.0
    orientation_spread_deg: NonNeg = 25.0  # sd of the array azimuth around south
    tilt_gain_winter: NonNeg = 0.45  # extra yield of a tilted array in midwinter relative to horizontal
    self_consumption_factor: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8  # daily self-use / smooth-min(daytime demand, generation)
    site_sigma: NonNeg = 0.1  # per-system half-hour noise (shading, inverter)


class Reactive(_Strict):
    """Reactive power of Advanced sites: Q = tan(phi) P + magnetising - capacitor bank."""

    magnetising_share: NonNeg = 0.08  # constant reactive demand, x tan(phi) x mean active demand
    noise_sigma: NonNeg = 0.08  # half-hour lognormal noise on tan(phi) P
    capacitor_size: tuple[NonNeg, NonNeg] = (0.5, 0.9)  # bank size, x tan(phi) x mean active demand

    @field_validator("capacitor_size")
    @classmethod
    def _r(cls, v: tuple[float, float]) -> tuple[float, float]:
        return _range(v, "reactive.capacitor_size")


class SchoolTerms(_Strict):
    """School holidays (both ends inclusive, 'MM-DD'); Easter holidays are 2 weeks around Easter Sunday."""

    england_wales: list[tuple[str, str]] = Field(
        default_factory=lambda: [("01-01", "01-04"), ("02-14", "02-22"), ("05-25", "05-31"), ("07-22", "09-02"), ("10-24", "11-01"), ("12-20", "12-31")]
    )
    scotland: list[tuple[str, str]] = Field(
        default_factory=lambda: [("01-01", "01-06"), ("02-12", "02-16"), ("06-28", "08-15"), ("10-12", "10-23"), ("12-21", "12-31")]
    )
    easter_days_before: Annotated[int, Field(ge=0, le=21)] = 7
    easter_days_after: Annotated[int, Field(ge=0, le=21)] = 7

    @field_validator("england_wales", "scotland")
    @classmethod
    def _dates(cls, v: list[tuple[str, str]]) -> list[tuple[str, str]]:
        for a, b in v:
            if not (_MMDD.fullmatch(a) and _MMDD.fullmatch(b)):
                raise ValueError(f"school holiday ({a}, {b}) must be 'MM-DD' dates")
            if b < a:
                raise ValueError(f"school holiday ({a}, {b}) ends before it starts; split it at the new year")
        return v


# --------------------------------------------------------------------------- archetypes


class ArchetypeParams(_Strict):
    """One load archetype. Hourly tables are relative activity by local clock hour."""

    weekday: Hourly
    saturday: Hourly
    sunday: Hourly  # also bank holidays (and, for term-time sites, school holidays)
    seasonal_amplitude: float = 0.1  # non-weather seasonality: x (1 + A cos(2 pi (doy - peak) / 365.25))
    seasonal_peak_doy: Annotated[float, Field(ge=1, le=366)] = 15.0
    saturday_factor: NonNeg = 1.0  # daily energy relative to a weekday
    sunday_factor: NonNeg = 1.0
    daily_sigma: NonNeg = 0.15  # day-to-day lognormal noise
    halfhour_sigma: NonNeg = 0.1  # non-domestic half-hour noise (domestic uses domestic.activity_sigma)
    base_fraction: tuple[Share, Share] = (0.1, 0.3)  # non-domestic: flat share of the site load
    event_rate: NonNeg = 0.0  # non-domestic: chance per half hour of a process/machine peak
    event_size: NonNeg = 0.0  # ... its size relative to the half-hour mean
    heating: Literal["none", "direct", "storage", "storage_or_direct", "heat_pump"] = "none"
    heating_share: tuple[Share, Share] = (0.0, 0.0)  # of annual energy, driven by heating degree-days
    heating_owner_share: Share = 1.0  # share of MPANs of the archetype with that heating
    cooling_share: tuple[Share, Share] = (0.0, 0.0)  # of annual energy, driven by cooling degree-days
    hot_water_share: tuple[Share, Share] = (0.0, 0.0)  # heat-pump homes: water heating share
    economy7: bool = False
    ev: bool = False
    ev_share: tuple[Share, Share] = (0.0, 0.0)  # of annual energy charged into the car
    term_time: bool = False  # school holidays behave like Sundays
    christmas_shutdown: bool = False  # 24 Dec - 1 Jan behave like Sundays
    power_factor: tuple[Annotated[float, Field(gt=0.3, le=1.0)], Annotated[float, Field(gt=0.3, le=1.0)]] = (0.92, 0.97)
    pf_correction_share: Share = 0.3  # sites with capacitor banks (leading, RE, at light load)

    @field_validator("weekday", "saturday", "sunday", mode="before")
    @classmethod
    def _h(cls, v: Any) -> Any:
        return _hourly(v)

    @model_validator(mode="after")
    def _ranges(self) -> ArchetypeParams:
        for name in ("base_fraction", "heating_share", "cooling_share", "hot_water_share", "ev_share", "power_factor"):
            _range(getattr(self, name), name)
        if self.heating_share[1] + self.cooling_share[1] + self.hot_water_share[1] + self.ev_share[1] > 0.95:
            raise ValueError("heating + cooling + hot water + EV shares can exceed 95% of annual energy; lower them")
        return self


_DOM_WD = (0.42, 0.3, 0.24, 0.21, 0.21, 0.25, 0.45, 0.8, 0.82, 0.7, 0.66, 0.66,
           0.7, 0.66, 0.64, 0.7, 0.88, 1.12, 1.2, 1.12, 1.0, 0.88, 0.72, 0.55)  # fmt: skip
_DOM_SA = (0.5, 0.36, 0.27, 0.23, 0.22, 0.22, 0.25, 0.38, 0.66, 0.88, 0.92, 0.92,
           0.92, 0.86, 0.82, 0.82, 0.92, 1.08, 1.14, 1.08, 0.98, 0.88, 0.76, 0.6)  # fmt: skip
_DOM_SU = (0.5, 0.37, 0.28, 0.23, 0.22, 0.21, 0.23, 0.34, 0.6, 0.86, 0.96, 1.0,
           1.02, 0.92, 0.84, 0.84, 0.94, 1.1, 1.14, 1.06, 0.96, 0.86, 0.72, 0.56)  # fmt: skip


def _dom(**kw: Any) -> ArchetypeParams:
    base = dict(weekday=_DOM_WD, saturday=_DOM_SA, sunday=_DOM_SU, seasonal_amplitude=0.08, saturday_factor=1.05,
                sunday_factor=1.07, daily_sigma=0.16, power_factor=(0.95, 0.99), pf_correction_share=0.0)  # fmt: skip
    return ArchetypeParams(**(base | kw))


def _flat(v: float) -> tuple[float, ...]:
    return (v,) * 24


def _default_archetypes() -> dict[str, ArchetypeParams]:
    office_wd = (0.3, 0.3, 0.3, 0.3, 0.3, 0.32, 0.45, 0.8, 1.2, 1.35, 1.4, 1.4, 1.38, 1.4, 1.38, 1.32, 1.2, 0.95, 0.6, 0.45, 0.38, 0.34, 0.32, 0.3)
    retail_wd = (0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.45, 0.75, 1.15, 1.3, 1.35, 1.35, 1.35, 1.35, 1.35, 1.35, 1.35, 1.3, 1.2, 1.0, 0.7, 0.45, 0.38, 0.36)
    retail_su = (0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.4, 0.55, 0.8, 1.15, 1.25, 1.25, 1.25, 1.2, 1.1, 0.8, 0.5, 0.4, 0.37, 0.36, 0.35, 0.35, 0.35)
    ind1 = (0.3,) * 6 + (0.9, 1.4, 1.45, 1.45, 1.45, 1.4, 1.3, 1.4, 1.4, 1.3, 0.6) + (0.3,) * 7
    ind2 = (0.35,) * 5 + (0.8,) + (1.25,) * 16 + (0.6, 0.35)
    ind3 = (1.0,) * 6 + (1.05,) * 16 + (1.0,) * 2
    school_wd = (0.3,) * 6 + (0.45, 0.9, 1.5, 1.6, 1.6, 1.6, 1.6, 1.55, 1.45, 1.1, 0.7, 0.5) + (0.35,) * 6
    agri = (0.5, 0.5, 0.5, 0.5, 0.6, 1.6, 1.8, 1.4, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.9, 1.5, 1.8, 1.4, 0.9, 0.7, 0.6, 0.55, 0.5, 0.5)
    always = (0.95,) * 7 + (1.03,) * 12 + (0.98,) * 5
    return {
        "domestic_unrestricted": _dom(heating="direct", heating_share=(0.0, 0.06)),
        "domestic_low_user": _dom(seasonal_amplitude=0.06, daily_sigma=0.18),
        "domestic_economy7": _dom(economy7=True, heating="storage", heating_share=(0.35, 0.6), heating_owner_share=0.45),
        "domestic_electric_heating": _dom(heating="storage_or_direct", heating_share=(0.5, 0.72), economy7=False),
        "domestic_heat_pump": _dom(heating="heat_pump", heating_share=(0.5, 0.68), hot_water_share=(0.12, 0.2), daily_sigma=0.12),
        "domestic_ev": _dom(ev=True, ev_share=(0.3, 0.55)),
        "office": ArchetypeParams(weekday=office_wd, saturday=_flat(0.3), sunday=_flat(0.3), seasonal_amplitude=0.06, saturday_factor=0.4,
                                  sunday_factor=0.35, daily_sigma=0.06, halfhour_sigma=0.08, base_fraction=(0.15, 0.3), heating="direct",
                                  heating_share=(0.05, 0.15), cooling_share=(0.03, 0.1), christmas_shutdown=True, power_factor=(0.93, 0.98)),
        "retail": ArchetypeParams(weekday=retail_wd, saturday=retail_wd, sunday=retail_su, seasonal_amplitude=0.05, saturday_factor=1.0,
                                  sunday_factor=0.75, daily_sigma=0.06, halfhour_sigma=0.08, base_fraction=(0.2, 0.35), heating="direct",
                                  heating_share=(0.03, 0.1), cooling_share=(0.03, 0.1), power_factor=(0.92, 0.97)),
        "industrial_1_shift": ArchetypeParams(weekday=ind1, saturday=_flat(0.3), sunday=_flat(0.3), seasonal_amplitude=0.05, saturday_factor=0.45,
                                              sunday_factor=0.35, daily_sigma=0.07, halfhour_sigma=0.1, base_fraction=(0.1, 0.25), event_rate=0.02,
                                              event_size=0.8, heating="direct", heating_share=(0.02, 0.08), christmas_shutdown=True, power_factor=(0.82, 0.92)),
        "industrial_2_shift": ArchetypeParams(weekday=ind2, saturday=_flat(0.35), sunday=_flat(0.35), seasonal_amplitude=0.04, saturday_factor=0.5,
                                              sunday_factor=0.4, daily_sigma=0.06, halfhour_sigma=0.08, base_fraction=(0.12, 0.25), event_rate=0.02,
                                              event_size=0.6, heating="direct", heating_share=(0.02, 0.06), christmas_shutdown=True, power_factor=(0.84, 0.93)),
        "industrial_3_shift": ArchetypeParams(weekday=ind3, saturday=ind3, sunday=_flat(1.0), seasonal_amplitude=0.03, saturday_factor=0.92,
                                              sunday_factor=0.85, daily_sigma=0.04, halfhour_sigma=0.06, base_fraction=(0.4, 0.7), event_rate=0.02,
                                              event_size=0.3, power_factor=(0.86, 0.95)),
        "always_on": ArchetypeParams(weekday=always, saturday=_flat(0.97), sunday=_flat(0.96), seasonal_amplitude=0.02, saturday_factor=0.98,
                                     sunday_factor=0.97, daily_sigma=0.03, halfhour_sigma=0.04, base_fraction=(0.6, 0.85),
                                     cooling_share=(0.03, 0.1), power_factor=(0.95, 0.99), pf_correction_share=0.5),
        "school": ArchetypeParams(weekday=school_wd, saturday=_flat(0.3), sunday=_flat(0.3), seasonal_amplitude=0.15, saturday_factor=0.3,
                                  sunday_factor=0.28, daily_sigma=0.07, halfhour_sigma=0.1, base_fraction=(0.12, 0.25), heating="direct",
                                  heating_share=(0.05, 0.15), term_time=True, christmas_shutdown=True, power_factor=(0.92, 0.98)),
        "agricultural": ArchetypeParams(weekday=agri, saturday=agri, sunday=agri, seasonal_amplitude=0.2, seasonal_peak_doy=280.0,
                                        daily_sigma=0.12, halfhour_sigma=0.2, base_fraction=(0.1, 0.25), event_rate=0.03, event_size=1.0,
                                        power_factor=(0.8, 0.9)),
    }  # fmt: skip


class LoadModel(_Strict):
    """Every parameter of the load model (see docs/model.md)."""

    archetypes: dict[str, ArchetypeParams] = Field(default_factory=_default_archetypes)
    domestic: Domestic = Field(default_factory=Domestic)
    heating: Heating = Field(default_factory=Heating)
    economy7: Economy7 = Field(default_factory=Economy7)
    ev: EV = Field(default_factory=EV)
    pv: PV = Field(default_factory=PV)
    reactive: Reactive = Field(default_factory=Reactive)
    weather: Weather = Field(default_factory=Weather)
    school_terms: SchoolTerms = Field(default_factory=SchoolTerms)

    @field_validator("archetypes", mode="before")
    @classmethod
    def _merge_archetypes(cls, value: Any) -> Any:
        return _merge(_default_archetypes(), value, "archetypes")

    @field_validator("archetypes")
    @classmethod
    def _known(cls, value: dict[str, ArchetypeParams]) -> dict[str, ArchetypeParams]:
        known = set(DOMESTIC_ARCHETYPES) | set(NON_DOMESTIC_ARCHETYPES)
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"load_model.archetypes has unknown archetypes {unknown}; choose from {sorted(known)}")
        return value


class FaultModel(_Strict):
    """Raw-read defects (``meter_reads_raw``) and how a data service estimates them.

    Rates are per meter-day (events that start on a day) or per half hour. Defects that make
    a read unusable (missing, zero runs, spikes, unit slips, sentinels) become estimates in
    the canonical consumption; duplicates, off-grid timestamps and late arrivals are fixed by
    the data service and stay actual. ``ground_truth`` holds the true value of each.
    """

    comms_outage_rate_per_meter_day: Rate = 0.0015  # missing runs; DI-076 reason 4 CommsFault
    comms_outage_halfhours: tuple[Annotated[int, Field(ge=2)], Annotated[int, Field(ge=2)]] = (2, 240)  # log-uniform length
    missing_read_rate: Rate | None = None  # single missing half hours (reason 2); None: generation.estimate_share
    zero_run_rate_per_meter_day: Rate = 0.0003  # stuck-at-zero runs (reason 3 Invalid)
    zero_run_halfhours: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] = (4, 96)
    spike_rate: Rate = 0.0002  # per half hour (reason 3)
    spike_factor: tuple[Pos, Pos] = (10.0, 100.0)
    max_value_rate: Rate = 0.0001  # 16,777,215 Wh sentinel (reason 3)
    unit_slip_rate_per_meter_day: Rate = 0.0003  # a day's batch in the wrong unit, x1000 (reason 3)
    duplicate_rate: Rate = 0.0005  # per half hour: the read delivered twice (kept actual)
    off_grid_rate: Rate = 0.0002  # per half hour: timestamp off the :00/:30 grid (kept actual)
    off_grid_max_seconds: Annotated[int, Field(ge=1, le=899)] = 300
    late_arrival_rate_per_meter_day: Rate = 0.002  # a day's batch arrives days late (kept actual)
    late_arrival_days: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] = (1, 10)
    spike_offset_kwh: tuple[NonNeg, NonNeg] = (1.0, 10.0)  # added to a spike (so zero reads spike too)
    duplicate_delay_hours: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] = (1, 23)
    dcc_arrival_hours: tuple[NonNeg, NonNeg] = (1.0, 6.0)  # normal arrival, hours after the UTC day ends
    amr_arrival_hours: tuple[NonNeg, NonNeg] = (2.0, 8.0)

    @model_validator(mode="after")
    def _ranges(self) -> FaultModel:
        for name in ("comms_outage_halfhours", "zero_run_halfhours", "spike_factor", "late_arrival_days", "spike_offset_kwh",
                     "duplicate_delay_hours", "dcc_arrival_hours", "amr_arrival_hours"):  # fmt: skip
            _range(getattr(self, name), f"faults.{name}")
        if self.comms_outage_halfhours[1] > 48 * 14:
            raise ValueError("faults.comms_outage_halfhours longer than 14 days; shorten it")
        if self.zero_run_halfhours[1] > 48 * 14:
            raise ValueError("faults.zero_run_halfhours longer than 14 days; shorten it")
        return self


__all__ = [
    "ALL_ARCHETYPES",
    "Appliance",
    "ArchetypeParams",
    "Domestic",
    "EV",
    "Economy7",
    "FaultModel",
    "GspClimate",
    "Heating",
    "LoadModel",
    "PV",
    "Reactive",
    "SchoolTerms",
    "Weather",
]
