"""Cleansing rules on crafted records: every reason code, repairs, duplicates, overlaps,
provenance and the quarantine's original text (pure layer, no files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mhhs_pipeline.cleanse import (
    REASON_CODES,
    CleanseStats,
    ReconciliationError,
    RepairLog,
    bucket_of,
    cleanse_bucket,
    normalise,
)
from mhhs_pipeline.core.mpan import check_digit, is_valid_core
from mhhs_pipeline.core.schema import REGISTRATION_SCHEMA, same_columns

ROOT = Path(__file__).resolve().parents[1]


def mpan(first12: str) -> str:
    return first12 + str(check_digit(first12))


A = mpan("120000000001")  # London DNO (_C)
B = mpan("120000000002")
IDNO = mpan("240000000003")

BASE = {
    "mpan_core": A,
    "effective_from": "2026-01-01",
    "effective_to": "",
    "supplier_id": "GRNX",
    "data_service_id": "SDS1",
    "metering_service_id": "MSS1",
    "distributor_id": "12",
    "gsp_group": "_C",
    "market_segment": "S",
    "connection_type": "W",
    "energisation_status": "E",
    "energy_direction": "I",
    "domestic_premise": "true",
    "annual_consumption_kwh": "2700",
    "dcc_service_flag": "A",
    "archetype": "domestic_unrestricted",
    "linked_import_mpan": "",
}


def chunk(rows: list[dict], extra: dict[str, list[str]] | None = None) -> pa.Table:
    cols = {k: [r.get(k, "") for r in rows] for k in BASE}
    cols.update(extra or {})
    cols["record"] = list(range(1, len(rows) + 1))
    return pa.table(cols)


def cleanse(rows: list[dict], extra=None):
    log = RepairLog()
    result = cleanse_bucket(normalise(chunk(rows, extra), log))
    result.stats.repairs = log
    return result


# (overrides of one otherwise valid record, expected code) -- every code at least once.
CASES = [
    ({"mpan_core": ""}, "MISSING_FIELD"),
    ({"effective_from": " "}, "MISSING_FIELD"),
    ({"supplier_id": ""}, "MISSING_FIELD"),
    ({"data_service_id": ""}, "MISSING_FIELD"),
    ({"metering_service_id": ""}, "MISSING_FIELD"),
    ({"mpan_core": "12345"}, "MPAN_FORMAT"),
    ({"mpan_core": "1.20000000001E+12"}, "MPAN_FORMAT"),
    ({"mpan_core": A[:12] + str((int(A[12]) + 1) % 10)}, "MPAN_CHECK_DIGIT"),
    ({"effective_from": "2026-02-30"}, "BAD_DATE"),
    ({"effective_from": "31/12/2026"}, "BAD_DATE"),
    ({"effective_to": "2026-13-01"}, "BAD_DATE"),
    ({"effective_from": "0026-01-01"}, "BAD_DATE"),
    ({"effective_from": "2026-03-01", "effective_to": "2026-02-28"}, "EFFECTIVE_TO_BEFORE_FROM"),
    ({"distributor_id": "99"}, "UNKNOWN_DISTRIBUTOR"),
    ({"distributor_id": "012"}, "UNKNOWN_DISTRIBUTOR"),
    ({"mpan_core": mpan("990000000001"), "distributor_id": ""}, "UNKNOWN_DISTRIBUTOR"),
    ({"distributor_id": "14"}, "DISTRIBUTOR_MPAN_MISMATCH"),
    ({"gsp_group": "_A"}, "GSP_DISTRIBUTOR_MISMATCH"),
    ({"gsp_group": "_I"}, "UNKNOWN_GSP_GROUP"),
    ({"gsp_group": "_Z"}, "UNKNOWN_GSP_GROUP"),
    ({"market_segment": "X"}, "UNKNOWN_SEGMENT"),
    ({"connection_type": "Q"}, "UNKNOWN_CONNECTION_TYPE"),
    ({"energisation_status": "Z"}, "UNKNOWN_ENERGISATION"),
    ({"energy_direction": "B"}, "UNKNOWN_ENERGY_DIRECTION"),
    ({"dcc_service_flag": "Q"}, "UNKNOWN_DCC_FLAG"),
    ({"archetype": "spaceship"}, "UNKNOWN_ARCHETYPE"),
    ({"domestic_premise": "maybe"}, "BAD_DOMESTIC_FLAG"),
    ({"annual_consumption_kwh": "abc"}, "ANNUAL_KWH_NOT_NUMERIC"),
    ({"annual_consumption_kwh": "2,700"}, "ANNUAL_KWH_NOT_NUMERIC"),
    ({"annual_consumption_kwh": "nan"}, "ANNUAL_KWH_NOT_NUMERIC"),
    ({"annual_consumption_kwh": "-5"}, "ANNUAL_KWH_NEGATIVE"),
    ({"annual_consumption_kwh": "5000000"}, "ANNUAL_KWH_ABSURD"),  # whole current cannot carry 5 GWh
    ({"annual_consumption_kwh": "1e400"}, "ANNUAL_KWH_ABSURD"),
    ({"supplier_id": "GRNXX"}, "INVALID_SUPPLIER_ID"),
    ({"supplier_id": "../../x"}, "INVALID_SUPPLIER_ID"),
    ({"data_service_id": "SD 1"}, "INVALID_DATA_SERVICE_ID"),
    ({"metering_service_id": "MS_1"}, "INVALID_METERING_SERVICE_ID"),
    ({"supplier_id": "=cmd|' /C calc'!A0"}, "UNSAFE_VALUE"),
    ({"archetype": "@SUM(1+1)"}, "UNSAFE_VALUE"),
    ({"annual_consumption_kwh": "=1+2"}, "UNSAFE_VALUE"),
    ({"energisation_status": "E\x07"}, "UNSAFE_VALUE"),
    ({"linked_import_mpan": "123"}, "BAD_LINKED_MPAN"),
]


@pytest.mark.parametrize(("override", "code"), CASES, ids=[f"{c}-{i}" for i, (_, c) in enumerate(CASES)])
def test_each_rule_quarantines_with_its_code(override, code):
    res = cleanse([{**BASE, **override}])
    assert res.registrations.num_rows == 0
    assert res.quarantine.num_rows == 1
    row = res.quarantine.to_pylist()[0]
    codes = row["reason_code"].split(";")
    assert code in codes
    assert len(row["reason"].split(";")) == len(codes)  # texts aligned with codes
    for field, raw in override.items():
        assert row[field] == raw  # the original text, untouched


def test_every_reason_code_has_a_crafted_case():
    pair_codes = {"DUPLICATE_KEY", "OVERLAPPING_PERIOD"}  # need two records: tested below
    assert {c for _, c in CASES} | pair_codes == set(REASON_CODES)


def test_reason_codes_documented_exactly():
    doc = (ROOT / "docs" / "reason-codes.md").read_text()
    section = doc.split("## Reason codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| (.+?) \|", section, flags=re.M)
    assert dict(rows) == REASON_CODES


def test_valid_record_passes_untouched_as_actual():
    res = cleanse([BASE])
    assert res.quarantine.num_rows == 0
    reg = res.registrations.to_pylist()[0]
    assert reg["mpan_core"] == A and reg["supplier_id"] == "GRNX" and reg["provenance"] == "actual"
    assert reg["annual_consumption_kwh"] == 2700.0 and reg["effective_to"] is None
    assert same_columns(res.registrations.schema, REGISTRATION_SCHEMA) == []


def test_repairs_are_made_and_recorded():
    messy = {
        **BASE,
        "mpan_core": f" {A[:2]} {A[2:6]} {A[6:]} ",
        "effective_from": "20260101",
        "effective_to": "2026/06/30",
        "supplier_id": " grnx ",
        "gsp_group": "c",
        "market_segment": "s ",
        "domestic_premise": "Y",
        "archetype": "Domestic_Unrestricted",
        "distributor_id": "",
    }
    res = cleanse([messy])
    assert res.quarantine.num_rows == 0, res.quarantine.to_pylist()
    reg = res.registrations.to_pylist()[0]
    assert reg["mpan_core"] == A and reg["supplier_id"] == "GRNX" and reg["gsp_group"] == "_C"
    assert str(reg["effective_from"]) == "2026-01-01" and str(reg["effective_to"]) == "2026-06-30"
    assert reg["market_segment"] == "S" and reg["domestic_premise"] is True and reg["distributor_id"] == "12"
    assert reg["archetype"] == "domestic_unrestricted" and reg["provenance"] == "actual"
    repairs = {code for code, _ in res.stats.repairs.counts}
    assert repairs >= {
        "TRIM_WHITESPACE", "MPAN_SEPARATORS", "DATE_FORMAT", "UPPER_CASE", "LOWER_CASE",
        "GSP_UNDERSCORE", "BOOLEAN_FORMAT", "DISTRIBUTOR_DERIVED",
    }  # fmt: skip
    assert res.stats.repairs.examples[("DATE_FORMAT", "effective_from")] == (1, "20260101", "2026-01-01")


def test_dno_gsp_group_derived_not_manufactured():
    res = cleanse([{**BASE, "gsp_group": ""}])
    reg = res.registrations.to_pylist()[0]
    assert reg["gsp_group"] == "_C" and reg["provenance"] == "actual"
    assert res.stats.repairs.counts[("GSP_DERIVED", "gsp_group")] == 1


def test_exact_duplicates_merge_and_reconcile():
    rows = [BASE, {**BASE, "supplier_id": "grnx"}, {**BASE, "effective_from": "20260101"}]
    res = cleanse(rows)
    assert (res.registrations.num_rows, res.quarantine.num_rows, res.stats.merged) == (1, 0, 2)
    res.stats.check_reconciliation()
    assert res.stats.reconciliation_line() == "rows in 3 = clean 1 + quarantined 0 + merged duplicates 2"


def test_duplicates_of_a_rejected_record_are_each_quarantined():
    bad = {**BASE, "market_segment": "X"}
    res = cleanse([bad, bad])
    assert res.quarantine.column("record").to_pylist() == [1, 2]
    assert set(res.quarantine.column("reason_code").to_pylist()) == {"UNKNOWN_SEGMENT"}
    assert res.stats.merged == 0


def test_conflicting_duplicates_all_quarantined():
    res = cleanse([BASE, {**BASE, "supplier_id": "BLUE"}, {**BASE, "mpan_core": B}])
    assert res.registrations.column("mpan_core").to_pylist() == [B]
    assert res.quarantine.column("reason_code").to_pylist() == ["DUPLICATE_KEY", "DUPLICATE_KEY"]


def test_overlaps_quarantine_the_records_involved_only():
    rows = [
        {**BASE, "effective_from": "2026-01-01", "effective_to": "2026-01-10"},
        {**BASE, "effective_from": "2026-01-05", "effective_to": "2026-01-20", "supplier_id": "BLUE"},
        {**BASE, "effective_from": "2026-01-21", "supplier_id": "OKTO"},
        {**BASE, "mpan_core": B, "effective_from": "2026-01-01", "effective_to": "2026-01-10"},
        {**BASE, "mpan_core": B, "effective_from": "2026-01-11", "supplier_id": "BLUE"},  # adjacent: fine
    ]
    res = cleanse(rows)
    assert res.quarantine.column("record").to_pylist() == [1, 2]
    assert set(res.quarantine.column("reason_code").to_pylist()) == {"OVERLAPPING_PERIOD"}
    assert res.registrations.num_rows == 3


def test_open_registration_overlaps_any_later_one():
    rows = [BASE, {**BASE, "effective_from": "2027-06-01", "supplier_id": "BLUE"}]
    res = cleanse(rows)
    assert res.quarantine.column("reason_code").to_pylist() == ["OVERLAPPING_PERIOD"] * 2


def test_record_rejected_for_another_fault_still_takes_part_in_overlaps():
    rows = [BASE, {**BASE, "effective_from": "2026-02-01", "supplier_id": "=BAD"}]
    res = cleanse(rows)
    codes = dict(zip(res.quarantine.column("record").to_pylist(), res.quarantine.column("reason_code").to_pylist(), strict=True))
    assert codes[1] == "OVERLAPPING_PERIOD"
    assert set(codes[2].split(";")) == {"INVALID_SUPPLIER_ID", "UNSAFE_VALUE", "OVERLAPPING_PERIOD"}


def test_never_guess_a_different_mpan():
    wrong = A[:12] + str((int(A[12]) + 1) % 10)
    res = cleanse([{**BASE, "mpan_core": wrong}, {**BASE, "mpan_core": B}])
    assert res.registrations.column("mpan_core").to_pylist() == [B]
    assert res.quarantine.column("mpan_core").to_pylist() == [wrong]
    assert not is_valid_core(wrong)


def test_missing_attributes_are_manufactured_and_marked():
    sparse = {k: v for k, v in BASE.items() if k in ("mpan_core", "effective_from", "supplier_id", "data_service_id", "metering_service_id")}
    res = cleanse([sparse, {**sparse, "mpan_core": IDNO}])
    regs = {r["mpan_core"]: r for r in res.registrations.to_pylist()}
    for r in regs.values():
        assert r["provenance"] == "manufactured"
        assert r["market_segment"] == "S" and r["connection_type"] == "W" and r["energy_direction"] == "I"
        assert r["energisation_status"] == "E" and r["dcc_service_flag"] in ("A", "I", "N")
        assert 50 <= r["annual_consumption_kwh"] <= 1e6
        assert r["archetype"] in ("domestic_unrestricted", "domestic_economy7", "domestic_electric_heating",
                                  "domestic_heat_pump", "domestic_ev", "domestic_low_user", "office", "retail",
                                  "industrial_1_shift", "industrial_2_shift", "industrial_3_shift", "always_on",
                                  "school", "agricultural")  # fmt: skip
    assert regs[A]["gsp_group"] == "_C"  # a DNO's group follows from the distributor
    assert regs[IDNO]["gsp_group"] in ("_A", "_B", "_C", "_D", "_E", "_F", "_G", "_H", "_J", "_K", "_L", "_M", "_N", "_P")
    assert res.stats.manufactured_fields["archetype"] == 2
    again = cleanse([sparse, {**sparse, "mpan_core": IDNO}])
    assert again.registrations.equals(res.registrations)  # keyed by MPAN: same values every run


def test_manufacturing_prefers_the_mpans_own_records():
    first = {**BASE, "effective_to": "2026-01-31", "archetype": "domestic_ev", "annual_consumption_kwh": "4321"}
    second = {**BASE, "effective_from": "2026-02-01", "supplier_id": "BLUE", "archetype": "", "annual_consumption_kwh": ""}
    res = cleanse([first, second])
    r1, r2 = res.registrations.to_pylist()
    assert (r2["archetype"], r2["annual_consumption_kwh"], r2["provenance"]) == ("domestic_ev", 4321.0, "manufactured")
    assert r1["provenance"] == "actual"


def test_a_records_own_values_beat_its_mpans_other_records():
    first = {**BASE, "effective_to": "2026-01-31"}  # S / W
    second = {**BASE, "effective_from": "2026-02-01", "market_segment": "", "connection_type": "L", "annual_consumption_kwh": "90000"}
    r1, r2 = cleanse([first, second]).registrations.to_pylist()
    assert (r2["market_segment"], r2["connection_type"], r2["provenance"]) == ("A", "L", "manufactured")
    assert r1["market_segment"] == "S"


def test_export_mpan_manufactured_as_pv_export():
    res = cleanse([{**BASE, "mpan_core": B, "linked_import_mpan": A, "energy_direction": "", "archetype": "",
                    "annual_consumption_kwh": "", "domestic_premise": ""}])  # fmt: skip
    reg = res.registrations.to_pylist()[0]
    assert (reg["energy_direction"], reg["archetype"], reg["domestic_premise"]) == ("E", "pv_export", True)


def test_quarantine_carries_original_fields_and_routes():
    rows = [{**BASE, "supplier_id": " blue ", "market_segment": "x", "mpan_core": f" {A} "}]
    res = cleanse(rows, extra={"other:comment": ["keep me"]})
    q = res.quarantine.to_pylist()[0]
    assert q["supplier_id"] == " blue " and q["mpan_core"] == f" {A} " and q["market_segment"] == "x"
    assert json.loads(q["other_fields"]) == {"comment": "keep me"}
    assert (q["route_supplier_id"], q["route_data_service_id"], q["route_ldso_id"]) == ("BLUE", "SDS1", "LOND")
    assert q["record"] == 1 and q["reason_code"] == "UNKNOWN_SEGMENT"


def test_unsafe_ids_are_not_routes():
    res = cleanse([{**BASE, "supplier_id": "../../x"}, {**BASE, "mpan_core": B, "supplier_id": "=cmd|' /C calc'!A0"}])
    assert res.quarantine.column("route_supplier_id").to_pylist() == [None, None]
    assert ("supplier", "(unidentified)", "quarantined") in res.stats.participants


def test_bucketing_keeps_an_mpans_records_together_and_is_stable():
    t = normalise(chunk([BASE, {**BASE, "effective_from": "2026-02-01"}, {**BASE, "mpan_core": B}, {**BASE, "mpan_core": "bad"}]))
    b1, b2 = bucket_of(t, 7), bucket_of(t, 7)
    assert (b1 == b2).all() and b1[0] == b1[1] and ((0 <= b1) & (b1 < 7)).all()


def test_reconciliation_error_when_counts_do_not_add_up():
    stats = CleanseStats(rows_in=3, clean=1, quarantined=1, merged=0)
    with pytest.raises(ReconciliationError, match="rows in 3"):
        stats.check_reconciliation()


def test_report_neutralises_quoted_input():
    from mhhs_pipeline.cleanse.report import render_markdown, safe_text

    assert safe_text("=cmd|x") == "'=cmd\\|x"
    res = cleanse([{**BASE, "supplier_id": " =x|y "}])
    md = render_markdown(res.stats)
    assert "`'=x\\|y`" in md and "| =x" not in md
    assert "rows in 1 = clean 0 + quarantined 1 + merged duplicates 0" in md


def test_masks_survive_many_codes_on_one_record():
    everything = {k: "=" for k in BASE}
    res = cleanse([everything])
    codes = res.quarantine.column("reason_code").to_pylist()[0].split(";")
    assert len(codes) == len(set(codes)) >= 10
    assert np.all(res.quarantine.column("record").to_numpy() == [1])
