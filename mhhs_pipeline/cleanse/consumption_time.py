"""Half hours of a consumption extract: UTC period-end text and the local (legacy) view.

Both parsers are vectorised (Arrow regex + numpy integer arithmetic): no Python loop per
row, and no clock is read. Instants are int64 microseconds since the epoch, UTC.

- ``parse_period_end``: ``YYYY-MM-DD[T ]HH:MM[:SS[.f]][Z|UTC|+HH[:MM]]``. Naive text is UTC
  (the column is named for it); an explicit offset is applied; ``24:00`` is the next day's
  ``00:00`` (ISO 8601 allows it, and end-of-day stamps use it).
- ``local_to_utc``: local settlement date + period (1-50, counted from local midnight in
  real time) -> UTC period end, with the tz database (via pandas) telling where local
  midnight falls and how many periods the day has (46 / 48 / 50).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.core.calendar import LONDON

US_PER_MINUTE = 60_000_000
US_PER_HALF_HOUR = 30 * US_PER_MINUTE
US_PER_DAY = 1440 * US_PER_MINUTE
YEAR_RANGE = (1900, 2199)

_TIMESTAMP = (
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?"
    r"\s*(?P<tz>Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$"
)


def _np_bool(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _ints(text: pa.Array, ok: np.ndarray) -> np.ndarray:
    """Digits-only text as int64 (0 where not ``ok`` or empty)."""
    usable = pa.array(ok) if isinstance(ok, np.ndarray) else ok
    cleaned = pc.if_else(pc.and_(usable, pc.not_equal(text, "")), text, "0")
    return pc.cast(cleaned, pa.int64()).to_numpy(zero_copy_only=False)


def calendar_days(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(day ordinal since 1970-01-01, valid) of ``YYYY-MM-DD`` text; 2026-02-30 is invalid."""
    parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
    exact = _np_bool(pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), text))
    year = pc.fill_null(pc.year(parsed), 0).to_numpy(zero_copy_only=False)
    ok = exact & (year >= YEAR_RANGE[0]) & (year <= YEAR_RANGE[1])
    days = pc.fill_null(pc.cast(pc.cast(parsed, pa.date32()), pa.int32()), 0).to_numpy(zero_copy_only=False)
    return np.where(ok, days, 0).astype(np.int64), ok


@dataclass(frozen=True)
class ParsedPeriodEnd:
    utc_us: np.ndarray  # int64 microseconds since the epoch, UTC (0 where not ok)
    ok: np.ndarray  # readable as a date-time
    on_grid: np.ndarray  # ok and on :00/:30 with no seconds (in UTC)
    restated: np.ndarray  # ok and rewritten: a non-zero offset applied, or 24:00


def parse_period_end(text: pa.Array) -> ParsedPeriodEnd:
    """Parse trimmed period-end text (empty or null -> not ok)."""
    parts = pc.extract_regex(text, _TIMESTAMP)
    matched = _np_bool(pc.is_valid(parts))
    field = {name: pc.fill_null(pc.struct_field(parts, name), "") for name in ("date", "h", "m", "s", "f", "tz")}
    days, date_ok = calendar_days(field["date"])
    h = _ints(field["h"], matched)
    m = _ints(field["m"], matched)
    s = _ints(field["s"], matched)
    frac_nonzero = _np_bool(pc.match_substring_regex(field["f"], r"[1-9]"))
    tz = field["tz"]
    offset_text = pc.utf8_replace_slice(pc.replace_substring(tz, ":", ""), 0, 1, "")  # "+01:00" -> "0100"
    is_offset = _np_bool(pc.match_substring_regex(tz, r"^[+-]"))
    off_h = _ints(pc.utf8_slice_codeunits(offset_text, 0, 2), is_offset)
    off_m = _ints(pc.utf8_slice_codeunits(offset_text, 2, 4), is_offset)
    sign = np.where(_np_bool(pc.starts_with(tz, "-")), -1, 1)
    offset_min = np.where(is_offset, sign * (off_h * 60 + off_m), 0)
    end_of_day = (h == 24) & (m == 0) & (s == 0) & ~frac_nonzero
    ok = matched & date_ok & ((h <= 23) | end_of_day) & (m <= 59) & (s <= 59) & (off_h <= 23) & (off_m <= 59)
    minutes = days * 1440 + h * 60 + m - offset_min
    utc_us = np.where(ok, minutes * US_PER_MINUTE + s * 1_000_000, 0).astype(np.int64)
    on_grid = ok & (s == 0) & ~frac_nonzero & (utc_us % US_PER_HALF_HOUR == 0)
    restated = ok & ((offset_min != 0) | end_of_day)
    return ParsedPeriodEnd(utc_us, ok, on_grid, restated)


def local_midnights(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For local (Europe/London) dates as day ordinals: (UTC instant of local midnight in
    microseconds, periods in that local day: 46, 48 or 50). Computed once per distinct date."""
    days = np.asarray(days, dtype=np.int64)
    if not len(days):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    uniq, inv = np.unique(days, return_inverse=True)
    both = np.concatenate([uniq, uniq + 1]).astype("datetime64[D]").astype("datetime64[us]")
    # Local midnight always exists and is unambiguous in GB (clocks change at 01:00 UTC).
    utc = pd.DatetimeIndex(both).tz_localize(LONDON).tz_convert("UTC").tz_localize(None)
    stamps = utc.values.astype("datetime64[us]").astype(np.int64)
    start, end = stamps[: len(uniq)], stamps[len(uniq) :]
    periods = (end - start) // US_PER_HALF_HOUR
    return start[inv], periods[inv]


def local_to_utc(days: np.ndarray, periods: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(UTC period end in microseconds, period fits the local day) for local date ordinals
    and settlement periods 1-50. Period ``p`` ends ``p`` half hours after local midnight."""
    midnight, n_periods = local_midnights(days)
    periods = np.asarray(periods, dtype=np.int64)
    return midnight + periods * US_PER_HALF_HOUR, (periods >= 1) & (periods <= n_periods)
