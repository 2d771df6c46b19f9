"""Fill empty non-key attributes of clean records with plausible values.

Keys and routing fields (MPAN, effective_from, supplier, data service, metering
service) are never made up: a record without them is quarantined. Other attributes
are filled, in this order of preference:

1. what follows from the record itself (segment from connection type and back, an
   export direction from a linked import MPAN, domestic from the archetype...);
2. the value another record of the same MPAN carries (premises attributes do not change
   between registrations: segment, connection type, direction, domestic, archetype,
   annual consumption, GSP group);
3. a draw from the scenario's population mix, keyed by (seed, MPAN, field) like every
   random stream in the product, so one MPAN gets the same values in every run.

A record with any filled attribute has ``provenance = manufactured``, else ``actual``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.cleanse.rules import MAX_ANNUAL_KWH, MAX_ANNUAL_KWH_ANY
from mhhs_pipeline.core import market, streams
from mhhs_pipeline.core.registrations import DOMESTIC_KWH_FACTOR, NON_DOMESTIC_KWH_FACTOR
from mhhs_pipeline.core.schema import REGISTRATION_SCHEMA
from mhhs_pipeline.spec.archetypes import DOMESTIC_ARCHETYPES, EXPORT_ARCHETYPES
from mhhs_pipeline.spec.scenario import Population

# Attributes of the premises, equal on every registration of one MPAN.
PER_MPAN = (
    "gsp_group", "market_segment", "connection_type", "energy_direction",
    "domestic_premise", "archetype", "annual_consumption_kwh",
)  # fmt: skip
FILLABLE = (*PER_MPAN, "energisation_status", "dcc_service_flag")
_SEGMENT_OF_CT = {"W": "S", "L": "A", "H": "A", "E": "A", "U": "U"}
_CT_OF_SEGMENT = {"S": "W", "A": "L", "U": "U"}  # LV CT is most Advanced sites' connection


def default_population() -> Population:
    """The product's default population mix (used when no scenario is given)."""
    return Population(mpans=1)


def _values(col: pa.Array | pa.ChunkedArray, typ: pa.DataType) -> tuple[np.ndarray, np.ndarray]:
    """(numpy values with a placeholder where null, present mask)."""
    have = np.asarray(pc.is_valid(col).to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_string(typ):
        # object, not numpy 'U': fixed-width strings would truncate longer fills
        vals = np.array(pc.fill_null(col, "").to_numpy(zero_copy_only=False), dtype=object)
    elif pa.types.is_boolean(typ):
        vals = np.array(pc.fill_null(col, False).to_numpy(zero_copy_only=False), dtype=bool)
    else:
        vals = np.array(pc.fill_null(col, 0.0).to_numpy(zero_copy_only=False), dtype=np.float64)
    return vals, have


def _lookup(values: np.ndarray, mapping: dict, default) -> np.ndarray:
    """``mapping[v]`` for each string value (``default`` for others), vectorised by Arrow."""
    pos = pc.index_in(pa.array(values, pa.string()), pa.array(list(mapping), pa.string()))
    table = np.array([*mapping.values(), default], dtype=object)
    return table[np.asarray(pc.fill_null(pos, len(mapping)).to_numpy(zero_copy_only=False))]


def manufacture(clean: pa.Table, seed: int = 0, population: Population | None = None) -> tuple[pa.Table, dict[str, int]]:
    """Clean records (normalised, nulls where empty) -> canonical registrations + fills per field."""
    pop = population or default_population()
    n = clean.num_rows
    if n == 0:
        return REGISTRATION_SCHEMA.empty_table(), {}
    entity = pc.cast(clean.column("mpan_core"), pa.int64()).to_numpy(zero_copy_only=False).astype(np.uint64)
    types = {f: REGISTRATION_SCHEMA.field(f).type for f in FILLABLE}
    values, have = {}, {}
    for f in FILLABLE:
        values[f], have[f] = _values(clean.column(f), types[f])
    missing = {f: ~have[f] for f in FILLABLE}
    everywhere = np.ones(n, dtype=bool)

    def fill(name: str, where: np.ndarray, new, new_ok: np.ndarray | None = None) -> None:
        m = where & ~have[name]
        if new_ok is not None:
            m &= new_ok
        if np.ndim(new):
            values[name][m] = np.asarray(new)[m]
        else:
            values[name][m] = new
        have[name] |= m

    def u(name: str) -> np.ndarray:
        return streams.uniform(streams.stream_key(seed, f"cleanse.{name}"), entity)

    linked = np.asarray(pc.is_valid(clean.column("linked_import_mpan")).to_numpy(zero_copy_only=False), dtype=bool)

    def from_the_record() -> None:
        """1. What follows from the record's own (given or already filled) values."""
        seg, ct, arch = values["market_segment"], values["connection_type"], values["archetype"]
        fill("market_segment", have["connection_type"], _lookup(ct, _SEGMENT_OF_CT, "S").astype(str))
        fill("connection_type", have["market_segment"], _lookup(seg, _CT_OF_SEGMENT, "W").astype(str))
        fill("energy_direction", linked | (have["archetype"] & (arch == "pv_export")), "E")
        fill("domestic_premise", have["archetype"], np.isin(arch, DOMESTIC_ARCHETYPES + EXPORT_ARCHETYPES))

    from_the_record()
    # 2. Another record of the same MPAN (max: independent of record order). Only MPANs with
    # an empty field are grouped, so a complete extract pays nothing here.
    gaps = [f for f in PER_MPAN if not have[f].all()]
    if gaps:
        mpans = clean.column("mpan_core")
        need = np.logical_or.reduce([~have[f] for f in gaps])
        rows = np.flatnonzero(np.asarray(pc.is_in(mpans, pc.unique(pc.filter(mpans, pa.array(need)))).to_numpy(zero_copy_only=False), dtype=bool))
        sub = clean.take(pa.array(rows))  # given values only: a fill never feeds another MPAN row
        agg = sub.group_by("mpan_core").aggregate([(f, "max") for f in gaps])
        pos = pc.index_in(sub.column("mpan_core"), agg.column("mpan_core"))
        in_rows = np.zeros(n, dtype=bool)
        in_rows[rows] = True
        for f in gaps:
            other, other_ok = _values(pc.take(agg.column(f"{f}_max"), pos), types[f])
            full, full_ok = values[f].copy(), np.zeros(n, dtype=bool)
            full[rows], full_ok[rows] = other, other_ok
            fill(f, in_rows, full, full_ok)
        from_the_record()

    # 3. Defaults and draws from the population mix.
    fill("market_segment", everywhere, "S")  # neither given: the commonest site, a Smart home
    fill("connection_type", everywhere, "W")
    seg, ct = values["market_segment"], values["connection_type"]
    fill("energy_direction", everywhere, "I")
    export = values["energy_direction"] == "E"

    fill("domestic_premise", export, True)  # an export MPAN without more facts: a PV home
    fill("domestic_premise", seg == "S", u("domestic") < pop.domestic_share_of_smart)
    fill("domestic_premise", everywhere, False)
    domestic = values["domestic_premise"]

    mix = pop.archetypes
    key = streams.stream_key(seed, "cleanse.archetype")
    dom_draw = np.array(list(mix.domestic))[streams.choice(key, entity, np.array(list(mix.domestic.values())))]
    nd_draw = np.array(list(mix.non_domestic))[streams.choice(key, entity, np.array(list(mix.non_domestic.values())))]
    fill("archetype", export, "pv_export")
    fill("archetype", everywhere, np.where(domestic, dom_draw, nd_draw))
    arch = values["archetype"].astype(str)

    z = streams.normal(streams.stream_key(seed, "cleanse.annual_kwh"), entity)
    dom_f = _lookup(arch, DOMESTIC_KWH_FACTOR, 1.0).astype(np.float64)
    nd_f = _lookup(arch, NON_DOMESTIC_KWH_FACTOR, 1.0).astype(np.float64)
    kwh = np.select(
        [export, domestic, seg == "A"],
        [
            pop.pv_export_median_kwh * np.exp(0.35 * z),
            pop.domestic_median_kwh * dom_f * np.exp(pop.domestic_sigma * z),
            pop.advanced_median_kwh * nd_f * np.exp(pop.advanced_sigma * z),
        ],
        pop.non_domestic_median_kwh * nd_f * np.exp(pop.non_domestic_sigma * z),
    )
    bound = _lookup(ct, MAX_ANNUAL_KWH, MAX_ANNUAL_KWH_ANY).astype(np.float64)
    fill("annual_consumption_kwh", everywhere, np.round(np.clip(kwh, 50.0, bound), 0))

    fill("energisation_status", everywhere, "E")
    dcc_u = u("dcc")
    active = pop.dcc_active_share_of_smart
    fill("dcc_service_flag", seg == "S", np.where(dcc_u < active, "A", np.where(dcc_u < (1 + active) / 2, "I", "N")))
    fill("dcc_service_flag", everywhere, "N")

    # GSP group: clean records always have a distributor; only an iDNO's group can be empty.
    area = np.array([market.DNO_AREAS[d][1] for d in market.DNO_WEIGHTS])
    pick = streams.choice(streams.stream_key(seed, "cleanse.gsp"), entity, np.array(list(market.DNO_WEIGHTS.values())))
    fill("gsp_group", everywhere, area[pick])

    filled = np.zeros(n, dtype=bool)
    counts: dict[str, int] = {}
    for f in FILLABLE:
        filled |= missing[f]
        if missing[f].any():
            counts[f] = int(missing[f].sum())
    cols = {name: clean.column(name) for name in REGISTRATION_SCHEMA.names if name in clean.column_names}
    for f in FILLABLE:
        cols[f] = pa.array(values[f], types[f])
    cols["provenance"] = pa.array(np.where(filled, "manufactured", "actual"))
    table = pa.table({name: cols[name] for name in REGISTRATION_SCHEMA.names})
    return table.cast(REGISTRATION_SCHEMA), counts

