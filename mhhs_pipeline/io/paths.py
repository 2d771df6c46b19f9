"""Safe relative paths inside a run directory: ids from inputs never become paths unchecked.

Every pattern is applied with ``fullmatch``: ``re.match`` with a trailing ``$`` accepts a
final newline (``$`` also matches just before one), which would land a directory named
``id⏎``. The character classes are ASCII ranges, so no Unicode look-alike gets through.
"""

from __future__ import annotations

import re

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MPID = re.compile(r"[A-Z0-9]{4}")
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ROLES = ("supplier", "data_service", "ldso", "central")


class UnsafePathError(ValueError):
    """An id or path segment that could escape its prefix."""


def safe_segment(value: str, what: str) -> str:
    if not isinstance(value, str) or not _SEGMENT.fullmatch(value) or ".." in value:
        raise UnsafePathError(f"{what} {value!r} is not allowed in a path: use letters, digits, '.', '_' or '-'")
    return value


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str):
        raise UnsafePathError(f"run id {run_id!r} is not text: use letters, digits, '.', '_' or '-' (max 128)")
    if run_id == "":
        raise UnsafePathError("run id is empty: give a run id (letters, digits, '.', '_' or '-'; max 128) or leave --run-id out")
    if not RUN_ID_PATTERN.fullmatch(run_id) or ".." in run_id:
        raise UnsafePathError(f"run id {run_id!r} is not allowed: use letters, digits, '.', '_' or '-' (max 128)")
    return run_id


def participant_prefix(role: str, participant_id: str) -> str:
    """``<role>/<participant_id>``: MPIDs (4 upper-case alphanumerics) or ``central``."""
    if role not in ROLES:
        raise UnsafePathError(f"unknown participant role {role!r}; expected one of {ROLES}")
    if role == "central":
        if participant_id != "central":
            raise UnsafePathError(f"the central copy's id must be 'central', not {participant_id!r}")
    elif not isinstance(participant_id, str) or not _MPID.fullmatch(participant_id):
        raise UnsafePathError(
            f"{role} id {participant_id!r} is not an MPID (4 upper-case letters or digits); refusing to use it as a path"
        )
    return f"{role}/{participant_id}"


def join(*segments: str) -> str:
    for s in segments:
        for part in s.split("/"):
            safe_segment(part, "path segment")
    return "/".join(segments)
