"""IF-021 encoder against the Elexon DIP schemas (read from the reference folder, MHHS_REFERENCE_DIR/dip, at test time).

The DIP files are OpenAPI 3.0 documents whose ``$ref``s point at the upstream raw GitHub
URLs; they are registered here under those URLs so every reference resolves to the local
copy. OpenAPI 3.0 schema objects are JSON Schema draft 4/5 plus ``nullable``, which is
translated the way OpenAPI 3.0.3 defines it (``nullable: true`` adds ``"null"`` to the
type; an ``enum`` must list ``null`` itself) before validating with ``Draft4Validator``.
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import io
import json
import re
from collections import Counter

import jsonschema
import numpy as np
import pyarrow as pa
import pytest
import referencing
import referencing.jsonschema
import yaml
from conftest import reference_dir
from hypothesis import given, settings
from hypothesis import strategies as st

from mhhs_pipeline.core.calendar import settlement_grid
from mhhs_pipeline.core.mpan import check_digit
from mhhs_pipeline.core.schema import CONSUMPTION_SCHEMA
from mhhs_pipeline.formats import if021
from mhhs_pipeline.formats.if021 import dip_participant_id, encode_if021

UPSTREAM = "https://raw.githubusercontent.com/elexon-data/dip-api-documentation/main/"
SENDER_TS = dt.datetime(2026, 11, 2, 9, 15, 30, 123456, tzinfo=dt.UTC)
UTC_DAY = dt.timedelta(days=1)
HALF_HOUR = dt.timedelta(minutes=30)


# --------------------------------------------------------------------------- schema loading


def _openapi_to_jsonschema(node):
    """OpenAPI 3.0 schema object -> JSON Schema (draft 4): ``nullable: true`` adds null."""
    if isinstance(node, dict):
        out = {k: _openapi_to_jsonschema(v) for k, v in node.items()}
        if out.pop("nullable", False) is True and "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"] if "null" not in types else types
        return out
    if isinstance(node, list):
        return [_openapi_to_jsonschema(v) for v in node]
    return node


@pytest.fixture(scope="module")
def dip_docs() -> dict[str, dict]:
    """The raw DIP YAML documents by file name."""
    return {
        p.name: yaml.load(
            p.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )
        for p in sorted(reference_dir("dip").glob("*.yaml"))
    }


@pytest.fixture(scope="module")
def registry(dip_docs) -> referencing.Registry:
    resources = [
        (
            UPSTREAM + name,
            referencing.jsonschema.DRAFT4.create_resource(_openapi_to_jsonschema(doc)),
        )
        for name, doc in dip_docs.items()
    ]
    return referencing.Registry().with_resources(resources)


def _validator(registry, ref: str) -> jsonschema.Draft4Validator:
    schema = {"$ref": ref}
    return jsonschema.Draft4Validator(schema, registry=registry)


@pytest.fixture(scope="module")
def payload_validator(registry):
    """IF-021-Payload (one message's ``payload``)."""
    return _validator(
        registry,
        UPSTREAM + "Interfaces-EventCodes-unresolved.yaml#/components/schemas/IF-021-Payload",
    )


@pytest.fixture(scope="module")
def body_validators(registry, dip_docs):
    """The request-body schemas of the DIP validation endpoints for IF-021, by event code."""
    out = {}
    for event in ("ActivePower", "ReactivePower"):
        path = f"/validate/IF-021/{event}"
        # Fail loudly if the endpoint disappears from the spec rather than validate nothing.
        assert path in dip_docs["SubmitEvents-unresolved.yaml"]["paths"]
        pointer = "/paths/" + path.replace("~", "~0").replace("/", "~1")
        pointer += "/post/requestBody/content/application~1json/schema"
        out[f"[{event}]"] = _validator(
            registry, UPSTREAM + "SubmitEvents-unresolved.yaml#" + pointer
        )
    return out


def _schema(dip_docs, file: str, name: str) -> dict:
    return dip_docs[file]["components"]["schemas"][name]


# --------------------------------------------------------------------------- test data


def _core(distributor: str, unique: int) -> str:
    first12 = f"{distributor}{unique:010d}"
    return f"{first12}{check_digit(first12)}"


MPAN_LONDON = _core("12", 1234567)  # smart, whole current
MPAN_SCOT = _core("17", 7654321)  # advanced, LV CT
MPAN_EXPORT = _core("20", 5550001)  # export, whole current
MPAN_IDNO = _core("28", 42)  # iDNO id not in the embedded table


def _series(mpan: str, mq: str, first: dt.date, last: dt.date, seed: int) -> pa.Table:
    grid = settlement_grid(first, last)
    n = len(grid.period_end_utc)
    rng = np.random.default_rng(seed)
    kwh = np.round(rng.gamma(2.0, 0.25, n) * (10 if mq.startswith("R") else 1), 3)
    quality = np.full(n, "A", dtype=object)
    reason = np.full(n, None, dtype=object)
    zero = rng.random(n) < 0.05
    kwh[zero] = 0.0
    estimate = rng.random(n) < 0.1
    quality[estimate] = "E"
    reason[estimate] = 2
    kwh[:3] = [0.0, 0.001, 123456.789]  # bounds of the formatting
    return pa.table(
        {
            "mpan_core": pa.array([mpan] * n, pa.string()),
            "measurement_quantity": pa.array([mq] * n, pa.string()),
            "period_end_utc": pa.array(grid.period_end_utc, pa.timestamp("us", tz="UTC")),
            "settlement_date": pa.array(grid.settlement_date_local, pa.date32()),
            "settlement_period": pa.array(grid.settlement_period_local, pa.int16()),
            "consumption_kwh": pa.array(kwh, pa.float64()),
            "quality": pa.array(quality, pa.string()),
            "estimation_reason": pa.array(reason, pa.int16()),
            "provenance": pa.array(["manufactured"] * n, pa.string()),
        },
        schema=CONSUMPTION_SCHEMA,
    )


@pytest.fixture(scope="module")
def consumption() -> pa.Table:
    """Several MPANs and all four MQs; one series spans both 2026 clock changes (215 UTC days)."""
    spring = (dt.date(2026, 3, 27), dt.date(2026, 3, 31))
    autumn = (dt.date(2026, 10, 23), dt.date(2026, 10, 27))
    parts = [
        _series(MPAN_LONDON, "AI", dt.date(2026, 3, 27), dt.date(2026, 10, 27), 1),
        _series(MPAN_LONDON, "RI", *spring, 2),
        _series(MPAN_SCOT, "AI", *spring, 3),
        _series(MPAN_SCOT, "AI", *autumn, 4),  # same series, a gap of days in one message
        _series(MPAN_SCOT, "RE", *autumn, 5),
        _series(MPAN_EXPORT, "AE", *autumn, 6),
        _series(MPAN_EXPORT, "RE", *spring, 7),
        _series(MPAN_IDNO, "AI", dt.date(2026, 10, 25), dt.date(2026, 10, 25), 8),
    ]
    table = pa.concat_tables(parts)
    # Shuffle: the encoder must not rely on input order.
    order = np.random.default_rng(99).permutation(table.num_rows)
    return table.take(pa.array(order))


@pytest.fixture(scope="module")
def mpan_info() -> pa.Table:
    return pa.table(
        {
            "mpan_core": [MPAN_LONDON, MPAN_SCOT, MPAN_EXPORT, MPAN_IDNO, _core("10", 1)],
            "distributor_id": ["12", "17", "20", "28", "10"],
            "gsp_group": ["_C", "_P", "_H", "_J", "_A"],
            "data_service_id": ["SDS1", "ADSX", "SDS1", "SDS2", "ZZZZ"],
            "connection_type": ["W", "L", "W", "W", "W"],
            "connection_type_effective_from": pa.array(
                [
                    dt.date(2019, 5, 1),
                    dt.date(2021, 1, 1),
                    dt.date(2024, 6, 30),
                    dt.date(2025, 1, 1),
                    dt.date(2020, 1, 1),
                ],
                pa.date32(),
            ),
        }
    )


@pytest.fixture(scope="module")
def encoded(consumption, mpan_info) -> tuple[bytes, int]:
    return encode_if021(
        consumption, mpan_info, sender_timestamp_utc=SENDER_TS, environment_tag="SIT"
    )


@pytest.fixture(scope="module")
def messages(encoded) -> list[dict]:
    return json.loads(encoded[0])


def _periods(messages: list[dict]):
    """(mpan, mq, sp, v, q, e) for every period of every message, in output order."""
    for message in messages:
        payload = message["payload"]
        mpan = payload["CommonBlock"]["M0"]["MPANCore"]
        b900 = payload["CustomBlock"]["B900"]
        mq = b900["MQID"]["measurementQuantityID"]
        for day in b900["settlementDayConsumptionPeriods"]:
            for p in day["consumptionPeriods"]:
                yield (mpan, mq, p["sp"], p["v"], p["q"], p["e"])


def _canonical_rows(table: pa.Table):
    cols = table.to_pydict()
    for mpan, mq, end, kwh, q, e in zip(
        cols["mpan_core"], cols["measurement_quantity"], cols["period_end_utc"],
        cols["consumption_kwh"], cols["quality"], cols["estimation_reason"], strict=True,
    ):  # fmt: skip
        yield (mpan, mq, end.astimezone(dt.UTC).isoformat(), kwh, q, e)


# --------------------------------------------------------------------------- tests


def test_module_constants_match_the_spec(dip_docs):
    dc, types = "DataCatalogue-unresolved.yaml", "DataTypes-unresolved.yaml"
    assert (
        list(if021.QUALITY_CODES)
        == _schema(dip_docs, dc, "DI-083-Settlement-Period-Quality-Indicator")["enum"]
    )
    assert (
        list(if021.CONNECTION_TYPE_CODES)
        == _schema(dip_docs, dc, "DI-015-Connection-Type-Indicator")["enum"]
    )
    reasons = _schema(dip_docs, dc, "DI-076-Estimation-Reason-Code")["enum"]
    assert [str(r) for r in if021.ESTIMATION_REASON_CODES] + [None] == reasons
    assert list(if021.ENVIRONMENT_TAGS) == _schema(dip_docs, types, "DT-013-EnvironmentTag")["enum"]
    assert (
        if021.SENDER_UNIQUE_REFERENCE_PATTERN
        == _schema(dip_docs, types, "DT-995-SenderUniqueReference")["pattern"]
    )
    b900 = _schema(dip_docs, "RealCommonBlocks-unresolved.yaml", "B900")
    assert (
        if021.MAX_DAYS_PER_MESSAGE
        == b900["properties"]["settlementDayConsumptionPeriods"]["maxItems"]
    )
    s0 = _schema(dip_docs, "Interfaces-EventCodes-unresolved.yaml", "IF-021-Payload")["properties"][
        "CommonBlock"
    ]["properties"]["S0"]
    assert s0["properties"]["interfaceID"]["enum"] == [if021.INTERFACE_ID]
    assert s0["properties"]["schemaVersion"]["enum"] == [if021.SCHEMA_VERSION]
    assert set(if021.EVENT_CODES.values()) == set(s0["properties"]["eventCode"]["enum"])
    mqs = _schema(dip_docs, dc, "DI-052-Measurement-Quantity-ID")["enum"]
    assert set(if021.EVENT_CODES) == set(mqs)


def test_every_message_is_valid(messages, body_validators):
    """The whole body, per event code, against the spec's own IF-021 validation endpoint schema."""
    assert messages
    assert all(set(message) == {"payload"} for message in messages)
    by_event: dict[str, list[dict]] = {}
    for message in messages:
        by_event.setdefault(message["payload"]["CommonBlock"]["S0"]["eventCode"], []).append(
            message
        )
    assert set(by_event) == {"[ActivePower]", "[ReactivePower]"}
    for event, group in by_event.items():
        errors = list(body_validators[event].iter_errors(group))
        assert not errors, errors[0]


def test_every_value_round_trips(consumption, encoded, messages):
    body, n_values = encoded
    assert n_values == consumption.num_rows
    got = list(_periods(messages))
    assert len(got) == consumption.num_rows
    got_rows = sorted(
        (m, mq, sp, float(v), q, None if e is None else int(e)) for m, mq, sp, v, q, e in got
    )
    want_rows = sorted(_canonical_rows(consumption))
    assert got_rows == want_rows
    # The text too: exactly three decimals of the canonical value.
    want_text = {
        (m, mq, sp): f"{kwh:.3f}" for m, mq, sp, kwh, _q, _e in _canonical_rows(consumption)
    }
    assert all(want_text[(m, mq, sp)] == v for m, mq, sp, v, _q, _e in got)
    # The data really contains what the brief asks for.
    quality_reason = Counter((q, e) for *_x, q, e in got)
    assert quality_reason[("E", "2")] > 0 and quality_reason[("A", None)] > 0
    assert set(quality_reason) == {("E", "2"), ("A", None)}
    assert any(v == "0.000" for *_x, v, _q, _e in got)


def test_days_periods_and_datetimes(messages):
    stamp = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00\+00:00$")
    for message in messages:
        common = message["payload"]["CommonBlock"]
        assert common["S1"]["senderTimestamp"] == "2026-11-02T09:15:30+00:00"
        b900 = message["payload"]["CustomBlock"]["B900"]
        previous_day = None
        for day in b900["settlementDayConsumptionPeriods"]:
            date_text = day["settlementDay"]["settlementDayDate"]
            assert date_text.endswith("T00:00:00+00:00") and len(date_text) == 25
            assert day["settlementDay"]["periodDuration"] == 30
            day_start = dt.datetime.fromisoformat(date_text)
            assert previous_day is None or day_start > previous_day
            previous_day = day_start
            ends = [dt.datetime.fromisoformat(p["sp"]) for p in day["consumptionPeriods"]]
            assert all(stamp.match(p["sp"]) for p in day["consumptionPeriods"])
            assert ends == sorted(ends) and len(set(ends)) == len(ends) <= 48
            assert all(day_start < end <= day_start + UTC_DAY for end in ends)
            assert all((end - HALF_HOUR).date() == day_start.date() for end in ends)
            # Clock-change days are still 48 UTC half hours; first period ends at 00:30 UTC.
            if len(ends) == 48:
                assert ends[0] == day_start + HALF_HOUR and ends[-1] == day_start + UTC_DAY
    days = {
        (m["payload"]["CommonBlock"]["M0"]["MPANCore"], d["settlementDay"]["settlementDayDate"])
        for m in messages
        for d in m["payload"]["CustomBlock"]["B900"]["settlementDayConsumptionPeriods"]
    }
    assert (MPAN_LONDON, "2026-03-29T00:00:00+00:00") in days
    assert (MPAN_LONDON, "2026-10-25T00:00:00+00:00") in days


def test_long_series_split_into_messages_of_at_most_200_days(messages):
    london_ai = [
        m["payload"]["CustomBlock"]["B900"]["settlementDayConsumptionPeriods"]
        for m in messages
        if m["payload"]["CommonBlock"]["M0"]["MPANCore"] == MPAN_LONDON
        and m["payload"]["CustomBlock"]["B900"]["MQID"]["measurementQuantityID"] == "AI"
    ]
    assert [len(days) for days in london_ai] == [200, 15]  # 27 Mar .. 27 Oct 2026 = 215 days
    assert london_ai[0][0]["settlementDay"]["settlementDayDate"] == "2026-03-27T00:00:00+00:00"
    assert london_ai[1][0]["settlementDay"]["settlementDayDate"] == "2026-10-13T00:00:00+00:00"
    # One message per MPAN x MQ otherwise (gaps between days are fine within a message).
    keys = Counter(
        (
            m["payload"]["CommonBlock"]["M0"]["MPANCore"],
            m["payload"]["CustomBlock"]["B900"]["MQID"]["measurementQuantityID"],
        )
        for m in messages
    )
    assert keys == Counter(
        {(MPAN_LONDON, "AI"): 2, (MPAN_LONDON, "RI"): 1, (MPAN_SCOT, "AI"): 1, (MPAN_SCOT, "RE"): 1,
         (MPAN_EXPORT, "AE"): 1, (MPAN_EXPORT, "RE"): 1, (MPAN_IDNO, "AI"): 1}
    )  # fmt: skip


def test_smaller_message_size_and_order(consumption, mpan_info, payload_validator):
    body, n = encode_if021(
        consumption, mpan_info, sender_timestamp_utc=SENDER_TS, max_days_per_message=7
    )
    msgs = json.loads(body)
    for i, m in enumerate(msgs):
        if i < 5:  # the full body is validated above; validation is slow
            payload_validator.validate(m["payload"])
        assert 1 <= len(m["payload"]["CustomBlock"]["B900"]["settlementDayConsumptionPeriods"]) <= 7
    assert sum(1 for _ in _periods(msgs)) == n == consumption.num_rows
    order = [
        (m["payload"]["CommonBlock"]["M0"]["MPANCore"],
         "AI AE RI RE".split().index(m["payload"]["CustomBlock"]["B900"]["MQID"]["measurementQuantityID"]),
         m["payload"]["CustomBlock"]["B900"]["settlementDayConsumptionPeriods"][0]["settlementDay"]["settlementDayDate"])
        for m in msgs
    ]  # fmt: skip
    assert order == sorted(order)


def test_sender_unique_reference_unique_and_valid(messages, dip_docs):
    pattern = re.compile(
        _schema(dip_docs, "DataTypes-unresolved.yaml", "DT-995-SenderUniqueReference")["pattern"]
    )
    refs = [m["payload"]["CommonBlock"]["S1"]["senderUniqueReference"] for m in messages]
    assert len(set(refs)) == len(refs)
    for message, ref in zip(messages, refs, strict=True):
        assert pattern.match(ref)
        s1 = message["payload"]["CommonBlock"]["S1"]
        assert ref.startswith(f"S-IF-021-{s1['senderDIPID']}-{s1['senderRoleID']}-20261102-")


def test_participants_and_roles(messages):
    by_mpan = {m["payload"]["CommonBlock"]["M0"]["MPANCore"]: m["payload"] for m in messages}
    london = by_mpan[MPAN_LONDON]
    assert london["CommonBlock"]["S1"]["senderRoleID"] == "SDS"
    assert london["CommonBlock"]["S1"]["senderDIPID"] == dip_participant_id("SDS1", "SDS")
    assert london["CustomBlock"]["B044"]["issuingDataServiceDIPID"] == dip_participant_id(
        "SDS1", "SDS"
    )
    assert london["CommonBlock"]["M0"] == {
        "MPANCore": MPAN_LONDON, "distributorDIPID": dip_participant_id("LOND", "LDSO"), "GSPGroupID": "_C",
    }  # fmt: skip
    assert london["CustomBlock"]["B067"] == {
        "connectionTypeIndicator": "W", "connectionTypeEffectiveFromDate": "2019-05-01T00:00:00+00:00",
    }  # fmt: skip
    scot = by_mpan[MPAN_SCOT]
    assert scot["CommonBlock"]["S1"]["senderRoleID"] == "ADS"
    assert scot["CommonBlock"]["M0"]["distributorDIPID"] == dip_participant_id("HYDE", "LDSO")
    assert by_mpan[MPAN_IDNO]["CommonBlock"]["M0"]["distributorDIPID"] == dip_participant_id(
        "0028", "LDSO"
    )
    s1 = london["CommonBlock"]["S1"]
    assert (
        s1["subText"] is None
        and s1["senderCorrelationID"] is None
        and s1["DIPConnectionProviderID"] is None
    )
    assert s1["environmentTag"] == "SIT"


def test_dip_participant_ids():
    ids = {
        dip_participant_id(mpid, role)
        for mpid in ("LOND", "0000", "ZZZZ", "A1B2")
        for role in if021.DIP_ROLE_PREFIX
    }
    assert len(ids) == 4 * len(if021.DIP_ROLE_PREFIX)
    assert all(len(i) == 10 and i.isdigit() for i in ids)
    assert dip_participant_id("LOND", "LDSO") == "2501011721"
    for bad in ("lond", "LON", "LOND1", "LO-D"):
        with pytest.raises(ValueError):
            dip_participant_id(bad, "SDS")
    with pytest.raises(ValueError):
        dip_participant_id("LOND", "XYZ")


def test_market_segment_column_picks_the_role(consumption, mpan_info):
    info = mpan_info.append_column("market_segment", pa.array(["A", "S", "S", "S", "S"]))
    msgs = json.loads(encode_if021(consumption, info, sender_timestamp_utc=SENDER_TS)[0])
    roles = {
        m["payload"]["CommonBlock"]["M0"]["MPANCore"]: m["payload"]["CommonBlock"]["S1"][
            "senderRoleID"
        ]
        for m in msgs
    }
    assert roles[MPAN_LONDON] == "ADS" and roles[MPAN_SCOT] == "SDS"


def test_deterministic_and_order_independent(consumption, mpan_info, encoded):
    reordered = consumption.take(
        pa.array(np.random.default_rng(5).permutation(consumption.num_rows))
    )
    half = reordered.num_rows // 2
    chunks = []
    for part in (reordered.slice(0, half), reordered.slice(half)):  # two chunks, two dictionaries
        for name in ("mpan_core", "quality"):
            i = part.schema.get_field_index(name)
            part = part.set_column(i, name, part.column(name).dictionary_encode())
        chunks.append(part)
    chunked = pa.concat_tables(chunks)
    assert chunked.column("quality").num_chunks == 2
    again, _ = encode_if021(
        chunked, mpan_info, sender_timestamp_utc=SENDER_TS, environment_tag="SIT"
    )
    assert again == encoded[0]
    later, _ = encode_if021(
        consumption,
        mpan_info,
        sender_timestamp_utc=SENDER_TS + dt.timedelta(seconds=1),
        environment_tag="SIT",
    )
    refs = {
        m["payload"]["CommonBlock"]["S1"]["senderUniqueReference"] for m in json.loads(encoded[0])
    }
    assert refs.isdisjoint(
        m["payload"]["CommonBlock"]["S1"]["senderUniqueReference"] for m in json.loads(later)
    )
    # Same MPAN, MQ, days and sender timestamp but one value changed: a new reference.
    bumped = consumption.set_column(
        5, "consumption_kwh", pa.array(np.asarray(consumption.column("consumption_kwh")) + 0.001)
    )
    changed, _ = encode_if021(
        bumped, mpan_info, sender_timestamp_utc=SENDER_TS, environment_tag="SIT"
    )
    assert refs.isdisjoint(
        m["payload"]["CommonBlock"]["S1"]["senderUniqueReference"] for m in json.loads(changed)
    )


def _mutate(message: dict, path: tuple, value) -> dict:
    broken = copy.deepcopy(message)
    node = broken["payload"]
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return broken


PERIOD = ("CustomBlock", "B900", "settlementDayConsumptionPeriods", 0, "consumptionPeriods", 0)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ((*PERIOD, "v"), "1.23"),  # two decimals
        ((*PERIOD, "v"), 1.234),  # a number, not a string
        ((*PERIOD, "sp"), "2026-03-29T00:30:00Z"),  # not 25 characters
        ((*PERIOD, "e"), 2),  # reason must be a string code
        ((*PERIOD, "q"), "X"),  # not a DI-083 code
        ((*PERIOD, "arc"), KeyError),  # required even when null
        ((*PERIOD, "extra"), None),  # additionalProperties: false
        (("CommonBlock", "S1", "environmentTag"), "TEST"),  # not a DT-013 tag
        (("CommonBlock", "S1", "senderUniqueReference"), "S-IF-021-XYZ-SDS-20260101-1"),
        (("CommonBlock", "S1", "subText"), KeyError),  # nullable but required
        (("CommonBlock", "S0", "schemaVersion"), "010"),
        (("CommonBlock", "M0", "distributorDIPID"), "LOND"),
        (
            (
                "CustomBlock",
                "B900",
                "settlementDayConsumptionPeriods",
                0,
                "settlementDay",
                "periodDuration",
            ),
            60,
        ),
        (("CustomBlock", "B900", "MQID"), "AI"),  # an object, not a bare code
    ],
)
def test_validator_rejects_broken_messages(
    messages, payload_validator, body_validators, path, value
):
    message = min(messages, key=lambda m: len(json.dumps(m)))  # small: validation is slow
    payload_validator.validate(message["payload"])
    broken = _mutate(message, path, value)
    with pytest.raises(jsonschema.ValidationError):
        payload_validator.validate(broken["payload"])
    with pytest.raises(jsonschema.ValidationError):
        body_validators["[ActivePower]"].validate([broken])


def test_validator_rejects_too_many_days(messages, payload_validator):
    message = min(messages, key=lambda m: len(json.dumps(m)))
    day = message["payload"]["CustomBlock"]["B900"]["settlementDayConsumptionPeriods"][0]
    one_period_day = {**day, "consumptionPeriods": day["consumptionPeriods"][:1]}
    path = ("CustomBlock", "B900", "settlementDayConsumptionPeriods")
    payload_validator.validate(_mutate(message, path, [one_period_day] * 200)["payload"])
    with pytest.raises(jsonschema.ValidationError):
        payload_validator.validate(_mutate(message, path, [one_period_day] * 201)["payload"])


def _one_day(kwh, quality=None, reason=None, mpan=MPAN_LONDON, mq="AI") -> pa.Table:
    grid = settlement_grid(dt.date(2026, 10, 25), dt.date(2026, 10, 25))
    n = len(kwh)
    return pa.table(
        {
            "mpan_core": [mpan] * n,
            "measurement_quantity": [mq] * n,
            "period_end_utc": pa.array(grid.period_end_utc[:n], pa.timestamp("us", tz="UTC")),
            "settlement_date": pa.array(grid.settlement_date_local[:n], pa.date32()),
            "settlement_period": pa.array(grid.settlement_period_local[:n], pa.int16()),
            "consumption_kwh": pa.array(kwh, pa.float64()),
            "quality": quality or ["A"] * n,
            "estimation_reason": pa.array(reason or [None] * n, pa.int16()),
            "provenance": ["actual"] * n,
        },
        schema=CONSUMPTION_SCHEMA,
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-999_999_999_999, 999_999_999_999), min_size=1, max_size=48))
def test_value_text_is_exact(milli_kwh):
    table = _one_day([m / 1000 for m in milli_kwh])
    info = pa.table({
        "mpan_core": [MPAN_LONDON], "distributor_id": ["12"], "gsp_group": ["_C"], "data_service_id": ["SDS1"],
        "connection_type": ["W"], "connection_type_effective_from": pa.array([dt.date(2020, 1, 1)], pa.date32()),
    })  # fmt: skip
    body, n = encode_if021(table, info, sender_timestamp_utc=SENDER_TS)
    values = [v for *_x, v, _q, _e in _periods(json.loads(body))]
    assert n == len(values) == len(milli_kwh)
    assert [decimal.Decimal(v) for v in values] == [decimal.Decimal(m) / 1000 for m in milli_kwh]
    assert all(re.match(r"^-?\d{1,9}\.\d{3}$", v) for v in values)


def test_rejects_bad_input(mpan_info):
    good = _one_day([1.0, 2.0])
    kw = {"sender_timestamp_utc": SENDER_TS}
    with pytest.raises(ValueError, match="environment_tag"):
        encode_if021(good, mpan_info, environment_tag="TEST", **kw)
    with pytest.raises(ValueError, match="max_days"):
        encode_if021(good, mpan_info, max_days_per_message=201, **kw)
    with pytest.raises(ValueError, match="timezone-aware"):
        encode_if021(good, mpan_info, sender_timestamp_utc=dt.datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="duplicate"):
        encode_if021(pa.concat_tables([good, good]), mpan_info, **kw)
    with pytest.raises(ValueError, match="no row for MPAN"):
        encode_if021(_one_day([1.0], mpan=_core("14", 9)), mpan_info, **kw)
    with pytest.raises(ValueError, match="DI-083"):
        encode_if021(_one_day([1.0], quality=["Q"]), mpan_info, **kw)
    with pytest.raises(ValueError, match="DI-076"):
        encode_if021(_one_day([1.0], quality=["E"], reason=[11]), mpan_info, **kw)
    with pytest.raises(ValueError, match="9,3"):
        encode_if021(_one_day([1e9]), mpan_info, **kw)
    with pytest.raises(ValueError, match="NaN"):
        encode_if021(_one_day([float("nan")]), mpan_info, **kw)
    shifted = good.set_column(
        2, "period_end_utc",
        pa.array([dt.datetime(2026, 10, 25, 0, 15, tzinfo=dt.UTC), dt.datetime(2026, 10, 25, 1, 0, tzinfo=dt.UTC)],
                 pa.timestamp("us", tz="UTC")),
    )  # fmt: skip
    with pytest.raises(ValueError, match=":00 or :30"):
        encode_if021(shifted, mpan_info, **kw)


def test_empty_table(mpan_info):
    empty = CONSUMPTION_SCHEMA.empty_table()
    assert encode_if021(empty, mpan_info, sender_timestamp_utc=SENDER_TS) == (b"[]", 0)


def test_sender_timestamp_converted_to_utc(mpan_info, payload_validator):
    bst = dt.timezone(dt.timedelta(hours=1))
    body, _ = encode_if021(
        _one_day([1.5]), mpan_info, sender_timestamp_utc=dt.datetime(2026, 7, 1, 0, 30, tzinfo=bst)
    )
    (message,) = json.loads(body)
    payload_validator.validate(message["payload"])
    s1 = message["payload"]["CommonBlock"]["S1"]
    assert s1["senderTimestamp"] == "2026-06-30T23:30:00+00:00"
    assert "-20260630-" in s1["senderUniqueReference"]


def test_parts_give_the_same_bytes(consumption, mpan_info, encoded, monkeypatch):
    """Encoded a few whole MPANs at a time (bounded memory), the array is byte for byte the
    one-pass array: messages never span MPANs and parts go in MPAN order."""
    monkeypatch.setattr(if021, "_PART_ROWS", 1000)  # several parts; one MPAN alone exceeds it
    kw = {"sender_timestamp_utc": SENDER_TS, "environment_tag": "SIT"}
    assert encode_if021(consumption, mpan_info, **kw) == encoded
    # Parts cut with take from chunked dictionary columns (two chunks, two dictionaries) ...
    half = consumption.num_rows // 2
    chunks = []
    for part in (consumption.slice(0, half), consumption.slice(half)):
        for name in ("mpan_core", "quality"):
            i = part.schema.get_field_index(name)
            part = part.set_column(i, name, part.column(name).dictionary_encode())
        chunks.append(part)
    assert encode_if021(pa.concat_tables(chunks), mpan_info, **kw) == encoded
    # ... and as zero-copy slices where the input is already in MPAN order.
    in_order = consumption.sort_by([("mpan_core", "ascending")])
    assert encode_if021(in_order, mpan_info, **kw) == encoded


def test_writer_appends_row_subsets_as_one_array(consumption, mpan_info, monkeypatch):
    """Several ``add`` calls (as deliver makes, one per issuing data service) write what
    joining each subset's own array would give: one array, messages in call order."""
    monkeypatch.setattr(if021, "_PART_ROWS", 700)
    kw = {"sender_timestamp_utc": SENDER_TS, "environment_tag": "SIT"}
    service = np.random.default_rng(3).integers(0, 3, consumption.num_rows)
    sink = io.BytesIO()
    writer = if021.If021Writer(sink, **kw)
    bodies, total = [], 0
    for rows in (
        np.flatnonzero(service == 0),
        np.array([], np.int64),  # no rows: nothing written, no stray comma
        np.flatnonzero(service == 1),
        np.flatnonzero(service == 2),
    ):
        added = writer.add(consumption, mpan_info, rows=rows)
        body, n = encode_if021(consumption.take(pa.array(rows, pa.int64())), mpan_info, **kw)
        assert added == n == len(rows)
        if n:
            bodies.append(body[1:-1])
        total += n
    writer.close()
    writer.close()  # idempotent
    assert sink.getvalue() == b"[" + b",".join(bodies) + b"]"
    assert writer.values == total == consumption.num_rows
    assert writer.messages == len(json.loads(sink.getvalue()))
    with pytest.raises(ValueError, match="closed"):
        writer.add(consumption, mpan_info)
    empty = io.BytesIO()
    if021.If021Writer(empty, **kw).close()
    assert empty.getvalue() == b"[]"


def test_add_by_issuer_is_one_add_per_issuer(consumption, mpan_info, monkeypatch):
    """One pass grouped by issuing data service (as deliver writes a slice) gives the bytes
    of one ``add`` per issuer, in ``issuers`` order, each with that issuer's id."""
    monkeypatch.setattr(if021, "_PART_ROWS", 900)
    kw = {"sender_timestamp_utc": SENDER_TS, "environment_tag": "SIT"}
    issuers = ["ADS1", "SDS1", "UMS9", "SDS2"]  # UMS9 issues nothing
    code = np.random.default_rng(4).choice([0, 1, 3], consumption.num_rows)
    expected = io.BytesIO()
    writer = if021.If021Writer(expected, **kw)
    for k, issuer in enumerate(issuers):
        info = mpan_info.set_column(
            mpan_info.schema.get_field_index("data_service_id"),
            "data_service_id",
            pa.array([issuer] * mpan_info.num_rows),
        )
        writer.add(consumption, info, rows=np.flatnonzero(code == k))
    writer.close()
    sink = io.BytesIO()
    one_pass = if021.If021Writer(sink, **kw)
    statics = mpan_info.drop_columns(["data_service_id"])  # not needed: issuers say who
    assert one_pass.add_by_issuer(consumption, statics, issuers, code) == consumption.num_rows
    one_pass.close()
    assert sink.getvalue() == expected.getvalue()
    assert (one_pass.values, one_pass.messages) == (writer.values, writer.messages)
    senders = {
        m["payload"]["CommonBlock"]["S1"]["senderDIPID"] for m in json.loads(sink.getvalue())
    }
    issuing = {dip_participant_id(i, r) for i in ("ADS1", "SDS1", "SDS2") for r in ("SDS", "ADS")}
    assert len(senders) >= 3 and senders <= issuing
    with pytest.raises(ValueError, match="index issuers"):
        if021.If021Writer(io.BytesIO(), **kw).add_by_issuer(consumption, statics, issuers[:2], code)
    with pytest.raises(ValueError, match="one integer per"):
        if021.If021Writer(io.BytesIO(), **kw).add_by_issuer(consumption, statics, issuers, code[1:])


def test_dictionary_columns_in_any_order_give_the_same_bytes(consumption, mpan_info, encoded):
    """Dictionary indices are used as they are: an unsorted dictionary, entries no row uses
    and a value listed twice change nothing."""
    kw = {"sender_timestamp_utc": SENDER_TS, "environment_tag": "SIT"}
    table = consumption
    for name, extra in (("mpan_core", ["9999999999999", "not an MPAN"]), ("quality", ["Q"])):
        values = table.column(name).to_pylist()
        dictionary = sorted(set(values), reverse=True) + extra
        dictionary.insert(1, dictionary[0])  # the same value twice
        indices = [dictionary.index(v) for v in values]
        indices[::2] = [1 if i == 0 else i for i in indices[::2]]  # some rows use the twin
        column = pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), dictionary)
        table = table.set_column(table.schema.get_field_index(name), name, column)
    assert encode_if021(table, mpan_info, **kw) == encoded


def test_sparse_timestamps_give_the_same_bytes(mpan_info):
    """Periods years apart (text tables of the timestamps in use, not of every half hour
    between) encode as each series does alone."""
    kw = {"sender_timestamp_utc": SENDER_TS, "environment_tag": "SIT"}
    early = _series(MPAN_LONDON, "AI", dt.date(2026, 3, 28), dt.date(2026, 3, 29), 11)
    late = _series(MPAN_SCOT, "AI", dt.date(2041, 10, 24), dt.date(2041, 10, 26), 12)
    both = pa.concat_tables([late, early])
    body, n = encode_if021(both, mpan_info, **kw)
    first, n1 = encode_if021(early, mpan_info, **kw)
    second, n2 = encode_if021(late, mpan_info, **kw)
    assert n == n1 + n2
    assert body == first[:-1] + b"," + second[1:]


def test_reader_gives_back_every_value_the_encoder_wrote(consumption, encoded):
    from mhhs_pipeline.formats.readers import read_if021
    from mhhs_pipeline.formats.tabular import fixed3

    got = read_if021(encoded[0])
    assert got.num_rows == encoded[1] == consumption.num_rows
    want = pa.table(
        {
            "mpan_core": consumption.column("mpan_core"),
            "measurement_quantity": consumption.column("measurement_quantity"),
            "period_end_utc": consumption.column("period_end_utc"),
            "value": fixed3(consumption.column("consumption_kwh")),
            "quality": consumption.column("quality"),
        }
    )
    key = [(c, "ascending") for c in ("mpan_core", "measurement_quantity", "period_end_utc")]
    assert got.select(want.column_names).sort_by(key).equals(want.cast(got.select(want.column_names).schema).sort_by(key))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_reader_refuses_damage_with_a_format_error_only(encoded, data):
    from mhhs_pipeline.formats.readers import FormatError, read_if021

    first = json.loads(encoded[0])[0]
    first["payload"]["CustomBlock"]["B900"]["settlementDayConsumptionPeriods"] = first["payload"]["CustomBlock"]["B900"]["settlementDayConsumptionPeriods"][:1]
    body = bytearray(json.dumps([first]).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.sampled_from(b'{}[]",:0aZ\x00\xff '))
    try:
        read_if021(bytes(body))
    except FormatError as exc:
        assert str(exc)
