"""``leadscore send``: post lead and event files to a running service, through its HTTP API.

The files are read by the readers of ``leadscore import`` (:mod:`leadscore.ingest.files`)
and normalised by the same rules (:mod:`leadscore.ingest.normalise`): a lead is ``lead_id``
plus attribute columns, an event is ``event_id``, ``lead_id``, ``type``, ``timestamp`` plus
property columns; an empty cell is left out. A bad row stops the command before anything is
sent, naming the file, row and column: the event file is read twice, once to check every
row and once as it is sent (so that only a batch at a time is held in memory).

Leads go in batches to ``POST /v1/leads`` (``{"leads": [...]}``), then events in batches
to ``POST /v1/events``, in file order. A refused request (any answer but
a 2xx JSON object, a 429 or a 503) stops the sending: nothing after it is sent, and the
error names the batch, the file row the server's ``field`` points at and the server's
message. A transport error, a 503 or a 429 is sent
again after a pause (the API stores an ``event_id`` once, so sending a batch twice is safe).

An event row without an ``event_id`` is sent with one derived from what it says
(:mod:`leadscore.ingest.ids`: its lead, type, timestamp and properties, and how many
identical rows come before it in the file; ``leadscore import`` derives the same ids), so
that a batch sent again after a lost answer, or the same file sent again or imported,
stores nothing twice either.
"""

from __future__ import annotations

import re
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadscore.engine.timestamps import iso
from leadscore.errors import InputError, LeadscoreError
from leadscore.ingest.files import NO_EVENTS, iter_events, iter_leads
from leadscore.ingest.ids import content_digest, derived_event_id

if TYPE_CHECKING:
    import httpx

RETRIES = 5  # sends of one request after the first, on a transport error, 503 or 429
RETRY_STATUSES = frozenset({429, 503})
MAX_PAUSE_S = 10.0  # the longest pause before sending again, whatever Retry-After says
_ITEM_FIELD = re.compile(r"(?:events|leads)\[(\d+)\](?:\.(.+))?$")
Sleep = Callable[[float], None]
Progress = Callable[[str, int, int], None]  # stage ("leads" / "events"), done, total


class SendError(LeadscoreError):
    """The service refused a request, or could not be reached; the message says where."""


@dataclass(frozen=True)
class Row:
    """One request body and the file row (1-based data row; for JSON lines the line) it came from."""

    row: int
    body: dict[str, Any]


@dataclass
class SendSummary:
    """What the service answered, added up."""

    leads_sent: int = 0
    leads_created: int = 0
    events_sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    batches: int = 0
    retries: int = 0
    touched: set[str] = field(default_factory=set)


def read_lead_rows(path: str | Path) -> list[Row]:
    """``POST /v1/leads`` bodies of a lead file: ``lead_id`` and its non-empty attributes
    (read and checked as ``leadscore import`` reads them: a lead_id twice is refused)."""
    return [Row(row, {"lead_id": lead.lead_id,
                      "attributes": {k: v for k, v in lead.attributes.items() if v is not None}})
            for row, lead in iter_leads(path, stored=True)]


@dataclass(frozen=True)
class EventScan:
    """What checking an event file found: its number of events, and the keys (the first 8
    bytes of :func:`~leadscore.ingest.ids.content_digest`) of the rows without an ``event_id`` that the file
    holds more than once (only those need counting as the file is sent)."""

    count: int
    repeated: frozenset[int] = frozenset()


def scan_events(path: str | Path) -> EventScan:
    """Every row of an event file read and checked (a bad one raises, naming it), before
    anything is sent. Holds 8 bytes per row without an ``event_id``, not the rows."""
    count = 0
    keys = array("Q")
    for _row, event in iter_events(path, stored=True):
        count += 1
        if event.event_id is None:
            keys.append(int.from_bytes(content_digest(event)[:8], "big"))
    if not count:
        raise InputError(NO_EVENTS, file=str(path))
    repeated: frozenset[int] = frozenset()
    if len(keys) > 1:
        import numpy as np

        ordered = np.sort(np.frombuffer(keys, dtype=np.uint64))
        repeated = frozenset(int(k) for k in np.unique(ordered[1:][ordered[1:] == ordered[:-1]]))
    return EventScan(count, repeated)


def event_rows(path: str | Path, repeated: frozenset[int] = frozenset()) -> Iterator[Row]:
    """``POST /v1/events`` records of an event file, in file order: ``event_id`` (given, or
    :func:`~leadscore.ingest.ids.derived_event_id`; ``repeated``: the keys of :class:`EventScan`, without which two
    identical rows get one id), ``lead_id``, ``type``, ``timestamp`` (ISO 8601, UTC) and
    ``properties`` (the other non-empty columns), read and checked as ``leadscore import``
    reads them. Read as the file is sent: a batch at a time is held, not the file."""
    seen: dict[bytes, int] = {}  # occurrences so far of the repeated contents
    for row, event in iter_events(path, stored=True):
        event_id = event.event_id
        if event_id is None:
            digest = content_digest(event)
            occurrence = 1
            if int.from_bytes(digest[:8], "big") in repeated:
                occurrence = seen[digest] = seen.get(digest, 0) + 1
            event_id = derived_event_id(digest, occurrence)
        body: dict[str, Any] = {"event_id": event_id, "lead_id": event.lead_id, "type": event.type,
                                "timestamp": iso(event.ts)}
        if event.properties:
            body["properties"] = dict(event.properties)
        yield Row(row, body)


def batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    """``rows`` in lists of ``size``, in order."""
    rows = iter(rows)
    while batch := list(islice(rows, size)):
        yield batch


class Sender:
    """Posts bodies to one service with one key, retrying what may be retried."""

    def __init__(self, client: httpx.Client, *, retries: int = RETRIES, sleep: Sleep = time.sleep) -> None:
        self.client = client
        self.retries = retries
        self.sleep = sleep
        self.summary = SendSummary()

    def post(self, path: str, body: dict[str, Any], what: str) -> tuple[httpx.Response, Any]:
        """The response and JSON answer of a POST; transport errors, 429 and 503 are sent
        again (then raise), any other answer is returned (:meth:`check` words a refusal)."""
        import httpx

        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.summary.retries += 1
            try:
                response = self.client.post(path, json=body)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                wait = 0.5 * 2 ** attempt
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response, _json(response)
                problem = f"{response.status_code} {_message(_json(response))}"
                wait = max(_retry_after(response), 0.5 * 2 ** attempt)
            if attempt < self.retries:
                self.sleep(min(wait, MAX_PAUSE_S))
        raise SendError(f"{what}: {self.client.base_url} gave no answer to store after "
                        f"{self.retries + 1} tries (the last: {problem}); nothing after it was sent. The service stores each "
                        "event_id once: running the same command again is safe")

    def send_leads(self, path: Path, rows: Sequence[Row], size: int, progress: Progress | None = None) -> None:
        """``POST /v1/leads`` with ``{"leads": [...]}`` of ``size`` rows, in file order; a
        refusal stops."""
        for number, batch in enumerate(batches(rows, size), start=1):
            what = f"{path}: lead batch {number} (rows {batch[0].row}-{batch[-1].row})"
            response, answer = self.post("/v1/leads", {"leads": [r.body for r in batch]}, what)
            check(response, answer, what, _item_where(answer, batch), _after(self.summary.leads_sent, "lead"))
            self.summary.leads_sent += len(batch)
            self.summary.leads_created += int(answer.get("created", 0))
            self.summary.touched.update(str(lead["lead_id"]) for lead in answer.get("leads", ()))
            if progress is not None:
                progress("leads", self.summary.leads_sent, len(rows))

    def send_events(self, path: Path, rows: Iterable[Row], size: int, total: int,
                    progress: Progress | None = None) -> None:
        """``POST /v1/events`` with ``{"events": [...]}`` of ``size`` rows, in file order."""
        for number, batch in enumerate(batches(rows, size), start=1):
            first, last = batch[0].row, batch[-1].row
            what = f"{path}: batch {number} (rows {first}-{last})"
            response, answer = self.post("/v1/events", {"events": [r.body for r in batch]}, what)
            check(response, answer, what, _item_where(answer, batch),
                  _after(self.summary.events_sent, "event"))
            self.summary.batches += 1
            self.summary.events_sent += len(batch)
            self.summary.accepted += int(answer.get("accepted", 0))
            self.summary.duplicates += int(answer.get("duplicates", 0))
            self.summary.touched.update(str(lead["lead_id"]) for lead in answer.get("leads", ()))
            if progress is not None:
                progress("events", self.summary.events_sent, total)


def check(response: httpx.Response, answer: Any, what: str, where: str, after: str) -> None:
    """Raise a :class:`SendError` unless the service accepted the request (2xx, a JSON
    object): ``what`` refused (status, code, a hint), ``where`` (row and field), the
    server's message, ``after`` (what was sent before)."""
    status = response.status_code
    if 200 <= status < 300 and isinstance(answer, dict):
        return
    if 200 <= status < 300:
        raise SendError(f"{what}: the answer ({status}) is not JSON of the leadscore API - is "
                        f"--url the service's address?{after}")
    code = answer.get("error") if isinstance(answer, dict) else None
    hint = HINTS.get(status, "")
    if 300 <= status < 400:
        hint = f" - redirected to {response.headers.get('Location', '?')}: give that address as --url"
    raise SendError(f"{what} refused by the service ({status}{' ' + str(code) if code else ''}{hint}): "
                    f"{where}{_message(answer)}{after}")


HINTS = {
    401: " - check --key or LEADSCORE_API_KEY",
    403: " - the key needs scope ingest or admin",
    404: " - is --url the service's address?",
    413: " - use a smaller --batch, or raise the service's LEADSCORE_MAX_BODY_BYTES",
}


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase  # not the API's (a proxy's page?)


def _message(answer: Any) -> str:
    """The server's message, without the ``field: `` it may start with (named already)."""
    if not isinstance(answer, dict) or not answer.get("message"):
        return str(answer)[:200]
    message, place = str(answer["message"]), answer.get("field")
    return message.removeprefix(f"{place}: ") if place else message


def _retry_after(response: httpx.Response) -> float:
    try:
        return float(response.headers.get("Retry-After", 0))
    except ValueError:
        return 0.0


def _item_where(answer: Any, batch: Sequence[Row]) -> str:
    """``row N, field 'events[i].x'``: the file row of the batch's i-th event or lead, when
    the server's ``field`` names one."""
    place = answer.get("field") if isinstance(answer, dict) else None
    if not place:
        return ""
    match = _ITEM_FIELD.match(str(place))
    if match and int(match.group(1)) < len(batch):
        return f"row {batch[int(match.group(1))].row}, field '{place}': "
    return f"field '{place}': "


def _after(sent: int, noun: str) -> str:
    return f"; nothing after it was sent ({sent} {noun}(s) were sent before it)"


__all__ = ["EventScan", "Row", "SendError", "SendSummary", "Sender", "batches", "check",
           "event_rows", "read_lead_rows", "scan_events"]
