"""Manufacturing consumption around actual data: actual values untouched, modelled rows for
series without actual data, gaps filled at the series' own level and flagged as estimates,
48 rows per MPAN x MQ x UTC day; and the whole path with the real generator."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
from conftest import scenario
from test_cleanse_consumption import DEEN, EXP, LV, REG, A

from mhhs_pipeline.cleanse.consumption import (
    level_ratios,
    merge_actual_with_model,
    merge_with_model_index,
    unmodelled_actuals,
)
from mhhs_pipeline.core.calendar import settlement_grid, utc_settlement_day
from mhhs_pipeline.core.schema import CONSUMPTION_KEY, CONSUMPTION_SCHEMA, plain_strings

FIRST, LAST = dt.date(2026, 3, 26), dt.date(2026, 4, 1)  # 7 UTC days across the spring clock change


def model(series: list[tuple[str, str, float]], first=FIRST, last=LAST, zero_from: dict[str, dt.date] | None = None) -> pa.Table:
    """Canonical modelled rows: a daily shape (night trough, evening peak) times a level."""
    grid = settlement_grid(first, last)
    h = len(grid.period_end_utc)
    slot = np.arange(h) % 48
    shape = 0.6 + 0.4 * np.sin(2 * np.pi * (slot - 14) / 48) + 0.1 * (np.arange(h) // 48 % 3)
    parts = []
    for core, mq, level in series:
        kwh = np.round(shape * level, 3)
        if zero_from and core in zero_from:
            kwh[utc_settlement_day(grid.period_end_utc) >= np.datetime64(zero_from[core])] = 0.0
        parts.append(
            pa.table(
                {
                    "mpan_core": [core] * h,
                    "measurement_quantity": [mq] * h,
                    "period_end_utc": pa.array(grid.period_end_utc, pa.timestamp("us", tz="UTC")),
                    "settlement_date": pa.array(grid.settlement_date_local, pa.date32()),
                    "settlement_period": pa.array(grid.settlement_period_local, pa.int16()),
                    "consumption_kwh": kwh,
                    "quality": ["A"] * h,
                    "estimation_reason": pa.nulls(h, pa.int16()),
                    "provenance": ["manufactured"] * h,
                },
                schema=CONSUMPTION_SCHEMA,
            )
        )
    return pa.concat_tables(parts).combine_chunks()


def as_actual(t: pa.Table, factor: float, seed: int = 1, noise: float = 0.05) -> pa.Table:
    """The 'real' meter: the model's shape at another level, with noise."""
    rng = np.random.default_rng(seed)
    kwh = t.column("consumption_kwh").to_numpy() * factor * (1 + noise * rng.standard_normal(t.num_rows))
    t = t.set_column(t.schema.get_field_index("consumption_kwh"), "consumption_kwh", pa.array(np.round(np.abs(kwh), 3)))
    t = t.set_column(t.schema.get_field_index("provenance"), "provenance", pa.array(["actual"] * t.num_rows))
    return t.cast(CONSUMPTION_SCHEMA)


def series(t: pa.Table, core: str, mq: str = "AI") -> pa.Table:
    return t.filter(pc.and_(pc.equal(t.column("mpan_core"), core), pc.equal(t.column("measurement_quantity"), mq)))


def between(t: pa.Table, lo: dt.datetime, hi: dt.datetime) -> np.ndarray:
    """Rows whose period end is in (lo, hi]."""
    end = t.column("period_end_utc")
    return np.asarray(pc.and_(pc.greater(end, pa.scalar(lo, pa.timestamp("us", tz="UTC"))),
                              pc.less_equal(end, pa.scalar(hi, pa.timestamp("us", tz="UTC")))))  # fmt: skip


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


GAP = (utc(2026, 3, 29, 12, 0), utc(2026, 3, 30, 6, 0))  # 36 half hours, across the clock change day


@pytest.fixture(scope="module")
def case():
    modelled = model([(A, "AI", 0.4), (EXP, "AE", 0.3), (LV, "AI", 40.0), (LV, "RI", 8.0)])
    truth_a = as_actual(series(modelled, A), 1.6)
    in_gap = between(truth_a, *GAP)
    truth_lv = as_actual(series(modelled, LV), 0.5, seed=2)
    lv_days = between(truth_lv, utc(2026, 3, 25), utc(2026, 3, 29))  # the first 3 days only
    actual = pa.concat_tables([truth_a.filter(pa.array(~in_gap)), truth_lv.filter(pa.array(lv_days))])
    merged = merge_actual_with_model(actual, modelled)
    return modelled, actual, merged, truth_a, in_gap, truth_lv, lv_days


def test_output_has_exactly_the_models_keys_in_order(case):
    modelled, _, merged, *_ = case
    assert merged.schema == CONSUMPTION_SCHEMA
    for c in CONSUMPTION_KEY + ("settlement_date", "settlement_period"):
        assert merged.column(c).equals(modelled.column(c)), c  # the model is already in key order
    days = utc_settlement_day(merged.column("period_end_utc").cast(pa.timestamp("us")).to_numpy())
    counts = pa.table({"m": merged.column("mpan_core"), "q": merged.column("measurement_quantity"), "d": days}).group_by(["m", "q", "d"]).aggregate([([], "count_all")])
    assert set(counts.column("count_all").to_pylist()) == {48} and counts.num_rows == 4 * 7


def test_actual_values_pass_through_untouched(case):
    _, actual, merged, *_ = case
    got = merged.filter(pc.equal(merged.column("provenance"), "actual"))
    assert got.equals(actual.sort_by([(c, "ascending") for c in CONSUMPTION_KEY]))


def test_series_without_actual_data_keep_the_modelled_rows(case):
    modelled, _, merged, *_ = case
    for core, mq in ((EXP, "AE"), (LV, "RI")):
        assert series(merged, core, mq).equals(series(modelled, core, mq))
    assert set(pc.unique(series(merged, EXP, "AE").column("provenance")).to_pylist()) == {"manufactured"}


def test_gap_inside_actual_data_is_filled_at_the_mpans_level_and_flagged(case):
    modelled, _, merged, truth_a, in_gap, *_ = case
    got = series(merged, A)
    gap_rows = got.filter(pa.array(in_gap))
    assert gap_rows.num_rows == 36
    assert set(gap_rows.column("quality").to_pylist()) == {"E"}
    assert set(gap_rows.column("estimation_reason").to_pylist()) == {2}
    assert set(gap_rows.column("provenance").to_pylist()) == {"manufactured"}
    filled = gap_rows.column("consumption_kwh").to_numpy()
    hidden = truth_a.filter(pa.array(in_gap)).column("consumption_kwh").to_numpy()
    assert abs(filled.mean() / hidden.mean() - 1) < 0.05  # the MPAN's level, not the model's (1.6x off)
    modelled_gap = series(modelled, A).filter(pa.array(in_gap)).column("consumption_kwh").to_numpy()
    assert abs(filled.mean() / modelled_gap.mean() - 1.6) < 0.05
    # The shape is the model's: filled values are the modelled values times one ratio.
    ratio = filled.sum() / modelled_gap.sum()
    assert np.allclose(filled, np.round(modelled_gap * ratio, 3), atol=0.0011)
    assert np.all(np.round(filled, 3) == filled)


def test_trailing_missing_days_follow_the_series_level(case):
    modelled, _, merged, _, _, truth_lv, lv_days = case
    got = series(merged, LV)
    later = got.filter(pa.array(~lv_days))
    assert set(later.column("quality").to_pylist()) == {"E"} and later.num_rows == 4 * 48
    ratio = later.column("consumption_kwh").to_numpy().mean() / series(modelled, LV).filter(pa.array(~lv_days)).column("consumption_kwh").to_numpy().mean()
    assert abs(ratio - 0.5) < 0.03
    table = level_ratios(case[1], modelled).to_pylist()
    by = {(r["mpan_core"], r["measurement_quantity"]): r for r in table}
    assert set(by) == {(A, "AI"), (LV, "AI")}
    assert by[(LV, "AI")]["overlap_periods"] == 3 * 48 and abs(by[(LV, "AI")]["ratio"] - 0.5) < 0.02
    assert abs(by[(A, "AI")]["ratio"] - 1.6) < 0.05


def test_too_little_overlap_keeps_the_models_level_but_still_flags_estimates():
    modelled = model([(A, "AI", 0.4)], last=FIRST + dt.timedelta(days=1))
    actual = as_actual(modelled.slice(0, 10), 3.0)
    got = merge_actual_with_model(actual, modelled)
    filled = got.slice(10)
    assert filled.column("consumption_kwh").equals(modelled.slice(10).column("consumption_kwh"))
    assert set(filled.column("quality").to_pylist()) == {"E"}
    got = merge_actual_with_model(actual, modelled, min_overlap_periods=10)
    assert abs(got.slice(10).column("consumption_kwh").to_numpy().sum() / modelled.slice(10).column("consumption_kwh").to_numpy().sum() - 3) < 0.1


def test_zero_actual_level_fills_zeros_and_zero_model_keeps_ratio_one():
    modelled = model([(A, "AI", 0.4)], last=FIRST + dt.timedelta(days=2))
    zeros = as_actual(modelled.slice(0, 60), 0.0)
    got = merge_actual_with_model(zeros, modelled)
    assert got.slice(60).column("consumption_kwh").to_numpy().max() == 0.0
    flat = model([(A, "AI", 0.0)], last=FIRST + dt.timedelta(days=2))
    actual = as_actual(model([(A, "AI", 0.4)], last=FIRST + dt.timedelta(days=2)).slice(0, 60), 1.0)
    got = merge_actual_with_model(actual, flat)  # Σ model = 0 over the overlap: not estimable
    assert got.slice(60).column("consumption_kwh").to_numpy().max() == 0.0


def test_de_energised_days_keep_the_models_actual_zeros_given_registrations():
    first, last = dt.date(2026, 6, 28), dt.date(2026, 7, 2)
    modelled = model([(DEEN, "AI", 0.5)], first, last, zero_from={DEEN: dt.date(2026, 7, 1)})
    actual = as_actual(modelled.slice(0, 48), 1.5)  # 28 June only
    got = merge_actual_with_model(actual, modelled, registrations=REG)
    deen = got.slice(3 * 48)  # 1 and 2 July: de-energised
    assert set(deen.column("quality").to_pylist()) == {"A"} and deen.column("estimation_reason").null_count == 2 * 48
    assert deen.column("consumption_kwh").to_numpy().max() == 0.0 and set(deen.column("provenance").to_pylist()) == {"manufactured"}
    energised_gap = got.slice(48, 2 * 48)
    assert set(energised_gap.column("quality").to_pylist()) == {"E"}
    without = merge_actual_with_model(actual, modelled)  # without registrations nothing tells the model's zeros apart
    assert set(without.slice(3 * 48).column("quality").to_pylist()) == {"E"}


def test_index_maps_output_rows_to_modelled_rows_and_unmodelled_actuals_are_listed():
    modelled = model([(A, "AI", 0.4), (LV, "AI", 30.0)], last=FIRST + dt.timedelta(days=1))
    outside = as_actual(model([(A, "AI", 0.4)], FIRST + dt.timedelta(days=5), FIRST + dt.timedelta(days=5)).slice(0, 3), 1.0)
    other_mq = as_actual(model([(LV, "RI", 5.0)], last=FIRST).slice(0, 2), 1.0)
    inside = as_actual(series(modelled, LV).slice(0, 96), 1.2)
    actual = pa.concat_tables([outside, inside, other_mq])
    merged, index = merge_with_model_index(actual, modelled.take(pa.array(np.random.default_rng(0).permutation(modelled.num_rows))))
    assert merged.num_rows == modelled.num_rows and (index >= 0).all()
    unmodelled = unmodelled_actuals(actual, modelled)
    assert unmodelled.num_rows == 5 and set(unmodelled.column("measurement_quantity").to_pylist()) == {"AI", "RI"}
    merged, index = merge_with_model_index(actual, modelled, keep_unmodelled=True)
    assert merged.num_rows == modelled.num_rows + 5 and int((index < 0).sum()) == 5
    keep = index >= 0
    for c in CONSUMPTION_KEY:
        assert merged.filter(pa.array(keep)).column(c).equals(modelled.take(pa.array(index[keep])).column(c))
    key = [(c, "ascending") for c in CONSUMPTION_KEY]
    assert merged.equals(merged.sort_by(key))


def test_inputs_with_dictionary_columns_and_bad_inputs():
    modelled = model([(A, "AI", 0.4)], last=FIRST)
    actual = as_actual(modelled.slice(0, 30), 1.0)
    dict_model = modelled.set_column(0, pa.field("mpan_core", pa.dictionary(pa.int32(), pa.string())), modelled.column("mpan_core").dictionary_encode())
    assert merge_actual_with_model(actual, dict_model).equals(merge_actual_with_model(actual, modelled))
    with pytest.raises(ValueError, match="duplicate"):
        merge_actual_with_model(pa.concat_tables([actual, actual.slice(0, 1)]), modelled)
    with pytest.raises(ValueError, match="not canonical consumption"):
        merge_actual_with_model(actual.drop_columns(["quality"]), modelled)
    empty = merge_actual_with_model(actual.slice(0, 0), modelled)
    assert empty.equals(modelled)


def test_with_the_real_generator_and_a_local_view_extract(tmp_path):
    """The whole path: a participant's actual data (local date + period, 25 Oct clock change
    inside) read from CSV, cleansed against the registrations, merged with the generator."""
    from mhhs_pipeline.core.load import generate_consumption
    from mhhs_pipeline.core.registrations import synthesise_registrations
    from mhhs_pipeline.io.consumption_extract import cleanse_consumption

    sc = scenario(population__mpans=12)
    reg = synthesise_registrations(sc, 0, 12)
    first, last = dt.date(2026, 10, 23), dt.date(2026, 10, 27)
    gen = generate_consumption(sc, reg, first, last)
    modelled = gen.table
    cores = sorted(set(modelled.column("mpan_core").to_pylist()))[:5]
    sent = modelled.filter(pc.is_in(modelled.column("mpan_core"), pa.array(cores)))
    sent = sent.filter(pc.equal(sent.column("quality"), "A"))  # the meter's actual reads
    keep = ~between(sent, utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 8, 0))  # a gap across the clock change
    sent = as_actual(sent.filter(pa.array(keep)), 2.0, noise=0.0)
    csv = tmp_path / "actual.csv"
    pacsv.write_csv(
        pa.table({
            "MPAN": sent.column("mpan_core"),
            "Settlement Date": pc.strftime(sent.column("settlement_date").cast(pa.timestamp("s")), format="%Y%m%d"),
            "Settlement Period": sent.column("settlement_period"),
            "MQ": sent.column("measurement_quantity"),
            "kWh": sent.column("consumption_kwh"),
        }),
        str(csv),
    )  # fmt: skip
    clean, quarantine, out = cleanse_consumption(str(csv), reg)
    assert quarantine.num_rows == 0 and out.stats.reconciles and clean.num_rows == sent.num_rows
    for c in ("mpan_core", "measurement_quantity", "period_end_utc", "settlement_date", "settlement_period", "consumption_kwh"):
        assert clean.column(c).equals(sent.sort_by([(k, "ascending") for k in CONSUMPTION_KEY]).column(c)), c

    merged, index = merge_with_model_index(clean, modelled, registrations=reg)
    assert merged.num_rows == modelled.num_rows and (index >= 0).all()
    registration_row = gen.registration_row[index]  # what the runner slices deliveries with
    assert len(registration_row) == merged.num_rows
    prov = np.asarray(merged.column("provenance").to_pylist())
    assert (prov == "actual").sum() == clean.num_rows
    quality = np.asarray(merged.column("quality").to_pylist())
    reason = merged.column("estimation_reason").is_null().to_numpy(zero_copy_only=False)
    est = np.char.startswith(quality.astype(str), "E")
    assert not (est & reason).any() and not (~est & ~reason).any()  # what `mhhs-pipeline validate` checks
    gap = pc.is_in(merged.column("mpan_core"), pa.array(cores)).to_numpy(zero_copy_only=False) & (prov == "manufactured")
    filled = merged.filter(pa.array(gap & (quality == "E")))
    model_at = modelled.take(pa.array(index[gap & (quality == "E")]))
    ratio = filled.column("consumption_kwh").to_numpy().sum() / max(model_at.column("consumption_kwh").to_numpy().sum(), 1e-9)
    assert abs(ratio - 2.0) < 0.02
    others = ~pc.is_in(merged.column("mpan_core"), pa.array(cores)).to_numpy(zero_copy_only=False)
    assert merged.filter(pa.array(others)).equals(plain_strings(modelled).filter(pa.array(others)))
