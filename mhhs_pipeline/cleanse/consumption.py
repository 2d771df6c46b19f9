"""Cleansing of actual half-hourly consumption extracts, and manufacturing what is missing.

Pure functions on Arrow tables (the file reading is ``mhhs_pipeline.io.consumption_extract``):

1. ``normalise_consumption(chunk, registry)`` -- one chunk of text records (canonical
   column names from ``consumption_columns``, plus ``record``) -> typed values, a uint64
   mask of failed checks (``reasons.CONSUMPTION_CHECKS``), routes and the original text.
   Row rules and the rules that need the clean registrations (unknown MPAN, no
   registration in force, de-energised, direction, physical bound) run here, chunk by chunk.
2. ``resolve_consumption(records)`` -- every record of some MPANs (``groups.bucket_of``
   keeps an MPAN's records in one bucket): exact duplicates merged, conflicting values for
   one half hour quarantined, canonical ``CONSUMPTION_SCHEMA`` rows (``provenance`` =
   ``actual``), quarantine rows and counts.
3. ``merge_actual_with_model`` (``consumption_merge``) -- actual rows in, modelled rows
   for the rest, gaps filled at the MPAN's own level.

Reconciliation: rows in = clean + quarantined + merged duplicates, always.
Decisions are documented in docs/reason-codes.md ("Actual consumption").
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.cleanse.consumption_columns import (
    CONSUMPTION_ALIASES,
    CONSUMPTION_COLUMNS,
    consumption_column,
    map_consumption_header,
)
from mhhs_pipeline.cleanse.consumption_merge import (
    MIN_OVERLAP_PERIODS,
    level_ratios,
    merge_actual_with_model,
    merge_with_model_index,
    unmodelled_actuals,
)
from mhhs_pipeline.cleanse.consumption_registry import RegistrationIndex, ldso_of_mpan, mpan_ints
from mhhs_pipeline.cleanse.consumption_time import (
    US_PER_DAY,
    US_PER_HALF_HOUR,
    local_to_utc,
    parse_period_end,
)
from mhhs_pipeline.cleanse.groups import CLEAN, MERGED, QUARANTINED
from mhhs_pipeline.cleanse.quarantine import quarantine_schema, quarantine_table
from mhhs_pipeline.cleanse.reasons import (
    CONSUMPTION_CHECKS,
    CONSUMPTION_REASON_CODES,
    CONSUMPTION_REPAIR_CODES,
)
from mhhs_pipeline.cleanse.report import count_bucket, safe_text
from mhhs_pipeline.cleanse.rules import NUMBER_PATTERN, Chunk, RepairLog, date_field, mpan_field
from mhhs_pipeline.core import market
from mhhs_pipeline.core.calendar import local_view
from mhhs_pipeline.core.schema import CONSUMPTION_SCHEMA

__all__ = [
    "CONSUMPTION_ALIASES",
    "CONSUMPTION_COLUMNS",
    "CONSUMPTION_QUARANTINE_SCHEMA",
    "CONSUMPTION_REASON_CODES",
    "CONSUMPTION_REPAIR_CODES",
    "HALF_HOUR_BOUND_KWH",
    "MIN_OVERLAP_PERIODS",
    "QUALITY_CODES",
    "ConsumptionResult",
    "ConsumptionStats",
    "RegistrationIndex",
    "RepairLog",
    "cleanse_consumption_records",
    "consumption_column",
    "level_ratios",
    "map_consumption_header",
    "merge_actual_with_model",
    "merge_with_model_index",
    "normalise_consumption",
    "render_consumption_markdown",
    "resolve_consumption",
    "unmodelled_actuals",
]

# DI-083 settlement period quality indicators (MHHS data catalogue; the same list as
# formats.if021.QUALITY_CODES, which a test keeps in step -- cleanse does not import formats).
QUALITY_CODES: tuple[str, ...] = (
    "A", "E", "E0", "E1", "E2", "E3", "E4", "E5", "E6", "E7", "E8", "E9",
    "ZE", "ZE1", "ZE2", "ZE3", "A1", "A2", "A3", "AAE1", "AAE2", "AAE3", "EAE1", "EAE2", "EAE3",
    "EA1", "EA2", "EA3", "EA4", "EA5", "EA6", "EA7", "EA8", "EA9", "EA10", "EA11", "EA12", "EA13",
)  # fmt: skip
ZERO_QUALITY_CODES = ("ZE", "ZE1", "ZE2", "ZE3")
MEASUREMENT_QUANTITIES = tuple(sorted(market.MEASUREMENT_QUANTITIES))  # AE, AI, RE, RI: sorts like the text

# Highest believable half-hourly value by connection type [kWh or kvarh per half hour]: the
# connection's apparent power flat out for 30 minutes (active and reactive are each at most
# that). W: whole current, 100 A per phase, three-phase 230 V = 69 kVA (a single-phase home
# tops out at 11.5 kWh, but W also covers three-phase small businesses); L: LV CT, 2 MVA
# (largest LV transformer); H: HV CT, 20 MVA; E: EHV, 500 MVA; U (unmetered, out of scope)
# as W. Beyond is a unit error (Wh sent as kWh) or a corrupt value. Unknown type: the loosest.
HALF_HOUR_BOUND_KWH: dict[str, float] = {"W": 34.5, "U": 34.5, "L": 1_000.0, "H": 10_000.0, "E": 250_000.0}
_LOOSEST_BOUND = max(HALF_HOUR_BOUND_KWH.values())

_SMALL_INT = r"^\d{1,2}(\.0+)?$"  # "3", "03", "3.0" (a float column written out)

# Checks that make the half hour unknown: such records take no part in duplicate detection.
_TIME_FAULTS = np.uint64(0)
for _f in ("period", "settlement_date", "settlement_period"):
    _TIME_FAULTS |= CONSUMPTION_CHECKS.bit("MISSING_VALUE", _f)
for _f in ("period_end_utc", "settlement_date", "settlement_period"):
    _TIME_FAULTS |= CONSUMPTION_CHECKS.bit("BAD_TIMESTAMP", _f)
for _c in ("OFF_HALF_HOUR", "WRONG_PERIOD_COUNT", "TIME_VIEWS_DISAGREE"):
    _TIME_FAULTS |= CONSUMPTION_CHECKS.bit(_c)

CONSUMPTION_QUARANTINE_SCHEMA = quarantine_schema(CONSUMPTION_COLUMNS)


def _np(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _small_ints(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(value, readable) of small non-negative integers written as text."""
    fmt = _np(pc.match_substring_regex(text, _SMALL_INT))
    head = pc.utf8_slice_codeunits(pc.if_else(pa.array(fmt), text, "0"), 0, 2)
    head = pc.replace_substring(head, ".", "")
    return pc.cast(head, pa.int64()).to_numpy(zero_copy_only=False), fmt


def _str_or_null(values: np.ndarray) -> pa.Array:
    arr = pa.array(values.astype(object) if len(values) else [], pa.string())
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def normalise_consumption(chunk: pa.Table, registry: RegistrationIndex | pa.Table, log: RepairLog | None = None) -> pa.Table:
    """Normalise and check one chunk of text records; see the module docstring.

    ``chunk`` has text columns named as in ``CONSUMPTION_COLUMNS`` (any subset), ``record``
    (int, 1-based) and optionally ``other:<header>`` columns. ``registry`` is the clean
    registrations (or a prebuilt ``RegistrationIndex``: build it once for many chunks)."""
    if not isinstance(registry, RegistrationIndex):
        registry = RegistrationIndex.build(registry)
    c = Chunk(chunk, log if log is not None else RepairLog())
    n = c.n
    reasons = np.zeros(n, dtype=np.uint64)

    def flag(mask: np.ndarray, code: str, fld: str | None = None) -> None:
        reasons[mask] |= CONSUMPTION_CHECKS.bit(code, fld)

    # MPAN: digits never change; separators and spaces are the only repairs.
    core, mpan_empty, _, mpan_ok = mpan_field(c, "mpan_core")
    flag(mpan_empty, "MISSING_VALUE", "mpan_core")
    flag(~mpan_empty & ~mpan_ok, "BAD_MPAN")
    mpan = mpan_ints(core, mpan_ok)

    # Measurement quantity: optional, AI when empty or absent.
    mq_text, mq_empty = c.text("measurement_quantity")
    mq_upper = c.case("measurement_quantity", mq_text, mq_empty)
    c.log.add("DEFAULT_MEASUREMENT_QUANTITY", "measurement_quantity", mq_empty, c.records, mq_text, pa.array(["AI"] * n, pa.string()))
    mq = pc.if_else(pa.array(mq_empty), "AI", mq_upper)
    mq_ok = _np(pc.is_in(mq, pa.array(MEASUREMENT_QUANTITIES)))
    flag(~mq_ok, "UNKNOWN_MEASUREMENT_QUANTITY")
    mq_code = np.where(mq_ok, pc.fill_null(pc.index_in(mq, pa.array(MEASUREMENT_QUANTITIES)), -1).to_numpy(zero_copy_only=False), -1)

    # The half hour: UTC period end, or local date + period, or both (then they must agree).
    utc_us, time_ok, instant_us, instant_ok = _half_hour(c, flag, reasons)

    # Value.
    kwh_text, kwh_empty = c.text("consumption_kwh")
    numeric = _np(pc.match_substring_regex(kwh_text, NUMBER_PATTERN))
    raw_kwh = pc.cast(pc.if_else(pa.array(numeric), kwh_text, "0"), pa.float64()).to_numpy(zero_copy_only=False)
    kwh_ok = numeric & np.isfinite(raw_kwh)
    flag(kwh_empty, "MISSING_VALUE", "consumption_kwh")
    flag(~kwh_empty & ~kwh_ok, "KWH_NOT_NUMERIC")
    flag(kwh_ok & (raw_kwh < 0), "NEGATIVE_VALUE")
    kwh = np.where(kwh_ok, np.round(np.where(kwh_ok, raw_kwh, 0.0), 3) + 0.0, 0.0)  # + 0.0: no -0.0
    c.log.add("KWH_ROUNDED", "consumption_kwh", kwh_ok & (kwh != raw_kwh) & (raw_kwh >= 0), c.records, kwh_text, pa.array(kwh))
    nonzero = kwh_ok & (kwh != 0)

    # Quality (optional, A when empty) and estimation reason (optional).
    q_text, q_empty = c.text("quality")
    q_upper = c.case("quality", q_text, q_empty)
    c.log.add("DEFAULT_QUALITY", "quality", q_empty, c.records, q_text, pa.array(["A"] * n, pa.string()))
    quality = pc.if_else(pa.array(q_empty), "A", q_upper)
    q_ok = _np(pc.is_in(quality, pa.array(QUALITY_CODES)))
    flag(~q_ok, "UNKNOWN_QUALITY")
    e_text, e_empty = c.text("estimation_reason")
    e_val, e_fmt = _small_ints(e_text)
    e_ok = e_fmt & (e_val >= 1) & (e_val <= 10)
    flag(~e_empty & ~e_ok, "BAD_ESTIMATION_REASON")
    # An estimate is a quality starting with E (the rule `mhhs-pipeline validate` applies).
    estimate = q_ok & _np(pc.starts_with(quality, "E"))
    flag((estimate & e_empty) | (q_ok & ~estimate & ~e_empty), "QUALITY_REASON_MISMATCH")
    flag(_np(pc.is_in(quality, pa.array(ZERO_QUALITY_CODES))) & nonzero, "ZERO_QUALITY_NONZERO")

    # Rules against the clean registrations (registration in force on the UTC settlement day).
    # A time that is readable but off the grid (or disagrees with the local view) still
    # names a day: such records are checked and routed too, though quarantined anyway.
    utc_day = np.where(instant_ok, (instant_us - US_PER_HALF_HOUR) // US_PER_DAY, 0)
    known = registry.is_known(mpan)
    flag(mpan_ok & ~known, "UNKNOWN_MPAN")
    row = np.where(mpan_ok & known & instant_ok, registry.in_force(mpan, utc_day), -1)
    flag(mpan_ok & known & instant_ok & (row < 0), "NO_REGISTRATION_IN_FORCE")
    has = row >= 0
    r = np.maximum(row, 0)
    if len(registry.keys):
        energisation = np.where(has, registry.energisation_status[r], "")
        direction = np.where(has, registry.energy_direction[r], "")
        connection = np.where(has, registry.connection_type[r], "")
        supplier = np.where(has, registry.supplier_id[r], "")
        data_service = np.where(has, registry.data_service_id[r], "")
    else:
        energisation = direction = connection = supplier = data_service = np.full(n, "")
    flag(has & (energisation == "D") & nonzero, "DE_ENERGISED_CONSUMPTION")
    mq_np = np.asarray(mq.to_numpy(zero_copy_only=False), dtype=object)
    flag(has & mq_ok & (((mq_np == "AE") & (direction == "I")) | ((mq_np == "AI") & (direction == "E"))), "MQ_DIRECTION_MISMATCH")
    bound = np.full(n, _LOOSEST_BOUND)
    for code, limit in HALF_HOUR_BOUND_KWH.items():
        bound[connection == code] = limit
    flag(kwh_ok & (kwh > bound), "BEYOND_PHYSICAL_BOUND")

    cols: dict[str, pa.Array] = {
        "record": pa.array(c.records, pa.int64()),
        "reasons": pa.array(reasons, pa.uint64()),
        "mpan_core": pc.if_else(pa.array(mpan_ok), core, pa.scalar(None, pa.string())),
        "mpan_int": pa.array(mpan, pa.int64()),
        "mq_code": pa.array(mq_code.astype(np.int8), pa.int8()),
        "period_end_us": pa.array(utc_us, pa.int64(), mask=~time_ok),
        "consumption_kwh": pa.array(kwh, pa.float64(), mask=~kwh_ok),
        "quality": pc.if_else(pa.array(q_ok), quality, pa.scalar(None, pa.string())),
        "estimation_reason": pa.array(e_val.astype(np.int16), pa.int16(), mask=~e_ok),
        "route_supplier_id": _str_or_null(supplier),
        "route_data_service_id": _str_or_null(data_service),
        "route_ldso_id": _str_or_null(ldso_of_mpan(mpan)),
    }
    for name in CONSUMPTION_COLUMNS:
        cols[f"raw_{name}"] = c.raw(name)
    for name in chunk.column_names:
        if name.startswith("other:"):
            cols[name] = c.raw(name)
    return pa.table(cols)


def _half_hour(c: Chunk, flag, reasons: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(UTC period end in microseconds, usable as a key; an instant, known) of every
    record; flags the time rules. The instant is the UTC text's when readable, else the
    local view's, even off the grid: it names the UTC day for the registration rules."""
    ts_text, ts_empty = c.text("period_end_utc")
    parsed = parse_period_end(ts_text)
    flag(~ts_empty & ~parsed.ok, "BAD_TIMESTAMP", "period_end_utc")
    flag(parsed.ok & ~parsed.on_grid, "OFF_HALF_HOUR")

    date, date_empty, date_bad = date_field(c, "settlement_date")
    sp_text, sp_empty = c.text("settlement_period")
    sp_val, sp_fmt = _small_ints(sp_text)
    sp_ok = sp_fmt & (sp_val >= 1) & (sp_val <= 50)
    flag(date_bad, "BAD_TIMESTAMP", "settlement_date")
    flag(~sp_empty & ~sp_ok, "BAD_TIMESTAMP", "settlement_period")
    flag(ts_empty & date_empty & sp_empty, "MISSING_VALUE", "period")
    flag(date_empty & ~sp_empty, "MISSING_VALUE", "settlement_date")
    flag(~date_empty & sp_empty, "MISSING_VALUE", "settlement_period")

    local_ok = ~date_empty & ~date_bad & sp_ok
    days = np.where(local_ok, pc.fill_null(pc.cast(date, pa.int32()), 0).to_numpy(zero_copy_only=False), 0).astype(np.int64)
    local_us, fits = local_to_utc(days, np.where(local_ok, sp_val, 1))
    flag(local_ok & ~fits, "WRONG_PERIOD_COUNT")
    local_ok &= fits
    flag(parsed.on_grid & local_ok & (parsed.utc_us != local_us), "TIME_VIEWS_DISAGREE")
    instant_ok = parsed.ok | local_ok
    instant_us = np.where(parsed.ok, parsed.utc_us, np.where(local_ok, local_us, 0))

    utc_us = np.where(~ts_empty, parsed.utc_us, local_us)
    time_ok = (reasons & _TIME_FAULTS) == 0
    after = pa.array(utc_us.astype("datetime64[us]"), pa.timestamp("us", tz="UTC"))
    c.log.add("TIMESTAMP_TO_UTC", "period_end_utc", time_ok & parsed.restated, c.records, ts_text, after)
    from_local = time_ok & ts_empty
    if from_local.any():
        before = pc.binary_join_element_wise(pc.fill_null(c.raw("settlement_date"), ""), pc.fill_null(sp_text, ""), " period ")
        c.log.add("LOCAL_PERIOD_TO_UTC", "period_end_utc", from_local, c.records, before, after)
    return np.where(time_ok, utc_us, 0), time_ok, instant_us, instant_ok


# -- Resolving a bucket (all records of its MPANs) ---------------------------------------------


@dataclass
class ConsumptionStats:
    """Counts of a consumption cleansing pass; additive over buckets (``merge``)."""

    source: str = ""
    source_format: str = ""
    rows_in: int = 0
    clean: int = 0
    quarantined: int = 0
    merged: int = 0
    reasons: Counter = field(default_factory=Counter)
    participants: Counter = field(default_factory=Counter)  # (role, id, "clean"|"quarantined"|"merged")
    participant_reasons: Counter = field(default_factory=Counter)  # (role, id, code)
    repairs: RepairLog = field(default_factory=RepairLog)
    ignored_columns: list[str] = field(default_factory=list)

    def reconciliation_line(self) -> str:
        return (
            f"consumption rows in {self.rows_in} = clean {self.clean} + quarantined {self.quarantined}"
            f" + merged duplicates {self.merged}"
        )

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.clean + self.quarantined + self.merged

    def check_reconciliation(self) -> None:
        if not self.reconciles:
            from mhhs_pipeline.cleanse.report import ReconciliationError

            raise ReconciliationError(f"consumption cleansing lost or invented records: {self.reconciliation_line()}")

    def add_bucket(self, routes: pa.Table, status: np.ndarray, masks: np.ndarray) -> None:
        count_bucket(self, routes, status, masks, CONSUMPTION_CHECKS.codes_of)

    def merge(self, other: ConsumptionStats) -> None:
        for name in ("rows_in", "clean", "quarantined", "merged"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("reasons", "participants", "participant_reasons"):
            getattr(self, name).update(getattr(other, name))
        self.repairs.merge(other.repairs)

    def to_dict(self) -> dict:
        return {
            "rows_in": self.rows_in,
            "clean": self.clean,
            "quarantined": self.quarantined,
            "merged_duplicates": self.merged,
            "reasons": dict(sorted(self.reasons.items())),
        }


@dataclass(frozen=True)
class ConsumptionResult:
    clean: pa.Table  # CONSUMPTION_SCHEMA, provenance actual, ordered by (mpan_core, measurement_quantity, period_end_utc)
    quarantine: pa.Table  # CONSUMPTION_QUARANTINE_SCHEMA, ordered by record
    stats: ConsumptionStats
    status: np.ndarray  # int8 CLEAN | QUARANTINED | MERGED per input record (input order)
    masks: np.ndarray  # uint64 final reason mask per input record


def resolve_consumption(records: pa.Table) -> ConsumptionResult:
    """Duplicates and overlaps among normalised records, then clean and quarantine rows.

    - Records with the same (MPAN, measurement quantity, half hour) and the same value,
      quality, estimation reason and faults are one: the lowest record number stands for
      them; if it is clean the others are merged duplicates, else each copy is quarantined.
    - Different records for one half hour are all quarantined (``DUPLICATE_PERIOD``): which
      is right cannot be known. Records whose MPAN, measurement quantity or half hour is
      unusable take no part (they are quarantined for that already).
    """
    n = records.num_rows
    masks = records.column("reasons").to_numpy(zero_copy_only=False).astype(np.uint64)
    status = np.full(n, QUARANTINED, dtype=np.int8)
    mpan = records.column("mpan_int").to_numpy(zero_copy_only=False).astype(np.int64)
    mq = records.column("mq_code").to_numpy(zero_copy_only=False).astype(np.int64)
    t_col = records.column("period_end_us")
    t_ok = np.asarray(pc.is_valid(t_col).to_numpy(zero_copy_only=False), dtype=bool)
    t = pc.fill_null(t_col, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    kwh = pc.fill_null(records.column("consumption_kwh"), -np.inf).to_numpy(zero_copy_only=False)
    q_idx = pc.fill_null(pc.index_in(records.column("quality"), pa.array(QUALITY_CODES)), -1).to_numpy(zero_copy_only=False)
    e = pc.fill_null(records.column("estimation_reason"), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    rec = records.column("record").to_numpy(zero_copy_only=False).astype(np.int64)

    keyed = np.flatnonzero((mpan >= 0) & (mq >= 0) & t_ok)
    s = keyed[np.lexsort((rec[keyed], masks[keyed], e[keyed], q_idx[keyed], kwh[keyed], t[keyed], mq[keyed], mpan[keyed]))]
    m = len(s)
    same_key = np.zeros(m, dtype=bool)
    same_all = np.zeros(m, dtype=bool)
    if m > 1:
        same_key[1:] = (mpan[s][1:] == mpan[s][:-1]) & (mq[s][1:] == mq[s][:-1]) & (t[s][1:] == t[s][:-1])
        same_all[1:] = same_key[1:] & (kwh[s][1:] == kwh[s][:-1]) & (q_idx[s][1:] == q_idx[s][:-1])
        same_all[1:] &= (e[s][1:] == e[s][:-1]) & (masks[s][1:] == masks[s][:-1])
    if m:
        group = np.cumsum(~same_key) - 1
        distinct = np.bincount(group, weights=(~same_all).astype(np.int64))
        conflict = distinct[group] > 1
        masks[s[conflict]] |= CONSUMPTION_CHECKS.bit("DUPLICATE_PERIOD")
        good = masks[s] == 0
        status[s[good & ~same_all]] = CLEAN
        status[s[good & same_all]] = MERGED

    clean_rows = s[status[s] == CLEAN] if m else np.zeros(0, dtype=np.int64)  # already in key order
    clean = _canonical(records.take(pa.array(clean_rows, pa.int64())))
    q_rows = np.flatnonzero(status == QUARANTINED)
    q_rows = q_rows[np.argsort(rec[q_rows], kind="stable")]
    quarantine = _quarantine(records.take(pa.array(q_rows, pa.int64())), masks[q_rows])
    stats = ConsumptionStats()
    stats.add_bucket(records.select(["route_supplier_id", "route_data_service_id", "route_ldso_id"]), status, masks)
    return ConsumptionResult(clean, quarantine, stats, status, masks)


def _canonical(t: pa.Table) -> pa.Table:
    """Canonical rows (both time views from ``core.calendar``) of clean normalised records."""
    end = t.column("period_end_us").to_numpy(zero_copy_only=False).astype(np.int64).astype("datetime64[us]")
    sd, sp = local_view(end) if len(end) else (np.zeros(0, "datetime64[D]"), np.zeros(0, np.int16))
    mq = pc.take(pa.array(MEASUREMENT_QUANTITIES), t.column("mq_code").cast(pa.int32()))
    return pa.table(
        {
            "mpan_core": t.column("mpan_core"),
            "measurement_quantity": mq,
            "period_end_utc": pa.array(end, pa.timestamp("us", tz="UTC")),
            "settlement_date": pa.array(sd, pa.date32()),
            "settlement_period": pa.array(sp, pa.int16()),
            "consumption_kwh": t.column("consumption_kwh"),
            "quality": t.column("quality"),
            "estimation_reason": t.column("estimation_reason"),
            "provenance": pa.array(["actual"] * t.num_rows, pa.string()),
        },
        schema=CONSUMPTION_SCHEMA,
    )


def _quarantine(t: pa.Table, masks: np.ndarray) -> pa.Table:
    codes, texts = CONSUMPTION_CHECKS.describe_many(masks)
    return quarantine_table(t, CONSUMPTION_COLUMNS, codes, texts, CONSUMPTION_QUARANTINE_SCHEMA)


def cleanse_consumption_records(chunk: pa.Table, registrations: RegistrationIndex | pa.Table, log: RepairLog | None = None) -> ConsumptionResult:
    """``normalise_consumption`` + ``resolve_consumption`` in one go, for records that fit in
    memory together (every record of each MPAN). ``record`` is added (1..n) when absent;
    other columns may be text or already typed (they are read as text)."""
    if "record" not in chunk.column_names:
        chunk = chunk.append_column("record", pa.array(np.arange(1, chunk.num_rows + 1, dtype=np.int64)))
    log = log if log is not None else RepairLog()
    result = resolve_consumption(normalise_consumption(chunk, registrations, log))
    result.stats.repairs = log
    result.stats.check_reconciliation()
    return result


# -- Report ------------------------------------------------------------------------------------


def render_consumption_markdown(stats: ConsumptionStats) -> str:
    """A Markdown section for the cleansing report (append it to the registration report)."""
    lines = [
        "## Actual consumption",
        "",
        f"Source: `{safe_text(stats.source, 200)}` ({stats.source_format})",
        "",
        f"**Reconciliation:** {stats.reconciliation_line()}" + (" — OK" if stats.reconciles else " — MISMATCH"),
    ]
    if stats.ignored_columns:
        lines += ["", "Columns not used (kept in quarantine `other_fields`): " + ", ".join(f"`{safe_text(c)}`" for c in stats.ignored_columns)]
    lines += ["", "### Quarantined consumption rows by reason", "", "A row with several faults counts under each.", ""]
    lines += ["| reason_code | rows | rule |", "|---|---:|---|"]
    lines += [f"| {k} | {stats.reasons[k]} | {CONSUMPTION_REASON_CODES[k]} |" for k in CONSUMPTION_REASON_CODES if stats.reasons.get(k)]
    if not stats.reasons:
        lines.append("| (none) | 0 | |")
    lines += ["", "### Consumption rows by participant", "", "| role | participant | clean | quarantined | merged |", "|---|---|---:|---:|---:|"]
    for role, pid in sorted({(r, p) for r, p, _ in stats.participants}):
        k = [stats.participants.get((role, pid, s), 0) for s in ("clean", "quarantined", "merged")]
        lines.append(f"| {role} | {safe_text(pid)} | {k[0]} | {k[1]} | {k[2]} |")
    lines += ["", "### Quarantined consumption rows by participant and reason", "", "| role | participant | reason_code | rows |", "|---|---|---|---:|"]
    for (role, pid, code), k in sorted(stats.participant_reasons.items()):
        lines.append(f"| {role} | {safe_text(pid)} | {code} | {k} |")
    lines += ["", "### Consumption repairs", "", "| repair | field | rows | first record | example |", "|---|---|---:|---:|---|"]
    for (code, column), k in sorted(stats.repairs.counts.items()):
        rec, before, after = stats.repairs.examples[(code, column)]
        lines.append(f"| {code} | {column} | {k} | {rec} | `{safe_text(before)}` → `{safe_text(after)}` |")
    if stats.merged:
        lines.append(f"| DUPLICATE_MERGED | (record) | {stats.merged} | | {CONSUMPTION_REPAIR_CODES['DUPLICATE_MERGED']} |")
    return "\n".join(lines) + "\n"


assert set(CONSUMPTION_REASON_CODES) == {r.code for r in CONSUMPTION_CHECKS.checks}
assert all(re.fullmatch(r"[A-Z_]+", k) for k in CONSUMPTION_REASON_CODES)
assert not any(";" in r.text for r in CONSUMPTION_CHECKS.checks), "reason texts are joined by ';'"
