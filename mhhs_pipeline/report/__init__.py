"""Run report pictures: a PNG that shows what the load model made.

Pure functions of Arrow tables -- no files, no clocks, matplotlib's Agg canvas only:

- :func:`summarise` -- small aggregate tables of one work unit's consumption (average
  shape by archetype, season and day kind; monthly totals; per-MPAN totals; a few sample
  MPANs' half hours). Cheap enough to run on every worker.
- :func:`merge_summaries` -- combine the summaries of many units (any order, same result).
- :func:`render_png` -- the PNG bytes: average daily shape by archetype and season, a week of
  sample MPANs, monthly totals, distribution of annual consumption.
- :func:`report_png` -- summarise + render in one call, for a table that fits in memory.
"""

from mhhs_pipeline.report.plots import render_png
from mhhs_pipeline.report.summary import (
    ReportSummary,
    SummaryFold,
    merge_summaries,
    report_png,
    summarise,
)

__all__ = ["ReportSummary", "SummaryFold", "merge_summaries", "render_png", "report_png", "summarise"]
