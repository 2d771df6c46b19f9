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


def code_counts(masks: np.ndarray) -> dict[str, int]:
    """Rows per reason code (a row with two codes counts under both)."""
    masks = np.asarray(masks, dtype=np.uint64)
    uniq, counts = np.unique(masks, return_counts=True)
    out: dict[str, int] = {}
    for m, n in zip(uniq, counts, strict=True):
        for code in codes_of(int(m)):
            out[code] = out.get(code, 0) + int(n)
    return out


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
