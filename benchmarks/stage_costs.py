"""CPU cost of each stage of one work unit, per row written, in one process.

The floors of issue 6 are end-to-end rates; this splits one unit (the benchmark's
1,000 MPANs x 28 days) into its stages and charges each to the rows it produces, so the
report can say what bounds the rate: e.g. if pyarrow's Parquet encoder alone, with
generation free, writes N rows per CPU-second on this machine, no pipeline built on it
writes more than N.

Stages, measured with ``time.process_time`` (CPU seconds; best of ``repeats``):

- ``generate``: registrations + ``generate_load`` (consumption, raw reads, ground truth)
- ``slice``: participant row sets of every copy
- ``parquet_encode``: every copy's Parquet file of consumption and raw reads, as the
  runner makes them (each dataset prepared once, all copies encoded together)
- ``csv_render``: one rendering per dataset + byte ranges cut for every copy
- ``sha256``: hashing every copy's bytes (the manifest's checksums)
- ``write``: landing every copy's bytes in files under ``tmp`` through the page cache (no
  fsync). The store lands files of 1 MiB or more with direct I/O instead
  (``io.direct_write``); the benchmark's landing probes compare the two on the CSV run's
  bytes.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import numpy as np


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def measure(scenario_path: Path, overrides: dict, tmp: Path, repeats: int = 3) -> dict:
    from mhhs_pipeline import stages
    from mhhs_pipeline.core.load import generate_load
    from mhhs_pipeline.core.participants import consumption_slices, take_ranges
    from mhhs_pipeline.core.registrations import synthesise_registrations
    from mhhs_pipeline.formats.tabular import RenderedCsv, encode_parquet
    from mhhs_pipeline.runner import parquet_files_of, prepared_parquet

    loaded = stages.load_scenario(str(scenario_path), overrides)
    mpu = loaded.scenario.partitioning.mpans_per_unit
    loaded = stages.load_scenario(str(scenario_path), {**overrides, "population.mpans": mpu})
    sc = loaded.scenario
    unit = stages.unit_jobs(loaded, str(tmp), "stages")[0].unit

    def generate():
        reg = synthesise_registrations(sc, unit.site_start, unit.site_stop)
        return reg, generate_load(sc, reg, unit.first_day, unit.last_day)

    generate()  # warm caches (holidays, weather years) as a long-running worker has them
    t_gen, (reg, out) = _best(generate, repeats)
    datasets = [
        ("consumption", out.consumption.table, out.consumption.registration_row, ("supplier", "data_service", "ldso", "central")),
        ("meter_reads_raw", out.meter_reads_raw, out.raw_registration_row, ("data_service", "central")),
    ]

    def slices():
        return [(name, sl) for name, table, reg_rows, roles in datasets for sl in consumption_slices(reg, reg_rows) if sl.role in roles]

    t_slice, copies = _best(slices, repeats)
    rows = sum(len(sl.rows) for _, sl in copies)

    def parquet():
        # As the runner does: a dataset prepared once, every copy's file encoded together
        # (pyarrow, on row-run slices, where the page writer does not pay).
        out = []
        for name, table, _, _ in datasets:
            mine = [sl for n, sl in copies if n == name]
            files = parquet_files_of(prepared_parquet(table, {"parquet"}), mine)
            if files is None:
                files = [[encode_parquet(table if sl.role == "central" else take_ranges(table, *sl.runs))] for sl in mine]
            out += [b"".join(f) for f in files]
        return out

    t_pq, pq_bytes = _best(parquet, repeats)

    def render():
        chunks = []
        for name, table, _, _ in datasets:
            text = RenderedCsv(table)
            chunks += [text.runs_chunks(*sl.runs) if sl.role != "central" else text.chunks() for n, sl in copies if n == name]
        return chunks

    t_csv, csv_chunks = _best(render, repeats)
    csv_size = sum(len(c) for chunks in csv_chunks for c in chunks)

    def hash_all(blobs):
        for chunks in blobs:
            h = hashlib.sha256()
            for c in chunks:
                h.update(c)
        return None

    t_sha_pq, _ = _best(lambda: hash_all([[b] for b in pq_bytes]), repeats)
    t_sha_csv, _ = _best(lambda: hash_all(csv_chunks), repeats)

    def write_all(blobs, folder: Path):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for i, chunks in enumerate(blobs):
            with open(folder / f"{i}.bin", "wb") as f:
                for c in chunks:
                    f.write(c)

    t_w_pq, _ = _best(lambda: write_all([[b] for b in pq_bytes], tmp / "stage-pq"), repeats)
    t_w_csv, _ = _best(lambda: write_all(csv_chunks, tmp / "stage-csv"), repeats)
    shutil.rmtree(tmp / "stage-pq", ignore_errors=True)
    shutil.rmtree(tmp / "stage-csv", ignore_errors=True)

    stage = {
        "generate": t_gen,
        "slice": t_slice,
        "parquet_encode": t_pq,
        "parquet_sha256": t_sha_pq,
        "parquet_write": t_w_pq,
        "csv_render": t_csv,
        "csv_sha256": t_sha_csv,
        "csv_write": t_w_csv,
    }
    pq_path = ("generate", "slice", "parquet_encode", "parquet_sha256", "parquet_write")
    csv_path = ("generate", "csv_render", "csv_sha256", "csv_write")
    return {
        "unit": {"mpans": unit.site_stop - unit.site_start, "days": unit.n_days},
        "canonical_rows": out.consumption.table.num_rows,
        "rows_written": rows,
        "parquet_bytes": int(sum(len(b) for b in pq_bytes)),
        "csv_bytes": int(csv_size),
        "cpu_s": stage,
        "ns_per_row": {k: v / rows * 1e9 for k, v in stage.items()},
        "parquet_rows_per_cpu_s": rows / sum(stage[k] for k in pq_path),
        "parquet_rows_per_cpu_s_without_generation": rows / sum(stage[k] for k in pq_path[1:]),
        "parquet_encoder_only_rows_per_cpu_s": rows / stage["parquet_encode"],
        "csv_rows_per_cpu_s": rows / sum(stage[k] for k in csv_path),
        "csv_rows_per_cpu_s_without_generation": rows / sum(stage[k] for k in csv_path[1:]),
        "csv_hash_and_write_only_rows_per_cpu_s": rows / (stage["csv_sha256"] + stage["csv_write"]),
        "generate_values_per_cpu_s": out.consumption.table.num_rows / t_gen,
        "raw_rows_share": float(np.mean([n == "meter_reads_raw" for n, _ in copies])),
    }


def markdown(res: dict) -> list[str]:
    """Report lines for :func:`measure`'s result."""
    s = res["cpu_s"]
    rows = res["rows_written"]
    lines = [
        "## Where a unit's CPU goes (one process, CPU seconds, best of 3)",
        "",
        f"One unit ({res['unit']['mpans']:,} MPANs x {res['unit']['days']} days): {res['canonical_rows']:,} canonical values, "
        f"{rows:,} rows written as every participant copy of consumption (4) and raw reads (2) -- the rows the floors count. "
        "Command: `python -m benchmarks.run --sections stages`.",
        "",
        "| stage | CPU s | ns per row written |",
        "|---|---:|---:|",
    ]
    for k, v in s.items():
        lines.append(f"| {k} | {v:.3f} | {v / rows * 1e9:.1f} |")
    lines += [
        "",
        "| bound (rows per CPU-second) | Parquet | CSV |",
        "|---|---:|---:|",
        f"| all stages above | {res['parquet_rows_per_cpu_s'] / 1e6:.2f} M | {res['csv_rows_per_cpu_s'] / 1e6:.2f} M |",
        f"| generation free | {res['parquet_rows_per_cpu_s_without_generation'] / 1e6:.2f} M | {res['csv_rows_per_cpu_s_without_generation'] / 1e6:.2f} M |",
        f"| encoder alone (Parquet) / sha256 + write alone (CSV) | {res['parquet_encoder_only_rows_per_cpu_s'] / 1e6:.2f} M | {res['csv_hash_and_write_only_rows_per_cpu_s'] / 1e6:.2f} M |",
        "",
        f"Bytes: Parquet {res['parquet_bytes'] / rows:.2f} per row, CSV {res['csv_bytes'] / rows:.1f} per row. "
        f"Generation alone: {res['generate_values_per_cpu_s'] / 1e6:.2f} M canonical values per CPU-second.",
        "",
    ]
    return lines
