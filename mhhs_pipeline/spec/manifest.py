"""The run manifest contract (``manifest.json``, see design.md) as a model that a reader
checks before it trusts a single field.

``validate`` reads manifests it did not write: a damaged, hand-edited or hostile one must
give a list of problems, each naming its field, never a traceback. Types are strict (a
``"rows": "12"`` is wrong, not 12); keys the contract does not name are kept (``totals``,
``generator``, ``cleansing`` ...). Every file path must be a safe path relative to the run
directory, so a manifest can never make a reader open ``../../etc/passwd``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from mhhs_pipeline.io.paths import ROLES, UnsafePathError, join, participant_prefix
from mhhs_pipeline.spec.strict import located_errors

__all__ = ["FileEntry", "ManifestError", "RunManifest", "parse_manifest"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """A manifest that cannot be trusted; ``problems`` lists each, naming its field."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)


class FileEntry(_Model):
    path: StrictStr
    participant_role: Literal[ROLES]  # type: ignore[valid-type]
    participant_id: StrictStr
    dataset: StrictStr
    format: StrictStr
    rows: Annotated[StrictInt, Field(ge=0)]
    bytes: Annotated[StrictInt, Field(ge=0)]
    sha256: StrictStr

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        try:
            return join(value)
        except UnsafePathError:
            raise ValueError(f"{value!r} is not a safe path inside the run directory") from None

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _SHA256.fullmatch(value):
            raise ValueError("must be 64 lower-case hex digits")
        return value

    @model_validator(mode="after")
    def _owner(self) -> FileEntry:
        try:
            participant_prefix(self.participant_role, self.participant_id)
        except UnsafePathError as exc:
            raise ValueError(str(exc)) from None
        return self


class Window(_Model):
    start: dt.date
    end: dt.date

    @field_validator("start", "end", mode="before")
    @classmethod
    def _iso(cls, value: object) -> dt.date:
        if not isinstance(value, str):
            raise ValueError("must be a date as text, YYYY-MM-DD")
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a date ({exc})") from None

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class RunManifest(_Model):
    run_id: StrictStr
    seed: StrictInt
    scenario_sha256: StrictStr | None = Field(...)
    window: Window | None = Field(...)  # None only for a cleansing run that kept no rows
    files: list[FileEntry]

    @model_validator(mode="after")
    def _unique(self) -> RunManifest:
        seen: set[str] = set()
        dupes = sorted({f.path for f in self.files if f.path in seen or seen.add(f.path)})
        if dupes:
            raise ValueError(f"files lists {dupes[:3]} more than once")
        return self


def parse_manifest(data: object) -> RunManifest:
    """The decoded JSON of a ``manifest.json`` as a checked model; raises ManifestError."""
    if not isinstance(data, dict):
        raise ManifestError([f"is a JSON {type(data).__name__}, not an object with run_id, seed, window and files"])
    try:
        return RunManifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(located_errors(exc, lambda e, msg: "missing" if e["type"] == "missing" else msg)) from None
