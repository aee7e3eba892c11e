"""Settings of delivery (dispatcher, backoff, SMTP), from ``LEADSCORE_*`` environment
variables, read when asked for (never at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str) -> str:
    return os.environ.get(f"LEADSCORE_{name}", default)


@dataclass(frozen=True)
class DeliveryConfig:
    """How the dispatcher claims, sends and retries outbox rows."""

    enabled: bool = True
    poll_seconds: float = 0.2
    workers: int = 4
    batch: int = 50
    lease_seconds: float = 90.0
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0

    @classmethod
    def from_env(cls) -> DeliveryConfig:
        """``LEADSCORE_DISPATCHER`` (1/0), ``LEADSCORE_DISPATCH_POLL_SECONDS``,
        ``LEADSCORE_DISPATCH_WORKERS``, ``LEADSCORE_DISPATCH_LEASE_SECONDS``,
        ``LEADSCORE_WEBHOOK_BACKOFF_SECONDS``, ``LEADSCORE_WEBHOOK_BACKOFF_MAX_SECONDS``,
        ``LEADSCORE_SMTP_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD``, ``_STARTTLS``."""
        return cls(
            enabled=_env("DISPATCHER", "1").lower() not in ("0", "false", "no", "off"),
            poll_seconds=float(_env("DISPATCH_POLL_SECONDS", "0.2")),
            workers=int(_env("DISPATCH_WORKERS", "4")),
            lease_seconds=float(_env("DISPATCH_LEASE_SECONDS", "90")),
            backoff_seconds=float(_env("WEBHOOK_BACKOFF_SECONDS", "1")),
            backoff_max_seconds=float(_env("WEBHOOK_BACKOFF_MAX_SECONDS", "300")),
            smtp_host=_env("SMTP_HOST", "127.0.0.1"),
            smtp_port=int(_env("SMTP_PORT", "25")),
            smtp_user=os.environ.get("LEADSCORE_SMTP_USER"),
            smtp_password=os.environ.get("LEADSCORE_SMTP_PASSWORD"),
            smtp_starttls=_env("SMTP_STARTTLS", "0").lower() in ("1", "true", "yes", "on"),
        )
