"""Sending one outbox row: a signed webhook POST (httpx) or an e-mail (SMTP)."""

from __future__ import annotations

import json
import smtplib
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import httpx

from leadscore.actions.config import DeliveryConfig
from leadscore.actions.outbox import Attempt
from leadscore.actions.webhooks import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryError,
    Target,
    check_url,
    expand,
    sign,
)

ConsentCheck = Callable[[Any], str | None]  # row -> reason not to send, or None


def body_of(payload: dict[str, Any]) -> bytes:
    """The exact bytes POSTed (and signed)."""
    return json.dumps(payload["body"], separators=(",", ":"), sort_keys=True).encode()


def _pinned(url: str, target: Target | None) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """The URL to request: to the address the guard checked (no second DNS lookup), with the
    name in ``Host`` and, for https, in SNI and the certificate check."""
    parsed = httpx.URL(url)
    if target is None or target.address is None or target.address == parsed.host:
        return parsed, {}, {}
    headers = {"Host": parsed.netloc.decode("ascii").rpartition("@")[2]}
    extensions: dict[str, Any] = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    return parsed.copy_with(host=target.address), headers, extensions


def send_webhook(row: Any, client: httpx.Client) -> Attempt:
    """POST the signed payload. The error recorded in the outbox (and shown to admins)
    never holds the URL, which may carry a secret; the dispatcher's log line holds only
    the error's kind or HTTP status (docs/security.md, "Logs")."""
    started = time.perf_counter()
    payload = row.payload
    try:
        url = expand(row.target)
        target = check_url(url)
        request_url, pin_headers, extensions = _pinned(url, target)
        body = body_of(payload)
        now = int(time.time())
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: row.idempotency_key,
                   TIMESTAMP_HEADER: str(now), "User-Agent": "leadscore-webhooks", **pin_headers}
        if payload.get("secret"):
            headers[SIGNATURE_HEADER] = sign(expand(payload["secret"]), body, now)
    except DeliveryError as exc:
        return Attempt(False, None, (time.perf_counter() - started) * 1000, str(exc))
    timeout = float(payload.get("timeout_seconds", 5.0))
    try:
        request = client.build_request("POST", request_url, content=body, headers=headers,
                                       timeout=timeout, extensions=extensions)
        response = client.send(request)
    except httpx.TimeoutException as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return Attempt(False, None, elapsed, f"{type(exc).__name__}: no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return Attempt(False, None, elapsed, f"{type(exc).__name__}: {_reason(exc)}"[:300])
    elapsed = (time.perf_counter() - started) * 1000
    if 200 <= response.status_code < 300:
        return Attempt(True, response.status_code, elapsed)
    return Attempt(False, response.status_code, elapsed,
                   f"HTTP {response.status_code}: {response.text[:200]}")


def _reason(exc: Exception) -> str:
    """An httpx error without any URL in it (a URL may hold a secret or a lead's data)."""
    text = str(exc)
    for word in text.split():
        if "://" in word:
            text = text.replace(word, "<url>")
    return text


def send_email(row: Any, config: DeliveryConfig, refuse: ConsentCheck | None = None) -> Attempt:
    started = time.perf_counter()
    payload = row.payload
    if refuse is not None:
        reason = refuse(row)
        if reason is not None:
            return Attempt(False, None, 0.0, reason, permanent=True, skipped=True)
    message = EmailMessage()
    message["From"] = payload["from"]
    message["To"] = row.target
    message["Subject"] = payload["subject"]
    message["X-Leadscore-Idempotency-Key"] = row.idempotency_key
    message.set_content(payload["body"])
    try:
        with smtplib.SMTP(config.smtp_host, config.smtp_port,
                          timeout=config.smtp_timeout_seconds) as smtp:
            if config.smtp_starttls:
                smtp.starttls()
            if config.smtp_user:
                smtp.login(config.smtp_user, config.smtp_password or "")
            refused = smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        elapsed = (time.perf_counter() - started) * 1000
        code = getattr(exc, "smtp_code", None)
        return Attempt(False, code if isinstance(code, int) else None, elapsed,
                       f"{type(exc).__name__}: {exc}"[:500])
    elapsed = (time.perf_counter() - started) * 1000
    if refused:
        return Attempt(False, None, elapsed, f"refused: {refused}")
    return Attempt(True, 250, elapsed)
