"""Which input columns an extract may carry, and how their headers are recognised.

Headers are matched after folding case, spaces and punctuation ("Supplier Id",
"SUPPLIER-ID" and "supplier_id" are the same column), plus a few aliases participants
use (``MPAN`` for ``mpan_core``). Columns that match nothing are carried into the
quarantine rows (``other_fields``) but never into clean registrations.
"""

from __future__ import annotations

import re

# Canonical registration columns an extract may carry (``provenance`` is ours to set).
INPUT_COLUMNS: tuple[str, ...] = (
    "mpan_core",
    "effective_from",
    "effective_to",
    "supplier_id",
    "data_service_id",
    "metering_service_id",
    "distributor_id",
    "gsp_group",
    "market_segment",
    "connection_type",
    "energisation_status",
    "energy_direction",
    "domestic_premise",
    "annual_consumption_kwh",
    "dcc_service_flag",
    "archetype",
    "linked_import_mpan",
)

# A file without these columns is refused as a whole (the rows cannot be keyed or routed).
REQUIRED_COLUMNS: tuple[str, ...] = ("mpan_core", "effective_from", "supplier_id", "data_service_id", "metering_service_id")

ALIASES: dict[str, str] = {
    "mpan": "mpan_core",
    "mpancore": "mpan_core",
    "mpan_core_id": "mpan_core",
    "effective_from_date": "effective_from",
    "effective_from_settlement_date": "effective_from",
    "effective_to_date": "effective_to",
    "effective_to_settlement_date": "effective_to",
    "supplier": "supplier_id",
    "supplier_mpid": "supplier_id",
    "data_service": "data_service_id",
    "data_service_mpid": "data_service_id",
    "metering_service": "metering_service_id",
    "metering_service_mpid": "metering_service_id",
    "distributor": "distributor_id",
    "gsp": "gsp_group",
    "gsp_group_id": "gsp_group",
    "segment": "market_segment",
    "domestic_premise_indicator": "domestic_premise",
    "annual_consumption": "annual_consumption_kwh",
    "linked_import_mpan_core": "linked_import_mpan",
}


def fold_header(name: str) -> str:
    """``" Supplier Id "`` -> ``supplier_id``: lower case, runs of non-alphanumerics as ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def canonical_name(name: str) -> str | None:
    """The canonical column a header names, or None when it is not one of ours."""
    folded = fold_header(name)
    folded = ALIASES.get(folded, folded)
    return folded if folded in INPUT_COLUMNS else None


def map_header(names: list[str]) -> tuple[dict[int, str], dict[int, str], list[str]]:
    """Map header positions to canonical columns.

    Returns (canonical by position, other columns by position, problems). Problems are
    human sentences: two headers naming the same column, a required column missing, or
    a header repeated (a reader cannot tell which is meant).
    """
    canonical, other, problems, seen = map_columns(names, canonical_name)
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if missing:
        aliases = {c: sorted(a for a, t in ALIASES.items() if t == c) for c in missing}
        hint = "; ".join(f"{c}" + (f" (or {', '.join(aliases[c])})" if aliases[c] else "") for c in missing)
        problems.append(f"required column(s) missing: {hint}; add them to the header row")
    return canonical, other, problems


def map_columns(names: list[str], column_of) -> tuple[dict[int, str], dict[int, str], list[str], dict[str, str]]:
    """Map header positions with ``column_of`` (header -> canonical column or None).

    Returns (canonical by position, other columns by position, problems, the header
    that named each canonical column). Problems: two headers naming the same column,
    or a header repeated among the other columns. Required columns are the caller's.
    """
    canonical: dict[int, str] = {}
    other: dict[int, str] = {}
    problems: list[str] = []
    seen: dict[str, str] = {}
    for i, raw in enumerate(names):
        name = column_of(raw)
        if name is None:
            key = fold_header(raw) or f"column_{i + 1}"
            if key in other.values():
                problems.append(f"header {raw!r} (column {i + 1}) is repeated: give each column a distinct name")
            other[i] = key
            continue
        if name in seen:
            problems.append(
                f"headers {seen[name]!r} and {raw!r} (column {i + 1}) both mean {name}: remove or rename one"
            )
            continue
        seen[name] = raw
        canonical[i] = name
    return canonical, other, problems, seen
