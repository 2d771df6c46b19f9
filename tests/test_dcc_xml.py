"""DCC 4.8.1 / 4.8.3 profile responses: schema-valid, lossless in Wh, split at the schema's maxOccurs.

Documents are validated at test time against the DUIS/MMC schemas in shared/reference/duis
(the MMC namespace taken from the DUIS schema, which imports it).
"""

from __future__ import annotations

import datetime as dt
import pickle
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pyarrow as pa
import pytest
from conftest import reference_dir
from hypothesis import given, settings
from hypothesis import strategies as st

from mhhs_pipeline.core.calendar import settlement_grid
from mhhs_pipeline.core.mpan import cores_to_str, make_cores
from mhhs_pipeline.core.schema import CONSUMPTION_SCHEMA
from mhhs_pipeline.formats.dcc_xml import (
    MAX_EXPORT_LOG_ENTRIES,
    MAX_IMPORT_LOG_ENTRIES,
    DccResponse,
    dcc_file_name,
    encode_dcc_profile_responses,
    esme_device_id,
    iter_dcc_profile_responses,
)

RA = "http://www.dccinterface.co.uk/ResponseAndAlert"
NS = {"ra": RA}
REQUEST_UTC = dt.datetime(2026, 11, 2, 6, 0, 0, 123000, tzinfo=dt.UTC)

AI_MPANS = list(cores_to_str(make_cores(np.array([12, 19]), np.array([1, 5]))))
AE_MPAN = str(cores_to_str(make_cores(np.array([23]), np.array([77])))[0])


@pytest.fixture(scope="module")
def mmc_schema():
    import xmlschema

    duis = xmlschema.XMLSchema(str(reference_dir("duis") / "DUIS Schema V5.4.xsd"))
    return duis.maps.namespaces[RA][0]


def consumption(
    mpans_mq: list[tuple[str, str]], first_day: dt.date, last_day: dt.date, seed: int = 7
) -> pa.Table:
    """A canonical consumption table: each (MPAN, MQ) over every half hour of the UTC days."""
    grid = settlement_grid(first_day, last_day)
    n = len(grid.period_end_utc)
    rng = np.random.default_rng(seed)
    parts = []
    for mpan, mq in mpans_mq:
        kwh = np.round(rng.gamma(0.8, 0.4, n), 3)
        kwh[:5] = [0.0, 0.001, 0.5, 9.999, 12.345]  # edge widths: 1..5 digits of Wh
        parts.append(
            pa.table(
                {
                    "mpan_core": [mpan] * n,
                    "measurement_quantity": [mq] * n,
                    "period_end_utc": pa.array(grid.period_end_utc, pa.timestamp("us", tz="UTC")),
                    "settlement_date": pa.array(grid.settlement_date_local, pa.date32()),
                    "settlement_period": pa.array(grid.settlement_period_local, pa.int16()),
                    "consumption_kwh": kwh,
                    "quality": ["A"] * n,
                    "estimation_reason": pa.nulls(n, pa.int16()),
                    "provenance": ["manufactured"] * n,
                },
                schema=CONSUMPTION_SCHEMA,
            )
        )
    return pa.concat_tables(parts)


def wh_half_up(kwh: float) -> int:
    return int(Decimal(repr(kwh)).scaleb(3).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_entries(xml: bytes, service: str) -> list[tuple[dt.datetime, int]]:
    """(Timestamp, value) of each LogEntry, read back with a namespace-aware parser."""
    root = ET.fromstring(xml)
    assert root.tag == f"{{{RA}}}GBCSResponse"
    if service == "4.8.1":
        rsp = root.find(
            "ra:Body/ra:ResponseMessage/ra:SMETSData/ra:ReadActiveImportProfileDataRsp", NS
        )
        value_path = "ra:Electricity/ra:PrimaryValue"
    else:
        rsp = root.find("ra:Body/ra:ResponseMessage/ra:SMETSData/ra:ReadExportProfileDataRsp", NS)
        value_path = "ra:ActiveEnergyExportedValue"
    assert rsp is not None
    out = []
    for entry in rsp.findall("ra:LogEntry", NS):
        stamp = dt.datetime.fromisoformat(entry.find("ra:Timestamp", NS).text)
        out.append((stamp, int(entry.find(value_path, NS).text)))
    return out


def expected_by_key(table: pa.Table) -> dict[tuple[str, str, dt.datetime], int]:
    rows = table.select(["mpan_core", "measurement_quantity", "period_end_utc", "consumption_kwh"])
    return {
        (r["mpan_core"], r["measurement_quantity"], r["period_end_utc"]): wh_half_up(
            r["consumption_kwh"]
        )
        for r in rows.to_pylist()
        if r["measurement_quantity"] in ("AI", "AE")
    }


CLOCK_CHANGE = (dt.date(2026, 10, 19), dt.date(2026, 11, 1))  # spans Sunday 25 October 2026


@pytest.fixture(scope="module")
def fortnight():
    table = consumption(
        [(AI_MPANS[0], "AI"), (AI_MPANS[1], "AI"), (AE_MPAN, "AE"), (AE_MPAN, "RE")], *CLOCK_CHANGE
    )
    return table, encode_dcc_profile_responses(table, request_timestamp_utc=REQUEST_UTC)


def test_one_valid_document_per_mpan_and_service(fortnight, mmc_schema):
    table, docs = fortnight
    assert [(d[0], d[1]) for d in docs] == [
        (AI_MPANS[0], "4.8.1"),
        (AI_MPANS[1], "4.8.1"),
        (AE_MPAN, "4.8.3"),
    ]
    for _mpan, service, xml, n_values in docs:
        mmc_schema.validate(xml.decode("utf-8"))
        assert isinstance(xml, bytes) and isinstance(n_values, int)
        assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
        assert len(parse_entries(xml, service)) == n_values == 14 * 48


def test_entries_equal_input_rows_in_whole_wh(fortnight):
    table, docs = fortnight
    expected = expected_by_key(table)
    got = {}
    for mpan, service, xml, _ in docs:
        mq = {"4.8.1": "AI", "4.8.3": "AE"}[service]
        entries = parse_entries(xml, service)
        assert [t for t, _ in entries] == sorted(t for t, _ in entries)
        for stamp, wh in entries:
            got[(mpan, mq, stamp)] = wh
    assert sum(d[3] for d in docs) == len(expected) == len(got)
    assert got == expected  # same keys: Timestamp is period_end_utc, in UTC


def test_clock_change_day_has_48_utc_entries_stamped_by_period_end(fortnight):
    table, docs = fortnight
    assert 50 in table.column("settlement_period").to_pylist()  # the input has the 50-period day
    entries = parse_entries(docs[0][2], "4.8.1")
    stamps = [t for t, _ in entries]
    assert stamps[0] == dt.datetime(2026, 10, 19, 0, 30, tzinfo=dt.UTC)  # end of 00:00-00:30
    assert stamps[-1] == dt.datetime(2026, 11, 2, 0, 0, tzinfo=dt.UTC)  # end of 1 Nov 23:30-24:00
    on_25th = [t for t in stamps if (t - dt.timedelta(minutes=30)).date() == dt.date(2026, 10, 25)]
    assert len(on_25th) == 48
    assert all(b - a == dt.timedelta(minutes=30) for a, b in zip(stamps, stamps[1:], strict=False))
    assert docs[0].first_day == CLOCK_CHANGE[0] and docs[0].last_day == CLOCK_CHANGE[1]


def test_header_is_plausible_and_deterministic(fortnight):
    table, docs = fortnight
    root = ET.fromstring(docs[0][2])
    header = root.find("ra:Header", NS)
    assert root.get("schemaVersion") == "5.4"
    assert header.find("ra:BusinessOriginatorID", NS).text == esme_device_id(AI_MPANS[0])
    assert header.find("ra:ServiceReference", NS).text == "4.8"
    assert header.find("ra:ServiceReferenceVariant", NS).text == "4.8.1"
    assert header.find("ra:Timestamp", NS).text == "2026-11-02T06:00:00.123Z"
    device = esme_device_id(AI_MPANS[0])
    assert device.startswith("02-4D-") and int(device[6:].replace("-", ""), 16) == int(AI_MPANS[0])
    # same input (in any row order) -> same bytes; the clock is never read
    shuffled = table.take(np.random.default_rng(3).permutation(table.num_rows))
    again = encode_dcc_profile_responses(shuffled, request_timestamp_utc=REQUEST_UTC)
    assert [d[2] for d in again] == [d[2] for d in docs]
    # a document depends only on its own rows
    alone = table.filter(pa.compute.equal(table.column("mpan_core"), AI_MPANS[1]))
    (only,) = encode_dcc_profile_responses(alone, request_timestamp_utc=REQUEST_UTC)
    assert only == docs[1]


def test_long_periods_split_at_the_schema_maximum(mmc_schema):
    first = dt.date(2025, 10, 1)
    table = pa.concat_tables(
        [
            consumption([(AI_MPANS[0], "AI")], first, first + dt.timedelta(days=399)),  # 400 days
            consumption(
                [(AE_MPAN, "AE")], first, first + dt.timedelta(days=99), seed=8
            ),  # 100 days
        ]
    )
    docs = encode_dcc_profile_responses(table, request_timestamp_utc=REQUEST_UTC)
    sizes = {s: [d[3] for d in docs if d[1] == s] for s in ("4.8.1", "4.8.3")}
    assert sizes == {
        "4.8.1": [MAX_IMPORT_LOG_ENTRIES, 3 * 48],
        "4.8.3": [MAX_EXPORT_LOG_ENTRIES, 7 * 48],
    }
    assert sum(d[3] for d in docs) == table.num_rows
    expected = expected_by_key(table)
    counters = set()
    for doc in docs:
        assert doc[3] <= (MAX_IMPORT_LOG_ENTRIES if doc[1] == "4.8.1" else MAX_EXPORT_LOG_ENTRIES)
        mmc_schema.validate(doc[2].decode())
        mq = "AI" if doc[1] == "4.8.1" else "AE"
        entries = parse_entries(doc[2], doc[1])
        assert len(entries) == doc[3]
        assert all(expected[(doc[0], mq, t)] == wh for t, wh in entries)
        assert entries[0][0] - dt.timedelta(minutes=30) == dt.datetime.combine(
            doc.first_day, dt.time(), dt.UTC
        )
        assert entries[-1][0] == dt.datetime.combine(
            doc.last_day + dt.timedelta(days=1), dt.time(), dt.UTC
        )
        counters.add(ET.fromstring(doc[2]).find("ra:Header/ra:OriginatorCounter", NS).text)
    assert len(counters) == len(docs)
    names = [d.file_name for d in docs]
    assert len(set(names)) == len(names)
    assert names[0] == f"{AI_MPANS[0]}_SR4.8.1_20251001-20261101.xml"  # 397 days
    assert names[1] == f"{AI_MPANS[0]}_SR4.8.1_20261102-20261104.xml"


def test_file_names_carry_the_mpan_core(fortnight):
    _, docs = fortnight
    assert dcc_file_name("1200000000009", "4.8.1", dt.date(2026, 10, 19), dt.date(2026, 11, 1)) == (
        "1200000000009_SR4.8.1_20261019-20261101.xml"
    )
    for doc in docs:
        name = doc.file_name
        assert doc[0] in name and f"SR{doc[1]}" in name
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name)
    with pytest.raises(ValueError):
        dcc_file_name("12/0000000009", "4.8.1", dt.date(2026, 10, 19), dt.date(2026, 11, 1))
    with pytest.raises(ValueError):
        dcc_file_name("1200000000009", "4.8.1", dt.date(2026, 11, 1), dt.date(2026, 10, 19))


def test_corrupted_documents_fail_validation(fortnight, mmc_schema):
    """The validator is live: it rejects what the encoder must never write."""
    _, docs = fortnight
    imp = docs[0][2].decode()
    exp = docs[2][2].decode()
    assert mmc_schema.is_valid(imp) and mmc_schema.is_valid(exp)
    non_integer = re.sub(r"<ra:PrimaryValue>(\d+)<", r"<ra:PrimaryValue>\1.5<", imp, count=1)
    assert non_integer != imp and not mmc_schema.is_valid(non_integer)
    non_integer_export = re.sub(
        r"<ra:ActiveEnergyExportedValue>(\d+)<",
        r"<ra:ActiveEnergyExportedValue>\1.5<",
        exp,
        count=1,
    )
    assert not mmc_schema.is_valid(non_integer_export)
    wrong_order = imp.replace("<ra:ServiceReference>4.8</ra:ServiceReference>\n", "", 1).replace(
        "<ra:Timestamp>2026-11-02",
        "<ra:ServiceReference>4.8</ra:ServiceReference><ra:Timestamp>2026-11-02",
        1,
    )
    assert not mmc_schema.is_valid(wrong_order)
    bad_device = re.sub(
        r"<ra:BusinessOriginatorID>[^<]+<", "<ra:BusinessOriginatorID>02-4D-XY<", imp
    )
    assert not mmc_schema.is_valid(bad_device)
    line = re.search(r"<ra:LogEntry>.*?</ra:LogEntry>\n", imp).group(0)
    too_many = imp.replace(line, line * (MAX_IMPORT_LOG_ENTRIES - docs[0][3] + 2), 1)
    assert not mmc_schema.is_valid(too_many)  # maxOccurs 19056 is enforced


def test_round_half_up_to_whole_wh():
    grid_day = dt.date(2026, 6, 1)
    table = consumption([(AI_MPANS[0], "AI")], grid_day, grid_day)
    kwh = [0.0005, 0.0015, 0.0025, 1.0005, 2.4994999, 0.0004999, 7.0, 12345.678]
    values = np.array(kwh + [0.0] * (48 - len(kwh)))
    table = table.set_column(5, "consumption_kwh", pa.array(values))
    (doc,) = encode_dcc_profile_responses(table, request_timestamp_utc=REQUEST_UTC)
    got = [wh for _, wh in parse_entries(doc[2], "4.8.1")][: len(kwh)]
    assert got == [1, 2, 3, 1001, 2499, 0, 7000, 12345678]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=-(10**13), max_value=10**13), min_size=1, max_size=48))
def test_any_whole_wh_round_trips(values):
    """Any digit count, zero and negatives: the byte-level formatter writes the number itself."""
    n = len(values)
    day = dt.date(2026, 3, 29)  # the 46-period local day
    table = consumption([(AE_MPAN, "AE")], day, day).slice(0, n)
    table = table.set_column(
        5, "consumption_kwh", pa.array(np.array(values, dtype=np.float64) / 1000)
    )
    (doc,) = encode_dcc_profile_responses(table, request_timestamp_utc=REQUEST_UTC)
    assert [wh for _, wh in parse_entries(doc[2], "4.8.3")] == values


def test_only_ai_and_ae_rows_are_encoded():
    day = dt.date(2026, 10, 25)
    table = consumption([(AI_MPANS[0], "RI"), (AE_MPAN, "RE")], day, day)
    assert encode_dcc_profile_responses(table, request_timestamp_utc=REQUEST_UTC) == []
    assert encode_dcc_profile_responses(table.slice(0, 0), request_timestamp_utc=REQUEST_UTC) == []


def test_dictionary_and_chunked_columns_give_the_same_bytes(fortnight):
    table, docs = fortnight
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=500))
    dictionary = chunked.set_column(
        0, "mpan_core", pa.compute.dictionary_encode(chunked.column("mpan_core"))
    ).set_column(1, "measurement_quantity", pa.compute.dictionary_encode(chunked.column(1)))
    again = encode_dcc_profile_responses(dictionary, request_timestamp_utc=REQUEST_UTC)
    assert [d[2] for d in again] == [d[2] for d in docs]


def test_bad_input_is_refused():
    day = dt.date(2026, 10, 25)
    table = consumption([(AI_MPANS[0], "AI")], day, day)
    with pytest.raises(ValueError, match="timezone-aware"):
        encode_dcc_profile_responses(table, request_timestamp_utc=dt.datetime(2026, 11, 2))  # noqa: DTZ001
    with pytest.raises(ValueError, match="twice"):
        encode_dcc_profile_responses(
            pa.concat_tables([table, table.slice(3, 1)]), request_timestamp_utc=REQUEST_UTC
        )
    bad_mpan = table.set_column(0, "mpan_core", pa.array(["12345"] * 48))
    with pytest.raises(ValueError, match="13 digits"):
        encode_dcc_profile_responses(bad_mpan, request_timestamp_utc=REQUEST_UTC)
    off_grid = table.set_column(
        2,
        "period_end_utc",
        pa.compute.add(table.column(2), pa.scalar(dt.timedelta(minutes=1))),
    )
    with pytest.raises(ValueError, match="half-hour"):
        encode_dcc_profile_responses(off_grid, request_timestamp_utc=REQUEST_UTC)
    nan = table.set_column(5, "consumption_kwh", pa.array([float("nan")] * 48))
    with pytest.raises(ValueError, match="finite"):
        encode_dcc_profile_responses(nan, request_timestamp_utc=REQUEST_UTC)


def test_results_are_plain_four_tuples_that_pickle(fortnight):
    _, docs = fortnight
    doc = docs[0]
    mpan, service, xml, n = doc
    assert isinstance(doc, tuple) and len(doc) == 4 and tuple(doc) == (mpan, service, xml, n)
    back = pickle.loads(pickle.dumps(doc))
    assert isinstance(back, DccResponse) and back == doc
    assert (back.first_day, back.last_day, back.file_name) == (
        doc.first_day,
        doc.last_day,
        doc.file_name,
    )


def test_module_is_pure():
    code = (
        "import sys, mhhs_pipeline.formats.dcc_xml\n"
        "bad = {'fsspec', 'dask', 'distributed', 'prefect', 'boto3', 's3fs', 'xmlschema'}\n"
        "assert not bad & set(sys.modules), bad & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_iterating_yields_the_same_documents_lazily(fortnight, monkeypatch):
    """``iter_dcc_profile_responses`` yields what ``encode_dcc_profile_responses`` lists, one
    batch at a time (so a writer holds one batch's text); bad input fails on the first
    ``next``, before any document is out."""
    table, docs = fortnight
    from mhhs_pipeline.formats import dcc_xml

    monkeypatch.setattr(dcc_xml, "_BATCH_ROWS", 100)  # many batches, each under one document
    it = iter_dcc_profile_responses(table, request_timestamp_utc=REQUEST_UTC)
    assert not isinstance(it, list)
    again = list(it)
    assert again == docs and [d.file_name for d in again] == [d.file_name for d in docs]
    twice = pa.concat_tables([table, table.slice(3, 1)])
    lazy = iter_dcc_profile_responses(twice, request_timestamp_utc=REQUEST_UTC)
    with pytest.raises(ValueError, match="twice"):
        next(lazy)


@pytest.mark.parametrize("batch_rows", [100, 1 << 16])
def test_chunks_are_the_documents_in_pieces(fortnight, monkeypatch, batch_rows):
    """``iter_dcc_profile_chunks`` (the writer's path) gives each document's file name and its
    exact bytes as header, a view of the rendering, and footer; no joined copy."""
    table, docs = fortnight
    from mhhs_pipeline.formats import dcc_xml

    monkeypatch.setattr(dcc_xml, "_BATCH_ROWS", batch_rows)
    got = list(dcc_xml.iter_dcc_profile_chunks(table, request_timestamp_utc=REQUEST_UTC))
    assert [(name, b"".join(chunks), n) for name, chunks, n in got] == [
        (d.file_name, d[2], d[3]) for d in docs
    ]
    for _, (head, body, foot), _ in got:
        assert isinstance(body, memoryview) and body.readonly
        assert head.endswith(b'MessageSuccess="true">\n') and foot.endswith(b"</ra:GBCSResponse>\n")


def test_far_apart_times_and_values_render_like_close_ones():
    """Half hours years apart and Wh values far apart take the per-row rendering instead of the
    dense range of keys: every document is still the bytes it has when encoded on its own."""
    near = consumption(
        [(AI_MPANS[0], "AI"), (AE_MPAN, "AE")], dt.date(2026, 10, 24), dt.date(2026, 10, 26)
    )
    far = consumption([(AI_MPANS[1], "AI")], dt.date(2003, 3, 29), dt.date(2003, 3, 30), seed=9)
    kwh = far.column("consumption_kwh").to_numpy().copy()
    kwh[7] = 4.0e9  # 4 TWh: the Wh range now dwarfs the row count
    far = far.set_column(5, far.schema.field("consumption_kwh"), pa.array(kwh))
    both = encode_dcc_profile_responses(
        pa.concat_tables([near, far]), request_timestamp_utc=REQUEST_UTC
    )
    alone = [
        *encode_dcc_profile_responses(near, request_timestamp_utc=REQUEST_UTC),
        *encode_dcc_profile_responses(far, request_timestamp_utc=REQUEST_UTC),
    ]
    assert sorted(both) == sorted(alone) and len(both) == 3
    (far_doc,) = [d for d in both if d[0] == AI_MPANS[1]]
    entries = parse_entries(far_doc[2], "4.8.1")
    assert entries[7] == (dt.datetime(2003, 3, 29, 4, 0, tzinfo=dt.UTC), 4_000_000_000_000)
    assert (far_doc.first_day, far_doc.last_day) == (dt.date(2003, 3, 29), dt.date(2003, 3, 30))


def test_dictionary_mpan_cores_are_checked_per_used_entry(fortnight):
    """A dictionary column is checked once per dictionary entry, but only entries some AI/AE
    row uses can fail; a null behind an index is still a null."""
    table, docs = fortnight
    mpan = table.column("mpan_core").combine_chunks()
    dictionary = pa.array([*AI_MPANS, AE_MPAN, "not-an-mpan"])
    indices = pa.compute.index_in(mpan, value_set=dictionary)
    unused_bad = table.set_column(
        0, "mpan_core", pa.DictionaryArray.from_arrays(indices, dictionary)
    )
    again = encode_dcc_profile_responses(unused_bad, request_timestamp_utc=REQUEST_UTC)
    assert again == docs
    used = indices.to_numpy().copy()
    used[5] = 3
    used_bad = table.set_column(
        0, "mpan_core", pa.DictionaryArray.from_arrays(pa.array(used, pa.int32()), dictionary)
    )
    with pytest.raises(ValueError, match="not-an-mpan"):
        encode_dcc_profile_responses(used_bad, request_timestamp_utc=REQUEST_UTC)
    with_null = pa.array([*AI_MPANS, AE_MPAN, None])
    null_value = table.set_column(
        0, "mpan_core", pa.DictionaryArray.from_arrays(pa.array(used, pa.int32()), with_null)
    )
    with pytest.raises(ValueError, match="must not be null"):
        encode_dcc_profile_responses(null_value, request_timestamp_utc=REQUEST_UTC)


def test_reader_gives_back_each_documents_mpan_service_and_entries(fortnight):
    from mhhs_pipeline.formats.readers import read_dcc_profile

    table, docs = fortnight
    want = expected_by_key(table)
    seen = {}
    for doc in docs:
        profile = read_dcc_profile(doc.xml_bytes)
        assert (profile.mpan_core, profile.service_reference) == (doc.mpan_core, doc.service_reference)
        assert profile.entries.num_rows == doc.n_values
        for end, wh in zip(profile.entries.column("period_end_utc").to_pylist(), profile.entries.column("wh").to_pylist(), strict=True):
            seen[(profile.mpan_core, profile.measurement_quantity, end)] = wh
    assert seen == want


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_reader_refuses_damage_with_a_format_error_only(fortnight, data):
    from mhhs_pipeline.formats.readers import FormatError, read_dcc_profile

    _, docs = fortnight
    text = docs[0].xml_bytes
    cut = text.index(b"</ra:LogEntry>", 2000) + len(b"</ra:LogEntry>")  # a few whole entries: well formed
    body = bytearray(text[:cut] + b"\n" + text[text.rindex(b"</ra:ReadActiveImportProfileDataRsp>") :])
    assert read_dcc_profile(bytes(body)).entries.num_rows >= 5
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.sampled_from(b"<>/:&;\"'0aZ\x00\xff -"))
    try:
        read_dcc_profile(bytes(body))
    except FormatError as exc:
        assert str(exc)


def test_reader_refuses_entity_declarations(fortnight):
    from mhhs_pipeline.formats.readers import FormatError, read_dcc_profile

    _, docs = fortnight
    lol = b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    bomb = docs[0].xml_bytes.replace(b"<ra:GBCSResponse", lol + b"\n<ra:GBCSResponse", 1)
    with pytest.raises(FormatError, match="DTD"):
        read_dcc_profile(bomb)


def test_a_bundle_holds_every_response_unchanged_schema_valid_and_is_deterministic(fortnight, mmc_schema):
    import io
    import zipfile

    from mhhs_pipeline.formats.dcc_bundle import bundle_dcc_responses
    from mhhs_pipeline.formats.dcc_xml import iter_dcc_profile_chunks

    table, docs = fortnight

    def bundle():
        b = bundle_dcc_responses(iter_dcc_profile_chunks(table, request_timestamp_utc=REQUEST_UTC), request_timestamp_utc=REQUEST_UTC)
        return b, b"".join(bytes(c) for c in b.chunks)

    b, data = bundle()
    assert (b.members, b.values) == (len(docs), sum(d.n_values for d in docs))
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert [i.filename for i in archive.infolist()] == [d.file_name for d in docs]
    for info, doc in zip(archive.infolist(), docs, strict=True):
        member = archive.read(info)
        assert member == doc.xml_bytes  # the loose document, byte for byte
        mmc_schema.validate(member.decode("utf-8"))
        assert info.compress_type == zipfile.ZIP_STORED and info.date_time == (2026, 11, 2, 6, 0, 0)
    assert bundle()[1] == data  # same unit, same bytes


@pytest.mark.parametrize("damage", [(b'encoding="UTF-8"', b'encoding="aTF-8"'), (b'encoding="UTF-8"', b'encoding="UTF-16"'), (b"</ra:GBCSResponse>", b"<x>" * 50_000 + b"</x>" * 50_000 + b"</ra:GBCSResponse>")])
def test_reader_refuses_odd_declarations_and_survives_deep_nesting(fortnight, damage):
    from mhhs_pipeline.formats.readers import FormatError, read_dcc_profile

    _, docs = fortnight
    damaged = docs[0].xml_bytes.replace(*damage, 1)
    assert damaged != docs[0].xml_bytes
    try:
        profile = read_dcc_profile(damaged)
    except FormatError:
        return
    assert damage[0] == b"</ra:GBCSResponse>" and profile.entries.num_rows == docs[0].n_values  # extra nesting outside the entries


def test_if021_reader_refuses_deep_nesting():
    from mhhs_pipeline.formats.readers import FormatError, read_if021

    with pytest.raises(FormatError):
        read_if021(b"[" * 100_000 + b"]" * 100_000)
