"""Companies and the people (leads) who work there, vectorised.

First every lead is drawn as integer codes (:class:`People`), which the simulation
reads; then :func:`leads_table` turns the codes into the text columns of ``leads``,
adding the messiness of a real CRM export (odd title spacing, missing values, emoji).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.demo import vocab as v
from leadscore.demo.clock import DAY, HOUR, BoolArray, FloatArray, time_of_day
from leadscore.demo.texts import IntArray, digit_string, take
from leadscore.demo.texts import vocab as text_vocab

STUDENT = v.SENIORITIES.index("student")
PERSONA_NORMAL, PERSONA_STUDENT, PERSONA_JOB_SEEKER = 0, 1, 2
_EU = {"GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "PT", "ES"}


class Grouped:
    """Words in groups (a flat vocabulary plus offsets) for picking per group, vectorised."""

    def __init__(self, groups: Sequence[Sequence[str]], weights: Sequence[Sequence[float]] | None = None) -> None:
        self.words = text_vocab([w for group in groups for w in group])
        self.folded = text_vocab([v.email_part(w) for group in groups for w in group])
        self.counts = np.array([len(g) for g in groups], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        width = int(self.counts.max())
        cum = np.ones((len(groups), width))
        for i, group in enumerate(groups):
            w = np.asarray(weights[i] if weights and weights[i] else [1.0] * len(group), dtype=np.float64)
            cum[i, : len(group)] = np.cumsum(w) / w.sum()
        self.cum = cum
        self.uniform = not (weights and any(weights))

    def within(self, rng: np.random.Generator, group: IntArray) -> IntArray:
        """One position per element, drawn within the element's group."""
        u = rng.random(len(group))
        if self.uniform:
            position = (u * self.counts[group]).astype(np.int64)
        else:
            position = (u[:, None] >= self.cum[group]).sum(axis=1)
        result: IntArray = np.minimum(position, self.counts[group] - 1)
        return result

    def pick(self, rng: np.random.Generator, group: IntArray) -> IntArray:
        """One index into the flat vocabulary per element, drawn within the element's group."""
        result: IntArray = self.offsets[group] + self.within(rng, group)
        return result


@dataclass(frozen=True)
class _Vocabularies:
    family: Grouped  # by culture
    given: Grouped  # by culture * 2 + female
    middle: Grouped  # by female (Vietnamese middle names)
    titles: Grouped  # by seniority; Vietnamese titles at + len(SENIORITIES)
    seeker_titles: Grouped
    suffixes: Grouped  # by industry
    legal: Grouped  # by country
    universities: Grouped  # by country
    plain: dict[str, pa.StringArray]


@lru_cache(maxsize=1)
def vocabularies() -> _Vocabularies:
    """The grouped vocabularies (built once per process)."""
    cultures = [v.NAMES[c] for c in v.CULTURES]
    vi = v.NAMES["vi"]
    return _Vocabularies(
        family=Grouped([c.family for c in cultures], [c.family_weights for c in cultures]),
        given=Grouped([g for c in cultures for g in (c.given_m, c.given_f)]),
        middle=Grouped([vi.middle_m, vi.middle_f]),
        titles=Grouped([v.JOB_TITLES[s] for s in v.SENIORITIES] + [v.JOB_TITLES_VI[s] for s in v.SENIORITIES]),
        seeker_titles=Grouped([v.JOB_SEEKER_TITLES]),
        suffixes=Grouped([v.INDUSTRY_SUFFIXES[i] for i in v.INDUSTRIES]),
        legal=Grouped([c.legal_forms for c in v.COUNTRIES]),
        universities=Grouped([v.UNIVERSITIES.get(c.code, v.OTHER_UNIVERSITIES) for c in v.COUNTRIES]),
        plain={
            name: text_vocab(words)
            for name, words in {
                "country": [c.code for c in v.COUNTRIES],
                "phone_prefix": [c.phone_prefix + " " for c in v.COUNTRIES],
                "seniority": v.SENIORITIES,
                "industry": v.INDUSTRIES,
                "source": v.SOURCES,
                "prefix": v.COMPANY_PREFIXES,
                "root": v.COMPANY_ROOTS,
                "vn_form": v.VN_COMPANY_FORMS,
                "vn_word": v.VN_COMPANY_WORDS,
                "vn_brand": v.VN_BRANDS,
                "emoji": [" " + e for e in v.COMPANY_EMOJI],
                "personal": v.PERSONAL_DOMAINS,
                "student_domain": v.STUDENT_DOMAINS,
            }.items()
        },
    )


def _choice(rng: np.random.Generator, n: int, weights: Sequence[float]) -> IntArray:
    p = np.asarray(weights, dtype=np.float64)
    result: IntArray = rng.choice(len(p), size=n, p=p / p.sum())
    return result


@dataclass(frozen=True)
class Companies:
    """The companies leads work for (one pool per world)."""

    country: IntArray
    industry: IntArray
    size: IntArray
    weight: FloatArray  # chance a lead comes from this company
    name: pa.Array
    domain: pa.Array


def build_companies(rng: np.random.Generator, n: int) -> Companies:
    """``n`` companies: country, industry, employees, a name and an e-mail domain."""
    voc = vocabularies()
    plain = voc.plain
    country = _choice(rng, n, [c.weight for c in v.COUNTRIES])
    industry = _choice(rng, n, v.INDUSTRY_WEIGHTS)
    bucket = _choice(rng, n, [b[2] for b in v.SIZE_BUCKETS])
    lo = np.log(np.array([b[0] for b in v.SIZE_BUCKETS], dtype=np.float64))[bucket]
    hi = np.log(np.array([b[1] + 1 for b in v.SIZE_BUCKETS], dtype=np.float64))[bucket]
    size = np.floor(np.exp(rng.uniform(lo, hi))).astype(np.int64)
    prefix = take(plain["prefix"], rng.integers(0, len(v.COMPANY_PREFIXES), n))
    root = take(plain["root"], rng.integers(0, len(v.COMPANY_ROOTS), n))
    base = pc.binary_join_element_wise(prefix, root, "")
    suffix = take(voc.suffixes.words, voc.suffixes.pick(rng, industry))
    legal = take(voc.legal.words, voc.legal.pick(rng, country))
    name = pc.utf8_rtrim(pc.binary_join_element_wise(base, suffix, legal, " "), characters=" ")
    domain = pc.binary_join_element_wise(
        pc.utf8_lower(base), pc.utf8_lower(pc.replace_substring(suffix, " ", "")), ".example", ""
    )
    # Vietnamese-style names for about half of the Vietnamese companies
    vn_brand_code = rng.integers(0, len(v.VN_BRANDS), n)
    vn_name = pc.binary_join_element_wise(
        take(plain["vn_form"], rng.integers(0, len(v.VN_COMPANY_FORMS), n)),
        take(plain["vn_word"], rng.integers(0, len(v.VN_COMPANY_WORDS), n)),
        take(plain["vn_brand"], vn_brand_code),
        " ",
    )
    vn_domain = pc.binary_join_element_wise(
        take(text_vocab([v.email_part(b) for b in v.VN_BRANDS]), vn_brand_code),
        take(plain["prefix"], rng.integers(0, len(v.COMPANY_PREFIXES), n)),
        ".example",
        "",
    )
    vn_style = pa.array((country == _country("VN")) & (rng.random(n) < 0.5))
    name = pc.if_else(vn_style, vn_name, name)
    domain = pc.utf8_lower(pc.if_else(vn_style, vn_domain, domain))
    emoji = rng.random(n) < 0.006
    with_emoji = pc.binary_join_element_wise(name, take(plain["emoji"], rng.integers(0, len(v.COMPANY_EMOJI), n)), "")
    name = pc.if_else(pa.array(emoji), with_emoji, name)
    weight = size.astype(np.float64) ** 0.3
    return Companies(country, industry, size, weight / weight.sum(), name, domain)


def _country(code: str) -> int:
    return [c.code for c in v.COUNTRIES].index(code)


@dataclass
class People:
    """One chunk of leads as integer codes, sorted by ``created`` (epoch seconds)."""

    created: IntArray
    company: IntArray
    country: IntArray
    industry: IntArray
    size: IntArray
    seniority: IntArray
    persona: IntArray
    source: IntArray
    tz: IntArray  # seconds east of UTC
    consent_email: BoolArray
    consent_ads: BoolArray
    female: BoolArray
    family: IntArray
    given: IntArray
    middle: IntArray
    title: IntArray
    email_style: IntArray
    email_digits: IntArray
    personal_domain: IntArray  # -1: the company's domain
    mess: IntArray  # 0 clean title, 1..5 odd case / spacing
    missing: IntArray  # bit flags: 1 title, 2 industry, 4 size, 8 phone

    def __len__(self) -> int:
        return len(self.created)

    def reordered(self, order: IntArray) -> People:
        """The same people in another order."""
        return People(**{f.name: getattr(self, f.name)[order] for f in fields(self)})


def draw_people(rng: np.random.Generator, companies: Companies, days: IntArray, start: int, end: int) -> People:
    """One lead per entry of ``days`` (epoch day of creation), sorted by creation moment."""
    n = len(days)
    voc = vocabularies()
    company = rng.choice(len(companies.weight), size=n, p=companies.weight)
    size = companies.size[company]
    seniority_p = np.tile(np.asarray(v.SENIORITY_WEIGHTS), (2, 1))
    seniority_p[1, :3] *= (4.0, 0.3, 0.5)  # tiny companies: founders, few VPs
    seniority = Grouped([list(v.SENIORITIES)] * 2, seniority_p.tolist()).within(rng, (size <= 10).astype(np.int64))
    student = seniority == STUDENT
    seeker = np.isin(seniority, [4, 6]) & (rng.random(n) < 0.07)
    persona = np.where(student, PERSONA_STUDENT, np.where(seeker, PERSONA_JOB_SEEKER, PERSONA_NORMAL))
    country = companies.country[company]
    roaming = student | (rng.random(n) < 0.08)
    country = np.where(roaming, _choice(rng, n, [c.weight for c in v.COUNTRIES]), country)
    culture = np.array([v.CULTURES.index(c.culture) for c in v.COUNTRIES])[country]
    tz = (np.array([c.utc_offset_h for c in v.COUNTRIES]) * HOUR).astype(np.int64)[country]
    created = days * DAY + time_of_day(rng, n) - tz  # local office hours may fall on the UTC day next door
    created = np.where(created < start, created + DAY, np.where(created >= end, created - DAY, created))
    created = np.clip(created, start, end - 1)
    female = rng.random(n) < 0.45
    vietnamese = country == _country("VN")
    title_group = seniority + np.where(vietnamese & (rng.random(n) < 0.12), len(v.SENIORITIES), 0)
    title = voc.titles.pick(rng, title_group)
    seeker_title = (seniority == 6) & seeker
    title = np.where(seeker_title, -2 - voc.seeker_titles.pick(rng, np.zeros(n, dtype=np.int64)), title)
    personal_p = np.where(student, 0.95, np.where(seeker, 0.8, 0.22))
    personal = rng.random(n) < personal_p
    personal_domain = np.where(
        personal,
        np.where(student & (rng.random(n) < 0.55), 100 + rng.integers(0, len(v.STUDENT_DOMAINS), n),
                 rng.integers(0, len(v.PERSONAL_DOMAINS), n)),
        -1,
    )
    eu = np.isin(country, [_country(c) for c in _EU])
    consent_email = rng.random(n) < np.where(eu, 0.62, 0.74)
    consent_ads = rng.random(n) < np.where(consent_email, 0.55, 0.12)
    mess = np.where(rng.random(n) < 0.03, rng.integers(1, 6, n), 0)
    missing = (
        (rng.random(n) < 0.03) * 1 + (rng.random(n) < 0.04) * 2 + (rng.random(n) < 0.06) * 4
        + (rng.random(n) < 0.15) * 8
    )
    people = People(
        created=created,
        company=company,
        country=country,
        industry=companies.industry[company],
        size=size,
        seniority=seniority,
        persona=persona,
        source=_choice(rng, n, v.SOURCE_WEIGHTS),
        tz=tz,
        consent_email=consent_email,
        consent_ads=consent_ads,
        female=female,
        family=voc.family.pick(rng, culture),
        given=voc.given.pick(rng, culture * 2 + female),
        middle=np.where(vietnamese, voc.middle.pick(rng, female.astype(np.int64)), -1),
        title=title,
        email_style=rng.integers(0, 5, n),
        email_digits=rng.integers(1, 100, n),
        personal_domain=personal_domain,
        mess=mess,
        missing=missing.astype(np.int64),
    )
    return people.reordered(np.argsort(created, kind="stable"))


def _mask(values: pa.Array, null: npt.NDArray[np.bool_]) -> pa.Array:
    return pc.if_else(pa.array(null), pa.scalar(None, values.type), values) if null.any() else values


def leads_table(people: People, companies: Companies, lead_id: pa.Array, created_at: pa.Array,
                rng: np.random.Generator) -> pa.Table:
    """The ``leads`` columns for one chunk of people (``rng`` draws phone numbers and the like)."""
    voc = vocabularies()
    plain = voc.plain
    n = len(people)
    vietnamese = people.middle >= 0
    student = people.persona == PERSONA_STUDENT
    family = take(voc.family.words, people.family)
    given = take(voc.given.words, people.given)
    middle = take(voc.middle.words, np.maximum(people.middle, 0))
    name = pc.if_else(
        pa.array(vietnamese),
        pc.binary_join_element_wise(family, middle, given, " "),
        pc.binary_join_element_wise(given, family, " "),
    )
    f_family = take(voc.family.folded, people.family)
    f_given = take(voc.given.folded, people.given)
    f_middle = take(voc.middle.folded, np.maximum(people.middle, 0))
    initial = pc.utf8_slice_codeunits(f_given, 0, 1)
    digits = pc.cast(pa.array(people.email_digits), pa.string())
    style = np.where(people.personal_domain >= 0, people.email_style % 2 + 5, people.email_style)
    local = pc.choose(
        pa.array(style.astype(np.int8)),
        pc.binary_join_element_wise(f_given, f_family, "."),
        pc.binary_join_element_wise(initial, f_family, ""),
        f_given,
        pc.binary_join_element_wise(f_given, f_family, "_"),
        pc.binary_join_element_wise(f_given, f_family, ""),
        pc.binary_join_element_wise(f_given, f_family, digits, ""),
        pc.binary_join_element_wise(f_given, f_family, digits, "."),
    )
    vn_local = pc.choose(
        pa.array((people.email_style % 4).astype(np.int8)),
        pc.binary_join_element_wise(f_family, f_middle, f_given, "."),  # nguyen.thi.huong
        pc.binary_join_element_wise(f_given, f_family, "."),  # huong.nguyen
        pc.binary_join_element_wise(  # huongnt
            f_given, pc.utf8_slice_codeunits(f_family, 0, 1), pc.utf8_slice_codeunits(f_middle, 0, 1), ""
        ),
        pc.binary_join_element_wise(f_given, f_family, ""),
    )
    local = pc.if_else(pa.array(vietnamese), vn_local, local)
    domain = companies.domain.take(pa.array(people.company))
    own = people.personal_domain
    domain = pc.if_else(pa.array(own >= 100), take(plain["student_domain"], np.maximum(own - 100, 0)), domain)
    domain = pc.if_else(pa.array((own >= 0) & (own < 100)), take(plain["personal"], np.where(own < 100, np.maximum(own, 0), 0)), domain)
    email = pc.binary_join_element_wise(local, domain, "@")

    title = take(voc.titles.words, np.maximum(people.title, 0))
    seeker = take(voc.seeker_titles.words, np.maximum(-2 - people.title, 0))
    title = pc.if_else(pa.array(people.title < 0), seeker, title)
    title = pc.choose(
        pa.array(people.mess.astype(np.int8)),
        title,
        pc.utf8_lower(title),
        pc.utf8_upper(title),
        pc.binary_join_element_wise("  ", title, " ", ""),
        pc.binary_join_element_wise(pc.replace_substring(title, " ", "  "), " ", ""),
        pc.binary_join_element_wise("  ", pc.utf8_lower(title), " ", ""),
    )
    company = companies.name.take(pa.array(people.company))
    university = take(voc.universities.words, voc.universities.pick(rng, people.country))
    company = pc.if_else(pa.array(student), university, company)
    company = _mask(company, student & (people.company % 2 == 0))
    industry = take(plain["industry"], np.where(student, v.INDUSTRIES.index("education"), people.industry))
    size = pa.array(people.size, mask=(student | (people.missing & 4 > 0)))
    nanp = np.isin(people.country, [_country("US"), _country("CA")])
    phone_digits = pc.if_else(
        pa.array(nanp),
        digit_string(rng, n, "ddd 555 01dd"),
        pc.if_else(pa.array(vietnamese), digit_string(rng, n, "9dd ddd ddd"),
                   digit_string(rng, n, "ddd ddd dddd")),
    )
    phone = pc.binary_join_element_wise(take(plain["phone_prefix"], people.country), phone_digits, "")
    return pa.table(
        {
            "lead_id": lead_id,
            "name": name,
            "email": email,
            "phone": _mask(phone, people.missing & 8 > 0),
            "job_title": _mask(title, people.missing & 1 > 0),
            "seniority": take(plain["seniority"], people.seniority),
            "company": company,
            "industry": _mask(industry, people.missing & 2 > 0),
            "company_size": size,
            "country": take(plain["country"], people.country),
            "source": take(plain["source"], people.source),
            "created_at": created_at,
            "consent_email": pa.array(people.consent_email),
            "consent_ads": pa.array(people.consent_ads),
        }
    )
