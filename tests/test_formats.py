"""Wide CSV variants, compression, and a serial run in every format that validate accepts."""

from __future__ import annotations

import datetime as dt
import gzip

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import QUICKSTART, scenario
from hypothesis import given
from hypothesis import strategies as st

from mhhs_pipeline import stages
from mhhs_pipeline.core.load import generate_consumption
from mhhs_pipeline.core.participants import consumption_slices
from mhhs_pipeline.core.registrations import synthesise_registrations
from mhhs_pipeline.core.schema import CONSUMPTION_SCHEMA, coded_strings, fixed_width, plain_strings
from mhhs_pipeline.formats.compression import compress, decompress
from mhhs_pipeline.formats.tabular import (
    RenderedCsv,
    csv_ready,
    decode_csv,
    encode_csv,
    encode_parquet,
)
from mhhs_pipeline.formats.wide import encode_wide_csv, render_wide
from mhhs_pipeline.io.store import RunStore
from mhhs_pipeline.validate import validate_run


@pytest.fixture(scope="module")
def spring_and_autumn():
    tables = []
    for d0, d1 in ((dt.date(2026, 3, 27), dt.date(2026, 3, 31)), (dt.date(2026, 10, 23), dt.date(2026, 10, 27))):
        sc = scenario(**{"window.start": d0.isoformat(), "window.end": d1.isoformat(), "population.advanced_share": 0.2, "population.pv_share_of_domestic": 0.3})
        reg = synthesise_registrations(sc, 0, 30)
        tables.append(generate_consumption(sc, reg, d0, d1).table)
    return pa.concat_tables(tables)


def _read_wide(data: bytes) -> pa.Table:
    return pacsv.read_csv(pa.BufferReader(data), convert_options=pacsv.ConvertOptions(strings_can_be_null=True, null_values=[""], column_types={"mpan_core": pa.string(), "settlement_date": pa.string()}))


def test_wide_utc_days_have_48_periods_equal_to_long_rows(spring_and_autumn):
    t = spring_and_autumn
    wide = _read_wide(encode_wide_csv(t, local=False))
    assert wide.column_names[:4] == ["mpan_core", "measurement_quantity", "settlement_date", "periods"]
    assert len([c for c in wide.column_names if c.endswith("_kwh")]) == 48
    assert set(wide.column("periods").to_pylist()) == {48}
    long = t.to_pandas()
    long["day"] = (long.period_end_utc - dt.timedelta(minutes=30)).dt.strftime("%Y-%m-%d")
    long["p"] = ((long.period_end_utc - dt.timedelta(minutes=30)).dt.hour * 2 + (long.period_end_utc - dt.timedelta(minutes=30)).dt.minute // 30) + 1
    w = wide.to_pandas().set_index(["mpan_core", "measurement_quantity", "settlement_date"])
    for _, r in long.sample(300, random_state=1).iterrows():
        assert w.loc[(r.mpan_core, r.measurement_quantity, r.day), f"p{r.p:02d}_kwh"] == pytest.approx(r.consumption_kwh, abs=1e-9)
        assert w.loc[(r.mpan_core, r.measurement_quantity, r.day), f"p{r.p:02d}_quality"] == r.quality
    assert sum(int(wide.column(c).null_count == 0) for c in wide.column_names if c.endswith("_kwh")) == 48


def test_wide_local_days_have_46_and_50_periods(spring_and_autumn):
    wide = _read_wide(encode_wide_csv(spring_and_autumn, local=True)).to_pandas()
    assert len([c for c in wide.columns if c.endswith("_kwh")]) == 50
    by_day = wide.groupby("settlement_date").periods.max()
    assert by_day["2026-03-29"] == 46 and by_day["2026-10-25"] == 50 and by_day["2026-03-30"] == 48
    short = wide[wide.settlement_date == "2026-03-29"]
    assert short.p46_kwh.notna().all() and short.p47_kwh.isna().all() and short.p50_kwh.isna().all()
    long_day = wide[wide.settlement_date == "2026-10-25"]
    assert long_day.p50_kwh.notna().all()
    n_values = int(sum(wide[c].notna().sum() for c in wide.columns if c.endswith("_kwh")))
    assert n_values == spring_and_autumn.num_rows


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_compression_round_trips_and_is_deterministic(spring_and_autumn, codec):
    data = encode_csv(spring_and_autumn)
    packed = compress(data, codec)
    assert len(packed) < len(data) / 3
    assert compress(data, codec) == packed
    path = "x.csv" + (".gz" if codec == "gzip" else ".zst")
    assert decompress(packed, path) == data
    if codec == "gzip":
        assert gzip.decompress(packed) == data
    back = decode_csv(decompress(packed, path), CONSUMPTION_SCHEMA)
    assert back.equals(plain_strings(spring_and_autumn))


def test_serial_run_in_every_format_validates_and_damage_in_if021_is_caught(tmp_path):
    # Loose DCC responses (one file each) here; the end-to-end tests cover the default bundles.
    overrides = {"population.mpans": 60, "outputs.csv_compression": "zstd", "partitioning.days_per_unit": 5, "population.advanced_share": 0.1, "outputs.dcc_bundle": False}
    loaded = stages.load_scenario(str(QUICKSTART), overrides)
    jobs = stages.unit_jobs(loaded, str(tmp_path), "serial")
    results = stages.run_jobs_serially(jobs)
    store = RunStore(str(tmp_path), "serial")
    readmes = stages.write_participant_readmes(store, results)
    manifest = stages.manifest_for(loaded, "serial", results, readmes)
    store.write_manifest(manifest)
    formats = {f["format"] for f in manifest["files"]}
    assert formats == {"parquet", "csv", "csv_wide", "csv_wide_local", "if021_json", "dcc_xml", "text", "json"}  # json: each participant's manifest
    assert all(f["path"].endswith(".zst") for f in manifest["files"] if f["format"].startswith("csv"))
    report = validate_run(f"{tmp_path}/serial")
    assert report.ok, report.render()
    # Wide CSVs cut from the unit's one rendering equal a pivot of each participant's own rows.
    import pyarrow.parquet as pq

    from mhhs_pipeline.formats.compression import compress

    for f in manifest["files"]:
        if f["format"] == "csv_wide":
            own = pq.read_table(tmp_path / "serial" / f["path"].replace(".wide.csv.zst", ".parquet"))
            assert (tmp_path / "serial" / f["path"]).read_bytes() == compress(encode_wide_csv(own, local=False), "zstd")
    # An IF-021 value changed (and the manifest checksum updated to match) is still caught.
    import hashlib
    import json

    rec = next(f for f in manifest["files"] if f["format"] == "if021_json" and f["participant_role"] == "central")
    path = tmp_path / "serial" / rec["path"]
    text = path.read_text()
    i = text.index('"v":"') + 5
    j = text.index('"', i)
    text = text[:i] + f"{float(text[i:j]) + 1:.3f}" + text[j:]
    path.write_text(text)
    rec["bytes"], rec["sha256"] = len(text.encode()), hashlib.sha256(text.encode()).hexdigest()
    (tmp_path / "serial" / "manifest.json").write_text(json.dumps(manifest))
    report = validate_run(f"{tmp_path}/serial")
    assert not report.ok and any("IF-021 content differs" in e for e in report.errors)
    readme = (tmp_path / "serial" / "supplier").iterdir().__next__() / "README.txt"
    assert "period_end_utc" in readme.read_text() and "sha256" in readme.read_text()
    assert np.all([len(line.split()) == 5 for line in readme.read_text().split("Files (")[1].splitlines()[1:]])


def test_parquet_of_dictionary_coded_rows_reads_back_with_the_canonical_types(spring_and_autumn):
    # The generator holds strings as dictionaries; the file must still carry plain strings.
    assert pa.types.is_dictionary(spring_and_autumn.schema.field("mpan_core").type)
    back = pq.read_table(pa.BufferReader(encode_parquet(spring_and_autumn)))
    assert back.schema == CONSUMPTION_SCHEMA
    assert back.equals(plain_strings(spring_and_autumn))
    # Statistics for pruning by time, on the slice's own range.
    part = spring_and_autumn.slice(5000, 3000)
    meta = pq.ParquetFile(pa.BufferReader(encode_parquet(part))).metadata.row_group(0)
    col = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    ends = part.column("period_end_utc")
    stats = col["period_end_utc"].statistics
    assert stats.has_min_max and (stats.min, stats.max) == (pc.min(ends).as_py(), pc.max(ends).as_py())
    assert not col["mpan_core"].is_stats_set  # a unit's MPANs span every distributor: no pruning value


def test_csv_rendering_cuts_subsets_prints_nulls_empty_and_refuses_structural_characters(spring_and_autumn):
    rendered = RenderedCsv(spring_and_autumn)
    text = rendered.whole().decode()
    lines = text.splitlines()
    assert lines[0] == ",".join(CONSUMPTION_SCHEMA.names) and len(lines) == spring_and_autumn.num_rows + 1
    assert decode_csv(text.encode(), CONSUMPTION_SCHEMA).equals(plain_strings(spring_and_autumn))
    rows = np.sort(np.random.default_rng(3).choice(spring_and_autumn.num_rows, 777, replace=False))
    assert b"".join(rendered.subset_chunks(rows)).decode().splitlines() == [lines[0], *(lines[i + 1] for i in rows)]
    assert b"".join(rendered.chunks()) == rendered.whole()
    # estimation_reason is null on actual-quality rows: an empty field, not "null" or "0".
    plain = plain_strings(spring_and_autumn)
    first_a = plain.column("quality").to_pylist().index("A")
    assert lines[first_a + 1].split(",")[7] == ""
    for bad in ("a,b", 'say "hi"', "two\nlines"):
        for arr in (pa.array([bad, "ok"]), pa.array([bad, "ok"]).dictionary_encode()):
            with pytest.raises(ValueError, match="comma, quote or line break"):
                RenderedCsv(pa.table({"mpan_core": arr, "n": [1, 2]}))


@pytest.mark.parametrize("local", [False, True])
def test_participant_wide_csv_cut_from_the_unit_equals_its_own_pivot(local):
    # Summer (BST) with frequent changes of supplier: in the local view the day of a change
    # is shared by two suppliers (its first hour is the previous UTC day's).
    sc = scenario(**{"window.start": "2026-06-01", "window.end": "2026-06-20", "population.change_of_supplier_rate_per_year": 3.0})
    reg = synthesise_registrations(sc, 0, 60)
    gen = generate_consumption(sc, reg, sc.window.start, sc.window.end)
    rendering = render_wide(gen.table, local=local)
    assert rendering.text.whole() == encode_wide_csv(gen.table, local=local)
    shared_lines = 0
    for sl in consumption_slices(reg, gen.registration_row):
        if sl.role == "central":
            continue
        cut = b"".join(rendering.subset_chunks(gen.table, sl.rows))
        assert cut == encode_wide_csv(gen.table.take(sl.rows), local=local), (sl.role, sl.participant_id)
        own = np.bincount(rendering.line_of_row[sl.rows], minlength=len(rendering.periods))
        shared_lines += int(((own > 0) & (own < rendering.periods)).sum())
    # A UTC day's line always belongs to one registration; local days can be shared.
    assert (shared_lines > 0) == local


def test_csv_rendering_matches_pyarrows_csv_writer_for_every_column_kind():
    # Oracle: pyarrow's own CSV writer on the formatted columns (what we used before the
    # coded rendering); every kind of column our datasets hold, nulls included.
    rng = np.random.default_rng(11)
    n = 5000
    codes = rng.integers(0, 3, n).astype(np.int32)
    table = pa.table(
        {
            "mpan_core": pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes == 2), pa.array(["1000000000011", "2000000000022", "x"])),
            "supplier_id": pa.array(rng.choice(["ABCD", "WXYZ", None], n)),
            "period_end_utc": pa.array((np.datetime64("2026-10-25T00:30") + rng.integers(0, 200, n) * np.timedelta64(30, "m")).astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
            "read_timestamp_utc": pa.array((np.datetime64("2026-10-25T00:30") + rng.integers(-20, 20, n) * np.timedelta64(1, "s")).astype("datetime64[us]"), pa.timestamp("us", tz="UTC"), mask=rng.random(n) < 0.1),
            "settlement_date": pa.array(np.datetime64("2026-10-20") + rng.integers(0, 9, n), pa.date32()),
            "settlement_period": pa.array(rng.integers(1, 51, n).astype(np.int16)),
            "estimation_reason": pa.array(rng.integers(0, 5, n).astype(np.int16), mask=rng.random(n) < 0.8),
            "fault_event_id": pa.array(rng.integers(0, 2**62, n)),
            "consumption_kwh": pa.array(np.round(rng.gamma(1.0, 0.4, n), 3)),
            "true_kwh": pa.array(np.round(rng.normal(0, 1e5, n), 3)),  # beyond the coded range
            "value": pa.array(np.round(rng.gamma(1.0, 400.0, n), 3)),  # raw reads: pyarrow's float text
            "domestic_premise": pa.array(rng.random(n) < 0.5),
            "quality": pa.array(rng.choice(["A", "E"], n)).dictionary_encode(),
        }
    )
    sink = pa.BufferOutputStream()
    pacsv.write_csv(csv_ready(table), sink, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))
    rendered = RenderedCsv(table)
    assert rendered.body.to_pybytes() == sink.getvalue().to_pybytes()
    assert rendered.header == (",".join(table.column_names) + "\n").encode()
    # Nulls in a kWh column are empty fields.
    text = RenderedCsv(pa.table({"consumption_kwh": pa.array([1.5, None, -0.25])})).whole().decode()
    assert text == "consumption_kwh\n1.500\n\n-0.250\n"


@given(codes=st.lists(st.integers(-3, 6), max_size=40), valid=st.lists(st.booleans(), min_size=40, max_size=40))
def test_schema_builders_match_pyarrows_own_constructors(codes, valid):
    # coded_strings: values[codes], refusing codes outside the dictionary like Arrow does
    values = ["a", "b", "c", "d"]
    arr = np.array(codes, dtype=np.int64)
    if len(arr) and (arr.min() < 0 or arr.max() >= len(values)):
        with pytest.raises(ValueError):
            coded_strings(values, arr)
    else:
        got = coded_strings(values, arr)
        assert got.to_pylist() == [values[c] for c in codes]
    # fixed_width: the same array as pa.array with a mask, nulls where not valid
    n = len(codes)
    keep = np.array(valid[:n], dtype=bool)
    us = (np.arange(n, dtype=np.int64) * 1_800_000_000)
    expected = pa.array(us.astype("datetime64[us]"), pa.timestamp("us", tz="UTC"), mask=~keep)
    got = fixed_width(us, pa.timestamp("us", tz="UTC"), valid=keep)
    got.validate(full=True)
    assert got.equals(expected) and got.null_count == n - int(keep.sum())
    with pytest.raises(TypeError):
        fixed_width(us.astype(np.int32), pa.timestamp("us", tz="UTC"))
