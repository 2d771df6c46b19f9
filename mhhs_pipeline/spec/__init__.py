"""WHAT to generate: strict pydantic models of a scenario. No I/O, no numpy."""

from mhhs_pipeline.spec.scenario import (
    ArchetypeMix,
    Outputs,
    Participants,
    Partitioning,
    Population,
    Scenario,
    ScenarioError,
    ShareEntry,
    Window,
    apply_overrides_to_yaml,
    parse_scenario,
)

__all__ = [
    "ArchetypeMix",
    "Outputs",
    "Participants",
    "Partitioning",
    "Population",
    "Scenario",
    "ScenarioError",
    "ShareEntry",
    "Window",
    "apply_overrides_to_yaml",
    "parse_scenario",
]
