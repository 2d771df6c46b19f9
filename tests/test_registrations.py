"""Synthetic registration population: block independence, history, splits at change of supplier."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from conftest import scenario
from hypothesis import given, settings
from hypothesis import strategies as st

from mhhs_pipeline.core.calendar import day_ordinal
from mhhs_pipeline.core.load import generate_consumption
from mhhs_pipeline.core.participants import consumption_slices
from mhhs_pipeline.core.registrations import registrations_on_days, synthesise_registrations

BUSY = {
    "population.mpans": 1500,
    "population.change_of_supplier_rate_per_year": 3.0,
    "population.change_of_data_service_rate_per_year": 2.0,
    "population.de_energisation_rate_per_year": 2.0,
    "population.new_connection_share": 0.05,
}


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 1400), st.integers(1, 100))
def test_any_block_equals_the_same_rows_of_the_whole_population(start, size):
    sc = scenario(**BUSY)
    whole = synthesise_registrations(sc, 0, 1500)
    block = synthesise_registrations(sc, start, start + size)
    same = whole.filter(pc.is_in(whole.column("mpan_core"), block.column("mpan_core")))
    assert block.equals(same)


def test_history_is_consistent():
    sc = scenario(**BUSY)
    reg = synthesise_registrations(sc, 0, 1500).to_pandas()
    w0, w1 = sc.window.start, sc.window.end
    for core, rows in reg.groupby("mpan_core", sort=False):
        rows = rows.sort_values("effective_from")
        frm = list(rows.effective_from)
        to = list(rows.effective_to)
        # consecutive, non-overlapping, only the last open
        for i in range(len(rows) - 1):
            assert to[i] is not None and to[i] + dt.timedelta(days=1) == frm[i + 1], core
        assert to[-1] is None or (isinstance(to[-1], float) and np.isnan(to[-1]))
        # events happen inside the window
        for f in frm[1:]:
            assert w0 <= f <= w1
        assert rows.mpan_core.str.len().eq(13).all()
    kinds = reg.groupby("mpan_core").agg(n_sup=("supplier_id", "nunique"), n_ds=("data_service_id", "nunique"), n_en=("energisation_status", "nunique"))
    assert (kinds.n_sup > 1).sum() > 10, "changes of supplier in the window"
    assert (kinds.n_ds > 1).sum() > 5, "changes of data service"
    assert (kinds.n_en > 1).sum() > 5, "de-/re-energisation"
    first = reg.groupby("mpan_core").effective_from.min()
    assert (first >= w0).sum() > 10, "new connections inside the window"
    exports = reg[reg.energy_direction == "E"]
    assert len(exports) and exports.linked_import_mpan.isin(set(reg.mpan_core)).all()
    assert (exports.archetype == "pv_export").all()
    adv = reg[reg.market_segment == "A"]
    assert set(adv.connection_type) <= {"L", "H", "E"} and (adv.dcc_service_flag == "N").all()
    smart = reg[reg.market_segment == "S"]
    assert (smart.connection_type == "W").all() and (smart.dcc_service_flag == "A").mean() > 0.7
    dom = reg[(reg.domestic_premise) & (reg.archetype == "domestic_unrestricted")]
    assert 2200 < dom.annual_consumption_kwh.median() < 3200
    assert dom.annual_consumption_kwh.mean() > dom.annual_consumption_kwh.median(), "heavy right tail"


def test_change_of_supplier_splits_consumption_at_the_effective_date():
    sc = scenario(**BUSY)
    reg = synthesise_registrations(sc, 0, 300)
    gen = generate_consumption(sc, reg, sc.window.start, sc.window.end)
    df = reg.to_pandas()
    switched = df.groupby("mpan_core").filter(lambda g: g.supplier_id.nunique() > 1)
    assert len(switched)
    core = switched.mpan_core.iloc[0]
    rows = switched[switched.mpan_core == core].sort_values("effective_from")
    change_day = rows.effective_from.iloc[1]
    old, new = rows.supplier_id.iloc[0], rows.supplier_id.iloc[1]
    t = gen.table
    slices = {(s.role, s.participant_id): s for s in consumption_slices(reg, gen.registration_row)}
    utc_day = lambda tab: (pc.subtract(tab.column("period_end_utc"), pa.scalar(dt.timedelta(minutes=30)))).cast(pa.timestamp("us")).cast(pa.date32()).to_pylist()  # noqa: E731
    for supplier, before in ((old, True), (new, False)):
        part = t.take(slices[("supplier", supplier)].rows)
        mine = part.filter(pc.equal(part.column("mpan_core"), core))
        days = utc_day(mine)
        assert days, supplier
        assert all((d < change_day) == before for d in days)
    # the MPAN's rows are all delivered, split between the two suppliers
    total = t.filter(pc.equal(t.column("mpan_core"), core)).num_rows
    got = sum(t.take(slices[("supplier", s)].rows).filter(pc.equal(t.take(slices[("supplier", s)].rows).column("mpan_core"), core)).num_rows for s in (old, new))
    assert got == total


def test_registrations_on_days_finds_the_row_in_force():
    sc = scenario(**BUSY)
    reg = synthesise_registrations(sc, 0, 200)
    cores = np.unique(reg.column("mpan_core").to_numpy(zero_copy_only=False).astype(str))
    days = np.arange(day_ordinal(sc.window.start), day_ordinal(sc.window.end) + 1)
    idx = registrations_on_days(reg, cores, days)
    df = reg.to_pandas()
    for i, core in enumerate(cores[:50]):
        for j, d in enumerate(days):
            day = dt.date(1970, 1, 1) + dt.timedelta(days=int(d))
            r = df[(df.mpan_core == core) & (df.effective_from <= day) & (df.effective_to.isna() | (df.effective_to >= day))]
            assert (idx[i, j] == -1) == r.empty
            if not r.empty:
                assert idx[i, j] == r.index[0]
