"""The API-key cache: a cached key costs no lookup, and a revoked key stops working
within the documented time (KEY_CACHE_SECONDS)."""

from __future__ import annotations

import pytest

from leadscore.service.errors import Unauthenticated
from leadscore.service.keys import KEY_CACHE_SECONDS, KeyCache, create_key, revoke_key
from leadscore.store.db import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_revoked_key_stops_working_within_the_cache_time(store: Store) -> None:
    with store.write() as session:
        row, token = create_key(session, "crm", "ingest", 0)
    clock = Clock()
    cache = KeyCache(clock=clock)
    assert cache.authenticate(store.read, token).scope == "ingest"
    assert cache.cached(token) is not None
    with store.write() as session:
        revoke_key(session, str(row.id), 1)
    # still remembered (at most KEY_CACHE_SECONDS) ...
    clock.now += KEY_CACHE_SECONDS - 0.1
    assert cache.authenticate(store.read, token).name == "crm"
    # ... and refused once that time has passed
    clock.now += 0.2
    assert cache.cached(token) is None
    with pytest.raises(Unauthenticated, match="revoked"):
        cache.authenticate(store.read, token)
    with pytest.raises(Unauthenticated, match="revoked"):  # a refusal is not remembered as valid
        cache.authenticate(store.read, token)


def test_unknown_and_missing_keys_are_never_remembered(store: Store) -> None:
    cache = KeyCache(clock=Clock())
    with pytest.raises(Unauthenticated, match="unknown"):
        cache.authenticate(store.read, "lsk_nope")
    with pytest.raises(Unauthenticated, match="missing"):
        cache.authenticate(store.read, None)
    with store.write() as session:
        _, token = create_key(session, "new", "read", 0)
    assert cache.authenticate(store.read, token).scope == "read"  # a new key works at once
