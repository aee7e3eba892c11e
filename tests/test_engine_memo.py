"""engine/memo.remember: the bounded caches never grow past their limit."""

from __future__ import annotations

from leadscore.engine.memo import remember


def test_remember_stores_and_returns_the_value() -> None:
    cache: dict[str, int] = {}
    assert remember(cache, "a", 1) == 1
    assert cache == {"a": 1}


def test_a_full_cache_is_emptied_before_the_next_value() -> None:
    cache: dict[int, int] = {}
    for n in range(10):
        remember(cache, n, n * n, limit=4)
        assert len(cache) <= 4
    assert cache[9] == 81  # the newest value is always kept
    assert 0 not in cache
