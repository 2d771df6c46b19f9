"""Work units: a block of sites x a range of UTC settlement days.

Units are addressable (like dbgen's -C/-S chunks): any unit can be generated alone and
equals the same rows of a full run, because every value is keyed by MPAN and day, never
by unit. Memory per unit is bounded by ``mpans_per_unit x days_per_unit x 48``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mhhs_pipeline.spec.scenario import Scenario


@dataclass(frozen=True)
class WorkUnit:
    site_start: int
    site_stop: int
    first_day: dt.date
    last_day: dt.date
    day_chunk: int  # 0 for the unit that also delivers its block's registrations

    @property
    def unit_id(self) -> str:
        return f"s{self.site_start:09d}-d{self.first_day:%Y%m%d}"

    @property
    def n_days(self) -> int:
        return (self.last_day - self.first_day).days + 1


class UnknownUnitError(ValueError):
    """A unit id that the scenario's plan does not hold."""


def plan_units(scenario: Scenario, n_items: int | None = None, *, days: tuple[dt.date, dt.date] | None = None) -> list[WorkUnit]:
    """Every unit of a scenario, blocks outer, day ranges inner.

    Blocks index synthetic sites, or (``n_items``) the sorted MPANs of a cleansed extract.
    ``days`` (inclusive, inside the window) plans only those days of the population: a
    drip-feed day. The population (its registration history) is the window's either way, so
    a day's values equal the same day of the full window's run. A unit of fewer days than
    ``days_per_unit`` covers proportionally more MPANs: the same MPAN-days, so the same
    memory, in fewer and larger files.
    """
    p = scenario.partitioning
    window = scenario.window
    first, last_day = days or (window.start, window.end)
    if not (window.start <= first <= last_day <= window.end):
        raise ValueError(f"days {first}..{last_day} are not inside the scenario window {window.start}..{window.end}")
    total = scenario.population.mpans if n_items is None else n_items
    block = p.mpans_per_unit
    if days is not None:
        block *= max(1, p.days_per_unit // ((last_day - first).days + 1))
    units = []
    for start in range(0, total, block):
        stop = min(start + block, total)
        day = first
        chunk = 0
        while day <= last_day:
            last = min(day + dt.timedelta(days=p.days_per_unit - 1), last_day)
            units.append(WorkUnit(start, stop, day, last, chunk))
            day = last + dt.timedelta(days=1)
            chunk += 1
    return units


def select_units(units: list[WorkUnit], unit_ids: list[str]) -> list[WorkUnit]:
    """The units named by id, in plan order; an id the plan lacks is refused by name."""
    by_id = {u.unit_id: u for u in units}
    unknown = [i for i in unit_ids if i not in by_id]
    if unknown:
        examples = ", ".join(u.unit_id for u in units[:3])
        raise UnknownUnitError(
            f"unit {unknown[0]!r} is not in this scenario's plan ({len(units)} units, e.g. {examples}); "
            "unit ids are s<first site, 9 digits>-d<first day YYYYMMDD>, as in the run's file names"
        )
    wanted = set(unit_ids)
    return [u for u in units if u.unit_id in wanted]
