"""Configuration models from TOML or JSON, with errors that name the file and the key.

Shared by every layer that takes a config (the agent, the simulator, the launcher): one strict
base (:class:`Strict`: unknown keys, NaN and infinity refused, frozen) and the number types every
config uses (:data:`Positive`, :data:`NonNegative`, :data:`Probability`); a model is validated from
the text of a ``.toml``/``.json`` file or a JSON string, raising ``ValueError`` as
``"<where>: <key.path>: <problem>"``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "NonNegative",
    "Positive",
    "Probability",
    "Strict",
    "describe_validation_error",
    "load_config_file",
    "parse_config",
]

#: a finite number > 0
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
#: a finite number >= 0
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
#: a number in [0, 1]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class Strict(BaseModel):
    """The base of every config model: unknown keys, NaN and infinity refused; frozen. A key that
    was renamed (``RENAMED``: old name -> new) is refused with its new name. A ``kind`` (the tag of
    a choice of sections) always counts as set, so ``model_dump(exclude_unset=True)``, the keys
    a config was given, still says which section it is."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)
    RENAMED: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            for old, new in cls.RENAMED.items():
                if old in raw:
                    raise ValueError(f"`{old}` is now called `{new}`")
        return raw

    def model_post_init(self, context: Any, /) -> None:
        if "kind" in type(self).model_fields:
            self.model_fields_set.add("kind")


M = TypeVar("M", bound=BaseModel)


def describe_validation_error(exc: ValidationError) -> str:
    """``"key.path: problem"`` for the first error of ``exc`` (an unknown key first: a typo in a
    required key's name is better named as the typo than as the missing key)."""
    errors = exc.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{key}: unknown key (a typo, or a key that belongs in another section?)"
    if first["type"] == "missing":
        return f"{key}: missing (this key is required)"
    return f"{key}: {first['msg']}"


def parse_config(model: type[M], text: str, fmt: Literal["toml", "json"], where: str) -> M:
    """Validate ``text`` (TOML or JSON) as ``model``; ``where`` prefixes every error message."""
    try:
        raw = tomllib.loads(text) if fmt == "toml" else json.loads(text)
        return model.model_validate(raw)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{where}: cannot parse: {exc}") from None
    except ValidationError as exc:
        raise ValueError(f"{where}: {describe_validation_error(exc)}") from None


def load_config_file(
    model: type[M], path: str | Path | None = None, text: str | None = None, what: str = "config"
) -> M:
    """``model`` from a ``.toml``/``.json`` file at ``path``, or from a JSON string ``text``
    (exactly one); a missing file is a ``ValueError`` naming ``what`` and the path."""
    if (path is None) == (text is None):
        raise ValueError(f"give exactly one of a {what} file or a JSON string")
    if text is not None:
        return parse_config(model, text, "json", "--json")
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what} file not found: {p}")
    return parse_config(model, p.read_text(), "toml" if p.suffix == ".toml" else "json", str(p))
