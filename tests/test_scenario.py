"""Strict scenario configs: unknown keys, bad values and cross-field rules fail fast, naming the field."""

from __future__ import annotations

import pytest
from conftest import QUICKSTART

from mhhs_pipeline.spec.scenario import ScenarioError, apply_overrides_to_yaml, parse_scenario


def test_quickstart_parses_and_spans_the_october_clock_change(quickstart):
    w = quickstart.window
    assert w.start.isoformat() <= "2026-10-25" <= w.end.isoformat()
    assert w.days == 14
    assert 1500 <= quickstart.population.mpans <= 2500


@pytest.mark.parametrize(
    ("override", "field_named"),
    [
        ({"population.mpanz": 5}, "population.mpanz"),
        ({"population.mpans": 0}, "population.mpans"),
        ({"window.end": "2026-01-01"}, "window"),
        ({"population.advanced_share": 1.5}, "population.advanced_share"),
        ({"partitioning.days_per_unit": 0}, "partitioning.days_per_unit"),
        ({"outputs.formats": ["parquet", "xlsx"]}, "outputs.formats"),
        ({"name": "Bad Name!"}, "name"),
    ],
)
def test_invalid_values_are_rejected_naming_the_field(override, field_named):
    text = apply_overrides_to_yaml(QUICKSTART.read_text(), override)
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text)
    assert field_named in str(err.value)


def test_unknown_key_message_says_how_to_fix():
    text = QUICKSTART.read_text() + "\nsed: 1\n"
    with pytest.raises(ScenarioError, match="sed: unknown key; remove it"):
        parse_scenario(text)


def test_participant_ids_must_be_mpids():
    text = apply_overrides_to_yaml(QUICKSTART.read_text(), {"participants.suppliers": [{"id": "../x", "share": 1}]})
    with pytest.raises(ScenarioError, match="not an MPID"):
        parse_scenario(text)


def test_duplicate_supplier_rejected():
    text = apply_overrides_to_yaml(
        QUICKSTART.read_text(), {"participants.suppliers": [{"id": "ABCD", "share": 1}, {"id": "ABCD", "share": 2}]}
    )
    with pytest.raises(ScenarioError, match="more than once"):
        parse_scenario(text)


def test_not_yaml_mapping():
    with pytest.raises(ScenarioError, match="mapping"):
        parse_scenario("- just\n- a list\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        parse_scenario("a: [unclosed")
