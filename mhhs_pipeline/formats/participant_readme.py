"""README.txt for each participant prefix: what the files are and how to read them."""

from __future__ import annotations

from collections.abc import Iterable

_CONVENTIONS = """\
Time conventions
  period_end_utc     UTC instant at the END of the half hour (ISO 8601, 'Z' in CSV).
                     A UTC settlement day always has 48 periods.
  settlement_date    local (Europe/London) settlement day of the half hour, and
  settlement_period  its period counted from local midnight: 1-48, 46 on the last
                     Sunday of March, 50 on the last Sunday of October.
  A row belongs to the registration in force on the UTC settlement day that contains
  it (the day of period_end_utc - 30 min): a change of supplier or data service splits
  an MPAN's data at the effective date.

Consumption columns (consumption/*.parquet|csv)
  mpan_core             13-digit MPAN core
  measurement_quantity  AI active import, AE active export, RI/RE reactive import/export
  period_end_utc        see above
  settlement_date       see above
  settlement_period     see above
  consumption_kwh       kWh (kvarh for RI/RE) in the half hour, 3 decimal places
  quality               DI-083 quality: A actual, E estimate
  estimation_reason     DI-076 reason for estimates (2 Missing, 4 CommsFault, ...), empty for actuals
  provenance            manufactured (synthetic) or actual (from a participant extract)
  While de-energised an MPAN has rows of 0.000 with quality A; no rows before connection.

Other formats
  *.if021.json          MHHS IF-021 (schema 011) DIP message arrays: one message per MPAN x
                        measurement quantity x up to 200 UTC days; sp = UTC end of period,
                        v = kWh with 3 decimals
  dcc_profile_data/*.xml  DCC DUIS 4.8.1 (import) / 4.8.3 (export) parsed GBCSResponse, values in
                        whole Wh, LogEntry Timestamp = UTC end of the half hour
  registrations/*       canonical registration rows: effective_from/effective_to are inclusive
                        UTC settlement days (effective_to empty = open)

Checksums: the sha256 of every file is below and in the run's manifest.json (written last:
its presence means the run is complete). This is synthetic test data.
"""


def participant_readme(run_id: str, role: str, participant_id: str, files: Iterable[dict]) -> bytes:
    """The README text for one participant, listing its files with rows, bytes and sha256."""
    prefix = f"{role}/{participant_id}/"
    lines = [
        f"MHHS test data - run {run_id}",
        f"Participant: {participant_id} ({role.replace('_', ' ')})",
        "",
        _CONVENTIONS,
        "Files (path relative to this folder, format, rows = half-hour values or registration rows, bytes, sha256)",
    ]
    for f in sorted(files, key=lambda f: f["path"]):
        lines.append(f"  {f['path'].removeprefix(prefix)}  {f['format']}  {f['rows']}  {f['bytes']}  {f['sha256']}")
    return ("\n".join(lines) + "\n").encode("utf-8")
