"""Errors of the service layer. The API maps each to an HTTP status in one table
(:data:`leadscore.api.app.STATUS_OF`); the CLI prints them on one line."""

from __future__ import annotations

from leadscore.errors import LeadscoreError


class ServiceError(LeadscoreError):
    """A request to the service cannot be carried out; ``field`` names the part at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidRequest(ServiceError):
    """The data sent is invalid (a wrong type, a missing field, a bad timestamp, ...)."""


class NotFound(ServiceError):
    """The lead (or other thing) asked for does not exist."""


class Unauthenticated(ServiceError):
    """No API key, or a key that is unknown or revoked."""


class Forbidden(ServiceError):
    """The API key is valid but its scope does not allow this."""


class PayloadTooLarge(ServiceError):
    """The request body is larger than the limit."""


class RateLimited(ServiceError):
    """The API key made more requests than its rate limit allows; ``retry_after`` is the
    wait, in whole seconds (at least 1), before the next request can succeed."""

    def __init__(self, message: str, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field)
        self.retry_after = max(1, int(retry_after))
