"""What-if timings for the optimisation proposals of issue 6, on one real work unit.

    .venv/bin/python -m benchmarks.proposals [--mpans 1000] [--repeat 3]

Generates one unit of ``configs/scenarios/bench.yaml`` (1,000 MPANs x 28 days) with the
library, then times, in this process, the library's own delivery steps against the
changes proposed for them, and checks that each proposal writes the same data:

- P2 Parquet: string columns kept dictionary-typed (as the generator builds them, before
  its ``cast(pa.string())``), participant slices as zero-copy runs instead of ``take``,
  statistics on the key columns only.
- (P3, CSV rendered once and cut by byte ranges per participant, is in the library since
  commit f86caad: ``formats.tabular.RenderedCsv``.)
- P4 wide CSV: the share of ``wide_table`` spent turning strings into numpy unicode and
  lexsorting them, which the canonical order (MPAN, MQ, period) makes unnecessary.

The best of ``--repeat`` runs is reported. Nothing here is used by the pipeline. P1 (no
``MALLOC_TRIM_THRESHOLD_`` in Dask workers) needs worker processes: measure it with
``python -m benchmarks.run --no-malloc-trim`` against a default run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
KEY_STATS = ["mpan_core", "period_end_utc", "settlement_date"]


def best(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def runs_of(rows: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) runs of consecutive row numbers."""
    if len(rows) == 0:
        return []
    cut = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.r_[rows[0], rows[cut]]
    stops = np.r_[rows[cut - 1] + 1, rows[-1] + 1] if len(cut) else np.array([rows[-1] + 1])
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def slice_runs(table: pa.Table, rows: np.ndarray) -> pa.Table:
    parts = [table.slice(a, b - a) for a, b in runs_of(rows)]
    return pa.concat_tables(parts) if parts else table.slice(0, 0)


def parquet_bytes(table: pa.Table, **kw) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    opts = {
        "compression": "zstd",
        "compression_level": 1,
        "use_dictionary": True,
        "row_group_size": 1 << 20,
        "write_statistics": True,
    }
    pq.write_table(table, sink, **{**opts, **kw})
    return sink.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.proposals", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--mpans", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    from mhhs_pipeline import stages
    from mhhs_pipeline.core.load import generate_consumption
    from mhhs_pipeline.core.participants import consumption_slices
    from mhhs_pipeline.core.registrations import synthesise_registrations
    from mhhs_pipeline.formats.tabular import encode_parquet
    from mhhs_pipeline.formats.wide import wide_table

    loaded = stages.load_scenario(
        str(ROOT / "configs/scenarios/bench.yaml"),
        {"population.mpans": args.mpans, "partitioning.mpans_per_unit": args.mpans},
    )
    sc = loaded.scenario
    unit = stages.unit_jobs(loaded, "/tmp", "x")[0].unit
    reg = synthesise_registrations(sc, unit.site_start, unit.site_stop)
    gen = generate_consumption(sc, reg, unit.first_day, unit.last_day)
    t = gen.table
    slices = consumption_slices(reg, gen.registration_row)
    n = t.num_rows
    copies = sum(len(s.rows) for s in slices)
    r = args.repeat
    print(
        f"unit: {args.mpans} MPANs x {unit.n_days} d, {n:,} canonical rows, {copies:,} rows over {len(slices)} participant copies"
    )
    print(
        f"runs per participant slice (median): {int(np.median([len(runs_of(s.rows)) for s in slices if s.role != 'central']))}"
    )

    # ---- P2 Parquet -----------------------------------------------------------------------
    def current_parquet():
        out = 0
        for s in slices:
            part = t if s.role == "central" else t.take(s.rows)
            out += len(encode_parquet(part))
        return out

    dict_t = pa.table(
        {
            c: pc.dictionary_encode(t[c]) if pa.types.is_string(t[c].type) else t[c]
            for c in t.column_names
        }
    )

    def proposed_parquet():
        out = 0
        for s in slices:
            part = dict_t if s.role == "central" else slice_runs(dict_t, s.rows)
            out += parquet_bytes(part, write_statistics=KEY_STATS).size
        return out

    tc, bc = best(current_parquet, r)
    tp, bp = best(proposed_parquet, r)
    check = slices[0]
    same = (
        pq.read_table(
            pa.BufferReader(
                parquet_bytes(slice_runs(dict_t, check.rows), write_statistics=KEY_STATS)
            )
        )
        .cast(t.schema)
        .equals(t.take(check.rows))
    )
    print("\nP2 Parquet delivery of every copy (split + encode):")
    print(f"  current : {tc:.3f} s  {copies / tc / 1e6:5.1f} M rows/s  {bc / copies:.2f} B/value")
    print(
        f"  proposed: {tp:.3f} s  {copies / tp / 1e6:5.1f} M rows/s  {bp / copies:.2f} B/value  -> {tc / tp:.2f}x; same values: {same}"
    )
    for label, kw in (
        ("  dictionary-typed only", {}),
        ("  + key-column statistics", {"write_statistics": KEY_STATS}),
    ):
        tt, _ = best(lambda kw=kw: parquet_bytes(dict_t, **kw), r)
        print(f"{label:26s}: central copy alone {n / tt / 1e6:5.1f} M rows/s")
    tt, _ = best(lambda: encode_parquet(t), r)
    print(f"{'  current encode_parquet':26s}: central copy alone {n / tt / 1e6:5.1f} M rows/s")
    tt, _ = best(lambda: [t.take(s.rows) for s in slices if s.role != "central"], r)
    tr, _ = best(lambda: [slice_runs(dict_t, s.rows) for s in slices if s.role != "central"], r)
    print(f"  split: take {tt:.3f} s vs run slices {tr:.3f} s")

    # ---- P4 wide CSV ----------------------------------------------------------------------
    tw, _ = best(lambda: wide_table(t, local=False), r)

    def string_sort_part():
        cores = np.asarray(t.column("mpan_core").to_numpy(zero_copy_only=False)).astype(str)
        mqs = np.asarray(t.column("measurement_quantity").to_numpy(zero_copy_only=False)).astype(
            str
        )
        day = np.arange(n)
        return np.lexsort((day, day, mqs, cores))

    ts, _ = best(string_sort_part, r)
    print("\nP4 wide CSV pivot (central copy, UTC days):")
    print(
        f"  wide_table {tw:.3f} s, of which string conversion + lexsort ~{ts:.3f} s ({ts / tw:.0%}): removable, rows already sorted"
    )
    ordered = t.sort_by(
        [
            ("mpan_core", "ascending"),
            ("measurement_quantity", "ascending"),
            ("period_end_utc", "ascending"),
        ]
    ).equals(t)
    print(
        f"  canonical table already in (mpan_core, measurement_quantity, period_end_utc) order: {ordered}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
