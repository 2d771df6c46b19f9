"""Same seed -> identical data whatever the worker count or partitioning (real Dask clusters)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import scenario

from mhhs_pipeline import stages
from mhhs_pipeline.distributed import run_on_dask
from mhhs_pipeline.runner import run_unit
from mhhs_pipeline.spec.scenario import apply_overrides_to_yaml

pytestmark = pytest.mark.slow

KEY = [("mpan_core", "ascending"), ("measurement_quantity", "ascending"), ("period_end_utc", "ascending")]


def _run(tmp_path, run_id, workers, mpans_per_unit, days_per_unit):
    from conftest import QUICKSTART

    overrides = {"population.mpans": 400, "partitioning.mpans_per_unit": mpans_per_unit, "partitioning.days_per_unit": days_per_unit, "outputs.formats": ["parquet"]}
    loaded = stages.load_scenario(str(QUICKSTART), overrides)
    jobs = stages.unit_jobs(loaded, str(tmp_path), run_id)
    results = run_on_dask(run_unit, jobs, workers=workers, progress=False)
    files = sorted(r.path for res in results for r in res.records)
    central = [f for f in files if f.startswith("central/") and "/consumption/" in f]
    supplier_rows = sum(pq.read_table(tmp_path / run_id / f).num_rows for f in files if f.startswith("supplier/") and "/consumption/" in f)
    table = pa.concat_tables([pq.read_table(tmp_path / run_id / f) for f in central]).sort_by(KEY)
    return len(jobs), table, supplier_rows


def test_one_worker_equals_two_workers_with_other_partitions(tmp_path):
    n1, a, sa = _run(tmp_path, "one", 1, 400, 14)
    n2, b, sb = _run(tmp_path, "two", 2, 90, 5)
    assert n1 == 1 and n2 == 15
    assert a.num_rows > 0 and a.equals(b)
    assert sa == sb == a.num_rows


def test_scenario_text_overrides_are_hashed(tmp_path):
    sc = scenario(**{"population.mpans": 10})
    assert sc.population.mpans == 10
    text = apply_overrides_to_yaml("name: x\n", {"population.mpans": 5})
    assert "mpans: 5" in text
