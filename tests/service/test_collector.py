"""The cyclic garbage collector is paused while batches are scored, and restored after."""

from __future__ import annotations

import gc
import threading

import pytest

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
