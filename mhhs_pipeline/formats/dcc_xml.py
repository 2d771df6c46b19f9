"""DCC smart-meter profile data: canonical consumption as parsed DUIS 4.8.1 / 4.8.3 responses.

A supplier (or its data service) reads a SMETS2 electricity meter's half-hourly profile log
through the DCC with service request 4.8.1 "Read Active Import Profile Data" (import) or
4.8.3 "Read Export Profile Data" (export). What comes back, once the GBCS payload is parsed,
is the MMC schema's ``ra:GBCSResponse`` (namespace
``http://www.dccinterface.co.uk/ResponseAndAlert``, ``MMC Schema V5.4.xsd``)::

    GBCSResponse[@schemaVersion]
      Header      BusinessOriginatorID (the meter), BusinessTargetID (the service user),
                  OriginatorCounter, ServiceReference, ServiceReferenceVariant, Timestamp
      Body/ResponseMessage/SMETSData
        ReadActiveImportProfileDataRsp/LogEntry{Timestamp, Electricity/PrimaryValue}   4.8.1
        ReadExportProfileDataRsp/LogEntry{ActiveEnergyExportedValue, Timestamp}        4.8.3

This module writes those documents from a canonical consumption table (AI rows -> 4.8.1,
AE rows -> 4.8.3; RI/RE rows are ignored). It is pure: numpy, pyarrow and the standard
library; no I/O, no clock (the request time is an argument), same input -> same bytes.

Conventions (decided here; the schema and the DUIS samples do not fix them):

- **Values** are whole **Wh** (the schema's ``xs:integer``; the MMC ``ActiveEnergyUnit``
  comment says GBCS unit 30, Wh): ``Wh = floor(kWh * 1000 + 0.5)``, i.e. round half up
  (towards +inf), computed after snapping ``kWh * 1000`` to 6 decimals so binary noise in
  e.g. ``1.0005`` cannot turn a half into ``.4999...``. Canonical values carry 3 decimals, so
  for them this is exact: the Wh value is ``kWh * 1000`` to the unit.
- **LogEntry Timestamp = the END of the half hour, in UTC** (``2026-10-25T01:30:00Z`` holds
  the energy of 01:00-01:30 UTC). The schema types it only as ``xs:dateTime`` and the DUIS
  request sample asks for a day with ``ReadLogPeriod`` 2014-12-31T00:00Z to 2015-01-01T00:00Z,
  which suits either convention (the GBCS/SMETS text that would settle it is not in
  ``reference/``). We stamp by the end because (a) a profile log is a capture log: an entry
  is written when its half hour closes, so its natural stamp is the boundary that ends it
  (as DLMS/COSEM profile captures do, and ZigBee SE's profile archive, which keeps the "end
  time of the consumption interval (UTC)" -- belief, not read from GBCS); (b) MHHS stamps
  settlement periods by their end (``period_end_utc``), so the log Timestamp equals the
  canonical ``period_end_utc``, with no shift to get wrong on clock-change days. Clock
  changes do not touch this format at all: the log is UTC and every UTC settlement day has
  48 entries (the local 46/50-period days are a legacy view).
- **Request periods.** One document per MPAN x service x request period. Rows of one MPAN
  and service are cut into windows of whole UTC settlement days, counted from the first day
  present: 397 days (19,056 entries, the schema's ``maxOccurs`` for 4.8.1 -- the 13-month log)
  for import, 93 days (4,464 entries, the ``maxOccurs`` for 4.8.2 and 4.8.3) for export.
  Empty windows give no document. Each result carries ``first_day``/``last_day`` (the UTC
  settlement days of its first and last entry) and ``file_name``.
- **Header.** ``BusinessOriginatorID`` is the meter (ESME); its EUI-64 is derived from the MPAN
  core: ``02-4D`` (locally administered, so it can never collide with a real manufacturer's
  OUI; 0x4D is 'M') followed by the 13-digit core as a 48-bit number in hex.
  ``BusinessTargetID`` is the service user: the DCC samples' test user id
  ``90-B3-D5-1F-30-01-00-00``. ``OriginatorCounter`` follows the samples, whose request
  counter is the request time in epoch milliseconds (the sample ResponseID's
  1660286628923 = 2022-08-12T06:43:48.923Z, a second before its ResponseDateTime): epoch ms
  of ``request_timestamp_utc`` plus ``2 * (UTC day ordinal of the first entry) + (0 import |
  1 export)``: unique per MPAN x service x request period, and independent of whatever else
  is in the table. The header ``Timestamp`` is ``request_timestamp_utc``. The optional GBCS message
  code, GBCSData (raw payload) and signatures are omitted rather than invented.
- A leading XML comment marks every document as synthetic test data.

Speed: entries are laid down as bytes with numpy -- one fixed-width byte row per entry
(constant tags broadcast; timestamps gathered from the dates, formatted once per day, and the
48 times of day; digits from a 10,000-row lookup table; unused digit places NUL), then the
NULs are dropped in one ``bytes.replace`` -- no per-entry Python or ElementTree. Measured in
CPU time on one core of the 2-core dev machine: 2.5 M values/s for 14-day documents (the
per-document header costs show), 3-4 M values/s for long ones; ~145 bytes a value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "MAX_EXPORT_LOG_ENTRIES",
    "MAX_IMPORT_LOG_ENTRIES",
    "MMC_NAMESPACE",
    "SERVICE_USER_ID",
    "DccResponse",
    "dcc_file_name",
    "encode_dcc_profile_responses",
    "esme_device_id",
    "iter_dcc_profile_responses",
]

# maxOccurs of LogEntry in MMC Schema V5.4: ReadActiveImportProfileDataRsp (397 days x 48, the
# 13-month log); ReadExportProfileDataRsp and ReadReactiveImportProfileDataRsp (93 days x 48).
MAX_IMPORT_LOG_ENTRIES = 19056
MAX_EXPORT_LOG_ENTRIES = 4464

MMC_NAMESPACE = "http://www.dccinterface.co.uk/ResponseAndAlert"
MMC_SCHEMA_VERSION = "5.4"
SERVICE_USER_ID = "90-B3-D5-1F-30-01-00-00"  # the DUIS samples' service user
ESME_ID_PREFIX = "02-4D"

_US_PER_HALF_HOUR = 30 * 60 * 1_000_000
_HALF_HOURS_PER_DAY = 48
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAY0 = dt.date(1970, 1, 1)
_BATCH_ROWS = 1 << 16  # entries formatted per numpy pass (~10 MB of scratch, cache-friendly)


@dataclass(frozen=True)
class _Service:
    measurement_quantity: str
    reference: str  # DUIS service reference variant
    response_element: str
    max_entries: int
    counter_offset: int
    # One entry = segments in schema order: a constant, "T" (timestamp) or "V" (value).
    entry: tuple[str, ...]


_IMPORT = _Service(
    measurement_quantity="AI",
    reference="4.8.1",
    response_element="ReadActiveImportProfileDataRsp",
    max_entries=MAX_IMPORT_LOG_ENTRIES,
    counter_offset=0,
    entry=(
        "<ra:LogEntry><ra:Timestamp>",
        "T",
        "</ra:Timestamp><ra:Electricity><ra:PrimaryValue>",
        "V",
        "</ra:PrimaryValue></ra:Electricity></ra:LogEntry>\n",
    ),
)
_EXPORT = _Service(
    measurement_quantity="AE",
    reference="4.8.3",
    response_element="ReadExportProfileDataRsp",
    max_entries=MAX_EXPORT_LOG_ENTRIES,
    counter_offset=1,
    entry=(
        "<ra:LogEntry><ra:ActiveEnergyExportedValue>",
        "V",
        "</ra:ActiveEnergyExportedValue><ra:Timestamp>",
        "T",
        "</ra:Timestamp></ra:LogEntry>\n",
    ),
)
_SERVICES = (_IMPORT, _EXPORT)  # code = index; sorted by service reference

_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<!-- Synthetic MHHS test data, not read from any meter. MPAN core {mpan}; DUIS {sr}; "
    "UTC settlement days {first} to {last}; {n} entries; values in Wh; each LogEntry "
    "Timestamp is the end of its UTC half hour. -->\n"
    f'<ra:GBCSResponse xmlns:ra="{MMC_NAMESPACE}" schemaVersion="{MMC_SCHEMA_VERSION}">\n'
    "<ra:Header>\n"
    "<ra:BusinessOriginatorID>{device}</ra:BusinessOriginatorID>\n"
    f"<ra:BusinessTargetID>{SERVICE_USER_ID}</ra:BusinessTargetID>\n"
    "<ra:OriginatorCounter>{counter}</ra:OriginatorCounter>\n"
    "<ra:ServiceReference>4.8</ra:ServiceReference>\n"
    "<ra:ServiceReferenceVariant>{sr}</ra:ServiceReferenceVariant>\n"
    "<ra:Timestamp>{timestamp}</ra:Timestamp>\n"
    "</ra:Header>\n"
    "<ra:Body>\n"
    "<ra:ResponseMessage>\n"
    "<ra:SMETSData>\n"
    '<ra:{element} MessageSuccess="true">\n'
)
_FOOT = "</ra:{element}>\n</ra:SMETSData>\n</ra:ResponseMessage>\n</ra:Body>\n</ra:GBCSResponse>\n"


class DccResponse(tuple[str, str, bytes, int]):
    """One response document: a 4-tuple ``(mpan_core, service_reference, xml_bytes, n_values)``.

    It unpacks, compares and hashes as that plain tuple, and also carries ``first_day`` and
    ``last_day`` (UTC settlement days of its first and last entry) and ``file_name``.
    """

    first_day: dt.date
    last_day: dt.date

    def __new__(
        cls,
        mpan_core: str,
        service_reference: str,
        xml_bytes: bytes,
        n_values: int,
        first_day: dt.date,
        last_day: dt.date,
    ) -> DccResponse:
        self = super().__new__(cls, (mpan_core, service_reference, xml_bytes, n_values))
        self.first_day = first_day
        self.last_day = last_day
        return self

    mpan_core = property(itemgetter(0))
    service_reference = property(itemgetter(1))
    xml_bytes = property(itemgetter(2))
    n_values = property(itemgetter(3))

    @property
    def file_name(self) -> str:
        return dcc_file_name(self[0], self[1], self.first_day, self.last_day)

    def __reduce__(self):  # tuple's default pickling would call __new__ with one argument
        return (DccResponse, (*self, self.first_day, self.last_day))

    def __repr__(self) -> str:
        return (
            f"DccResponse(mpan_core={self[0]!r}, service_reference={self[1]!r}, "
            f"xml_bytes=<{len(self[2])} bytes>, n_values={self[3]}, "
            f"first_day={self.first_day}, last_day={self.last_day})"
        )


def dcc_file_name(
    mpan_core: str, service_reference: str, first_day: dt.date, last_day: dt.date
) -> str:
    """e.g. '1200000000009_SR4.8.1_20261019-20261101.xml' -- MPAN core in the name, only [A-Za-z0-9._-].

    ``first_day``/``last_day``: the UTC settlement days the document covers, both inclusive.
    """
    _check_mpan(mpan_core)
    if service_reference not in {s.reference for s in _SERVICES} | {"4.8.2"}:
        raise ValueError(
            f"service_reference must be 4.8.1, 4.8.2 or 4.8.3, got {service_reference!r}"
        )
    if last_day < first_day:
        raise ValueError(f"last_day {last_day} is before first_day {first_day}")
    return f"{mpan_core}_SR{service_reference}_{first_day:%Y%m%d}-{last_day:%Y%m%d}.xml"


def esme_device_id(mpan_core: str) -> str:
    """The synthetic ESME EUI-64 for an MPAN core: '02-4D-' + the core as 6 hex bytes."""
    _check_mpan(mpan_core)
    raw = int(mpan_core).to_bytes(6, "big")
    return ESME_ID_PREFIX + "-" + "-".join(f"{b:02X}" for b in raw)


def encode_dcc_profile_responses(
    consumption: pa.Table, *, request_timestamp_utc: dt.datetime
) -> list[DccResponse]:
    """Every document of :func:`iter_dcc_profile_responses`, as a list."""
    return list(
        iter_dcc_profile_responses(consumption, request_timestamp_utc=request_timestamp_utc)
    )


def iter_dcc_profile_responses(
    consumption: pa.Table, *, request_timestamp_utc: dt.datetime
) -> Iterator[DccResponse]:
    """For a canonical consumption table (any MPANs; only AI and AE rows are used), one parsed
    'ra:GBCSResponse' XML document per MPAN x service (4.8.1 Read Active Import Profile Data for AI,
    4.8.3 Read Export Profile Data for AE) x request period (split so no response exceeds the
    schema's maximum entries). Yields (mpan_core, service_reference e.g. '4.8.1', xml_bytes, n_values).

    Documents come sorted by MPAN core, service reference and period, entries in time order,
    whatever the order of the input rows. ``request_timestamp_utc`` must be timezone-aware;
    it stamps the header (no clock is read). Raises ``ValueError`` on malformed MPAN cores,
    non-finite values, period ends off the half-hour grid, or repeated half hours -- all
    checked before the first document is yielded.

    Documents are yielded one batch of ``_BATCH_ROWS`` entries at a time, so a caller that
    writes each and lets it go holds one batch's text, not the whole table's.
    """
    if request_timestamp_utc.tzinfo is None or request_timestamp_utc.utcoffset() is None:
        raise ValueError("request_timestamp_utc must be timezone-aware (UTC)")
    request_utc = request_timestamp_utc.astimezone(dt.UTC)
    request_ms = (request_utc - _EPOCH_UTC) // dt.timedelta(milliseconds=1)
    if request_ms < 0:
        raise ValueError("request_timestamp_utc must be after 1970-01-01")
    header_time = f"{request_utc:%Y-%m-%dT%H:%M:%S}.{request_utc.microsecond // 1000:03d}Z"

    mq = _plain(consumption.column("measurement_quantity"))
    keep = pc.is_in(mq, value_set=pa.array([s.measurement_quantity for s in _SERVICES]))
    if not pc.any(keep).as_py():
        return
    mq = mq.filter(keep)
    mpan = _plain(consumption.column("mpan_core")).filter(keep)
    end_us = _plain(consumption.column("period_end_utc")).filter(keep)
    kwh = _plain(consumption.column("consumption_kwh")).filter(keep)
    if mpan.null_count or end_us.null_count or kwh.null_count:
        raise ValueError("mpan_core, period_end_utc and consumption_kwh must not be null")

    mpan_ok = pc.and_(pc.equal(pc.utf8_length(mpan), 13), pc.utf8_is_digit(mpan))
    if not pc.all(mpan_ok).as_py():
        bad = mpan.filter(pc.invert(mpan_ok))[0].as_py()
        raise ValueError(f"mpan_core must be 13 digits, got {bad!r}")
    mpan_num = pc.cast(mpan, pa.int64()).to_numpy()
    service = np.where(
        pc.equal(mq, _EXPORT.measurement_quantity).to_numpy(zero_copy_only=False), 1, 0
    )
    end_us = end_us.cast(pa.timestamp("us", tz=end_us.type.tz)).cast(pa.int64()).to_numpy()
    if np.any(end_us % _US_PER_HALF_HOUR):
        raise ValueError("period_end_utc must fall on UTC half-hour boundaries")
    end_hh = end_us // _US_PER_HALF_HOUR  # half hours since the epoch, stamped by period end
    wh = _kwh_to_wh(kwh.to_numpy())

    # MPAN-major order (the generator's own order, so usually no sort is needed); runs of one
    # service are formatted together, in batches.
    n = len(wh)
    same_mpan = mpan_num[1:] == mpan_num[:-1]
    same_service = same_mpan & (service[1:] == service[:-1])
    in_order = (mpan_num[1:] > mpan_num[:-1]) | (same_mpan & (service[1:] > service[:-1]))
    if not np.all(in_order | (same_service & (end_hh[1:] > end_hh[:-1]))):
        order = np.lexsort((end_hh, service, mpan_num))
        mpan_num, service, end_hh, wh = mpan_num[order], service[order], end_hh[order], wh[order]
        same_service = (mpan_num[1:] == mpan_num[:-1]) & (service[1:] == service[:-1])
        repeated = same_service & (end_hh[1:] == end_hh[:-1])
        if repeated.any():
            i = int(np.flatnonzero(repeated)[0]) + 1
            raise ValueError(
                f"MPAN {mpan_num[i]:013d} has the half hour ending "
                f"{np.datetime64(int(end_hh[i]) * _US_PER_HALF_HOUR, 'us')} twice in "
                f"{_SERVICES[service[i]].measurement_quantity}"
            )

    new_group = np.ones(n, dtype=bool)
    new_group[1:] = ~same_service
    day = (end_hh - 1) // _HALF_HOURS_PER_DAY  # UTC settlement day (ordinal) of each entry
    group_start = np.flatnonzero(new_group)
    group_first_day = np.repeat(day[group_start], np.diff(np.append(group_start, n)))
    window_days = np.array([s.max_entries // _HALF_HOURS_PER_DAY for s in _SERVICES])[service]
    window = (day - group_first_day) // window_days
    new_doc = new_group.copy()
    new_doc[1:] |= window[1:] != window[:-1]
    doc_start = np.flatnonzero(new_doc)
    doc_end = np.append(doc_start[1:], n)

    # While documents are yielded, keep only what the loop reads.
    del mq, mpan, kwh, keep, mpan_ok, end_us, same_mpan, same_service, in_order
    del new_group, group_start, group_first_day, window_days, window, new_doc
    for first_doc, stop_doc in _batches(doc_start, doc_end, service[doc_start]):
        svc = _SERVICES[service[doc_start[first_doc]]]
        b0, b1 = int(doc_start[first_doc]), int(doc_end[stop_doc - 1])
        entries, offsets = _entries(svc, end_hh[b0:b1], wh[b0:b1])
        for d in range(first_doc, stop_doc):
            i0, i1 = int(doc_start[d]), int(doc_end[d])
            body = entries[offsets[i0 - b0] : offsets[i1 - b0]]
            first, last = int(day[i0]), int(day[i1 - 1])
            yield _document(
                svc, int(mpan_num[i0]), first, last, i1 - i0, body, request_ms, header_time
            )
        del entries, body  # this batch's text now lives only in the documents yielded


# --- internals -------------------------------------------------------------------------


def _check_mpan(mpan_core: str) -> None:
    if not (
        isinstance(mpan_core, str)
        and len(mpan_core) == 13
        and mpan_core.isascii()
        and mpan_core.isdigit()
    ):
        raise ValueError(f"mpan_core must be 13 digits, got {mpan_core!r}")


def _plain(column: pa.ChunkedArray) -> pa.Array:
    """One contiguous array; dictionary columns decoded (canonical Parquet may use them)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def _kwh_to_wh(kwh: np.ndarray) -> np.ndarray:
    """Whole Wh, round half up: floor(kWh*1000 + 0.5) after snapping to 6 decimals."""
    kwh = np.asarray(kwh, dtype=np.float64)
    if not np.all(np.isfinite(kwh)):
        raise ValueError("consumption_kwh must be finite")
    return np.floor(np.round(kwh * 1000.0, 6) + 0.5).astype(np.int64)


def _batches(doc_start: np.ndarray, doc_end: np.ndarray, doc_service: np.ndarray):
    """(first, stop) ranges of consecutive documents of one service, about _BATCH_ROWS entries each."""
    first, rows = 0, 0
    for d in range(len(doc_start)):
        size = int(doc_end[d] - doc_start[d])
        if d > first and (rows + size > _BATCH_ROWS or doc_service[d] != doc_service[first]):
            yield first, d
            first, rows = d, 0
        rows += size
    if len(doc_start):
        yield first, len(doc_start)


_TIMES_OF_DAY = np.frombuffer(
    "".join(f"T{h:02d}:{m:02d}:00Z" for h in range(24) for m in (0, 30)).encode("ascii"),
    dtype=np.uint8,
).reshape(_HALF_HOURS_PER_DAY, 10)


def _timestamp_bytes(end_hh: np.ndarray) -> np.ndarray:
    """(n, 20) uint8 'YYYY-MM-DDTHH:MM:SSZ' of each half-hour end: dates formatted once per day."""
    day, slot = np.divmod(end_hh, _HALF_HOURS_PER_DAY)
    lo = int(day.min())
    span = int(day.max()) - lo + 1
    dates = np.datetime_as_string(np.arange(lo, lo + span).astype("datetime64[D]")).astype("S10")
    out = np.empty((len(end_hh), 20), dtype=np.uint8)
    out[:, :10] = np.frombuffer(dates.tobytes(), dtype=np.uint8).reshape(span, 10)[day - lo]
    out[:, 10:] = _TIMES_OF_DAY[slot]
    return out


def _digit_tables() -> tuple[np.ndarray, np.ndarray]:
    """(10000, 4) uint8 tables: '0000'..'9999', and the same right-aligned with NUL for leading zeros."""
    i = np.arange(10_000)
    padded = ((i[:, None] // np.array([1000, 100, 10, 1])) % 10 + ord("0")).astype(np.uint8)
    bare = padded.copy()
    bare[i[:, None] < np.array([1000, 100, 10, 0])] = 0
    return padded, bare


_DIGITS_PADDED, _DIGITS_BARE = _digit_tables()


def _value_bytes(wh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, w) uint8 decimal integers right-aligned, unused places NUL; and each one's length."""
    mag = np.abs(wh)
    top = int(mag.max())
    n_chunks = max(1, (len(str(top)) + 3) // 4)  # groups of 4 digits
    if n_chunks == 1:
        text = _DIGITS_BARE[mag]
    else:
        text = np.empty((len(mag), 4 * n_chunks), dtype=np.uint8)
        for k in range(n_chunks):  # k = 0: most significant group
            scale = 10 ** (4 * (n_chunks - 1 - k))
            group = (mag // scale) % 10_000
            lead = mag < scale * 10_000  # this group or one below holds the first digit
            text[:, 4 * k : 4 * k + 4] = np.where(
                (mag < scale)[:, None] & (scale > 1),
                0,
                np.where(lead[:, None], _DIGITS_BARE[group], _DIGITS_PADDED[group]),
            )
    length = np.ones(len(mag), dtype=np.int64)
    for k in range(1, len(str(top))):
        length += mag >= 10**k
    negative = wh < 0
    if negative.any():
        signed = np.zeros((len(mag), text.shape[1] + 1), dtype=np.uint8)
        signed[:, 1:] = text
        rows = np.flatnonzero(negative)
        signed[rows, signed.shape[1] - 1 - length[rows]] = ord("-")  # just before the first digit
        text, length = signed, length + negative
    return text, length


def _entries(
    service: _Service, end_hh: np.ndarray, wh: np.ndarray
) -> tuple[memoryview, np.ndarray]:
    """The LogEntry elements of these rows as one byte string, and each entry's offset (n+1)."""
    values, value_length = _value_bytes(wh)
    parts = {"T": _timestamp_bytes(end_hh), "V": values}
    widths = [parts[seg].shape[1] if seg in parts else len(seg) for seg in service.entry]
    # One fixed-width row per entry: constants broadcast as a whole template row (contiguous
    # copies), then timestamps and values laid over their columns; NULs mark unused places.
    template = b"".join(
        seg.encode("ascii") if seg not in parts else b"\0" * w
        for seg, w in zip(service.entry, widths, strict=True)
    )
    record = np.empty((len(wh), len(template)), dtype=np.uint8)
    record[:] = np.frombuffer(template, dtype=np.uint8)
    col = 0
    for seg, width in zip(service.entry, widths, strict=True):
        if seg in parts:
            record[:, col : col + width] = parts[seg]
        col += width
    offsets = np.zeros(len(wh) + 1, dtype=np.int64)
    np.cumsum(len(template) - values.shape[1] + value_length, out=offsets[1:])
    # Dropping the NULs: bytes.replace (memchr + memcpy) runs ~4x faster than a numpy mask.
    return memoryview(record.tobytes().replace(b"\0", b"")), offsets


def _document(
    service: _Service,
    mpan_num: int,
    first_day_ordinal: int,
    last_day_ordinal: int,
    n_values: int,
    body: memoryview,
    request_ms: int,
    header_time: str,
) -> DccResponse:
    mpan_core = f"{mpan_num:013d}"
    first_day = _DAY0 + dt.timedelta(days=first_day_ordinal)
    last_day = _DAY0 + dt.timedelta(days=last_day_ordinal)
    head = _HEAD.format(
        mpan=mpan_core,
        sr=service.reference,
        first=first_day.isoformat(),
        last=last_day.isoformat(),
        n=n_values,
        device=esme_device_id(mpan_core),
        counter=request_ms + 2 * first_day_ordinal + service.counter_offset,
        timestamp=header_time,
        element=service.response_element,
    )
    foot = _FOOT.format(element=service.response_element)
    xml = b"".join((head.encode("ascii"), body, foot.encode("ascii")))
    return DccResponse(mpan_core, service.reference, xml, n_values, first_day, last_day)
