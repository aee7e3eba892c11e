"""The demo world: a simulated B2B funnel, generated chunk by chunk.

Every lead has a hidden *intent* (never written) that drives both what it does
(:mod:`.behaviour`) and whether it becomes an opportunity and then a customer. Fit
(seniority, industry, company size, country) shifts the odds too, and so does a hidden
*budget* that leaves no trace in behaviour (no model can be perfect). *Engagement* (how
much someone clicks around) is independent of intent, so some buyers leave few traces
and some busy visitors (students, job seekers) never buy. Opportunities and conversions
take weeks; those that would fall after the end have not happened (yet).

Leads are generated in chunks of :data:`CHUNK_LEADS` with one random stream per chunk,
so :func:`generate_world` (in memory) and :func:`leadscore.demo.write_world`
(streaming) produce the same rows, and the same arguments give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from leadscore.demo import vocab as v
from leadscore.demo.behaviour import simulate_events
from leadscore.demo.clock import (
    DAY,
    BoolArray,
    FloatArray,
    creation_days,
    epoch_seconds,
    months_before,
)
from leadscore.demo.people import (
    PERSONA_NORMAL,
    Companies,
    People,
    build_companies,
    draw_people,
    leads_table,
)
from leadscore.demo.signals import Calendar, Latent, sigmoid
from leadscore.demo.texts import IntArray, iso_utc, numbered
from leadscore.errors import UsageError

GENERATOR_VERSION = "1"
DEFAULT_END = datetime(2026, 11, 1, tzinfo=UTC)
CHUNK_LEADS = 20_000
MAX_LEADS = 50_000_000

#: Industries the business sells best to (the starter model gives them points).
TARGET_INDUSTRIES: tuple[str, ...] = ("software", "saas", "fintech", "it_services")
#: Countries the business sells best in.
TARGET_COUNTRIES: tuple[str, ...] = ("US", "CA", "GB", "DE", "NL", "AU", "SG")

LEADS_SCHEMA = pa.schema(
    [
        ("lead_id", pa.string()), ("name", pa.string()), ("email", pa.string()), ("phone", pa.string()),
        ("job_title", pa.string()), ("seniority", pa.string()), ("company", pa.string()),
        ("industry", pa.string()), ("company_size", pa.int64()), ("country", pa.string()),
        ("source", pa.string()), ("created_at", pa.string()), ("consent_email", pa.bool_()),
        ("consent_ads", pa.bool_()),
    ]
)
OUTCOMES_SCHEMA = pa.schema(
    [("lead_id", pa.string()), ("converted", pa.bool_()), ("converted_at", pa.string()),
     ("opportunity_at", pa.string())]
)

# fit: log-odds shifts of becoming an opportunity
_SENIORITY_FIT = np.array([0.65, 0.7, 0.45, 0.35, -0.1, -3.0, -0.8])
_SOURCE_INTENT = np.array([0.0, -0.1, -0.35, 0.45, 0.0, 0.15, 0.15, 0.35])
_SOURCE_ACTIVITY = np.array([1.0, 0.9, 0.9, 0.6, 1.0, 0.55, 1.0, 0.55])


@dataclass(frozen=True)
class WorldSpec:
    """What defines a world: size, seed and time window (epoch seconds, ``start < end``)."""

    n_leads: int
    seed: int
    start: int
    end: int

    @property
    def as_of(self) -> datetime:
        """The world's "now"."""
        return datetime.fromtimestamp(self.end, UTC)

    @property
    def id_width(self) -> int:
        """Digits in ``L0000001``-style lead ids."""
        return max(7, len(str(self.n_leads)))

    @property
    def n_chunks(self) -> int:
        """How many chunks of :data:`CHUNK_LEADS` the world is generated in."""
        return -(-self.n_leads // CHUNK_LEADS)

    def rng(self, *key: int) -> np.random.Generator:
        """The random stream named ``key`` (independent of every other key)."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))


def make_spec(n_leads: int, seed: int, end: datetime, months: int) -> WorldSpec:
    """Check the arguments of a world; raise :class:`UsageError` when they do not fit."""
    if isinstance(n_leads, bool) or not isinstance(n_leads, int) or not 1 <= n_leads <= MAX_LEADS:
        raise UsageError(f"--leads must be a whole number from 1 to {MAX_LEADS:,}, got {n_leads!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise UsageError(f"--seed must be a whole number >= 0, got {seed!r}")
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 120:
        raise UsageError(f"--months must be a whole number from 1 to 120, got {months!r}")
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    end = end.astimezone(UTC).replace(microsecond=0)
    if not datetime(1980, 1, 1, tzinfo=UTC) <= end <= datetime(9000, 1, 1, tzinfo=UTC):
        raise UsageError(f"--end must lie between 1980 and 9000, got {end.isoformat()}")
    start = months_before(end, months)
    return WorldSpec(n_leads, seed, epoch_seconds(start), epoch_seconds(end))


@dataclass(frozen=True)
class DemoWorld:
    """A generated world in memory."""

    leads: pa.Table
    events: pa.Table
    outcomes: pa.Table
    as_of: datetime


@dataclass(frozen=True)
class Chunk:
    """The rows of one chunk of leads."""

    leads: pa.Table
    events: pa.Table
    outcomes: pa.Table
    n_opportunities: int
    n_converted: int


def _fit(people: People) -> FloatArray:
    """Log-odds shift from who the lead is (seniority, industry, size, country)."""
    target_industry = np.isin(people.industry, [v.INDUSTRIES.index(i) for i in TARGET_INDUSTRIES])
    codes = [c.code for c in v.COUNTRIES]
    target_country = np.isin(people.country, [codes.index(c) for c in TARGET_COUNTRIES])
    size = people.size
    size_fit = np.select(
        [size < 10, size < 50, size <= 500, size <= 5000], [-0.5, -0.1, 0.5, 0.2], default=0.0
    )
    fit: FloatArray = _SENIORITY_FIT[people.seniority] + 0.7 * target_industry + size_fit + 0.3 * target_country
    return fit


def draw_latent(rng: np.random.Generator, people: People, end: int) -> Latent:
    """Hidden intent and activity, and the funnel outcome (opportunity, conversion) they imply."""
    n = len(people)
    normal = people.persona == PERSONA_NORMAL
    intent = rng.normal(0.0, 1.0, n) + _SOURCE_INTENT[people.source]
    persona_activity = np.array([1.0, 1.4, 1.7])[people.persona]
    engagement = rng.lognormal(-0.15, 1.0, n) * _SOURCE_ACTIVITY[people.source] * persona_activity
    tau = rng.lognormal(np.log(35 * DAY), 0.7, n)
    fit = _fit(people)
    budget = rng.normal(0.0, 1.0, n)  # need, budget, timing: moves the deal, leaves no trace
    opp_logit = -2.35 + 1.1 * intent + 0.7 * budget + 1.0 * fit + np.where(normal, 0.0, -6.0)
    is_opp = rng.random(n) < sigmoid(opp_logit)
    opp_at = people.created + (rng.lognormal(np.log(20 * DAY), 0.9, n)).astype(np.int64)
    is_opp &= opp_at <= end
    win = rng.random(n) < sigmoid(-0.45 + 0.5 * intent + 0.5 * budget + 0.5 * fit)
    conv_at = opp_at + (rng.lognormal(np.log(28 * DAY), 0.7, n)).astype(np.int64)
    converted: BoolArray = is_opp & win & (conv_at <= end)
    return Latent(
        intent=intent,
        engagement=engagement,
        tau=tau,
        opportunity_at=np.where(is_opp, opp_at, -1),
        converted_at=np.where(converted, conv_at, -1),
    )


def _chunk(spec: WorldSpec, index: int, companies: Companies, days: IntArray, calendar: Calendar,
           first_event: int) -> Chunk:
    """Chunk ``index``: its own random streams, so chunks do not depend on one another."""
    first = index * CHUNK_LEADS
    people = draw_people(spec.rng(2, index, 0), companies, days[first : first + CHUNK_LEADS], spec.start, spec.end)
    latent = draw_latent(spec.rng(2, index, 1), people, spec.end)
    lead_id = numbered("L", np.arange(first + 1, first + len(people) + 1), spec.id_width)
    created_at = iso_utc(people.created)
    leads = leads_table(people, companies, lead_id, created_at, spec.rng(2, index, 3))
    events = simulate_events(spec.rng(2, index, 2), people, latent, calendar, spec.end, lead_id, first_event)
    is_opp = latent.opportunity_at >= 0
    converted = latent.converted_at >= 0
    outcomes = pa.table(
        {
            "lead_id": lead_id,
            "converted": pa.array(converted),
            "converted_at": iso_utc(latent.converted_at, converted),
            "opportunity_at": iso_utc(latent.opportunity_at, is_opp),
        },
        schema=OUTCOMES_SCHEMA,
    )
    return Chunk(leads.cast(LEADS_SCHEMA), events, outcomes, int(is_opp.sum()), int(converted.sum()))


def iter_chunks(spec: WorldSpec) -> Iterator[Chunk]:
    """The world, chunk after chunk (lead ids and event ids keep counting across chunks)."""
    companies = build_companies(spec.rng(0), int(np.clip(spec.n_leads // 5, 30, 200_000)))
    days = creation_days(spec.rng(1), spec.n_leads, spec.start, spec.end)
    calendar = Calendar.build(spec.start, spec.end)
    next_event = 1
    for index in range(spec.n_chunks):
        chunk = _chunk(spec, index, companies, days, calendar, next_event)
        next_event += chunk.events.num_rows
        yield chunk


def generate_world(n_leads: int, seed: int, end: datetime = DEFAULT_END, months: int = 12) -> DemoWorld:
    """A whole world in memory (for tests and small demos; stream big ones with ``write_world``).

    ``end`` is the world's "now" (naive means UTC; sub-seconds are dropped); leads are
    created during the ``months`` calendar months before it.
    """
    spec = make_spec(n_leads, seed, end, months)
    chunks = list(iter_chunks(spec))  # n_leads >= 1: at least one chunk
    return DemoWorld(
        leads=pa.concat_tables([c.leads for c in chunks]),
        events=pa.concat_tables([c.events for c in chunks]),
        outcomes=pa.concat_tables([c.outcomes for c in chunks]),
        as_of=spec.as_of,
    )
