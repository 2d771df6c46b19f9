"""``mhhs-pipeline validate RUN_URL``: prove a landed run is complete and correct.

Checks, in order: the manifest (present, well formed); every listed file exists with its
byte count and sha256, and nothing unlisted sits in the run directory; paths match the
participant they claim; schemas; invariants of every consumption file (non-negative,
3 decimals, no duplicate periods, the local settlement date/period consistent with
``period_end_utc``, valid MPAN check digits); every participant row belongs to that
participant on its UTC settlement day; the central copy has 48 UTC periods for every
registered MPAN-day of the window; participant slices add up to the central copy; CSV
content equals Parquet content. The industry formats are read back too: every IF-021 value,
wide CSV line and DCC LogEntry belongs to the file's participant on its day and equals the
participant's canonical rows (IF-021 and wide CSV their Parquet twin; a DCC response the data
service's rows of that MPAN over the days it covers). Returns every problem found, not just
the first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import zipfile
import zlib
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
from mhhs_pipeline.core.registrations import dcc_enrolled, registrations_on_days
from mhhs_pipeline.core.schema import CONSUMPTION_SCHEMA, REGISTRATION_SCHEMA, same_columns
from mhhs_pipeline.formats.compression import decompress
from mhhs_pipeline.formats.dcc_xml import dcc_file_name, kwh_to_wh
from mhhs_pipeline.formats.readers import DccProfile, FormatError, read_dcc_profile, read_if021
from mhhs_pipeline.formats.tabular import decode_csv, fixed3
from mhhs_pipeline.formats.wide import encode_wide_csv
from mhhs_pipeline.io.paths import UnsafePathError, participant_prefix, safe_segment
from mhhs_pipeline.io.store import MANIFEST, PARTICIPANT_MANIFEST_DATASET, store_for_run_url
from mhhs_pipeline.spec.manifest import ManifestError, parse_manifest

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
# What a damaged file raises when decompressed or decoded (gzip, zstd, Arrow, CSV).
_UNREADABLE = (pa.ArrowInvalid, ValueError, OSError, EOFError, zlib.error)


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


def _read_manifest(report: ValidationReport, run_url: str):
    """(store, manifest dict, checked model), or None with the reason in the report."""
    if run_url.rstrip("/") == MANIFEST or run_url.rstrip("/").endswith("/" + MANIFEST):
        report.add(f"{run_url} is the manifest itself; give its run directory: {run_url.rstrip('/')[: -len(MANIFEST)].rstrip('/') or '.'}")
        return None
    try:
        store = store_for_run_url(run_url)
    except ValueError:
        report.add(f"{run_url!r} is not a run directory: give <out>/<run_id>")
        return None
    try:
        manifest = store.read_manifest()
    except FileNotFoundError:
        report.add(f"no {MANIFEST}: the run is incomplete, failed, or {run_url} is not a run directory")
        return None
    except (NotADirectoryError, IsADirectoryError):
        report.add(f"{run_url} is not a run directory (a file, or {MANIFEST} is a folder)")
        return None
    except PermissionError:
        report.add(f"{run_url}/{MANIFEST} cannot be read: permission denied")
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        report.add(f"{MANIFEST} is not valid JSON: {exc}")
        return None
    except RecursionError:
        report.add(f"{MANIFEST} is nested too deeply to be a manifest")
        return None
    try:
        model = parse_manifest(manifest)
    except ManifestError as exc:
        for problem in exc.problems[:MAX_ERRORS_PER_CHECK]:
            report.add(f"{MANIFEST}: {problem}")
        return None
    return store, manifest, model


def validate_run(run_url: str) -> ValidationReport:
    report = ValidationReport(run_url)
    read = _read_manifest(report, run_url)
    if read is None:
        return report
    store, manifest, model = read
    if manifest["run_id"] != store.run_id:
        report.add(f"{MANIFEST} says run_id {manifest['run_id']!r} but the directory is {store.run_id!r}")
    cleansing_run = manifest.get("generator", {}).get("command") == "cleanse" if isinstance(manifest.get("generator"), dict) else False
    if model.window is None and not cleansing_run:
        report.add(f"{MANIFEST}: window is null, but only a cleansing run that kept no rows has no window")
        return report

    listed = {f["path"]: f for f in manifest["files"]}
    present = set(store.list_files()) - {MANIFEST}
    for path in sorted(set(listed) - present):
        report.add(f"missing file {path} (listed in the manifest)")
    for path in sorted(present - set(listed)):
        report.add(f"unlisted file {path} (not in the manifest: foreign or left over)")

    owners = {(f["participant_role"], f["participant_id"]) for f in manifest["files"]}
    with_manifest = {(f["participant_role"], f["participant_id"]) for f in manifest["files"] if f["dataset"] == PARTICIPANT_MANIFEST_DATASET}
    for role, pid in sorted(owners - with_manifest):
        report.add(f"{role}/{pid}: no manifest.json of its own listed (each participant prefix has one)")
    paths = sorted(p for p in listed if p in present)
    blocks = None if cleansing_run else _partition(paths)
    if blocks is None:
        # One pass over every file: a cleansing run, or loose DCC responses (named by MPAN,
        # not by unit, so compared with the data service's rows of the whole run).
        loaded = _read_files(report, store, listed, paths, manifest)
        central_reg = _central_registrations(listed, loaded.tables)
        if central_reg is None:
            report.add("no central registrations file: cannot check participant ownership or completeness")
            return report
        if cleansing_run:
            # A cleansing run lands registrations, quarantine and a report: no consumption.
            cleansing = manifest.get("cleansing", {})
            q_rows = sum(f["rows"] for f in manifest["files"] if f["dataset"] == "quarantine" and f["participant_role"] == "central")
            if cleansing and (cleansing.get("clean") != central_reg.num_rows or cleansing.get("quarantined") != q_rows):
                report.add(f"cleansing counts in the manifest ({cleansing.get('clean')} clean, {cleansing.get('quarantined')} quarantined) differ from the files ({central_reg.num_rows}, {q_rows})")
            return report
        totals: dict[tuple[str, str], int] = defaultdict(int)
        counts: list[pa.Table] = []
        _check_loaded(report, loaded, listed, central_reg, totals, counts)
        _check_slices(report, totals)
        _check_completeness(report, central_reg, counts, model.window.start, model.window.end)
        return report
    # Partitioned: the run's own files, then block by block (its registrations), unit by
    # unit (every participant's files of the unit): memory follows a unit, not the run.
    run_files, by_block = blocks
    loaded = _read_files(report, store, listed, run_files, manifest)
    totals = defaultdict(int)
    _check_loaded(report, loaded, listed, None, totals, [])
    if not by_block:
        report.add("no central registrations file: cannot check participant ownership or completeness")
        return report
    for block, (reg_files, units) in sorted(by_block.items()):
        reg_loaded = _read_files(report, store, listed, reg_files, manifest)
        central_reg = _central_registrations(listed, reg_loaded.tables)
        if central_reg is None:
            report.add(f"block {block}: no central registrations file: cannot check participant ownership or completeness")
            continue
        _check_loaded(report, reg_loaded, listed, central_reg, totals, [])
        counts: list[pa.Table] = []
        for unit in sorted(units):
            unit_loaded = _read_files(report, store, listed, units[unit], manifest)
            _check_loaded(report, unit_loaded, listed, central_reg, totals, counts)
            del unit_loaded
        _check_completeness(report, central_reg, counts, model.window.start, model.window.end, where=f"block {block}: ")
    _check_slices(report, totals)
    return report


_UNIT_FILE = re.compile(r"(s[0-9]{9})(-d[0-9]{8})?\.")


def _partition(paths: list[str]) -> tuple[list[str], dict[str, tuple[list[str], dict[str, list[str]]]]] | None:
    """(the run's own files, {block: (its registration files, {unit: its files})}) from
    the unit-named files (``s<site>-d<day>.<ext>``, registrations ``s<site>.<ext>``), or
    None when a file of data is not unit-named (then one pass checks the whole run)."""
    run: list[str] = []
    blocks: dict[str, tuple[list[str], dict[str, list[str]]]] = {}
    for path in paths:
        name = path.rsplit("/", 1)[-1]
        m = _UNIT_FILE.match(name)
        if m is None:
            if path.endswith(".xml"):
                return None  # a loose DCC response: named by MPAN
            run.append(path)
            continue
        reg, units = blocks.setdefault(m.group(1), ([], {}))
        if m.group(2) is None:
            reg.append(path)
        else:
            units.setdefault(m.group(1) + m.group(2), []).append(path)
    return run, blocks


@dataclass
class _Loaded:
    tables: dict[str, pa.Table] = field(default_factory=dict)
    # Read back here, checked once the canonical tables they must equal are decoded.
    if021: dict[str, pa.Table] = field(default_factory=dict)
    wide: dict[str, tuple[bytes, pa.Table]] = field(default_factory=dict)  # text and parsed lines
    dcc: dict[str, DccProfile] = field(default_factory=dict)  # by path, or "<bundle path>!<member>"
    dcc_rec: dict[str, dict] = field(default_factory=dict)  # the manifest entry of each (its bundle's for a member)


def _read_files(report: ValidationReport, store, listed: dict, paths: list[str], manifest: dict) -> _Loaded:
    """Read and check each file on its own (size, checksum, prefix, format); decode what
    later checks compare."""
    out = _Loaded()
    tables, if021, wide, dcc, dcc_rec = out.tables, out.if021, out.wide, out.dcc, out.dcc_rec
    for path in paths:
        rec = listed[path]
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
            table = _read(report, path, read_if021, data)
            if table is not None:
                if table.num_rows != rec["rows"]:
                    report.add(f"{path}: {table.num_rows} IF-021 periods, manifest says {rec['rows']}")
                if021[path] = table
        elif rec["format"] in ("csv_wide", "csv_wide_local"):
            try:
                text = decompress(data, path)
                lines = _check_wide(report, path, text, rec)
            except _UNREADABLE as exc:
                report.add(f"{path}: cannot be read as a wide CSV: {exc}")
            else:
                if lines is not None:
                    wide[path] = (text, lines)
        elif rec["format"] == "dcc_xml":
            profile = _read(report, path, read_dcc_profile, data)
            if profile is not None:
                if profile.entries.num_rows != rec["rows"]:
                    report.add(f"{path}: {profile.entries.num_rows} DCC log entries, manifest says {rec['rows']}")
                dcc[path], dcc_rec[path] = profile, rec
        elif rec["format"] == "dcc_xml_zip":
            _read_dcc_bundle(report, path, data, rec, dcc, dcc_rec)
        elif rec["dataset"] == PARTICIPANT_MANIFEST_DATASET:
            _check_participant_manifest(report, path, data, rec, manifest)
        if rec["dataset"] == "quarantine" and rec["format"] == "parquet":
            _check_quarantine(report, path, data, rec)
        if rec["dataset"] in _SCHEMAS and rec["format"] in _TABULAR:
            try:
                table = _decode(data, rec["format"], rec["dataset"], path)
            except _UNREADABLE as exc:
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

    return out


def _check_loaded(report: ValidationReport, loaded: _Loaded, listed: dict, central_reg: pa.Table | None, totals: dict, central_counts: list) -> None:
    """The checks across files of one pass: consumption invariants, ownership in every
    format, CSV == Parquet, IF-021 / wide CSV / DCC == their canonical rows; totals and
    the central copy's MPAN-day counts are added to for the run-wide checks."""
    tables = loaded.tables
    for path, table in tables.items():
        rec = listed[path]
        if rec["dataset"] == "consumption":
            if rec["format"] == "parquet" or not _has_parquet_twin(path, listed):
                report.consumption_rows_checked += table.num_rows
                _check_consumption(report, path, table)
                if central_reg is not None:
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
    if central_reg is None:
        return
    for path, table in loaded.if021.items():
        _check_ownership(report, path, table, listed[path], central_reg)
        _compare_if021(report, path, table, _long_twin(path, ".if021.json", listed, tables))
    for path, (text, lines) in loaded.wide.items():
        _check_wide_content(report, path, text, lines, listed, tables, central_reg)
    _check_dcc(report, loaded.dcc, loaded.dcc_rec, listed, tables, central_reg)


def _check_slices(report: ValidationReport, totals: dict) -> None:
    for dataset, roles in _ROLES_OF.items():
        central = totals.get(("central", dataset), 0)
        for role in roles:
            if totals.get((role, dataset), 0) != central:
                report.add(f"{dataset}: {role} slices hold {totals.get((role, dataset), 0)} rows, central holds {central}")


def _check_wide(report: ValidationReport, path: str, data: bytes, rec: dict) -> pa.Table | None:
    """Wide CSV: the values it carries add up to the manifest's rows. Returns the parsed
    lines for the content checks (None when it lacks its key columns)."""
    table = pacsv.read_csv(
        pa.BufferReader(data),
        convert_options=pacsv.ConvertOptions(strings_can_be_null=True, null_values=[""], column_types={"mpan_core": pa.string(), "settlement_date": pa.date32()}),
    )
    n = sum(table.num_rows - table.column(c).null_count for c in table.column_names if c.endswith("_kwh"))
    if n != rec["rows"]:
        report.add(f"{path}: {n} values in the wide CSV, manifest says {rec['rows']}")
    missing = [c for c in ("mpan_core", "settlement_date") if c not in table.column_names]
    if missing:
        report.add(f"{path}: cannot be read as a wide CSV: no {' or '.join(missing)} column")
        return None
    return table


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


def _check_participant_manifest(report: ValidationReport, path: str, data: bytes, rec: dict, run: dict) -> None:
    """A participant's own manifest: the run's fields, and exactly its files' entries."""
    try:
        own = json.loads(data)
        parse_manifest(own)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        report.add(f"{path}: not valid JSON ({exc})")
        return
    except ManifestError as exc:
        report.add(f"{path}: {exc}")
        return
    for key in ("run_id", "seed", "scenario_sha256", "window"):
        if own.get(key) != run.get(key):
            report.add(f"{path}: {key} {own.get(key)!r} differs from the run's {run.get(key)!r}")
    if own.get("participant") != {"role": rec["participant_role"], "id": rec["participant_id"]}:
        report.add(f"{path}: names participant {own.get('participant')!r}, not {rec['participant_role']}/{rec['participant_id']}")
    want = sorted(
        (f for f in run["files"] if (f["participant_role"], f["participant_id"]) == (rec["participant_role"], rec["participant_id"]) and f["dataset"] != PARTICIPANT_MANIFEST_DATASET),
        key=lambda f: f["path"],
    )
    got = sorted(own["files"], key=lambda f: f["path"])
    if got != want:
        extra = sorted({f["path"] for f in got} - {f["path"] for f in want})
        lost = sorted({f["path"] for f in want} - {f["path"] for f in got})
        report.add(
            f"{path}: lists {len(got)} files, the run lists {len(want)} for this participant"
            + (f"; not the participant's: {extra[:3]}" if extra else "")
            + (f"; missing: {lost[:3]}" if lost else "")
            + ("; entries differ" if not extra and not lost else "")
        )


def _read(report: ValidationReport, path: str, reader, data: bytes):
    try:
        return reader(data)
    except FormatError as exc:
        report.add(f"{path}: {exc}")
        return None


def _long_twin(path: str, suffix: str, listed: dict, tables: dict) -> tuple[str, pa.Table] | None:
    """The canonical consumption file beside a derived one (same stem): Parquet, else CSV."""
    for p in (path[: -len(suffix)] + ".parquet", *(path[: -len(suffix)] + ext for ext in (".csv", ".csv.gz", ".csv.zst"))):
        if p in tables:
            return p, tables[p]
    return None


def _compare_if021(report: ValidationReport, path: str, got: pa.Table, twin: tuple[str, pa.Table] | None) -> None:
    """Every IF-021 value equals its canonical row (MPAN, MQ, period end, kWh, quality)."""
    if twin is None:
        report.add(f"{path}: no Parquet or CSV twin to compare the IF-021 values with")
        return
    twin_path, t = twin
    want = pa.table(
        {
            "m": t.column("mpan_core"),
            "q": t.column("measurement_quantity"),
            "p": t.column("period_end_utc").cast(pa.timestamp("us", tz="UTC")),
            "v": fixed3(t.column("consumption_kwh")),
            "ql": t.column("quality"),
        }
    )
    have = pa.table(
        {
            "m": got.column("mpan_core"),
            "q": got.column("measurement_quantity"),
            "p": got.column("period_end_utc"),
            "v": got.column("value"),
            "ql": got.column("quality"),
        }
    ).cast(want.schema)
    if not _same_rows(have, want):
        report.add(f"{path}: IF-021 content differs from {twin_path}")


def _same_rows(a: pa.Table, b: pa.Table) -> bool:
    """The same rows, whatever their order."""
    if a.num_rows != b.num_rows:
        return False
    key = [(c, "ascending") for c in a.column_names]
    return a.sort_by(key).equals(b.select(a.column_names).sort_by(key))


def _check_wide_content(report: ValidationReport, path: str, text: bytes, lines: pa.Table, listed: dict, tables: dict, reg: pa.Table) -> None:
    """A wide CSV is exactly the wide encoding of its participant's canonical rows, and every
    MPAN in it is the participant's on the day of its line."""
    rec = listed[path]
    local = rec["format"] == "csv_wide_local"
    suffix = next(s for s in (".wide_local.csv", ".wide.csv") if s in path)
    twin = _long_twin(path, path[path.index(suffix) :], listed, tables)
    if rec["participant_role"] != "central" and lines.num_rows:
        days = lines.column("settlement_date").to_numpy(zero_copy_only=False).astype("datetime64[D]")
        cores = _strings(lines.column("mpan_core"))
        # A local day's lines may hold the last UTC hour of the day before (BST): a line is the
        # participant's if the MPAN is on its own day or the one before.
        unregistered, foreign = _foreign(cores, days, rec, reg)
        if local:
            u_prev, f_prev = _foreign(cores, days - np.timedelta64(1, "D"), rec, reg)
            own = (~unregistered & ~foreign) | (~u_prev & ~f_prev)
            unregistered &= u_prev
            foreign = ~own & ~unregistered
        _report_owners(report, path, "line(s)", cores, unregistered, foreign, rec)
    if twin is None:
        report.add(f"{path}: no Parquet or CSV twin to compare the wide CSV with")
    elif text != encode_wide_csv(twin[1], local=local):
        report.add(f"{path}: wide CSV content differs from the wide encoding of {twin[0]}")


MAX_DCC_MEMBER_BYTES = 64 << 20  # a response of the schema's 19,056 entries is ~3 MB


def _read_dcc_bundle(report: ValidationReport, path: str, data: bytes, rec: dict, dcc: dict, dcc_rec: dict) -> None:
    """A ZIP of DCC responses: plain member names, each read as a response; the manifest's
    member and value counts hold."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        report.add(f"{path}: not a readable ZIP archive ({exc})")
        return
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        report.add(f"{path}: members repeat a name ({sorted({n for n in names if names.count(n) > 1})[:3]})")
    if rec.get("members") != len(infos):
        report.add(f"{path}: {len(infos)} members, manifest says {rec.get('members')}")
    values = 0
    for info in infos:
        where = f"{path}!{info.filename}"
        try:
            safe_segment(info.filename, "member name")
        except UnsafePathError as exc:
            report.add(f"{path}: {exc}")
            continue
        if info.file_size > MAX_DCC_MEMBER_BYTES:
            report.add(f"{where}: {info.file_size:,} bytes, larger than any DCC response ({MAX_DCC_MEMBER_BYTES:,})")
            continue
        try:
            body = archive.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
            report.add(f"{where}: cannot be read ({exc})")
            continue
        profile = _read(report, where, read_dcc_profile, body)
        if profile is not None:
            values += profile.entries.num_rows
            dcc[where], dcc_rec[where] = profile, rec
    if values != rec["rows"]:
        report.add(f"{path}: {values} DCC log entries in its members, manifest says {rec['rows']}")


def _check_dcc(report: ValidationReport, dcc: dict[str, DccProfile], dcc_rec: dict[str, dict], listed: dict, tables: dict, reg: pa.Table) -> None:
    """Each DCC response is for the MPAN and service its name says, belongs to the data
    service on every day it covers, and its LogEntries are the data service's own rows of that
    MPAN and quantity over those days (Wh of the kWh), none missing."""
    by_service: dict[str, list[str]] = defaultdict(list)
    for path, profile in dcc.items():
        rec = dcc_rec[path]
        e = profile.entries
        if not e.num_rows:
            report.add(f"{path}: a DCC response without LogEntries")
            continue
        days = utc_settlement_day(e.column("period_end_utc").cast(pa.timestamp("us")).to_numpy())
        first, last = days.min().astype(dt.date), days.max().astype(dt.date)
        name = dcc_file_name(profile.mpan_core, profile.service_reference, first, last)
        if path.rsplit("!", 1)[-1].rsplit("/", 1)[-1] != name:
            report.add(f"{path}: holds {profile.mpan_core} {profile.service_reference} for {first}..{last}, so its name should be {name}")
        cores = np.full(e.num_rows, profile.mpan_core)
        unregistered, foreign = _foreign(cores, days, rec, reg)
        _report_owners(report, path, "LogEntry(s)", cores, unregistered, foreign, rec)
        by_service[rec["participant_id"]].append(path)
    if not dcc:
        return
    enrolled = dcc_enrolled(reg)
    services = sorted({listed[p]["participant_id"] for p in tables if listed[p]["participant_role"] == "data_service"} | set(by_service))
    for pid in services:
        paths = by_service.get(pid, [])
        got = pa.concat_tables(
            [
                pa.table(
                    {
                        "m": pa.array(np.full(dcc[p].entries.num_rows, dcc[p].mpan_core), pa.string()),
                        "q": pa.array(np.full(dcc[p].entries.num_rows, dcc[p].measurement_quantity), pa.string()),
                        "p": dcc[p].entries.column("period_end_utc"),
                        "wh": dcc[p].entries.column("wh"),
                        "f": pa.array(np.full(dcc[p].entries.num_rows, p), pa.string()),
                    }
                )
                for p in paths
            ]
            or [pa.table({"m": pa.array([], pa.string()), "q": pa.array([], pa.string()), "p": pa.array([], pa.timestamp("us", tz="UTC")), "wh": pa.array([], pa.int64()), "f": pa.array([], pa.string())})]
        )
        own = [
            t for p, t in tables.items()
            if listed[p]["participant_role"] == "data_service" and listed[p]["participant_id"] == pid
            and listed[p]["dataset"] == "consumption" and (listed[p]["format"] == "parquet" or not _has_parquet_twin(p, listed))
        ]  # fmt: skip
        t = pa.concat_tables(own) if own else CONSUMPTION_SCHEMA.empty_table()
        t = t.filter(pc.is_in(t.column("measurement_quantity"), value_set=pa.array(["AI", "AE"])))
        # The rows DCC profile data must carry: AI and AE of Smart MPANs enrolled with DCC on the day.
        cores = _strings(t.column("mpan_core"))
        days = utc_settlement_day(t.column("period_end_utc").cast(pa.timestamp("us")).to_numpy())
        u_cores, ci = np.unique(cores, return_inverse=True)
        u_days, di = np.unique((days - EPOCH_DAY).astype(np.int64), return_inverse=True)
        in_force = registrations_on_days(reg, u_cores, u_days)[ci, di] if t.num_rows else np.zeros(0, np.int64)
        t = t.filter(pa.array((in_force >= 0) & enrolled[np.maximum(in_force, 0)]))
        want = pa.table(
            {
                "m": t.column("mpan_core"),
                "q": t.column("measurement_quantity"),
                "p": t.column("period_end_utc").cast(pa.timestamp("us", tz="UTC")),
                "wh": pa.array(kwh_to_wh(t.column("consumption_kwh").to_numpy()), pa.int64()),
            }
        )
        keys = ["m", "q", "p", "wh"]
        wrong = got.join(want, keys=keys, join_type="left anti")
        missing = want.join(got.select(keys), keys=keys, join_type="left anti")
        if wrong.num_rows:
            files = sorted(pc.unique(wrong.column("f")).to_pylist())
            report.add(
                f"data_service/{pid}: {wrong.num_rows} LogEntry(s) that are not its consumption rows (Wh of kWh) "
                f"in {len(files)} DCC response(s), e.g. {files[0]}"
            )
        if missing.num_rows:
            report.add(
                f"data_service/{pid}: {missing.num_rows} of its rows of DCC-enrolled MPANs missing from its DCC responses "
                f"(e.g. MPAN {missing.column('m')[0]} {missing.column('q')[0]} at {missing.column('p')[0]})"
            )


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


def _foreign(cores: np.ndarray, days: np.ndarray, rec: dict, reg: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Per row: no registration in force on its UTC settlement day (``datetime64[D]``), and
    registered to another participant of the file's role (never for the central copy)."""
    u_cores, ci = np.unique(cores, return_inverse=True)
    u_days, di = np.unique((days.astype("datetime64[D]") - EPOCH_DAY).astype(np.int64), return_inverse=True)
    in_force = registrations_on_days(reg, u_cores, u_days)[ci, di]
    unregistered = in_force < 0
    role = rec["participant_role"]
    if role == "central":
        return unregistered, np.zeros_like(unregistered)
    owner = _reg_arrays(reg)[role][np.maximum(in_force, 0)]
    return unregistered, (owner != rec["participant_id"]) & ~unregistered


def _report_owners(report: ValidationReport, path: str, what: str, cores: np.ndarray, unregistered: np.ndarray, foreign: np.ndarray, rec: dict) -> None:
    if unregistered.any():
        report.add(f"{path}: {int(unregistered.sum())} {what} on days with no registration in force (e.g. MPAN {cores[unregistered][0]})")
    if foreign.any():
        report.add(f"{path}: {int(foreign.sum())} {what} belong to another {rec['participant_role']} (e.g. MPAN {cores[foreign][0]})")


def _check_ownership(report: ValidationReport, path: str, t: pa.Table, rec: dict, reg: pa.Table) -> None:
    if t.num_rows == 0:
        return
    cores = _strings(t.column("mpan_core"))
    days = utc_settlement_day(t.column("period_end_utc").cast(pa.timestamp("us")).to_numpy())
    unregistered, foreign = _foreign(cores, days, rec, reg)
    _report_owners(report, path, "row(s)", cores, unregistered, foreign, rec)


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


def _check_completeness(report: ValidationReport, reg: pa.Table, counts: list[pa.Table], start: dt.date, end: dt.date, *, where: str = "") -> None:
    """48 UTC periods for every registered MPAN-day of the window, in the central copy
    (of the run, or of one block: ``where`` says which)."""
    if not counts:
        report.add(f"{where}no central consumption: nothing delivered")
        return
    got = pa.concat_tables(counts).group_by(["mpan_core", "mq", "day"]).aggregate([("count_all", "sum")])
    n = got.column("count_all_sum").to_numpy()
    if (n != 48).any():
        i = int(np.flatnonzero(n != 48)[0])
        report.add(
            f"{where}central consumption: {int((n != 48).sum())} MPAN-day(s) without exactly 48 UTC periods "
            f"(e.g. {got.column('mpan_core')[i]} on {got.column('day')[i]}: {n[i]})"
        )
    cores = np.unique(_strings(reg.column("mpan_core")))
    days = np.arange((np.datetime64(start) - EPOCH_DAY).astype(np.int64), (np.datetime64(end) - EPOCH_DAY).astype(np.int64) + 1)
    in_force = registrations_on_days(reg, cores, days) >= 0
    expected = int(in_force.sum())
    delivered = got.num_rows
    if delivered != expected:
        report.add(f"{where}central consumption: {delivered} active MPAN-days delivered, {expected} registered in the window")
