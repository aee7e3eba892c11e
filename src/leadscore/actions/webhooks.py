"""Webhook signing, secret references and the URL guard.

Signature (Stripe-style): ``X-Leadscore-Signature: t=<unix seconds>,v1=<hex>`` where
``hex = HMAC-SHA256(secret, "<t>." + body)``; receivers recompute it and refuse a
timestamp older than a few minutes (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

from leadscore.errors import LeadscoreError
from leadscore.model.automation import ENV_REFERENCE

SIGNATURE_HEADER = "X-Leadscore-Signature"
TIMESTAMP_HEADER = "X-Leadscore-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class DeliveryError(LeadscoreError):
    """A message could not be prepared for delivery (missing secret, refused URL)."""


URLGuard = Callable[[str], None]


def _allow_all(url: str) -> None:
    """The default guard: every URL is allowed (a later hardening issue plugs an SSRF guard in)."""


_guard: list[URLGuard] = [_allow_all]


def set_url_guard(guard: URLGuard | None) -> None:
    """Install ``guard(url)``, which raises :class:`DeliveryError` to refuse a target."""
    _guard[0] = guard or _allow_all


def check_url(url: str) -> None:
    _guard[0](url)


def expand(text: str) -> str:
    """Replace ``${ENV_VAR}`` references by the environment's values (at send time only,
    so secrets never reach the database)."""

    def value(match: object) -> str:
        name = match.group(1)  # type: ignore[attr-defined]
        found = os.environ.get(name)
        if found is None:
            raise DeliveryError(f"environment variable {name} is not set")
        return found

    return ENV_REFERENCE.sub(value, text)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The value of the ``X-Leadscore-Signature`` header."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, now: int, tolerance_s: int = 300) -> bool:
    """Check a signature header (what a receiver does)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)
