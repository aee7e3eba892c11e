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


def test_once_computes_at_the_first_look_up_only_and_keeps_the_value_on_the_instance() -> None:
    from leadscore.engine.memo import once

    calls: list[int] = []

    class Thing:
        def __init__(self, n: int) -> None:
            self.n = n

        @once
        def doubled(self) -> int:
            """Twice n."""
            calls.append(self.n)
            return 2 * self.n

    a, b = Thing(1), Thing(5)
    assert (a.doubled, a.doubled, b.doubled, a.doubled) == (2, 2, 10, 2)
    assert calls == [1, 5]  # once per instance
    assert a.__dict__["doubled"] == 2
    assert isinstance(Thing.doubled, once) and Thing.doubled.__doc__ == "Twice n."


def test_a_lead_scores_rounded_score_is_computed_once_and_survives_replace_and_pickle() -> None:
    import dataclasses
    import pickle

    from leadscore.engine.scoring import LeadScore

    score = LeadScore("L1", 10.125, {}, {}, {}, None, ())
    assert score.score == 10.13  # halves away from zero
    assert "score" in score.__dict__
    assert dataclasses.replace(score, total=-2.625).score == -2.63  # replace: its own score
    assert pickle.loads(pickle.dumps(score)).score == 10.13
    assert score == LeadScore("L1", 10.125, {}, {}, {}, None, ())  # not a field: equality unchanged
