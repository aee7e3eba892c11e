"""Bounded caches: the one way the engine and the service remember what they computed
(texts of names and grades, moments of ``created_at`` texts, rule selections...).

A cache is a plain dict, looked up inline (``cache.get(key)``: the hot path stays a dict
look-up); :func:`remember` stores a value computed on a miss and empties the cache first
when it is full, so that it never grows past its limit, whatever the input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

K = TypeVar("K")
V = TypeVar("V")

LIMIT = 4096  # entries of a cache unless it says otherwise


def remember(cache: dict[K, V], key: K, value: V, limit: int = LIMIT) -> V:
    """Store ``value`` under ``key`` (``cache`` emptied first when it holds ``limit``
    entries) and return it."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value


class once(Generic[V]):  # noqa: N801 - used as a decorator, like functools.cached_property
    """A property computed at its first look-up and kept in the instance's ``__dict__``,
    where later look-ups find it without calling anything: ``functools.cached_property``
    without its lock (perf, issue #3: Python 3.11's takes a lock at every first look-up,
    and the service looks up the rounded score of every lead it scores once or more).
    Two threads that look it up at once both compute it; the function must be pure."""

    def __init__(self, func: Callable[[Any], V]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> once[V]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> V: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> V | once[V]:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.func(instance)
        return value
