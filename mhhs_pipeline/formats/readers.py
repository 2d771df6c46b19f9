"""Readers of the industry formats back into canonical rows, so a landed file can be checked
against the registrations (ownership) and against its Parquet twin (equality).

- :func:`read_if021`: an IF-021 JSON array -> one row per half-hour value.
- :func:`read_dcc_profile`: a DCC 4.8.1 / 4.8.3 ``ra:GBCSResponse`` -> the meter's MPAN
  core, its measurement quantity and one row per LogEntry (Wh).

Both are pure (bytes in, Arrow out) and raise :class:`FormatError` with a short reason on
anything malformed, never a parser's traceback. A DCC response never carries a DTD, so one
with a DOCTYPE or ENTITY declaration is refused before it is parsed (no entity expansion,
internal or external, can be triggered by a tampered file).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.formats.dcc_xml import ESME_ID_PREFIX, MMC_NAMESPACE

__all__ = ["DccProfile", "FormatError", "read_dcc_profile", "read_if021"]

_UTC_STAMP = "%Y-%m-%dT%H:%M:%S"
_MQ_OF_SERVICE = {"4.8.1": "AI", "4.8.3": "AE"}
_NS = {"ra": MMC_NAMESPACE}


class FormatError(ValueError):
    """A file that does not read as the format it claims; the message says what is wrong."""


def _utc(stamps: list[str], suffix: str, what: str) -> pa.Array:
    """Text stamps ending in ``suffix`` ('+00:00' or 'Z') -> timestamp[us, UTC]."""
    arr = pa.array(stamps, pa.string())
    if len(arr) and not pc.all(pc.ends_with(arr, suffix)).as_py():
        raise FormatError(f"{what} not in UTC ('{suffix}')")
    try:
        naive = pc.strptime(pc.utf8_slice_codeunits(arr, 0, 19), format=_UTC_STAMP, unit="us")
    except pa.ArrowInvalid as exc:
        raise FormatError(f"{what} not a date-time: {exc}") from None
    return naive.cast(pa.timestamp("us", tz="UTC"))


def read_if021(data: bytes) -> pa.Table:
    """Columns ``mpan_core``, ``measurement_quantity``, ``period_end_utc``, ``value`` (the kWh
    text as sent), ``quality`` and ``issuing_data_service`` (the message's DIP id)."""
    try:
        messages = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"not JSON: {exc}") from None
    except RecursionError:
        raise FormatError("nested too deeply to be IF-021 messages") from None
    if not isinstance(messages, list):
        raise FormatError("not a JSON array of DIP messages")
    cols: dict[str, list] = {k: [] for k in ("mpan_core", "measurement_quantity", "sp", "value", "quality", "issuing_data_service")}
    try:
        for msg in messages:
            p = msg["payload"]
            core = p["CommonBlock"]["M0"]["MPANCore"]
            issuer = p["CustomBlock"]["B044"]["issuingDataServiceDIPID"]
            b900 = p["CustomBlock"]["B900"]
            mq = b900["MQID"]["measurementQuantityID"]
            for day in b900["settlementDayConsumptionPeriods"]:
                periods = day["consumptionPeriods"]
                n = len(periods)
                cols["mpan_core"] += [core] * n
                cols["measurement_quantity"] += [mq] * n
                cols["issuing_data_service"] += [issuer] * n
                cols["sp"] += [x["sp"] for x in periods]
                cols["value"] += [x["v"] for x in periods]
                cols["quality"] += [x["q"] for x in periods]
    except (KeyError, TypeError) as exc:
        raise FormatError(f"a DIP message lacks {exc} or has the wrong shape") from None
    try:
        table = {k: pa.array(v, pa.string()) for k, v in cols.items() if k != "sp"}
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise FormatError(f"a DIP message field is not text: {exc}") from None
    table["period_end_utc"] = _utc(cols["sp"], "+00:00", "an 'sp' period end is")
    return pa.table(table).select(["mpan_core", "measurement_quantity", "period_end_utc", "value", "quality", "issuing_data_service"])


@dataclass(frozen=True)
class DccProfile:
    mpan_core: str  # from the meter's BusinessOriginatorID
    service_reference: str  # e.g. "4.8.1"
    measurement_quantity: str  # AI for 4.8.1, AE for 4.8.3
    entries: pa.Table  # period_end_utc (timestamp[us, UTC]), wh (int64)


def _text(root: ET.Element, path: str) -> str:
    el = root.find(path, _NS)
    if el is None or el.text is None:
        raise FormatError(f"no {path.replace('ra:', '')}")
    return el.text.strip()


def read_dcc_profile(data: bytes) -> DccProfile:
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise FormatError("carries a DTD (DOCTYPE or ENTITY declaration); a DCC response has none")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise FormatError(f"not well-formed XML: {exc}") from None
    except (LookupError, UnicodeError, ValueError) as exc:  # e.g. a declared encoding Python does not know
        raise FormatError(f"not readable XML: {exc}") from None
    except RecursionError:
        raise FormatError("nested too deeply to be a DCC response") from None
    if root.tag != f"{{{MMC_NAMESPACE}}}GBCSResponse":
        raise FormatError(f"root element is {root.tag}, not ra:GBCSResponse")
    device = _text(root, "ra:Header/ra:BusinessOriginatorID")
    variant = _text(root, "ra:Header/ra:ServiceReferenceVariant")
    if variant not in _MQ_OF_SERVICE:
        raise FormatError(f"service reference variant {variant!r} is not a profile read (4.8.1 or 4.8.3)")
    prefix = ESME_ID_PREFIX + "-"
    if not device.startswith(prefix) or len(device) != len(prefix) + 17:
        raise FormatError(f"BusinessOriginatorID {device!r} is not this product's ESME id ({prefix}...)")
    try:
        core = f"{int(device[len(prefix) :].replace('-', ''), 16):013d}"
    except ValueError:
        raise FormatError(f"BusinessOriginatorID {device!r} is not hex") from None
    if variant == "4.8.1":
        entries = root.findall("ra:Body/ra:ResponseMessage/ra:SMETSData/ra:ReadActiveImportProfileDataRsp/ra:LogEntry", _NS)
        value_path = "ra:Electricity/ra:PrimaryValue"
    else:
        entries = root.findall("ra:Body/ra:ResponseMessage/ra:SMETSData/ra:ReadExportProfileDataRsp/ra:LogEntry", _NS)
        value_path = "ra:ActiveEnergyExportedValue"
    stamps, values = [], []
    for entry in entries:
        stamps.append(_text(entry, "ra:Timestamp"))
        values.append(_text(entry, value_path))
    try:
        wh = pa.array([int(v) for v in values], pa.int64())
    except ValueError as exc:
        raise FormatError(f"a LogEntry value is not a whole number of Wh: {exc}") from None
    table = pa.table({"period_end_utc": _utc(stamps, "Z", "a LogEntry Timestamp is"), "wh": wh})
    return DccProfile(core, variant, _MQ_OF_SERVICE[variant], table)
