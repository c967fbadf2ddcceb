"""Options declared once: type, default, bounds and help feed CLI flags, prompts, web forms and validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from facelab.errors import OptionError

_TRUE = {"y", "yes", "true", "1", "on"}
_FALSE = {"n", "no", "false", "0", "off"}


@dataclass(frozen=True)
class Option:
    """One user-settable option.

    ``name`` is a Python identifier; its CLI flag is ``--name-with-dashes``. ``type`` is inferred from
    ``default`` unless given (it must be given when the default is None, meaning "not set").
    ``fixed`` marks architecture options: saved with a model and never changed after.
    ``question`` replaces the generated prompt text (for the seed's own wording).
    """

    name: str
    default: Any
    help: str
    type: type | None = None
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    prompt: str | None = None
    question: str | None = None
    fixed: bool = False

    @property
    def kind(self) -> type:
        if self.type is not None:
            return self.type
        if self.default is None:
            raise TypeError(f"option {self.name}: give type= when the default is None")
        return type(self.default)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def label(self) -> str:
        return self.prompt or self.name.replace("_", " ").capitalize()

    def describe_range(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.min is not None and self.max is not None:
            return f"{self.min:g} to {self.max:g}"
        if self.min is not None:
            return f">= {self.min:g}"
        if self.max is not None:
            return f"<= {self.max:g}"
        return ""

    def parse(self, value: Any) -> Any:
        """Convert ``value`` (a string from a prompt or flag, or a Python value) and check its range."""
        if value is None:
            if self.default is None:
                return None
            raise OptionError(f"option {self.flag} needs a value", fix=self.describe_range() or self.help)
        kind = self.kind
        try:
            if kind is bool:
                if isinstance(value, bool):
                    parsed: Any = value
                elif str(value).strip().lower() in _TRUE:
                    parsed = True
                elif str(value).strip().lower() in _FALSE:
                    parsed = False
                else:
                    raise ValueError(value)
            elif kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            else:
                parsed = kind(value)
        except (TypeError, ValueError):
            raise OptionError(
                f"{self.flag} got {value!r}, which is not a {kind.__name__}",
                fix=self.describe_range() or self.help,
            ) from None
        if self.choices is not None and parsed not in self.choices:
            raise OptionError(f"{self.flag} got {parsed!r}", fix=f"use {self.describe_range()}")
        if (self.min is not None and parsed < self.min) or (self.max is not None and parsed > self.max):
            raise OptionError(f"{self.flag} got {parsed!r}, out of range", fix=f"use {self.describe_range()}")
        return parsed


def defaults(options: Iterable[Option]) -> dict[str, Any]:
    return {o.name: o.default for o in options}


def validate(options: Iterable[Option], values: Mapping[str, Any]) -> dict[str, Any]:
    """Every option's parsed value: ``values`` where given (not None), else the default."""
    out = {}
    for o in options:
        given = values.get(o.name)
        out[o.name] = o.parse(given) if given is not None else o.default
    return out
