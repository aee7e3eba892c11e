"""Bounded caches: the one way the engine and the service remember what they computed
(texts of names and grades, moments of ``created_at`` texts, rule selections...).

A cache is a plain dict, looked up inline (``cache.get(key)``: the hot path stays a dict
look-up); :func:`remember` stores a value computed on a miss and empties the cache first
when it is full, so that it never grows past its limit, whatever the input.
"""

from __future__ import annotations

from typing import TypeVar

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
