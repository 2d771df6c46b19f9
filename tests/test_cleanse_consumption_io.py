"""Reading consumption extracts: CSV and Parquet, header variations, our own canonical files
read back, streaming in small chunks and buckets, fsspec URLs, and every malformed-file case
as a one-line ExtractError naming the file and the fix."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from test_cleanse_consumption import LV, REG, A
from test_cleanse_consumption_merge import model

from mhhs_pipeline.cleanse.consumption import CONSUMPTION_QUARANTINE_SCHEMA
from mhhs_pipeline.core.schema import CONSUMPTION_SCHEMA
from mhhs_pipeline.io import consumption_extract as cx
from mhhs_pipeline.io import extract as ex

HEADER = ["mpan_core", "period_end_utc", "consumption_kwh", "quality"]
ROWS = [
    [A, "2026-03-10T12:30:00Z", "0.512", "A"],
    [A, "2026-03-10T13:00:00Z", "0.600", "A"],
    [A, "2026-03-10T13:00:00Z", "0.600", "A"],  # exact duplicate
    [A, "2026-03-10T13:30:00Z", "-1", "A"],  # negative
    [LV, "2026-03-10T13:30:00Z", "120.5", "a"],
]


def csv_text(rows=ROWS, header=HEADER, delimiter: str = ",") -> str:
    return "\n".join(delimiter.join(r) for r in [header, *rows]) + "\n"


def test_csv_extract_cleanses_and_reconciles(tmp_path):
    src = tmp_path / "actual.csv"
    src.write_text(csv_text())
    clean, quarantine, out = cx.cleanse_consumption(str(src), REG)
    assert (out.stats.rows_in, out.stats.clean, out.stats.quarantined, out.stats.merged) == (5, 3, 1, 1)
    assert clean.schema == CONSUMPTION_SCHEMA and quarantine.schema == CONSUMPTION_QUARANTINE_SCHEMA
    assert quarantine.column("record").to_pylist() == [4] and quarantine.column("reason_code").to_pylist() == ["NEGATIVE_VALUE"]
    assert quarantine.column("consumption_kwh").to_pylist() == ["-1"]
    assert clean.column("mpan_core").to_pylist() == [A, A, LV]
    assert out.source_format == "csv" and len(out.source_sha256) == 64
    assert "consumption rows in 5 = clean 3 + quarantined 1 + merged duplicates 1 — OK" in out.report_markdown


def test_header_variations_and_delimiters(tmp_path):
    header = [" MPAN ", "Period End", "KWH", "Q"]
    for delimiter in (",", ";", "\t", "|"):
        src = tmp_path / "variants.csv"
        src.write_bytes(("\ufeff" + csv_text(header=header, delimiter=delimiter).replace("\n", "\r\n")).encode())
        _, _, out = cx.cleanse_consumption(str(src), REG)
        assert (out.stats.clean, out.stats.quarantined) == (3, 1), delimiter


def test_local_view_columns_and_unused_columns(tmp_path):
    src = tmp_path / "local.csv"
    src.write_text("MPAN Core,Settlement Day,Period,Consumption,Meter Serial\n" f"{A},2026-03-29,46,0.2,M1\n{A},2026-03-29,47,0.2,M1\n")
    clean, quarantine, out = cx.cleanse_consumption(str(src), REG)
    assert clean.column("period_end_utc").to_pylist()[0].isoformat() == "2026-03-29T23:00:00+00:00"
    assert quarantine.column("reason_code").to_pylist() == ["WRONG_PERIOD_COUNT"]
    assert quarantine.column("other_fields").to_pylist() == ['{"meter_serial": "M1"}']
    assert out.stats.ignored_columns == ["Meter Serial"]


def _canonical_sample() -> pa.Table:
    t = model([(A, "AI", 0.4), (LV, "AI", 30.0), (LV, "RE", 2.0)])
    t = t.set_column(t.schema.get_field_index("provenance"), "provenance", pa.array(["actual"] * t.num_rows))
    return t.cast(CONSUMPTION_SCHEMA)


def test_our_own_canonical_parquet_reads_back_as_itself(tmp_path):
    """Typed Parquet (tz-aware timestamps, dates, int16, doubles) with both time views."""
    sample = _canonical_sample()
    src = tmp_path / "canonical.parquet"
    pq.write_table(sample.drop_columns(["provenance"]), src)
    clean, quarantine, out = cx.cleanse_consumption(str(src), REG)
    assert quarantine.num_rows == 0 and out.source_format == "parquet"
    assert clean.equals(sample)


def test_our_own_canonical_csv_reads_back_as_itself(tmp_path):
    sample = _canonical_sample()
    text = sample.drop_columns(["provenance"]).set_column(
        2, "period_end_utc", pc.strftime(sample.column("period_end_utc"), format="%Y-%m-%dT%H:%M:%S+00:00")
    )
    src = tmp_path / "canonical.csv"
    pa.csv.write_csv(text, str(src))
    clean, quarantine, _ = cx.cleanse_consumption(str(src), REG)
    assert quarantine.num_rows == 0 and clean.equals(sample)


def test_streaming_in_small_chunks_and_buckets_gives_the_same_result(tmp_path, monkeypatch):
    sample = _canonical_sample()
    rows = [[r["mpan_core"], r["period_end_utc"].strftime("%Y-%m-%d %H:%M"), f"{r['consumption_kwh']:.3f}", r["measurement_quantity"]]
            for r in sample.to_pylist()]  # fmt: skip
    rows += rows[:50] + [[A, "2026-03-27 10:00", "-1", "AI"], [A, "2026-03-27 10:05", "1", "AI"]]
    src = tmp_path / "big.csv"
    src.write_text(csv_text(rows, ["mpan", "period_end_utc", "kwh", "mq"]))
    whole = cx.cleanse_consumption(str(src), REG)
    monkeypatch.setattr(ex, "CSV_BLOCK_BYTES", 4096)
    monkeypatch.setattr(cx, "CONSUMPTION_BUCKET_ROWS", 300)
    parts = cx.cleanse_consumption(str(src), REG)
    assert parts[2].stats.to_dict() == whole[2].stats.to_dict()
    assert parts[0].equals(whole[0]) and parts[1].equals(whole[1])
    assert whole[2].stats.merged == 50 and whole[2].stats.quarantined == 3  # -1 conflicts with the real 10:00 value


def test_fsspec_urls_and_header_only_files():
    fs = fsspec.filesystem("memory")
    fs.pipe("/consumption/actual.csv", csv_text().encode())
    clean, _, out = cx.cleanse_consumption("memory:///consumption/actual.csv", REG)
    assert clean.num_rows == 3 and out.stats.reconciles
    fs.pipe("/consumption/empty.csv", b"mpan_core,period_end_utc,consumption_kwh\n")
    clean, quarantine, out = cx.cleanse_consumption("memory:///consumption/empty.csv", REG)
    assert (clean.num_rows, quarantine.num_rows, out.stats.rows_in) == (0, 0, 0)
    with pytest.raises(FileNotFoundError):
        cx.open_consumption_extract("memory:///consumption/nope.csv")


def _truncated_parquet(path: Path) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.table({"mpan_core": [A], "period_end_utc": ["x"], "consumption_kwh": ["1"]}), sink)
    path.write_bytes(sink.getvalue()[:-20])


def _corrupt_parquet(path: Path) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.table({"mpan_core": [A] * 5000, "period_end_utc": ["2026-03-10T12:30Z"] * 5000, "consumption_kwh": ["1"] * 5000}), sink, compression="zstd")
    data = bytearray(sink.getvalue())
    for i in range(100, 300):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def _nested_parquet(path: Path) -> None:
    pq.write_table(pa.table({"mpan_core": [A], "period_end_utc": ["2026-03-10T12:30Z"], "consumption_kwh": [[1.0, 2.0]]}), path)


def _ragged(path: Path, extra: bool = False) -> None:
    lines = csv_text().splitlines()
    lines[2] = lines[2] + ",x" if extra else lines[2].rsplit(",", 1)[0]
    path.write_text("\n".join(lines) + "\n")


MALFORMED = {
    "empty": (lambda p: p.write_bytes(b""), "is empty; export the consumption extract"),
    "whitespace": (lambda p: p.write_text("\n \n"), "is empty"),
    "binary": (lambda p: p.write_bytes(bytes(range(256)) * 40), "binary file"),
    "gzip": (lambda p: p.write_bytes(gzip.compress(csv_text().encode())), "gzip"),
    "xlsx": (lambda p: p.write_bytes(b"PK\x03\x04" + b"\x00" * 100), "Excel"),
    "utf16": (lambda p: p.write_bytes(csv_text().encode("utf-16")), "UTF-16"),
    "latin1": (lambda p: p.write_bytes(csv_text().replace("0.512", "0.512é").encode("latin-1")), "line 2, column 3 ('consumption_kwh'): byte 0xe9 is not UTF-8"),
    "not_csv": (lambda p: p.write_text("hello world\nthis is not a table\n"), "this is not a CSV consumption extract"),
    "no_kwh": (lambda p: p.write_text("mpan_core,period_end_utc\n" + A + ",2026-03-10T12:30Z\n"), "required column(s) missing: consumption_kwh (or consumption, kwh, value, value_kwh)"),
    "no_time": (lambda p: p.write_text("mpan_core,kwh\n" + A + ",1\n"), "period_end_utc (or end_utc, period_end"),
    "half_local": (lambda p: p.write_text("mpan,settlement_date,kwh\n" + A + ",2026-03-10,1\n"), "missing: settlement_period (or local_settlement_period, period"),
    "two_kwh": (lambda p: p.write_text("mpan,kwh,value,period_end_utc\n"), "headers 'kwh' and 'value' (column 3) both mean consumption_kwh"),
    "ragged": (_ragged, "line 3: 3 field(s) where the header has 4; give every row all the header's fields"),
    "extra_field": (lambda p: _ragged(p, extra=True), "line 3: 5 field(s) where the header has 4; quote values"),
    "truncated_csv": (lambda p: p.write_text(csv_text()[:-12]), "the file looks truncated"),
    "truncated_parquet": (_truncated_parquet, "truncated Parquet"),
    "corrupt_parquet": (_corrupt_parquet, "is damaged after row 0"),
    "nested_parquet": (_nested_parquet, "column 3 ('consumption_kwh') has type list<element: double>"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_fail_with_one_clear_line(tmp_path, case):
    make, expected = MALFORMED[case]
    src = tmp_path / f"bad-{case}.dat"
    make(src)
    with pytest.raises(ex.ExtractError) as err:
        cx.cleanse_consumption(str(src), REG)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"bad-{case}.dat: ") and expected in message, message
    assert not list(tmp_path.glob("**/consumption-spill"))
