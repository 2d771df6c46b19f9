"""Render a :class:`ReportSummary` to PNG bytes with matplotlib's Agg canvas (no pyplot state)."""

from __future__ import annotations

import io

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mhhs_pipeline.report.summary import ReportSummary
from mhhs_pipeline.spec.archetypes import (
    DOMESTIC_ARCHETYPES,
    EXPORT_ARCHETYPES,
    NON_DOMESTIC_ARCHETYPES,
)

_ORDER = DOMESTIC_ARCHETYPES + NON_DOMESTIC_ARCHETYPES + EXPORT_ARCHETYPES
_SEASON_COLOURS = {"winter": "#1f4e9c", "spring": "#3a9d5d", "summer": "#e3a21a", "autumn": "#b5542c"}
_SAMPLE_PREFERENCE = ("domestic_unrestricted", "domestic_economy7", "domestic_heat_pump", "domestic_ev", "pv_export", "office", "school", "industrial_2_shift")


def _col(t, name):
    return np.asarray(t.column(name).to_numpy(zero_copy_only=False))


def _shapes(fig, grid, s: ReportSummary) -> None:
    t = s.shape
    archs = [a for a in _ORDER if a in set(_col(t, "archetype").astype(str))] if t.num_rows else []
    arch = _col(t, "archetype").astype(str)
    season = _col(t, "season").astype(str)
    kind = _col(t, "day_kind").astype(str)
    slot = _col(t, "local_slot").astype(int)
    kw = 2.0 * _col(t, "kwh_sum") / np.maximum(_col(t, "periods"), 1)
    hours = np.arange(48) / 2.0
    for i, a in enumerate(archs[:15]):
        ax = fig.add_subplot(grid[i // 4, i % 4])
        for sea, colour in _SEASON_COLOURS.items():
            for k, style in (("weekday", "-"), ("weekend", ":")):
                sel = (arch == a) & (season == sea) & (kind == k)
                if sel.any():
                    y = np.full(48, np.nan)
                    y[slot[sel]] = kw[sel]
                    ax.plot(hours, y, style, color=colour, lw=1.3 if style == "-" else 1.0, label=f"{sea} {k}")
        ax.set_title(a, fontsize=9)
        ax.set_xlim(0, 24)
        ax.set_xticks([0, 6, 12, 18, 24])
        ax.tick_params(labelsize=7)
        ax.set_ylim(bottom=0)
        if i % 4 == 0:
            ax.set_ylabel("mean kW per MPAN", fontsize=7)
    legend_ax = fig.add_subplot(grid[3, 3])
    legend_ax.axis("off")
    for sea, colour in _SEASON_COLOURS.items():
        legend_ax.plot([], [], "-", color=colour, label=f"{sea} weekday")
    legend_ax.plot([], [], ":", color="grey", label="weekend (dotted)")
    legend_ax.legend(loc="center", fontsize=8, title="local clock hour", title_fontsize=8)


def _sample_week(fig, grid, s: ReportSummary) -> None:
    t = s.sample
    if not t.num_rows:
        ax = fig.add_subplot(grid[0, 0])
        ax.text(0.5, 0.5, "no sample MPANs", ha="center")
        return
    arch = _col(t, "archetype").astype(str)
    cores = _col(t, "mpan_core").astype(str)
    ts = _col(t, "period_end_utc").astype("datetime64[us]")
    kwh = _col(t, "consumption_kwh")
    t0 = ts.min()
    week = ts < t0 + np.timedelta64(7, "D")
    present = [a for a in _SAMPLE_PREFERENCE if a in set(arch)] + [a for a in _ORDER if a in set(arch) and a not in _SAMPLE_PREFERENCE]
    chosen = present[: grid.nrows]
    for i, a in enumerate(chosen):
        ax = fig.add_subplot(grid[i, 0])
        core = sorted(set(cores[arch == a]))[0]
        sel = (cores == core) & week
        order = np.argsort(ts[sel])
        x = (ts[sel][order] - t0).astype("timedelta64[m]").astype(np.int64) / 1440.0
        ax.step(x, 2.0 * kwh[sel][order], where="pre", lw=0.8, color="#333333")
        ax.set_ylabel("kW", fontsize=7)
        ax.text(0.005, 0.82, f"{a}  {core}", transform=ax.transAxes, fontsize=8)
        ax.set_xlim(0, 7)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.set_title(f"A week of sample MPANs from {str(t0)[:10]} (UTC days)", fontsize=10)
        if i < len(chosen) - 1:
            ax.set_xticklabels([])
        else:
            ax.set_xlabel("days", fontsize=8)


def _monthly(ax, s: ReportSummary) -> None:
    t = s.monthly
    ax.set_title("Monthly totals by archetype (MWh; export below zero)", fontsize=10)
    if not t.num_rows:
        return
    arch = _col(t, "archetype").astype(str)
    month = _col(t, "month").astype(str)
    mwh = _col(t, "kwh_sum") / 1000.0
    months = sorted(set(month))
    x = np.arange(len(months))
    bottom = np.zeros(len(months))
    cmap = colormaps["tab20"]
    for i, a in enumerate([a for a in _ORDER if a in set(arch)]):
        y = np.array([mwh[(arch == a) & (month == mo)].sum() for mo in months])
        if a in EXPORT_ARCHETYPES:
            ax.bar(x, -y, color="#f2c12e", label=a)
        else:
            ax.bar(x, y, bottom=bottom, color=cmap(i % 20), label=a)
            bottom += y
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(x)
    ax.set_xticklabels(months, rotation=60, fontsize=7)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _annual(ax, s: ReportSummary) -> None:
    t = s.mpans
    ax.set_title("Distribution of annual consumption (registered; generated annualised dashed)", fontsize=10)
    if not t.num_rows:
        return
    arch = _col(t, "archetype").astype(str)
    reg = _col(t, "annual_consumption_kwh")
    gen = _col(t, "kwh_sum") / np.maximum(_col(t, "periods"), 1) * 17520.0
    lo = max(np.nanmin(reg[reg > 0]) if (reg > 0).any() else 10.0, 10.0)
    hi = max(np.nanmax(reg), lo * 10)
    bins = np.logspace(np.log10(lo) - 0.1, np.log10(hi) + 0.1, 50)
    for label, names, colour in (("domestic", DOMESTIC_ARCHETYPES, "#1f77b4"), ("non-domestic", NON_DOMESTIC_ARCHETYPES, "#d62728"), ("PV export", EXPORT_ARCHETYPES, "#e3a21a")):
        sel = np.isin(arch, names)
        if sel.any():
            ax.hist(reg[sel], bins=bins, histtype="stepfilled", alpha=0.35, color=colour, label=f"{label} (n={sel.sum()})")
            ax.hist(gen[sel & (gen > 0)], bins=bins, histtype="step", ls="--", color=colour)
    ax.set_xscale("log")
    ax.set_xlabel("kWh per year", fontsize=8)
    ax.set_ylabel("MPANs", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)


def render_png(summary: ReportSummary, title: str = "", dpi: int = 72) -> bytes:
    """The report as PNG bytes: shapes by archetype and season, a sample week, monthly totals,
    and the distribution of annual consumption."""
    fig = Figure(figsize=(16, 24), dpi=dpi)
    FigureCanvasAgg(fig)
    outer = fig.add_gridspec(3, 1, height_ratios=[4.2, 3.2, 1.6], hspace=0.22, left=0.05, right=0.86, top=0.96, bottom=0.04)
    fig.suptitle(title or "MHHS load model report", fontsize=14)
    _shapes(fig, outer[0].subgridspec(4, 4, hspace=0.45, wspace=0.22), summary)
    _sample_week(fig, outer[1].subgridspec(8, 1, hspace=0.12), summary)
    bottom = outer[2].subgridspec(1, 2, wspace=0.45)
    _monthly(fig.add_subplot(bottom[0, 0]), summary)
    _annual(fig.add_subplot(bottom[0, 1]), summary)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
