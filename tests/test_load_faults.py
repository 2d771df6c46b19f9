"""Faults with ground truth: raw reads, canonical estimates and the truth behind them agree."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import scenario

from mhhs_pipeline.core.load import (
    FAULT_TYPES,
    GROUND_TRUTH_SCHEMA,
    RAW_SCHEMA,
    generate_consumption,
    generate_load,
)
from mhhs_pipeline.core.registrations import synthesise_registrations
from mhhs_pipeline.core.schema import CONSUMPTION_SCHEMA, dictionary_strings, plain_strings

RATES = {
    "faults.comms_outage_rate_per_meter_day": 0.01,
    "faults.missing_read_rate": 0.002,
    "faults.zero_run_rate_per_meter_day": 0.004,
    "faults.spike_rate": 0.001,
    "faults.max_value_rate": 0.001,
    "faults.unit_slip_rate_per_meter_day": 0.004,
    "faults.duplicate_rate": 0.002,
    "faults.off_grid_rate": 0.002,
    "faults.late_arrival_rate_per_meter_day": 0.01,
}
NO_FAULTS = {k: 0.0 for k in RATES} | {"generation.estimate_share": 0.0}
BASE = {"population.mpans": 600, "population.advanced_share": 0.05, "population.de_energisation_rate_per_year": 1.0}
KEY = ["mpan_core", "measurement_quantity", "period_end_utc"]


@pytest.fixture(scope="module")
def faulted():
    sc = scenario(**BASE, **RATES)
    reg = synthesise_registrations(sc, 0, BASE["population.mpans"])
    out = generate_load(sc, reg, sc.window.start, sc.window.end)
    clean = generate_consumption(scenario(**BASE, **NO_FAULTS), reg, sc.window.start, sc.window.end)
    return sc, reg, out, clean


def _frames(out):
    return out.consumption.table.to_pandas(), out.meter_reads_raw.to_pandas(), out.ground_truth.to_pandas()


def test_schemas_and_canonical_invariants(faulted):
    _, _, out, _ = faulted
    assert out.meter_reads_raw.schema == dictionary_strings(RAW_SCHEMA)
    assert out.ground_truth.schema == dictionary_strings(GROUND_TRUTH_SCHEMA)
    t = out.consumption.table
    assert t.schema == dictionary_strings(CONSUMPTION_SCHEMA)
    kwh = t.column("consumption_kwh").to_numpy()
    assert (kwh >= 0).all() and np.array_equal(np.round(kwh, 3), kwh)
    c = t.to_pandas()
    est = c.quality == "E"
    assert est.any() and c.estimation_reason[est].isin([2, 3, 4]).all() and c.estimation_reason[~est].isna().all()
    assert len(out.raw_registration_row) == out.meter_reads_raw.num_rows
    assert len(out.truth_registration_row) == out.ground_truth.num_rows


def test_fault_rates_are_close_to_configured(faulted):
    sc, reg, out, _ = faulted
    c, raw, gt = _frames(out)
    r = reg.to_pandas()
    live = c[r.energisation_status.values[out.consumption.registration_row] == "E"]
    meter_days = live.groupby(["mpan_core", (live.period_end_utc - pd.Timedelta(minutes=30)).dt.date]).ngroups
    series_hh = len(live)
    events = gt.groupby("fault_type").fault_event_id.nunique()
    periods = gt.fault_type.value_counts()
    fm = sc.faults
    # Meter-day events (outages may start before the window and reach into it: allow a margin).
    assert 0.7 < events["comms_outage"] / (fm.comms_outage_rate_per_meter_day * meter_days) < 1.5
    assert 0.6 < events["late_arrival"] / (fm.late_arrival_rate_per_meter_day * meter_days) < 1.4
    # Per half-hour faults (some are hidden under outages, so a little below the rate).
    for name, rate in (("missing_read", fm.missing_read_rate), ("spike", fm.spike_rate), ("max_value_sentinel", fm.max_value_rate),
                       ("duplicate", fm.duplicate_rate), ("off_grid_timestamp", fm.off_grid_rate)):  # fmt: skip
        assert 0.75 < periods[name] / (rate * series_hh) < 1.25, (name, periods[name], rate * series_hh)
    assert set(gt.fault_type) == set(FAULT_TYPES.values())
    # Unit slips and zero runs are events too.
    assert events["unit_slip"] > 0 and events["zero_run"] > 0


def test_ground_truth_is_consistent_with_raw_and_canonical(faulted):
    _, _, out, clean = faulted
    c, raw, gt = _frames(out)
    truth = clean.table.to_pandas().set_index(KEY).consumption_kwh
    # The true value behind every fault is the fault-free generation.
    assert np.allclose(gt.set_index(KEY).true_kwh.values, truth.loc[gt.set_index(KEY).index].values, atol=1e-9)
    # Every estimate in the canonical data is explained by a fault with the same reason.
    est = c[c.quality == "E"][KEY + ["estimation_reason"]]
    merged = est.merge(gt[gt.quality == "E"][KEY + ["estimation_reason"]].drop_duplicates(), on=KEY, suffixes=("", "_gt"))
    assert len(merged) == len(est) and (merged.estimation_reason == merged.estimation_reason_gt).all()
    reasons = gt[gt.quality == "E"].groupby("fault_type").estimation_reason.unique()
    assert list(reasons["comms_outage"]) == [4] and list(reasons["missing_read"]) == [2]
    assert all(list(reasons[f]) == [3] for f in ("zero_run", "spike", "max_value_sentinel", "unit_slip"))
    # Repaired faults (duplicates, off-grid stamps, late batches) stay actual with the true value.
    estimating = gt.fault_type.isin(["comms_outage", "missing_read", "zero_run", "spike", "max_value_sentinel", "unit_slip"])
    bad_periods = gt[estimating].set_index(KEY).index
    ok = gt[~estimating & ~gt.set_index(KEY).index.isin(bad_periods)]
    assert len(ok) and (ok.quality == "A").all() and (ok.consumption_kwh == ok.true_kwh).all()
    # Canonical rows without faults carry the true value.
    same = c.set_index(KEY).consumption_kwh
    unflagged = same.index.difference(gt.set_index(KEY).index)
    assert np.array_equal(same.loc[unflagged].values, truth.loc[unflagged].values)
    # Estimates: not the true spiky value, but the same order of magnitude overall.
    e = gt[gt.quality == "E"]
    assert (e.consumption_kwh != e.true_kwh).mean() > 0.5
    assert 0.8 < e.consumption_kwh.sum() / e.true_kwh.sum() < 1.2


def test_raw_reads_show_the_defects(faulted):
    _, _, out, clean = faulted
    c, raw, gt = _frames(out)
    truth = clean.table.to_pandas().set_index(KEY).consumption_kwh
    raw_kwh = np.where(raw.unit == "Wh", raw.value / 1000.0, raw.value)
    assert set(raw.unit) == {"Wh", "kWh"} and set(raw.source) == {"DCC", "AMR"}
    assert ((raw.unit == "Wh") == (raw.source == "DCC")).all()
    on_grid = (raw.read_timestamp_utc.dt.second == 0) & raw.read_timestamp_utc.dt.minute.isin([0, 30])
    g = gt.set_index("fault_type")
    # missing: no raw row at all
    missing = gt[gt.fault_type.isin(["comms_outage", "missing_read"])]
    assert missing.raw_value.isna().all()
    assert not set(map(tuple, missing[KEY].values)) & set(map(tuple, raw[on_grid][["mpan_core", "measurement_quantity", "read_timestamp_utc"]].values))
    # sentinels, unit slips, spikes, zero runs
    assert ((g.loc["max_value_sentinel"].raw_value == 16_777_215) | (g.loc["max_value_sentinel"].raw_value == 16_777.215)).all()
    slip = g.loc["unit_slip"]
    assert np.allclose(slip.raw_value, np.where(slip.raw_unit == "Wh", slip.true_kwh * 1e6, slip.true_kwh * 1e3))
    spike = g.loc["spike"]
    spike_kwh = np.where(spike.raw_unit == "Wh", spike.raw_value / 1000, spike.raw_value)
    assert (spike_kwh > spike.true_kwh + 0.9).all()
    zr = g.loc["zero_run"]
    assert (zr.raw_value == 0).all() and (zr.true_kwh > 0).all()
    # duplicates appear twice; off-grid stamps within limits; late arrivals days late
    dups = raw.duplicated(["mpan_core", "measurement_quantity", "read_timestamp_utc"], keep=False)
    assert dups.sum() == 2 * (gt.fault_type == "duplicate").sum()
    off = g.loc["off_grid_timestamp"]
    shift = (off.raw_read_timestamp_utc - off.period_end_utc).dt.total_seconds().abs()
    assert ((shift >= 1) & (shift <= 300)).all() and (~on_grid).sum() == len(off)
    late = g.loc["late_arrival"]
    delay = (late.raw_received_at_utc - late.period_end_utc).dt.total_seconds() / 86400
    assert (delay > 1.0).all() and delay.max() <= 12
    rk_index = raw.set_index(["mpan_core", "measurement_quantity", "read_timestamp_utc"]).index
    normal = raw[~rk_index.isin(late.set_index(KEY).index) & ~dups.values & on_grid.values]
    assert ((normal.received_at_utc - normal.read_timestamp_utc).dt.total_seconds() / 86400 < 1.5).all()
    # every raw row that is not a fault shows the true value
    rk = raw.assign(kwh=raw_kwh).set_index(["mpan_core", "measurement_quantity", "read_timestamp_utc"])
    plain = rk[~rk.index.isin(gt.set_index(KEY).index) & on_grid.values]
    assert np.allclose(plain.kwh.values, truth.loc[plain.index].values, atol=5e-4)


def test_no_reads_or_faults_while_de_energised(faulted):
    _, reg, out, _ = faulted
    status = np.asarray(reg.column("energisation_status").to_numpy(zero_copy_only=False)).astype(str)
    assert (status[out.raw_registration_row] == "E").all()
    assert (status[out.truth_registration_row] == "E").all()
    c = out.consumption.table
    de = status[out.consumption.registration_row] == "D"
    assert de.any()
    assert (c.column("consumption_kwh").to_numpy()[de] == 0).all()
    assert (np.asarray(c.column("quality").to_numpy(zero_copy_only=False))[de] == "A").all()


def test_faulted_outputs_regenerate_alone_by_block_and_day_range():
    sc = scenario(**{"population.mpans": 60, "window.start": "2026-10-20", "window.end": "2026-10-31"}, **RATES)
    reg = synthesise_registrations(sc, 0, 60)
    whole = generate_load(sc, reg, sc.window.start, sc.window.end)
    pieces = {"consumption": [], "raw": [], "truth": []}
    for a, b in ((0, 23), (23, 60)):
        r = synthesise_registrations(sc, a, b)
        for d0, d1 in ((dt.date(2026, 10, 20), dt.date(2026, 10, 24)), (dt.date(2026, 10, 25), dt.date(2026, 10, 31))):
            o = generate_load(sc, r, d0, d1)
            pieces["consumption"].append(o.consumption.table)
            pieces["raw"].append(o.meter_reads_raw)
            pieces["truth"].append(o.ground_truth)
    raw_key = [(k, "ascending") for k in ("mpan_core", "measurement_quantity", "read_timestamp_utc", "received_at_utc")]
    gt_key = [(k, "ascending") for k in (*KEY, "fault_type")]
    c_key = [(k, "ascending") for k in KEY]

    def same(parts, table, key):
        return plain_strings(pa.concat_tables(parts)).sort_by(key).equals(plain_strings(table).sort_by(key))

    assert same(pieces["consumption"], whole.consumption.table, c_key)
    assert same(pieces["raw"], whole.meter_reads_raw, raw_key)
    assert same(pieces["truth"], whole.ground_truth, gt_key)
    assert whole.ground_truth.num_rows > 0
