"""Archetype parameters: intra-day shapes by local clock hour, seasonality, day types.

Shapes are relative hourly levels by *local clock* hour (index 0 = 00:00-01:00 local),
for weekdays and weekends; they are interpolated to half hours and normalised per day by
the generator, so only their relative form matters. Calibration targets (documented in
docs/model.md): GB domestic aggregate with a night trough 03:00-05:00, a morning rise, an
evening peak 17:00-19:00 and winter days heavier than summer (Elexon profile classes 1-2
and the Ofgem TDCVs); non-domestic load factors in the ranges of profile classes 3-8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Archetype:
    weekday_hourly: tuple[float, ...]
    weekend_hourly: tuple[float, ...]
    seasonal_amplitude: float  # winter/summer swing: daily energy x (1 + A cos(season))
    saturday_factor: float  # daily energy on Saturdays relative to weekdays
    sunday_factor: float  # ... on Sundays and bank holidays
    daily_sigma: float  # day-to-day lognormal variation of one meter
    halfhour_sigma: float  # half-hour lognormal variation (appliance noise)
    spike_probability: float  # chance per half hour of an appliance event
    base_fraction: tuple[float, float]  # per-MPAN range of flat (standby) share of load
    tan_phi: float = 0.3  # reactive import per active import (Advanced sites)


_DOM_WEEKDAY = (0.42, 0.36, 0.33, 0.31, 0.31, 0.34, 0.52, 0.85, 0.82, 0.66, 0.6, 0.6,
                0.64, 0.6, 0.58, 0.64, 0.84, 1.18, 1.32, 1.22, 1.06, 0.92, 0.74, 0.55)  # fmt: skip
_DOM_WEEKEND = (0.46, 0.38, 0.34, 0.32, 0.31, 0.32, 0.38, 0.54, 0.78, 0.9, 0.88, 0.86,
                0.9, 0.82, 0.76, 0.76, 0.9, 1.16, 1.26, 1.16, 1.02, 0.92, 0.76, 0.58)  # fmt: skip


def _mix(shape: tuple[float, ...], add: dict[int, float], scale: float = 1.0) -> tuple[float, ...]:
    return tuple(v * scale + add.get(h, 0.0) for h, v in enumerate(shape))


ARCHETYPES: dict[str, Archetype] = {
    "domestic_unrestricted": Archetype(_DOM_WEEKDAY, _DOM_WEEKEND, 0.22, 1.06, 1.08, 0.18, 0.45, 0.05, (0.12, 0.3)),
    "domestic_low_user": Archetype(_DOM_WEEKDAY, _DOM_WEEKEND, 0.15, 1.04, 1.05, 0.2, 0.4, 0.04, (0.25, 0.45)),
    # Economy 7: storage heating and hot water on the 7 night hours (00:30-07:30 local).
    "domestic_economy7": Archetype(
        _mix(_DOM_WEEKDAY, {0: 1.3, 1: 1.9, 2: 1.9, 3: 1.9, 4: 1.9, 5: 1.8, 6: 1.2}, 0.8),
        _mix(_DOM_WEEKEND, {0: 1.3, 1: 1.9, 2: 1.9, 3: 1.9, 4: 1.9, 5: 1.8, 6: 1.2}, 0.8),
        0.45, 1.05, 1.07, 0.16, 0.35, 0.04, (0.08, 0.2)),
    "domestic_electric_heating": Archetype(
        _mix(_DOM_WEEKDAY, {6: 0.9, 7: 1.2, 8: 0.8, 16: 0.6, 17: 0.9, 18: 0.9, 19: 0.8, 20: 0.7, 21: 0.5}),
        _mix(_DOM_WEEKEND, {7: 0.8, 8: 1.0, 9: 0.8, 16: 0.6, 17: 0.9, 18: 0.9, 19: 0.8, 20: 0.7, 21: 0.5}),
        0.7, 1.05, 1.07, 0.2, 0.3, 0.03, (0.08, 0.2)),
    "domestic_heat_pump": Archetype(
        _mix(_DOM_WEEKDAY, {h: 0.5 for h in range(24)} | {5: 0.9, 6: 1.0, 16: 0.8, 17: 0.8}),
        _mix(_DOM_WEEKEND, {h: 0.5 for h in range(24)} | {6: 0.8, 7: 0.9, 16: 0.8, 17: 0.8}),
        0.65, 1.03, 1.04, 0.15, 0.25, 0.03, (0.1, 0.25)),
    # EV: 7 kW overnight charging blocks on a tariff window (00:00-04:00 local).
    "domestic_ev": Archetype(
        _mix(_DOM_WEEKDAY, {0: 1.8, 1: 2.2, 2: 2.2, 3: 1.6}),
        _mix(_DOM_WEEKEND, {0: 1.6, 1: 2.0, 2: 2.0, 3: 1.4}),
        0.18, 1.05, 1.07, 0.3, 0.45, 0.04, (0.08, 0.2)),
    "office": Archetype(
        (0.3, 0.3, 0.3, 0.3, 0.3, 0.32, 0.45, 0.8, 1.2, 1.35, 1.4, 1.4, 1.38, 1.4, 1.38, 1.32, 1.2, 0.95, 0.6, 0.45, 0.38, 0.34, 0.32, 0.3),
        (0.3,) * 24, 0.25, 0.4, 0.35, 0.08, 0.12, 0.005, (0.15, 0.3), 0.35),
    "retail": Archetype(
        (0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.45, 0.75, 1.15, 1.3, 1.35, 1.35, 1.35, 1.35, 1.35, 1.35, 1.35, 1.3, 1.2, 1.0, 0.7, 0.45, 0.38, 0.36),
        (0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.4, 0.6, 0.9, 1.15, 1.25, 1.3, 1.3, 1.3, 1.25, 1.2, 1.1, 0.9, 0.7, 0.5, 0.4, 0.37, 0.36, 0.35),
        0.15, 0.95, 0.7, 0.08, 0.12, 0.005, (0.15, 0.3), 0.3),
    "industrial_1_shift": Archetype(
        (0.3,) * 6 + (1.0, 1.4, 1.45, 1.45, 1.45, 1.4, 1.3, 1.4, 0.6) + (0.3,) * 9,
        (0.3,) * 24, 0.1, 0.45, 0.35, 0.08, 0.1, 0.005, (0.15, 0.3), 0.45),
    "industrial_2_shift": Archetype(
        (0.35,) * 6 + (1.2,) * 16 + (0.5, 0.35),
        (0.35,) * 24, 0.1, 0.5, 0.4, 0.08, 0.1, 0.005, (0.15, 0.3), 0.45),
    "industrial_3_shift": Archetype(
        (1.0,) * 24, (0.85,) * 24, 0.06, 0.9, 0.85, 0.05, 0.08, 0.003, (0.2, 0.4), 0.5),
    "always_on": Archetype(
        (0.92,) * 7 + (1.02,) * 12 + (0.96,) * 5, (0.95,) * 24, 0.08, 0.98, 0.97, 0.03, 0.05, 0.002, (0.5, 0.7), 0.35),
    "school": Archetype(
        (0.3,) * 6 + (0.45, 0.9, 1.5, 1.6, 1.6, 1.6, 1.6, 1.55, 1.45, 1.1, 0.7, 0.5) + (0.35,) * 6,
        (0.3,) * 24, 0.35, 0.3, 0.28, 0.08, 0.12, 0.005, (0.15, 0.3), 0.3),
    "agricultural": Archetype(
        (0.5, 0.5, 0.5, 0.5, 0.6, 1.6, 1.8, 1.4, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.9, 1.5, 1.8, 1.4, 0.9, 0.7, 0.6, 0.55, 0.5, 0.5),
        (0.5, 0.5, 0.5, 0.5, 0.6, 1.6, 1.8, 1.4, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.9, 1.5, 1.8, 1.4, 0.9, 0.7, 0.6, 0.55, 0.5, 0.5),
        0.2, 1.0, 1.0, 0.12, 0.25, 0.01, (0.1, 0.25), 0.4),
}

ARCHETYPE_NAMES: tuple[str, ...] = tuple(ARCHETYPES)


def half_hour_shapes() -> np.ndarray:
    """Array [n_archetypes, 2 (weekday, weekend), 48]: hourly shapes interpolated to half hours."""
    out = np.empty((len(ARCHETYPES), 2, 48))
    centres = np.arange(24) + 0.5
    slots = np.arange(48) / 2 + 0.25
    for i, a in enumerate(ARCHETYPES.values()):
        for j, hourly in enumerate((a.weekday_hourly, a.weekend_hourly)):
            # Periodic linear interpolation between hour centres keeps the day continuous.
            ext_x = np.concatenate([centres - 24, centres, centres + 24])
            ext_y = np.tile(np.asarray(hourly, dtype=np.float64), 3)
            out[i, j] = np.interp(slots, ext_x, ext_y)
    return out


def parameter_table(field: str) -> np.ndarray:
    """One scalar parameter for every archetype, in ARCHETYPE_NAMES order."""
    return np.array([getattr(a, field) for a in ARCHETYPES.values()], dtype=np.float64)
