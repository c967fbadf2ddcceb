"""A named collection of plug-ins (detectors, models, blend modes, sort methods ...)."""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from facelab.errors import OptionError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a user-facing name to a plug-in.

    >>> detectors = Registry[type]("detector")
    >>> @detectors.register("hog")
    ... class Hog: ...
    >>> detectors.get("hog") is Hog
    True
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, help: str = "") -> Callable[[T], T]:
        """Register under ``name``; ``help`` says in a few words what it does, for the option that chooses it."""
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = item
            if help:
                self._help[name] = help
            return item

        return add

    def describe(self) -> str:
        """``name = help; …`` for every entry registered with a help, in order (an option's help text)."""
        return "; ".join(f"{name} = {text}" for name, text in self._help.items())

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"choose one of: {', '.join(self.names())}"
            raise OptionError(f"unknown {self.kind} {name!r}", fix=hint) from None

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)
