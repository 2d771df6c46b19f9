"""Row rules: normalise one chunk of text records and flag what is wrong with each.

Input is a chunk of an extract with every field as text (as read, untrimmed) under the
canonical column names, plus ``record`` (1-based data record number) and any columns we
do not use as ``other:<header>``. Output keeps the
original text (``raw_<column>``, for the quarantine), the normalised typed values under
the canonical names (null where a field is empty *or* invalid), a uint64 ``reasons``
mask (see ``reasons.py``) and the MPIDs each record routes to. Everything is vectorised
with Arrow compute so a chunk of 100k rows costs milliseconds per column.

Repairs are safe rewrites only: whitespace, case, the underscore of a GSP group, date
layouts, separators inside an MPAN (digits never change), Y/N booleans, and fields that
follow from the MPAN itself (distributor id, a DNO's GSP group). Anything else that is
wrong is flagged, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.cleanse.columns import INPUT_COLUMNS
from mhhs_pipeline.cleanse.reasons import bit
from mhhs_pipeline.core import market
from mhhs_pipeline.core.mpan import WEIGHTS
from mhhs_pipeline.spec.archetypes import ALL_ARCHETYPES

# Highest believable annual consumption by connection type [kWh/year]: the connection run
# flat out all year (whole current ~100 A three-phase ~ 72 kW; LV CT ~ 2 MVA; HV ~ 20 MVA;
# EHV ~ 500 MW), rounded up. Beyond that the value is a typo or a unit error.
MAX_ANNUAL_KWH = {"W": 1e6, "U": 1e6, "L": 2e7, "H": 2e8, "E": 5e9}
MAX_ANNUAL_KWH_ANY = max(MAX_ANNUAL_KWH.values())
YEAR_RANGE = (1900, 2199)
OTHER_PREFIX = "other:"  # input columns that are not ours travel as "other:<folded header>"  # dates outside are typos (0026-..., 9999-12-31 "open" markers...)

_TRUE = ["true", "t", "yes", "y", "1"]
_FALSE = ["false", "f", "no", "n", "0"]
NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_UNSAFE = r"^[=+\-@]|[\x00-\x1f\x7f]"
_STRING_NORM = (
    "mpan_core", "supplier_id", "data_service_id", "metering_service_id", "distributor_id", "gsp_group",
    "market_segment", "connection_type", "energisation_status", "energy_direction", "dcc_service_flag",
    "archetype", "linked_import_mpan",
)  # fmt: skip


@dataclass
class RepairLog:
    """Repairs made, per (repair code, field): count, first record, an example before/after."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    examples: dict[tuple[str, str], tuple[int, str, str]] = field(default_factory=dict)

    def add(self, code: str, column: str, mask: np.ndarray, records: np.ndarray, before: pa.Array, after: pa.Array) -> None:
        n = int(np.count_nonzero(mask))
        if not n:
            return
        key = (code, column)
        self.counts[key] = self.counts.get(key, 0) + n
        i = int(np.argmax(mask))
        rec = int(records[i])
        if key not in self.examples or rec < self.examples[key][0]:
            self.examples[key] = (rec, _shown(before[i].as_py()), _shown(after[i].as_py()))

    def merge(self, other: RepairLog) -> None:
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        for key, ex in other.examples.items():
            if key not in self.examples or ex[0] < self.examples[key][0]:
                self.examples[key] = ex


def _shown(value: object) -> str:
    return "(empty)" if value is None or value == "" else str(value)


def _np(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Boolean Arrow array as numpy (nulls count as False)."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _null_where(values: pa.Array, keep: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(keep), values, pa.scalar(None, values.type))


class Chunk:
    """One chunk being normalised: shared state for the per-field rules below."""

    def __init__(self, chunk: pa.Table, log: RepairLog):
        self.n = chunk.num_rows
        self.chunk = chunk
        self.log = log
        self.records = chunk.column("record").to_numpy()
        self.reasons = np.zeros(self.n, dtype=np.uint64)
        self.norm: dict[str, pa.Array] = {}

    def raw(self, name: str) -> pa.Array:
        if name in self.chunk.column_names:
            return self.chunk.column(name).combine_chunks().cast(pa.string())
        return pa.nulls(self.n, pa.string())

    def flag(self, mask: np.ndarray, code: str, column: str | None = None) -> None:
        self.reasons[mask] |= bit(code, column)

    def text(self, name: str) -> tuple[pa.Array, np.ndarray]:
        """(trimmed text, empty mask); counts the trim repair and flags injection text."""
        raw = self.raw(name)
        trimmed = pc.utf8_trim_whitespace(raw)
        empty = _np(pc.fill_null(pc.equal(trimmed, ""), True))
        self.log.add("TRIM_WHITESPACE", name, _np(pc.not_equal(raw, trimmed)) & ~empty, self.records, raw, trimmed)
        if name != "annual_consumption_kwh":  # a negative number is its own rule there
            self.flag(_np(pc.match_substring_regex(trimmed, _UNSAFE)) & ~empty, "UNSAFE_VALUE")
        return trimmed, empty

    def case(self, name: str, text: pa.Array, empty: np.ndarray, lower: bool = False) -> pa.Array:
        out = pc.utf8_lower(text) if lower else pc.utf8_upper(text)
        changed = _np(pc.not_equal(out, text)) & ~empty
        self.log.add("LOWER_CASE" if lower else "UPPER_CASE", name, changed, self.records, text, out)
        return out


def mpan_field(c: Chunk, name: str) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray]:
    """(core text without separators, empty, 13-digit mask, check-digit-ok mask)."""
    text, empty = c.text(name)
    core = pc.replace_substring_regex(text, r"[ \-]", "")
    c.log.add("MPAN_SEPARATORS", name, _np(pc.not_equal(core, text)) & ~empty, c.records, text, core)
    is13 = _np(pc.match_substring_regex(core, r"^\d{13}$"))
    ints = pc.cast(pc.if_else(pa.array(is13), core, "0000000000000"), pa.int64()).to_numpy()
    digits = (ints[:, None] // 10 ** np.arange(12, -1, -1, dtype=np.int64)) % 10
    ok = is13 & ((digits[:, :12] @ np.array(WEIGHTS, dtype=np.int64)) % 11 % 10 == digits[:, 12])
    return core, empty, is13, ok


def date_field(c: Chunk, name: str) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(date32 or null, empty, bad) for one date column; YYYYMMDD etc. become ISO."""
    text, empty = c.text(name)
    iso = _np(pc.match_substring_regex(text, r"^\d{4}-\d{2}-\d{2}$"))
    candidate = text
    if (~iso & ~empty).any():  # other layouts are rare: only then pay for their patterns
        compact = _np(pc.match_substring_regex(text, r"^\d{8}$"))
        slashed = _np(pc.match_substring_regex(text, r"^\d{4}/\d{2}/\d{2}$"))
        midnight = _np(pc.match_substring_regex(text, r"^\d{4}-\d{2}-\d{2}[T ]00:00(:00(\.0+)?)?(Z|[+-]00:?00)?$"))
        from_compact = pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(text, 0, 4), pc.utf8_slice_codeunits(text, 4, 6), pc.utf8_slice_codeunits(text, 6, 8), "-"
        )
        candidate = pc.case_when(
            pc.make_struct(pa.array(iso), pa.array(compact), pa.array(slashed), pa.array(midnight)),
            text,
            from_compact,
            pc.replace_substring(text, "/", "-"),
            pc.utf8_slice_codeunits(text, 0, 10),
        )
    parsed = pc.strptime(candidate, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime rolls 2026-02-30 over to March: only a value that prints back the same is a date.
    exact = _np(pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), candidate))
    year = pc.fill_null(pc.year(parsed), 0).to_numpy(zero_copy_only=False)
    good = exact & (year >= YEAR_RANGE[0]) & (year <= YEAR_RANGE[1])
    c.log.add("DATE_FORMAT", name, good & ~iso, c.records, text, candidate)
    return _null_where(pc.cast(parsed, pa.date32()), good), empty, ~empty & ~good


def _code(c: Chunk, name: str, allowed: tuple[str, ...], code: str) -> None:
    text, empty = c.text(name)
    upper = c.case(name, text, empty)
    valid = _np(pc.is_in(upper, pa.array(allowed)))
    c.flag(~empty & ~valid, code)
    c.norm[name] = _null_where(upper, valid)


def _mpid(c: Chunk, name: str, code: str) -> None:
    text, empty = c.text(name)
    upper = c.case(name, text, empty)
    valid = _np(pc.match_substring_regex(upper, r"^[A-Z0-9]{4}$"))
    c.flag(empty, "MISSING_FIELD", name)
    c.flag(~empty & ~valid, code)
    c.norm[name] = _null_where(upper, valid)


def normalise(chunk: pa.Table, log: RepairLog | None = None) -> pa.Table:
    """Normalise and check one chunk (text columns + ``record``); see the module docstring."""
    c = Chunk(chunk, log if log is not None else RepairLog())

    core, empty, is13, ok = mpan_field(c, "mpan_core")
    c.flag(empty, "MISSING_FIELD", "mpan_core")
    c.flag(~empty & ~is13, "MPAN_FORMAT")
    c.flag(is13 & ~ok, "MPAN_CHECK_DIGIT")
    c.norm["mpan_core"] = _null_where(core, ok)

    frm, from_empty, from_bad = date_field(c, "effective_from")
    to, _, to_bad = date_field(c, "effective_to")
    c.flag(from_empty, "MISSING_FIELD", "effective_from")
    c.flag(from_bad, "BAD_DATE", "effective_from")
    c.flag(to_bad, "BAD_DATE", "effective_to")
    c.flag(_np(pc.less(to, frm)), "EFFECTIVE_TO_BEFORE_FROM")
    c.norm["effective_from"], c.norm["effective_to"] = frm, to

    _mpid(c, "supplier_id", "INVALID_SUPPLIER_ID")
    _mpid(c, "data_service_id", "INVALID_DATA_SERVICE_ID")
    _mpid(c, "metering_service_id", "INVALID_METERING_SERVICE_ID")

    # Distributor: the MPAN's first two digits are the truth; an empty field follows from them.
    known = pa.array(sorted(market.LDSO_BY_DISTRIBUTOR))
    dist_text, dist_empty = c.text("distributor_id")
    prefix = pc.utf8_slice_codeunits(core, 0, 2)
    derive = dist_empty & ok
    c.log.add("DISTRIBUTOR_DERIVED", "distributor_id", derive, c.records, dist_text, prefix)
    dist = pc.if_else(pa.array(derive), prefix, dist_text)
    dist_known = _np(pc.is_in(dist, known))
    c.flag(~dist_empty & ~dist_known, "UNKNOWN_DISTRIBUTOR")
    c.flag(derive & ~dist_known, "UNKNOWN_DISTRIBUTOR")
    mismatch = ~dist_empty & dist_known & ok & ~_np(pc.equal(dist, prefix))
    c.flag(mismatch, "DISTRIBUTOR_MPAN_MISMATCH")
    c.norm["distributor_id"] = _null_where(dist, dist_known & ~mismatch)

    # GSP group: 'a' -> '_A'; a DNO area has exactly one, an iDNO may sit in any.
    gsp_text, gsp_empty = c.text("gsp_group")
    gsp_upper = c.case("gsp_group", gsp_text, gsp_empty)
    letter = _np(pc.match_substring_regex(gsp_upper, r"^[A-Z]$"))
    gsp = pc.if_else(pa.array(letter), pc.binary_join_element_wise("_", gsp_upper, ""), gsp_upper)
    c.log.add("GSP_UNDERSCORE", "gsp_group", letter, c.records, gsp_upper, gsp)
    dno_gsp = pc.index_in(c.norm["distributor_id"], pa.array(list(market.DNO_AREAS)))
    area_gsp = pc.take(pa.array([g for _, g in market.DNO_AREAS.values()]), dno_gsp)
    gsp_valid = _np(pc.is_in(gsp, pa.array(market.GSP_GROUPS)))
    c.flag(~gsp_empty & ~gsp_valid, "UNKNOWN_GSP_GROUP")
    c.flag(gsp_valid & _np(pc.not_equal(gsp, area_gsp)), "GSP_DISTRIBUTOR_MISMATCH")
    gsp_derive = gsp_empty & _np(pc.is_valid(area_gsp))
    c.log.add("GSP_DERIVED", "gsp_group", gsp_derive, c.records, gsp_text, area_gsp)
    c.norm["gsp_group"] = pc.if_else(pa.array(gsp_derive), area_gsp, _null_where(gsp, gsp_valid))

    _code(c, "market_segment", market.MARKET_SEGMENTS, "UNKNOWN_SEGMENT")
    _code(c, "connection_type", market.CONNECTION_TYPES, "UNKNOWN_CONNECTION_TYPE")
    _code(c, "energisation_status", market.ENERGISATION_STATUSES, "UNKNOWN_ENERGISATION")
    _code(c, "energy_direction", market.ENERGY_DIRECTIONS, "UNKNOWN_ENERGY_DIRECTION")
    _code(c, "dcc_service_flag", market.DCC_SERVICE_FLAGS, "UNKNOWN_DCC_FLAG")

    arch_text, arch_empty = c.text("archetype")
    arch = c.case("archetype", arch_text, arch_empty, lower=True)
    arch_valid = _np(pc.is_in(arch, pa.array(ALL_ARCHETYPES)))
    c.flag(~arch_empty & ~arch_valid, "UNKNOWN_ARCHETYPE")
    c.norm["archetype"] = _null_where(arch, arch_valid)

    dom_text, dom_empty = c.text("domestic_premise")
    dom_lower = pc.utf8_lower(dom_text)
    is_true, is_false = _np(pc.is_in(dom_lower, pa.array(_TRUE))), _np(pc.is_in(dom_lower, pa.array(_FALSE)))
    spelled = (is_true | is_false) & ~_np(pc.is_in(dom_text, pa.array(["true", "false"])))
    c.log.add("BOOLEAN_FORMAT", "domestic_premise", spelled, c.records, dom_text, pa.array(is_true))
    c.flag(~dom_empty & ~is_true & ~is_false, "BAD_DOMESTIC_FLAG")
    c.norm["domestic_premise"] = _null_where(pa.array(is_true), is_true | is_false)

    kwh_text, kwh_empty = c.text("annual_consumption_kwh")
    numeric = _np(pc.match_substring_regex(kwh_text, NUMBER_PATTERN))
    c.flag(~kwh_empty & ~numeric & _np(pc.match_substring_regex(kwh_text, _UNSAFE)), "UNSAFE_VALUE")
    kwh = pc.cast(pc.if_else(pa.array(numeric), kwh_text, "0"), pa.float64()).to_numpy()
    ct = c.norm["connection_type"]
    bound = np.full(c.n, MAX_ANNUAL_KWH_ANY)
    for code_, limit in MAX_ANNUAL_KWH.items():
        bound[_np(pc.equal(ct, code_))] = limit
    c.flag(~kwh_empty & ~numeric, "ANNUAL_KWH_NOT_NUMERIC")
    c.flag(numeric & (kwh < 0), "ANNUAL_KWH_NEGATIVE")
    c.flag(numeric & ~(kwh <= bound) & ~(kwh < 0), "ANNUAL_KWH_ABSURD")  # ~(<=) also catches inf/nan
    c.norm["annual_consumption_kwh"] = _null_where(pa.array(kwh), numeric & (kwh >= 0) & (kwh <= bound))

    link, link_empty, _, link_ok = mpan_field(c, "linked_import_mpan")
    c.flag(~link_empty & ~link_ok, "BAD_LINKED_MPAN")
    c.norm["linked_import_mpan"] = _null_where(link, link_ok)

    return _assemble(c, ok)


def _assemble(c: Chunk, mpan_ok: np.ndarray) -> pa.Table:
    # Routing ids for the quarantine split: valid MPIDs only; the LDSO follows the MPAN prefix
    # when the MPAN is good (the design's rule), else a known distributor id as given.
    prefix = pc.utf8_slice_codeunits(c.norm["mpan_core"], 0, 2)
    ldso_keys = pa.array(list(market.LDSO_BY_DISTRIBUTOR))
    ldso_vals = pa.array(list(market.LDSO_BY_DISTRIBUTOR.values()))
    given = pc.utf8_trim_whitespace(c.raw("distributor_id"))
    dist_for_route = pc.if_else(pa.array(mpan_ok), prefix, given)
    cols: dict[str, pa.Array] = {
        "record": pa.array(c.records, pa.int64()),
        "reasons": pa.array(c.reasons, pa.uint64()),
        "route_supplier_id": c.norm["supplier_id"],
        "route_data_service_id": c.norm["data_service_id"],
        "route_ldso_id": pc.take(ldso_vals, pc.index_in(dist_for_route, ldso_keys)),
    }
    for name in INPUT_COLUMNS:
        value = c.norm[name]
        cols[name] = value.cast(pa.string()) if name in _STRING_NORM else value
    for name in INPUT_COLUMNS:
        cols[f"raw_{name}"] = c.raw(name)
    for name in c.chunk.column_names:  # columns of the file we do not use, kept for the quarantine
        if name.startswith(OTHER_PREFIX):
            cols[name] = c.raw(name)
    return pa.table(cols)
