"""Exact copies collapsed as they are read (``cleanse.copies``) change nothing but memory:
for any mix of records with copies -- clean and rejected, within and across chunks -- the
registrations, the quarantine (one row per rejected record, copies included) and every count
equal those of resolving every copy. And a record repeated many times is held once a chunk."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cleanse_property import record, run, to_row
from test_cleanse_rules import BASE, mpan

from mhhs_pipeline.cleanse import CleanseStats, RepairLog, bucket_of, cleanse_bucket, normalise
from mhhs_pipeline.cleanse.copies import COPIES, collapse_copies
from mhhs_pipeline.io import extract as ex


def run_collapsed(rows: list[dict], chunk_size: int, n_buckets: int):
    """As ``run``, with each chunk's copies collapsed and handed to the bucket on the side."""
    cols = {k: [r[k] for r in rows] for k in BASE}
    cols["record"] = list(range(1, len(rows) + 1))
    table = pa.table(cols)
    log, stats = RepairLog(), CleanseStats()
    parts: dict[int, list[pa.Table]] = {}
    side: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    held = 0
    for start in range(0, len(rows), chunk_size):
        c = collapse_copies(normalise(table.slice(start, chunk_size), log))
        held += c.kept.num_rows
        assert c.kept.num_rows + len(c.copy_record) == min(chunk_size, len(rows) - start)
        assert int(c.kept.column(COPIES).to_numpy().sum()) == len(c.copy_record)
        buckets = bucket_of(c.kept, n_buckets)
        for b in np.unique(buckets):
            parts.setdefault(int(b), []).append(c.kept.filter(pa.array(buckets == b)))
        of_record = c.kept.column("record").to_numpy()[c.copy_of]
        for b in np.unique(buckets[c.copy_of]):
            sel = buckets[c.copy_of] == b
            side.setdefault(int(b), []).append((of_record[sel], c.copy_record[sel]))
    regs, quarantine = [], []
    for b in sorted(parts):
        pieces = side.get(b, [])
        copies = pa.table({"of": np.concatenate([p[0] for p in pieces]), "record": np.concatenate([p[1] for p in pieces])}) if pieces else None
        res = cleanse_bucket(pa.concat_tables(parts[b]), copies=lambda copies=copies: copies)
        stats.merge(res.stats)
        regs.append(res.registrations)
        quarantine.append(res.quarantine)
    key = [("mpan_core", "ascending"), ("effective_from", "ascending")]
    return pa.concat_tables(regs).sort_by(key), pa.concat_tables(quarantine).sort_by([("record", "ascending")]), stats, held


@settings(max_examples=80, deadline=None)
@given(
    records=st.lists(record, min_size=1, max_size=12),
    copies=st.lists(st.integers(0, 11), min_size=1, max_size=60),
    chunk_size=st.integers(1, 80),
    n_buckets=st.integers(1, 4),
    shuffle=st.randoms(use_true_random=False),
)
def test_collapsing_copies_changes_nothing_but_memory(records, copies, chunk_size, n_buckets, shuffle):
    rows = [to_row(r) for r in records]
    rows += [dict(rows[i % len(rows)]) for i in copies]
    shuffle.shuffle(rows)
    reg, q, stats = run(rows, chunk_size, n_buckets)
    reg2, q2, stats2, held = run_collapsed(rows, chunk_size, n_buckets)
    assert reg2.equals(reg)
    assert q2.equals(q)  # every rejected copy has its own row, in record order
    assert stats2.to_dict() == stats.to_dict()
    assert stats2.participants == stats.participants and stats2.participant_reasons == stats.participant_reasons
    assert stats2.rows_in == len(rows) == stats2.clean + stats2.quarantined + stats2.merged
    distinct = len({tuple(sorted(r.items())) for r in rows})
    assert held <= distinct * -(-len(rows) // chunk_size)  # at most one row a distinct record a chunk


def _extract(path, rows):
    with path.open("w") as f:
        f.write(",".join(BASE) + "\n")
        for r in rows:
            f.write(",".join(str(r[k]) for k in BASE) + "\n")


def test_a_record_repeated_many_times_is_spilled_once_a_chunk(tmp_path, monkeypatch):
    good, bad = dict(BASE), {**BASE, "mpan_core": mpan("120000000077"), "annual_consumption_kwh": "-5"}
    rows = [good] * 30_000 + [bad] * 20_000 + [good] * 10_000
    src = tmp_path / "repeated.csv"
    _extract(src, rows)
    monkeypatch.setattr(ex, "CSV_BLOCK_BYTES", 1 << 20)
    spilled = []
    add = ex.BucketSpill.add
    monkeypatch.setattr(ex.BucketSpill, "add", lambda self, t, b: (spilled.append(t.num_rows), add(self, t, b))[1])
    out = ex.cleanse_to_dir(str(src), str(tmp_path / "work"))
    chunks = len(spilled)
    assert chunks >= 3 and sum(spilled) <= 2 * chunks  # two distinct records, at most once a chunk each
    s = out.stats
    assert (s.rows_in, s.clean, s.merged, s.quarantined) == (60_000, 1, 39_999, 20_000)
    import pyarrow.parquet as pq

    q = pq.read_table(out.quarantine_path)
    assert q.num_rows == 20_000 and q.column("record").to_pylist() == list(range(30_001, 50_001))
    assert set(q.column("annual_consumption_kwh").to_pylist()) == {"-5"} and set(q.column("reason_code").to_pylist()) == {"ANNUAL_KWH_NEGATIVE"}
