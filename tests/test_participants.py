"""Participant grouping: the run-based grouping equals the plain definition."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mhhs_pipeline.core.participants import _group


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(1, 60)), max_size=60))
def test_grouping_by_runs_equals_a_stable_sort_of_rows(runs):
    keys = (
        np.repeat(np.array([k for k, _ in runs], dtype=np.int16), [n for _, n in runs])
        if runs
        else np.zeros(0, np.int16)
    )
    got = _group(keys, "supplier")
    expected_keys = np.unique(keys)
    assert [s.participant_id for s in got] == [str(k) for k in expected_keys]
    for s, k in zip(got, expected_keys, strict=True):
        assert np.array_equal(s.rows, np.flatnonzero(keys == k))
        assert s.rows.dtype == np.int64
    assert sum(len(s.rows) for s in got) == len(keys)
