"""Progress lines for a stage that runs many work units: units done / total, values per second.

Pure (the clock and the sink are given): the flow passes Prefect's run logger, so the
same lines reach the terminal of a CLI run and the flow run's logs in the Prefect UI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class UnitProgress:
    """``on_result`` callback for :func:`mhhs_pipeline.distributed.run_on_dask`.

    Logs at most one line every ``every_s`` seconds, and always the last unit's, e.g.
    ``generate-and-deliver: 12/48 units, 4.21 M half-hour values, 1.18 M values/s``.
    Values are canonical half-hour values generated (each reaches several participants).
    """

    def __init__(self, stage: str, log: Callable[[str], None], *, every_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.stage = stage
        self.log = log
        self.every_s = every_s
        self.clock = clock
        self.started = clock()
        self.last_logged = self.started
        self.values = 0

    def __call__(self, done: int, total: int, result: Any) -> None:
        if done == 0:  # the units were submitted (the cluster is up): time from here
            self.started = self.last_logged = self.clock()
            return
        self.values += int(getattr(result, "half_hours", 0))
        now = self.clock()
        if done < total and now - self.last_logged < self.every_s:
            return
        self.last_logged = now
        self.log(self.line(done, total, now - self.started))

    def line(self, done: int, total: int, elapsed_s: float) -> str:
        rate = self.values / elapsed_s if elapsed_s > 0 else 0.0
        return (
            f"{self.stage}: {done}/{total} units, {self.values / 1e6:.2f} M half-hour values, "
            f"{rate / 1e6:.2f} M values/s ({elapsed_s:.1f} s)"
        )
