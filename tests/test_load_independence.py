"""Any block and any day range regenerate alone, bit for bit -- including loads that run past
midnight (EV charging, night storage heating), clock changes and the turn of the year."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from conftest import scenario

from mhhs_pipeline.core.load import generate_consumption
from mhhs_pipeline.core.registrations import synthesise_registrations
from mhhs_pipeline.core.schema import plain_strings

KEY = [("mpan_core", "ascending"), ("measurement_quantity", "ascending"), ("period_end_utc", "ascending")]
NIGHT_LOADS = {
    "population.mpans": 90,
    "population.advanced_share": 0.1,
    "population.pv_share_of_domestic": 0.4,
    "population.archetypes.domestic": {"domestic_ev": 2, "domestic_economy7": 2, "domestic_electric_heating": 1, "domestic_heat_pump": 1, "domestic_unrestricted": 1},
}


def _gen(sc, a, b, d0, d1):
    return plain_strings(generate_consumption(sc, synthesise_registrations(sc, a, b), d0, d1).table)


def test_windows_across_the_new_year_and_clock_changes_split_anywhere():
    for start, end, cuts in (
        ("2026-12-27", "2027-01-04", ("2026-12-31", "2027-01-01")),  # year boundary
        ("2026-03-26", "2026-04-01", ("2026-03-28", "2026-03-29")),  # spring forward
        ("2026-10-23", "2026-10-28", ("2026-10-24", "2026-10-25")),  # fall back
    ):
        sc = scenario(**NIGHT_LOADS, **{"window.start": start, "window.end": end})
        d0, d1 = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
        whole = _gen(sc, 0, 90, d0, d1).sort_by(KEY)
        for cut in cuts:
            c = dt.date.fromisoformat(cut)
            pieces = [_gen(sc, a, b, x0, x1) for a, b in ((0, 37), (37, 90)) for x0, x1 in ((d0, c), (c + dt.timedelta(days=1), d1))]
            assert pa.concat_tables(pieces).sort_by(KEY).equals(whole), (start, cut)
        # one day alone, too
        one = _gen(sc, 0, 90, d1, d1).sort_by(KEY)
        assert one.equals(whole.filter(pa.compute.greater(whole.column("period_end_utc"), pa.scalar(dt.datetime(d1.year, d1.month, d1.day, tzinfo=dt.UTC)))))
