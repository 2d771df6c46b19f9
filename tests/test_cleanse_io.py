"""Reading extracts and the cleanse command end to end: formats, header variations,
streaming in chunks, every malformed-file case, manifest and path safety."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, scenario
from test_cleanse_rules import BASE, A, B, mpan

from mhhs_pipeline import cli
from mhhs_pipeline.cleanse import QUARANTINE_SCHEMA
from mhhs_pipeline.core.registrations import synthesise_registrations
from mhhs_pipeline.core.schema import REGISTRATION_SCHEMA, same_columns
from mhhs_pipeline.formats.tabular import csv_ready
from mhhs_pipeline.io import extract as ex

HEADER = list(BASE)


def csv_text(rows: list[dict], header: list[str] | None = None, delimiter: str = ",") -> str:
    out = io.StringIO()
    names = header or HEADER
    out.write(delimiter.join(names) + "\n")
    for r in rows:
        out.write(delimiter.join(str(r.get(k, "")) for k in HEADER) + "\n")
    return out.getvalue()


def run_cleanse(tmp_path: Path, source: Path, run_id: str = "r1") -> tuple[int, Path]:
    code = cli.main(["cleanse", str(source), "--out", str(tmp_path / "out"), "--run-id", run_id])
    return code, tmp_path / "out" / run_id


@pytest.fixture(scope="module")
def synthetic() -> pa.Table:
    return synthesise_registrations(scenario(population__mpans=300), 0, 300)


def test_synthetic_population_round_trips_clean(tmp_path, synthetic):
    """A consistent population cleanses to itself: no false rejections, nothing invented."""
    path = tmp_path / "synthetic.csv"
    pacsv.write_csv(csv_ready(synthetic.drop_columns(["provenance"])), str(path))
    out = ex.cleanse_to_dir(str(path), str(tmp_path))
    assert out.stats.quarantined == 0 and out.stats.merged == 0
    got = pq.read_table(out.registrations_path)
    key = [("mpan_core", "ascending"), ("effective_from", "ascending")]
    expected = synthetic.sort_by(key).drop_columns(["provenance"])
    assert got.sort_by(key).drop_columns(["provenance"]).equals(expected)
    assert set(got.column("provenance").to_pylist()) == {"actual"}


def test_parquet_extract_with_typed_columns(tmp_path, synthetic):
    path = tmp_path / "typed.parquet"
    pq.write_table(synthetic.drop_columns(["provenance"]), path)
    out = ex.cleanse_to_dir(str(path), str(tmp_path))
    assert (out.stats.clean, out.stats.quarantined, out.source_format) == (synthetic.num_rows, 0, "parquet")


def test_header_variations_and_delimiters(tmp_path):
    header = [" MPAN ", "Effective From", "EFFECTIVE-TO", "Supplier Id", "data service id", "Metering_Service_ID",
              "Distributor", "GSP", "Segment", "connection type", "energisation status", "energy direction",
              "Domestic Premise Indicator", "Annual Consumption", "dcc service flag", "Archetype", "linked import mpan"]  # fmt: skip
    for delimiter, newline in ((",", "\n"), (";", "\r\n"), ("\t", "\n"), ("|", "\r\n")):
        path = tmp_path / "variants.csv"
        text = csv_text([BASE, {**BASE, "mpan_core": B}], header, delimiter).replace("\n", newline)
        path.write_bytes(("\ufeff" + text).encode("utf-8"))
        out = ex.cleanse_to_dir(str(path), str(tmp_path))
        assert (out.stats.clean, out.stats.quarantined) == (2, 0), delimiter


def test_unknown_columns_go_to_other_fields(tmp_path):
    path = tmp_path / "extra.csv"
    lines = csv_text([{**BASE, "market_segment": "X"}, {**BASE, "mpan_core": B, "energy_direction": "Q"}]).splitlines()
    lines[0] += ",Notes"
    lines[1] += ',"call me\non Monday"'  # a quoted line break: still one record
    lines[2] += ",second"
    path.write_text("\n".join(lines) + "\n")
    out = ex.cleanse_to_dir(str(path), str(tmp_path))
    q = pq.read_table(out.quarantine_path).to_pylist()
    assert [r["record"] for r in q] == [1, 2]
    assert [json.loads(r["other_fields"]) for r in q] == [{"notes": "call me\non Monday"}, {"notes": "second"}]
    assert "Notes" in out.report_markdown


def test_streaming_in_small_chunks_and_buckets_gives_the_same_result(tmp_path, synthetic, monkeypatch):
    rows = synthetic.drop_columns(["provenance"])
    text = csv_ready(rows)
    path = tmp_path / "s.csv"
    pacsv.write_csv(text, str(path))
    with path.open("a") as f:  # dirty tail: duplicates and a fault, so every path runs
        f.write(",".join(str(v) if v is not None else "" for v in text.slice(0, 1).to_pylist()[0].values()) + "\n")
        f.write(csv_text([{**BASE, "market_segment": "X"}]).splitlines()[1] + "\n")
    one = ex.cleanse_to_dir(str(path), str(tmp_path / "one"))
    monkeypatch.setattr(ex, "CSV_BLOCK_BYTES", 4096)
    monkeypatch.setattr(ex, "BUCKET_ROWS", 37)
    many = ex.cleanse_to_dir(str(path), str(tmp_path / "many"))
    for a, b in ((one.registrations_path, many.registrations_path), (one.quarantine_path, many.quarantine_path)):
        ta, tb = pq.read_table(a), pq.read_table(b)
        key = [(c, "ascending") for c in ta.column_names[:3]]
        assert ta.sort_by(key).equals(tb.sort_by(key))
    assert (many.stats.rows_in, many.stats.merged, many.stats.quarantined) == (rows.num_rows + 2, 1, 1)
    assert pq.read_table(many.quarantine_path).column("record").to_pylist() == [rows.num_rows + 2]


def test_cleanse_cli_end_to_end(tmp_path, capsys):
    rows = [BASE, BASE, {**BASE, "mpan_core": B, "supplier_id": "blue", "archetype": ""},
            {**BASE, "mpan_core": mpan("120000000009"), "supplier_id": "../../x"},
            {**BASE, "mpan_core": mpan("120000000008"), "data_service_id": "=cmd|' /C calc'!A0"}]  # fmt: skip
    src = tmp_path / "extract.csv"
    src.write_text(csv_text(rows))
    code, run = run_cleanse(tmp_path, src)
    printed = capsys.readouterr().out
    assert code == 0
    assert "rows in 5 = clean 2 + quarantined 2 + merged duplicates 1" in printed
    manifest = json.loads((run / "manifest.json").read_text())
    assert {f["dataset"] for f in manifest["files"]} == {"registrations", "quarantine", "cleansing_report", "manifest"}
    on_disk = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    assert on_disk == sorted([f["path"] for f in manifest["files"]] + ["manifest.json"])
    for f in manifest["files"]:
        data = (run / f["path"]).read_bytes()
        assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["bytes"] == len(data)
        assert f["participant_role"] == "central" and f["participant_id"] == "central"
        assert f["path"].startswith("central/central/")
    files = {f["dataset"]: f for f in manifest["files"]}
    reg = pq.read_table(run / files["registrations"]["path"])
    assert same_columns(reg.schema, REGISTRATION_SCHEMA) == [] and reg.num_rows == files["registrations"]["rows"] == 2
    assert sorted(reg.column("provenance").to_pylist()) == ["actual", "manufactured"]
    q = pq.read_table(run / files["quarantine"]["path"])
    assert q.schema.equals(QUARANTINE_SCHEMA) and q.num_rows == 2
    assert q.column("supplier_id").to_pylist()[0] == "../../x"
    assert files["cleansing_report"]["format"] == "markdown"
    assert manifest["cleansing"]["reconciliation"] in (run / files["cleansing_report"]["path"]).read_text()
    assert manifest["source"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    # The hostile ids never became paths anywhere near the output.
    assert not any(p.name == "x" for p in tmp_path.rglob("*"))
    assert not any("calc" in str(p) for p in tmp_path.rglob("*"))


def test_rerun_replaces_the_previous_run(tmp_path, capsys):
    src = tmp_path / "extract.csv"
    src.write_text(csv_text([BASE]))
    assert run_cleanse(tmp_path, src)[0] == 0
    src.write_text(csv_text([BASE, {**BASE, "mpan_core": B}]))
    code, run = run_cleanse(tmp_path, src)
    manifest = json.loads((run / "manifest.json").read_text())
    assert code == 0 and manifest["cleansing"]["rows_in"] == 2


def _nested_parquet(path: Path) -> None:
    pq.write_table(pa.table({**{k: [v] for k, v in BASE.items()}, "archetype": [["a", "b"]]}), path)


def _corrupt_parquet(path: Path) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.table({k: [v] * 5000 for k, v in BASE.items()}), sink, compression="zstd")
    data = bytearray(sink.getvalue())
    for i in range(100, 300):  # damage the first data page, keep the footer
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def _truncated_parquet(path: Path) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.table({"mpan_core": [A]}), sink)
    path.write_bytes(sink.getvalue()[:-20])


def _ragged(path: Path, line: int = 3, extra: bool = False) -> None:
    text = csv_text([BASE, BASE, BASE]).splitlines()
    text[line - 1] = text[line - 1] + ",x" if extra else text[line - 1].rsplit(",", 2)[0]
    path.write_text("\n".join(text) + "\n")


def _truncated_csv(path: Path) -> None:
    path.write_text(csv_text([BASE, {**BASE, "mpan_core": B}])[:-40])


def _latin1(path: Path) -> None:
    text = csv_text([BASE, {**BASE, "archetype": "café"}])
    path.write_bytes(text.encode("latin-1"))


MALFORMED = {
    "empty": (lambda p: p.write_bytes(b""), "is empty"),
    "whitespace": (lambda p: p.write_text("\n \n"), "is empty"),
    "binary": (lambda p: p.write_bytes(bytes(range(256)) * 40), "binary file"),
    "gzip": (lambda p: p.write_bytes(gzip.compress(csv_text([BASE]).encode())), "gzip"),
    "xlsx": (lambda p: p.write_bytes(b"PK\x03\x04" + b"\x00" * 100), "Excel"),
    "utf16": (lambda p: p.write_bytes(csv_text([BASE]).encode("utf-16")), "UTF-16"),
    "latin1": (_latin1, "line 3, column 16 ('archetype'): byte 0xe9 is not UTF-8"),
    "not_csv": (lambda p: p.write_text("hello world\nthis is not a table\n"), "no comma-separated header"),
    "json": (lambda p: p.write_text('{"mpan_core": 1}\n'), "this is not a CSV registration extract"),
    "one_column": (lambda p: p.write_text("mpan;\n" + A + ";\n"), "required column(s) missing: effective_from"),
    "missing_column": (lambda p: p.write_text(csv_text([BASE], [h for h in HEADER if h != "supplier_id"])), "supplier_id"),
    "two_mpan_columns": (lambda p: p.write_text(csv_text([BASE], ["MPAN", *HEADER[1:-1], "mpan core"])), "both mean mpan_core"),
    "ragged": (_ragged, "line 3: 15 field(s) where the header has 17; give every row all the header's fields"),
    "extra_field": (lambda p: _ragged(p, 2, extra=True), "line 2: 18 field(s) where the header has 17; quote values"),
    "truncated_csv": (_truncated_csv, "line 3: 10 field(s) where the header has 17; the file looks truncated"),
    "huge_line": (lambda p: p.write_text(csv_text([BASE]) + "x" * 3_000_000 + "\n"), "line 3: a field longer than 131,072 characters"),
    "unclosed_quote": (lambda p: p.write_text(csv_text([BASE]) + '"' + csv_text([BASE] * 3000)), "line 3: a field longer than"),
    "truncated_parquet": (_truncated_parquet, "truncated Parquet"),
    "corrupt_parquet": (_corrupt_parquet, "is damaged after row 0"),
    "nested_parquet": (_nested_parquet, "column 16 ('archetype') has type list<element: string>"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_fail_cleanly(tmp_path, capsys, case):
    make, expected = MALFORMED[case]
    src = tmp_path / f"bad-{case}.dat"
    make(src)
    code, run = run_cleanse(tmp_path, src)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"bad-{case}.dat" in err and expected in err
    assert not run.exists()  # nothing written, no manifest


def test_malformed_file_leaves_an_earlier_run_alone(tmp_path, capsys):
    src = tmp_path / "extract.csv"
    src.write_text(csv_text([BASE]))
    assert run_cleanse(tmp_path, src)[0] == 0
    _ragged(src)
    code, run = run_cleanse(tmp_path, src)
    assert code == 2 and json.loads((run / "manifest.json").read_text())["cleansing"]["rows_in"] == 1


def test_missing_file_and_bad_run_id(tmp_path, capsys):
    assert cli.main(["cleanse", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "out"), "--run-id", "r"]) == 2
    assert "nope.csv" in capsys.readouterr().err
    src = tmp_path / "e.csv"
    src.write_text(csv_text([BASE]))
    assert cli.main(["cleanse", str(src), "--out", str(tmp_path / "out"), "--run-id", "../escape"]) == 2
    assert not (tmp_path / "escape").exists()


def test_console_script_reports_one_line_without_traceback(tmp_path):
    src = tmp_path / "broken.csv"
    _ragged(src)
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "cleanse", str(src), "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr and "broken.csv: line 3" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_in_memory_api_for_the_run_command(tmp_path):
    src = tmp_path / "extract.csv"
    src.write_text(csv_text([BASE, {**BASE, "mpan_core": B, "supplier_id": "bad!"}]))
    reg, quarantine, out = ex.cleanse_registrations(str(src), seed=7)
    assert reg.schema.equals(REGISTRATION_SCHEMA) and reg.num_rows == 1
    assert quarantine.column("route_data_service_id").to_pylist() == ["SDS1"]
    assert out.stats.to_dict()["reasons"] == {"INVALID_SUPPLIER_ID": 1}


def test_header_only_extract_is_processed(tmp_path, capsys):
    src = tmp_path / "header.csv"
    src.write_text(",".join(HEADER) + "\n")
    code, run = run_cleanse(tmp_path, src)
    assert code == 0 and "rows in 0 = clean 0 + quarantined 0 + merged duplicates 0" in capsys.readouterr().out
    manifest = json.loads((run / "manifest.json").read_text())
    assert [f["rows"] for f in manifest["files"] if f["dataset"] != "manifest"] == [0, 0, 0] and manifest["window"] is None
    from mhhs_pipeline.validate import validate_run

    report = validate_run(str(run))  # a complete cleansing run of nothing: valid, no crash on window null
    assert report.ok, report.render()


def test_fsspec_urls_in_and_out():
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/cleanse-test/in/extract.csv", csv_text([BASE, {**BASE, "mpan_core": "oops"}]).encode())
    url, manifest, _ = ex.write_cleanse_run("memory://cleanse-test/in/extract.csv", "memory://cleanse-test/out", "m1")
    assert url == "memory://cleanse-test/out/m1/manifest.json"
    for f in manifest["files"]:
        data = fs.cat(f"/cleanse-test/out/m1/{f['path']}")
        assert hashlib.sha256(data).hexdigest() == f["sha256"]
    assert manifest["cleansing"]["quarantined"] == 1
    fs.rm("/cleanse-test", recursive=True)


def test_validate_accepts_a_cleanse_run_and_rejects_a_damaged_quarantine(tmp_path, capsys):
    from mhhs_pipeline.formats.tabular import encode_parquet
    from mhhs_pipeline.validate import validate_run

    rows = [BASE, {**BASE, "mpan_core": B}, {**BASE, "mpan_core": mpan("120000000009"), "supplier_id": "../../x"}]
    src = tmp_path / "extract.csv"
    src.write_text(csv_text(rows))
    code, run = run_cleanse(tmp_path, src)
    assert code == 0
    report = validate_run(str(run))
    assert report.ok, report.render()
    manifest = json.loads((run / "manifest.json").read_text())
    rec = next(f for f in manifest["files"] if f["dataset"] == "quarantine")
    q = pq.read_table(run / rec["path"])
    damaged = q.set_column(q.column_names.index("reason_code"), "reason_code", pa.array([""] * q.num_rows))
    data = encode_parquet(damaged)
    (run / rec["path"]).write_bytes(data)
    rec["bytes"], rec["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (run / "manifest.json").write_text(json.dumps(manifest))
    report = validate_run(str(run))
    assert not report.ok and any("without a reason code" in e for e in report.errors)
