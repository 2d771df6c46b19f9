"""Settlement calendar: 46/48/50 local periods, UTC days of 48, consistency with zoneinfo."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mhhs_pipeline.core.calendar import day_types, local_periods_in_day, settlement_grid

LONDON = ZoneInfo("Europe/London")


def test_local_day_lengths_2026():
    assert local_periods_in_day(dt.date(2026, 3, 29)) == 46
    assert local_periods_in_day(dt.date(2026, 10, 25)) == 50
    assert local_periods_in_day(dt.date(2026, 6, 1)) == 48


def test_grid_counts_local_periods_on_clock_change_days():
    g = settlement_grid(dt.date(2026, 3, 27), dt.date(2026, 3, 31))
    by_day = {}
    for d, p in zip(g.settlement_date_local, g.settlement_period_local, strict=True):
        by_day.setdefault(str(d), []).append(int(p))
    assert by_day["2026-03-29"] == list(range(1, 47))
    assert by_day["2026-03-30"] == list(range(1, 49))
    g = settlement_grid(dt.date(2026, 10, 24), dt.date(2026, 10, 26))
    oct25 = [int(p) for d, p in zip(g.settlement_date_local, g.settlement_period_local, strict=True) if str(d) == "2026-10-25"]
    assert oct25 == list(range(1, 51))


@settings(max_examples=60, deadline=None)
@given(st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2032, 12, 31)))
def test_every_period_matches_zoneinfo(day):
    g = settlement_grid(day, day)
    assert len(g.period_end_utc) == 48
    for end, sd, sp in zip(g.period_end_utc, g.settlement_date_local, g.settlement_period_local, strict=True):
        start_utc = (end - np.timedelta64(30, "m")).astype("datetime64[s]").astype(dt.datetime).replace(tzinfo=dt.UTC)
        local = start_utc.astimezone(LONDON)
        midnight_local = dt.datetime.combine(local.date(), dt.time(0), tzinfo=LONDON)
        elapsed = (start_utc - midnight_local.astimezone(dt.UTC)) // dt.timedelta(minutes=30)
        assert str(sd) == local.date().isoformat()
        assert int(sp) == elapsed + 1


def test_bank_holidays_differ_between_england_and_scotland():
    from mhhs_pipeline.core.calendar import day_ordinal

    st_andrews = day_ordinal(dt.date(2026, 11, 30))  # Monday, Scottish bank holiday
    easter_monday = day_ordinal(dt.date(2026, 4, 6))  # England & Wales only
    assert list(day_types(np.array([st_andrews, easter_monday]), scotland=True)) == [2, 0]
    assert list(day_types(np.array([st_andrews, easter_monday]), scotland=False)) == [0, 2]
