"""Ids that become paths: whatever a pattern accepts is one safe path segment.

``re.match`` with a trailing ``$`` accepts a final newline, so ``"GRNX\\n"`` passed as an
MPID and ``"nl\\n"`` as a run id; every check is now a ``fullmatch``. The properties below
try arbitrary text and near misses of valid ids (a valid id plus a control character,
whitespace, a slash or a dot-dot) against every id check of the package.
"""

from __future__ import annotations

import re
import string
import unicodedata

import pytest
from conftest import QUICKSTART, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mhhs_pipeline.io.paths import (
    UnsafePathError,
    check_run_id,
    join,
    participant_prefix,
    safe_segment,
)
from mhhs_pipeline.spec.load_model import _HHMM, _MMDD
from mhhs_pipeline.spec.scenario import (
    MPID_PATTERN,
    ScenarioError,
    ShareEntry,
    apply_overrides_to_yaml,
    parse_scenario,
)

_SAFE_CHARS = set(string.ascii_letters + string.digits + "._-")
_NASTY = ["\n", "\r", "\r\n", "\t", " ", "\x00", "\x0b", "\x0c", "\x85", "\u2028", "/", "\\", "..", "/..", "\u00a0", "\uff0f"]


def assert_safe_segment(value: str) -> None:
    """One path segment that cannot escape or confuse: ASCII letters, digits, '.', '_', '-';
    no control characters, whitespace, slashes or '..'; never '.' alone."""
    assert isinstance(value, str) and 1 <= len(value) <= 128, repr(value)
    assert set(value) <= _SAFE_CHARS, repr(value)
    assert not any(unicodedata.category(c).startswith(("C", "Z")) for c in value), repr(value)
    assert ".." not in value and value not in (".", "..") and "/" not in value, repr(value)


def near_misses(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A valid id with something nasty before, after or inside it."""
    return st.builds(
        lambda v, nasty, where: v + nasty if where == 0 else nasty + v if where == 1 else v[: len(v) // 2] + nasty + v[len(v) // 2 :],
        valid,
        st.sampled_from(_NASTY),
        st.integers(0, 2),
    )


_SEGMENTS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
_MPIDS = st.from_regex(r"[A-Z0-9]{4}", fullmatch=True)
_CANDIDATES = st.one_of(st.text(max_size=40), near_misses(_SEGMENTS), near_misses(_MPIDS), _SEGMENTS, _MPIDS)


def _accepted(check, value) -> bool:
    try:
        check(value)
    except (UnsafePathError, ValueError, ValidationError):
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(_CANDIDATES)
def test_accepted_segments_and_run_ids_are_safe(value):
    for check in (lambda v: safe_segment(v, "segment"), check_run_id):
        if _accepted(check, value):
            assert_safe_segment(value)


@settings(max_examples=400, deadline=None)
@given(_CANDIDATES)
def test_accepted_participant_ids_are_mpids(value):
    for role in ("supplier", "data_service", "ldso"):
        if _accepted(lambda v, role=role: participant_prefix(role, v), value):
            assert_safe_segment(value)
            assert re.fullmatch(r"[A-Z0-9]{4}", value, flags=re.ASCII)
    if _accepted(lambda v: ShareEntry(id=v, share=1.0), value):
        assert_safe_segment(value)
        assert len(value) == 4
    if MPID_PATTERN.fullmatch(value):
        assert_safe_segment(value)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=30), near_misses(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True))))
def test_accepted_scenario_names_are_safe(value):
    # The scenario name becomes the default run id (a directory): same property.
    if _accepted(_name_check, value):
        assert_safe_segment(value)


def _name_check(value: str) -> None:
    parse_scenario(apply_overrides_to_yaml(QUICKSTART.read_text(), {"name": value}))


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=8), near_misses(st.sampled_from(["00:30", "23:00", "12-25", "01-01"]))))
def test_time_and_date_keys_are_whole_matches(value):
    if _HHMM.fullmatch(value):
        assert re.fullmatch(r"[0-2][0-9]:[03]0", value, flags=re.ASCII)
    if _MMDD.fullmatch(value):
        assert re.fullmatch(r"[01][0-9]-[0-3][0-9]", value, flags=re.ASCII)


@pytest.mark.parametrize("bad", ["nl\n", "nl\r\n", "\nnl", "a/b", "..", "a..b", " nl", "nl\x00", "ｎｌ", "nl\u2028"])
def test_run_ids_with_a_trailing_newline_or_worse_are_refused(bad):
    with pytest.raises(UnsafePathError):
        check_run_id(bad)
    with pytest.raises(UnsafePathError):
        safe_segment(bad, "path segment")
    if bad != "a/b":  # a relative path of two segments is what join is for
        with pytest.raises(UnsafePathError):
            join("central", bad)


def test_empty_run_id_is_refused_clearly():
    with pytest.raises(UnsafePathError, match="run id is empty"):
        check_run_id("")
    with pytest.raises(UnsafePathError, match="not text"):
        check_run_id(None)


@pytest.mark.parametrize("bad", ["GRNX\n", "GRNX\r\n", "\nGRNX", "GRN\n", "GRNX "])
def test_mpids_with_a_trailing_newline_are_refused(bad):
    with pytest.raises(UnsafePathError):
        participant_prefix("supplier", bad)
    text = apply_overrides_to_yaml(QUICKSTART.read_text(), {"participants.suppliers": [{"id": bad, "share": 1.0}]})
    with pytest.raises(ScenarioError, match="participants.suppliers.0.id: .* is not an MPID"):
        parse_scenario(text)


def test_cli_refuses_a_run_id_with_a_newline(tmp_path):
    out = tmp_path / "out"
    r = run_cli(["run", str(QUICKSTART), "--out", str(out), "--run-id", "nl\n", "--mpans", "5", "--no-progress"], tmp_path, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "run id 'nl\\n' is not allowed" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_cli_refuses_a_supplier_id_with_a_newline(tmp_path):
    text = QUICKSTART.read_text().replace("{id: GRNX, share: 0.24}", '{id: "GRNX\\n", share: 0.24}')
    path = tmp_path / "s.yaml"
    path.write_text(text)
    out = tmp_path / "out"
    r = run_cli(["run", str(path), "--out", str(out), "--mpans", "5", "--no-progress"], tmp_path, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "participants.suppliers.0.id" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not out.exists()
