"""Counts of a cleansing pass and its Markdown report.

The counts are additive over buckets (``CleanseStats.merge``), so a pass over any
number of buckets reports the same numbers. Values quoted from the input (repair
examples) are neutralised before they reach Markdown: a report opened in a viewer or
pasted into a spreadsheet must not run a formula or break the table.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.cleanse.groups import CLEAN, MERGED, QUARANTINED
from mhhs_pipeline.cleanse.reasons import REASON_CODES, REPAIR_CODES, codes_of
from mhhs_pipeline.cleanse.rules import RepairLog

UNIDENTIFIED = "(unidentified)"
_ROLES = (("supplier", "route_supplier_id"), ("data_service", "route_data_service_id"), ("ldso", "route_ldso_id"))


class ReconciliationError(RuntimeError):
    """Rows in != clean + quarantined + merged: a bug, never a property of the input."""


@dataclass
class CleanseStats:
    source: str = ""
    source_format: str = ""
    rows_in: int = 0
    clean: int = 0
    quarantined: int = 0
    merged: int = 0
    manufactured_rows: int = 0
    reasons: Counter = field(default_factory=Counter)
    manufactured_fields: Counter = field(default_factory=Counter)
    participants: Counter = field(default_factory=Counter)  # (role, id, "clean"|"quarantined"|"merged")
    participant_reasons: Counter = field(default_factory=Counter)  # (role, id, code)
    repairs: RepairLog = field(default_factory=RepairLog)
    ignored_columns: list[str] = field(default_factory=list)

    def reconciliation_line(self) -> str:
        return (
            f"rows in {self.rows_in} = clean {self.clean} + quarantined {self.quarantined}"
            f" + merged duplicates {self.merged}"
        )

    def check_reconciliation(self) -> None:
        if self.rows_in != self.clean + self.quarantined + self.merged:
            raise ReconciliationError(f"cleansing lost or invented records: {self.reconciliation_line()}")

    def add_bucket(
        self, routes: pa.Table, status: np.ndarray, reasons: np.ndarray, fills: dict[str, int], manufactured_rows: int, weights: np.ndarray | None = None
    ) -> None:
        """Count one resolved bucket. ``routes`` has the route_* columns of every record;
        ``weights``: records each row stands for (see ``count_bucket``)."""
        count_bucket(self, routes, status, reasons, codes_of, weights)
        self.manufactured_fields.update(fills)
        self.manufactured_rows += manufactured_rows

    def merge(self, other: CleanseStats) -> None:
        for name in ("rows_in", "clean", "quarantined", "merged", "manufactured_rows"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("reasons", "manufactured_fields", "participants", "participant_reasons"):
            getattr(self, name).update(getattr(other, name))
        self.repairs.merge(other.repairs)

    def to_dict(self) -> dict:
        """The headline numbers (for the manifest and for callers)."""
        return {
            "rows_in": self.rows_in,
            "clean": self.clean,
            "quarantined": self.quarantined,
            "merged_duplicates": self.merged,
            "manufactured_rows": self.manufactured_rows,
            "reasons": dict(sorted(self.reasons.items())),
        }


def _counts(keys: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, inverse = np.unique(keys, return_inverse=True)
    return uniq, np.bincount(inverse.reshape(-1), weights=weights, minlength=len(uniq)).astype(np.int64)


def count_bucket(stats, routes: pa.Table, status: np.ndarray, masks: np.ndarray, codes_of, weights: np.ndarray | None = None) -> None:
    """Add one resolved bucket to ``stats`` (``CleanseStats`` or ``ConsumptionStats``):
    rows in, records by status, quarantined records by reason, and both by participant.
    ``routes`` has the route_* columns of every record; ``codes_of`` reads a reason mask;
    ``weights``: how many records each row stands for (collapsed copies), else one each."""
    w = np.ones(len(status), np.int64) if weights is None else np.asarray(weights, np.int64)
    stats.rows_in += int(w.sum())
    names = {CLEAN: "clean", QUARANTINED: "quarantined", MERGED: "merged"}
    for st, name in names.items():
        setattr(stats, name, getattr(stats, name) + int(w[status == st].sum()))
    q = status == QUARANTINED
    if q.any():
        for mask, n in zip(*_counts(np.asarray(masks, np.uint64)[q], w[q]), strict=True):
            for code in codes_of(int(mask)):
                stats.reasons[code] = stats.reasons.get(code, 0) + int(n)
    for role, column in _ROLES:
        ids = np.asarray(pc.fill_null(routes.column(column), UNIDENTIFIED).to_numpy(zero_copy_only=False)).astype(str)
        for st, name in names.items():
            sel = status == st
            if sel.any():
                uniq, counts = _counts(ids[sel], w[sel])
                stats.participants.update({(role, i, name): int(c) for i, c in zip(uniq, counts, strict=True)})
        if not q.any():
            continue
        combo = np.char.add(np.char.add(ids[q], "\x1f"), np.asarray(masks, np.uint64)[q].astype(str))
        uniq, counts = _counts(combo, w[q])
        for key, c in zip(uniq.tolist(), counts, strict=True):
            pid, mask = key.split("\x1f")
            for code in codes_of(int(mask)):
                stats.participant_reasons[(role, pid, code)] += int(c)


def safe_text(value: str, limit: int = 40) -> str:
    """Input text made inert for Markdown and spreadsheets: no formula lead, no pipes or ticks."""
    text = re.sub(r"[\x00-\x1f\x7f]", "?", value)[:limit]
    if text[:1] in ("=", "+", "-", "@"):
        text = "'" + text
    return text.replace("|", "\\|").replace("`", "'")


def render_markdown(stats: CleanseStats) -> str:
    lines = [
        "# Cleansing report",
        "",
        f"Source: `{safe_text(stats.source, 200)}` ({stats.source_format})",
        "",
        f"**Reconciliation:** {stats.reconciliation_line()}"
        + (" — OK" if stats.rows_in == stats.clean + stats.quarantined + stats.merged else " — MISMATCH"),
        "",
        f"Clean records: {stats.clean} ({stats.clean - stats.manufactured_rows} `actual`, "
        f"{stats.manufactured_rows} `manufactured`: at least one attribute filled in).",
    ]
    if stats.ignored_columns:
        lines += ["", "Columns not used (kept in quarantine `other_fields`): " + ", ".join(f"`{safe_text(c)}`" for c in stats.ignored_columns)]
    lines += ["", "## Quarantined records by reason", "", "A record with several faults counts under each.", ""]
    lines += ["| reason_code | records | rule |", "|---|---:|---|"]
    lines += [f"| {c} | {stats.reasons[c]} | {REASON_CODES[c]} |" for c in REASON_CODES if stats.reasons.get(c)]
    if not stats.reasons:
        lines.append("| (none) | 0 | |")
    lines += ["", "## Records by participant", "", "| role | participant | clean | quarantined | merged |", "|---|---|---:|---:|---:|"]
    keys = sorted({(r, p) for r, p, _ in stats.participants})
    for role, pid in keys:
        n = [stats.participants.get((role, pid, s), 0) for s in ("clean", "quarantined", "merged")]
        lines.append(f"| {role} | {safe_text(pid)} | {n[0]} | {n[1]} | {n[2]} |")
    lines += ["", "## Quarantined records by participant and reason", "", "| role | participant | reason_code | records |", "|---|---|---|---:|"]
    for (role, pid, code), n in sorted(stats.participant_reasons.items()):
        lines.append(f"| {role} | {safe_text(pid)} | {code} | {n} |")
    lines += ["", "## Repairs", "", "Made in place; a repaired record can still be quarantined for another fault.", ""]
    lines += ["| repair | field | records | first record | example |", "|---|---|---:|---:|---|"]
    for (code, column), n in sorted(stats.repairs.counts.items()):
        rec, before, after = stats.repairs.examples[(code, column)]
        lines.append(f"| {code} | {column} | {n} | {rec} | `{safe_text(before)}` → `{safe_text(after)}` |")
    if stats.merged:
        lines.append(f"| DUPLICATE_MERGED | (record) | {stats.merged} | | {REPAIR_CODES['DUPLICATE_MERGED']} |")
    lines += ["", "## Manufactured attributes", "", "| field | records filled |", "|---|---:|"]
    lines += [f"| {f} | {n} |" for f, n in sorted(stats.manufactured_fields.items())]
    return "\n".join(lines) + "\n"
