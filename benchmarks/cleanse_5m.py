"""Benchmark: cleanse a 5-million-row dirty registration extract; report rows/s and peak RSS.

    .venv/bin/python benchmarks/cleanse_5m.py [--rows 5000000] [--damage 0.08] [--workdir DIR]

Builds the extract from the quickstart scenario (``synthesise_registrations``, population
raised to reach ``--rows``), damages a share of the rows (repairable faults, rejected
faults, exact and conflicting duplicates, formula injection, empty attributes), writes it
as CSV block by block, then runs ``mhhs-pipeline cleanse`` in a child process so its peak
RSS (``getrusage(RUSAGE_CHILDREN)``) is the cleansing alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mhhs_pipeline.core.registrations import synthesise_registrations  # noqa: E402
from mhhs_pipeline.formats.tabular import csv_ready  # noqa: E402
from mhhs_pipeline.spec.scenario import apply_overrides_to_yaml, parse_scenario  # noqa: E402

BLOCK_SITES = 250_000
ROWS_PER_SITE = 1.11  # quickstart: ~1.11 registration rows per site (switches, PV exports)
# damage kind -> share of damaged rows
DAMAGE = {
    "lower_padded_codes": 0.20,  # repaired
    "compact_dates": 0.15,  # repaired
    "empty_attributes": 0.15,  # manufactured
    "bad_check_digit": 0.08,
    "unknown_segment": 0.05,
    "to_before_from": 0.05,
    "formula_supplier": 0.04,
    "negative_kwh": 0.04,
    "missing_supplier": 0.04,
    "gsp_mismatch": 0.05,
    "exact_duplicate": 0.10,  # merged
    "conflicting_duplicate": 0.05,  # DUPLICATE_KEY
}


def damage(block: pa.Table, share: float, rng: np.random.Generator) -> pa.Table:
    """Damage about ``share`` of the rows of a CSV-ready (all text) block."""
    n = block.num_rows
    kinds = list(DAMAGE)
    kind = np.full(n, -1)
    hit = rng.random(n) < share
    kind[hit] = rng.choice(len(kinds), size=int(hit.sum()), p=np.array(list(DAMAGE.values())) / sum(DAMAGE.values()))
    cols = {name: block.column(name).combine_chunks() for name in block.column_names}

    def where(k: str) -> pa.Array:
        return pa.array(kind == kinds.index(k))

    def put(name: str, k: str, value) -> None:
        cols[name] = pc.if_else(where(k), value, cols[name])

    for c in ("market_segment", "energisation_status", "supplier_id"):
        put(c, "lower_padded_codes", pc.binary_join_element_wise(" ", pc.utf8_lower(cols[c]), " ", ""))
    put("gsp_group", "lower_padded_codes", pc.utf8_lower(pc.utf8_slice_codeunits(cols["gsp_group"], 1, 2)))
    put("effective_from", "compact_dates", pc.replace_substring(cols["effective_from"], "-", ""))
    for c in ("archetype", "annual_consumption_kwh", "dcc_service_flag", "domestic_premise"):
        put(c, "empty_attributes", "")
    last = pc.utf8_slice_codeunits(cols["mpan_core"], 12, 13)
    wrong = pc.cast(pc.add(pc.cast(last, pa.int64()), 1), pa.string())
    wrong = pc.utf8_slice_codeunits(wrong, -1, 100)  # 9+1 -> "0"
    put("mpan_core", "bad_check_digit", pc.binary_join_element_wise(pc.utf8_slice_codeunits(cols["mpan_core"], 0, 12), wrong, ""))
    put("market_segment", "unknown_segment", "X")
    put("effective_to", "to_before_from", "2000-01-01")
    put("supplier_id", "formula_supplier", "=cmd|' /C calc'!A0")
    put("annual_consumption_kwh", "negative_kwh", "-42")
    put("supplier_id", "missing_supplier", "")
    put("gsp_group", "gsp_mismatch", pc.if_else(pc.equal(cols["gsp_group"], "_A"), "_B", "_A"))
    out = pa.table(cols)
    dup = np.flatnonzero(kind == kinds.index("exact_duplicate"))
    conflict = np.flatnonzero(kind == kinds.index("conflicting_duplicate"))
    copies = out.take(pa.array(conflict))
    copies = copies.set_column(
        copies.schema.get_field_index("annual_consumption_kwh"), "annual_consumption_kwh",
        pc.binary_join_element_wise(copies.column("annual_consumption_kwh"), "1", ""),
    )  # fmt: skip
    return pa.concat_tables([out, out.take(pa.array(dup)), copies])


def build_extract(path: Path, rows: int, share: float) -> int:
    text = (ROOT / "configs" / "quickstart.yaml").read_text()
    sites = int(rows / ROWS_PER_SITE) + BLOCK_SITES
    scenario = parse_scenario(apply_overrides_to_yaml(text, {"population.mpans": sites}))
    rng = np.random.default_rng(20261025)
    written = 0
    writer = None
    start = 0
    while written < rows:
        reg = synthesise_registrations(scenario, start, start + BLOCK_SITES).drop_columns(["provenance"])
        start += BLOCK_SITES
        block = damage(csv_ready(reg).cast(pa.schema([(n, pa.string()) for n in reg.column_names])), share, rng)
        block = block.slice(0, min(block.num_rows, rows - written))
        if writer is None:
            writer = pacsv.CSVWriter(str(path), block.schema)
        writer.write_table(block)
        written += block.num_rows
    writer.close()
    return written


def _child(argv: list[str], log: Path) -> tuple[int, float, int]:
    """Run a child process; (exit code, wall seconds, its own peak RSS in KiB via wait4).

    The parent stays small on purpose: a child's peak RSS includes whatever it inherited
    at fork, so data is built and cleansed in separate children."""
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - t0, usage.ru_maxrss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--damage", type=float, default=0.08, help="share of rows damaged")
    ap.add_argument("--workdir", default=None, help="where the extract and the run go (default: a temp dir)")
    ap.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="cleanse-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    extract = work / "extract.csv"
    if args.build_only:
        print(build_extract(extract, args.rows, args.damage))
        return 0

    me = [sys.executable, str(Path(__file__).resolve())]
    rc, t_gen, gen_kb = _child([*me, "--build-only", "--rows", str(args.rows), "--damage", str(args.damage), "--workdir", str(work)], work / "build.log")
    if rc:
        print((work / "build.log").read_text(), file=sys.stderr)
        return rc
    rows = int((work / "build.log").read_text().split()[-1])
    print(f"extract: {rows} rows, {extract.stat().st_size / 1e6:.0f} MB CSV, built in {t_gen:.1f} s (peak RSS {gen_kb / 1024:.0f} MiB)")

    cli = [sys.executable, "-c", "import sys; from mhhs_pipeline.cli import main; sys.exit(main(sys.argv[1:]))"]
    rc, wall, kb = _child([*cli, "cleanse", str(extract), "--out", str(work / "out"), "--run-id", "bench"], work / "cleanse.log")
    print((work / "cleanse.log").read_text().strip())
    if rc:
        return rc
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB, largest child
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"cleanse: {wall:.1f} s wall, {rows / wall:,.0f} rows/s")
    print(f"peak RSS: cleanse process {kb / 1024:.0f} MiB (wait4); this process {self_kb / 1024:.0f} MiB; "
          f"largest child {children_kb / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
