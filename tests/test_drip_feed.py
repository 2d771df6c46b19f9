"""Drip-feed: one UTC settlement day of a population per run.

A day's run holds the same values as that day of the full window's run (registrations:
those in force that day); the next day is found from what is published; re-running a day
gives the same bytes; days outside the population's window are refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import QUICKSTART, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from mhhs_pipeline import drip, stages
from mhhs_pipeline.core.registrations import in_force
from mhhs_pipeline.runner import run_unit
from mhhs_pipeline.spec.scenario import ScenarioError, Window

TIME = {"consumption": "period_end_utc", "ground_truth": "period_end_utc", "meter_reads_raw": "read_timestamp_utc"}


def _key(dataset: str, table: pa.Table) -> list[tuple[str, str]]:
    return [(c, "ascending") for c in ("mpan_core", "measurement_quantity", TIME[dataset], *table.column_names)]
OVERRIDES = {"population.mpans": 120, "partitioning.mpans_per_unit": 60, "partitioning.days_per_unit": 5, "outputs.formats": ["parquet"]}


def _serial(loaded, out, run_id, days=None):
    stages.prepare_run(str(out), run_id)
    return [run_unit(j) for j in stages.unit_jobs(loaded, str(out), run_id, days=days)]


def _utc_day(period_end_utc) -> pa.Array:
    return pc.cast(pc.subtract(period_end_utc, pa.scalar(dt.timedelta(minutes=30))), pa.timestamp("us")).cast(pa.date32())


def _read(run_dir, prefix: str, dataset: str) -> pa.Table:
    files = sorted((run_dir / prefix / dataset).glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else None


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("drip")
    loaded = stages.load_scenario(str(QUICKSTART), OVERRIDES)
    results = _serial(loaded, out, "full")
    return loaded, out, results


@pytest.mark.parametrize("day", [dt.date(2026, 10, 25), dt.date(2026, 10, 27)])  # the clock change; a day inside a 5-day unit
def test_a_drip_day_equals_that_day_of_the_full_window_run(full_run, day):
    loaded, out, _ = full_run
    rid = drip.drip_run_id("q", day)
    results = _serial(loaded, out, rid, days=(day, day))
    # One day of 120 MPANs is one unit: 60 MPANs x 5 days per unit is 300 MPAN-days.
    assert [r.unit_id for r in results] == [f"s000000000-d{day:%Y%m%d}"]
    participants = {(r.participant_role, r.participant_id) for res in results for r in res.records}
    assert ("central", "central") in participants and len(participants) > 4
    for dataset in ("consumption", "ground_truth", "meter_reads_raw"):
        for role, pid in participants:
            prefix = f"{role}/{pid}"
            whole = _read(out / "full", prefix, dataset)
            one = _read(out / rid, prefix, dataset)
            if whole is None:
                assert one is None
                continue
            expected = whole.filter(pc.equal(_utc_day(whole.column(TIME[dataset])), pa.scalar(day)))
            expected = expected.sort_by(_key(dataset, expected))
            got = one.sort_by(_key(dataset, one)) if one is not None else expected.slice(0, 0)
            assert expected.num_rows == got.num_rows, (dataset, prefix)
            assert got.equals(expected), (dataset, prefix)
    # Registrations: those in force on the day, for every participant.
    whole = _read(out / "full", "central/central", "registrations")
    got = _read(out / rid, "central/central", "registrations")
    assert got.equals(in_force(whole, day, day)) and 0 < got.num_rows <= whole.num_rows


def test_manifest_of_a_day_names_its_day_and_its_population(full_run):
    loaded, out, _ = full_run
    day = dt.date(2026, 10, 20)
    results = _serial(loaded, out, "q-day", days=(day, day))
    m = stages.manifest_for(loaded, "q-day", results, days=(day, day))
    assert m["window"] == {"start": "2026-10-20", "end": "2026-10-20"}
    assert m["population_window"] == {"start": "2026-10-19", "end": "2026-11-01"}
    central = _read(out / "q-day", "central/central", "consumption")
    assert m["totals"]["half_hour_values"] == central.num_rows
    assert m["totals"]["mpans"] == len(pc.unique(_read(out / "q-day", "central/central", "registrations").column("mpan_core")))


def test_days_outside_the_window_are_refused(full_run):
    loaded, out, _ = full_run
    with pytest.raises(ValueError, match="not inside the scenario window"):
        stages.unit_jobs(loaded, str(out), "x", days=(dt.date(2026, 11, 2), dt.date(2026, 11, 2)))
    with pytest.raises(ScenarioError, match="outside the population's window"):
        drip.choose_day(loaded.scenario.window, [], dt.date(2026, 10, 18))


@settings(max_examples=200, deadline=None)
@given(
    start=st.dates(dt.date(2026, 1, 1), dt.date(2027, 1, 1)),
    length=st.integers(0, 40),
    offsets=st.sets(st.integers(-5, 45), max_size=12),
)
def test_next_day_follows_the_last_published_day_of_the_window(start, length, offsets):
    window = Window(start=start, end=start + dt.timedelta(days=length))
    published = sorted(start + dt.timedelta(days=o) for o in offsets)
    inside = [d for d in published if window.start <= d <= window.end]
    nxt = drip.choose_day(window, published, None)
    if not inside:
        assert nxt == window.start
    elif max(inside) == window.end:
        assert nxt is None
    else:
        assert nxt == max(inside) + dt.timedelta(days=1) and window.start <= nxt <= window.end


def test_published_days_are_complete_runs_with_our_names(tmp_path):
    for name, complete in [("p-2026-10-19", True), ("p-2026-10-20", False), ("p-2026-02-30", True), ("px-2026-10-21", True), ("p-2026-10-22", True)]:
        (tmp_path / name).mkdir()
        if complete:
            (tmp_path / name / "manifest.json").write_text("{}")
    assert drip.published_days(str(tmp_path), "p") == [dt.date(2026, 10, 19), dt.date(2026, 10, 22)]
    assert drip.published_days(str(tmp_path / "none"), "p") == []


def _hashes(run_dir) -> dict[str, str]:
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_drip_cli_publishes_the_next_days_and_a_rerun_is_the_same_bytes(tmp_path):
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(QUICKSTART.read_text().replace("mpans: 2000", "mpans: 50").replace("start: 2026-10-19", "start: 2026-10-24").replace("end: 2026-11-01", "end: 2026-10-25"))
    out = tmp_path / "land"
    args = ["drip", str(scenario), "--out", str(out), "--workers", "1"]
    first = run_cli(args, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "day 2026-10-24: run quickstart-day-2026-10-24" in first.stdout
    second = run_cli(args, tmp_path)
    assert second.returncode == 0 and "day 2026-10-25: run quickstart-day-2026-10-25" in second.stdout, second.stdout + second.stderr
    done = run_cli(args, tmp_path)
    assert done.returncode == 0 and "nothing to do" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["quickstart-day-2026-10-24", "quickstart-day-2026-10-25"]

    day_dir = out / "quickstart-day-2026-10-24"
    before = _hashes(day_dir)
    manifest = json.loads((day_dir / "manifest.json").read_text())
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert {p: h for p, h in before.items() if p != "manifest.json"} == listed
    again = run_cli([*args, "--day", "2026-10-24"], tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _hashes(day_dir) == before  # every file, the manifest included
    valid = run_cli(["validate", str(day_dir)], tmp_path)
    assert valid.returncode == 0, valid.stdout

    outside = run_cli([*args, "--day", "2026-10-26"], tmp_path)
    assert outside.returncode == 2 and "outside the population's window" in outside.stderr
    assert "Traceback" not in outside.stderr and not (out / "quickstart-day-2026-10-26").exists()
