"""``mhhs-pipeline validate RUN_URL``: prove a landed run is complete and correct.

Checks, in order: the manifest (present, well formed); every listed file exists with its
byte count and sha256, and nothing unlisted sits in the run directory; paths match the
participant they claim; schemas; invariants of every consumption file (non-negative,
3 decimals, no duplicate periods, the local settlement date/period consistent with
``period_end_utc``, valid MPAN check digits); every participant row belongs to that
participant on its UTC settlement day; the central copy has 48 UTC periods for every
registered MPAN-day of the window; participant slices add up to the central copy; CSV
content equals Parquet content. Returns every problem found, not just the first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mhhs_pipeline.core.calendar import EPOCH_DAY, local_view, utc_settlement_day
from mhhs_pipeline.core.load.faults import GROUND_TRUTH_SCHEMA, RAW_SCHEMA
from mhhs_pipeline.core.mpan import check_digits_vec
from mhhs_pipeline.core.participants import ldso_ids
from mhhs_pipeline.core.registrations import registrations_on_days
from mhhs_pipeline.core.schema import CONSUMPTION_SCHEMA, REGISTRATION_SCHEMA, same_columns
from mhhs_pipeline.formats.compression import decompress
from mhhs_pipeline.formats.tabular import decode_csv, fixed3
from mhhs_pipeline.io.paths import UnsafePathError, participant_prefix
from mhhs_pipeline.io.store import MANIFEST, store_for_run_url

_SCHEMAS = {
    "consumption": CONSUMPTION_SCHEMA,
    "registrations": REGISTRATION_SCHEMA,
    # Raw reads keep their defects on purpose (duplicates, off-grid stamps, sentinels): only
    # schema, row counts and ownership are checked for them, never consumption invariants.
    "meter_reads_raw": RAW_SCHEMA,
    "ground_truth": GROUND_TRUTH_SCHEMA,
}
# Which roles receive each dataset (each role's slices add up to the central copy).
_ROLES_OF = {
    "consumption": ("supplier", "data_service", "ldso"),
    "registrations": ("supplier", "data_service", "ldso"),
    "meter_reads_raw": ("data_service",),
    "ground_truth": ("data_service",),
}
_TABULAR = ("parquet", "csv")
MAX_ERRORS_PER_CHECK = 20


@dataclass
class ValidationReport:
    run_url: str
    errors: list[str] = field(default_factory=list)
    files_checked: int = 0
    consumption_rows_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, message: str) -> None:
        self.errors.append(message)

    def render(self) -> str:
        head = f"run {self.run_url}: {self.files_checked} files, {self.consumption_rows_checked} consumption rows checked"
        if self.ok:
            return head + "\nOK: manifest, checksums, schemas and invariants hold"
        shown = self.errors[:200]
        more = f"\n... and {len(self.errors) - len(shown)} more" if len(self.errors) > len(shown) else ""
        return head + f"\nFAILED: {len(self.errors)} problem(s)\n" + "\n".join(f"  - {e}" for e in shown) + more


def _decode(data: bytes, fmt: str, dataset: str, path: str) -> pa.Table:
    if fmt == "parquet":
        return pq.read_table(pa.BufferReader(data))
    return decode_csv(decompress(data, path), _SCHEMAS[dataset])


def _strings(col) -> np.ndarray:
    return np.asarray(col.to_numpy(zero_copy_only=False)).astype(str)


def validate_run(run_url: str) -> ValidationReport:
    report = ValidationReport(run_url)
    store = store_for_run_url(run_url)
    try:
        manifest = store.read_manifest()
    except FileNotFoundError:
        report.add(f"no {MANIFEST}: the run is incomplete, failed, or {run_url} is not a run directory")
        return report
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        report.add(f"{MANIFEST} is not valid JSON: {exc}")
        return report
    for key in ("run_id", "seed", "scenario_sha256", "window", "files"):
        if key not in manifest:
            report.add(f"{MANIFEST} lacks '{key}'")
    if not report.ok:
        return report
    if manifest["run_id"] != store.run_id:
        report.add(f"{MANIFEST} says run_id {manifest['run_id']!r} but the directory is {store.run_id!r}")
    window_start = dt.date.fromisoformat(manifest["window"]["start"])
    window_end = dt.date.fromisoformat(manifest["window"]["end"])

    listed = {f["path"]: f for f in manifest["files"]}
    present = set(store.list_files()) - {MANIFEST}
    for path in sorted(set(listed) - present):
        report.add(f"missing file {path} (listed in the manifest)")
    for path in sorted(present - set(listed)):
        report.add(f"unlisted file {path} (not in the manifest: foreign or left over)")

    tables: dict[str, pa.Table] = {}
    raw_checks: list[tuple[str, bytes]] = []
    for path, rec in sorted(listed.items()):
        if path not in present:
            continue
        report.files_checked += 1
        data = store.read(path)
        if len(data) != rec["bytes"]:
            report.add(f"{path}: {len(data)} bytes, manifest says {rec['bytes']}")
        if hashlib.sha256(data).hexdigest() != rec["sha256"]:
            report.add(f"{path}: sha256 mismatch (file damaged or replaced)")
            continue
        try:
            prefix = participant_prefix(rec["participant_role"], rec["participant_id"])
        except UnsafePathError as exc:
            report.add(f"{path}: {exc}")
            continue
        if not path.startswith(prefix + "/"):
            report.add(f"{path}: not under its participant's prefix {prefix}/")
        if rec["format"] == "if021_json":
            _check_if021(report, path, data, rec, listed)
            if rec["participant_role"] == "central":
                raw_checks.append((path, data))
        elif rec["format"] in ("csv_wide", "csv_wide_local"):
            _check_wide(report, path, decompress(data, path), rec)
        elif rec["format"] == "dcc_xml":
            n = data.count(b"<ra:LogEntry>")
            if n != rec["rows"]:
                report.add(f"{path}: {n} DCC log entries, manifest says {rec['rows']}")
        if rec["dataset"] == "quarantine" and rec["format"] == "parquet":
            _check_quarantine(report, path, data, rec)
        if rec["dataset"] in _SCHEMAS and rec["format"] in _TABULAR:
            try:
                table = _decode(data, rec["format"], rec["dataset"], path)
            except (pa.ArrowInvalid, ValueError) as exc:
                report.add(f"{path}: cannot be read as {rec['format']}: {exc}")
                continue
            problems = same_columns(table.schema, _SCHEMAS[rec["dataset"]])
            for p in problems:
                report.add(f"{path}: {p}")
            if problems:
                continue
            if table.num_rows != rec["rows"]:
                report.add(f"{path}: {table.num_rows} rows, manifest says {rec['rows']}")
            tables[path] = table.cast(_SCHEMAS[rec["dataset"]])

    central_reg = _central_registrations(listed, tables)
    if central_reg is None:
        report.add("no central registrations file: cannot check participant ownership or completeness")
        return report
    if manifest.get("generator", {}).get("command") == "cleanse":
        # A cleansing run lands registrations, quarantine and a report: no consumption.
        cleansing = manifest.get("cleansing", {})
        q_rows = sum(f["rows"] for f in manifest["files"] if f["dataset"] == "quarantine" and f["participant_role"] == "central")
        if cleansing and (cleansing.get("clean") != central_reg.num_rows or cleansing.get("quarantined") != q_rows):
            report.add(f"cleansing counts in the manifest ({cleansing.get('clean')} clean, {cleansing.get('quarantined')} quarantined) differ from the files ({central_reg.num_rows}, {q_rows})")
        return report

    totals: dict[tuple[str, str], int] = defaultdict(int)
    central_counts = []
    for path, table in tables.items():
        rec = listed[path]
        if rec["dataset"] == "consumption":
            if rec["format"] == "parquet" or not _has_parquet_twin(path, listed):
                report.consumption_rows_checked += table.num_rows
                _check_consumption(report, path, table)
                _check_ownership(report, path, table, rec, central_reg)
                totals[(rec["participant_role"], "consumption")] += table.num_rows
                if rec["participant_role"] == "central":
                    central_counts.append(_mpan_day_counts(table))
        elif rec["dataset"] == "registrations":
            if rec["format"] == "parquet" or not _has_parquet_twin(path, listed):
                totals[(rec["participant_role"], "registrations")] += table.num_rows
                _check_registration_ownership(report, path, table, rec)
        elif rec["format"] == "parquet" or not _has_parquet_twin(path, listed):
            totals[(rec["participant_role"], rec["dataset"])] += table.num_rows
        if rec["format"] == "csv" and _has_parquet_twin(path, listed):
            twin = tables.get(_twin(path))
            if twin is not None and not table.equals(twin):
                report.add(f"{path}: CSV content differs from {_twin(path)}")

    for path, data in raw_checks:
        # Content equality for the central copy (every row); participant files are slices
        # by the same encoder, checked by count and checksum.
        if listed[path]["participant_role"] == "central":
            _compare_if021(report, path, data, tables.get(_json_twin(path)))
    for dataset, roles in _ROLES_OF.items():
        central = totals.get(("central", dataset), 0)
        for role in roles:
            if totals.get((role, dataset), 0) != central:
                report.add(f"{dataset}: {role} slices hold {totals.get((role, dataset), 0)} rows, central holds {central}")
    _check_completeness(report, central_reg, central_counts, window_start, window_end)
    return report


def _check_wide(report: ValidationReport, path: str, data: bytes, rec: dict) -> None:
    """Wide CSV: the values it carries add up to the manifest's rows."""
    table = pacsv.read_csv(pa.BufferReader(data), convert_options=pacsv.ConvertOptions(strings_can_be_null=True, null_values=[""]))
    n = sum(table.num_rows - table.column(c).null_count for c in table.column_names if c.endswith("_kwh"))
    if n != rec["rows"]:
        report.add(f"{path}: {n} values in the wide CSV, manifest says {rec['rows']}")


_ROUTE_COLUMN = {"supplier": "route_supplier_id", "data_service": "route_data_service_id", "ldso": "route_ldso_id"}


def _check_quarantine(report: ValidationReport, path: str, data: bytes, rec: dict) -> None:
    """One row per rejected record, each with its reason codes, and only the participant's own."""
    try:
        t = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as exc:
        report.add(f"{path}: cannot be read as parquet: {exc}")
        return
    if t.num_rows != rec["rows"]:
        report.add(f"{path}: {t.num_rows} rows, manifest says {rec['rows']}")
    for col in ("record", "reason_code", "reason"):
        if col not in t.column_names:
            report.add(f"{path}: quarantine lacks column {col}")
            return
    if t.column("reason_code").null_count or (t.num_rows and pc.min(pc.utf8_length(t.column("reason_code"))).as_py() == 0):
        report.add(f"{path}: quarantine rows without a reason code")
    route = _ROUTE_COLUMN.get(rec["participant_role"])
    if route and route in t.column_names and t.num_rows:
        foreign = pc.sum(pc.not_equal(t.column(route), rec["participant_id"]).cast(pa.int64())).as_py() or 0
        if foreign:
            report.add(f"{path}: {foreign} quarantine row(s) of another {rec['participant_role']}")


def _json_twin(path: str) -> str:
    return path[: -len(".if021.json")] + ".parquet"


def _check_if021(report: ValidationReport, path: str, data: bytes, rec: dict, listed: dict) -> None:
    """Well-formed JSON array of DIP messages carrying exactly the manifest's values."""
    if not data.lstrip().startswith(b"[") or not data.rstrip().endswith(b"]"):
        report.add(f"{path}: not a JSON array of DIP messages")
        return
    n = data.count(b'"sp":')  # one per half-hour value; full parse is done for central copies
    if n != rec["rows"]:
        report.add(f"{path}: {n} IF-021 periods, manifest says {rec['rows']}")


def _compare_if021(report: ValidationReport, path: str, data: bytes, twin: pa.Table | None) -> None:
    """Every IF-021 value equals the canonical row (MPAN, MQ, period end, kWh, quality)."""
    if twin is None:
        return
    cols: dict[str, list] = {"m": [], "q": [], "sp": [], "v": [], "ql": []}
    for msg in json.loads(data):
        p = msg["payload"]
        core = p["CommonBlock"]["M0"]["MPANCore"]
        mq = p["CustomBlock"]["B900"]["MQID"]["measurementQuantityID"]
        for day in p["CustomBlock"]["B900"]["settlementDayConsumptionPeriods"]:
            periods = day["consumptionPeriods"]
            cols["m"] += [core] * len(periods)
            cols["q"] += [mq] * len(periods)
            cols["sp"] += [x["sp"] for x in periods]
            cols["v"] += [x["v"] for x in periods]
            cols["ql"] += [x["q"] for x in periods]
    got = pa.table({k: pa.array(v, pa.string()) for k, v in cols.items()})
    enc = pc.dictionary_encode(twin.column("period_end_utc").combine_chunks().cast(pa.timestamp("s")))
    ends = pc.take(pc.strftime(enc.dictionary, format="%Y-%m-%dT%H:%M:%S+00:00"), enc.indices)
    want = pa.table(
        {
            "m": twin.column("mpan_core"),
            "q": twin.column("measurement_quantity"),
            "sp": ends,
            "v": fixed3(twin.column("consumption_kwh")),
            "ql": twin.column("quality"),
        }
    )
    key = [(k, "ascending") for k in ("m", "q", "sp")]
    if got.num_rows != want.num_rows or not got.sort_by(key).equals(want.cast(got.schema).sort_by(key)):
        report.add(f"{path}: IF-021 content differs from {_json_twin(path)}")


def _twin(path: str) -> str:
    for suffix in (".csv", ".csv.gz", ".csv.zst"):
        if path.endswith(suffix):
            return path[: -len(suffix)] + ".parquet"
    return path


def _has_parquet_twin(path: str, listed: dict) -> bool:
    return _twin(path) != path and _twin(path) in listed


def _central_registrations(listed: dict, tables: dict) -> pa.Table | None:
    parts = [
        t for p, t in tables.items()
        if listed[p]["participant_role"] == "central" and listed[p]["dataset"] == "registrations"
        and (listed[p]["format"] == "parquet" or not _has_parquet_twin(p, listed))
    ]  # fmt: skip
    return pa.concat_tables(parts) if parts else None


def _check_consumption(report: ValidationReport, path: str, t: pa.Table) -> None:
    def bad(what: str, mask: np.ndarray) -> None:
        n = int(mask.sum())
        if n:
            report.add(f"{path}: {n} row(s) {what}")

    kwh = t.column("consumption_kwh").to_numpy()
    bad("have negative consumption_kwh", kwh < 0)
    bad("have consumption_kwh with more than 3 decimals", np.abs(np.round(kwh, 3) - kwh) > 1e-9)
    bad("have non-finite consumption_kwh", ~np.isfinite(kwh))
    cores = _strings(t.column("mpan_core"))
    ok_len = np.char.str_len(cores) == 13
    digits = np.char.isdigit(cores) & ok_len
    bad("have malformed MPAN cores", ~digits)
    if digits.any():
        ints = cores[digits].astype(np.int64)
        bad("have wrong MPAN check digits", check_digits_vec(ints // 10) != ints % 10)
    mq = _strings(t.column("measurement_quantity"))
    bad("have unknown measurement quantities", ~np.isin(mq, ["AI", "AE", "RI", "RE"]))
    end = t.column("period_end_utc").cast(pa.timestamp("us")).to_numpy()
    minutes = end.astype("datetime64[m]").astype(np.int64)
    bad("have period_end_utc not on :00 or :30", (minutes % 30 != 0) | (end.astype("datetime64[s]").astype(np.int64) % 60 != 0))
    sd, sp = local_view(end)
    got_sd = t.column("settlement_date").cast(pa.date32()).to_numpy(zero_copy_only=False).astype("datetime64[D]")
    got_sp = t.column("settlement_period").to_numpy()
    bad("have settlement_date/settlement_period inconsistent with period_end_utc", (got_sd != sd) | (got_sp != sp))
    key = pa.table({"m": t.column("mpan_core"), "q": t.column("measurement_quantity"), "p": t.column("period_end_utc")})
    if key.group_by(["m", "q", "p"]).aggregate([]).num_rows != t.num_rows:
        report.add(f"{path}: duplicate (mpan_core, measurement_quantity, period_end_utc) rows")
    quality = _strings(t.column("quality"))
    reason = t.column("estimation_reason")
    est = np.char.startswith(quality, "E")
    bad("are estimates without an estimation_reason", est & reason.is_null().to_numpy(zero_copy_only=False))
    bad("are actuals with an estimation_reason", ~est & ~reason.is_null().to_numpy(zero_copy_only=False))


def _reg_arrays(reg: pa.Table) -> dict[str, np.ndarray]:
    return {
        "supplier": _strings(reg.column("supplier_id")),
        "data_service": _strings(reg.column("data_service_id")),
        "ldso": ldso_ids(_strings(reg.column("distributor_id"))),
    }


def _check_ownership(report: ValidationReport, path: str, t: pa.Table, rec: dict, reg: pa.Table) -> None:
    role, pid = rec["participant_role"], rec["participant_id"]
    if t.num_rows == 0:
        return
    cores = _strings(t.column("mpan_core"))
    days = (utc_settlement_day(t.column("period_end_utc").cast(pa.timestamp("us")).to_numpy()) - EPOCH_DAY).astype(np.int64)
    u_cores, ci = np.unique(cores, return_inverse=True)
    u_days, di = np.unique(days, return_inverse=True)
    in_force = registrations_on_days(reg, u_cores, u_days)[ci, di]
    unregistered = in_force < 0
    if unregistered.any():
        report.add(f"{path}: {int(unregistered.sum())} row(s) on days with no registration in force (e.g. MPAN {cores[unregistered][0]})")
    if role == "central":
        return
    owner = _reg_arrays(reg)[role][np.maximum(in_force, 0)]
    foreign = (owner != pid) & ~unregistered
    if foreign.any():
        report.add(f"{path}: {int(foreign.sum())} row(s) belong to another {role} (e.g. MPAN {cores[foreign][0]} -> {owner[foreign][0]})")


def _check_registration_ownership(report: ValidationReport, path: str, t: pa.Table, rec: dict) -> None:
    role, pid = rec["participant_role"], rec["participant_id"]
    if role == "central" or t.num_rows == 0:
        return
    owner = _reg_arrays(t)[role]
    if (owner != pid).any():
        report.add(f"{path}: {int((owner != pid).sum())} registration row(s) of another {role}")


def _mpan_day_counts(t: pa.Table) -> pa.Table:
    days = utc_settlement_day(t.column("period_end_utc").cast(pa.timestamp("us")).to_numpy())
    active = pc.is_in(t.column("measurement_quantity"), pa.array(["AI", "AE"]))
    return (
        pa.table({"mpan_core": t.column("mpan_core"), "mq": t.column("measurement_quantity"), "day": pa.array(days, pa.date32())})
        .filter(active)
        .group_by(["mpan_core", "mq", "day"])
        .aggregate([([], "count_all")])
    )


def _check_completeness(report: ValidationReport, reg: pa.Table, counts: list[pa.Table], start: dt.date, end: dt.date) -> None:
    """48 UTC periods for every registered MPAN-day of the window, in the central copy."""
    if not counts:
        report.add("no central consumption: nothing delivered")
        return
    got = pa.concat_tables(counts).group_by(["mpan_core", "mq", "day"]).aggregate([("count_all", "sum")])
    n = got.column("count_all_sum").to_numpy()
    if (n != 48).any():
        i = int(np.flatnonzero(n != 48)[0])
        report.add(
            f"central consumption: {int((n != 48).sum())} MPAN-day(s) without exactly 48 UTC periods "
            f"(e.g. {got.column('mpan_core')[i]} on {got.column('day')[i]}: {n[i]})"
        )
    cores = np.unique(_strings(reg.column("mpan_core")))
    days = np.arange((np.datetime64(start) - EPOCH_DAY).astype(np.int64), (np.datetime64(end) - EPOCH_DAY).astype(np.int64) + 1)
    in_force = registrations_on_days(reg, cores, days) >= 0
    expected = int(in_force.sum())
    delivered = got.num_rows
    if delivered != expected:
        report.add(f"central consumption: {delivered} active MPAN-days delivered, {expected} registered in the window")
