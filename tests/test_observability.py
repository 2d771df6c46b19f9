"""What a run says while it runs: progress lines per stage, and errors that name the unit."""

from __future__ import annotations

import pytest
from conftest import QUICKSTART
from hypothesis import given, settings
from hypothesis import strategies as st

from mhhs_pipeline import stages
from mhhs_pipeline.distributed import run_on_dask
from mhhs_pipeline.progress import UnitProgress
from mhhs_pipeline.runner import UnitError, UnitResult, run_unit


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@settings(max_examples=100, deadline=None)
@given(gaps=st.lists(st.floats(0.0, 4.0), min_size=1, max_size=40), values=st.integers(0, 10_000_000))
def test_progress_lines_are_throttled_and_the_last_is_always_said(gaps, values):
    clock, lines = _Clock(), []
    progress = UnitProgress("stage", lines.append, every_s=5.0, clock=clock)
    total = len(gaps)
    clock.now += 30.0  # cluster start-up: not counted
    progress(0, total, None)
    started = clock.now
    for done, gap in enumerate(gaps, start=1):
        clock.now += gap
        progress(done, total, UnitResult(f"u{done}", half_hours=values))
    elapsed = clock.now - started
    assert lines[-1].startswith(f"stage: {total}/{total} units, {values * total / 1e6:.2f} M half-hour values")
    rate = values * total / elapsed / 1e6 if elapsed > 0 else 0.0
    assert f"{rate:.2f} M values/s ({elapsed:.1f} s)" in lines[-1]
    assert len(lines) <= 1 + int(elapsed // 5.0) + 1  # at most one line per 5 s, plus the last


@pytest.mark.slow
def test_a_failing_unit_names_its_id_mpans_and_days_across_processes(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file where the run folder should be")
    loaded = stages.load_scenario(str(QUICKSTART), {"population.mpans": 60, "outputs.formats": ["parquet"]})
    jobs = stages.unit_jobs(loaded, str(blocker), "r")
    with pytest.raises(UnitError) as err:
        run_on_dask(run_unit, jobs[:1], workers=1, progress=False, retries=0)
    message = str(err.value)
    assert message.startswith("unit s000000000-d20261019 (sites 0-59, MPANs 1")
    assert "days 2026-10-19..2026-11-01) failed: NotADirectoryError" in message


def test_the_embedded_servers_shutdown_cancellation_is_not_shown_but_other_pool_errors_are(caplog):
    import asyncio
    import logging

    from flows.cli import SQLALCHEMY_POOLS, _quiet_shutdown

    _quiet_shutdown()
    caplog.set_level(logging.ERROR)
    for pool in SQLALCHEMY_POOLS:
        log = logging.getLogger(f"sqlalchemy.pool.impl.{pool}")
        try:
            raise asyncio.CancelledError()
        except asyncio.CancelledError:
            log.error("Exception closing connection %r", "<AdaptedConnection>", exc_info=True)
        try:
            raise OSError("disk I/O error")
        except OSError:
            log.error("Exception closing connection %r", "<AdaptedConnection>", exc_info=True)
            log.error("Exception during reset or similar", exc_info=True)
    shown = [(r.name, r.exc_info[0].__name__) for r in caplog.records]
    assert len(shown) == 2 * len(SQLALCHEMY_POOLS)
    assert all(kind == "OSError" for _, kind in shown)


def _square_slowly(x: int) -> int:
    import time

    time.sleep(0.01)
    return x * x


def _flaky(x: int) -> int:
    import os

    marker = os.path.join(os.environ["MHHS_TEST_FLAKY_DIR"], f"{x}")
    if x % 7 == 3 and not os.path.exists(marker):
        open(marker, "w").close()
        raise OSError("storage hiccup")  # transient: resubmitted once, then it passes
    return x * x


def test_the_cluster_holds_a_bounded_window_of_jobs_and_results_keep_job_order(tmp_path, monkeypatch):
    from distributed import Client

    from mhhs_pipeline.distributed import local_cluster

    # local_cluster, not a bare LocalCluster: Dask's nanny writes worker settings into this
    # process's environment, which local_cluster puts back (other tests here see it).
    with local_cluster(2) as cluster, Client(cluster) as probe:
        seen: list[int] = []

        def on_result(done, total, result):
            seen.append(probe.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)))

        results = run_on_dask(_square_slowly, range(60), address=cluster.scheduler_address, progress=False, on_result=on_result, max_in_flight=4)
        assert results == [x * x for x in range(60)]
        assert len(seen) == 61 and max(seen) <= 4 + 1  # never the whole plan on the scheduler
        monkeypatch.setenv("MHHS_TEST_FLAKY_DIR", str(tmp_path))
        probe.run(lambda: __import__("os").environ.__setitem__("MHHS_TEST_FLAKY_DIR", str(tmp_path)))
        assert run_on_dask(_flaky, range(30), address=cluster.scheduler_address, progress=False, max_in_flight=3) == [x * x for x in range(30)]
        assert sorted(int(p.name) for p in tmp_path.iterdir()) == [x for x in range(30) if x % 7 == 3]
