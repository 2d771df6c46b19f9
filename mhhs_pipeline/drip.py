"""Drip-feed: a population's UTC settlement days published one at a time, each as its own run.

A drip-feed run holds one day of a population (a scenario and its seed, or a cleansed
extract): the population and its registration history are the scenario window's, and the
day's values equal the same day of a full-window run (every value is keyed by MPAN and
day, never by unit). Its run id is day-named, ``<prefix>-YYYY-MM-DD``, so participants find
each day under a predictable prefix, and a re-run of a day replaces it with the same bytes.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re

import fsspec

from mhhs_pipeline.io.paths import check_run_id
from mhhs_pipeline.io.store import MANIFEST
from mhhs_pipeline.spec.scenario import ScenarioError, Window


def drip_prefix(scenario_name: str, prefix: str | None = None) -> str:
    """The run-id prefix of a population's days (default ``<scenario name>-day``)."""
    return check_run_id(prefix or f"{scenario_name}-day")


def drip_run_id(prefix: str, day: dt.date) -> str:
    return check_run_id(f"{prefix}-{day.isoformat()}")


def published_days(out_url: str, prefix: str) -> list[dt.date]:
    """Days already published under ``out_url``: run directories ``<prefix>-YYYY-MM-DD``
    that hold a manifest (a complete run), in date order."""
    fs, root = fsspec.core.url_to_fs(out_url)
    root = root.rstrip("/")
    if hasattr(fs, "invalidate_cache"):
        fs.invalidate_cache()  # object stores cache listings; a stale one would repeat a day
    if not fs.exists(root):
        return []
    pattern = re.compile(re.escape(prefix) + r"-(\d{4}-\d{2}-\d{2})")
    days = []
    for entry in fs.ls(root, detail=False):
        match = pattern.fullmatch(posixpath.basename(entry.rstrip("/")))
        if not match:
            continue
        try:
            day = dt.date.fromisoformat(match.group(1))
        except ValueError:
            continue  # a name like prefix-2026-02-30 is not one of ours
        if fs.exists(posixpath.join(root, match.group(0), MANIFEST)):
            days.append(day)
    return sorted(days)


def choose_day(window: Window, published: list[dt.date], day: dt.date | None) -> dt.date | None:
    """The day to publish: ``day`` if given (inside the window), else the day after the
    last one published (the window's first day when none is); None once the window's last
    day has been published."""
    if day is not None:
        if not window.start <= day <= window.end:
            raise ScenarioError(
                f"day {day} is outside the population's window {window.start}..{window.end}: "
                "a drip-feed publishes days of the scenario's window (extend window.end for more days)"
            )
        return day
    following = [d for d in published if window.start <= d <= window.end]
    nxt = max(following) + dt.timedelta(days=1) if following else window.start
    return nxt if nxt <= window.end else None
