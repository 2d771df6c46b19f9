"""Consumption cleansing rules on crafted records (pure layer, no files): every reason code,
no false rejections, repairs, duplicates and overlaps, the local view across the 2026 clock
changes, canonical output and the quarantine's original text and routes."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from test_cleanse_rules import mpan

from mhhs_pipeline.cleanse.consumption import (
    CONSUMPTION_COLUMNS,
    CONSUMPTION_QUARANTINE_SCHEMA,
    CONSUMPTION_REASON_CODES,
    CONSUMPTION_REPAIR_CODES,
    HALF_HOUR_BOUND_KWH,
    QUALITY_CODES,
    RegistrationIndex,
    cleanse_consumption_records,
    render_consumption_markdown,
)
from mhhs_pipeline.cleanse.reasons import REASON_CODES
from mhhs_pipeline.cleanse.report import ReconciliationError
from mhhs_pipeline.core.calendar import local_view
from mhhs_pipeline.core.schema import CONSUMPTION_SCHEMA, REGISTRATION_SCHEMA, same_columns

ROOT = Path(__file__).resolve().parents[1]

A = mpan("120000000001")  # London, whole current, import, energised from 2026-01-01
EXP = mpan("120000000002")  # its export MPAN
DEEN = mpan("120000000003")  # energised until 2026-06-30, de-energised from 2026-07-01
LATE = mpan("140000000004")  # registered from 2026-06-01 only
LV = mpan("230000000005")  # Advanced, LV CT
STRANGER = mpan("120000000099")  # valid, never registered


def registrations() -> pa.Table:
    base = {
        "supplier_id": "GRNX", "data_service_id": "SDS1", "metering_service_id": "MSS1", "gsp_group": "_C",
        "market_segment": "S", "connection_type": "W", "energisation_status": "E", "energy_direction": "I",
        "domestic_premise": True, "annual_consumption_kwh": 2700.0, "dcc_service_flag": "A",
        "archetype": "domestic_unrestricted", "provenance": "actual", "linked_import_mpan": None,
        "effective_from": dt.date(2026, 1, 1), "effective_to": None,
    }  # fmt: skip
    rows = [
        {**base, "mpan_core": A},
        {**base, "mpan_core": EXP, "energy_direction": "E", "archetype": "pv_export", "linked_import_mpan": A},
        {**base, "mpan_core": DEEN, "effective_to": dt.date(2026, 6, 30)},
        {**base, "mpan_core": DEEN, "effective_from": dt.date(2026, 7, 1), "energisation_status": "D"},
        {**base, "mpan_core": LATE, "effective_from": dt.date(2026, 6, 1), "supplier_id": "BLUE", "gsp_group": "_E"},
        {**base, "mpan_core": LV, "market_segment": "A", "connection_type": "L", "data_service_id": "ADS1",
         "domestic_premise": False, "archetype": "office", "gsp_group": "_M", "dcc_service_flag": "N"},
    ]  # fmt: skip
    for r in rows:
        r["distributor_id"] = r["mpan_core"][:2]
    return pa.Table.from_pylist(rows, schema=REGISTRATION_SCHEMA)


REG = registrations()
INDEX = RegistrationIndex.build(REG)

BASE = {"mpan_core": A, "period_end_utc": "2026-03-10T12:30:00Z", "consumption_kwh": "0.512"}


def table(rows: list[dict], extra: dict[str, list] | None = None) -> pa.Table:
    cols = {k: [r.get(k, "") for r in rows] for k in CONSUMPTION_COLUMNS}
    cols.update(extra or {})
    cols["record"] = list(range(1, len(rows) + 1))
    return pa.table(cols)


def cleanse(rows: list[dict], extra=None):
    return cleanse_consumption_records(table(rows, extra), INDEX)


def codes(result) -> dict[int, list[str]]:
    return {r["record"]: r["reason_code"].split(";") for r in result.quarantine.to_pylist()}


# (overrides of one otherwise valid record, expected code) -- every single-record code.
CASES = [
    ({"mpan_core": ""}, "MISSING_VALUE"),
    ({"consumption_kwh": " "}, "MISSING_VALUE"),
    ({"period_end_utc": ""}, "MISSING_VALUE"),
    ({"period_end_utc": "", "settlement_date": "2026-03-10"}, "MISSING_VALUE"),
    ({"period_end_utc": "", "settlement_period": "3"}, "MISSING_VALUE"),
    ({"mpan_core": "12345"}, "BAD_MPAN"),
    ({"mpan_core": A[:12] + str((int(A[12]) + 1) % 10)}, "BAD_MPAN"),
    ({"mpan_core": "1.20000000001E+12"}, "BAD_MPAN"),
    ({"mpan_core": STRANGER}, "UNKNOWN_MPAN"),
    ({"measurement_quantity": "XX"}, "UNKNOWN_MEASUREMENT_QUANTITY"),
    ({"measurement_quantity": "A I"}, "UNKNOWN_MEASUREMENT_QUANTITY"),
    ({"period_end_utc": "2026-03-10"}, "BAD_TIMESTAMP"),
    ({"period_end_utc": "yesterday"}, "BAD_TIMESTAMP"),
    ({"period_end_utc": "2026-02-30T00:30:00Z"}, "BAD_TIMESTAMP"),
    ({"period_end_utc": "2026-03-10T25:00:00Z"}, "BAD_TIMESTAMP"),
    ({"period_end_utc": "10/03/2026 12:30"}, "BAD_TIMESTAMP"),
    ({"period_end_utc": "", "settlement_date": "10/03/2026", "settlement_period": "3"}, "BAD_TIMESTAMP"),
    ({"period_end_utc": "", "settlement_date": "2026-03-10", "settlement_period": "51"}, "BAD_TIMESTAMP"),
    ({"period_end_utc": "", "settlement_date": "2026-03-10", "settlement_period": "0"}, "BAD_TIMESTAMP"),
    ({"period_end_utc": "", "settlement_date": "2026-03-10", "settlement_period": "2.5"}, "BAD_TIMESTAMP"),
    ({"period_end_utc": "2026-03-10T12:15:00Z"}, "OFF_HALF_HOUR"),
    ({"period_end_utc": "2026-03-10T12:30:05Z"}, "OFF_HALF_HOUR"),
    ({"period_end_utc": "2026-03-10T12:30:00.5Z"}, "OFF_HALF_HOUR"),
    ({"period_end_utc": "2026-03-10T12:30:00+00:15"}, "OFF_HALF_HOUR"),
    ({"period_end_utc": "", "settlement_date": "2026-03-10", "settlement_period": "49"}, "WRONG_PERIOD_COUNT"),
    ({"period_end_utc": "", "settlement_date": "2026-03-29", "settlement_period": "47"}, "WRONG_PERIOD_COUNT"),
    ({"period_end_utc": "", "settlement_date": "2026-06-01", "settlement_period": "50"}, "WRONG_PERIOD_COUNT"),
    # 2026-06-01 is BST: period 25 ends 12:30 local = 11:30 UTC, not 12:30 UTC.
    ({"period_end_utc": "2026-06-01T12:30:00Z", "settlement_date": "2026-06-01", "settlement_period": "25"}, "TIME_VIEWS_DISAGREE"),
    ({"consumption_kwh": "abc"}, "KWH_NOT_NUMERIC"),
    ({"consumption_kwh": "1,5"}, "KWH_NOT_NUMERIC"),
    ({"consumption_kwh": "nan"}, "KWH_NOT_NUMERIC"),
    ({"consumption_kwh": "inf"}, "KWH_NOT_NUMERIC"),
    ({"consumption_kwh": "1e400"}, "KWH_NOT_NUMERIC"),
    ({"consumption_kwh": "=1+2"}, "KWH_NOT_NUMERIC"),
    ({"consumption_kwh": "-0.5"}, "NEGATIVE_VALUE"),
    ({"consumption_kwh": "-0.0001"}, "NEGATIVE_VALUE"),
    ({"quality": "X"}, "UNKNOWN_QUALITY"),
    ({"quality": "EA14", "estimation_reason": "2"}, "UNKNOWN_QUALITY"),
    ({"quality": "E", "estimation_reason": "11"}, "BAD_ESTIMATION_REASON"),
    ({"quality": "E", "estimation_reason": "0"}, "BAD_ESTIMATION_REASON"),
    ({"quality": "E"}, "QUALITY_REASON_MISMATCH"),
    ({"quality": "EA3"}, "QUALITY_REASON_MISMATCH"),
    ({"quality": "A", "estimation_reason": "2"}, "QUALITY_REASON_MISMATCH"),
    ({"estimation_reason": "2"}, "QUALITY_REASON_MISMATCH"),  # quality defaults to A
    ({"quality": "ZE", "consumption_kwh": "0.5"}, "ZERO_QUALITY_NONZERO"),
    ({"quality": "ZE3", "consumption_kwh": "0.001"}, "ZERO_QUALITY_NONZERO"),
    ({"mpan_core": LATE}, "NO_REGISTRATION_IN_FORCE"),
    ({"mpan_core": LATE, "period_end_utc": "2026-06-01T00:00:00Z"}, "NO_REGISTRATION_IN_FORCE"),  # UTC day 31 May
    ({"measurement_quantity": "AE"}, "MQ_DIRECTION_MISMATCH"),
    ({"mpan_core": EXP, "measurement_quantity": "AI"}, "MQ_DIRECTION_MISMATCH"),
    ({"mpan_core": DEEN, "period_end_utc": "2026-07-10T12:30:00Z"}, "DE_ENERGISED_CONSUMPTION"),
    ({"mpan_core": DEEN, "period_end_utc": "2026-07-01T00:30:00Z"}, "DE_ENERGISED_CONSUMPTION"),
    ({"consumption_kwh": "34.501"}, "BEYOND_PHYSICAL_BOUND"),
    ({"consumption_kwh": "512000"}, "BEYOND_PHYSICAL_BOUND"),  # Wh sent as kWh
    ({"mpan_core": LV, "consumption_kwh": "1000.5"}, "BEYOND_PHYSICAL_BOUND"),
    ({"mpan_core": LV, "measurement_quantity": "RI", "consumption_kwh": "1200"}, "BEYOND_PHYSICAL_BOUND"),
]
PAIR_CODES = {"DUPLICATE_PERIOD"}  # needs two records: tested below


@pytest.mark.parametrize(("override", "code"), CASES, ids=[f"{c}-{i}" for i, (_, c) in enumerate(CASES)])
def test_each_rule_quarantines_with_its_code(override, code):
    res = cleanse([{**BASE, **override}])
    assert res.clean.num_rows == 0 and res.quarantine.num_rows == 1
    row = res.quarantine.to_pylist()[0]
    got = row["reason_code"].split(";")
    assert code in got
    assert len(row["reason"].split(";")) == len(got)  # texts aligned with codes
    for fld, raw in override.items():
        assert row[fld] == raw  # the original text, untouched


def test_every_consumption_reason_code_has_a_crafted_case():
    assert {c for _, c in CASES} | PAIR_CODES == set(CONSUMPTION_REASON_CODES)


def test_consumption_codes_documented_exactly():
    doc = (ROOT / "docs" / "reason-codes.md").read_text()
    section = doc.split("## Consumption reason codes", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| (.+?) \|", section, flags=re.M)
    assert dict(rows) == CONSUMPTION_REASON_CODES
    repairs = doc.split("### Consumption repairs", 1)[1].split("\n#", 1)[0]
    assert {c for c, _ in re.findall(r"^\| `([A-Z0-9_]+)` \| (.+?) \|", repairs, flags=re.M)} == set(CONSUMPTION_REPAIR_CODES)
    assert not set(CONSUMPTION_REASON_CODES) & set(REASON_CODES)  # two tables, no shared names


def test_quality_codes_match_the_if021_encoder():
    from mhhs_pipeline.formats.if021 import QUALITY_CODES as ENCODER_CODES

    assert QUALITY_CODES == ENCODER_CODES


# Valid records the rules must not reject (each alone is clean).
VALID = [
    {},
    {"consumption_kwh": "0"},
    {"consumption_kwh": "-0.000"},
    {"consumption_kwh": "34.5"},  # the whole-current bound itself
    {"mpan_core": LV, "consumption_kwh": "999.999"},
    {"mpan_core": LV, "measurement_quantity": "RE", "consumption_kwh": "12.5"},
    {"mpan_core": EXP, "measurement_quantity": "AE"},
    {"mpan_core": EXP, "measurement_quantity": "RI"},
    {"quality": "E", "estimation_reason": "2"},
    {"quality": "ea13", "estimation_reason": "10"},
    {"quality": "ZE", "consumption_kwh": "0.000"},
    {"quality": "AAE1"},
    {"mpan_core": DEEN, "period_end_utc": "2026-07-10T12:30:00Z", "consumption_kwh": "0"},
    {"mpan_core": DEEN, "period_end_utc": "2026-07-01T00:00:00Z"},  # UTC day 30 June: energised
    {"mpan_core": LATE, "period_end_utc": "2026-06-01T00:30:00Z"},
    {"period_end_utc": "2026-03-10 12:30"},
    {"period_end_utc": "2026-03-10T12:30:00.000000+00:00"},
    {"period_end_utc": "2026-03-10T13:30:00+01:00"},
    {"period_end_utc": "2026-03-10T07:30-0500"},
    {"period_end_utc": "2026-03-09 24:00"},
    {"period_end_utc": "", "settlement_date": "20260310", "settlement_period": "26"},
    {"period_end_utc": "2026-06-01T11:30:00Z", "settlement_date": "2026-06-01", "settlement_period": "25.0"},
]


@pytest.mark.parametrize("override", VALID, ids=[str(i) for i in range(len(VALID))])
def test_valid_records_are_not_rejected(override):
    res = cleanse([{**BASE, **override}])
    assert res.quarantine.num_rows == 0, res.quarantine.to_pylist()
    assert res.clean.num_rows == 1


def test_clean_rows_are_canonical_actuals():
    rows = [
        {**BASE, "consumption_kwh": "0.12345"},
        {**BASE, "period_end_utc": "2026-03-10T13:00:00Z", "quality": " e ", "estimation_reason": " 4 "},
        {**BASE, "measurement_quantity": "ri", "consumption_kwh": "0.1"},
        {**BASE, "mpan_core": EXP, "measurement_quantity": "AE", "period_end_utc": "2026-10-25T01:30:00Z"},
    ]
    res = cleanse(rows)
    assert same_columns(res.clean.schema, CONSUMPTION_SCHEMA) == [] and res.clean.schema == CONSUMPTION_SCHEMA
    got = res.clean.to_pylist()
    assert [(r["mpan_core"], r["measurement_quantity"]) for r in got] == [(A, "AI"), (A, "AI"), (A, "RI"), (EXP, "AE")]
    assert got[0]["consumption_kwh"] == 0.123 and got[0]["quality"] == "A" and got[0]["estimation_reason"] is None
    assert got[1]["quality"] == "E" and got[1]["estimation_reason"] == 4
    assert {r["provenance"] for r in got} == {"actual"}
    # Both views from core.calendar: local 25 Oct 2026 starts 23:00 UTC on the 24th, so the half
    # hour ending 01:30 UTC (the second 01:00-01:30 on the local clock, GMT) is period 5.
    assert (got[3]["settlement_date"], got[3]["settlement_period"]) == (dt.date(2026, 10, 25), 5)
    assert got[0]["period_end_utc"] == dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
    assert (got[0]["settlement_date"], got[0]["settlement_period"]) == (dt.date(2026, 3, 10), 25)


def _local_day_rows(day: dt.date, periods: int, mpan_core: str = A) -> list[dict]:
    return [
        {"mpan_core": mpan_core, "settlement_date": day.isoformat(), "settlement_period": str(p), "consumption_kwh": f"{p / 100:.3f}"}
        for p in range(1, periods + 1)
    ]


@pytest.mark.parametrize(
    ("days", "first_end", "n"),
    [
        # Spring: 28 Mar (48, GMT), 29 Mar (46), 30 Mar (48, BST: local midnight is 23:00 UTC).
        ([(dt.date(2026, 3, 28), 48), (dt.date(2026, 3, 29), 46), (dt.date(2026, 3, 30), 48)], dt.datetime(2026, 3, 28, 0, 30, tzinfo=dt.UTC), 142),
        # Autumn: 24 Oct (48, BST), 25 Oct (50), 26 Oct (48, GMT).
        ([(dt.date(2026, 10, 24), 48), (dt.date(2026, 10, 25), 50), (dt.date(2026, 10, 26), 48)], dt.datetime(2026, 10, 23, 23, 30, tzinfo=dt.UTC), 146),
    ],
    ids=["spring-46", "autumn-50"],
)
def test_local_date_and_period_convert_across_clock_changes(days, first_end, n):
    rows = [r for day, k in days for r in _local_day_rows(day, k)]
    res = cleanse(rows)
    assert res.quarantine.num_rows == 0 and res.clean.num_rows == n
    ends = res.clean.column("period_end_utc").cast(pa.timestamp("us")).to_numpy()
    # Consecutive half hours, no gap and no overlap, from the first local period's end.
    expected = np.datetime64(first_end.replace(tzinfo=None), "us") + np.arange(n) * np.timedelta64(30, "m")
    assert (ends == expected).all()
    # The canonical local view (core.calendar) gives back exactly what was sent.
    sd = res.clean.column("settlement_date").to_pylist()
    sp = res.clean.column("settlement_period").to_pylist()
    assert [(d.isoformat(), str(p)) for d, p in zip(sd, sp, strict=True)] == [(r["settlement_date"], r["settlement_period"]) for r in rows]
    sd2, sp2 = local_view(ends)
    assert (sp2 == np.array(sp)).all() and (sd2 == np.array(sd, dtype="datetime64[D]")).all()
    assert res.stats.repairs.counts[("LOCAL_PERIOD_TO_UTC", "period_end_utc")] == n


def test_clock_change_periods_land_on_the_right_utc_half_hours():
    rows = [
        {**BASE, "period_end_utc": "", "settlement_date": "2026-03-29", "settlement_period": "2"},
        {**BASE, "period_end_utc": "", "settlement_date": "2026-03-29", "settlement_period": "3"},
        {**BASE, "period_end_utc": "", "settlement_date": "2026-03-29", "settlement_period": "46"},
        {**BASE, "period_end_utc": "", "settlement_date": "2026-10-25", "settlement_period": "3"},
        {**BASE, "period_end_utc": "", "settlement_date": "2026-10-25", "settlement_period": "5"},
        {**BASE, "period_end_utc": "", "settlement_date": "2026-10-25", "settlement_period": "50"},
    ]
    got = cleanse(rows).clean.column("period_end_utc").to_pylist()
    utc = [dt.datetime(*a, tzinfo=dt.UTC) for a in [(2026, 3, 29, 1, 0), (2026, 3, 29, 1, 30), (2026, 3, 29, 23, 0),
                                                    (2026, 10, 25, 0, 30), (2026, 10, 25, 1, 30), (2026, 10, 26, 0, 0)]]  # fmt: skip
    assert got == utc


def test_exact_duplicates_merge_and_reconcile():
    res = cleanse([BASE, dict(BASE), {**BASE, "consumption_kwh": "0.5120"}, {**BASE, "period_end_utc": "2026-03-10T13:30+01:00"}])
    assert (res.clean.num_rows, res.quarantine.num_rows, res.stats.merged) == (1, 0, 3)
    assert res.stats.rows_in == 4 and res.stats.reconciles


def test_utc_and_local_view_of_one_half_hour_are_duplicates():
    local = {"mpan_core": A, "settlement_date": "2026-03-10", "settlement_period": "25", "consumption_kwh": "0.512"}
    res = cleanse([BASE, local])
    assert (res.clean.num_rows, res.stats.merged) == (1, 1)
    res = cleanse([BASE, {**local, "consumption_kwh": "0.9"}])
    assert res.clean.num_rows == 0 and set(codes(res)) == {1, 2}
    assert all(c == ["DUPLICATE_PERIOD"] for c in codes(res).values())


def test_conflicting_values_quarantine_every_record_for_that_half_hour():
    rows = [BASE, dict(BASE), {**BASE, "consumption_kwh": "0.6"}, {**BASE, "quality": "E", "estimation_reason": "2"},
            {**BASE, "period_end_utc": "2026-03-10T13:00:00Z"}, {**BASE, "measurement_quantity": "RI"}]  # fmt: skip
    res = cleanse(rows)
    assert codes(res) == {1: ["DUPLICATE_PERIOD"], 2: ["DUPLICATE_PERIOD"], 3: ["DUPLICATE_PERIOD"], 4: ["DUPLICATE_PERIOD"]}
    assert res.clean.num_rows == 2  # the other half hour and the other measurement quantity
    assert res.stats.rows_in == res.stats.clean + res.stats.quarantined + res.stats.merged == 6


def test_duplicates_of_a_rejected_record_are_each_quarantined_and_faulty_rows_still_conflict():
    res = cleanse([{**BASE, "consumption_kwh": "-1"}] * 2)
    assert codes(res) == {1: ["NEGATIVE_VALUE"], 2: ["NEGATIVE_VALUE"]} and res.stats.merged == 0
    res = cleanse([{**BASE, "consumption_kwh": "-1"}, BASE])
    assert codes(res) == {1: ["NEGATIVE_VALUE", "DUPLICATE_PERIOD"], 2: ["DUPLICATE_PERIOD"]}


def test_rows_without_a_usable_key_take_no_part_in_duplicates():
    res = cleanse([BASE, {**BASE, "mpan_core": "123"}, {**BASE, "period_end_utc": "2026-03-10T12:31Z"}, {**BASE, "measurement_quantity": "Q"}])
    assert res.clean.num_rows == 1
    assert all("DUPLICATE_PERIOD" not in c for c in codes(res).values())


def test_quarantine_keeps_original_text_other_fields_and_routes():
    extra = {"other:meter_serial": ["M1", "M2", "M3"]}
    rows = [
        {**BASE, "mpan_core": f" {A[:4]} {A[4:]} ", "consumption_kwh": "-1", "quality": " a "},
        {**BASE, "mpan_core": LATE, "period_end_utc": "2026-07-01T10:00:00+01:00", "consumption_kwh": "99"},
        {**BASE, "period_end_utc": "2026-03-10T12:10Z"},
    ]
    res = cleanse(rows, extra)
    assert res.quarantine.schema == CONSUMPTION_QUARANTINE_SCHEMA
    q = {r["record"]: r for r in res.quarantine.to_pylist()}
    assert q[1]["mpan_core"] == f" {A[:4]} {A[4:]} " and q[1]["quality"] == " a "
    assert json.loads(q[1]["other_fields"]) == {"meter_serial": "M1"}
    assert (q[1]["route_supplier_id"], q[1]["route_data_service_id"], q[1]["route_ldso_id"]) == ("GRNX", "SDS1", "LOND")
    assert q[2]["reason_code"] == "BEYOND_PHYSICAL_BOUND" and q[2]["route_supplier_id"] == "BLUE" and q[2]["route_ldso_id"] == "MIDE"
    assert q[3]["reason_code"] == "OFF_HALF_HOUR" and q[3]["route_supplier_id"] == "GRNX"  # the day is still known
    for r in q.values():
        assert r["settlement_date"] == "" and r["estimation_reason"] == ""


def test_unknown_mpan_routes_to_its_ldso_only():
    q = cleanse([{**BASE, "mpan_core": STRANGER}]).quarantine.to_pylist()[0]
    assert (q["route_supplier_id"], q["route_data_service_id"], q["route_ldso_id"]) == (None, None, "LOND")


def test_repairs_are_counted_with_examples():
    rows = [
        {**BASE, "mpan_core": f"{A[:2]}-{A[2:]}", "measurement_quantity": "ai", "consumption_kwh": " 0.00051 "},
        {**BASE, "period_end_utc": "2026-03-10T14:00:00+01:00", "quality": "a"},
        {**BASE, "period_end_utc": "", "settlement_date": "20260310", "settlement_period": "28"},
    ]
    res = cleanse(rows)
    assert res.quarantine.num_rows == 0 and res.clean.num_rows == 3
    counts = res.stats.repairs.counts
    for key in [("MPAN_SEPARATORS", "mpan_core"), ("UPPER_CASE", "measurement_quantity"), ("UPPER_CASE", "quality"),
                ("TRIM_WHITESPACE", "consumption_kwh"), ("KWH_ROUNDED", "consumption_kwh"), ("TIMESTAMP_TO_UTC", "period_end_utc"),
                ("DATE_FORMAT", "settlement_date"), ("LOCAL_PERIOD_TO_UTC", "period_end_utc")]:  # fmt: skip
        assert counts.get(key) == 1, key
    assert counts[("DEFAULT_QUALITY", "quality")] == 2
    assert res.stats.repairs.examples[("TIMESTAMP_TO_UTC", "period_end_utc")][1:] == ("2026-03-10T14:00:00+01:00", "2026-03-10 13:00:00+00:00")
    assert res.clean.column("consumption_kwh").to_pylist()[0] == 0.001
    md = render_consumption_markdown(res.stats)
    assert "consumption rows in 3 = clean 3 + quarantined 0 + merged duplicates 0 — OK" in md and "LOCAL_PERIOD_TO_UTC" in md


def test_columns_may_be_absent_and_defaults_apply():
    t = pa.table({"mpan_core": [A], "settlement_date": ["2026-03-10"], "settlement_period": ["25"], "consumption_kwh": ["1"]})
    res = cleanse_consumption_records(t, REG)  # record numbers added, registrations as a table
    row = res.clean.to_pylist()[0]
    assert (row["measurement_quantity"], row["quality"], row["estimation_reason"]) == ("AI", "A", None)
    assert res.quarantine.num_rows == 0


def test_report_counts_reasons_and_participants():
    res = cleanse([{**BASE, "consumption_kwh": "-1", "period_end_utc": "2026-03-10T13:00Z"}, {**BASE, "mpan_core": LATE}, BASE, dict(BASE)])
    assert res.stats.to_dict() == {"rows_in": 4, "clean": 1, "quarantined": 2, "merged_duplicates": 1,
                                   "reasons": {"NEGATIVE_VALUE": 1, "NO_REGISTRATION_IN_FORCE": 1}}  # fmt: skip
    assert res.stats.participants[("supplier", "GRNX", "clean")] == 1
    assert res.stats.participant_reasons[("ldso", "MIDE", "NO_REGISTRATION_IN_FORCE")] == 1
    md = render_consumption_markdown(res.stats)
    assert "| NEGATIVE_VALUE | 1 |" in md and "| ldso | LOND | 1 | 1 | 1 |" in md


def test_reconciliation_error_when_counts_do_not_add_up():
    res = cleanse([BASE])
    res.stats.rows_in += 1
    with pytest.raises(ReconciliationError):
        res.stats.check_reconciliation()


def test_bounds_cover_every_connection_type():
    from mhhs_pipeline.core.market import CONNECTION_TYPES

    assert set(HALF_HOUR_BOUND_KWH) == set(CONNECTION_TYPES)
    assert HALF_HOUR_BOUND_KWH["W"] < HALF_HOUR_BOUND_KWH["L"] < HALF_HOUR_BOUND_KWH["H"] < HALF_HOUR_BOUND_KWH["E"]


def test_empty_registrations_make_every_mpan_unknown():
    res = cleanse_consumption_records(table([BASE]), REG.slice(0, 0))
    assert codes(res) == {1: ["UNKNOWN_MPAN"]}
