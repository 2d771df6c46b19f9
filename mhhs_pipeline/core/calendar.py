"""Settlement calendar: UTC half hours and the legacy local (Europe/London) view.

MHHS counts UTC settlement days of always 48 half hours, each stamped by its end. The
legacy view counts local clock days from local midnight: 46 periods on the last Sunday
of March, 50 on the last Sunday of October. The tz database (zoneinfo, via pandas) is
the only source of clock-change rules here. Half-open periods: a period ending at
``t`` covers ``[t - 30 min, t)``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import holidays
import numpy as np
import pandas as pd

LONDON = "Europe/London"
HALF_HOUR = np.timedelta64(30, "m")
PERIODS_PER_UTC_DAY = 48
EPOCH_DAY = np.datetime64("1970-01-01", "D")


def day_ordinal(day: dt.date | np.datetime64) -> int:
    """Days since 1970-01-01 (a stable counter for random streams)."""
    return int((np.datetime64(day, "D") - EPOCH_DAY).astype(np.int64))


@dataclass(frozen=True)
class HalfHourGrid:
    """Every UTC half hour of a range of UTC settlement days, with its local view.

    Arrays have length ``n_days * 48`` in time order. ``period_end_utc`` is naive
    datetime64[us] holding UTC (the ``_utc`` suffix carries the zone).
    """

    first_day: np.datetime64
    n_days: int
    period_end_utc: np.ndarray  # datetime64[us], UTC
    utc_day_index: np.ndarray  # int32, 0..n_days-1
    settlement_date_local: np.ndarray  # datetime64[D]
    settlement_period_local: np.ndarray  # int16, 1..50
    local_slot: np.ndarray  # int16, 0..47: local clock half hour of the period's start
    local_weekday: np.ndarray  # int8, Monday=0, of the local date
    local_doy: np.ndarray  # int16, day of year (1..366) of the local date

    @property
    def half_hour_ordinal(self) -> np.ndarray:
        """Half hours since the epoch, a stable counter for per-period streams."""
        start = (self.period_end_utc - HALF_HOUR).astype("datetime64[m]").astype(np.int64)
        return start // 30


def settlement_grid(first_day: dt.date, last_day: dt.date) -> HalfHourGrid:
    """The grid of UTC half hours for settlement days ``first_day..last_day`` inclusive."""
    n_days = (last_day - first_day).days + 1
    if n_days < 1:
        raise ValueError(f"last_day {last_day} is before first_day {first_day}")
    d0 = np.datetime64(first_day, "D")
    start_utc = d0.astype("datetime64[us]") + np.arange(n_days * PERIODS_PER_UTC_DAY) * HALF_HOUR.astype("timedelta64[us]")
    end_utc = start_utc + HALF_HOUR
    local_start = pd.DatetimeIndex(start_utc).tz_localize("UTC").tz_convert(LONDON)
    local_date = local_start.normalize()  # local midnight, tz-aware
    # Period number: half hours elapsed since local midnight (in real time, so 46/50 days work).
    elapsed = (local_start - local_date) / pd.Timedelta(minutes=30)
    local_naive_minutes = local_start.hour * 60 + local_start.minute
    return HalfHourGrid(
        first_day=d0,
        n_days=n_days,
        period_end_utc=end_utc,
        utc_day_index=np.repeat(np.arange(n_days, dtype=np.int32), PERIODS_PER_UTC_DAY),
        settlement_date_local=local_date.tz_localize(None).values.astype("datetime64[D]"),
        settlement_period_local=(np.asarray(elapsed, dtype=np.int64) + 1).astype(np.int16),
        local_slot=(np.asarray(local_naive_minutes) // 30).astype(np.int16),
        local_weekday=np.asarray(local_start.day_of_week, dtype=np.int8),
        local_doy=np.asarray(local_start.day_of_year, dtype=np.int16),
    )


def local_periods_in_day(local_date: dt.date) -> int:
    """46, 48 or 50: half hours in a local (Europe/London) clock day."""
    start = pd.Timestamp(local_date).tz_localize(LONDON)
    end = (pd.Timestamp(local_date) + pd.Timedelta(days=1)).tz_localize(LONDON)
    return int((end - start) / pd.Timedelta(minutes=30))


def utc_settlement_day(period_end_utc: np.ndarray) -> np.ndarray:
    """The UTC settlement day (datetime64[D]) containing each half hour, stamped by its end."""
    return (np.asarray(period_end_utc, dtype="datetime64[us]") - HALF_HOUR).astype("datetime64[D]")


def local_view(period_end_utc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(settlement_date_local, settlement_period_local) for arbitrary UTC period ends."""
    start = pd.DatetimeIndex(np.asarray(period_end_utc, dtype="datetime64[us]") - HALF_HOUR)
    local_start = start.tz_localize("UTC").tz_convert(LONDON)
    local_date = local_start.normalize()
    elapsed = (local_start - local_date) / pd.Timedelta(minutes=30)
    return (
        local_date.tz_localize(None).values.astype("datetime64[D]"),
        (np.asarray(elapsed, dtype=np.int64) + 1).astype(np.int16),
    )


WEEKDAY, SATURDAY, SUNDAY_OR_HOLIDAY = 0, 1, 2


@lru_cache(maxsize=64)
def _bank_holidays(year: int, scotland: bool) -> frozenset[int]:
    """Bank-holiday day ordinals of one year: England & Wales or Scotland calendars."""
    subdiv = "SCT" if scotland else "ENG"
    days = holidays.country_holidays("GB", subdiv=subdiv, years=year)
    return frozenset(day_ordinal(d) for d in days)


def day_types(day_ordinals: np.ndarray, scotland: bool) -> np.ndarray:
    """0 weekday, 1 Saturday, 2 Sunday or bank holiday, for days given as ordinals."""
    days = np.asarray(day_ordinals, dtype=np.int64)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    out = np.where(weekday == 6, SUNDAY_OR_HOLIDAY, np.where(weekday == 5, SATURDAY, WEEKDAY)).astype(np.int8)
    if len(days):
        years = range(
            int(str(EPOCH_DAY + np.timedelta64(int(days.min()), "D"))[:4]),
            int(str(EPOCH_DAY + np.timedelta64(int(days.max()), "D"))[:4]) + 1,
        )
        hol = np.array(sorted(set().union(*(_bank_holidays(y, scotland) for y in years))), dtype=np.int64)
        out[np.isin(days, hol)] = SUNDAY_OR_HOLIDAY
    return out


def year_day_ordinals(year: int) -> np.ndarray:
    """Every day ordinal of a calendar year."""
    first = day_ordinal(np.datetime64(f"{year}-01-01"))
    last = day_ordinal(np.datetime64(f"{year}-12-31"))
    return np.arange(first, last + 1, dtype=np.int64)


def day_of_year(day_ordinals: np.ndarray) -> np.ndarray:
    """1..366 for each day ordinal."""
    d = EPOCH_DAY + np.asarray(day_ordinals, dtype=np.int64).astype("timedelta64[D]")
    return (d - d.astype("datetime64[Y]")).astype(np.int64) + 1
