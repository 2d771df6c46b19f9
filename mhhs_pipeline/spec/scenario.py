"""Scenario configuration: strict pydantic models parsed from YAML text.

Every model forbids unknown keys, so a typo in a scenario file fails fast with the
field's path. Cross-field rules (participant shares summing to one, window order, MPID
format) are validated here so the engine never sees an impossible scenario. Numbers are
finite and never booleans (``spec.strict``).

YAML is read by a safe loader that also refuses what would only waste time or memory: a
document whose aliases expand to more than ``MAX_YAML_NODES`` nodes (a "billion laughs"
bomb is a few hundred bytes), and nesting deeper than Python's stack. An impossible date
(``2026-02-30``) stays text, so the error names its field.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Literal

import yaml
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from mhhs_pipeline.spec.load_model import FaultModel, LoadModel
from mhhs_pipeline.spec.strict import StrictModel, located_errors

# Applied with fullmatch: re.match with "$" would accept "GRNX\n" (and make a folder of it).
MPID_PATTERN = re.compile(r"[A-Z0-9]{4}")
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"  # pydantic's regex: "$" is the end of the text
SHARE_TOLERANCE = 1e-3  # participant shares must sum to 1 within this (0.333 x 3 passes)
MAX_MPANS = 100_000_000  # far inside the 10**10 unique MPAN ids the synthesis draws from
MAX_WINDOW_DAYS = 3661  # ten years, both ends inclusive
# The years a window may lie in: DCC counters are epoch milliseconds (so after 1970), and
# the cleansing packs day ordinals of 1900..2199; MHHS test data needs neither extreme.
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2099, 12, 31)
MAX_YAML_NODES = 100_000  # a scenario has a few hundred
MAX_SCENARIO_BYTES = 1 << 20  # 1 MiB; configs/quickstart.yaml is ~2 KB

Share = Annotated[float, Field(ge=0.0, le=1.0)]


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the field and the fix."""


_Strict = StrictModel


class Window(_Strict):
    """UTC settlement days, both inclusive."""

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        for name, day in (("start", self.start), ("end", self.end)):
            if not FIRST_DAY <= day <= LAST_DAY:
                raise ValueError(f"window.{name} {day} is outside {FIRST_DAY}..{LAST_DAY}; choose a day in it")
        if self.end < self.start:
            raise ValueError(f"window.end ({self.end}) is before window.start ({self.start}); swap them")
        if self.days > MAX_WINDOW_DAYS:
            raise ValueError(f"window spans {self.days} days, more than {MAX_WINDOW_DAYS} (10 years); shorten window.end")
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
        if not MPID_PATTERN.fullmatch(value):
            raise ValueError(f"{value!r} is not an MPID: use 4 upper-case letters or digits, e.g. 'ABCD'")
        return value


def _check_shares(entries: list[ShareEntry], where: str) -> list[ShareEntry]:
    """Distinct participants whose shares are market shares: they sum to 1. A sum far
    from 1 is a typo (a share left over from an edit), never something to normalise."""
    if not entries:
        raise ValueError(f"{where} needs at least one participant")
    ids = [e.id for e in entries]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"{where} lists {dupes} more than once; merge the entries")
    total = math.fsum(e.share for e in entries)
    if not abs(total - 1.0) <= SHARE_TOLERANCE:
        raise ValueError(f"the shares of {where} sum to {total:.6g}, not 1; make them add up to 1 (within {SHARE_TOLERANCE})")
    return entries


class SegmentParticipants(_Strict):
    """Participants appointed per market segment (Smart / Advanced)."""

    smart: list[ShareEntry]
    advanced: list[ShareEntry]

    @field_validator("smart", "advanced")
    @classmethod
    def _shares(cls, value: list[ShareEntry], info: ValidationInfo) -> list[ShareEntry]:
        return _check_shares(value, info.field_name)


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
            total = math.fsum(mix.values())
            if not 0 < total < math.inf:
                raise ValueError(f"archetypes.{name} shares sum to {total:.6g}; give at least one a positive share, all finite")
        return self


class Population(_Strict):
    """Size and mix of the synthetic registration population."""

    mpans: int = Field(description="import MPANs (metering points); export MPANs of PV homes come on top")
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

    @field_validator("mpans")
    @classmethod
    def _mpans(cls, value: int) -> int:
        if not 1 <= value <= MAX_MPANS:
            raise ValueError(f"{value} import MPANs is outside 1..{MAX_MPANS:,}; set population.mpans (or --mpans) within it")
        return value


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
    # DCC responses as one ZIP per data service per unit (format dcc_xml_zip), not a file
    # per MPAN x service x request period (dcc_xml): files grow with data, not MPANs.
    dcc_bundle: bool = True
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
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
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


def _reword(e: dict, msg: str) -> str:
    if e["type"] == "extra_forbidden":
        return "unknown key; remove it or check its spelling against configs/quickstart.yaml"
    if e["type"] == "missing":
        return "required; add it to the scenario"
    if e["type"] == "finite_number":
        return "must be a finite number (not .inf or .nan)"
    if e["type"].startswith(("date_", "datetime_")):
        return msg + f" (got {e['input']!r}); write a real date as YYYY-MM-DD"
    return msg


def _format_errors(err: ValidationError) -> str:
    """One line: every problem as ``field.path: what is wrong and the fix``."""
    return "invalid scenario: " + "; ".join(located_errors(err, _reword))


class _ScenarioLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that keeps an impossible date as text (validation then names its
    field, where PyYAML would raise a bare ValueError) and bounds alias expansion."""

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return self.construct_document(node)


_ScenarioLoader.add_constructor("tag:yaml.org,2002:timestamp", _ScenarioLoader.construct_yaml_timestamp)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph whose aliases expand it past ``MAX_YAML_NODES`` nodes, or that
    refers to itself: the composed graph shares aliased nodes, but validation and the
    override round trip would walk (and copy) every expanded one."""
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in size:
            continue
        if isinstance(node, yaml.ScalarNode):
            size[id(node)] = 1
            continue
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else list(node.value)
        if children_done:
            open_.discard(id(node))
            size[id(node)] = 1 + sum(size[id(c)] for c in children)
            if size[id(node)] > MAX_YAML_NODES:
                raise ScenarioError(
                    f"scenario's YAML aliases (*name) expand to more than {MAX_YAML_NODES:,} values; write the values out instead of repeating anchors"
                )
            continue
        open_.add(id(node))
        stack.append((node, True))
        for c in children:
            if id(c) in open_:
                raise ScenarioError(f"scenario's YAML alias at line {c.start_mark.line + 1} refers to itself; remove the recursive anchor")
            if id(c) not in size:
                stack.append((c, False))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        what = "; ".join(p for p in (exc.context, exc.problem) if p)
        return f"line {mark.line + 1}, column {mark.column + 1}: {what}"
    return " ".join(str(exc).split())


def _load_yaml(text: str):
    loader = _ScenarioLoader(text)
    try:
        return loader.get_single_data()
    except ScenarioError:
        raise
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario is not valid YAML: {_yaml_problem(exc)}") from None
    except ValueError as exc:  # a constructor's own (!!int abc, an integer of 5,000 digits)
        first = " ".join(str(exc).split()).split(";")[0][:200]
        raise ScenarioError(f"scenario is not valid YAML: {first}") from None
    except RecursionError:
        raise ScenarioError("scenario's YAML is nested too deeply to read; a scenario has a few levels of keys") from None
    finally:
        loader.dispose()


def _mapping(text: str) -> dict:
    data = _load_yaml(text)
    if not isinstance(data, dict):
        raise ScenarioError("scenario must be a YAML mapping with keys name, seed, window, population, participants")
    return data


def parse_scenario(text: str) -> Scenario:
    """Parse scenario YAML text and validate it strictly; errors name the field and the fix."""
    data = _mapping(text)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format_errors(exc)) from None


def apply_overrides_to_yaml(text: str, overrides: dict) -> str:
    """The scenario text after CLI overrides, as hashed into the manifest's scenario_sha256."""
    if not overrides:
        return text
    data = _mapping(text)
    for path, value in overrides.items():
        node = data
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ScenarioError(f"cannot override {path}: {key} is not a mapping")
        node[leaf] = value
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
