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

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = item
            return item

        return add

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
