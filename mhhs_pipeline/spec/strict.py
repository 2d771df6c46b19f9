"""The base of every scenario model: unknown keys, non-finite numbers and booleans given
as numbers are refused, each error located at its field.

Pydantic's lax mode reads ``true`` as 1 for an int or float field and accepts ``.inf``
and ``.nan``; a scenario with ``mpans: true`` or ``share: .inf`` is a typo, never a
request, so both fail here instead of reaching the engine.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator


def _numeric(annotation: Any) -> bool:
    """A number, or a container (list, tuple, dict values, optional) of numbers only."""
    if annotation in (int, float):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _numeric(typing.get_args(annotation)[0])
    args = [a for a in typing.get_args(annotation) if a is not Ellipsis and a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        return bool(args) and all(_numeric(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        return bool(args) and all(_numeric(a) for a in args)
    if origin is dict and len(args) == 2:
        return _numeric(args[1])
    return False


def _has_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_bool(v) for v in value)
    if isinstance(value, dict):
        return any(_has_bool(v) for v in value.values())
    return False


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bools_as_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name)
        if field is not None and _has_bool(value) and _numeric(field.annotation):
            raise ValueError("true/false is not a number here; write the number (e.g. 1 or 0.5)")
        return value


def located_errors(err: ValidationError, reword: Callable[[dict, str], str] = lambda e, msg: msg) -> list[str]:
    """Every problem of ``err`` as ``field.path: message``; ``reword(error, message)`` may
    put pydantic's message in the reader's terms (its "Value error, " prefix is dropped)."""
    out = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        out.append(f"{loc}: {reword(e, e['msg'].removeprefix('Value error, '))}")
    return out
