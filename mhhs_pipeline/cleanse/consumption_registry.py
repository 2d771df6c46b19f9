"""The clean registrations as a lookup for consumption rows: which registration row is in
force for (MPAN, UTC settlement day), by binary search over packed int64 keys.

``core.registrations.registrations_on_days`` answers the same question as an MPAN x day
matrix, which is the right shape for generation but grows with MPANs x days; a
consumption extract asks about scattered (MPAN, day) pairs, so this answers per row.
Registrations of one MPAN must not overlap (registration cleansing guarantees it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mhhs_pipeline.core import market

_DAY_SHIFT = 100_000  # day ordinals of 1900..2199 become positive
_DAY_BITS = np.int64(1 << 18)  # > _DAY_SHIFT + the last ordinal; MPAN (< 2**44) * 2**18 fits int64
_OPEN_END = np.int64(10_000_000)


def _strings(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(col.to_numpy(zero_copy_only=False)).astype(str)


def mpan_ints(cores: pa.Array | pa.ChunkedArray, valid: np.ndarray | None = None) -> np.ndarray:
    """13-digit MPAN core text as int64 (-1 where not ``valid`` or null)."""
    cores = cores.combine_chunks() if isinstance(cores, pa.ChunkedArray) else cores
    ok = np.asarray(pc.is_valid(cores).to_numpy(zero_copy_only=False), dtype=bool)
    if valid is not None:
        ok &= valid
    ints = pc.cast(pc.if_else(pa.array(ok), cores, "0"), pa.int64()).to_numpy(zero_copy_only=False)
    return np.where(ok, ints, -1).astype(np.int64)


@dataclass(frozen=True)
class RegistrationIndex:
    """Registration rows sorted by (MPAN, effective_from), as numpy arrays."""

    keys: np.ndarray  # int64 MPAN * 2**18 + shifted effective_from, ascending
    mpan: np.ndarray  # int64
    to_day: np.ndarray  # int64 inclusive effective_to ordinal (open: far future)
    known: np.ndarray  # sorted distinct MPAN ints
    supplier_id: np.ndarray  # str
    data_service_id: np.ndarray  # str
    ldso_id: np.ndarray  # str ('' when the distributor is unknown)
    connection_type: np.ndarray  # str
    energisation_status: np.ndarray  # str
    energy_direction: np.ndarray  # str

    @classmethod
    def build(cls, registrations: pa.Table) -> RegistrationIndex:
        """From clean registrations (``REGISTRATION_SCHEMA`` columns; extra columns ignored)."""
        mpan = mpan_ints(registrations.column("mpan_core"))
        frm = registrations.column("effective_from").cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
        to_col = registrations.column("effective_to").cast(pa.int32())
        to = np.where(
            np.asarray(to_col.is_null().to_numpy(zero_copy_only=False), dtype=bool),
            _OPEN_END,
            to_col.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64),
        )
        keys = mpan * _DAY_BITS + frm + _DAY_SHIFT
        order = np.argsort(keys, kind="stable")
        dist = _strings(registrations.column("distributor_id"))
        ldso = np.array([market.LDSO_BY_DISTRIBUTOR.get(d, "") for d in dist], dtype=object).astype(str)

        def col(name: str) -> np.ndarray:
            return _strings(registrations.column(name))[order]

        return cls(
            keys=keys[order],
            mpan=mpan[order],
            to_day=to[order],
            known=np.unique(mpan),
            supplier_id=col("supplier_id"),
            data_service_id=col("data_service_id"),
            ldso_id=ldso[order] if len(ldso) else ldso,
            connection_type=col("connection_type"),
            energisation_status=col("energisation_status"),
            energy_direction=col("energy_direction"),
        )

    def is_known(self, mpan: np.ndarray) -> np.ndarray:
        mpan = np.asarray(mpan, dtype=np.int64)
        if not len(self.known):
            return np.zeros(len(mpan), dtype=bool)
        pos = np.clip(np.searchsorted(self.known, mpan), 0, len(self.known) - 1)
        return (self.known[pos] == mpan) & (mpan >= 0)

    def in_force(self, mpan: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Index (into this index's arrays) of the registration in force, or -1."""
        mpan = np.asarray(mpan, dtype=np.int64)
        day = np.asarray(day, dtype=np.int64)
        if not len(self.keys):
            return np.full(len(mpan), -1, dtype=np.int64)
        q = mpan * _DAY_BITS + np.clip(day + _DAY_SHIFT, 0, int(_DAY_BITS) - 1)
        pos = np.searchsorted(self.keys, q, side="right") - 1
        cand = np.clip(pos, 0, None)
        ok = (pos >= 0) & (mpan >= 0) & (self.mpan[cand] == mpan) & (day <= self.to_day[cand])
        return np.where(ok, cand, -1)


def ldso_of_mpan(mpan: np.ndarray) -> np.ndarray:
    """LDSO MPID of each MPAN's distributor id (first two digits); '' when unknown or -1."""
    mpan = np.asarray(mpan, dtype=np.int64)
    prefix = np.where(mpan >= 0, mpan // 10**11, -1)
    out = np.full(len(mpan), "", dtype=object)
    for p in np.unique(prefix[prefix >= 0]):
        out[prefix == p] = market.LDSO_BY_DISTRIBUTOR.get(f"{int(p):02d}", "")
    return out.astype(str) if len(out) else np.zeros(0, dtype=str)
