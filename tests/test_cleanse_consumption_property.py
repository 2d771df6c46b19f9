"""Hypothesis: for random mixes of valid, damaged and duplicated consumption records, nothing
is lost or invented (rows in = clean + quarantined + merged), the clean rows obey the rules,
and the result does not depend on chunking or the number of buckets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cleanse_consumption import DEEN, EXP, INDEX, LATE, LV, STRANGER, A, table

from mhhs_pipeline.cleanse.consumption import (
    ConsumptionStats,
    RepairLog,
    cleanse_consumption_records,
    normalise_consumption,
    resolve_consumption,
)
from mhhs_pipeline.cleanse.groups import CLEAN, MERGED, QUARANTINED, bucket_of
from mhhs_pipeline.core.schema import CONSUMPTION_KEY

TIMES = ["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00+01:00", "2026-07-01T00:00:00Z",
         "2026-07-01T00:30:00Z", "2026-03-29T01:10:00Z", "garbage", ""]  # fmt: skip
LOCAL = [("", ""), ("2026-03-29", "2"), ("2026-03-29", "3"), ("2026-03-29", "47"), ("20260701", "2"), ("2026-03-29", "")]

record = st.fixed_dictionaries(
    {
        "mpan_core": st.sampled_from([A, A, EXP, DEEN, LATE, LV, STRANGER, "123", ""]),
        "measurement_quantity": st.sampled_from(["", "AI", "ae", "RI", "ZZ"]),
        "period_end_utc": st.sampled_from(TIMES),
        "local": st.sampled_from(LOCAL),
        "consumption_kwh": st.sampled_from(["0.5", "0.5", "0", "1.25", "-1", "abc", "40", "0.12345", ""]),
        "quality": st.sampled_from(["", "A", "E", "ZE", "X"]),
        "estimation_reason": st.sampled_from(["", "", "2", "11"]),
    }
)


def to_row(r: dict) -> dict:
    row = {k: v for k, v in r.items() if k != "local"}
    row["settlement_date"], row["settlement_period"] = r["local"]
    return row


def run_chunked(t: pa.Table, chunk_size: int, n_buckets: int):
    log, stats = RepairLog(), ConsumptionStats()
    parts: dict[int, list[pa.Table]] = {}
    for start in range(0, t.num_rows, chunk_size):
        norm = normalise_consumption(t.slice(start, chunk_size), INDEX, log)
        buckets = bucket_of(norm, n_buckets)
        for b in np.unique(buckets):
            parts.setdefault(int(b), []).append(norm.filter(pa.array(buckets == b)))
    clean, quarantine = [], []
    for b in sorted(parts):
        res = resolve_consumption(pa.concat_tables(parts[b]))
        stats.merge(res.stats)
        clean.append(res.clean)
        quarantine.append(res.quarantine)
    key = [(c, "ascending") for c in CONSUMPTION_KEY]
    return pa.concat_tables(clean).sort_by(key), pa.concat_tables(quarantine).sort_by([("record", "ascending")]), stats


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(record, min_size=1, max_size=40),
    copies=st.lists(st.integers(0, 39), max_size=10),
    chunk_size=st.integers(1, 50),
    n_buckets=st.integers(1, 5),
)
def test_reconciliation_and_rules_hold_for_any_mix(records, copies, chunk_size, n_buckets):
    rows = [to_row(r) for r in records]
    rows += [dict(rows[i % len(rows)]) for i in copies]
    t = table(rows)
    whole = cleanse_consumption_records(t, INDEX)
    s = whole.stats

    # Nothing lost or invented; each record has exactly one fate.
    assert s.rows_in == len(rows) == s.clean + s.quarantined + s.merged
    assert whole.clean.num_rows == s.clean == int((whole.status == CLEAN).sum())
    assert whole.quarantine.num_rows == s.quarantined == int((whole.status == QUARANTINED).sum())
    assert s.merged == int((whole.status == MERGED).sum())
    q_records = whole.quarantine.column("record").to_pylist()
    assert q_records == sorted(set(q_records)) and all(whole.quarantine.column("reason_code").to_pylist())
    assert ((whole.masks != 0) == (whole.status == QUARANTINED)).all()

    # Clean rows obey the rules.
    c = whole.clean
    keys = list(zip(*(c.column(k).to_pylist() for k in CONSUMPTION_KEY), strict=True))
    assert len(keys) == len(set(keys)) and keys == sorted(keys)
    assert set(c.column("mpan_core").to_pylist()) <= {A, EXP, DEEN, LATE, LV}
    kwh = c.column("consumption_kwh").to_numpy()
    # Whole current tops out at 34.5 kWh a half hour; LV is an LV CT meter (1,000).
    bound = np.where(np.asarray(c.column("mpan_core").to_pylist(), dtype=object) == LV, 1_000.0, 34.5)
    assert (kwh >= 0).all() and (np.round(kwh, 3) == kwh).all() and (kwh <= bound).all()
    ends = c.column("period_end_utc").cast(pa.timestamp("us")).to_numpy().astype(np.int64)
    assert (ends % 1_800_000_000 == 0).all()
    assert set(c.column("provenance").to_pylist()) <= {"actual"}
    for row in c.to_pylist():
        assert (row["quality"].startswith("E")) == (row["estimation_reason"] is not None)
        assert not (row["quality"] == "ZE" and row["consumption_kwh"] != 0)

    # Any chunking and any number of buckets give the same answer.
    clean, quarantine, stats = run_chunked(t, chunk_size, n_buckets)
    assert clean.equals(whole.clean) and quarantine.equals(whole.quarantine)
    assert stats.to_dict() == s.to_dict()
