"""``mhhs-pipeline plan``: a dry run whose units, files, bytes and values match what a run
then makes, and which plans the market-year scenario without generating it."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import QUICKSTART, ROOT, run_cli

from mhhs_pipeline import stages
from mhhs_pipeline.io.store import RunStore
from mhhs_pipeline.projection import project

MARKET_YEAR = ROOT / "configs" / "scenarios" / "market-year.yaml"


@pytest.mark.parametrize("overrides", [{"population.mpans": 900}, {"population.mpans": 700, "outputs.formats": ["parquet", "csv"], "partitioning.days_per_unit": 5}])
def test_the_plan_matches_the_run(tmp_path, overrides):
    loaded = stages.load_scenario(str(QUICKSTART), overrides)
    plan = project(loaded.scenario)
    jobs = stages.unit_jobs(loaded, str(tmp_path), "r")
    results = stages.run_jobs_serially(jobs)
    readmes = stages.write_participant_readmes(RunStore(str(tmp_path), "r"), results)
    records = [r for res in results for r in res.records] + readmes
    assert plan.units == len(jobs)
    values = sum(r.half_hours for r in results)
    assert abs(plan.canonical_values - values) <= 0.05 * values
    made_bytes = sum(r.bytes for r in records)
    assert abs(plan.total_bytes - made_bytes) <= 0.10 * made_bytes, (plan.total_bytes, made_bytes)
    made = Counter(r.format for r in records) + Counter({"png": 1})  # the flow adds the load-model report
    planned = plan.to_dict()["files_by_format"]
    for fmt, n in made.items():
        assert abs(planned.get(fmt, 0) - n) <= max(2, 0.10 * n), (fmt, planned, made)
    by_format = plan.to_dict()["bytes_by_format"]
    for fmt in ("parquet", "csv"):
        n = sum(r.bytes for r in records if r.format == fmt)
        assert abs(by_format[fmt] - n) <= 0.15 * n, (fmt, by_format[fmt], n)


def test_the_market_year_is_planned_from_the_cli_without_generating_it(tmp_path):
    res = run_cli(["plan", str(MARKET_YEAR), "--json"], tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["mpans"] == 30_000_000 and d["units"] == 30_000 * 12
    assert 17_520 * 30_000_000 <= d["canonical_values"] <= 17_520 * 30_000_000 * 1.2  # export MPANs on top
    assert d["files"] > d["units"] and d["bytes"] > 0 and d["core_hours"] > 0
    assert {"supplier/OCTO", "data_service/SDS1", "ldso/LOND", "central/central"} <= set(d["bytes_by_participant"])
    assert d["sample"]["sites"] == 400 and "benchmarks" in d["rates_source"]
    text = run_cli(["plan", str(MARKET_YEAR), "--mpans", "1000000", "--end", "2026-01-31"], tmp_path, timeout=120)
    assert text.returncode == 0 and "plan market-year: 1,000,000 import MPANs, 2026-01-01..2026-01-31 (31 days)" in text.stdout
    assert "projected core-hours" in text.stdout


def test_plan_refuses_an_extract_scenario_in_one_line(tmp_path):
    res = run_cli(["plan", str(QUICKSTART), "--days-per-unit", "0"], tmp_path, timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    extract = tmp_path / "s.yaml"
    extract.write_text(QUICKSTART.read_text() + "\ninputs:\n  registrations: x.csv\n")
    res = run_cli(["plan", str(extract)], tmp_path, timeout=60)
    assert res.returncode == 2 and "registration extract" in res.stderr and len(res.stderr.strip().splitlines()) == 1
