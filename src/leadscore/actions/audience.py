"""Audience exports for ad platforms' customer-list uploads: normalised, SHA-256-hashed
e-mails and phones of a segment's consenting members.

Normalisation follows each platform's documentation (docs/automation.md, "Audience export"):

* ``meta`` (Meta custom audiences, the default): e-mail trimmed and lower-cased; phone as
  digits only, with the country code, no ``+`` and no leading zeros (``16505551234``).
* ``google`` (Google Ads Customer Match): e-mail trimmed and lower-cased, and for
  ``gmail.com`` / ``googlemail.com`` the dots before the ``@`` removed; phone in E.164
  *with* the ``+`` (``+16505551234``).

A number without a country code (no leading ``+`` or ``00``) gets ``default_country_code``
after dropping a national trunk ``0``; without a default it is left out, never guessed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from leadscore.actions.emails import ADDRESS, truthy
from leadscore.errors import UsageError
from leadscore.ingest.files import CsvWriter, atomic_path
from leadscore.store.tables import leads
from leadscore.store.tables_automation import segment_members

PLATFORMS = ("meta", "google")
_GMAIL = ("gmail.com", "googlemail.com")


def normalise_email(value: Any, platform: str = "meta") -> str | None:
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if not ADDRESS.match(email):
        return None
    if platform == "google":
        local, _, domain = email.partition("@")
        if domain in _GMAIL:
            email = f"{local.replace('.', '')}@{domain}"
    return email


def normalise_phone(value: Any, platform: str = "meta", default_country_code: str | None = None) -> str | None:
    """E.164 digits (``meta``: no ``+``; ``google``: with ``+``), or None."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not text:
        return None
    international = text.startswith("+") or text.startswith("00")
    digits = re.sub(r"\D", "", text)
    if text.startswith("00"):
        digits = digits[2:]
    if not international:
        if not default_country_code:
            return None
        digits = default_country_code.lstrip("+") + digits.lstrip("0")
    digits = digits.lstrip("0")
    if not 8 <= len(digits) <= 15:  # E.164: at most 15 digits with the country code
        return None
    return f"+{digits}" if platform == "google" else digits


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class AudienceSummary:
    members: int = 0
    exported: int = 0
    without_consent: int = 0
    without_identifier: int = 0


@dataclass(frozen=True)
class AudienceOptions:
    platform: str = "meta"
    consent_attribute: str = "consent_ads"
    email_attribute: str = "email"
    phone_attribute: str = "phone"
    default_country_code: str | None = None

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            raise UsageError(f"--platform: unknown platform '{self.platform}'; use one of {', '.join(PLATFORMS)}")


def audience_rows(session: Session, segment: str, options: AudienceOptions,
                  summary: AudienceSummary) -> Iterator[tuple[str, str]]:
    """``(hashed e-mail, hashed phone)`` of each current member who consented (either may be '')."""
    query = (
        select(leads.c.attributes)
        .join(segment_members, segment_members.c.lead_pk == leads.c.id)
        .where(segment_members.c.segment == segment, segment_members.c.left_us.is_(None))
        .order_by(segment_members.c.id)
    )
    for (attributes,) in session.execute(query):
        attributes = attributes or {}
        summary.members += 1
        if not truthy(attributes.get(options.consent_attribute)):
            summary.without_consent += 1
            continue
        email = normalise_email(attributes.get(options.email_attribute), options.platform)
        phone = normalise_phone(attributes.get(options.phone_attribute), options.platform,
                                options.default_country_code)
        if email is None and phone is None:
            summary.without_identifier += 1
            continue
        summary.exported += 1
        yield (sha256(email) if email else "", sha256(phone) if phone else "")


def export_audience(session: Session, segment: str, out: Path, options: AudienceOptions) -> AudienceSummary:
    """Write the CSV (columns ``email``, ``phone``: the platforms' upload headers)."""
    summary = AudienceSummary()
    with atomic_path(out) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:  # all or nothing
        writer = CsvWriter(handle)  # hex digests, but never trust a cell: formula-safe
        writer.writerow(["email", "phone"])
        for row in audience_rows(session, segment, options, summary):
            writer.writerow(row)
    return summary
