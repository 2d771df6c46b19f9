"""Participant grouping: the run-based grouping equals the plain definition."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from mhhs_pipeline.core.market import LDSO_BY_DISTRIBUTOR
from mhhs_pipeline.core.participants import _group_runs, _runs, consumption_slices


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(1, 60)), max_size=60))
def test_grouping_by_runs_equals_a_stable_sort_of_rows(runs):
    keys = (
        np.repeat(np.array([k for k, _ in runs], dtype=np.int16), [n for _, n in runs])
        if runs
        else np.zeros(0, np.int16)
    )
    starts, lengths = _runs(keys)
    got = _group_runs(starts, lengths, keys[starts], "supplier")
    expected_keys = np.unique(keys)
    assert [s.participant_id for s in got] == [str(k) for k in expected_keys]
    for s, k in zip(got, expected_keys, strict=True):
        assert np.array_equal(s.rows, np.flatnonzero(keys == k))
        assert s.rows.dtype == np.int64
        # runs are maximal: touching runs of one participant are joined
        assert s.n_rows == len(s.rows) and np.all(s.first[1:] > s.last[:-1] + 1)
    assert sum(len(s.rows) for s in got) == len(keys)


@settings(max_examples=100, deadline=None)
@given(
    regs=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 4)), min_size=1, max_size=8),
    runs=st.lists(st.tuples(st.integers(0, 7), st.integers(1, 50)), max_size=40),
)
def test_consumption_slices_give_each_participant_exactly_its_rows(regs, runs):
    distributors = sorted(LDSO_BY_DISTRIBUTOR)
    table = pa.table(
        {
            "supplier_id": [f"SUP{s}" for s, _, _ in regs],
            "data_service_id": [f"DS{d}" for _, d, _ in regs],
            "distributor_id": [distributors[x] for _, _, x in regs],
        }
    )
    reg_row = np.repeat(np.array([r % len(regs) for r, _ in runs], dtype=np.int64), [n for _, n in runs]) if runs else np.zeros(0, np.int64)
    slices = consumption_slices(table, reg_row)
    for role, column in (("supplier", "supplier_id"), ("data_service", "data_service_id")):
        per_reg = np.array(table.column(column).to_pylist())
        got = {s.participant_id: s.rows for s in slices if s.role == role}
        per_row = per_reg[reg_row] if len(reg_row) else np.zeros(0, str)
        assert set(got) == set(per_row.tolist())
        for pid, rows in got.items():
            assert np.array_equal(rows, np.flatnonzero(per_row == pid))
    ldso_rows = sum(len(s.rows) for s in slices if s.role == "ldso")
    central = [s for s in slices if s.role == "central"]
    assert ldso_rows == len(reg_row) and len(central) == 1 and np.array_equal(central[0].rows, np.arange(len(reg_row)))
