"""IF-021 "UTC Settlement Period Consumption Data" (schema version 011) as DIP JSON.

``encode_if021`` turns canonical consumption rows (``core.schema.CONSUMPTION_SCHEMA``) into
the body a data service posts to the Data Integration Platform: a JSON array of
``{"payload": {"CommonBlock": {...}, "CustomBlock": {...}}}`` messages, one per MPAN x
measurement quantity x up to ``max_days_per_message`` UTC settlement days. Every key and
format follows ``IF-021-Payload`` and the blocks it references (S0, S1, M0, B044, B067,
B900/B901/B045/B046/B047) in the Elexon DIP API documentation (``reference/dip/``);
``tests/test_if021.py`` validates the output against those YAML files.

Field choices the schema leaves to the sender:

- ``S0.eventCode``: ``[ActivePower]`` for AI/AE, ``[ReactivePower]`` for RI/RE.
- ``S1.senderRoleID`` (DT-009: 3-5 letters, no code list in the schema) is the data
  service's DIP role: from ``mpan_info.market_segment`` when that optional column is present
  (``S`` -> ``SDS``, ``A`` -> ``ADS``, ``U`` -> ``UMSDS``), else from the connection type
  (``W`` whole current -> ``SDS``, CT-connected ``L``/``H``/``E`` -> ``ADS``, ``U`` -> ``UMSDS``).
- ``S1.subText``, ``senderCorrelationID``, ``DIPConnectionProviderID`` are ``null`` (nullable).
- ``S1.senderUniqueReference`` is ``S-IF-021-<senderDIPID>-<senderRoleID>-<YYYYMMDD of the
  sender timestamp>-<32 hex>``, the hex being a blake2b-128 digest of the sender DIP id,
  MPAN, measurement quantity, environment tag, sender timestamp and the message's periods
  (end, value, quality, reason): deterministic, and different for any two messages that
  differ in content.
- ``B047.v`` is the kWh value rounded half-to-even to 3 decimals (``-?\\d{1,9}\\.\\d{3}``);
  ``q`` is the row's DI-083 quality, ``e`` its DI-076 estimation reason as a string
  (``"2"``) or ``null``, ``arc`` (supplier amendment reason) is always ``null``.
- Date-times are 25 characters, ``YYYY-MM-DDTHH:MM:SS+00:00``; ``sp`` is the UTC *end* of
  the half hour, ``settlementDayDate`` the UTC day at ``T00:00:00+00:00``, and
  ``connectionTypeEffectiveFromDate`` the effective-from date at ``T00:00:00+00:00``.

DIP participant ids (DT-006: 10 characters; the schema gives no pattern, but the
senderUniqueReference pattern needs 10 hex digits there and the spec's examples are
10 decimal digits) are not published for test participants, so they are *derived*,
deterministically and reversibly, from the 4-character MPID and the DIP role::

    dip_id = ROLE_PREFIX (2 digits) + "0" + int(MPID, 36) as 7 decimal digits

with ``DIP_ROLE_PREFIX`` = SUP 23, SDS 14, ADS 11, UMSDS 12, LDSO 25 (echoing the spec's
example ids). E.g. LDSO ``LOND`` -> ``2501011721``. ``M0.distributorDIPID`` is the LDSO id of
the MPAN's distributor (``core.market.LDSO_BY_DISTRIBUTOR``; an unknown distributor id
``NN`` uses the pseudo-MPID ``00NN``); ``S1.senderDIPID`` and ``B044.issuingDataServiceDIPID``
are the data service's id in its role.

Speed: the JSON text is built column-wise with Arrow string kernels (per-timestamp and
per-value lookup tables, integer-to-string casts, element-wise joins) and sliced straight
out of Arrow buffers, never through ``json.dumps`` of per-value dicts.

Memory: rows are encoded a part at a time -- whole MPANs, about ``_PART_ROWS`` rows a part,
in MPAN order (messages never span MPANs and their text depends only on their own rows, so
the parts' messages concatenate to exactly the whole table's) -- and each part's text goes
straight to a binary sink (:class:`If021Writer`). The working set is one part's arrays
whatever the table's size; :func:`encode_if021` keeps the whole text once, in an
``io.BytesIO`` whose ``getvalue()`` hands over its buffer without a copy.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import re
from collections.abc import Callable
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.core.market import GSP_GROUPS, LDSO_BY_DISTRIBUTOR

__all__ = [
    "CONNECTION_TYPE_CODES",
    "DIP_ROLE_PREFIX",
    "ENVIRONMENT_TAGS",
    "ESTIMATION_REASON_CODES",
    "EVENT_CODES",
    "INTERFACE_ID",
    "If021Writer",
    "MAX_DAYS_PER_MESSAGE",
    "QUALITY_CODES",
    "SCHEMA_VERSION",
    "SENDER_UNIQUE_REFERENCE_PATTERN",
    "dip_participant_id",
    "encode_if021",
]

INTERFACE_ID = "IF-021"
SCHEMA_VERSION = "011"
EVENT_CODES: dict[str, str] = {
    "AI": "[ActivePower]",
    "AE": "[ActivePower]",
    "RI": "[ReactivePower]",
    "RE": "[ReactivePower]",
}
# Message order within an MPAN follows this order of measurement quantities.
_MQ_ORDER = ("AI", "AE", "RI", "RE")
ENVIRONMENT_TAGS = ("PRD", "SITB", "SIT", "UIT", "DEV")  # DT-013-EnvironmentTag
# DI-083-Settlement-Period-Quality-Indicator
QUALITY_CODES = (
    "A", "E", "E0", "E1", "E2", "E3", "E4", "E5", "E6", "E7", "E8", "E9",
    "ZE", "ZE1", "ZE2", "ZE3", "A1", "A2", "A3", "AAE1", "AAE2", "AAE3", "EAE1", "EAE2", "EAE3",
    "EA1", "EA2", "EA3", "EA4", "EA5", "EA6", "EA7", "EA8", "EA9", "EA10", "EA11", "EA12", "EA13",
)  # fmt: skip
ESTIMATION_REASON_CODES = tuple(range(1, 11))  # DI-076, sent as strings "1".."10"
CONNECTION_TYPE_CODES = ("W", "L", "H", "E", "U")  # DI-015
MAX_DAYS_PER_MESSAGE = 200  # B900.settlementDayConsumptionPeriods maxItems
SENDER_UNIQUE_REFERENCE_PATTERN = (
    r"^S-((IF|REP)-)?\d{3,4}-[0-9a-fA-F]{10}-[A-Z]{3,5}-\d{8}-[a-zA-Z0-9]+$"  # DT-995
)

DIP_ROLE_PREFIX: dict[str, str] = {
    "SUP": "23",
    "SDS": "14",
    "ADS": "11",
    "UMSDS": "12",
    "LDSO": "25",
}
_ROLE_BY_SEGMENT = {"S": "SDS", "A": "ADS", "U": "UMSDS"}
_ROLE_BY_CONNECTION_TYPE = {"W": "SDS", "L": "ADS", "H": "ADS", "E": "ADS", "U": "UMSDS"}

_MPID_RE = re.compile(r"^[A-Z0-9]{4}$")
_MPAN_RE = re.compile(r"^\d{13}$")
_DISTRIBUTOR_RE = re.compile(r"^\d{2}$")
_US_PER_HALF_HOUR = 30 * 60 * 1_000_000
_HALF_HOURS_PER_DAY = 48
_MAX_MILLI_KWH = 999_999_999_999  # 9 integer digits, 3 decimals
_CHUNK_ROWS = 1 << 18  # rows per batch of Arrow string work: bounds memory and int32 offsets
# Rows per encoded part (whole MPANs, so a part may exceed it by one MPAN's rows): ~25 int64
# arrays per row plus the part's text, ~20 MB a part whatever the table's size. Measured on
# a 1.48 M-row unit: 1 << 18 held ~25 MB more at peak for ~10% less IF-021 encoding time.
_PART_ROWS = 1 << 16
# The columns the encoder reads: parts are cut from these only.
_COLUMNS = (
    "mpan_core", "measurement_quantity", "period_end_utc", "consumption_kwh", "quality",
    "estimation_reason",
)  # fmt: skip
_EPOCH = dt.date(1970, 1, 1)


def dip_participant_id(mpid: str, role: str) -> str:
    """The 10-digit DIP participant id this product uses for an MPID in a DIP role.

    ``DIP_ROLE_PREFIX[role] + "0" + int(mpid, 36)`` zero-padded to 7 digits: unique per
    (MPID, role), reversible, and all decimal digits (so also valid hex for the
    senderUniqueReference pattern).
    """
    if not isinstance(mpid, str) or not _MPID_RE.match(mpid):
        raise ValueError(f"MPID {mpid!r} is not 4 upper-case letters or digits")
    if role not in DIP_ROLE_PREFIX:
        raise ValueError(f"DIP role {role!r} is not one of {sorted(DIP_ROLE_PREFIX)}")
    return f"{DIP_ROLE_PREFIX[role]}0{int(mpid, 36):07d}"


@functools.lru_cache(maxsize=4096)
def _dip_id(mpid: str, role: str) -> str:
    return dip_participant_id(mpid, role)


@functools.lru_cache(maxsize=1024)
def _ldso_dip_id(distributor_id: str) -> str:
    if not isinstance(distributor_id, str) or not _DISTRIBUTOR_RE.match(distributor_id):
        raise ValueError(f"distributor_id {distributor_id!r} is not 2 digits")
    return dip_participant_id(
        LDSO_BY_DISTRIBUTOR.get(distributor_id, f"00{distributor_id}"), "LDSO"
    )


def _utc_stamp(timestamp: dt.datetime) -> str:
    if not isinstance(timestamp, dt.datetime) or timestamp.tzinfo is None:
        raise ValueError("sender_timestamp_utc must be a timezone-aware datetime")
    utc = timestamp.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _as_plain(arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One contiguous array, dictionary columns decoded."""
    if pa.types.is_dictionary(arr.type):  # before combining: chunks may differ in dictionary
        arr = arr.cast(arr.type.value_type)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _encode_strings(arr: pa.Array) -> tuple[np.ndarray, list[str]]:
    """(integer code per row, distinct values) of a non-null string array."""
    if arr.null_count:
        raise ValueError("unexpected nulls in a required string column")
    enc = pc.dictionary_encode(arr)
    return np.asarray(enc.indices).astype(np.int64, copy=False), enc.dictionary.to_pylist()


@functools.lru_cache(maxsize=256)
def _tail_table(quality: str, reason: int) -> pa.Array:
    """The 1,000 value endings ``.fff","q":..,"e":..,"arc":null}`` for one (q, e) pair."""
    e_json = "null" if reason == 0 else f'"{reason}"'
    return pa.array(
        [f'.{f:03d}","q":"{quality}","e":{e_json},"arc":null}}' for f in range(1000)], pa.string()
    )


def _mpan_headers(mpans: list[str], mpan_info: pa.Table) -> dict[str, tuple[str, str, str, str]]:
    """Per MPAN: (sender DIP id, role, M0 JSON, B044+B067 JSON)."""
    required = (
        "mpan_core", "distributor_id", "gsp_group", "data_service_id",
        "connection_type", "connection_type_effective_from",
    )  # fmt: skip
    missing = [c for c in required if c not in mpan_info.column_names]
    if missing:
        raise ValueError(f"mpan_info lacks columns {missing}")
    info_mpan = _as_plain(mpan_info.column("mpan_core")).cast(pa.string())
    wanted = pc.is_in(info_mpan, value_set=pa.array(mpans, pa.string()))
    names = [*required, *(["market_segment"] if "market_segment" in mpan_info.column_names else [])]
    columns = [mpan_info.column(c).filter(wanted).to_pylist() for c in names]
    if len(columns) == len(required):
        columns.append([None] * len(columns[0]))
    out: dict[str, tuple[str, str, str, str]] = {}
    for mpan, distributor, gsp, ds, ctype, ct_from, segment in zip(*columns, strict=True):
        if mpan in out:
            raise ValueError(f"mpan_info has more than one row for MPAN {mpan}")
        if gsp not in GSP_GROUPS:
            raise ValueError(f"MPAN {mpan}: GSP group {gsp!r} is not one of {GSP_GROUPS}")
        if ctype not in CONNECTION_TYPE_CODES:
            raise ValueError(
                f"MPAN {mpan}: connection type {ctype!r} not in {CONNECTION_TYPE_CODES}"
            )
        if not isinstance(ct_from, dt.date):
            raise ValueError(f"MPAN {mpan}: connection_type_effective_from is missing")
        if segment is not None:
            role = _ROLE_BY_SEGMENT.get(segment)
            if role is None:
                raise ValueError(f"MPAN {mpan}: market segment {segment!r} unknown")
        else:
            role = _ROLE_BY_CONNECTION_TYPE[ctype]
        try:
            ds_dip = _dip_id(ds, role)
            ldso_dip = _ldso_dip_id(distributor)
        except ValueError as err:
            raise ValueError(f"MPAN {mpan}: {err}") from None
        m0 = f'"M0":{{"MPANCore":"{mpan}","distributorDIPID":"{ldso_dip}","GSPGroupID":"{gsp}"}}'
        custom = (
            f'"B044":{{"issuingDataServiceDIPID":"{ds_dip}"}},'
            f'"B067":{{"connectionTypeIndicator":"{ctype}",'
            f'"connectionTypeEffectiveFromDate":"{ct_from.isoformat()}T00:00:00+00:00"}}'
        )
        out[mpan] = (ds_dip, role, m0, custom)
    absent = sorted(set(mpans) - set(out))
    if absent:
        raise ValueError(f"mpan_info has no row for MPANs {absent[:5]} ({len(absent)} in all)")
    return out


def encode_if021(
    consumption: pa.Table,
    mpan_info: pa.Table,
    *,
    sender_timestamp_utc: dt.datetime,
    environment_tag: str = "SIT",
    max_days_per_message: int = MAX_DAYS_PER_MESSAGE,
) -> tuple[bytes, int]:
    """DIP message array JSON bytes for every row of `consumption` (canonical CONSUMPTION_SCHEMA, any MPANs/MQs), and the number of half-hour values it carries.

    ``mpan_info``: one row per MPAN core with string columns ``mpan_core``,
    ``distributor_id`` (2 digits), ``gsp_group`` (``_A``..``_P``), ``data_service_id``
    (4-character MPID of the issuing data service), ``connection_type`` (W/L/H/E/U), date32
    ``connection_type_effective_from`` and, optionally, ``market_segment`` (S/A/U, picks
    the data service role). Rows may come in any order; messages come out sorted by MPAN,
    measurement quantity (AI, AE, RI, RE) and first UTC settlement day, each day's periods
    in time order. ``environment_tag`` must be one of ``ENVIRONMENT_TAGS`` (DT-013: there
    is no "TEST"). An empty table gives ``b"[]"``. Raises ``ValueError`` on duplicate
    periods, half hours not ending on :00/:30, unknown codes or values outside (9,3).
    """
    sink = io.BytesIO()
    writer = If021Writer(
        sink,
        sender_timestamp_utc=sender_timestamp_utc,
        environment_tag=environment_tag,
        max_days_per_message=max_days_per_message,
    )
    n = writer.add(consumption, mpan_info)
    writer.close()
    return sink.getvalue(), n  # BytesIO hands over its buffer: no second copy of the text


class If021Writer:
    """One IF-021 message array (as :func:`encode_if021` writes it) streamed to ``sink``.

    ``add`` appends the messages of a table (or of the rows ``rows`` of it) and may be
    called again: the array holds every call's messages, in call order, comma-separated,
    byte for byte what joining each call's :func:`encode_if021` arrays would give. This is
    how one file carries messages of several issuing data services. ``close`` ends the
    array. ``sink`` only needs ``write(bytes-like)``; pieces may be ``memoryview`` slices of
    Arrow buffers, valid only during the call.
    """

    def __init__(
        self,
        sink: BinaryIO,
        *,
        sender_timestamp_utc: dt.datetime,
        environment_tag: str = "SIT",
        max_days_per_message: int = MAX_DAYS_PER_MESSAGE,
    ) -> None:
        if environment_tag not in ENVIRONMENT_TAGS:
            raise ValueError(
                f"environment_tag {environment_tag!r} is not one of {ENVIRONMENT_TAGS}"
            )
        if (
            not isinstance(max_days_per_message, int | np.integer)
            or isinstance(max_days_per_message, bool)
            or not 1 <= max_days_per_message <= MAX_DAYS_PER_MESSAGE
        ):
            raise ValueError(f"max_days_per_message must be an int in 1..{MAX_DAYS_PER_MESSAGE}")
        self._write: Callable[[bytes | memoryview], object] = sink.write
        self._sender_stamp = _utc_stamp(sender_timestamp_utc)
        self._env = environment_tag
        self._max_days = int(max_days_per_message)
        self.messages = 0  # written so far
        self.values = 0
        self._closed = False
        self._write(b"[")

    def add(
        self, consumption: pa.Table, mpan_info: pa.Table, *, rows: np.ndarray | None = None
    ) -> int:
        """Append the messages of ``consumption`` (of its rows ``rows``, integer indices,
        when given); ``mpan_info`` as for :func:`encode_if021`. Returns the number of
        half-hour values added."""
        if self._closed:
            raise ValueError("the IF-021 array is closed")
        n = consumption.num_rows if rows is None else len(rows)
        if n == 0:
            return 0
        values = 0
        for part in _parts(consumption, rows):
            v, m = _write_messages(
                self._write, part, mpan_info, self._sender_stamp, self._env, self._max_days,
                self.messages,
            )  # fmt: skip
            values += v
            self.messages += m
        self.values += values
        return values

    def close(self) -> None:
        if not self._closed:
            self._write(b"]")
            self._closed = True


def _parts(consumption: pa.Table, rows: np.ndarray | None):
    """Tables of whole MPANs, ~``_PART_ROWS`` rows each, in ascending MPAN order, that
    together hold the selected rows. A part is a zero-copy slice where its rows are
    contiguous (the whole table, when small), else a ``take`` of the encoder's columns."""
    n = consumption.num_rows if rows is None else len(rows)
    if rows is None and n <= _PART_ROWS:
        yield consumption
        return
    column = consumption.column("mpan_core")
    if rows is not None:
        column = column.take(pa.array(rows, pa.int64()))
    codes, mpan_values = _encode_strings(_as_plain(column))
    del column
    order_mpan = np.argsort(np.array(mpan_values, dtype=object))
    rank_of = np.empty(len(mpan_values), np.int64)
    rank_of[order_mpan] = np.arange(len(mpan_values))
    rank = rank_of[codes]
    del codes
    counts = np.bincount(rank, minlength=len(mpan_values))
    # Part of each MPAN: by how many rows come before it, so parts stay near _PART_ROWS.
    part_of_mpan = (np.cumsum(counts) - counts) // _PART_ROWS
    bounds = np.concatenate(
        ([0], np.cumsum(np.bincount(part_of_mpan, weights=counts).astype(np.int64)))
    )
    order = np.argsort(rank, kind="stable")  # MPAN order; within an MPAN, input order
    del rank
    if rows is not None:
        order = np.asarray(rows, np.int64)[order]
    table = consumption.select(list(_COLUMNS))
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if a == b:
            continue
        idx = order[a:b]
        lo = int(idx[0])
        if int(idx[-1]) - lo == b - a - 1 and bool(np.all(idx[1:] > idx[:-1])):
            yield table.slice(lo, b - a)
        else:
            yield table.take(pa.array(idx))


def _write_messages(
    write: Callable[[bytes | memoryview], object],
    consumption: pa.Table,
    mpan_info: pa.Table,
    sender_stamp: str,
    environment_tag: str,
    max_days_per_message: int,
    written: int,
) -> tuple[int, int]:
    """Write the messages of every row of ``consumption`` (one part), each preceded by a
    comma unless it is the array's first (``written`` messages came before); return
    (half-hour values, messages)."""
    n = consumption.num_rows
    if n == 0:
        return 0, 0

    # --- integer keys: MPAN rank, MQ rank, half-hour index -------------------------------
    mpan_codes, mpan_values = _encode_strings(_as_plain(consumption.column("mpan_core")))
    bad = [m for m in mpan_values if not _MPAN_RE.match(m)]
    if bad:
        raise ValueError(f"MPAN cores must be 13 digits: {bad[:5]}")
    order_mpan = np.argsort(np.array(mpan_values, dtype=object))
    mpan_rank_of = np.empty(len(mpan_values), np.int64)
    mpan_rank_of[order_mpan] = np.arange(len(mpan_values))
    mpans_sorted = [mpan_values[i] for i in order_mpan]
    mpan_rank = mpan_rank_of[mpan_codes]

    mq_codes, mq_values = _encode_strings(_as_plain(consumption.column("measurement_quantity")))
    unknown = sorted(set(mq_values) - set(_MQ_ORDER))
    if unknown:
        raise ValueError(f"measurement quantities {unknown} are not one of {_MQ_ORDER}")
    mq_rank = np.array([_MQ_ORDER.index(v) for v in mq_values], np.int64)[mq_codes]

    period_end = _as_plain(consumption.column("period_end_utc"))
    if not pa.types.is_timestamp(period_end.type) or period_end.type.tz is None:
        raise ValueError("period_end_utc must be a timezone-aware timestamp column")
    if period_end.null_count:
        raise ValueError("period_end_utc has nulls")
    end_us = np.asarray(period_end.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()))
    end_hh, off_grid = np.divmod(end_us, _US_PER_HALF_HOUR)  # half hours since the epoch
    if off_grid.any():
        raise ValueError("period_end_utc values must fall on :00 or :30 minutes")
    hh_min, hh_max = int(end_hh.min()), int(end_hh.max())
    span = hh_max - hh_min + 1
    if span <= max(4 * n, 1 << 20):
        hh_values = np.arange(hh_min, hh_max + 1, dtype=np.int64)
        t_idx = end_hh - hh_min
    else:  # sparse timestamps over a very long range
        hh_values, t_idx = np.unique(end_hh, return_inverse=True)
        span = len(hh_values)

    group = mpan_rank * len(_MQ_ORDER) + mq_rank
    key = group * span + t_idx
    if n > 1 and not bool(np.all(key[1:] > key[:-1])):
        order = np.argsort(key)  # keys are unique unless duplicates (an error)
        key = key[order]
        if np.any(key[1:] == key[:-1]):
            raise ValueError("duplicate (mpan_core, measurement_quantity, period_end_utc) rows")
    else:
        order = None

    def sort(a: np.ndarray) -> np.ndarray:
        return a if order is None else a[order]

    group, t_idx, end_hh = sort(group), sort(t_idx), sort(end_hh)

    # --- values: integer thousandths -----------------------------------------------------
    kwh_col = _as_plain(consumption.column("consumption_kwh"))
    if kwh_col.null_count:
        raise ValueError("consumption_kwh has nulls")
    kwh = sort(np.asarray(kwh_col.cast(pa.float64())))
    if not np.all(np.isfinite(kwh)):
        raise ValueError("consumption_kwh has NaN or infinite values")
    milli = np.rint(kwh * 1000.0).astype(np.int64)
    absolute = np.abs(milli)
    if int(absolute.max()) > _MAX_MILLI_KWH:
        raise ValueError("consumption_kwh outside the (9,3) range of DT-016-Decimal-9-3")
    negative = milli < 0

    # --- (quality, estimation reason) pairs -> compact code --------------------------------
    q_codes, q_values = _encode_strings(_as_plain(consumption.column("quality")))
    bad_q = sorted(set(q_values) - set(QUALITY_CODES))
    if bad_q:
        raise ValueError(f"quality codes {bad_q} are not DI-083 codes")
    reason_col = _as_plain(consumption.column("estimation_reason"))
    reason = np.asarray(pc.fill_null(reason_col.cast(pa.int64()), 0))  # 0 stands for null
    given = reason if not reason_col.null_count else reason[np.asarray(reason_col.is_valid())]
    if given.size and (given.min() < 1 or given.max() > ESTIMATION_REASON_CODES[-1]):
        raise ValueError("estimation_reason must be null or 1..10 (DI-076)")
    # A code independent of this table's dictionaries: it also feeds the message digest.
    n_reasons = ESTIMATION_REASON_CODES[-1] + 1
    q_stable = np.array([QUALITY_CODES.index(v) for v in q_values], np.int16)
    qe = sort((q_stable[q_codes] * n_reasons + reason).astype(np.int16))
    present = np.zeros(len(QUALITY_CODES) * n_reasons, dtype=bool)
    present[qe] = True
    compact = np.cumsum(present) - 1
    tail_table = pa.concat_arrays(
        [
            _tail_table(QUALITY_CODES[c // n_reasons], int(c % n_reasons))
            for c in np.flatnonzero(present)
        ]
    )
    integer_part, thousandths = np.divmod(absolute, 1000)
    tail_idx = compact[qe] * 1000 + thousandths

    # --- day and message boundaries --------------------------------------------------------
    day = (end_hh - 1) // _HALF_HOURS_PER_DAY  # UTC settlement day of the period start
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(group[1:], group[:-1], out=new_group[1:])
    new_day = new_group.copy()
    new_day[1:] |= day[1:] != day[:-1]
    day_starts = np.flatnonzero(new_day)
    n_days = len(day_starts)
    day_pos = np.arange(n_days)
    group_first_day = np.maximum.accumulate(np.where(new_group[day_starts], day_pos, 0))
    day_in_group = day_pos - group_first_day
    message_first_day = np.flatnonzero(day_in_group % int(max_days_per_message) == 0)
    n_messages = len(message_first_day)
    day_bounds = np.append(day_starts, n)  # rows of day d: day_bounds[d]..day_bounds[d+1]
    message_day_bounds = np.append(message_first_day, n_days)
    message_row_starts = day_starts[message_first_day]

    # --- per-timestamp pieces: '{"sp":"<end>","v":"' with and without a leading comma -------
    sp_text = np.datetime_as_string((hh_values * 30).astype("datetime64[m]"), unit="s")
    sp_arr = pa.array(sp_text, pa.string())
    if len(sp_text[0]) != 19 or len(sp_text[-1]) != 19:
        raise ValueError("period_end_utc outside years 1000..9999")
    sp_first = pc.binary_join_element_wise('{"sp":"', sp_arr, '+00:00","v":"', "")
    sp_next = pc.binary_join_element_wise(',{"sp":"', sp_arr, '+00:00","v":"', "")
    sp_table = pa.concat_arrays([sp_first, sp_next])
    sp_idx = t_idx + (~new_day) * len(hh_values)

    # --- per-MPAN and per-day header text ---------------------------------------------------
    headers = _mpan_headers(mpans_sorted, mpan_info)
    env = environment_tag
    sender_date = sender_stamp[:10].replace("-", "")
    s0_by_mq = {
        mq: f'"S0":{{"interfaceID":"{INTERFACE_ID}","schemaVersion":"{SCHEMA_VERSION}",'
        f'"eventCode":"{EVENT_CODES[mq]}"}}'
        for mq in _MQ_ORDER
    }
    day_open_cache: dict[tuple[int, bool], bytes] = {}

    def day_open(d: int, first: bool) -> bytes:
        """The opening of UTC day ``d`` (days since the epoch), closing the previous day."""
        text = day_open_cache.get((d, first))
        if text is None:
            date = (_EPOCH + dt.timedelta(days=d)).isoformat()
            text = (
                ("" if first else "]},")
                + f'{{"settlementDay":{{"settlementDayDate":"{date}T00:00:00+00:00",'
                + '"periodDuration":30},"consumptionPeriods":['
            ).encode()
            day_open_cache[(d, first)] = text
        return text

    # --- bodies per row, in message-aligned chunks; then assemble ---------------------------
    day_bounds_list = day_bounds.tolist()
    day_utc = day[day_starts].tolist()
    msg_days = message_day_bounds.tolist()
    msg_group = group[message_row_starts].tolist()
    n_mq = len(_MQ_ORDER)
    m = 0
    while m < n_messages:
        row0 = int(message_row_starts[m])
        m_end = int(np.searchsorted(message_row_starts, row0 + _CHUNK_ROWS, side="left"))
        m_end = max(m_end, m + 1)
        row1 = int(message_row_starts[m_end]) if m_end < n_messages else n
        int_text = pc.cast(pa.array(integer_part[row0:row1]), pa.string())
        if negative[row0:row1].any():
            sign = pa.array(["", "-"]).take(pa.array(negative[row0:row1].astype(np.int8)))
            int_text = pc.binary_join_element_wise(sign, int_text, "")
        bodies = pc.binary_join_element_wise(
            sp_table.take(pa.array(sp_idx[row0:row1])),
            int_text,
            tail_table.take(pa.array(tail_idx[row0:row1])),
            "",
        )
        bufs = bodies.buffers()
        offsets = np.frombuffer(bufs[1], dtype=np.int32)[bodies.offset :]
        data = memoryview(bufs[2]) if bufs[2] is not None else memoryview(b"")
        d_lo = msg_days[m]
        day_offsets = offsets[day_bounds[d_lo : msg_days[m_end] + 1] - row0].tolist()
        for msg in range(m, m_end):
            d0, d1 = msg_days[msg], msg_days[msg + 1]
            r0, r1 = day_bounds_list[d0], day_bounds_list[d1]
            mpan = mpans_sorted[msg_group[msg] // n_mq]
            mq = _MQ_ORDER[msg_group[msg] % n_mq]
            ds_dip, role, m0, custom = headers[mpan]
            digest = hashlib.blake2b(
                f"{ds_dip}|{mpan}|{mq}|{env}|{sender_stamp}|".encode(), digest_size=16
            )
            # The message's content, as numbers (hashing the text would cost 4x more).
            digest.update(end_hh[r0:r1])
            digest.update(milli[r0:r1])
            digest.update(qe[r0:r1])
            reference = f"S-{INTERFACE_ID}-{ds_dip}-{role}-{sender_date}-{digest.hexdigest()}"
            write(
                (
                    f'{"," if msg or written else ""}{{"payload":{{"CommonBlock":{{{s0_by_mq[mq]},'
                    f'"S1":{{"environmentTag":"{env}",'
                    f'"subText":null,"senderUniqueReference":"{reference}",'
                    f'"senderTimestamp":"{sender_stamp}","senderDIPID":"{ds_dip}",'
                    f'"senderRoleID":"{role}","senderCorrelationID":null,'
                    f'"DIPConnectionProviderID":null}},{m0}}},"CustomBlock":{{{custom},'
                    f'"B900":{{"MQID":{{"measurementQuantityID":"{mq}"}},'
                    f'"settlementDayConsumptionPeriods":['
                ).encode()
            )
            for d in range(d0, d1):
                write(day_open(day_utc[d], d == d0))
                write(data[day_offsets[d - d_lo] : day_offsets[d - d_lo + 1]])
            write(b"]}]}}}}")
        m = m_end
        del bodies, bufs, data  # this batch's text is in the sink
    return n, n_messages
