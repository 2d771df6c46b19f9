"""`run` with a participant's registration extract: cleansing is the first stage, nothing is
lost, quarantine rows reach the participants they name, and the run validates."""

from __future__ import annotations

import json

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import QUICKSTART, run_cli, scenario

from mhhs_pipeline.core.registrations import synthesise_registrations

pytestmark = pytest.mark.slow


def _dirty_extract(path):
    r = synthesise_registrations(scenario(), 0, 80).to_pandas().drop(columns=["archetype", "provenance"])
    r.loc[3, "mpan_core"] = r.loc[3, "mpan_core"][:-1] + str((int(r.loc[3, "mpan_core"][-1]) + 1) % 10)  # check digit
    r.loc[5, "annual_consumption_kwh"] = -5
    r.loc[9, "supplier_id"] = "=cmd|' /C calc'!A0"
    r = r.rename(columns={"mpan_core": "MPAN", "gsp_group": " GSP Group "})
    r.to_csv(path, index=False)
    return len(r), r.loc[5, "supplier_id"]


def test_run_from_an_extract(tmp_path):
    extract = tmp_path / "extract.csv"
    n_in, supplier_of_bad_kwh = _dirty_extract(extract)
    out = tmp_path / "land"
    res = run_cli(["run", str(QUICKSTART), "--registrations", str(extract), "--out", str(out), "--run-id", "ex", "--workers", "1", "--no-progress"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"rows in {n_in} = clean {n_in - 3} + quarantined 3" in res.stdout
    res = run_cli(["validate", str(out / "ex")], tmp_path)
    assert res.returncode == 0, res.stdout
    m = json.loads((out / "ex" / "manifest.json").read_text())
    assert m["cleansing"]["quarantined"] == 3 and m["totals"]["quarantined"] == 3
    central_q = pq.read_table(out / "ex" / "central/central/quarantine/quarantine.parquet")
    assert central_q.num_rows == 3
    assert set(pc.unique(central_q.column("reason_code")).to_pylist()) >= {"MPAN_CHECK_DIGIT", "ANNUAL_KWH_NEGATIVE"}
    mine = pq.read_table(out / "ex" / f"supplier/{supplier_of_bad_kwh}/quarantine/quarantine.parquet")
    assert set(mine.column("route_supplier_id").to_pylist()) == {supplier_of_bad_kwh}
    # the formula-like id is quarantined and never became a path
    assert not any("calc" in f["path"] or "=" in f["path"] for f in m["files"])
    central_reg = [f for f in m["files"] if f["participant_role"] == "central" and f["dataset"] == "registrations"]
    assert sum(f["rows"] for f in central_reg if f["format"] == "parquet") == n_in - 3


def test_unreadable_extract_fails_fast_without_manifest(tmp_path):
    bad = tmp_path / "extract.csv"
    bad.write_bytes(b"\x00\x01\x02binary\xff\xfe")
    res = run_cli(["run", str(QUICKSTART), "--registrations", str(bad), "--out", str(tmp_path / "land"), "--run-id", "ex"], tmp_path)
    assert res.returncode == 2
    assert "extract.csv" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "land").exists()


def _registrations_csv(path, rows: str):
    r = synthesise_registrations(scenario(), 0, 3).to_pandas().drop(columns=["archetype", "provenance"])
    if rows == "header only":
        r = r.iloc[:0]
    else:
        r["mpan_core"] = "not-an-mpan"
    r.to_csv(path, index=False)


def test_an_extract_without_one_usable_registration_is_refused_up_front(tmp_path):
    extract = tmp_path / "extract.csv"
    _registrations_csv(extract, "header only")
    res = run_cli(["run", str(QUICKSTART), "--registrations", str(extract), "--out", str(tmp_path / "land"), "--run-id", "ex", "--no-progress"], tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "has no usable registration (rows in 0 = clean 0 + quarantined 0" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert not (tmp_path / "land").exists()  # nothing landed, not even an empty run folder


def test_an_extract_of_rejected_rows_only_is_refused_naming_the_count(tmp_path):
    from mhhs_pipeline import stages
    from mhhs_pipeline.io.extract import ExtractError

    extract = tmp_path / "extract.csv"
    _registrations_csv(extract, "all rejected")
    loaded = stages.load_scenario(str(QUICKSTART), {"inputs.registrations": str(extract)})
    with pytest.raises(ExtractError, match=r"no usable registration \(rows in 3 = clean 0 \+ quarantined 3"):
        stages.cleanse_inputs(loaded)


def test_run_with_actual_consumption_passes_actuals_through_and_fills_gaps(tmp_path):
    import datetime as dt

    import pandas as pd

    from mhhs_pipeline.core.load import generate_consumption

    sc = scenario(**{"population.pv_share_of_domestic": 0.0, "population.advanced_share": 0.0, "population.de_energised_share": 0.0, "population.de_energisation_rate_per_year": 0.0, "population.new_connection_share": 0.0})
    reg = synthesise_registrations(sc, 0, 30)
    extract = tmp_path / "registrations.csv"
    reg.to_pandas().to_csv(extract, index=False)
    # "Actual" data for 5 MPANs: another seed's series, twice as large, with a day missing and a bad row.
    other = generate_consumption(scenario(seed=99), reg, sc.window.start, sc.window.end).table.to_pandas()
    cores = sorted(set(other.mpan_core))[:5]
    act = other[other.mpan_core.isin(cores) & (other.measurement_quantity == "AI")].copy()
    act["consumption_kwh"] = (act.consumption_kwh * 2).round(3)
    gap_day = sc.window.start + dt.timedelta(days=3)
    act = act[(act.period_end_utc - pd.Timedelta(minutes=30)).dt.date != gap_day]
    rows = pd.DataFrame({"MPAN": act.mpan_core, "Period End UTC": act.period_end_utc.dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "kWh": act.consumption_kwh.map("{:.3f}".format), "Quality": "A"})
    bad = rows.iloc[:1].assign(kWh="-4.000", **{"Period End UTC": gap_day.strftime("%Y-%m-%dT10:00:00Z")})  # negative, on the gap day
    pd.concat([rows, bad]).to_csv(tmp_path / "actual.csv", index=False)
    out = tmp_path / "land"
    res = run_cli(["run", str(QUICKSTART), "--registrations", str(extract), "--consumption", str(tmp_path / "actual.csv"), "--out", str(out), "--run-id", "act", "--workers", "1", "--no-progress"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    res = run_cli(["validate", str(out / "act")], tmp_path)
    assert res.returncode == 0, res.stdout
    m = json.loads((out / "act" / "manifest.json").read_text())
    assert m["cleansing"]["consumption"]["quarantined"] == 1
    files = [out / "act" / f["path"] for f in m["files"] if f["participant_role"] == "central" and f["dataset"] == "consumption" and f["format"] == "parquet"]
    import pyarrow as pa

    got = pa.concat_tables([pq.read_table(f) for f in files]).to_pandas()
    mine = got[got.mpan_core.isin(cores)]
    actual = mine[mine.provenance == "actual"]
    assert len(actual) == len(rows)
    merged = actual.merge(act[["mpan_core", "period_end_utc", "consumption_kwh"]], on=["mpan_core", "period_end_utc"], suffixes=("", "_in"))
    assert len(merged) == len(rows) and (merged.consumption_kwh == merged.consumption_kwh_in).all()
    filled = mine[mine.provenance == "manufactured"]
    assert len(filled) == 5 * 48 and (filled.quality == "E").all() and (filled.estimation_reason == 2).all()
    assert set((filled.period_end_utc - pd.Timedelta(minutes=30)).dt.date) == {gap_day}
    # filled at the MPAN's own (doubled) level, not the model's
    level = filled.consumption_kwh.mean() / actual.consumption_kwh.mean()
    assert 0.4 < level < 2.5
    others = got[~got.mpan_core.isin(cores)]
    assert (others.provenance == "manufactured").all()
    raw = [f for f in m["files"] if f["dataset"] == "meter_reads_raw" and f["participant_role"] == "central" and f["format"] == "parquet"]
    raw_t = pa.concat_tables([pq.read_table(out / "act" / f["path"]) for f in raw])
    assert not set(raw_t.column("mpan_core").to_pylist()) & set(cores)
