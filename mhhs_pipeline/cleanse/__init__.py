"""Cleansing of participant registration extracts: pure rules on Arrow tables.

Flow (the I/O around it is ``mhhs_pipeline.io.extract``): text chunks of an extract
-> ``normalise`` (row rules, repairs, reason masks) -> spread by ``bucket_of`` so every
record of an MPAN meets in one bucket -> ``cleanse_bucket`` (duplicates, overlaps,
manufactured attributes, quarantine rows, counts) -> ``render_markdown``.
No file, network or orchestration access here.
"""

from mhhs_pipeline.cleanse.bucket import BucketResult, cleanse_bucket
from mhhs_pipeline.cleanse.columns import (
    INPUT_COLUMNS,
    REQUIRED_COLUMNS,
    canonical_name,
    map_header,
)
from mhhs_pipeline.cleanse.groups import bucket_of
from mhhs_pipeline.cleanse.quarantine import QUARANTINE_SCHEMA
from mhhs_pipeline.cleanse.reasons import REASON_CODES, REPAIR_CODES
from mhhs_pipeline.cleanse.report import CleanseStats, ReconciliationError, render_markdown
from mhhs_pipeline.cleanse.rules import RepairLog, normalise

__all__ = [
    "INPUT_COLUMNS",
    "QUARANTINE_SCHEMA",
    "REASON_CODES",
    "REPAIR_CODES",
    "REQUIRED_COLUMNS",
    "BucketResult",
    "CleanseStats",
    "ReconciliationError",
    "RepairLog",
    "bucket_of",
    "canonical_name",
    "cleanse_bucket",
    "map_header",
    "normalise",
    "render_markdown",
]
