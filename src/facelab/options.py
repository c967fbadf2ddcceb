"""Options declared once: type, default, bounds and help feed CLI flags, prompts, web forms and validation."""

from __future__ import annotations

import math
import os
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
    ``prompt``: the option's name in the user's words (``label``), shown in prompts and web forms; the seed's
    whole questions, where the CLI asks with them, are the CLI's (``facelab.cli._common.ask(wording=...)``).
    ``fixed`` marks architecture options: saved with a model and never changed after.
    ``numbered`` choices are offered as ``(1) a, (2) b …`` and the number is taken as well as the name.
    ``aliases``: (short answer, choice) pairs taken for the choice, like the seed's ``h``/``f`` face types.
    """

    name: str
    default: Any
    help: str
    type: type | None = None
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    prompt: str | None = None
    fixed: bool = False
    numbered: bool = False
    aliases: tuple[tuple[str, Any], ...] = ()

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
    def no_flag(self) -> str:
        """``--no-name``: the flag that turns a yes/no option off."""
        return "--no-" + self.flag[2:]

    def flag_names(self) -> str:
        """The CLI spelling of the option's flag: ``--name/--no-name`` for a yes/no option, else ``--name``."""
        return f"{self.flag}/{self.no_flag}" if self.kind is bool else self.flag

    def as_flags(self, value: Any) -> list[str]:
        """The command-line words that give ``value`` to this option (none for None)."""
        if self.kind is bool:
            return [self.flag if value else self.no_flag]
        return [] if value is None else [self.flag, str(value)]

    @property
    def label(self) -> str:
        return self.prompt or self.name.replace("_", " ").capitalize()

    def numbered_choices(self) -> str:
        """``(1) overlay, (2) hist-match, … (4) seamless (default)``: the choices numbered as the seed asks."""
        return ", ".join(f"({n}) {c}" + (" (default)" if c == self.default else "")
                         for n, c in enumerate(self.choices or (), start=1))

    def _by_number(self, value: Any) -> Any:
        """The choice an answer names by its number (``"2"``) or as the seed spells it (``"hist match"``)."""
        text = str(value).strip()
        if text.isascii() and text.isdigit() and len(text) < 6 and 1 <= int(text) <= len(self.choices):
            return self.choices[int(text) - 1]
        spelled = {str(c).replace("-", " "): c for c in self.choices}
        return spelled.get(text, value)

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
            if kind is not bool and isinstance(value, bool):
                raise ValueError(value)  # True is not a batch size (JSON files from strangers)
            if kind is str and not isinstance(value, (str, os.PathLike)):
                raise ValueError(value)
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
        except (TypeError, ValueError, OverflowError):
            raise OptionError(
                f"{self.flag} got {value!r}, which is not a {kind.__name__}",
                fix=self.describe_range() or self.help,
            ) from None
        if self.numbered and parsed not in self.choices:
            parsed = self._by_number(parsed)
        if self.aliases and isinstance(parsed, str):
            parsed = dict(self.aliases).get(parsed.strip().lower(), parsed)
        if self.choices is not None and parsed not in self.choices:
            raise OptionError(f"{self.flag} got {parsed!r}", fix=f"use {self.describe_range()}")
        if not self._in_range(parsed):
            rng = self.describe_range()
            what = "out of range" if rng else "not a number"
            raise OptionError(f"{self.flag} got {parsed!r}, {what}", fix=f"use {rng}" if rng else self.help)
        return parsed

    def _in_range(self, value: Any) -> bool:
        """NaN compares false with everything, so it would pass ``<`` checks; it is never a valid number, and
        infinity is not either where the option has a range."""
        if isinstance(value, float) and (math.isnan(value) or (math.isinf(value) and self.describe_range())):
            return False
        return not ((self.min is not None and value < self.min) or (self.max is not None and value > self.max))


def defaults(options: Iterable[Option]) -> dict[str, Any]:
    return {o.name: o.default for o in options}


def validate(options: Iterable[Option], values: Mapping[str, Any]) -> dict[str, Any]:
    """Every option's parsed value: ``values`` where given (not None), else the default."""
    out = {}
    for o in options:
        given = values.get(o.name)
        out[o.name] = o.parse(given) if given is not None else o.default
    return out
