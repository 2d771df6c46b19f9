"""Market reference facts embedded in the product (it must run without MDD files).

Distributor ids and their LDSO MPIDs are from Elexon Market Domain Data (version 377,
role R); ids 10-23 are the 14 DNO areas, each with one GSP group; 24 and up are iDNOs,
which can operate in any GSP group. Tests cross-check this table against the MDD.
"""

from __future__ import annotations

from mhhs_pipeline.spec.load_model import GSP_GROUPS as _SPEC_GSP_GROUPS

GSP_GROUPS: tuple[str, ...] = _SPEC_GSP_GROUPS  # one list: the scenario validates against it too
SCOTTISH_GSP_GROUPS = frozenset({"_N", "_P"})

# distributor id -> (LDSO MPID, GSP group) for the 14 DNOs.
DNO_AREAS: dict[str, tuple[str, str]] = {
    "10": ("EELC", "_A"),
    "11": ("EMEB", "_B"),
    "12": ("LOND", "_C"),
    "13": ("MANW", "_D"),
    "14": ("MIDE", "_E"),
    "15": ("NEEB", "_F"),
    "16": ("NORW", "_G"),
    "17": ("HYDE", "_P"),
    "18": ("SPOW", "_N"),
    "19": ("SEEB", "_J"),
    "20": ("SOUT", "_H"),
    "21": ("SWAE", "_K"),
    "22": ("SWEB", "_L"),
    "23": ("YELG", "_M"),
}

# Active iDNOs (distributor id -> MPID).
IDNOS: dict[str, str] = {
    "24": "IPNL",
    "25": "LENG",
    "26": "GUCL",
    "27": "ETCL",
    "29": "HARL",
    "30": "PENL",
    "31": "UKPD",
    "32": "UDNL",
    "33": "GGEN",
    "34": "MPDL",
    "35": "FEAL",
    "36": "VATT",
    "37": "FORB",
    "38": "INDI",
    "39": "STRK",
    "40": "UTAL",
}

LDSO_BY_DISTRIBUTOR: dict[str, str] = {**{k: v[0] for k, v in DNO_AREAS.items()}, **IDNOS}

# Rough shares of GB metering points by DNO area (Ofgem/DNO customer counts, rounded);
# used only to weight the synthetic population, and overridable later if needed.
DNO_WEIGHTS: dict[str, float] = {
    "10": 3.6, "11": 2.6, "12": 2.3, "13": 1.5, "14": 2.5, "15": 1.6, "16": 2.4,
    "17": 0.8, "18": 2.0, "19": 2.3, "20": 3.0, "21": 1.1, "22": 1.5, "23": 2.3,
}  # fmt: skip

MARKET_SEGMENTS = ("S", "A", "U")
CONNECTION_TYPES = ("W", "L", "H", "E", "U")
ENERGISATION_STATUSES = ("E", "D", "U")
ENERGY_DIRECTIONS = ("I", "E")
MEASUREMENT_QUANTITIES = ("AI", "AE", "RI", "RE")
DCC_SERVICE_FLAGS = ("A", "I", "N")

# DI-083 consumption quality codes and DI-076 estimation reasons (MHHS data catalogue).
QUALITY_ACTUAL = "A"
QUALITY_ESTIMATE = "E"
ESTIMATION_REASONS = {
    1: "OptOut",
    2: "Missing",
    3: "Invalid",
    4: "CommsFault",
    5: "LTV",
    6: "Disabled",
    7: "De-energised",
    8: "Disconnected",
    9: "Consumption amendment",
    10: "NonSmart",
}


def gsp_group_of_distributor(distributor_id: str) -> str | None:
    """The single GSP group of a DNO area, or None for an iDNO (any group)."""
    area = DNO_AREAS.get(distributor_id)
    return area[1] if area else None
