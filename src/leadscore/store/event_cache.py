"""A process's cache of the events it has read or written, by lead (perf, issue #3).

A batch of events rescores every lead it touches from all of that lead's stored events. In
a store that holds the leads' history (tens of events each) reading those events back and
decoding them was half of a batch's time. This cache keeps, for the leads this process
touched lately, their stored events (of the active model's event types, decoded, in the
order stored) so that a batch reads only their number from the database.

Why a count is enough. An entry holds the lead's events and ``count``, the number of all
its stored events (every type) when the entry was made. While no event row is deleted or
updated, a lead's events only grow: the stored set contains the cached one, and it is the
same set exactly when the numbers are equal. Any other process may insert events (another
``serve`` worker, ``leadscore import``): the number differs, and the entry is read again.
Deletions (erasure, retention purges, a database administrator's ``DELETE``) and updates
are counted by the database itself: migration 0014's triggers add one to
``event_changes.changes`` on every delete or update of ``events`` rows, in the deleting
transaction. A batch reads that number first; when it differs from the cache's, the
whole cache is dropped.

An entry is only put in the cache once the transaction that read or wrote those events
has committed (:meth:`EventCache.stage` in the transaction, :meth:`EventCache.commit`
after it): a rolled-back batch leaves nothing behind. Entries are made under the
transaction's reading of ``changes``; when the cache holds another reading by then, they
are dropped, not stored. (On PostgreSQL, transactions of one process run at once: the
leads' row locks order those that touch the same lead, and a stale entry stored late
is caught by its count.)

The cache is bounded (``limit`` events in all, least recently used leads go first) and
belongs to one :class:`~leadscore.store.db.Store`: two stores on one database are two
caches, as two worker processes are.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

EVENT_CACHE = "_leadscore_event_cache"  # session.info: the store's cache (write sessions)
_STAGED = "_leadscore_event_cache_staged"  # session.info: entries waiting for the commit
DEFAULT_LIMIT = 200_000  # events held in all (~200 bytes each: ~40 MB at most)


@dataclass(frozen=True, slots=True)
class Entry:
    lead_id: str
    count: int  # every stored event of the lead, of any type
    events: tuple[Any, ...]  # those of the cache's event types, in the order stored


@dataclass
class _Staged:
    changes: int
    types: frozenset[Any]
    entries: dict[int, Entry] = field(default_factory=dict)


class EventCache:
    """Leads' stored events by lead key; see the module's text for when an entry is valid."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._entries: OrderedDict[int, Entry] = OrderedDict()
        self._held = 0  # events in all entries
        self._changes: int | None = None  # event_changes.changes of the entries
        self._types: frozenset[Any] = frozenset()
        self._lock = threading.Lock()  # PostgreSQL: writers of one process run at once

    def __len__(self) -> int:
        return len(self._entries)

    def valid_for(self, changes: int, types: frozenset[Any]) -> None:
        """Make the cache that of ``changes`` and ``types`` (what its entries hold: the event
        types, with their windows): emptied when it was another's."""
        with self._lock:
            if changes != self._changes or types != self._types:
                self._empty()
                self._changes, self._types = changes, types

    def clear(self) -> None:
        """Forget every entry (a lead was erased: its events must not stay in memory)."""
        with self._lock:
            self._empty()

    def _empty(self) -> None:
        self._entries.clear()
        self._held = 0

    def get(self, counts: Mapping[int, tuple[str, int]]) -> dict[int, tuple[Any, ...]]:
        """The cached events of the leads ``{key: (lead_id, stored count)}`` whose entry is
        still valid (same id, same number of stored events)."""
        found: dict[int, tuple[Any, ...]] = {}
        with self._lock:
            entries = self._entries
            for pk, (lead_id, count) in counts.items():
                entry = entries.get(pk)
                if entry is not None and entry.count == count and entry.lead_id == lead_id:
                    found[pk] = entry.events
                    entries.move_to_end(pk)
        return found

    def stage(self, session: Session, changes: int, types: frozenset[Any], entries: Mapping[int, Entry]) -> None:
        """Entries read or written in ``session``'s transaction, stored when it commits."""
        staged: _Staged | None = session.info.get(_STAGED)
        if staged is None or staged.changes != changes or staged.types != types:
            staged = session.info[_STAGED] = _Staged(changes, types)
        staged.entries.update(entries)

    def commit(self, session: Session) -> None:
        """After ``session``'s transaction committed: store what it staged."""
        staged: _Staged | None = session.info.pop(_STAGED, None)
        if staged is None:
            return
        with self._lock:
            if staged.changes != self._changes or staged.types != self._types:
                return  # the cache moved on (a deletion seen by a later transaction)
            entries = self._entries
            for pk, entry in staged.entries.items():
                old = entries.pop(pk, None)
                if old is not None:
                    self._held -= len(old.events)
                if len(entry.events) <= self.limit:
                    entries[pk] = entry
                    self._held += len(entry.events)
            while self._held > self.limit and entries:
                _, gone = entries.popitem(last=False)
                self._held -= len(gone.events)


def cache_of(session: Session) -> EventCache | None:
    """The event cache of the store whose write transaction ``session`` is (None outside one)."""
    return session.info.get(EVENT_CACHE)


CHANGES_SQL = "SELECT changes FROM event_changes WHERE id = 1"
