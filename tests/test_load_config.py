"""The load model's parameters: strict, merged over defaults, and actually used."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import QUICKSTART, scenario

from mhhs_pipeline.core.load.generator import simulate
from mhhs_pipeline.core.registrations import synthesise_registrations
from mhhs_pipeline.spec.load_model import FaultModel, LoadModel
from mhhs_pipeline.spec.scenario import ScenarioError, apply_overrides_to_yaml, parse_scenario


def _parse(overrides: dict):
    return parse_scenario(apply_overrides_to_yaml(QUICKSTART.read_text(), overrides))


def test_defaults_cover_every_archetype_and_group():
    lm = LoadModel()
    assert len(lm.archetypes) == 14 and len(lm.weather.gsp_climate) == 14
    assert FaultModel().comms_outage_rate_per_meter_day < 0.01


def test_partial_overrides_merge_over_the_defaults():
    sc = _parse({"load_model.archetypes": {"office": {"saturday_factor": 0.5}}, "load_model.weather.gsp_climate": {"_A": {"mean_temperature_c": 12.5}},
                 "load_model.domestic.appliances": {"kettle": {"events_per_day": 6}}})  # fmt: skip
    lm = sc.load_model
    assert lm.archetypes["office"].saturday_factor == 0.5
    assert lm.archetypes["office"].sunday_factor == LoadModel().archetypes["office"].sunday_factor
    assert len(lm.archetypes) == 14
    assert lm.weather.gsp_climate["_A"].mean_temperature_c == 12.5 and lm.weather.gsp_climate["_A"].latitude_deg == 52.2
    assert lm.domestic.appliances["kettle"].events_per_day == 6 and "electric_shower" in lm.domestic.appliances


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"load_model.ev.charger_kww": 7}, "load_model.ev.charger_kww"),
        ({"load_model.archetypes": {"offices": {"saturday_factor": 0.5}}}, "unknown archetypes"),
        ({"load_model.archetypes": {"office": {"weekday": [1, 2, 3]}}}, "24 values"),
        ({"load_model.economy7.start_times": {"0030": 1.0}}, "HH:MM"),
        ({"load_model.weather.gsp_climate": {"_Z": {"mean_temperature_c": 9}}}, "unknown GSP groups"),
        ({"faults.spike_rate": 0.5}, "faults.spike_rate"),
        ({"faults.late_arrival_days": [5, 2]}, "swap them"),
        ({"load_model.school_terms.england_wales": [["08-01", "07-01"]]}, "ends before it starts"),
    ],
)
def test_bad_parameters_fail_naming_the_field(override, named):
    with pytest.raises(ScenarioError) as err:
        _parse(override)
    assert named in str(err.value)


def _ev_sim(**overrides):
    sc = scenario(**{"population.mpans": 80, "population.advanced_share": 0.0, "population.pv_share_of_domestic": 0.0,
                     "population.archetypes.domestic": {"domestic_ev": 1.0}, "population.domestic_share_of_smart": 1.0}, **overrides)  # fmt: skip
    reg = synthesise_registrations(sc, 0, 80)
    return simulate(sc, reg, sc.window.start, sc.window.end)


def test_parameters_change_the_output():
    """EV charger power sets the charging blocks: 7 kW -> ~3.5 kWh per half hour, 3.6 kW -> ~1.8."""
    fast = _ev_sim()
    slow = _ev_sim(**{"load_model.ev.charger_kw": 3.6})
    night = slice(0, 12)  # 00:00-06:00 UTC
    top_fast = np.quantile(fast.values[:, :, night].max(axis=2), 0.9)
    top_slow = np.quantile(slow.values[:, :, night].max(axis=2), 0.9)
    assert 3.3 < top_fast < 5.0 and 1.7 < top_slow < 2.8
    # total energy is still the annual's share: the charger only reshapes it
    assert abs(fast.values.sum() / slow.values.sum() - 1) < 0.02
