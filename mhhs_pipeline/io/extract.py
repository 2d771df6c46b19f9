"""Read a participant's registration extract (CSV or Parquet, any fsspec URL) in chunks.

The reader recognises the format by its bytes, not its name; maps headers to canonical
columns (``cleanse.columns``); and yields chunks of text (every field as a string, as
read) with a 1-based ``record`` number, so the rules see exactly what the sender wrote.
Memory stays bounded by the chunk size: CSV is parsed by pyarrow's streaming reader,
Parquet one batch at a time.

A file that cannot be read as a whole raises ``ExtractError`` with one line naming the
file, the line/column where known, and the fix: empty, binary, compressed, a workbook,
UTF-16 or other non-UTF-8 text, ragged rows, a truncated or damaged Parquet file, or a
required column missing. Finding the line of a fault re-scans the file, on that error
path only.

``cleanse_to_dir`` is the cleansing pass around the pure rules of
``mhhs_pipeline.cleanse``: records are normalised chunk by chunk and spilled to local
Parquet buckets by a hash of the MPAN; each bucket (all records of its MPANs) is then
resolved alone. Peak memory follows ``CSV_BLOCK_BYTES`` and ``BUCKET_ROWS``, not the
file. ``write_cleanse_run`` lands the results in a run directory, manifest last.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import math
import os
import posixpath
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mhhs_pipeline.cleanse import (
    QUARANTINE_SCHEMA,
    CleanseStats,
    RepairLog,
    bucket_of,
    cleanse_bucket,
    normalise,
    render_markdown,
)
from mhhs_pipeline.cleanse.columns import map_header
from mhhs_pipeline.cleanse.copies import collapse_copies
from mhhs_pipeline.cleanse.rules import OTHER_PREFIX
from mhhs_pipeline.core.participants import CENTRAL_ID
from mhhs_pipeline.core.schema import REGISTRATION_SCHEMA
from mhhs_pipeline.io.paths import participant_prefix
from mhhs_pipeline.io.store import FileRecord, RunStore
from mhhs_pipeline.spec.scenario import Population

HEAD_BYTES = 1 << 16
CSV_BLOCK_BYTES = 4 << 20  # ~45k records a chunk; pyarrow reads ~20 blocks ahead, so this bounds pass-1 memory
PARQUET_BATCH_ROWS = 100_000
_DELIMITERS = (",", ";", "\t", "|")
_FIX_UTF8 = "save it as UTF-8 (Excel: 'CSV UTF-8') and retry"


class ExtractError(ValueError):
    """An extract that cannot be read as a whole; the message is one line for the user."""


@dataclass
class Extract:
    """An opened extract: where it is, its format and how its columns map."""

    url: str
    fs: fsspec.AbstractFileSystem
    path: str
    format: str  # "csv" | "parquet"
    size: int
    header: list[str]
    canonical: dict[int, str]  # position -> canonical column
    other: dict[int, str]  # position -> folded header of a column we do not use
    delimiter: str = ","
    estimated_rows: int = 0

    @property
    def unused_columns(self) -> list[str]:
        return [self.header[i] for i in sorted(self.other)]

    @property
    def name(self) -> str:
        return posixpath.basename(self.path) or self.path

    def fail(self, what: str) -> ExtractError:
        return ExtractError(f"{self.name}: {what}")

    def chunks(self) -> Iterator[pa.Table]:
        """Text chunks: canonical columns, ``other:<header>`` columns, ``record``."""
        source = self._csv_batches() if self.format == "csv" else self._parquet_batches()
        first = 1
        for batch in source:
            cols = {name: batch.column(i) for i, name in self.canonical.items()}
            cols.update({OTHER_PREFIX + name: batch.column(i) for i, name in self.other.items()})
            cols["record"] = pa.array(np.arange(first, first + batch.num_rows, dtype=np.int64))
            first += batch.num_rows
            yield pa.table(cols)

    # -- CSV -------------------------------------------------------------------------------
    def _csv_batches(self) -> Iterator[pa.RecordBatch]:
        names = [f"c{i}" for i in range(len(self.header))]
        with self.fs.open(self.path, "rb") as f:
            try:
                reader = pacsv.open_csv(
                    f,
                    read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=CSV_BLOCK_BYTES),
                    # Quoted values may hold line breaks (notes columns exported from spreadsheets).
                    parse_options=pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True),
                    convert_options=pacsv.ConvertOptions(
                        column_types=dict.fromkeys(names, pa.string()),
                        strings_can_be_null=False,
                        quoted_strings_can_be_null=False,
                    ),
                )
                yield from reader
            except pa.ArrowInvalid as exc:
                raise self._csv_diagnosis(str(exc)) from None

    def _csv_diagnosis(self, arrow_message: str) -> ExtractError:
        """Find the line (and column) pyarrow stopped at; it does not report one itself."""
        if "UTF8" in arrow_message or "UTF-8" in arrow_message:
            return self._utf8_fault()
        expected = len(self.header)
        with self.fs.open(self.path, "rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
            reader = csv.reader(text, delimiter=self.delimiter)
            last = 0  # the line the last whole record ended on
            try:
                next(reader, None)
                last = reader.line_num
                for row in reader:
                    last = reader.line_num
                    if row and len(row) != expected:
                        got, line = len(row), reader.line_num
                        if got > expected:
                            hint = "quote values that contain the delimiter, or remove the extra fields"
                        elif next(reader, None) is None:
                            hint = "the file looks truncated: re-export or re-upload it completely"
                        else:
                            hint = "give every row all the header's fields (empty is fine) and check quoting"
                        return self.fail(f"line {line}: {got} field(s) where the header has {expected}; {hint}")
            except csv.Error as exc:
                # The csv module stops at a field over its limit (128 KiB): no registration
                # field is that long, so it is an unclosed quote or a file without line breaks.
                if "field larger than field limit" in str(exc):
                    return self.fail(
                        f"line {last + 1}: a field longer than {csv.field_size_limit():,} characters; "
                        "a registration field is never that long: look for an unclosed quote or missing line breaks"
                    )
                return self.fail(f"line {last + 1}: cannot be parsed as CSV ({exc}); check quoting and re-export it")
        short = arrow_message.splitlines()[0][:200]
        return self.fail(f"cannot be parsed as CSV ({short}); check quoting and re-export it")

    def _utf8_fault(self) -> ExtractError:
        with self.fs.open(self.path, "rb") as raw:
            for number, line in enumerate(raw, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    column = line[: exc.start].decode("utf-8", "replace").count(self.delimiter) + 1
                    header = self.header[column - 1] if column <= len(self.header) else f"field {column}"
                    return self.fail(
                        f"line {number}, column {column} ({header!r}): byte 0x{line[exc.start]:02x} is not UTF-8"
                        f" (the file looks like Windows-1252/Latin-1); {_FIX_UTF8}"
                    )
        return self.fail(f"is not valid UTF-8 text; {_FIX_UTF8}")

    # -- Parquet ---------------------------------------------------------------------------
    def _parquet_file(self, f) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(f)
        except (pa.ArrowInvalid, OSError) as exc:
            raise self.fail(
                f"is a damaged Parquet file ({str(exc).splitlines()[0][:120]}); re-export or re-upload it"
            ) from None

    def _parquet_batches(self) -> Iterator[pa.RecordBatch]:
        with self.fs.open(self.path, "rb") as f:
            pf = self._parquet_file(f)
            done = 0
            try:
                for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                    yield pa.RecordBatch.from_arrays(
                        [self._as_text(batch.column(i), i) for i in range(batch.num_columns)],
                        names=[f"c{i}" for i in range(batch.num_columns)],
                    )
                    done += batch.num_rows
            except (pa.ArrowInvalid, OSError) as exc:
                raise self.fail(
                    f"is damaged after row {done} ({str(exc).splitlines()[0][:120]}); re-export or re-upload it"
                ) from None

    def _as_text(self, arr: pa.Array, i: int) -> pa.Array:
        typ = arr.type
        if pa.types.is_dictionary(typ):
            arr, typ = arr.dictionary_decode(), typ.value_type
        if pa.types.is_nested(typ):
            raise self.fail(f"column {i + 1} ({self.header[i]!r}) has type {typ}; expected text, numbers or dates")
        try:
            return arr.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise self.fail(f"column {i + 1} ({self.header[i]!r}) holds bytes that are not UTF-8 text; {_FIX_UTF8}") from None


def _sniff_kind(head: bytes, tail: bytes, size: int, name: str, what: str) -> str:
    """'parquet' or 'csv', or ExtractError for what is neither; ``what`` names the kind of extract."""
    if size == 0 or not head.strip(b"\xef\xbb\xbf \t\r\n"):
        raise ExtractError(f"{name}: is empty; export the {what} with a header row and data rows")
    if head[:4] == b"PAR1":
        if size < 12 or tail != b"PAR1":
            raise ExtractError(f"{name}: is a truncated Parquet file (no footer); re-export or re-upload it completely")
        return "parquet"
    if head[:2] == b"\x1f\x8b":
        raise ExtractError(f"{name}: is gzip-compressed; decompress it (gunzip) and retry")
    if head[:4] == b"PK\x03\x04":
        raise ExtractError(f"{name}: is a ZIP archive or Excel workbook, not CSV; save the sheet as 'CSV UTF-8'")
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) or re.match(rb"^(?:[\x20-\x7e]\x00){4}|^(?:\x00[\x20-\x7e]){4}", head):
        raise ExtractError(f"{name}: is UTF-16 text; {_FIX_UTF8}")
    if b"\x00" in head:
        raise ExtractError(f"{name}: is a binary file, not CSV or Parquet; send the extract as CSV (UTF-8) or Parquet")
    return "csv"


def _csv_header(head: bytes, name: str, what: str, header_hint: str) -> tuple[list[str], str, int]:
    """(header fields, delimiter, estimated bytes per record) from the first bytes of a CSV."""
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8):]
    end = head.find(b"\n")
    if end < 0 and len(head) >= HEAD_BYTES:
        raise ExtractError(f"{name}: first line is longer than {HEAD_BYTES} bytes; this is not a CSV header row")
    line = head if end < 0 else head[:end]
    try:
        text = line.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise ExtractError(f"{name}: line 1, byte {exc.start + 1} of the header is not UTF-8; {_FIX_UTF8}") from None
    counts = {d: text.count(d) for d in _DELIMITERS}
    delimiter = max(counts, key=lambda d: counts[d])
    if counts[delimiter] == 0:
        shown = text[:40].replace("\t", " ")
        raise ExtractError(
            f"{name}: line 1 has no comma-separated header (starts {shown!r}); this is not a CSV {what}:"
            f" send CSV with a header row ({header_hint}) or Parquet"
        )
    header = next(csv.reader([text], delimiter=delimiter))
    lines = head.count(b"\n")
    per_record = max(len(head) // lines, 1) if lines > 1 else 150
    return header, delimiter, per_record


REGISTRATION_EXTRACT = "registration extract"
REGISTRATION_HEADER_HINT = "mpan_core, effective_from, supplier_id, ..."


def open_extract(
    url: str,
    *,
    what: str = REGISTRATION_EXTRACT,
    header_hint: str = REGISTRATION_HEADER_HINT,
    map_columns: Callable[[list[str]], tuple[dict[int, str], dict[int, str], list[str]]] = map_header,
) -> Extract:
    """Open and check an extract; raises ExtractError (or FileNotFoundError) on what cannot be read.

    A registration extract unless told otherwise: ``what`` names the kind of extract in
    messages, ``header_hint`` lists the columns a header row should start with, and
    ``map_columns`` maps the header (``cleanse.columns.map_header`` by default)."""
    try:
        fs, path = fsspec.core.url_to_fs(url)
        if not fs.exists(path) or fs.isdir(path):
            raise FileNotFoundError(url)
        size = fs.size(path)
        with fs.open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
            tail = b""
            if size >= 4:
                f.seek(size - 4)
                tail = f.read(4)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise ExtractError(f"{url}: cannot be read ({exc}); check the URL and credentials") from None
    name = posixpath.basename(path) or path
    kind = _sniff_kind(head, tail, size, name, what)
    delimiter, estimated = ",", 0
    if kind == "parquet":
        with fs.open(path, "rb") as f:
            try:
                meta = pq.ParquetFile(f).metadata
            except (pa.ArrowInvalid, OSError) as exc:
                raise ExtractError(
                    f"{name}: is a damaged Parquet file ({str(exc).splitlines()[0][:120]}); re-export or re-upload it"
                ) from None
            header = list(meta.schema.to_arrow_schema().names)
            estimated = meta.num_rows
    else:
        header, delimiter, per_record = _csv_header(head, name, what, header_hint)
        estimated = math.ceil(size / per_record)
    canonical, other, problems = map_columns(header)
    if problems:
        raise ExtractError(f"{name}: " + "; ".join(problems))
    return Extract(url, fs, path, kind, size, header, canonical, other, delimiter, estimated)


# -- The cleansing pass: stream -> normalise -> spill by MPAN bucket -> resolve each bucket ----

BUCKET_ROWS = 250_000  # records per bucket in pass 2: bounds memory whatever the file size
MAX_BUCKETS = 512  # one open file each in pass 1: stay well under the usual 1024 descriptors
PARQUET_OUT = {"compression": "zstd", "compression_level": 1, "use_dictionary": True, "write_statistics": True}


@dataclass
class CleanseOutput:
    """Local results of a cleansing pass (files live in the folder given to ``cleanse_to_dir``)."""

    registrations_path: str  # Parquet, REGISTRATION_SCHEMA
    quarantine_path: str  # Parquet, QUARANTINE_SCHEMA
    report_markdown: str
    stats: CleanseStats
    source_sha256: str
    source_bytes: int
    source_format: str
    window: tuple[dt.date, dt.date] | None  # first effective_from .. last date named, clean rows


class BucketSpill:
    """Records spread over bucket files on local disk, so one bucket at a time fits in memory.

    Arrow IPC streams with LZ4: no encoding work, so spilling costs little more than the
    disk writes. Collapsed copies (``cleanse.copies``) go to a side file per bucket: the
    record number of each copy and of the record it copies."""

    _COPY_SCHEMA = pa.schema([pa.field("of", pa.int64()), pa.field("record", pa.int64())])

    def __init__(self, folder: str, n: int):
        self.paths = [os.path.join(folder, f"bucket-{b:04d}.arrows") for b in range(n)]
        self.copy_paths = [os.path.join(folder, f"bucket-{b:04d}.copies.arrows") for b in range(n)]
        self.writers: list[pa.ipc.RecordBatchStreamWriter | None] = [None] * n
        self.sinks: list = [None] * n
        self.copy_writers: list[pa.ipc.RecordBatchStreamWriter | None] = [None] * n
        self.copy_sinks: list = [None] * n
        self.schema: pa.Schema | None = None
        self.options = pa.ipc.IpcWriteOptions(compression="lz4")

    def _write(self, writers, sinks, paths, schema, table: pa.Table, buckets: np.ndarray) -> None:
        order = np.argsort(buckets, kind="stable")
        cuts = np.searchsorted(buckets[order], np.arange(len(paths) + 1))
        table = table.take(pa.array(order))
        for b in np.flatnonzero(np.diff(cuts)):
            if writers[b] is None:
                sinks[b] = pa.OSFile(paths[b], "wb")
                writers[b] = pa.ipc.new_stream(sinks[b], schema, options=self.options)
            writers[b].write_table(table.slice(cuts[b], cuts[b + 1] - cuts[b]))

    def add(self, table: pa.Table, buckets: np.ndarray) -> None:
        if self.schema is None:
            self.schema = table.schema
        self._write(self.writers, self.sinks, self.paths, self.schema, table.cast(self.schema), buckets)

    def add_copies(self, of_record: np.ndarray, record: np.ndarray, buckets: np.ndarray) -> None:
        if len(record):
            table = pa.table({"of": pa.array(of_record, pa.int64()), "record": pa.array(record, pa.int64())})
            self._write(self.copy_writers, self.copy_sinks, self.copy_paths, self._COPY_SCHEMA, table, buckets)

    def close(self) -> None:
        """Close what is still open (after a failure; ``buckets`` closes as it goes)."""
        for writers, sinks in ((self.writers, self.sinks), (self.copy_writers, self.copy_sinks)):
            for b, writer in enumerate(writers):
                if writer is not None and not sinks[b].closed:
                    writer.close()
                    sinks[b].close()

    def _read(self, writers, sinks, paths, b: int) -> pa.Table | None:
        if writers[b] is None:
            return None
        writers[b].close()
        sinks[b].close()
        with pa.OSFile(paths[b], "rb") as f:
            table = pa.ipc.open_stream(f).read_all()
        os.remove(paths[b])  # disk use falls as pass 2 goes
        return table

    def buckets(self) -> Iterator[pa.Table]:
        for table, _ in self.buckets_with_copies():
            yield table

    def buckets_with_copies(self) -> Iterator[tuple[pa.Table, Callable[[], pa.Table | None]]]:
        """Each bucket's records, and a function that reads its collapsed copies (``of``,
        ``record``; None if none): most buckets never need them (copies of records that
        stand are only counted), so they are read only when asked for."""
        for b in range(len(self.paths)):
            table = self._read(self.writers, self.sinks, self.paths, b)
            if table is not None:
                yield table, lambda b=b: self._read(self.copy_writers, self.copy_sinks, self.copy_paths, b)
                self.close_copies(b)

    def close_copies(self, b: int) -> None:
        """Drop bucket ``b``'s copies file, read or not."""
        if self.copy_writers[b] is not None and not self.copy_sinks[b].closed:
            self.copy_writers[b].close()
            self.copy_sinks[b].close()
        if os.path.exists(self.copy_paths[b]):
            os.remove(self.copy_paths[b])


def file_sha256(fs: fsspec.AbstractFileSystem, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open(path, "rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def spill_by_mpan(extract: Extract, spill_dir: str, bucket_rows: int, normalise_chunk, *, collapse: bool = False) -> BucketSpill:
    """Pass 1 of a cleansing pass: normalise every chunk and spread it over local bucket
    files by a hash of the MPAN, so pass 2 can resolve one bucket (all records of its
    MPANs) at a time. ``collapse``: exact copies within a chunk are kept once
    (``cleanse.copies``), so a record repeated a million times is not a million rows."""
    n_buckets = min(MAX_BUCKETS, max(1, math.ceil(extract.estimated_rows / bucket_rows)))
    os.makedirs(spill_dir, exist_ok=True)
    spill = BucketSpill(spill_dir, n_buckets)
    try:
        for chunk in extract.chunks():
            norm = normalise_chunk(chunk)
            if collapse:
                c = collapse_copies(norm)
                norm = c.kept
                buckets = bucket_of(norm, n_buckets)
                spill.add_copies(norm.column("record").to_numpy()[c.copy_of], c.copy_record, buckets[c.copy_of])
                spill.add(norm, buckets)
            else:
                spill.add(norm, bucket_of(norm, n_buckets))
    except BaseException:
        spill.close()  # the caller removes the folder; leave no open handles behind
        raise
    return spill


def cleanse_to_dir(url: str, folder: str, *, seed: int = 0, population: Population | None = None) -> CleanseOutput:
    """Cleanse the extract at ``url`` into ``folder`` (local): clean registrations and
    quarantine as Parquet, plus the Markdown report. Raises ExtractError for a file that
    cannot be read; nothing is returned half done."""
    extract = open_extract(url)
    log = RepairLog()
    spill_dir = os.path.join(folder, "spill")
    spill = spill_by_mpan(extract, spill_dir, BUCKET_ROWS, lambda chunk: normalise(chunk, log), collapse=True)

    stats = CleanseStats(source=extract.name, source_format=extract.format, ignored_columns=extract.unused_columns)
    stats.repairs = log
    reg_path = os.path.join(folder, "registrations.parquet")
    q_path = os.path.join(folder, "quarantine.parquet")
    first = last = None
    with (
        pq.ParquetWriter(reg_path, REGISTRATION_SCHEMA, **PARQUET_OUT) as reg_out,
        pq.ParquetWriter(q_path, QUARANTINE_SCHEMA, **PARQUET_OUT) as q_out,
    ):
        for table, copies in spill.buckets_with_copies():
            res = cleanse_bucket(table, seed, population, copies=copies)
            reg_out.write_table(res.registrations)
            for part in res.quarantine_parts:
                q_out.write_table(part)
            stats.merge(res.stats)
            if res.registrations.num_rows:
                lo = pc.min(res.registrations.column("effective_from")).as_py()
                hi = max(d for d in (pc.max(res.registrations.column("effective_to")).as_py(), pc.max(res.registrations.column("effective_from")).as_py()) if d)
                first = lo if first is None else min(first, lo)
                last = hi if last is None else max(last, hi)
    os.rmdir(spill_dir)
    stats.check_reconciliation()
    return CleanseOutput(
        reg_path, q_path, render_markdown(stats), stats, file_sha256(extract.fs, extract.path), extract.size,
        extract.format, (first, last) if first else None,
    )  # fmt: skip


def cleanse_registrations(url: str, *, seed: int = 0, population: Population | None = None) -> tuple[pa.Table, pa.Table, CleanseOutput]:
    """In-memory form for the ``run`` command: (clean registrations, quarantine, output).

    The tables are read back fully, so use it for extracts that fit in memory; the
    output's file paths point into a folder that no longer exists."""
    with tempfile.TemporaryDirectory(prefix="mhhs-cleanse-") as tmp:
        out = cleanse_to_dir(url, tmp, seed=seed, population=population)
        reg = pq.read_table(out.registrations_path, memory_map=False)
        quarantine = pq.read_table(out.quarantine_path, memory_map=False)
    return reg, quarantine, out


def write_cleanse_run(url: str, out_url: str, run_id: str, *, seed: int = 0, population: Population | None = None) -> tuple[str, dict, CleanseOutput]:
    """``mhhs-pipeline cleanse``: cleanse, then write the run directory, manifest last.

    The run directory is touched only after the whole extract has been read and
    cleansed, so a malformed file leaves any earlier run with this id as it was.
    Returns (manifest URL, manifest, output)."""
    store = RunStore(out_url, run_id)  # checks the run id before any work
    with tempfile.TemporaryDirectory(prefix="mhhs-cleanse-") as tmp:
        out = cleanse_to_dir(url, tmp, seed=seed, population=population)
        prefix = participant_prefix("central", CENTRAL_ID)
        files = [
            (f"{prefix}/registrations/registrations.parquet", out.registrations_path, "registrations", "parquet", out.stats.clean),
            (f"{prefix}/quarantine/quarantine.parquet", out.quarantine_path, "quarantine", "parquet", out.stats.quarantined),
        ]
        store.reset()
        records = []
        for rel, local, dataset, fmt, rows in files:
            with open(local, "rb") as f:
                records.append(store.write(rel, f.read(), role="central", participant_id=CENTRAL_ID, dataset=dataset, fmt=fmt, rows=rows))
    report = out.report_markdown.encode("utf-8")  # a report carries no records: rows 0
    records.append(
        store.write(f"{prefix}/cleansing_report/cleansing_report.md", report, role="central", participant_id=CENTRAL_ID,
                    dataset="cleansing_report", fmt="markdown", rows=0)
    )  # fmt: skip
    manifest = cleanse_manifest(run_id, seed, out, records)
    return store.write_manifest(manifest), manifest, out


def cleanse_manifest(run_id: str, seed: int, out: CleanseOutput, records: list[FileRecord]) -> dict:
    """The manifest of a cleansing run: the pipeline's shape, with the source in place of a scenario."""
    from mhhs_pipeline import __version__

    records = sorted(records, key=lambda r: r.path)
    window = {"start": out.window[0].isoformat(), "end": out.window[1].isoformat()} if out.window else None
    return {
        "run_id": run_id,
        "seed": seed,
        "scenario": None,
        "scenario_sha256": None,
        "window": window,
        "generator": {"name": "mhhs-pipeline", "version": __version__, "command": "cleanse"},
        "source": {"name": out.stats.source, "format": out.source_format, "bytes": out.source_bytes, "sha256": out.source_sha256},
        "cleansing": {**out.stats.to_dict(), "reconciliation": out.stats.reconciliation_line()},
        "totals": {
            "registrations": out.stats.clean,
            "quarantined": out.stats.quarantined,
            "files": len(records),
            "bytes": sum(r.bytes for r in records),
        },
        "files": [r.to_dict() for r in records],
    }
