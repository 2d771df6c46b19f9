"""Deliver one participant's slice in every format its role receives.

| role | formats |
|---|---|
| every role | the scenario's tabular formats (Parquet, CSV) |
| central, supplier, LDSO | MHHS IF-021 JSON (the DIP receivers) |
| data service | DCC 4.8.1 / 4.8.3 profile-data responses for its DCC-enrolled Smart MPANs |

Paths are ``<role>/<participant_id>/<dataset>/<name>``; ids are checked before they
become paths (:func:`mhhs_pipeline.io.paths.participant_prefix`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa

from mhhs_pipeline.core.registrations import dcc_enrolled
from mhhs_pipeline.formats.compression import SUFFIX, compress
from mhhs_pipeline.formats.dcc_bundle import bundle_dcc_responses
from mhhs_pipeline.formats.dcc_xml import iter_dcc_profile_chunks, profile_rows
from mhhs_pipeline.formats.if021 import If021Writer
from mhhs_pipeline.formats.tabular import encode_csv, encode_parquet
from mhhs_pipeline.formats.wide import encode_wide_csv
from mhhs_pipeline.io.paths import participant_prefix
from mhhs_pipeline.io.store import FileRecord, RunStore
from mhhs_pipeline.spec.scenario import Scenario

TABULAR = {
    "parquet": (encode_parquet, "parquet"),
    "csv": (encode_csv, "csv"),
    "csv_wide": (lambda t: encode_wide_csv(t, local=False), "wide.csv"),
    "csv_wide_local": (lambda t: encode_wide_csv(t, local=True), "wide_local.csv"),
}
CONSUMPTION_ONLY = ("csv_wide", "csv_wide_local")
IF021_ROLES = ("central", "supplier", "ldso")


@dataclass(frozen=True)
class UnitContext:
    """What every delivery of one work unit shares."""

    scenario: Scenario
    store: RunStore
    registrations: pa.Table
    first_day: dt.date
    last_day: dt.date

    @cached_property
    def mpan_statics(self) -> pa.Table:
        return _mpan_statics(self.registrations)

    @cached_property
    def data_services(self) -> tuple[list[str], np.ndarray]:
        """The data services (in id order) and each registration row's index among them."""
        ids = np.asarray(self.registrations.column("data_service_id").to_numpy(zero_copy_only=False)).astype(str)
        services, code = np.unique(ids, return_inverse=True)
        return services.tolist(), code.reshape(-1)

    @cached_property
    def dcc_enrolled(self) -> np.ndarray:
        """Per registration row: a Smart meter enrolled with DCC (flag A), judged once per unit."""
        return dcc_enrolled(self.registrations)

    @property
    def sender_timestamp_utc(self) -> dt.datetime:
        # Deterministic: the data never depends on when it was generated. A data service
        # sends a day's data early the next morning, so stamp 01:00 UTC after the last day.
        return dt.datetime.combine(self.last_day + dt.timedelta(days=1), dt.time(1, 0), tzinfo=dt.UTC)


def write_tabular(
    ctx: UnitContext, role: str, pid: str, dataset: str, name: str, table: pa.Table, *, pre_encoded: dict[str, bytes | list] | None = None, n_rows: int | None = None
) -> list[FileRecord]:
    """Every tabular format of one dataset slice. ``pre_encoded``: formats whose text was
    already cut from the unit's rendering (:class:`~mhhs_pipeline.formats.tabular.RenderedCsv`);
    ``table`` then serves the other formats only, and ``n_rows`` counts the slice."""
    pre_encoded = pre_encoded or {}
    prefix = participant_prefix(role, pid)
    n_rows = table.num_rows if n_rows is None else n_rows
    out = []
    codec = ctx.scenario.outputs.csv_compression
    for fmt in ctx.scenario.outputs.formats:
        if fmt not in TABULAR or (fmt in CONSUMPTION_ONLY and dataset != "consumption"):
            continue
        encode, ext = TABULAR[fmt]
        data = pre_encoded[fmt] if fmt in pre_encoded else encode(table)
        if fmt != "parquet":
            data, ext = compress(data, codec), ext + SUFFIX[codec]
        out.append(
            ctx.store.write(
                f"{prefix}/{dataset}/{name}.{ext}", data,
                role=role, participant_id=pid, dataset=dataset, fmt=fmt, rows=n_rows,
            )
        )  # fmt: skip
    return out


def deliver_consumption(
    ctx: UnitContext, role: str, pid: str, name: str, table: pa.Table, registration_row: np.ndarray | None, *, pre_encoded: dict[str, bytes] | None = None, n_rows: int | None = None
) -> list[FileRecord]:
    """Every format of one participant's consumption slice of one unit (``registration_row``,
    per row of ``table``, is read by the IF-021 and DCC encoders only)."""
    records = write_tabular(ctx, role, pid, "consumption", name, table, pre_encoded=pre_encoded, n_rows=n_rows)
    formats = ctx.scenario.outputs.formats
    if "if021_json" in formats and role in IF021_ROLES and table.num_rows:
        data, n = _if021(ctx, table, registration_row)
        records.append(
            ctx.store.write(
                f"{participant_prefix(role, pid)}/consumption/{name}.if021.json", data,
                role=role, participant_id=pid, dataset="consumption", fmt="if021_json", rows=n,
            )
        )  # fmt: skip
    if "dcc_xml" in formats and role == "data_service" and table.num_rows:
        records += _dcc(ctx, pid, name, table, registration_row)
    return records


def _mpan_statics(reg: pa.Table) -> pa.Table:
    """Per MPAN: distributor, GSP group, connection type (+ since when), segment."""
    first_from = reg.group_by("mpan_core").aggregate([("effective_from", "min")])
    latest = reg.select(["mpan_core", "distributor_id", "gsp_group", "connection_type", "market_segment"])
    latest = latest.group_by("mpan_core", use_threads=False).aggregate(
        [(c, "last") for c in ("distributor_id", "gsp_group", "connection_type", "market_segment")]
    )
    latest = latest.rename_columns([c.removesuffix("_last") for c in latest.column_names])
    joined = latest.join(first_from, "mpan_core")
    return joined.rename_columns([c if c != "effective_from_min" else "connection_type_effective_from" for c in joined.column_names])


class _Chunks(list):
    """An :class:`If021Writer` sink that keeps the pieces it is given, in order, as the
    chunks ``RunStore.write`` takes a file in: the text stays in the Arrow buffers the
    encoder assembled it in (a memoryview keeps its buffer alive) and is never copied into
    one ``bytes`` -- that copy of a unit's ~350 MB of IF-021 cost ~0.2 s CPU, mostly page
    faults. A store that needs one body joins the chunks itself."""

    def write(self, piece: bytes | memoryview) -> None:
        self.append(piece)


def _if021(ctx: UnitContext, table: pa.Table, registration_row: np.ndarray) -> tuple[list[bytes | memoryview], int]:
    """IF-021 messages, as the file's chunks; rows are grouped by the data service in
    force, which issues them.

    One array, services in id order, written in one pass over the slice (the writer orders
    rows by service, MPAN, MQ and time itself: no per-service selection of rows).
    """
    services, code = ctx.data_services
    chunks = _Chunks()
    writer = If021Writer(chunks, sender_timestamp_utc=ctx.sender_timestamp_utc)
    writer.add_by_issuer(table, ctx.mpan_statics, services, code[registration_row])
    writer.close()
    return chunks, writer.values


def _dcc(ctx: UnitContext, pid: str, name: str, table: pa.Table, registration_row: np.ndarray) -> list[FileRecord]:
    """DCC profile-data responses for Smart MPANs enrolled with DCC (flag A), AI and AE: one
    ZIP of them per unit (``outputs.dcc_bundle``), else a file each."""
    # Only the four columns the encoder reads, chunks combined once; enrolment belongs to the
    # registration (judged once per unit), looked up for each consumption row.
    rows = table.select(["mpan_core", "measurement_quantity", "period_end_utc", "consumption_kwh"]).combine_chunks()
    keep = ctx.dcc_enrolled[registration_row] & profile_rows(rows.column("measurement_quantity"))
    if not keep.any():
        return []
    request = dt.datetime.combine(ctx.last_day + dt.timedelta(days=1), dt.time(2, 0), tzinfo=dt.UTC)
    prefix = participant_prefix("data_service", pid)
    out = []
    # Documents come as header, body and footer chunks, the body a view of its batch's
    # rendering (never joined). Loose files are written as they come (one batch's text held);
    # a bundle holds the unit's documents, as views, until the archive is written.
    rows = rows.filter(pa.array(keep))
    del keep
    documents = iter_dcc_profile_chunks(rows, request_timestamp_utc=request)
    if ctx.scenario.outputs.dcc_bundle:
        bundle = bundle_dcc_responses(documents, request_timestamp_utc=request)
        return [
            ctx.store.write(
                f"{prefix}/dcc_profile_data/{name}.dcc.zip", bundle.chunks,
                role="data_service", participant_id=pid, dataset="dcc_profile_data", fmt="dcc_xml_zip", rows=bundle.values, members=bundle.members,
            )
        ]  # fmt: skip
    for doc_name, chunks, n_values in documents:
        out.append(
            ctx.store.write(
                f"{prefix}/dcc_profile_data/{doc_name}", chunks,
                role="data_service", participant_id=pid, dataset="dcc_profile_data", fmt="dcc_xml", rows=n_values,
            )
        )  # fmt: skip
    return out
