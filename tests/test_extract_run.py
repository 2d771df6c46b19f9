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
