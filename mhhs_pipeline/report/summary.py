"""Small, mergeable aggregates of generated consumption, the input of the report pictures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.core import streams
from mhhs_pipeline.core.schema import UTC_US, fixed_width

SHAPE_SCHEMA = pa.schema(
    [("archetype", pa.string()), ("season", pa.string()), ("day_kind", pa.string()), ("local_slot", pa.int16()), ("kwh_sum", pa.float64()), ("periods", pa.int64())]
)
MONTHLY_SCHEMA = pa.schema([("archetype", pa.string()), ("month", pa.string()), ("kwh_sum", pa.float64()), ("periods", pa.int64())])
MPAN_SCHEMA = pa.schema(
    [("mpan_core", pa.string()), ("archetype", pa.string()), ("annual_consumption_kwh", pa.float64()), ("kwh_sum", pa.float64()), ("periods", pa.int64())]
)
SAMPLE_SCHEMA = pa.schema(
    [("mpan_core", pa.string()), ("archetype", pa.string()), ("rank", pa.uint64()), ("period_end_utc", pa.timestamp("us", tz="UTC")), ("consumption_kwh", pa.float64())]
)
_RANK_KEY = streams.stream_key(0, "report.sample")


@dataclass(frozen=True)
class ReportSummary:
    """Aggregates of one or many work units (every table small: thousands of rows)."""

    shape: pa.Table  # SHAPE_SCHEMA: energy by archetype x season x weekday/weekend x local half hour
    monthly: pa.Table  # MONTHLY_SCHEMA: energy by archetype x local month
    mpans: pa.Table  # MPAN_SCHEMA: energy and half hours per MPAN, with its registered annual
    sample: pa.Table  # SAMPLE_SCHEMA: every half hour of a few sample MPANs per archetype
    samples_per_archetype: int = 1


def _codes(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(int codes per row, distinct values in order of first appearance) without materialising
    Python strings per row."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if pa.types.is_dictionary(col.type) and chunks and all(c.null_count == 0 for c in chunks):
        return _dictionary_codes(chunks)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    enc = pc.dictionary_encode(col)
    values = np.asarray(enc.dictionary.to_numpy(zero_copy_only=False)).astype(str)
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), values


def _dictionary_codes(chunks: list[pa.DictionaryArray]) -> tuple[np.ndarray, np.ndarray]:
    """``_codes`` of dictionary chunks from their indices: the same codes and values as decoding
    the strings and encoding them again (what a unit's 1.5 M rows cost most), since the codes
    number the distinct strings in order of first appearance either way."""
    # The distinct strings of all dictionaries (which may repeat one), deduplicated by Arrow as
    # the rows themselves would be.
    enc = pc.dictionary_encode(pa.concat_arrays([c.dictionary for c in chunks]))
    strings = np.asarray(enc.dictionary.to_numpy(zero_copy_only=False)).astype(str)
    string_of = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.cumsum([0] + [len(c.dictionary) for c in chunks])
    # Entry ids: the row's position in the concatenated dictionaries (the indices themselves for one chunk).
    entries = [c.indices.to_numpy(zero_copy_only=False) for c in chunks]
    entry = entries[0] if len(chunks) == 1 else np.concatenate([offsets[i] + e.astype(np.int64) for i, e in enumerate(entries)])
    if not len(entry):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=strings.dtype)
    # A string first appears at the start of a run of equal entries (a run of one string may
    # span several entries, which only adds run starts): find the runs, then the order.
    starts = np.r_[0, np.flatnonzero(entry[1:] != entry[:-1]) + 1]
    seen, first = np.unique(string_of[entry[starts]], return_index=True)
    appearance = seen[np.argsort(first, kind="stable")]
    code_of = np.zeros(len(strings), dtype=np.int64)  # strings no row uses are never looked up
    code_of[appearance] = np.arange(len(appearance))
    return code_of[string_of][entry], strings[appearance]


_SEASON_OF_MONTH = np.array(["winter", "winter", "spring", "spring", "spring", "summer", "summer", "summer", "autumn", "autumn", "autumn", "winter"])
_SEASON_NAMES = np.array(["autumn", "spring", "summer", "winter"])
_SEASON_CODE = np.searchsorted(_SEASON_NAMES, _SEASON_OF_MONTH)
_SAMPLE_DAYS = 7


def summarise(consumption: pa.Table, registrations: pa.Table, registration_row: np.ndarray | None = None, samples_per_archetype: int = 1) -> ReportSummary:
    """Aggregate one unit's canonical consumption (active import and export only).

    ``registration_row`` (per consumption row, as returned by the generator) says which
    registration each row belongs to, and so its MPAN; without it each MPAN's latest
    registration is used. Rows of de-energised registrations are left out of the averages.

    The work is done on runs of rows with one registration and measurement quantity (a
    unit's rows come grouped by MPAN and quantity): whether a row counts, its archetype and
    its MPAN are decided per run, so only the kWh and the half hour are read per row.
    """
    n = consumption.num_rows
    reg_core_id, reg_cores = _codes(registrations.column("mpan_core"))
    latest = _latest_of_core(registrations, reg_core_id)  # per MPAN id: its latest registration row
    if registration_row is None:
        core_code, core_strings = _codes(consumption.column("mpan_core"))
        id_of = {c: i for i, c in enumerate(reg_cores.tolist())}
        registration_row = np.array([latest[id_of[c]] if c in id_of else -1 for c in core_strings.tolist()], dtype=np.int64)[core_code]
    rr = np.asarray(registration_row, dtype=np.int64)
    mq_entry, active_entry = _entry_flags(consumption.column("measurement_quantity"), ("AI", "AE"))
    # Runs of one registration and one quantity; everything but kWh and time is per run.
    change = rr[1:] != rr[:-1]
    change |= mq_entry[1:] != mq_entry[:-1]
    starts = np.r_[0, np.flatnonzero(change) + 1] if n else np.zeros(0, dtype=np.int64)
    lengths = np.diff(np.r_[starts, n])
    run_rr = rr[starts]
    arch_code_reg, arch_values = _codes(registrations.column("archetype"))
    energised = np.asarray(registrations.column("energisation_status").to_numpy(zero_copy_only=False)).astype(str) == "E"
    kept = (run_rr >= 0) & active_entry[mq_entry[starts]]
    kept[kept] &= energised[run_rr[kept]]
    # MPANs numbered in order of first appearance among the counted rows.
    core_of_run = np.full(len(starts), -1, dtype=np.int64)
    run_core = reg_core_id[run_rr[kept]]
    seen, first_run = np.unique(run_core, return_index=True)
    appearance = seen[np.argsort(first_run, kind="stable")]
    code_of = np.zeros(len(reg_cores), dtype=np.int64)
    code_of[appearance] = np.arange(len(appearance))
    core_of_run[kept] = code_of[run_core]
    core_values = reg_cores[appearance]
    arch_of_run = np.full(len(starts), -1, dtype=np.int64)
    arch_of_run[kept] = arch_code_reg[run_rr[kept]]

    end_us = _int64_column(consumption.column("period_end_utc"))
    kwh = consumption.column("consumption_kwh").to_numpy()
    na, nc = len(arch_values), len(core_values)
    # Half hours counted from the first row of all (not only of the counted ones): rows that do
    # not count fall into one more archetype row of the sums, dropped below, so the per-row
    # index needs no gather; the grid's extra half hours stay empty.
    first = int(end_us.min()) if kept.any() else 0
    last = int(end_us.max()) if kept.any() else 0
    ng = (last - first) // 1_800_000_000 + 1 if kept.any() else 0
    grid = first - 1_800_000_000 + np.arange(ng, dtype=np.int64) * 1_800_000_000
    local = pa.array(grid, pa.int64()).cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us", tz="Europe/London"))
    g_slot = pc.hour(local).to_numpy() * 2 + pc.minute(local).to_numpy() // 30
    g_month = pc.month(local).to_numpy().astype(np.int64)
    g_key = pc.year(local).to_numpy().astype(np.int64) * 12 + g_month - 1
    g_weekend = (pc.day_of_week(local).to_numpy() >= 5).astype(np.int64)
    g_season = _SEASON_CODE[g_month - 1]

    # Sums per (archetype, half hour) first: one pass over the rows; the shape and monthly
    # tables then aggregate that small matrix, not the rows again.
    if kept.any():
        ah = np.repeat(np.where(kept, arch_of_run, na) * ng, lengths)
        hh = end_us - first
        hh //= 1_800_000_000
        ah += hh
        ah_sum = np.bincount(ah, weights=kwh, minlength=(na + 1) * ng)[: na * ng].reshape(na, ng)
        ah_cnt = np.bincount(ah, minlength=(na + 1) * ng)[: na * ng].reshape(na, ng)
        ah = None
    else:
        ah_sum, ah_cnt = np.zeros((na, 0)), np.zeros((na, 0), dtype=np.int64)
    # ((arch * 4 + season) * 2 + weekend) * 48 + slot
    key = (np.arange(na)[:, None] * (4 * 2 * 48) + ((g_season * 2 + g_weekend) * 48 + g_slot)[None, :]).reshape(-1)
    size = na * 4 * 2 * 48
    ksum = np.bincount(key, weights=ah_sum.reshape(-1), minlength=size)
    kcnt = np.bincount(key, weights=ah_cnt.reshape(-1), minlength=size).astype(np.int64)
    nz = np.flatnonzero(kcnt)
    shape = pa.table(
        {
            "archetype": arch_values[nz // (4 * 2 * 48)],
            "season": _SEASON_NAMES[(nz // (2 * 48)) % 4],
            "day_kind": np.array(["weekday", "weekend"])[(nz // 48) % 2],
            "local_slot": (nz % 48).astype(np.int16),
            "kwh_sum": ksum[nz],
            "periods": kcnt[nz],
        },
        schema=SHAPE_SCHEMA,
    )
    used = ah_cnt.sum(axis=0) > 0
    m0 = int(g_key[used].min()) if used.any() else 0
    nm = int(g_key[used].max()) - m0 + 1 if used.any() else 1
    mk = (np.arange(na)[:, None] * nm + (g_key - m0)[None, :]).reshape(-1)
    msum = np.bincount(mk, weights=ah_sum.reshape(-1), minlength=na * nm)
    mcnt = np.bincount(mk, weights=ah_cnt.reshape(-1), minlength=na * nm).astype(np.int64)
    nz = np.flatnonzero(mcnt)
    mabs = m0 + nz % nm
    monthly = pa.table(
        {
            "archetype": arch_values[nz // nm],
            "month": [f"{int(k) // 12}-{int(k) % 12 + 1:02d}" for k in mabs],
            "kwh_sum": msum[nz],
            "periods": mcnt[nz],
        },
        schema=MONTHLY_SCHEMA,
    )
    nca = nc * max(na, 1)
    ck_run = np.where(kept, core_of_run * max(na, 1) + arch_of_run, nca)  # nca: rows that do not count
    # Per run first (a pass over the rows), then per MPAN and archetype over the runs.
    csum = np.bincount(ck_run, weights=np.add.reduceat(kwh, starts) if n else None, minlength=nca + 1)[:nca]
    ccnt = np.bincount(ck_run, weights=lengths, minlength=nca + 1)[:nca].astype(np.int64)
    nz = np.flatnonzero(ccnt)
    mcores = nz // max(na, 1)
    mpans = pa.table(
        {
            "mpan_core": core_values[mcores],
            "archetype": arch_values[nz % max(na, 1)],
            "annual_consumption_kwh": registrations.column("annual_consumption_kwh").to_numpy()[latest[appearance[mcores]]].astype(np.float64),
            "kwh_sum": csum[nz],
            "periods": ccnt[nz],
        },
        schema=MPAN_SCHEMA,
    )
    sample = _sample(end_us, kwh, starts, lengths, kept, core_of_run, core_values, arch_of_run, arch_values, samples_per_archetype)
    return ReportSummary(shape, monthly, mpans, sample, samples_per_archetype)


def _entry_flags(col: pa.ChunkedArray, wanted: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(an id per row, whether each id's string is in ``wanted``): a one-chunk dictionary
    column's own indices (no copy), else ``_codes``."""
    if pa.types.is_dictionary(col.type) and col.num_chunks == 1 and col.null_count == 0:
        chunk = col.chunk(0)
        return chunk.indices.to_numpy(), np.isin(np.asarray(chunk.dictionary.to_numpy(zero_copy_only=False)).astype(str), wanted)
    codes, values = _codes(col)
    return codes, np.isin(values, wanted)


def _latest_of_core(registrations: pa.Table, core_id: np.ndarray) -> np.ndarray:
    """Per MPAN id: the row of its latest registration (latest ``effective_from``; the last
    such row on a tie)."""
    frm = registrations.column("effective_from").cast(pa.int32()).to_numpy(zero_copy_only=False)
    order = np.lexsort((frm, core_id))
    latest = np.zeros(int(core_id.max()) + 1 if len(core_id) else 0, dtype=np.int64)
    latest[core_id[order]] = order  # later rows overwrite earlier ones
    return latest


def _int64_column(col: pa.ChunkedArray) -> np.ndarray:
    """A timestamp column's int64 microseconds (no copy for one chunk)."""
    if col.num_chunks == 1 and col.null_count == 0:
        return col.chunk(0).view(pa.int64()).to_numpy()
    return col.cast(pa.int64()).to_numpy()


def _rank(cores: np.ndarray) -> np.ndarray:
    return streams.random_u64(_RANK_KEY, np.asarray(cores).astype(np.uint64))


def _sample(
    end_us: np.ndarray, kwh: np.ndarray, starts: np.ndarray, lengths: np.ndarray, kept: np.ndarray,
    core_of_run: np.ndarray, core_values: np.ndarray, arch_of_run: np.ndarray, arch_values: np.ndarray, k: int,
) -> pa.Table:
    """All half hours of the first days of the ``k`` lowest-ranked MPANs of each archetype."""
    if not kept.any():
        return SAMPLE_SCHEMA.empty_table()
    rank = _rank(core_values)
    first_arch = np.full(len(core_values), -1)
    first_arch[core_of_run[kept]] = arch_of_run[kept]  # an MPAN's last counted run decides
    chosen = np.zeros(len(core_values), dtype=bool)
    for a in np.flatnonzero(np.bincount(arch_of_run[kept])):  # the archetypes present, ascending
        sel = np.flatnonzero(first_arch == a)
        chosen[sel[np.argsort(rank[sel], kind="stable")[:k]]] = True
    runs = np.flatnonzero(kept & chosen[np.maximum(core_of_run, 0)])
    counts = lengths[runs]
    rows = np.arange(int(counts.sum())) + np.repeat(starts[runs] - (np.cumsum(counts) - counts), counts)
    core, arch = np.repeat(core_of_run[runs], counts), np.repeat(arch_of_run[runs], counts)
    ts = end_us[rows].view("datetime64[us]")
    near = ts <= ts.min() + np.timedelta64(_SAMPLE_DAYS, "D")
    rows, core, arch = rows[near], core[near], arch[near]
    return pa.table(
        {
            "mpan_core": core_values[core],
            "archetype": arch_values[arch],
            "rank": rank[core],
            "period_end_utc": fixed_width(end_us[rows], UTC_US),
            "consumption_kwh": kwh[rows],
        },
        schema=SAMPLE_SCHEMA,
    )


def merge_summaries(parts: list[ReportSummary]) -> ReportSummary:
    """One summary of many units: sums re-aggregated, samples re-chosen (order-independent)."""
    if not parts:
        raise ValueError("merge_summaries needs at least one summary")
    k = max(p.samples_per_archetype for p in parts)
    shape = pa.concat_tables([p.shape for p in parts]).group_by(["archetype", "season", "day_kind", "local_slot"]).aggregate([("kwh_sum", "sum"), ("periods", "sum")])
    shape = shape.rename_columns({"kwh_sum_sum": "kwh_sum", "periods_sum": "periods"}).select(SHAPE_SCHEMA.names).cast(SHAPE_SCHEMA)
    monthly = pa.concat_tables([p.monthly for p in parts]).group_by(["archetype", "month"]).aggregate([("kwh_sum", "sum"), ("periods", "sum")])
    monthly = monthly.rename_columns({"kwh_sum_sum": "kwh_sum", "periods_sum": "periods"}).select(MONTHLY_SCHEMA.names).cast(MONTHLY_SCHEMA)
    mp = pa.concat_tables([p.mpans for p in parts]).group_by(["mpan_core", "archetype"]).aggregate(
        [("annual_consumption_kwh", "max"), ("kwh_sum", "sum"), ("periods", "sum")]
    )
    mpans = mp.rename_columns({"annual_consumption_kwh_max": "annual_consumption_kwh", "kwh_sum_sum": "kwh_sum", "periods_sum": "periods"}).select(MPAN_SCHEMA.names).cast(MPAN_SCHEMA)
    sample = pa.concat_tables([p.sample for p in parts])
    if sample.num_rows:
        firsts = sample.group_by(["archetype", "mpan_core"]).aggregate([("rank", "min")])
        keep = []
        archs = np.asarray(firsts.column("archetype").to_numpy(zero_copy_only=False)).astype(str)
        ranks = firsts.column("rank_min").to_numpy()
        cores = np.asarray(firsts.column("mpan_core").to_numpy(zero_copy_only=False)).astype(str)
        for a in np.unique(archs):
            sel = np.flatnonzero(archs == a)
            keep += list(cores[sel[np.argsort(ranks[sel], kind="stable")[:k]]])
        sample = sample.filter(pc.is_in(sample.column("mpan_core"), pa.array(keep)))
        t0 = pc.min(sample.column("period_end_utc"))
        limit = pa.scalar(t0.value + _SAMPLE_DAYS * 86_400_000_000, pa.timestamp("us", tz="UTC"))
        sample = sample.filter(pc.less_equal(sample.column("period_end_utc"), limit))
        sample = sample.sort_by([("archetype", "ascending"), ("mpan_core", "ascending"), ("period_end_utc", "ascending")])
        # The same half hour may arrive twice only if a caller merges a summary with itself.
        sample = sample.group_by(["mpan_core", "archetype", "rank", "period_end_utc"]).aggregate([("consumption_kwh", "max")])
        sample = sample.rename_columns({"consumption_kwh_max": "consumption_kwh"}).select(SAMPLE_SCHEMA.names).cast(SAMPLE_SCHEMA)
        sample = sample.sort_by([("archetype", "ascending"), ("mpan_core", "ascending"), ("period_end_utc", "ascending")])
    return ReportSummary(_sorted(shape, ["archetype", "season", "day_kind", "local_slot"]), _sorted(monthly, ["archetype", "month"]), _sorted(mpans, ["mpan_core"]), sample, k)


def _sorted(t: pa.Table, keys: list[str]) -> pa.Table:
    return t.sort_by([(k, "ascending") for k in keys])


def report_png(consumption: pa.Table, registrations: pa.Table, registration_row: np.ndarray | None = None, title: str = "") -> bytes:
    """Summarise and render in one call (for a table that fits in memory)."""
    from mhhs_pipeline.report.plots import render_png

    return render_png(merge_summaries([summarise(consumption, registrations, registration_row)]), title=title)


class SummaryFold:
    """Units' summaries merged as the units complete, so a run holds a few, not one per
    unit (a summary is tens of KB; a market year has 360,000 units).

    Summaries are merged in job order, in fixed chunks of ``CHUNK`` (those that arrive early
    wait for the ones before them), so which worker finished first does not change what is
    merged with what. ``keep`` is the hook ``distributed.run_on_dask`` calls with each
    result: it takes the result's summary and returns the result without it."""

    CHUNK = 64

    def __init__(self) -> None:
        self._waiting: dict[int, ReportSummary | None] = {}
        self._next = 0
        self._run: list[ReportSummary] = []
        self._merged: list[ReportSummary] = []

    def add(self, index: int, summary: ReportSummary | None) -> None:
        self._waiting[index] = summary
        while self._next in self._waiting:
            part = self._waiting.pop(self._next)
            self._next += 1
            if part is not None:
                self._run.append(part)
            if len(self._run) == self.CHUNK:
                self._merged.append(merge_summaries(self._run))
                self._run = []

    def keep(self, index: int, result):
        import dataclasses

        self.add(index, result.report)
        return dataclasses.replace(result, report=None)

    def result(self) -> ReportSummary | None:
        if self._waiting:
            raise RuntimeError(f"summaries of units {sorted(self._waiting)[:3]} arrived without those before them")
        parts = self._merged + ([merge_summaries(self._run)] if self._run else [])
        return merge_summaries(parts) if parts else None
