"""The benchmark's stage split (``benchmarks.stage_costs``) counts the rows the floors count.

Not a timing test: it checks that the harness charges the right rows (every participant
copy of consumption and raw reads) and reports consistent bounds, on a tiny unit.
"""

from __future__ import annotations

from conftest import QUICKSTART

from benchmarks.stage_costs import markdown, measure
from mhhs_pipeline import stages
from mhhs_pipeline.core.load import generate_load
from mhhs_pipeline.core.participants import consumption_slices
from mhhs_pipeline.core.registrations import synthesise_registrations


def test_stage_costs_charge_every_participant_copy(tmp_path):
    overrides = {"partitioning.mpans_per_unit": 40, "partitioning.days_per_unit": 7}
    res = measure(QUICKSTART, overrides, tmp_path, repeats=1)

    loaded = stages.load_scenario(str(QUICKSTART), {**overrides, "population.mpans": 40})
    sc, unit = loaded.scenario, stages.unit_jobs(loaded, str(tmp_path), "x")[0].unit
    reg = synthesise_registrations(sc, unit.site_start, unit.site_stop)
    out = generate_load(sc, reg, unit.first_day, unit.last_day)
    expected = sum(len(sl.rows) for sl in consumption_slices(reg, out.consumption.registration_row)) + sum(
        len(sl.rows) for sl in consumption_slices(reg, out.raw_registration_row) if sl.role in ("data_service", "central")
    )
    assert res["canonical_rows"] == out.consumption.table.num_rows > 0
    assert res["rows_written"] == expected  # 4 consumption copies + 2 raw copies per value
    assert all(v > 0 for v in res["cpu_s"].values())
    assert res["parquet_encoder_only_rows_per_cpu_s"] > res["parquet_rows_per_cpu_s_without_generation"] > res["parquet_rows_per_cpu_s"]
    assert 1.0 < res["parquet_bytes"] / res["rows_written"] < res["csv_bytes"] / res["rows_written"]
    text = "\n".join(markdown(res))
    assert "| parquet_encode |" in text and f"{res['rows_written']:,} rows written" in text
