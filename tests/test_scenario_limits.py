"""Scenario validation holes a hostile (or careless) user finds: impossible dates, shares that
do not sum to one, non-finite numbers, booleans as numbers, YAML alias bombs and files far
too large to be a scenario. Each is refused in one line that names the field, never a
traceback and never silently normalised."""

from __future__ import annotations

import time

import pytest
from conftest import QUICKSTART, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from mhhs_pipeline import stages
from mhhs_pipeline.spec.scenario import (
    MAX_SCENARIO_BYTES,
    SHARE_TOLERANCE,
    ScenarioError,
    apply_overrides_to_yaml,
    parse_scenario,
)


def _with(overrides: dict) -> str:
    return apply_overrides_to_yaml(QUICKSTART.read_text(), overrides)


def test_impossible_date_names_the_field():
    text = QUICKSTART.read_text()
    start = parse_scenario(text).window.start.isoformat()
    bad = text.replace(f"start: {start}", "start: 2026-02-30", 1)
    assert bad != text
    with pytest.raises(ScenarioError, match=r"window\.start: .*2026-02-30.*YYYY-MM-DD"):
        parse_scenario(bad)


@pytest.mark.parametrize("shares", [[0.5, 0.5, 0.66], [0.2, 0.2], [1.0, 1e-2]])
def test_supplier_shares_must_sum_to_one(shares):
    entries = [{"id": f"SUP{i}", "share": s} for i, s in enumerate(shares)]
    with pytest.raises(ScenarioError, match=r"participants\.suppliers: the shares of suppliers sum to .*not 1"):
        parse_scenario(_with({"participants.suppliers": entries}))


def test_shares_of_thirds_pass_within_the_tolerance():
    entries = [{"id": f"SUP{i}", "share": 0.333} for i in range(3)]
    assert abs(3 * 0.333 - 1) <= SHARE_TOLERANCE
    s = parse_scenario(_with({"participants.suppliers": entries}))
    assert [e.id for e in s.participants.suppliers] == ["SUP0", "SUP1", "SUP2"]


@pytest.mark.parametrize(
    ("yaml_value", "field"),
    [(".inf", "participants.suppliers.0.share"), (".nan", "participants.suppliers.0.share"), ("1e308", "participants.suppliers")],
)
def test_non_finite_or_huge_shares_are_refused(yaml_value, field):
    text = QUICKSTART.read_text().replace("{id: GRNX, share: 0.24}", f"{{id: GRNX, share: {yaml_value}}}")
    assert "GRNX" in text and yaml_value in text
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.")):
        parse_scenario(text)


def test_infinite_archetype_weight_is_refused():
    with pytest.raises(ScenarioError, match="population.archetypes"):
        parse_scenario(_with({"population.archetypes.domestic": {"family": float("inf")}}))


@pytest.mark.parametrize(("path", "value"), [("population.mpans", True), ("seed", False), ("population.advanced_share", True)])
def test_booleans_are_not_numbers(path, value):
    with pytest.raises(ScenarioError, match=path.replace(".", r"\.") + ": true/false is not a number"):
        parse_scenario(_with({path: value}))


def test_alias_bomb_is_refused_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    bomb = QUICKSTART.read_text() + "\n" + "\n".join(lines) + "\n"
    assert len(bomb) < 4000
    started = time.perf_counter()
    with pytest.raises(ScenarioError, match="aliases .* expand to more than"):
        parse_scenario(bomb)
    assert time.perf_counter() - started < 10  # 10**9 values would take hours and all memory


def test_scenario_that_is_too_large_is_refused_without_reading_it_all(tmp_path):
    big = tmp_path / "big.yaml"
    with big.open("w") as f:
        f.write(QUICKSTART.read_text())
        f.write("# padding\n" * (MAX_SCENARIO_BYTES // 10 + 10))
    assert big.stat().st_size > MAX_SCENARIO_BYTES
    with pytest.raises(ScenarioError, match="larger than the .* a scenario may be"):
        stages.load_scenario(str(big))


def test_cli_refuses_an_empty_run_id(tmp_path):
    out = tmp_path / "out"
    r = run_cli(["run", str(QUICKSTART), "--out", str(out), "--run-id", "", "--mpans", "5", "--no-progress"], tmp_path, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "run id is empty" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_cli_impossible_date_is_one_line(tmp_path):
    text = QUICKSTART.read_text()
    start = parse_scenario(text).window.start.isoformat()
    path = tmp_path / "s.yaml"
    path.write_text(text.replace(f"start: {start}", "start: 2026-02-30", 1))
    r = run_cli(["run", str(path), "--out", str(tmp_path / "out"), "--no-progress"], tmp_path, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "window.start" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(min_value=1e-3, max_value=1, allow_nan=False), min_size=1, max_size=6))
def test_shares_are_accepted_exactly_when_they_sum_to_one(shares):
    entries = [{"id": f"S{i:03d}", "share": s} for i, s in enumerate(shares)]
    text = _with({"participants.suppliers": entries})
    if abs(sum(shares) - 1) <= SHARE_TOLERANCE * 0.999:
        assert len(parse_scenario(text).participants.suppliers) == len(shares)
    elif abs(sum(shares) - 1) > SHARE_TOLERANCE * 1.001:
        with pytest.raises(ScenarioError, match="sum to"):
            parse_scenario(text)
