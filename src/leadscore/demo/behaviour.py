"""What leads do: the ``events`` of one chunk, driven by hidden intent and engagement.

Intent raises the share of buying signals (pricing and enterprise pages, demo links,
case studies, webinars attended, demo requests, trials); engagement only scales the
volume. Activity decays after creation and bursts around the opportunity and the
conversion; customers stay in touch (docs, webinars, newsletters, the product).
E-mail opens barely depend on intent (a weak signal); students and job seekers read
the blog, docs and careers pages and never buy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from leadscore.demo.clock import DAY, HOUR, FloatArray, around, decaying, working_time
from leadscore.demo.people import PERSONA_JOB_SEEKER, PERSONA_NORMAL, PERSONA_STUDENT, People
from leadscore.demo.signals import (
    ASSETS,
    DEMO_REQUEST,
    DOWNLOAD,
    EMAIL_CLICK,
    EMAIL_OPEN,
    FORM_SUBMIT,
    LINKS,
    PRODUCT_LOGIN,
    SUPPORT_TICKET,
    TRIAL_SIGNUP,
    UNSUBSCRIBE,
    WEBINAR_ATTENDED,
    WEBINAR_REGISTERED,
    Calendar,
    Latent,
    Rows,
    events_table,
    form_logits,
    page_views,
    pick,
    repeat,
    sigmoid,
)
from leadscore.demo.texts import IntArray

_WEB_SOURCES = [0, 1, 2, 4, 6]  # organic_search, paid_search, social, email, direct
_SALES_LED_SOURCES = [3, 5, 7]  # referral, event, partner
# page log-weights: home, pricing, enterprise, product, blog, case studies, careers, docs, contact
_BURST_PAGES = [0.2, 1.4, 0.5, 1.0, -0.5, 0.8, -5.0, 0.0, 0.3]
_CUSTOMER_PAGES = [0.2, -0.6, -0.9, 0.6, 0.2, -1.2, -4.5, 1.6, -2.0]


class Journey:
    """The events of one chunk of leads, mechanism by mechanism (see the module doc)."""

    def __init__(self, rng: np.random.Generator, people: People, latent: Latent, calendar: Calendar, end: int) -> None:
        self.rng, self.people, self.latent, self.calendar, self.end = rng, people, latent, calendar, end
        n = self.n = len(people)
        self.created, self.z, self.tz, self.tau = people.created, latent.intent, people.tz, latent.tau
        self.root_e = np.sqrt(latent.engagement)
        self.normal = people.persona == PERSONA_NORMAL
        span = (end - self.created).astype(np.float64)
        # days of interest once decay is counted, plus a background of returning visits
        self.eff_days = self.tau / DAY * -np.expm1(-span / self.tau) + 0.15 * span / DAY
        self.background = 0.15 * span / DAY / np.maximum(self.eff_days, 1e-9)
        self.ends = np.full(n, end, dtype=np.int64)
        self.pages_p = np.clip(0.5 - 0.06 * self.z, 0.25, 0.8)
        self.rows = Rows()
        self.opens: list[tuple[IntArray, IntArray]] = []
        conv_at = latent.converted_at
        self.customer_days = np.where(conv_at >= 0, (end - conv_at) / DAY, 0.0)
        self.unsub_at = np.full(n, end + 1, dtype=np.int64)
        self.has_form = np.zeros(n, dtype=np.bool_)
        self.online = np.zeros(n, dtype=np.bool_)

    # --- helpers ----------------------------------------------------------------------

    def count(self, rate: npt.NDArray[Any]) -> IntArray:
        """Poisson counts per lead."""
        result: IntArray = self.rng.poisson(np.maximum(rate, 0.0))
        return result

    def when(self, lead: IntArray, scale: FloatArray | None = None, bg: FloatArray | float | None = None) -> IntArray:
        """Decaying moments after each lead's creation, in office hours."""
        created = self.created[lead]
        t = decaying(self.rng, created, self.ends[lead], self.tau[lead] if scale is None else scale,
                     self.background[lead] if bg is None else bg)
        return working_time(self.rng, t, self.tz[lead], created, self.ends[lead])

    def after(self, lead: IntArray, since: IntArray) -> IntArray:
        """Uniform moments between ``since`` (per event) and the end, in office hours."""
        at = since + (self.rng.random(len(lead)) * (self.end - since)).astype(np.int64)
        return working_time(self.rng, at, self.tz[lead], since, self.ends[lead])

    def near(self, lead: IntArray, center: IntArray, sd_days: float, shift_days: float = 0.0) -> IntArray:
        """Moments around ``center`` (per event) within the lead's lifetime."""
        return around(self.rng, center, sd_days * DAY, self.created[lead], self.ends[lead], shift_days * DAY)

    def browse(self, lead: IntArray, start: IntArray, logits: npt.NDArray[Any]) -> None:
        """Sessions of page views starting at ``start``."""
        page_views(self.rng, self.rows, lead, start, np.asarray(logits, dtype=np.float64), self.pages_p, self.z)

    def newsletter(self, lead: IntArray, t: IntArray) -> None:
        """Opens of the weekly newsletter sent at or before ``t`` (the first after creation)."""
        cal, rng = self.calendar, self.rng
        sent = cal.newsletter_0 + (t - cal.newsletter_0) // (7 * DAY) * (7 * DAY)
        sent = np.where(sent < self.created[lead], sent + 7 * DAY, sent)
        self.opens.append((lead, sent + rng.lognormal(np.log(2 * HOUR), 1.3, len(lead)).astype(np.int64)))

    def webinars(self, lead: IntArray, registered: IntArray, attend_p: FloatArray) -> None:
        """Registrations for the next webinar after ``registered``; some attend it."""
        cal, rng = self.calendar, self.rng
        webinar = np.minimum(np.searchsorted(cal.webinar_at, registered + DAY), len(cal.webinar_at) - 1)
        _, first = np.unique(lead * len(cal.webinar_at) + webinar, return_index=True)  # once per webinar
        first = np.sort(first)
        lead, registered, webinar, attend_p = lead[first], registered[first], webinar[first], attend_p[first]
        self.rows.add(lead, WEBINAR_REGISTERED, registered, webinar=webinar)
        start = cal.webinar_at[webinar]
        went = (start <= self.end) & (rng.random(len(lead)) < attend_p)
        lead, webinar, start = lead[went], webinar[went], start[went]
        watched = rng.lognormal(np.log(2400), 0.5, len(lead)) * (0.7 + 0.3 * sigmoid(self.z[lead]))
        self.rows.add(lead, WEBINAR_ATTENDED, start + rng.integers(0, 600, len(lead)), webinar=webinar,
                      seconds=np.clip(watched, 60, 5400).astype(np.int64))

    # --- mechanisms -------------------------------------------------------------------

    def first_form(self) -> None:
        """The form that created the lead (imports from events and partners mostly have none)."""
        people, rng, created = self.people, self.rng, self.created
        web = np.isin(people.source, _WEB_SOURCES)
        self.has_form = rng.random(self.n) < np.where(web, 0.85, np.where(people.source == 3, 0.5, 0.25))
        lead = np.flatnonzero(self.has_form)
        form = pick(rng, form_logits(self.z, people), lead)
        self.rows.add(lead, FORM_SUBMIT, created[lead], form=form)
        ebook = lead[form == 2]
        self.rows.add(ebook, DOWNLOAD, created[ebook] + rng.integers(5, 90, len(ebook)),
                      asset=ASSETS.pick(rng, np.full(len(ebook), 2)))
        extra = repeat(self.count(self.has_form * 0.6))  # confirmation mails
        self.opens.append((extra, created[extra] + rng.lognormal(np.log(1800), 1.2, len(extra)).astype(np.int64)))

    def research(self) -> None:
        """Web sessions, newsletters, webinars, downloads, forms: interest that fades."""
        people, rng, z, root_e = self.people, self.rng, self.z, self.root_e
        student = people.persona == PERSONA_STUDENT
        seeker = people.persona == PERSONA_JOB_SEEKER
        logits = np.stack([
            0.9 + 0 * z, -1.7 + 0.75 * z, -3.4 + 0.9 * z + 0.6 * (people.size > 500), 0.2 + 0.35 * z,
            0.9 - 0.35 * z + 0.5 * student, -1.7 + 0.5 * z, -4.5 + 6.5 * seeker + 2.8 * student,
            -1.3 + 1.2 * student + 0.4 * (people.seniority == 4), -3.0 + 0.6 * z,
        ], axis=1)
        lead = repeat(self.count(self.latent.engagement * 0.06 * np.exp(0.25 * z) * self.eff_days))
        self.browse(lead, self.when(lead), logits)
        open_rate = rng.beta(1.3, 4.2, self.n) * np.exp(0.08 * z)
        span = self.end - self.created
        lead = repeat(self.count(people.consent_email * open_rate * span / (7 * DAY) * 0.9))
        self.newsletter(lead, decaying(rng, self.created[lead], self.ends[lead], np.full(len(lead), 120.0 * DAY), 0.4))
        unsubscribed = people.consent_email & (rng.random(self.n) < np.clip(0.08 * np.exp(-0.55 * z), 0, 0.5))
        at = self.when(np.arange(self.n), np.full(self.n, 50.0 * DAY), 0.3)
        self.unsub_at = np.where(unsubscribed, at, self.end + 1)
        lead = np.flatnonzero(unsubscribed)
        self.rows.add(lead, UNSUBSCRIBE, self.unsub_at[lead])
        lead = repeat(self.count(root_e * self.eff_days / 30 * 0.09 * np.exp(0.7 * z) * np.where(self.normal, 1.0, 0.6)))
        self.webinars(lead, self.when(lead), sigmoid(-0.5 + 0.9 * z[lead]))
        asset_logits = np.stack([-0.9 + 0.65 * z, 0 * z, 0.3 - 0.45 * z, -1.2 + 0.65 * z], axis=1)
        lead = repeat(self.count(root_e * self.eff_days / 30 * 0.22 * np.exp(0.25 * z)))
        self.rows.add(lead, DOWNLOAD, self.when(lead), asset=ASSETS.pick(rng, pick(rng, asset_logits, lead)))
        lead = repeat(self.count(root_e * self.eff_days / 30 * 0.07 * np.exp(0.4 * z)))
        self.rows.add(lead, FORM_SUBMIT, self.when(lead), form=pick(rng, form_logits(z, people), lead))
        lead = repeat(self.count(0.025 * np.exp(z) * self.normal))
        self.rows.add(lead, DEMO_REQUEST, self.when(lead))

    def deal(self) -> None:
        """The burst around the opportunity (demo, pricing, case studies) and the conversion.
        Deals from referrals, events and partners often run offline and leave few traces."""
        rng, rows = self.rng, self.rows
        opp_at, conv_at = self.latent.opportunity_at, self.latent.converted_at
        sales_led = np.isin(self.people.source, _SALES_LED_SOURCES)
        self.online = (opp_at >= 0) & (rng.random(self.n) > np.where(sales_led, 0.5, 0.2))
        opp = np.flatnonzero(opp_at >= 0)

        def some(p_online: float, p_offline: float) -> IntArray:
            chosen: IntArray = opp[rng.random(len(opp)) < np.where(self.online[opp], p_online, p_offline)]
            return chosen

        lead = some(0.6, 0.1)
        rows.add(lead, DEMO_REQUEST, self.near(lead, opp_at[lead], 1.5, -2))
        lead = some(0.35, 0.05)
        rows.add(lead, FORM_SUBMIT, self.near(lead, opp_at[lead], 2, -2), form=np.full(len(lead), 3))
        lead = np.repeat(opp, self.count(np.where(self.online[opp], 1.0 + 2.0 * self.root_e[opp], 0.3)))
        self.browse(lead, self.near(lead, opp_at[lead], 4, -1), np.tile(_BURST_PAGES, (self.n, 1)))
        lead = some(0.2, 0.03)
        lead = lead[self.people.consent_email[lead]]
        at = self.near(lead, opp_at[lead], 3, -3)
        rows.add(lead, EMAIL_OPEN, at)
        rows.add(lead, EMAIL_CLICK, at + rng.integers(5, 300, len(lead)), link=np.zeros(len(lead), dtype=np.int64))
        lead = np.repeat(opp, self.count(np.where(self.online[opp], 0.5, 0.05)))
        rows.add(lead, DOWNLOAD, self.near(lead, opp_at[lead], 5),
                 asset=ASSETS.pick(rng, np.where(rng.random(len(lead)) < 0.6, 0, 3)))
        won = np.flatnonzero(conv_at >= 0)
        lead = np.repeat(won, self.count(np.where(self.online[won], 1.5, 0.2)))
        self.browse(lead, self.near(lead, conv_at[lead], 3, -1), np.tile(_BURST_PAGES, (self.n, 1)))

    def product(self) -> None:
        """Trials (a few weeks; some stay on the free plan) and customers' logins (the buyer
        is often not a user) and support tickets."""
        rng, rows, z, root_e, n = self.rng, self.rows, self.z, self.root_e, self.n
        opp_at, conv_at, created = self.latent.opportunity_at, self.latent.converted_at, self.created
        student = self.people.persona == PERSONA_STUDENT
        opp_trial = (opp_at >= 0) & (rng.random(n) < np.where(self.online, 0.3, 0.05))
        own_trial = rng.random(n) < np.where(self.normal, sigmoid(-3.0 + 0.8 * z), np.where(student, 0.08, 0.02))
        trial_at = np.where(opp_trial, around(rng, np.maximum(opp_at, created), 5 * DAY, created, self.ends),
                            self.when(np.arange(n)))
        trial = opp_trial | own_trial
        lead = np.flatnonzero(trial)
        rows.add(lead, TRIAL_SIGNUP, trial_at[lead])
        free_plan = trial & (conv_at < 0) & (rng.random(n) < 0.3)
        trial_stop = np.minimum(trial_at + 21 * DAY, self.end)
        use_until = np.where(free_plan, self.end, trial_stop)
        daily = np.where(free_plan, 0.06, 0.35) * root_e * (0.6 + 0.8 * sigmoid(z))
        lead = repeat(self.count(trial * (use_until - trial_at) / DAY * daily))
        at = trial_at[lead] + (rng.random(len(lead)) * (use_until - trial_at)[lead]).astype(np.int64)
        rows.add(lead, PRODUCT_LOGIN, working_time(rng, at, self.tz[lead], trial_at[lead], use_until[lead]))
        user = (conv_at >= 0) & (rng.random(n) < 0.25)
        lead = repeat(self.count(user * self.customer_days * 0.15 * root_e))
        rows.add(lead, PRODUCT_LOGIN, self.after(lead, conv_at[lead]))
        lead = repeat(self.count(self.eff_days / 30 * 0.012 * root_e))
        rows.add(lead, SUPPORT_TICKET, self.when(lead),
                 category=pick(rng, np.stack([-0.3 + 0.6 * z, 0 * z, -3.0 + 0 * z], axis=1), lead))
        lead = repeat(self.count(trial * 0.25))
        at = trial_at[lead] + (rng.random(len(lead)) * (trial_stop - trial_at)[lead]).astype(np.int64)
        rows.add(lead, SUPPORT_TICKET, at, category=np.ones(len(lead), dtype=np.int64))
        lead = repeat(self.count(self.customer_days * 0.002))
        rows.add(lead, SUPPORT_TICKET, self.after(lead, conv_at[lead]),
                 category=pick(rng, np.tile([-1.5, 0.3, 0.0], (n, 1)), lead))

    def customers(self) -> None:
        """Customers stay in touch: docs and product pages, newsletters, webinars."""
        conv_at, days, root_e = self.latent.converted_at, self.customer_days, self.root_e
        lead = repeat(self.count(days / 30 * 0.3 * root_e))
        logits = np.tile(_CUSTOMER_PAGES, (self.n, 1)) + np.outer(self.people.size > 500, [0, 0, 0.8, 0, 0, 0, 0, 0, 0])
        self.browse(lead, self.after(lead, conv_at[lead]), logits)
        lead = repeat(self.count(self.people.consent_email * days / 7 * 0.08))
        self.newsletter(lead, conv_at[lead] + (self.rng.random(len(lead)) * (self.end - conv_at[lead])).astype(np.int64))
        lead = repeat(self.count(days / 60 * 0.2))
        self.webinars(lead, self.after(lead, conv_at[lead]), np.full(len(lead), 0.55))

    def mail_clicks(self) -> None:
        """All e-mail opens, and the clicks some of them lead to (demo links for high intent)."""
        rng, z = self.rng, self.z
        lead = np.concatenate([o[0] for o in self.opens])
        opened = np.concatenate([o[1] for o in self.opens])
        self.rows.add(lead, EMAIL_OPEN, opened)
        clicked = rng.random(len(lead)) < np.clip(0.06 * np.exp(0.6 * z[lead]), 0, 0.6)
        lead, at = lead[clicked], opened[clicked]
        logits = np.stack([-1.8 + 1.1 * z, -0.6 + 0.2 * z, 0.9 - 0.3 * z, -0.9 + 0.4 * z, -1.3 + 0.6 * z], axis=1)
        self.rows.add(lead, EMAIL_CLICK, at + rng.lognormal(np.log(45), 1.0, len(lead)).astype(np.int64),
                      link=LINKS.pick(rng, pick(rng, logits, lead)))


def simulate_events(rng: np.random.Generator, people: People, latent: Latent, calendar: Calendar,
                    end: int, lead_id: pa.Array, first_event: int) -> pa.Table:
    """The ``events`` rows of one chunk, in time order; event ids count from ``first_event``."""
    journey = Journey(rng, people, latent, calendar, end)
    journey.first_form()
    journey.research()
    journey.deal()
    journey.product()
    journey.customers()
    journey.mail_clicks()
    return events_table(journey.rows, people.created, journey.unsub_at, end, lead_id, calendar, first_event)
