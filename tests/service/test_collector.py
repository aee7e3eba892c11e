"""The cyclic garbage collector is paused while batches are scored, and restored after."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest

from leadscore.service import scoring
from leadscore.service.scoring import collector_paused


def test_paused_inside_and_restored_after_even_on_error() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("bad batch")
    assert gc.isenabled()


def test_a_collector_disabled_by_the_application_stays_disabled() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_batches_restore_it_when_the_last_one_ends() -> None:
    entered, release = threading.Event(), threading.Event()

    def other_batch() -> None:
        with collector_paused():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other_batch)
    thread.start()
    assert entered.wait(10)
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other batch still runs
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_a_pause_inside_a_pause_of_the_same_thread_collects_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The route pauses around the service's pause: the inner one is no batch of its own (a
    collection at its end walked the whole batch, still alive)."""
    monkeypatch.setattr(scoring, "YOUNG_EVERY", 0.0)  # any batch boundary would collect
    started: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    with collector_paused():
        gc.callbacks.append(seen)
        try:
            with collector_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()
        finally:
            gc.callbacks.remove(seen)
    assert started == []
    assert gc.isenabled()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_old_cyclic_garbage_is_freed_while_batches_keep_overlapping(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads whose pauses overlap without end (the count never drops to 0, the collector
    never runs by itself): cyclic garbage that reached the oldest generation is still freed,
    by the full collections made at most every FULL_EVERY seconds."""
    monkeypatch.setattr(scoring, "FULL_EVERY", 0.3)
    monkeypatch.setattr(scoring, "YOUNG_EVERY", 0.05)
    stop = threading.Event()
    # cycles that live through a batch and so reach generation 2 (as in the review's
    # reproduction); weak references tell when they are freed
    refs: list[weakref.ref[_Cycle]] = []
    refs_lock = threading.Lock()

    def batches() -> None:
        while not stop.is_set():
            with collector_paused():
                held = [_Cycle() for _ in range(50)]
                with refs_lock:
                    refs.extend(weakref.ref(cycle) for cycle in held)
                time.sleep(0.005)
            del held

    with collector_paused():  # held throughout: the count never drops to 0
        old = _Cycle()
        gc.collect(1)  # still reachable: promoted to the oldest generation
        assert gc.is_tracked(old) and any(obj is old for obj in gc.get_objects(2))
        old_ref = weakref.ref(old)
        del old
        threads = [threading.Thread(target=batches) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + 10
            while old_ref() is not None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not gc.isenabled()
            assert old_ref() is None, "garbage in generation 2 never freed while paused"
            time.sleep(0.5)  # two more full collections
            with refs_lock:
                early = refs[: len(refs) // 2]
            alive = sum(ref() is not None for ref in early)
            assert alive == 0, f"{alive} of {len(early)} cycles of early batches still alive"
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
    assert gc.isenabled()


def test_no_collections_are_made_when_the_application_disabled_the_collector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scoring, "FULL_EVERY", 0.0)
    monkeypatch.setattr(scoring, "YOUNG_EVERY", 0.0)
    gc.disable()
    try:
        before = [stat["collections"] for stat in gc.get_stats()]
        with collector_paused(), collector_paused():
            pass
        assert [stat["collections"] for stat in gc.get_stats()] == before
    finally:
        gc.enable()


def test_the_objects_a_batch_leaves_alive_are_not_walked_as_it_ends() -> None:
    """A batch ends with its records still alive (the caller drops them a moment later): the
    next collection waits for as many new objects as usual beyond those, and then the
    thresholds are as they were; cyclic garbage made meanwhile is freed by that collection."""
    thresholds = gc.get_threshold()
    started: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.collect()
    with collector_paused():
        alive = [{"n": n} for n in range(5 * thresholds[0])]  # the batch's records
    gc.callbacks.append(seen)
    try:
        assert gc.isenabled()
        more = [[n] for n in range(thresholds[0] // 2)]  # would have set off a collection
        assert started == []
        assert gc.get_threshold()[0] > thresholds[0]
        del alive, more
        cycles = [weakref.ref(_Cycle()) for _ in range(3 * thresholds[0])]  # garbage: cycles
        assert started, "no collection after as many new objects as usual"
        assert gc.get_threshold() == thresholds
        assert any(ref() is None for ref in cycles)
    finally:
        gc.callbacks.remove(seen)
        gc.set_threshold(*thresholds)
    assert gc.get_threshold() == thresholds


def test_thresholds_raised_after_a_batch_are_restored_as_the_next_one_starts() -> None:
    thresholds = gc.get_threshold()
    try:
        with collector_paused():
            alive = [{"n": n} for n in range(5 * thresholds[0])]
        assert gc.get_threshold()[0] > thresholds[0]
        with collector_paused():
            assert gc.get_threshold() == thresholds
        del alive
    finally:
        gc.set_threshold(*thresholds)


def test_thresholds_the_application_set_meanwhile_are_kept() -> None:
    thresholds = gc.get_threshold()
    try:
        with collector_paused():
            alive = [{"n": n} for n in range(5 * thresholds[0])]
        gc.set_threshold(1234, thresholds[1], thresholds[2])
        gc.collect(0)
        assert gc.get_threshold() == (1234, thresholds[1], thresholds[2])
        del alive
    finally:
        gc.set_threshold(*thresholds)
