"""The fast paths of the load model give exactly what the straightforward code would.

The generator works on rare faults sparsely, in cache-sized row blocks, per GSP group
rather than per MPAN, with in-place arithmetic and cached calendar tables. Each of those
rests on an equivalence (the same operations on the same operands, or operations that are
exact); these tests pin them down against reference formulations, bit for bit.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import scenario

from mhhs_pipeline.core import streams
from mhhs_pipeline.core.load import components as comp
from mhhs_pipeline.core.load import faults as faultmod
from mhhs_pipeline.core.load import generator
from mhhs_pipeline.core.load import pv as pvmod
from mhhs_pipeline.core.load.daily import irwin_hall_normal
from mhhs_pipeline.core.load.weather import GSP_GROUPS, local_to_utc_index
from mhhs_pipeline.core.registrations import synthesise_registrations
from mhhs_pipeline.report import summary

MIXED = {
    "population.mpans": 120,
    "population.advanced_share": 0.2,
    "population.pv_share_of_domestic": 0.4,
    "population.archetypes.domestic": {"domestic_heat_pump": 1, "domestic_ev": 1, "domestic_economy7": 1, "domestic_electric_heating": 1, "domestic_unrestricted": 1},
    "faults.comms_outage_rate_per_meter_day": 0.05,
    "faults.zero_run_rate_per_meter_day": 0.05,
    "faults.unit_slip_rate_per_meter_day": 0.05,
    "faults.late_arrival_rate_per_meter_day": 0.05,
    "faults.missing_read_rate": 0.01,
    "faults.spike_rate": 0.01,
    "faults.max_value_rate": 0.01,
    "faults.duplicate_rate": 0.01,
    "faults.off_grid_rate": 0.01,
}
D0, D1 = dt.date(2026, 10, 23), dt.date(2026, 10, 27)  # across the autumn clock change


@pytest.fixture(scope="module")
def block():
    sc = scenario(**MIXED)
    reg = synthesise_registrations(sc, 0, 120)
    sim = generator.simulate(sc, reg, D0, D1)
    return sc, reg, sim


def _draws(shape: tuple[int, ...]) -> np.ndarray:
    return streams.random_u64(streams.stream_key(7, "test"), np.arange(shape[0], dtype=np.uint64)[:, None], np.arange(shape[1], dtype=np.uint64)[None, :])


def _reference_mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def test_streams_in_place_mixing_matches_the_reference():
    key = streams.stream_key(3, "x")
    entity = np.arange(70, dtype=np.uint64) * np.uint64(7919) + np.uint64(10**12)
    counter = np.arange(100_000, 100_000 + 1000, dtype=np.uint64)  # 70,000 draws: several mixing chunks
    with np.errstate(over="ignore"):
        ref = _reference_mix(_reference_mix(entity[:, None] ^ key) + (counter[None, :] + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15))
    assert np.array_equal(streams.random_u64(key, entity[:, None], counter[None, :]), ref)
    # scalars and 0-d inputs take the plain path and agree with the arrays
    assert streams.random_u64(key, int(entity[5]), int(counter[9])) == ref[5, 9]
    u = (ref >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    assert np.array_equal(streams.uniform(key, entity[:, None], counter[None, :]), u)
    u1 = streams.uniform(key, entity[:, None], counter[None, :] * np.uint64(2))
    u2 = streams.uniform(key, entity[:, None], counter[None, :] * np.uint64(2) + np.uint64(1))
    assert np.array_equal(streams.normal(key, entity[:, None], counter[None, :]), np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2))
    v1, v2 = streams.uniform(key, entity[:3], 10), streams.uniform(key, entity[:3], 11)  # counter 5's two sub-counters
    assert np.array_equal(streams.normal(key, entity[:3], 5), np.sqrt(-2.0 * np.log1p(-v1)) * np.cos(2.0 * np.pi * v2))


def test_irwin_hall_integer_path_is_the_float_formula():
    u = _draws((40, 1001))
    a = (u & np.uint64(0xFFFF)).astype(np.float64)
    b = ((u >> np.uint64(16)) & np.uint64(0xFFFF)).astype(np.float64)
    c = ((u >> np.uint64(32)) & np.uint64(0xFFFF)).astype(np.float64)
    ref = ((a + b + c) / 65536.0 - 1.5) * 2.0
    assert np.array_equal(irwin_hall_normal(u), ref)
    assert np.array_equal(irwin_hall_normal(u[:, 1::3]), ref[:, 1::3])  # non-contiguous input
    assert irwin_hall_normal(u[3, 7]) == ref[3, 7]  # a scalar draw
    # the extremes: all-zero and all-one 16-bit parts, and the centre (exactly +0.0)
    edge = np.array([0, 0xFFFF_FFFF_FFFF, 0x8000_8000_8000], dtype=np.uint64)
    ea, eb, ec = ((edge >> np.uint64(k)) & np.uint64(0xFFFF) for k in (0, 16, 32))
    eref = ((ea.astype(np.float64) + eb.astype(np.float64) + ec.astype(np.float64)) / 65536.0 - 1.5) * 2.0
    assert np.array_equal(irwin_hall_normal(edge), eref)
    assert np.array_equal(np.signbit(irwin_hall_normal(edge)), np.signbit(eref))


def test_household_row_blocks_do_not_change_any_value(block, monkeypatch):
    sc, reg, sim = block
    monkeypatch.setattr(comp, "_BLOCK_VALUES", 7 * 48)  # blocks of a few rows, ragged at the end
    small = generator.simulate(sc, reg, D0, D1)
    monkeypatch.setattr(comp, "_BLOCK_VALUES", 1 << 30)  # one block
    whole = generator.simulate(sc, reg, D0, D1)
    assert np.array_equal(small.values, sim.values) and np.array_equal(whole.values, sim.values)


def test_household_keeps_the_noise_of_the_requested_rows(block):
    sc, reg, sim = block
    cm, m, tr, win = sim.cm, sim.m, sim.traits, sim.win
    dom = np.flatnonzero((m.arch >= 0) & cm.is_domestic[tr.arch_safe])[:25]
    rows = generator._rows(tr, dom)
    variant = generator.variant_of(cm, m, tr)[dom]
    energy, light = sim.daily.house[dom], sim.daily.light[dom]
    args = (sc.seed, cm, win, m.key[dom], tr.arch_safe[dom], variant, m.gsp[dom], rows, energy, light)
    hh_all, z_all, u_all = comp.household(*args)
    keep = np.array([0, 3, 4, 24])
    hh, z, u = comp.household(*args, keep)
    assert np.array_equal(hh, hh_all) and np.array_equal(z, z_all[keep]) and np.array_equal(u, u_all[keep])
    _, z, u = comp.household(*args, keep, np.array([1, 24]))
    assert np.array_equal(z, z_all[keep]) and np.array_equal(u, u_all[[1, 24]])
    ref_z, ref_u = comp.correlated_noise(streams.stream_key(sc.seed, "load.hh"), m.key[dom], win.hh, cm.model.domestic.activity_correlation)
    assert np.array_equal(z_all, ref_z) and np.array_equal(u_all, ref_u)


def test_pv_shape_per_gsp_group_equals_row_by_row(block):
    sc, reg, sim = block
    cm, m, tr = sim.cm, sim.m, sim.traits
    exp_rows = np.flatnonzero(m.arch < 0)
    assert len(np.unique(m.gsp[exp_rows])) > 1 and len(exp_rows) > len(np.unique(m.gsp[exp_rows]))
    clim = cm.model.weather.gsp_climate
    lat = np.array([clim[GSP_GROUPS[g]].latitude_deg for g in m.gsp[exp_rows]])
    lon = np.array([clim[GSP_GROUPS[g]].longitude_deg for g in m.gsp[exp_rows]])

    def shape(rows: np.ndarray) -> np.ndarray:
        return pvmod.generation_shape(sc.seed, cm, m.gsp[exp_rows][rows], m.key[exp_rows][rows], tr.pv_azimuth_rad[exp_rows][rows], lat[rows], lon[rows], sim.grid, sim.daily.clearness[exp_rows][rows])

    together = shape(np.arange(len(exp_rows)))
    one_by_one = np.concatenate([shape(np.array([i])) for i in range(len(exp_rows))])
    assert np.array_equal(together, one_by_one)
    assert np.array_equal(shape(np.arange(len(exp_rows))[::-1]), together[::-1])


def test_sparse_runs_are_the_dense_runs():
    key = streams.stream_key(11, "fault.outage")
    entity = np.arange(300, dtype=np.uint64) + np.uint64(10**12)
    ext = np.arange(20_000, 20_012, dtype=np.int64)
    cov, start = faultmod._runs(key, entity, ext, 0.05, 2, 240, 5, 7)
    rows, c, s = faultmod._run_rows(key, entity, ext, 0.05, 2, 240, 5, 7)
    assert len(rows) and np.array_equal(np.flatnonzero(cov.any(axis=1) | (start >= 0).any(axis=1)), rows[c.any(axis=1)])
    dense_cov, dense_start = np.zeros_like(cov), np.full_like(start, -1)
    dense_cov[rows], dense_start[rows] = c, s
    assert np.array_equal(dense_cov, cov) and np.array_equal(dense_start, start)


def test_fault_plan_and_raw_rows_invariants(block):
    sc, reg, sim = block
    plan = faultmod.plan_faults(sc, sim)
    codes = plan.codes.reshape(-1)
    assert np.array_equal(plan.faulty, np.flatnonzero(codes))
    canonical = faultmod.canonical_values(sim, plan)
    est = (plan.codes & faultmod.ESTIMATED) != 0
    assert np.array_equal(canonical.estimated, est)
    assert np.array_equal(canonical.reason != 0, est)
    assert np.array_equal(canonical.kwh[~est], canonical.true_kwh[~est])
    assert np.array_equal(canonical.true_kwh, np.round(sim.values.reshape(canonical.kwh.shape), 3))
    # the raw rows: every live half hour once, less absent reads, duplicates twice and adjacent
    S, H = plan.codes.shape
    live = np.repeat(sim.day_energised[sim.series_mpan], 48, axis=1).reshape(-1)
    present = np.flatnonzero(live & ((codes & faultmod.ABSENT) == 0))
    expected = np.repeat(present, 1 + ((codes[present] & faultmod.DUPLICATE) != 0))
    for raw in (faultmod.raw_rows(sc, sim, plan), faultmod.raw_rows(sc, sim, plan, canonical.true_kwh)):
        assert np.array_equal(raw.idx, expected)
        assert np.array_equal(raw.dup, np.r_[False, expected[1:] == expected[:-1]])
        assert np.array_equal(raw.series, expected // H) and np.array_equal(raw.series_day, expected // 48)
    # without the precomputed pieces, the same tables
    table, reg_rows = faultmod.raw_reads(sc, sim, plan, raw)
    bare = faultmod.FaultPlan(plan.codes, plan.event_start, plan.late_days, plan.smart, plan.entity)
    table2, reg_rows2 = faultmod.raw_reads(sc, sim, bare)
    assert table.equals(table2) and np.array_equal(reg_rows, reg_rows2)
    assert faultmod.ground_truth(sc, sim, bare, canonical)[0].equals(faultmod.ground_truth(sc, sim, plan, canonical, raw)[0])


def test_cached_calendar_tables_match_fresh_ones(block):
    sc, reg, sim = block
    days = np.arange(20_380, 20_420, dtype=np.int64)
    for slot in (0, 3, 24, 47):
        assert np.array_equal(comp._utc_index(days, slot), local_to_utc_index(days, slot))
        assert np.array_equal(comp._utc_index(days, slot), local_to_utc_index(days, slot))  # from the cache
    fresh = generator.settlement_grid(D0, D1)
    assert sim.grid is generator._grid(D0, D1)
    for name in ("period_end_utc", "local_slot", "settlement_date_local", "settlement_period_local"):
        assert np.array_equal(getattr(sim.grid, name), getattr(fresh, name))
    with pytest.raises(ValueError):
        sim.grid.local_slot[0] = 1  # shared between units: read-only
    again = generator.simulate(sc, reg, D0, D1)
    assert np.array_equal(again.values, sim.values)


def _reference_codes(col):
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    enc = pc.dictionary_encode(col)
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), np.asarray(enc.dictionary.to_numpy(zero_copy_only=False)).astype(str)


def test_report_codes_from_dictionaries_equal_re_encoding():
    rng = np.random.default_rng(5)
    c1 = pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 3, 50).astype(np.int32)), pa.array(["m", "n", "o"]))
    c2 = pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 4, 70).astype(np.int32)), pa.array(["o", "p", "m", "o"]))  # repeats a string
    runs = pa.DictionaryArray.from_arrays(pa.array(np.repeat(np.arange(9, dtype=np.int32), 5)), pa.array([f"{i:013d}" for i in range(9, 0, -1)]))
    nul = pa.array(["a", "a\x00", "a"]).dictionary_encode()  # distinct in Arrow, equal as numpy strings
    for col in (nul, pa.chunked_array([c1, c2]), pa.chunked_array([c2.slice(0, 0), c1]), pa.chunked_array([c1.slice(3, 0)]), runs, c2, pa.array(["b", "a", "b"])):
        codes, values = summary._codes(col)
        ref_codes, ref_values = _reference_codes(col)
        assert np.array_equal(codes, ref_codes) and codes.dtype == ref_codes.dtype
        assert list(values) == list(ref_values)


def test_report_summary_is_the_same_for_plain_and_dictionary_columns(block):
    sc, reg, sim = block
    out = generator.generate_load(sc, reg, D0, D1)
    table = out.consumption.table
    plain = table.cast(pa.schema([pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type, f.nullable) for f in table.schema]))
    chunked = pa.concat_tables([table.slice(0, 1000), table.slice(1000)])
    a = summary.summarise(table, reg, out.consumption.registration_row)
    for other in (plain, chunked):
        b = summary.summarise(other, reg, out.consumption.registration_row)
        for name in ("shape", "monthly", "mpans", "sample"):
            assert getattr(a, name).equals(getattr(b, name)), name
