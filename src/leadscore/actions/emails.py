"""E-mail actions: recipients, consent, the per-lead rate limit and sandboxed Jinja templates."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from leadscore.model.automation import EmailAction, EmailSettings
from leadscore.store.tables import leads
from leadscore.store.tables_automation import lead_owners, outbox

MICROS = 1_000_000
ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TRUE_TEXTS = frozenset({"true", "yes", "y", "1", "opt-in", "opted_in", "subscribed"})
_env = SandboxedEnvironment(autoescape=False)  # a missing attribute renders as ""


def truthy(value: Any) -> bool:
    """Consent is given by ``true``, ``1`` or one of :data:`TRUE_TEXTS` (any case, outer
    white space ignored)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in TRUE_TEXTS


def lead_refusal(attributes: dict[str, Any], settings: EmailSettings) -> str | None:
    """Why a lead must not be e-mailed (None: it may be)."""
    if truthy(attributes.get(settings.unsubscribed_attribute)):
        return f"the lead unsubscribed ({settings.unsubscribed_attribute})"
    if not truthy(attributes.get(settings.consent_attribute)):
        return f"no e-mail consent ({settings.consent_attribute})"
    address = attributes.get(settings.email_attribute)
    if not isinstance(address, str) or not ADDRESS.match(address.strip()):
        return f"no valid e-mail address in '{settings.email_attribute}'"
    return None


@lru_cache(maxsize=256)
def _template(text: str) -> Any:
    return _env.from_string(text)


def render(text: str, context: dict[str, Any]) -> str:
    return str(_template(text).render(**context))


def recipient(
    session: Session, action: EmailAction, settings: EmailSettings, lead_pk: int,
    attributes: dict[str, Any],
) -> tuple[str | None, str | None]:
    """``(address, None)`` or ``(None, reason not to send)``."""
    if action.to == "lead":
        reason = lead_refusal(attributes, settings)
        if reason is not None:
            return None, reason
        return str(attributes[settings.email_attribute]).strip(), None
    if action.to == "owner":
        owner = session.execute(
            select(lead_owners.c.owner).where(lead_owners.c.lead_pk == lead_pk)
        ).scalar_one_or_none()
        if owner is None or not ADDRESS.match(owner):
            return None, "the lead has no owner with an e-mail address"
        return owner, None
    return action.to, None


def over_rate_limit(session: Session, settings: EmailSettings, lead_pk: int, now_us: int) -> bool:
    """Has the lead had ``rate_limit.max`` e-mails (queued, to the lead itself) in the window?"""
    since = now_us - int(settings.rate_limit.per_hours * 3600 * MICROS)
    sent = session.execute(
        select(func.count()).select_from(outbox).where(
            outbox.c.kind == "email_lead", outbox.c.lead_pk == lead_pk, outbox.c.created_us > since,
        )
    ).scalar_one()
    return int(sent) >= settings.rate_limit.max


def refusal(session: Session, row: Any) -> str | None:
    """At send time: an e-mail to a lead is not sent when the lead withdrew consent,
    unsubscribed or was erased since the e-mail was queued."""
    consent = row.payload.get("consent")
    if not consent:
        return None
    attributes = session.execute(
        select(leads.c.attributes).where(leads.c.id == row.lead_pk)
    ).scalar_one_or_none()
    if attributes is None:
        return "the lead no longer exists"
    settings = EmailSettings.model_validate(consent)
    return lead_refusal(attributes, settings)
