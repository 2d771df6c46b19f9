"""``run --units``: some units alone, byte-identical to the full run's files; into a
complete run of the same scenario they repair it (its manifest unchanged); refused for
another scenario or an id the plan lacks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import QUICKSTART, cli_env, run_cli

pytestmark = pytest.mark.slow

SIZE = ["--mpans", "80", "--mpans-per-unit", "40", "--days-per-unit", "7", "--workers", "2", "--no-progress"]
A, B = "s000000000-d20261026", "s000000040-d20261019"  # a later day range of block 0; block 40's first


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("units")
    out = tmp / "land"
    res = run_cli(["run", str(QUICKSTART), "--out", str(out), "--run-id", "full", *SIZE], tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    return tmp, out


def test_the_full_run_counts_each_mpan_once_and_logs_progress(full):
    tmp, out = full
    m = json.loads((out / "full" / "manifest.json").read_text())
    regs = [f["path"] for f in m["files"] if f["participant_role"] == "central" and f["dataset"] == "registrations" and f["format"] == "parquet"]
    mpans = sum(len(pc.unique(pq.read_table(out / "full" / p).column("mpan_core"))) for p in regs)
    assert m["totals"]["mpans"] == mpans and mpans >= 80  # 4 units, 2 per block: each MPAN once


def test_units_alone_are_byte_identical_to_the_full_run(full):
    tmp, out = full
    env = {**cli_env(tmp), "PREFECT_LOGGING_LEVEL": "INFO"}  # the flow's progress lines
    res = run_cli(["run", str(QUICKSTART), "--out", str(out), "--run-id", "part", "--units", f"{A},{B}", *SIZE], tmp, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "generate-and-deliver: 2/2 units" in res.stdout + res.stderr and "dashboard http://127.0.0.1:" in res.stdout + res.stderr
    part = json.loads((out / "part" / "manifest.json").read_text())
    assert part["units"] == [A, B]
    data = [f for f in part["files"] if f["dataset"] not in ("readme", "report", "manifest")]  # those list the run's own files
    assert {Path(f["path"]).name.split(".")[0] for f in data if f["dataset"] == "consumption" and f["format"] == "parquet"} == {A, B}
    assert any(f["dataset"] == "registrations" for f in data)  # B is its block's first unit
    assert any(f["format"] == "dcc_xml_zip" and f.get("members") for f in data)
    for f in data:
        assert _sha(out / "full" / f["path"]) == f["sha256"] == _sha(out / "part" / f["path"]), f["path"]


def test_units_repair_a_damaged_run(full):
    tmp, out = full
    run_dir = out / "full"
    before = (run_dir / "manifest.json").read_bytes()
    files = json.loads(before)["files"]
    lost = next(f["path"] for f in files if f["path"].startswith("supplier/") and A in f["path"] and f["format"] == "parquet")
    cut = next(f["path"] for f in files if f["path"].startswith("central/") and A in f["path"] and f["format"] == "csv")
    (run_dir / lost).unlink()
    (run_dir / cut).write_bytes((run_dir / cut).read_bytes()[:100])
    assert run_cli(["validate", str(run_dir)], tmp).returncode != 0

    res = run_cli(["run", str(QUICKSTART), "--out", str(out), "--run-id", "full", "--units", A, *SIZE], tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    rewritten = sum(1 for f in files if A in f["path"])
    assert any(f["format"] == "dcc_xml_zip" and A in f["path"] for f in files)  # the unit's DCC bundles too
    assert f"repaired: {rewritten} files rewritten, {rewritten} identical to the manifest's, 0 changed, 0 new" in res.stdout
    assert (run_dir / "manifest.json").read_bytes() == before
    valid = run_cli(["validate", str(run_dir)], tmp)
    assert valid.returncode == 0, valid.stdout


def test_units_refused_for_another_scenario_or_an_unknown_id(full):
    tmp, out = full
    before = (out / "full" / "manifest.json").read_bytes()
    other = run_cli(["run", str(QUICKSTART), "--out", str(out), "--run-id", "full", "--units", A, "--seed", "7", *SIZE], tmp)
    assert other.returncode == 2 and "made from another scenario" in other.stderr, other.stdout + other.stderr
    assert (out / "full" / "manifest.json").read_bytes() == before  # refused before anything changed
    unknown = run_cli(["run", str(QUICKSTART), "--out", str(out), "--run-id", "x", "--units", "s000000000-d20261020", *SIZE], tmp)
    assert unknown.returncode == 2 and "is not in this scenario's plan (4 units" in unknown.stderr
    assert "Traceback" not in unknown.stderr + other.stderr and not (out / "x").exists()
