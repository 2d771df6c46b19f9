"""Scenario configuration: strict pydantic models parsed from YAML text.

Every model forbids unknown keys, so a typo in a scenario file fails fast with the
field's path. Cross-field rules (shares summing to one, window order, MPID format)
are validated here so the engine never sees an impossible scenario.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mhhs_pipeline.spec.load_model import FaultModel, LoadModel

MPID_PATTERN = re.compile(r"^[A-Z0-9]{4}$")

Share = Annotated[float, Field(ge=0.0, le=1.0)]


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the field and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    """UTC settlement days, both inclusive."""

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end < self.start:
            raise ValueError(f"window.end ({self.end}) is before window.start ({self.start}); swap them")
        if (self.end - self.start).days > 3660:
            raise ValueError("window spans more than 10 years; shorten window.end")
        return self

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


class ShareEntry(_Strict):
    """A participant (4-character MPID) and its market share."""

    id: str
    share: Annotated[float, Field(gt=0.0)]

    @field_validator("id")
    @classmethod
    def _mpid(cls, value: str) -> str:
        if not MPID_PATTERN.match(value):
            raise ValueError(f"{value!r} is not an MPID: use 4 upper-case letters or digits, e.g. 'ABCD'")
        return value


def _check_shares(entries: list[ShareEntry], where: str) -> list[ShareEntry]:
    if not entries:
        raise ValueError(f"{where} needs at least one participant")
    ids = [e.id for e in entries]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"{where} lists {dupes} more than once; merge the entries")
    return entries


class SegmentParticipants(_Strict):
    """Participants appointed per market segment (Smart / Advanced)."""

    smart: list[ShareEntry]
    advanced: list[ShareEntry]

    @model_validator(mode="after")
    def _non_empty(self) -> SegmentParticipants:
        _check_shares(self.smart, "smart")
        _check_shares(self.advanced, "advanced")
        return self


class Participants(_Strict):
    suppliers: list[ShareEntry]
    data_services: SegmentParticipants
    metering_services: SegmentParticipants

    @field_validator("suppliers")
    @classmethod
    def _suppliers(cls, value: list[ShareEntry]) -> list[ShareEntry]:
        return _check_shares(value, "suppliers")


class ArchetypeMix(_Strict):
    """Load archetypes and their shares; shares are normalised, so they need not sum to 1."""

    domestic: dict[str, Annotated[float, Field(ge=0.0)]] = Field(
        default_factory=lambda: {
            "domestic_unrestricted": 0.62,
            "domestic_economy7": 0.14,
            "domestic_electric_heating": 0.04,
            "domestic_heat_pump": 0.05,
            "domestic_ev": 0.10,
            "domestic_low_user": 0.05,
        }
    )
    non_domestic: dict[str, Annotated[float, Field(ge=0.0)]] = Field(
        default_factory=lambda: {
            "office": 0.30,
            "retail": 0.30,
            "industrial_1_shift": 0.10,
            "industrial_2_shift": 0.07,
            "industrial_3_shift": 0.05,
            "always_on": 0.05,
            "school": 0.06,
            "agricultural": 0.07,
        }
    )

    @model_validator(mode="after")
    def _known(self) -> ArchetypeMix:
        # Imported here to keep spec free of numpy at import time of the package.
        from mhhs_pipeline.spec.archetypes import DOMESTIC_ARCHETYPES, NON_DOMESTIC_ARCHETYPES

        for name, known, mix in (
            ("domestic", DOMESTIC_ARCHETYPES, self.domestic),
            ("non_domestic", NON_DOMESTIC_ARCHETYPES, self.non_domestic),
        ):
            unknown = sorted(set(mix) - set(known))
            if unknown:
                raise ValueError(f"archetypes.{name} has unknown archetypes {unknown}; choose from {sorted(known)}")
            if sum(mix.values()) <= 0:
                raise ValueError(f"archetypes.{name} shares sum to 0; give at least one a positive share")
        return self


class Population(_Strict):
    """Size and mix of the synthetic registration population."""

    mpans: Annotated[int, Field(ge=1, le=100_000_000)] = Field(
        description="import MPANs (metering points); export MPANs of PV homes come on top"
    )
    advanced_share: Share = 0.01
    domestic_share_of_smart: Share = 0.93
    idno_share: Share = 0.03
    dcc_active_share_of_smart: Share = 0.88
    de_energised_share: Share = 0.01
    pv_share_of_domestic: Share = 0.06
    change_of_supplier_rate_per_year: Annotated[float, Field(ge=0.0, le=5.0)] = 0.18
    change_of_data_service_rate_per_year: Annotated[float, Field(ge=0.0, le=5.0)] = 0.04
    de_energisation_rate_per_year: Annotated[float, Field(ge=0.0, le=5.0)] = 0.02
    new_connection_share: Share = 0.005
    domestic_median_kwh: Annotated[float, Field(gt=0.0)] = 2700.0
    domestic_sigma: Annotated[float, Field(gt=0.0, le=3.0)] = 0.45
    non_domestic_median_kwh: Annotated[float, Field(gt=0.0)] = 15000.0
    non_domestic_sigma: Annotated[float, Field(gt=0.0, le=3.0)] = 1.2
    advanced_median_kwh: Annotated[float, Field(gt=0.0)] = 250000.0
    advanced_sigma: Annotated[float, Field(gt=0.0, le=3.0)] = 1.0
    pv_export_median_kwh: Annotated[float, Field(gt=0.0)] = 1500.0
    archetypes: ArchetypeMix = Field(default_factory=ArchetypeMix)


class Generation(_Strict):
    """Consumption generation settings."""

    estimate_share: Annotated[float, Field(ge=0.0, le=0.5)] = 0.002


class Partitioning(_Strict):
    """Work units: MPAN (site) block x date range. Output never depends on these."""

    mpans_per_unit: Annotated[int, Field(ge=1, le=1_000_000)] = 500
    days_per_unit: Annotated[int, Field(ge=1, le=3660)] = 31


FormatName = Literal["parquet", "csv", "csv_wide", "csv_wide_local", "if021_json", "dcc_xml"]


class Outputs(_Strict):
    formats: list[FormatName] = Field(default_factory=lambda: ["parquet", "csv"])
    # Compression of the CSV family (csv, csv_wide, csv_wide_local); Parquet is always zstd.
    csv_compression: Literal["none", "gzip", "zstd"] = "none"
    # Raw meter reads with faults (meter_reads_raw) and their ground_truth, for data services.
    fault_datasets: bool = True
    # The PNG load-model report (central/central/report/load_model.png and a Prefect artifact).
    report: bool = True

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("outputs.formats is empty; list at least one of parquet, csv")
        if len(set(value)) != len(value):
            raise ValueError("outputs.formats lists a format twice")
        if not {"parquet", "csv"} & set(value):
            raise ValueError("outputs.formats needs parquet or csv: validation and the central copy rely on a tabular format")
        return value


class Inputs(_Strict):
    """Participant extracts to use instead of (or as well as) synthesis: paths or fsspec URLs.

    With ``registrations`` the population comes from the cleansed extract (population.mpans
    is then ignored); ``consumption`` adds actual half-hourly data for those MPANs.
    """

    registrations: str | None = None
    consumption: str | None = None

    @model_validator(mode="after")
    def _needs_registrations(self) -> Inputs:
        if self.consumption and not self.registrations:
            raise ValueError("inputs.consumption needs inputs.registrations: actual data must match an extract's MPANs")
        return self


class Scenario(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    description: str = ""
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)]
    window: Window
    population: Population
    participants: Participants
    generation: Generation = Field(default_factory=Generation)
    partitioning: Partitioning = Field(default_factory=Partitioning)
    outputs: Outputs = Field(default_factory=Outputs)
    inputs: Inputs = Field(default_factory=Inputs)
    load_model: LoadModel = Field(default_factory=LoadModel)
    faults: FaultModel = Field(default_factory=FaultModel)


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling against configs/quickstart.yaml"
        elif e["type"] == "missing":
            msg = "required; add it to the scenario"
        lines.append(f"  {loc}: {msg}")
    return "invalid scenario:\n" + "\n".join(lines)


def parse_scenario(text: str) -> Scenario:
    """Parse scenario YAML text and validate it strictly; errors name the field and the fix."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError("scenario must be a YAML mapping with keys name, seed, window, population, participants")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format_errors(exc)) from None


def apply_overrides_to_yaml(text: str, overrides: dict) -> str:
    """The scenario text after CLI overrides, as hashed into the manifest's scenario_sha256."""
    if not overrides:
        return text
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError("scenario must be a YAML mapping with keys name, seed, window, population, participants")
    for path, value in overrides.items():
        node = data
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ScenarioError(f"cannot override {path}: {key} is not a mapping")
        node[leaf] = value
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
