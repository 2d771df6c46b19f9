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


def plan_units(scenario: Scenario, n_items: int | None = None) -> list[WorkUnit]:
    """Every unit of a scenario, blocks outer, day ranges inner.

    Blocks index synthetic sites, or (``n_items``) the sorted MPANs of a cleansed extract.
    """
    p = scenario.partitioning
    window = scenario.window
    total = scenario.population.mpans if n_items is None else n_items
    units = []
    for start in range(0, total, p.mpans_per_unit):
        stop = min(start + p.mpans_per_unit, total)
        day = window.start
        chunk = 0
        while day <= window.end:
            last = min(day + dt.timedelta(days=p.days_per_unit - 1), window.end)
            units.append(WorkUnit(start, stop, day, last, chunk))
            day = last + dt.timedelta(days=1)
            chunk += 1
    return units
