"""Event ids derived from what an event says, for file rows that come without one.

``leadscore import`` and ``leadscore send`` give an event row without an ``event_id`` the id
``derived:`` + 32 hex digits of BLAKE2b (16 bytes) over its lead, type, timestamp
(microseconds) and properties (:func:`content_text`), then ``:N`` for the N-th identical
row of its file (N >= 2). The same file gives the same ids every time, by either command,
so a file loaded again (or a batch sent again after a lost answer) stores nothing twice,
while two identical rows of one file stay two events.
"""

from __future__ import annotations

import hashlib
import json

from leadscore.engine import Event

DERIVED_PREFIX = "derived:"


def content_text(event: Event) -> str:
    """What an event says, as canonical JSON: ``[lead_id, type, ts, properties]`` with the
    property names sorted, no spaces, text as it is (not escaped to ASCII)."""
    return json.dumps([event.lead_id, event.type, event.ts, event.properties], sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def text_digest(text: str) -> bytes:
    """The 16-byte BLAKE2b digest of a :func:`content_text`."""
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def content_digest(event: Event) -> bytes:
    """:func:`text_digest` of the event's :func:`content_text`."""
    return text_digest(content_text(event))


def derived_event_id(digest: bytes, occurrence: int = 1) -> str:
    """The id of the ``occurrence``-th row of a file whose content has this digest."""
    base = f"{DERIVED_PREFIX}{digest.hex()}"
    return base if occurrence == 1 else f"{base}:{occurrence}"


class IdDeriver:
    """Gives the id-less events of one file, in file order, their derived ids (counting the
    identical rows seen so far); events with an id pass unchanged."""

    def __init__(self) -> None:
        self.seen: dict[bytes, int] = {}

    def digest_id(self, digest: bytes) -> str:
        """The id of the next row with this content digest."""
        occurrence = self.seen[digest] = self.seen.get(digest, 0) + 1
        return derived_event_id(digest, occurrence)

    def __call__(self, event: Event) -> Event:
        if event.event_id is not None:
            return event
        return Event(event.lead_id, event.type, event.ts, event.properties, self.digest_id(content_digest(event)))


__all__ = ["DERIVED_PREFIX", "IdDeriver", "content_digest", "content_text", "derived_event_id", "text_digest"]
