"""Report pictures: summaries merge like one big summary; the PNG renders from Arrow tables alone."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from conftest import scenario

from mhhs_pipeline.core.load import generate_consumption
from mhhs_pipeline.core.registrations import synthesise_registrations
from mhhs_pipeline.report import merge_summaries, render_png, report_png, summarise

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _unit(sc, a, b, d0, d1):
    reg = synthesise_registrations(sc, a, b)
    gen = generate_consumption(sc, reg, d0, d1)
    return reg, gen


def test_summaries_of_units_merge_to_the_summary_of_the_whole():
    sc = scenario(**{"population.mpans": 120, "population.advanced_share": 0.1, "population.pv_share_of_domestic": 0.3})
    d0, d1 = sc.window.start, sc.window.end
    mid = d0 + dt.timedelta(days=6)
    reg, gen = _unit(sc, 0, 120, d0, d1)
    whole = merge_summaries([summarise(gen.table, reg, gen.registration_row)])
    parts = []
    for a, b in ((0, 50), (50, 120)):
        for x0, x1 in ((d0, mid), (mid + dt.timedelta(days=1), d1)):
            r, g = _unit(sc, a, b, x0, x1)
            parts.append(summarise(g.table, r, g.registration_row))
    merged = merge_summaries(parts[::-1])
    for name in ("shape", "monthly", "mpans"):
        a, b = getattr(whole, name), getattr(merged, name)
        assert a.num_rows == b.num_rows and a.column_names == b.column_names, name
        assert np.allclose(a.column("kwh_sum").to_numpy(), b.column("kwh_sum").to_numpy())
        assert a.drop_columns(["kwh_sum"]).equals(b.drop_columns(["kwh_sum"])), name
    assert whole.sample.equals(merged.sample) and whole.sample.num_rows > 0
    # the shape table accounts for every energised active kWh
    energised = np.asarray(reg.column("energisation_status").to_numpy(zero_copy_only=False))[gen.registration_row] == "E"
    mq = np.asarray(gen.table.column("measurement_quantity").to_numpy(zero_copy_only=False))
    total = gen.table.column("consumption_kwh").to_numpy()[energised & np.isin(mq, ["AI", "AE"])].sum()
    assert np.isclose(whole.shape.column("kwh_sum").to_numpy().sum(), total)
    assert set(whole.shape.column("season").to_pylist()) == {"autumn"}


def test_png_renders_from_tables():
    sc = scenario(**{"population.mpans": 60, "window.start": "2026-01-26", "window.end": "2026-02-08"})
    reg, gen = _unit(sc, 0, 60, sc.window.start, sc.window.end)
    png = report_png(gen.table, reg, gen.registration_row, title="test")
    assert png.startswith(PNG_MAGIC) and len(png) > 20_000
    empty = summarise(gen.table.slice(0, 0), reg, np.zeros(0, dtype=np.int64))
    assert render_png(merge_summaries([empty])).startswith(PNG_MAGIC)
    assert isinstance(gen.table, pa.Table)


def test_folding_summaries_as_units_complete_is_the_same_whatever_the_arrival_order(monkeypatch):
    import random

    from mhhs_pipeline.report import SummaryFold

    sc = scenario(**{"population.mpans": 60})
    d0, d1 = sc.window.start, sc.window.end
    parts = []
    for a in range(0, 60, 10):
        r, g = _unit(sc, a, a + 10, d0, d1)
        parts.append(summarise(g.table, r, g.registration_row))
    parts.insert(2, None)  # a unit without a summary (report off)
    monkeypatch.setattr(SummaryFold, "CHUNK", 2)
    folds = []
    for seed in range(3):
        order = list(range(len(parts)))
        random.Random(seed).shuffle(order)
        fold = SummaryFold()
        for i in order:
            fold.add(i, parts[i])
            assert len(fold._merged) + len(fold._run) + len(fold._waiting) <= len(parts)
        folds.append(fold.result())
    whole = merge_summaries([p for p in parts if p is not None])
    keys = {"shape": ["archetype", "season", "day_kind", "local_slot"], "monthly": ["archetype", "month"], "mpans": ["mpan_core", "archetype"]}

    def same(a, b, name):  # Arrow's threaded group_by orders rows and adds floats as it likes
        a, b = (t.sort_by([(k, "ascending") for k in keys[name]]) for t in (a, b))
        assert a.drop_columns(["kwh_sum"]).equals(b.drop_columns(["kwh_sum"])), name
        assert np.allclose(a.column("kwh_sum").to_numpy(), b.column("kwh_sum").to_numpy()), name

    for f in [*folds[1:], whole]:
        for name in keys:
            same(getattr(f, name), getattr(folds[0], name), name)
        order = [("mpan_core", "ascending"), ("period_end_utc", "ascending")]
        assert f.sample.sort_by(order).equals(folds[0].sample.sort_by(order))
