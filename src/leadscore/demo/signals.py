"""The vocabulary of events: types, property columns, the company calendar, and how a
block of simulated events becomes the ``events`` table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from leadscore.demo import vocab as v
from leadscore.demo.clock import DAY, HOUR, BoolArray, FloatArray, weekday
from leadscore.demo.people import PERSONA_NORMAL, Grouped, People
from leadscore.demo.texts import IntArray, iso_utc, numbered, take, vocab

TYPES: tuple[str, ...] = (
    "page_view", "email_open", "email_click", "form_submit", "download", "webinar_registered",
    "webinar_attended", "demo_request", "trial_signup", "product_login", "unsubscribe", "support_ticket",
)
(PAGE_VIEW, EMAIL_OPEN, EMAIL_CLICK, FORM_SUBMIT, DOWNLOAD, WEBINAR_REGISTERED, WEBINAR_ATTENDED,
 DEMO_REQUEST, TRIAL_SIGNUP, PRODUCT_LOGIN, UNSUBSCRIBE, SUPPORT_TICKET) = range(len(TYPES))
PROPERTIES: tuple[str, ...] = ("url", "seconds", "link", "asset", "webinar", "form", "category")
EVENTS_SCHEMA = pa.schema(
    [("event_id", pa.string()), ("lead_id", pa.string()), ("type", pa.string()), ("timestamp", pa.string())]
    + [(p, pa.int64() if p == "seconds" else pa.string()) for p in PROPERTIES]
)
EVENT_ID_DIGITS = 10
(HOME, PRICING, ENTERPRISE, PRODUCT, BLOG, CASE, CAREERS, DOCS, CONTACT) = range(len(v.PAGE_GROUPS))
PAGES = Grouped(v.PAGE_GROUPS)
LINKS = Grouped(v.LINK_GROUPS)
ASSETS = Grouped(v.ASSET_GROUPS)
VOCAB = {"type": vocab(TYPES), "form": vocab(v.FORMS), "category": vocab(v.TICKET_CATEGORIES)}


@dataclass(frozen=True)
class Latent:
    """The hidden side of a chunk of leads (never written to a file)."""

    intent: FloatArray  # ~ N(0, 1) plus a source shift
    engagement: FloatArray  # heavy-tailed activity multiplier, independent of intent
    tau: FloatArray  # seconds: how fast interest fades after creation
    opportunity_at: IntArray  # epoch seconds, -1: none
    converted_at: IntArray  # epoch seconds, -1: none


@dataclass(frozen=True)
class Calendar:
    """The company's schedule: weekly newsletters and a webinar every other Wednesday."""

    newsletter_0: int  # a Tuesday 15:00 UTC before the first lead
    webinar_at: IntArray
    webinar_names: pa.Array

    @classmethod
    def build(cls, start: int, end: int) -> Calendar:
        """The schedule around [start, end]."""
        day0 = (start - 35 * DAY) // DAY
        tuesday = day0 + (1 - int(weekday(np.array([day0]))[0])) % 7
        first_webinar = tuesday + 1
        days = np.arange(first_webinar, (end + 70 * DAY) // DAY, 14, dtype=np.int64)
        names = [
            f"{v.WEBINAR_TOPICS[i % len(v.WEBINAR_TOPICS)]}-{datetime.fromtimestamp(d * DAY, UTC):%Y-%m}"
            for i, d in enumerate(days.tolist())
        ]
        return cls(tuesday * DAY + 15 * HOUR, days * DAY + 16 * HOUR, vocab(names))


@dataclass
class Rows:
    """Events collected block by block, as integer codes (property codes: -1 = not set)."""

    parts: list[dict[str, IntArray]] = field(default_factory=list)

    def add(self, lead: IntArray, kind: int, ts: IntArray, **props: IntArray) -> None:
        """Events of type ``kind`` for leads ``lead`` (chunk positions) at ``ts``."""
        n = len(lead)
        block = {"lead": lead, "type": np.full(n, kind, dtype=np.int64), "ts": ts}
        for name in PROPERTIES:
            block[name] = props.get(name, np.full(n, -1, dtype=np.int64))
        self.parts.append(block)

    def concat(self) -> dict[str, IntArray]:
        """All blocks as one set of columns."""
        return {key: np.concatenate([p[key] for p in self.parts]).astype(np.int64) for key in self.parts[0]}


def sigmoid(x: FloatArray) -> FloatArray:
    """The logistic function."""
    result: FloatArray = 1.0 / (1.0 + np.exp(-x))
    return result


def pick(rng: np.random.Generator, logits: FloatArray, lead: IntArray) -> IntArray:
    """One category per event from its lead's row of ``logits``."""
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    cum = np.cumsum(p, axis=1)
    cum /= cum[:, -1:]
    within = (rng.random(len(lead))[:, None] >= cum[lead]).sum(axis=1)
    result: IntArray = np.minimum(within, logits.shape[1] - 1)
    return result


def repeat(counts: IntArray) -> IntArray:
    """Position ``i`` repeated ``counts[i]`` times: one entry per event of each lead."""
    result: IntArray = np.repeat(np.arange(len(counts)), counts)
    return result


def page_views(rng: np.random.Generator, rows: Rows, lead: IntArray, start: IntArray, logits: FloatArray,
                pages_p: FloatArray, z: FloatArray) -> None:
    """Sessions starting at ``start``: a few pages each, one after another."""
    pages = rng.geometric(pages_p[lead])
    pv_lead = np.repeat(lead, pages)
    category = pick(rng, logits, pv_lead)
    pricing = (category == PRICING) | (category == ENTERPRISE)
    seconds = rng.lognormal(np.log(35), 0.9, len(pv_lead)) * (1 + pricing * sigmoid(z[pv_lead]))
    seconds = np.clip(seconds, 1, 1800).astype(np.int64)
    step = seconds + rng.integers(1, 20, len(pv_lead))
    done = np.cumsum(step) - step  # time before this page, over all sessions
    first = np.cumsum(pages) - pages
    ts = np.repeat(start, pages) + done - np.repeat(done[first], pages)
    rows.add(pv_lead, PAGE_VIEW, ts, url=PAGES.pick(rng, category), seconds=seconds)


def form_logits(z: FloatArray, people: People) -> FloatArray:
    """Log-weights of the forms (contact, newsletter, ebook, demo) each lead fills in."""
    normal = people.persona == PERSONA_NORMAL
    return np.stack(
        [-0.4 + 0.5 * z, 0.3 - 0.4 * z + 0.6 * ~normal, 0.4 + 0 * z, -1.9 + 0.9 * z - 3.0 * ~normal], axis=1
    )


def events_table(rows: Rows, created: IntArray, unsub_at: IntArray, end: int, lead_id: pa.Array,
           calendar: Calendar, first_event: int) -> pa.Table:
    """Drop what falls outside the lead's lifetime (or mail after unsubscribing); sort; format."""
    ev = rows.concat()
    lead, kind, ts = ev["lead"], ev["type"], ev["ts"]
    mail = (kind == EMAIL_OPEN) | (kind == EMAIL_CLICK)
    keep: BoolArray = (ts >= created[lead]) & (ts <= end) & ~(mail & (ts > unsub_at[lead]))
    order = np.flatnonzero(keep)
    order = order[np.argsort(ts[order], kind="stable")]
    ev = {key: values[order] for key, values in ev.items()}
    seconds = ev["seconds"]
    columns: dict[str, pa.Array] = {
        "event_id": numbered("E", np.arange(first_event, first_event + len(order)), EVENT_ID_DIGITS),
        "lead_id": lead_id.take(pa.array(ev["lead"])),
        "type": take(VOCAB["type"], ev["type"]),
        "timestamp": iso_utc(ev["ts"]),
        "url": take(PAGES.words, ev["url"]),
        "seconds": pa.array(seconds, type=pa.int64(), mask=seconds < 0),
        "link": take(LINKS.words, ev["link"]),
        "asset": take(ASSETS.words, ev["asset"]),
        "webinar": take(calendar.webinar_names, ev["webinar"]),
        "form": take(VOCAB["form"], ev["form"]),
        "category": take(VOCAB["category"], ev["category"]),
    }
    return pa.table(columns, schema=EVENTS_SCHEMA)
