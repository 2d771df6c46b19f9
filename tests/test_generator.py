"""Properties of the consumption generator: non-negative, 3 decimals, complete days,
de-energised zeros, nothing before connection, and independence of the work unit."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from conftest import scenario
from hypothesis import given, settings
from hypothesis import strategies as st

from mhhs_pipeline.core.load import generate_consumption
from mhhs_pipeline.core.registrations import synthesise_registrations
from mhhs_pipeline.core.schema import CONSUMPTION_SCHEMA, dictionary_strings, plain_strings

EVENTFUL = {
    "population.change_of_supplier_rate_per_year": 2.0,
    "population.de_energisation_rate_per_year": 3.0,
    "population.new_connection_share": 0.1,
    "population.advanced_share": 0.1,
    "population.pv_share_of_domestic": 0.3,
    "generation.estimate_share": 0.01,
}


def _gen(sc, start, stop, d0, d1):
    reg = synthesise_registrations(sc, start, stop)
    return reg, generate_consumption(sc, reg, d0, d1)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**40),
    first=st.dates(dt.date(2025, 12, 20), dt.date(2026, 12, 20)),
    ndays=st.integers(1, 9),
    cut=st.integers(1, 8),
    block=st.integers(1, 39),
)
def test_unit_independence_and_invariants(seed, first, ndays, cut, block):
    last = first + dt.timedelta(days=ndays - 1)
    sc = scenario(**EVENTFUL, seed=seed, **{"window.start": first.isoformat(), "window.end": last.isoformat()})
    reg, whole = _gen(sc, 0, 40, first, last)
    t = whole.table
    assert t.schema == dictionary_strings(CONSUMPTION_SCHEMA)  # strings dictionary-coded for cheap slicing
    kwh = t.column("consumption_kwh").to_numpy()
    assert (kwh >= 0).all()
    np.testing.assert_array_equal(np.round(kwh, 3), kwh)
    # Split by days and by MPAN block: the same rows, bit for bit.
    cut_day = first + dt.timedelta(days=min(cut, ndays) - 1)
    pieces = []
    for a, b in ((0, block), (block, 40)):
        for d0, d1 in ((first, cut_day), (cut_day + dt.timedelta(days=1), last)):
            if d0 <= d1:
                pieces.append(_gen(sc, a, b, d0, d1)[1].table)
    key = [("mpan_core", "ascending"), ("measurement_quantity", "ascending"), ("period_end_utc", "ascending")]
    assert plain_strings(pa.concat_tables(pieces)).sort_by(key).equals(plain_strings(t).sort_by(key))


def test_complete_days_zero_when_de_energised_nothing_before_connection():
    sc = scenario(**EVENTFUL, seed=7)
    reg, gen = _gen(sc, 0, 400, sc.window.start, sc.window.end)
    t = gen.table.to_pandas()
    t["utc_day"] = (t.period_end_utc - dt.timedelta(minutes=30)).dt.date
    counts = t.groupby(["mpan_core", "measurement_quantity", "utc_day"]).size()
    assert (counts == 48).all()
    r = reg.to_pandas()
    row_reg = r.iloc[gen.registration_row]
    de = (row_reg.energisation_status.values == "D")
    assert de.any(), "scenario has de-energised MPAN-days"
    assert (t.consumption_kwh.values[de] == 0).all() and (t.quality.values[de] == "A").all()
    assert (t.consumption_kwh.values[~de] > 0).mean() > 0.5
    first_from = r.groupby("mpan_core").effective_from.min()
    assert (t.utc_day >= t.mpan_core.map(first_from)).all()
    new = first_from[first_from > sc.window.start]
    assert len(new) and set(new.index) <= set(t.mpan_core), "new connections get data from their first day"
    # estimates carry a reason; actuals none
    est = t.quality == "E"
    assert est.any() and t.estimation_reason[est].isin([2, 3, 4]).all() and t.estimation_reason[~est].isna().all()
    # export MPANs: AE only, zero at night
    exp_cores = set(r[r.energy_direction == "E"].mpan_core)
    ae = t[t.mpan_core.isin(exp_cores)]
    assert set(ae.measurement_quantity) == {"AE"}
    night = ae.period_end_utc.dt.hour.isin([0, 1, 2, 22, 23])
    assert (ae.consumption_kwh[night] == 0).all() and ae.consumption_kwh[~night].sum() > 0
    adv = set(r[r.market_segment == "A"].mpan_core)
    assert set(t[t.mpan_core.isin(adv)].measurement_quantity) == {"AI", "RI", "RE"}


def test_same_seed_same_data_other_seed_other_data():
    sc = scenario(seed=11)
    a = _gen(sc, 0, 50, sc.window.start, sc.window.start)[1].table
    b = _gen(sc, 0, 50, sc.window.start, sc.window.start)[1].table
    c = _gen(scenario(seed=12), 0, 50, sc.window.start, sc.window.start)[1].table
    assert a.equals(b)
    assert not a.equals(c)


def test_full_year_matches_annual_consumption():
    sc = scenario(**{"population.mpans": 60, "window.start": "2026-01-01", "window.end": "2026-12-31", "generation.estimate_share": 0.0, "population.de_energisation_rate_per_year": 0.0, "population.de_energised_share": 0.0, "population.new_connection_share": 0.0})
    reg, gen = _gen(sc, 0, 60, dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    t = gen.table.to_pandas()
    sums = t[t.measurement_quantity.isin(["AI", "AE"])].groupby("mpan_core").consumption_kwh.sum()
    annual = reg.to_pandas().groupby("mpan_core").annual_consumption_kwh.last()
    rel = (sums / annual.loc[sums.index] - 1).abs()
    assert rel.max() < 0.01, rel.sort_values().tail()
