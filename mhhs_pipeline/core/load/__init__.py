"""The load model: weather, archetype components, PV, faults and the consumption generator.

Public surface:

- :func:`generate_consumption` -- canonical consumption of a block (the v1 contract).
- :func:`generate_load` -- the same, plus ``meter_reads_raw`` and ``ground_truth``.
- :data:`RAW_SCHEMA`, :data:`GROUND_TRUTH_SCHEMA` -- the two fault datasets' Arrow schemas.
"""

from mhhs_pipeline.core.load.faults import FAULT_TYPES, GROUND_TRUTH_SCHEMA, RAW_SCHEMA
from mhhs_pipeline.core.load.generator import (
    GeneratedConsumption,
    LoadOutputs,
    generate_consumption,
    generate_load,
)

__all__ = [
    "FAULT_TYPES",
    "GROUND_TRUTH_SCHEMA",
    "RAW_SCHEMA",
    "GeneratedConsumption",
    "LoadOutputs",
    "generate_consumption",
    "generate_load",
]
