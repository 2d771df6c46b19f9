"""Which columns an actual half-hourly consumption extract may carry, and their headers.

Headers are folded like registration headers (case, spaces and punctuation; see
``cleanse.columns.fold_header``) and a few aliases are accepted. The half hour is given
either as its UTC end (``period_end_utc``) or in the legacy local view
(``settlement_date`` + ``settlement_period``, Europe/London clock day, 1-50); a file may
carry both (our own canonical files do), and then they must agree row by row. Columns
that match nothing go to the quarantine's ``other_fields`` only.
"""

from __future__ import annotations

from mhhs_pipeline.cleanse.columns import fold_header, map_columns

CONSUMPTION_COLUMNS: tuple[str, ...] = (
    "mpan_core",
    "measurement_quantity",
    "period_end_utc",
    "settlement_date",
    "settlement_period",
    "consumption_kwh",
    "quality",
    "estimation_reason",
)

# Deliberately no alias for a bare "timestamp"/"datetime" (start or end of the half hour?)
# nor for "sp" (a period number in legacy files, the UTC period end in IF-021 JSON).
CONSUMPTION_ALIASES: dict[str, str] = {
    "mpan": "mpan_core",
    "mpancore": "mpan_core",
    "mpan_core_id": "mpan_core",
    "mq": "measurement_quantity",
    "mqid": "measurement_quantity",
    "measurement_quantity_id": "measurement_quantity",
    "period_end": "period_end_utc",
    "utc_period_end": "period_end_utc",
    "period_end_time_utc": "period_end_utc",
    "period_end_datetime_utc": "period_end_utc",
    "settlement_period_end_utc": "period_end_utc",
    "utc_settlement_period_end": "period_end_utc",
    "end_utc": "period_end_utc",
    "settlement_day": "settlement_date",
    "settlement_date_local": "settlement_date",
    "local_settlement_date": "settlement_date",
    "settlement_period_local": "settlement_period",
    "local_settlement_period": "settlement_period",
    "period": "settlement_period",
    "period_number": "settlement_period",
    "kwh": "consumption_kwh",
    "consumption": "consumption_kwh",
    "value_kwh": "consumption_kwh",
    "value": "consumption_kwh",
    "q": "quality",
    "quality_indicator": "quality",
    "settlement_period_quality_indicator": "quality",
    "estimation_reason_code": "estimation_reason",
}


def consumption_column(name: str) -> str | None:
    """The canonical consumption column a header names, or None."""
    folded = fold_header(name)
    folded = CONSUMPTION_ALIASES.get(folded, folded)
    return folded if folded in CONSUMPTION_COLUMNS else None


def map_consumption_header(names: list[str]) -> tuple[dict[int, str], dict[int, str], list[str]]:
    """(canonical by position, other columns by position, problems) -- like ``map_header``.

    Required: ``mpan_core``, ``consumption_kwh`` and a half hour (``period_end_utc``, or
    ``settlement_date`` with ``settlement_period``).
    """
    canonical, other, problems, seen = map_columns(names, consumption_column)

    def hint(column: str) -> str:
        aliases = sorted(a for a, t in CONSUMPTION_ALIASES.items() if t == column)
        return column + (f" (or {', '.join(aliases)})" if aliases else "")

    missing = [hint(c) for c in ("mpan_core", "consumption_kwh") if c not in seen]
    has_utc = "period_end_utc" in seen
    has_date, has_period = "settlement_date" in seen, "settlement_period" in seen
    if not has_utc and not (has_date and has_period):
        if has_date:
            missing.append(hint("settlement_period"))
        elif has_period:
            missing.append(hint("settlement_date"))
        else:
            missing.append(f"{hint('period_end_utc')}, or settlement_date with settlement_period")
    if missing:
        problems.append(f"required column(s) missing: {'; '.join(missing)}; add them to the header row")
    return canonical, other, problems
