"""Reason codes (why a record is quarantined) and repair codes (what was fixed in place).

One reason code per rule; the table in ``docs/reason-codes.md`` lists the same codes and
a test keeps the two in step. A rejected record carries a bit mask (uint64) of the checks
it failed; a check is a (code, field) pair so the reason text can name the field while
the code stays one per rule. Masks are turned into the ``reason_code`` / ``reason`` text
columns once per distinct mask, never once per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MANDATORY_FIELDS = ("mpan_core", "effective_from", "supplier_id", "data_service_id", "metering_service_id")


@dataclass(frozen=True)
class Reason:
    code: str
    text: str  # what is wrong and how the sender fixes it
    field: str | None = None  # set for checks that exist once per field


# code -> rule text (the docs table); order is the order codes are listed in a quarantine row.
REASON_CODES: dict[str, str] = {
    "MISSING_FIELD": "a mandatory field is empty: fill it in the source system",
    "MPAN_FORMAT": "mpan_core is not 13 digits (never guessed): send the 13-digit MPAN core",
    "MPAN_CHECK_DIGIT": "mpan_core check digit is wrong (never corrected): check the MPAN",
    "BAD_DATE": "date is not a calendar date in YYYY-MM-DD or YYYYMMDD",
    "EFFECTIVE_TO_BEFORE_FROM": "effective_to is before effective_from",
    "UNKNOWN_DISTRIBUTOR": "distributor id is not a known 2-digit distributor (DNO 10-23 or a known iDNO)",
    "DISTRIBUTOR_MPAN_MISMATCH": "distributor_id differs from the first two digits of mpan_core",
    "GSP_DISTRIBUTOR_MISMATCH": "gsp_group is not the GSP group of this DNO area (DNOs 10-23 have one each)",
    "UNKNOWN_GSP_GROUP": "gsp_group is not one of _A.._P (no _I, _O)",
    "UNKNOWN_SEGMENT": "market_segment is not S, A or U",
    "UNKNOWN_CONNECTION_TYPE": "connection_type is not W, L, H, E or U",
    "UNKNOWN_ENERGISATION": "energisation_status is not E, D or U",
    "UNKNOWN_ENERGY_DIRECTION": "energy_direction is not I or E",
    "UNKNOWN_DCC_FLAG": "dcc_service_flag is not A, I or N",
    "UNKNOWN_ARCHETYPE": "archetype is not a load archetype the model knows",
    "BAD_DOMESTIC_FLAG": "domestic_premise is not a boolean (true/false, Y/N, 1/0)",
    "ANNUAL_KWH_NOT_NUMERIC": "annual_consumption_kwh is not a number",
    "ANNUAL_KWH_NEGATIVE": "annual_consumption_kwh is negative",
    "ANNUAL_KWH_ABSURD": "annual_consumption_kwh exceeds what the connection type can carry in a year",
    "INVALID_SUPPLIER_ID": "supplier_id is not an MPID (4 upper-case letters or digits)",
    "INVALID_DATA_SERVICE_ID": "data_service_id is not an MPID (4 upper-case letters or digits)",
    "INVALID_METERING_SERVICE_ID": "metering_service_id is not an MPID (4 upper-case letters or digits)",
    "UNSAFE_VALUE": "a field starts with = + - @ or holds control characters (spreadsheet formula or injection)",
    "BAD_LINKED_MPAN": "linked_import_mpan is not a valid 13-digit MPAN core",
    "DUPLICATE_KEY": "several different rows for the same mpan_core and effective_from",
    "OVERLAPPING_PERIOD": "registration period overlaps another registration of the same MPAN",
}

_CHECKS: list[Reason] = []
for _code, _text in REASON_CODES.items():
    if _code == "MISSING_FIELD":
        _CHECKS += [Reason(_code, f"missing mandatory field {f}", f) for f in MANDATORY_FIELDS]
    elif _code == "BAD_DATE":
        _CHECKS += [
            Reason(_code, f"{f} is not a date (use YYYY-MM-DD or YYYYMMDD)", f) for f in ("effective_from", "effective_to")
        ]
    else:
        _CHECKS.append(Reason(_code, _text))
assert len(_CHECKS) <= 64, "reason checks must fit a uint64 mask"

CHECKS: tuple[Reason, ...] = tuple(_CHECKS)
_BIT = {(r.code, r.field): np.uint64(1) << np.uint64(i) for i, r in enumerate(CHECKS)}


def bit(code: str, field: str | None = None) -> np.uint64:
    """The mask bit of a check: ``bit("MISSING_FIELD", "supplier_id")``, ``bit("MPAN_FORMAT")``."""
    return _BIT[(code, field)]


def codes_of(mask: int) -> list[str]:
    """Distinct reason codes in a mask, in table order."""
    seen: list[str] = []
    for i, r in enumerate(CHECKS):
        if mask >> i & 1 and r.code not in seen:
            seen.append(r.code)
    return seen


def describe(mask: int) -> tuple[str, str]:
    """(``reason_code``, ``reason``) text of a mask: codes and texts joined by ``;``, aligned."""
    by_code: dict[str, list[str]] = {}
    for i, r in enumerate(CHECKS):
        if mask >> i & 1:
            by_code.setdefault(r.code, []).append(r.text)
    return ";".join(by_code), ";".join(", ".join(texts) for texts in by_code.values())


def describe_many(masks: np.ndarray) -> tuple[list[str], list[str]]:
    """``describe`` for an array of masks, computed once per distinct mask."""
    masks = np.asarray(masks, dtype=np.uint64)
    uniq, inv = np.unique(masks, return_inverse=True)
    texts = [describe(int(m)) for m in uniq]
    return [texts[i][0] for i in inv], [texts[i][1] for i in inv]


# Repairs: made in place, counted per (repair, field) and reported; never change an MPAN's digits.
REPAIR_CODES: dict[str, str] = {
    "TRIM_WHITESPACE": "leading/trailing spaces removed",
    "UPPER_CASE": "code or MPID upper-cased",
    "LOWER_CASE": "archetype lower-cased",
    "GSP_UNDERSCORE": "GSP group letter given without its underscore ('A' -> '_A')",
    "DATE_FORMAT": "date rewritten as ISO YYYY-MM-DD (from YYYYMMDD, YYYY/MM/DD or a midnight timestamp)",
    "MPAN_SEPARATORS": "spaces or hyphens inside the MPAN core removed (digits unchanged)",
    "BOOLEAN_FORMAT": "domestic_premise spelled Y/N, yes/no, 1/0 or similar",
    "DISTRIBUTOR_DERIVED": "empty distributor_id taken from the MPAN core's first two digits",
    "GSP_DERIVED": "empty gsp_group taken from the DNO area of the distributor id",
    "DUPLICATE_MERGED": "exact duplicate of another record (after the repairs above) merged into it",
}


# -- Actual half-hourly consumption extracts ---------------------------------------------------
# A second rule table with its own mask space: a consumption record is never checked
# against registration rules, and the registration masks above keep their bits. The
# table in docs/reason-codes.md ("Consumption reason codes") lists the same codes.

CONSUMPTION_REASON_CODES: dict[str, str] = {
    "MISSING_VALUE": "a mandatory field is empty: fill it in the source system",
    "BAD_MPAN": "mpan_core is not a valid 13-digit MPAN core (format or check digit, never guessed)",
    "UNKNOWN_MPAN": "mpan_core is not in the clean registrations",
    "UNKNOWN_MEASUREMENT_QUANTITY": "measurement_quantity is not AI, AE, RI or RE",
    "BAD_TIMESTAMP": "time field cannot be read",
    "OFF_HALF_HOUR": "period end is not on :00 or :30 (whole minutes, no seconds)",
    "WRONG_PERIOD_COUNT": "settlement_period exceeds the periods of that local day (46 on the spring clock change, 50 in autumn, else 48)",
    "TIME_VIEWS_DISAGREE": "period_end_utc and settlement_date/settlement_period name different half hours",
    "KWH_NOT_NUMERIC": "consumption_kwh is not a finite number",
    "NEGATIVE_VALUE": "consumption_kwh is negative (export is AE with positive values)",
    "UNKNOWN_QUALITY": "quality is not a DI-083 quality code",
    "BAD_ESTIMATION_REASON": "estimation_reason is not a DI-076 code 1-10",
    "QUALITY_REASON_MISMATCH": "an estimate (quality E...) without estimation_reason, or an actual with one",
    "ZERO_QUALITY_NONZERO": "a zero-family quality (ZE, ZE1-ZE3) with a value that is not 0",
    "NO_REGISTRATION_IN_FORCE": "no registration of this MPAN is in force on the UTC settlement day of the half hour",
    "MQ_DIRECTION_MISMATCH": "AE on an import MPAN or AI on an export MPAN (registration in force)",
    "DE_ENERGISED_CONSUMPTION": "non-zero consumption on a day the registration in force is de-energised (D)",
    "BEYOND_PHYSICAL_BOUND": "value exceeds what the connection type can carry in half an hour",
    "DUPLICATE_PERIOD": "different values for the same MPAN, measurement quantity and half hour (duplicate or overlapping period)",
}

# Fields a consumption record cannot do without (the time is one view or the other).
CONSUMPTION_MISSING = {
    "mpan_core": "missing mandatory field mpan_core",
    "period": "missing half hour: give period_end_utc, or settlement_date and settlement_period",
    "settlement_date": "missing settlement_date (settlement_period is given without it)",
    "settlement_period": "missing settlement_period (settlement_date is given without it)",
    "consumption_kwh": "missing mandatory field consumption_kwh",
}
CONSUMPTION_BAD_TIME = {
    "period_end_utc": "period_end_utc is not an ISO date-time (YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM])",
    "settlement_date": "settlement_date is not a date (use YYYY-MM-DD or YYYYMMDD)",
    "settlement_period": "settlement_period is not an integer 1-50",
}


class ReasonTable:
    """Checks of one rule table as bits of a uint64 mask: ``bit``, ``describe_many``, counts."""

    def __init__(self, checks: list[Reason]):
        assert len(checks) <= 64, "reason checks must fit a uint64 mask"
        self.checks: tuple[Reason, ...] = tuple(checks)
        self._bits = {(r.code, r.field): np.uint64(1) << np.uint64(i) for i, r in enumerate(self.checks)}

    def bit(self, code: str, field: str | None = None) -> np.uint64:
        return self._bits[(code, field)]

    def codes_of(self, mask: int) -> list[str]:
        seen: list[str] = []
        for i, r in enumerate(self.checks):
            if mask >> i & 1 and r.code not in seen:
                seen.append(r.code)
        return seen

    def describe(self, mask: int) -> tuple[str, str]:
        by_code: dict[str, list[str]] = {}
        for i, r in enumerate(self.checks):
            if mask >> i & 1:
                by_code.setdefault(r.code, []).append(r.text)
        return ";".join(by_code), ";".join(", ".join(texts) for texts in by_code.values())

    def describe_many(self, masks: np.ndarray) -> tuple[list[str], list[str]]:
        masks = np.asarray(masks, dtype=np.uint64)
        uniq, inv = np.unique(masks, return_inverse=True)
        texts = [self.describe(int(m)) for m in uniq]
        return [texts[i][0] for i in inv], [texts[i][1] for i in inv]


_CONSUMPTION_CHECKS: list[Reason] = []
for _code, _text in CONSUMPTION_REASON_CODES.items():
    if _code == "MISSING_VALUE":
        _CONSUMPTION_CHECKS += [Reason(_code, t, f) for f, t in CONSUMPTION_MISSING.items()]
    elif _code == "BAD_TIMESTAMP":
        _CONSUMPTION_CHECKS += [Reason(_code, t, f) for f, t in CONSUMPTION_BAD_TIME.items()]
    else:
        _CONSUMPTION_CHECKS.append(Reason(_code, _text))

CONSUMPTION_CHECKS = ReasonTable(_CONSUMPTION_CHECKS)

# Repairs of consumption records (counted per (repair, field) in a ``RepairLog``).
CONSUMPTION_REPAIR_CODES: dict[str, str] = {
    "TRIM_WHITESPACE": "leading/trailing spaces removed",
    "UPPER_CASE": "measurement quantity or quality upper-cased",
    "MPAN_SEPARATORS": "spaces or hyphens inside the MPAN core removed (digits unchanged)",
    "DATE_FORMAT": "settlement_date rewritten as ISO YYYY-MM-DD (from YYYYMMDD, YYYY/MM/DD or a midnight timestamp)",
    "TIMESTAMP_TO_UTC": "period end with a non-zero UTC offset, or written 24:00, restated in UTC",
    "LOCAL_PERIOD_TO_UTC": "settlement_date + settlement_period (local day) converted to period_end_utc",
    "DEFAULT_MEASUREMENT_QUANTITY": "measurement_quantity empty or absent: AI",
    "DEFAULT_QUALITY": "quality empty or absent: A (actual)",
    "KWH_ROUNDED": "consumption_kwh with more than 3 decimals rounded to 3",
    "DUPLICATE_MERGED": "exact duplicate of another record (same half hour, value, quality) merged into it",
}
