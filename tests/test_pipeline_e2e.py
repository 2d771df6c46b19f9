"""End to end on real components: the CLI runs the Prefect flow on a real Dask cluster,
``validate`` accepts the run and rejects damaged copies of it."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import QUICKSTART, ROOT, cli_env, run_cli

from mhhs_pipeline.formats.tabular import encode_parquet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qs")
    out = tmp / "landing"
    res = run_cli(["run", str(QUICKSTART), "--out", str(out), "--run-id", "qs", "--workers", "2", "--no-progress"], tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    return tmp, out / "qs", res.stdout


def test_quickstart_runs_and_validates(quickstart_run):
    tmp, run_dir, stdout = quickstart_run
    assert f"manifest: {run_dir}/manifest.json" in stdout
    res = run_cli(["validate", str(run_dir)], tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK" in res.stdout


def test_manifest_follows_the_contract(quickstart_run):
    _, run_dir, _ = quickstart_run
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["run_id"] == "qs" and m["window"] == {"start": "2026-10-19", "end": "2026-11-01"}
    assert re.fullmatch(r"[0-9a-f]{64}", m["scenario_sha256"])
    import hashlib

    assert m["scenario_sha256"] == hashlib.sha256(QUICKSTART.read_bytes()).hexdigest()
    roles = {(f["participant_role"], f["participant_id"]) for f in m["files"]}
    assert {r for r, _ in roles} == {"supplier", "data_service", "ldso", "central"}
    assert all(re.fullmatch(r"[A-Z0-9]{4}", p) for r, p in roles if r != "central")
    assert ("ldso", "LOND") in roles and any(r == "ldso" and p in ("IPNL", "LENG", "GUCL", "ETCL", "HARL", "PENL", "UKPD", "UDNL", "GGEN", "MPDL", "FEAL", "VATT", "FORB", "INDI", "STRK", "UTAL") for r, p in roles)
    for f in m["files"]:
        prefix = f"{f['participant_role']}/{f['participant_id']}/"
        expected = {"readme": prefix + "README.txt", "manifest": prefix + "manifest.json"}.get(f["dataset"], prefix + f["dataset"] + "/")
        assert f["path"].startswith(expected)
        assert (run_dir / f["path"]).stat().st_size == f["bytes"]
    by_dataset = {}
    for f in m["files"]:
        by_dataset.setdefault(f["dataset"], set()).add(f["participant_role"])
    assert by_dataset["meter_reads_raw"] == by_dataset["ground_truth"] == {"data_service", "central"}
    assert by_dataset["dcc_profile_data"] == {"data_service"}
    assert by_dataset["report"] == {"central"}
    png = (run_dir / "central/central/report/load_model.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    formats = {f["format"] for f in m["files"]}
    assert formats >= {"parquet", "csv", "csv_wide", "csv_wide_local", "if021_json", "dcc_xml_zip", "png", "text"}
    bundles = [f for f in m["files"] if f["format"] == "dcc_xml_zip"]
    assert bundles and all(f["path"].endswith(".dcc.zip") and f["members"] >= 1 for f in bundles)
    assert len(bundles) <= len({f["participant_id"] for f in bundles}) * len({f["path"].rsplit("/", 1)[1] for f in bundles})  # one per data service per unit
    central = [f for f in m["files"] if f["participant_role"] == "central" and f["dataset"] == "consumption" and f["format"] == "parquet"]
    t = pa.concat_tables([pq.read_table(run_dir / f["path"]) for f in central])
    assert t.num_rows == sum(f["rows"] for f in central) == m["totals"]["half_hour_values"]
    # 50 local periods on the long day, and both time views present
    oct25 = t.filter(pc.equal(t.column("settlement_date"), pa.scalar(__import__("datetime").date(2026, 10, 25))))
    assert pc.max(oct25.column("settlement_period")).as_py() == 50
    csv_text = (run_dir / central[0]["path"].replace(".parquet", ".csv")).read_text().splitlines()
    assert csv_text[0] == "mpan_core,measurement_quantity,period_end_utc,settlement_date,settlement_period,consumption_kwh,quality,estimation_reason,provenance"
    assert re.fullmatch(r"\d{13},A[IE]|R[IE],\d{4}-\d\d-\d\dT\d\d:[03]0:00Z,\d{4}-\d\d-\d\d,\d+,\d+\.\d{3},[A-Z0-9]+,\d*,manufactured".replace("A[IE]|R[IE]", "(?:AI|AE|RI|RE)"), csv_text[1])


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A 200-MPAN run in every format: the victim of the damage tests."""
    tmp = tmp_path_factory.mktemp("small")
    out = tmp / "landing"
    res = run_cli(["run", str(QUICKSTART), "--out", str(out), "--run-id", "qs", "--mpans", "200", "--workers", "1", "--no-progress"], tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    return tmp, out / "qs", res.stdout


def _copy(run_dir, tmp, name):
    dst = tmp / name / "qs"
    shutil.copytree(run_dir, dst)
    return dst


def _rewrite_manifest(dst, path, data):
    import hashlib

    m = json.loads((dst / "manifest.json").read_text())
    for f in m["files"]:
        if f["path"] == path:
            f["bytes"], f["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (dst / "manifest.json").write_text(json.dumps(m))


def test_validate_rejects_a_flipped_byte(small_run, tmp_path):
    tmp, run_dir, _ = small_run
    dst = _copy(run_dir, tmp_path, "flip")
    m = json.loads((dst / "manifest.json").read_text())
    target = dst / next(f["path"] for f in m["files"] if f["format"] == "csv" and f["participant_role"] == "supplier")
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    res = run_cli(["validate", str(dst)], tmp)
    assert res.returncode == 1 and "sha256 mismatch" in res.stdout


def test_validate_rejects_a_missing_file_and_a_missing_manifest(small_run, tmp_path):
    tmp, run_dir, _ = small_run
    dst = _copy(run_dir, tmp_path, "missing")
    m = json.loads((dst / "manifest.json").read_text())
    gone = next(f["path"] for f in m["files"] if f["participant_role"] == "ldso")
    (dst / gone).unlink()
    res = run_cli(["validate", str(dst)], tmp)
    assert res.returncode == 1 and f"missing file {gone}" in res.stdout
    (dst / "manifest.json").unlink()
    res = run_cli(["validate", str(dst)], tmp)
    assert res.returncode == 1 and "no manifest.json" in res.stdout


def test_validate_rejects_a_foreign_row_even_with_a_matching_checksum(small_run, tmp_path):
    tmp, run_dir, _ = small_run
    dst = _copy(run_dir, tmp_path, "foreign")
    m = json.loads((dst / "manifest.json").read_text())
    sup = [f for f in m["files"] if f["participant_role"] == "supplier" and f["dataset"] == "consumption" and f["format"] == "parquet"]
    mine, other = sup[0], next(f for f in sup if f["participant_id"] != sup[0]["participant_id"])
    stolen = pq.read_table(dst / other["path"]).slice(0, 1)
    t = pa.concat_tables([pq.read_table(dst / mine["path"]).slice(1), stolen])  # same row count, one foreign row
    data = encode_parquet(t)
    (dst / mine["path"]).write_bytes(data)
    _rewrite_manifest(dst, mine["path"], data)
    res = run_cli(["validate", str(dst)], tmp)
    assert res.returncode == 1
    assert "belong to another supplier" in res.stdout
    assert "CSV content differs" in res.stdout  # the CSV twin still holds the original rows


def test_validate_rejects_an_unlisted_file(small_run, tmp_path):
    tmp, run_dir, _ = small_run
    dst = _copy(run_dir, tmp_path, "unlisted")
    (dst / "supplier" / "GRNX" / "consumption" / "extra.csv").write_text("x\n")
    res = run_cli(["validate", str(dst)], tmp)
    assert res.returncode == 1 and "unlisted file supplier/GRNX/consumption/extra.csv" in res.stdout


def test_bad_scenario_fails_fast_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(QUICKSTART.read_text().replace("mpans: 2000", "mpans: -3"))
    res = run_cli(["run", str(bad), "--out", str(tmp_path / "o")], tmp_path)
    assert res.returncode == 2
    assert "population.mpans" in res.stderr and "Traceback" not in res.stderr + res.stdout
    assert not (tmp_path / "o").exists()


def test_external_scheduler_with_two_worker_processes(tmp_path):
    """A real `dask scheduler` and two `dask worker` processes on 127.0.0.1, used via --dask-address."""
    sched_file = tmp_path / "scheduler.json"
    env = cli_env(tmp_path)
    bin_dir = ROOT / ".venv" / "bin"
    dask_cli = [str(bin_dir / "dask")] if (bin_dir / "dask").exists() else [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen(dask_cli + ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(sched_file)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        import time

        from distributed import Client

        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen(dask_cli + ["worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
            worker_pids = set(c.run(lambda: __import__("os").getpid()).values())
        assert len(worker_pids) == 2
        out = tmp_path / "land"
        res = run_cli(["run", str(QUICKSTART), "--out", str(out), "--run-id", "ext", "--dask-address", address, "--mpans", "300", "--no-progress"], tmp_path)
        assert res.returncode == 0, res.stdout + res.stderr
        res = run_cli(["validate", str(out / "ext")], tmp_path)
        assert res.returncode == 0, res.stdout
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def _resign(dst, path, data, rows=None, new_path=None, participant_id=None):
    """Tamper as an insider would: the manifest is rewritten to match the changed file."""
    import hashlib

    m = json.loads((dst / "manifest.json").read_text())
    rec = next(f for f in m["files"] if f["path"] == path)
    rec["bytes"], rec["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    rec["rows"] = rec["rows"] if rows is None else rows
    target = dst / (new_path or path)
    if new_path:
        (dst / path).unlink()
        rec["path"], rec["participant_id"] = new_path, participant_id
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    (dst / "manifest.json").write_text(json.dumps(m))


def _files(dst, **where):
    m = json.loads((dst / "manifest.json").read_text())
    return [f for f in m["files"] if all(f[k] == v for k, v in where.items())]


def _errors(dst):
    from mhhs_pipeline.validate import validate_run

    report = validate_run(str(dst))
    assert not report.ok
    return "\n".join(report.errors)


def test_validate_rejects_a_foreign_mpan_in_a_suppliers_if021(small_run, tmp_path):
    _, run_dir, _ = small_run
    dst = _copy(run_dir, tmp_path, "if021")
    sup = _files(dst, participant_role="supplier", format="if021_json")
    mine, other = sup[0], next(f for f in sup if f["participant_id"] != sup[0]["participant_id"])
    messages = json.loads((dst / mine["path"]).read_text())
    stolen = json.loads((dst / other["path"]).read_text())[0]
    messages.append(stolen)
    n = sum(len(d["consumptionPeriods"]) for msg in messages for d in msg["payload"]["CustomBlock"]["B900"]["settlementDayConsumptionPeriods"])
    _resign(dst, mine["path"], json.dumps(messages).encode(), rows=n)
    errors = _errors(dst)
    core = stolen["payload"]["CommonBlock"]["M0"]["MPANCore"]
    assert f"{mine['path']}: " in errors and "belong to another supplier" in errors and core in errors
    assert f"{mine['path']}: IF-021 content differs" in errors
    assert "IF-021 periods, manifest says" not in errors  # the count was re-signed: only the content check can catch it


def test_validate_rejects_a_foreign_line_in_a_wide_csv(small_run, tmp_path):
    _, run_dir, _ = small_run
    dst = _copy(run_dir, tmp_path, "wide")
    for fmt in ("csv_wide", "csv_wide_local"):
        sup = _files(dst, participant_role="supplier", format=fmt)
        mine, other = sup[0], next(f for f in sup if f["participant_id"] != sup[0]["participant_id"])
        lines = (dst / mine["path"]).read_bytes().splitlines(keepends=True)
        stolen = (dst / other["path"]).read_bytes().splitlines(keepends=True)[1]
        data = b"".join([*lines, stolen])
        values = sum(1 for v in stolen.decode().rstrip().split(",")[4:] if v and v[0].isdigit())
        _resign(dst, mine["path"], data, rows=mine["rows"] + values)
        errors = _errors(dst)
        assert f"{mine['path']}: 1 line(s) belong to another supplier (e.g. MPAN {stolen.split(b',')[0].decode()})" in errors
        assert f"{mine['path']}: wide CSV content differs" in errors
        assert "values in the wide CSV, manifest says" not in errors


def _members(dst, rec) -> dict[str, bytes]:
    import zipfile

    with zipfile.ZipFile(dst / rec["path"]) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def _zip(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, body in members.items():
            z.writestr(name, body)
    return buf.getvalue()


def _resign_bundle(dst, rec, members: dict[str, bytes]) -> None:
    import hashlib

    data = _zip(members)
    (dst / rec["path"]).write_bytes(data)
    m = json.loads((dst / "manifest.json").read_text())
    for f in m["files"]:
        if f["path"] == rec["path"]:
            f["bytes"], f["sha256"], f["members"] = len(data), hashlib.sha256(data).hexdigest(), len(members)
            f["rows"] = sum(body.count(b"<ra:LogEntry>") for body in members.values())
    (dst / "manifest.json").write_text(json.dumps(m))


def test_validate_rejects_a_dcc_response_moved_to_another_data_service(small_run, tmp_path):
    _, run_dir, _ = small_run
    dst = _copy(run_dir, tmp_path, "dcc-move")
    bundles = _files(dst, participant_role="data_service", format="dcc_xml_zip")
    src = bundles[0]
    to = next(f for f in bundles if f["participant_id"] != src["participant_id"] and f["path"].rsplit("/", 1)[1] == src["path"].rsplit("/", 1)[1])
    mine, theirs = _members(dst, src), _members(dst, to)
    name = next(iter(mine))
    theirs[name] = mine.pop(name)
    n = theirs[name].count(b"<ra:LogEntry>")
    _resign_bundle(dst, src, mine)
    _resign_bundle(dst, to, theirs)
    errors = _errors(dst)
    core = name.split("_")[0]
    assert f"{to['path']}!{name}: {n} LogEntry(s) belong to another data_service (e.g. MPAN {core})" in errors
    lost = f"data_service/{src['participant_id']}: {n} of its rows of DCC-enrolled MPANs missing from its DCC responses (e.g. MPAN {core}"
    assert lost in errors
    assert f"data_service/{to['participant_id']}: {n} LogEntry(s) that are not its consumption rows" in errors


def test_validate_rejects_a_changed_dcc_value_a_dtd_and_a_bad_member_name(small_run, tmp_path):
    _, run_dir, _ = small_run
    dst = _copy(run_dir, tmp_path, "dcc-value")
    rec = _files(dst, participant_role="data_service", format="dcc_xml_zip")[0]
    members = _members(dst, rec)
    first, second = list(members)[:2]
    text = members[first].decode()
    i = text.index("<ra:PrimaryValue>") + len("<ra:PrimaryValue>") if "<ra:PrimaryValue>" in text else text.index("<ra:ActiveEnergyExportedValue>") + 30
    j = text.index("<", i)
    members[first] = (text[:i] + str(int(text[i:j]) + 7) + text[j:]).encode()
    members[second] = members[second].replace(b"<ra:GBCSResponse", b'<!DOCTYPE x [<!ENTITY a "aaaa">]>\n<ra:GBCSResponse', 1)
    members["../../evil.xml"] = members[first]
    _resign_bundle(dst, rec, members)
    errors = _errors(dst)
    assert "1 LogEntry(s) that are not its consumption rows" in errors and f"{rec['path']}!{first}" in errors
    assert f"{rec['path']}!{second}: carries a DTD" in errors
    assert f"{rec['path']}: member name '../../evil.xml' is not allowed" in errors


def test_each_participant_has_a_manifest_of_its_own_files_only(small_run, tmp_path):
    _, run_dir, _ = small_run
    m = json.loads((run_dir / "manifest.json").read_text())
    owners = {(f["participant_role"], f["participant_id"]) for f in m["files"]}
    for role, pid in owners:
        own = json.loads((run_dir / role / pid / "manifest.json").read_text())
        assert own["participant"] == {"role": role, "id": pid} and own["run_id"] == m["run_id"] == "qs"
        assert {f["participant_id"] for f in own["files"]} == {pid}
        expected = {f["path"] for f in m["files"] if (f["participant_role"], f["participant_id"]) == (role, pid) and f["dataset"] != "manifest"}
        assert {f["path"] for f in own["files"]} == expected
        for f in own["files"]:  # a participant verifies its download with it alone
            assert hashlib.sha256((run_dir / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    dst = _copy(run_dir, tmp_path, "pm")
    sup = next(f for f in _files(dst, participant_role="supplier", dataset="manifest"))
    own = json.loads((dst / sup["path"]).read_text())
    stranger = next(f for f in m["files"] if f["participant_role"] == "supplier" and f["participant_id"] != own["participant"]["id"])
    own["files"].append(stranger)
    _resign(dst, sup["path"], json.dumps(own).encode())
    errors = _errors(dst)
    assert f"{sup['path']}: lists {len(own['files'])} files, the run lists {len(own['files']) - 1} for this participant; not the participant's: ['{stranger['path']}']" in errors


def test_validate_checks_a_run_unit_by_unit_and_finds_the_same_damage(tmp_path, monkeypatch):
    from mhhs_pipeline import stages, validate
    from mhhs_pipeline.io.store import RunStore

    loaded = stages.load_scenario(str(QUICKSTART), {"population.mpans": 120, "partitioning.mpans_per_unit": 60, "partitioning.days_per_unit": 7})
    results = stages.run_jobs_serially(stages.unit_jobs(loaded, str(tmp_path), "parts"))
    store = RunStore(str(tmp_path), "parts")
    store.write_manifest(stages.manifest_for(loaded, "parts", results, stages.write_participant_readmes(store, results)))
    dst = tmp_path / "parts"
    read: list[int] = []
    real = validate._read_files
    monkeypatch.setattr(validate, "_read_files", lambda report, store, listed, paths, manifest: (read.append(len(paths)), real(report, store, listed, paths, manifest))[1])
    assert validate.validate_run(str(dst)).ok
    m = json.loads((dst / "manifest.json").read_text())
    assert len(results) == 4 and len(read) == 1 + 2 + 4  # the run's own files, each block's registrations, each unit
    assert max(read) < len(m["files"]) / 3  # no pass holds the whole run
    # A central file of one unit loses its last row (manifest re-signed): that block is incomplete.
    central = next(f for f in m["files"] if f["participant_role"] == "central" and f["dataset"] == "consumption" and f["format"] == "parquet")
    t = pq.read_table(dst / central["path"])
    _resign(dst, central["path"], encode_parquet(t.slice(0, t.num_rows - 1)), rows=t.num_rows - 1)
    errors = _errors(dst)
    block = central["path"].rsplit("/", 1)[1].split("-")[0]
    assert f"block {block}: central consumption: 1 MPAN-day(s) without exactly 48 UTC periods" in errors
    assert "consumption: supplier slices hold" in errors  # the run-wide count no longer adds up
