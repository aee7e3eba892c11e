"""Webhook signing, secret references and the URL guard.

URL guard (SSRF): by default a webhook may only go to public addresses. A target whose
host is, or resolves to, a private, loopback, link-local, shared, multicast, reserved or
unspecified address (IPv4 or IPv6, IPv4-mapped IPv6 included) is refused, before any
connection is made; the outbox row records why. ``LEADSCORE_WEBHOOK_ALLOW`` (comma-separated
host names, addresses and networks, e.g. ``127.0.0.1,10.0.0.0/8,crm.internal``) permits
targets that are not public. The delivery then connects to the address that was checked
(no second DNS lookup), so a name that resolves to a public address when checked and to a
private one a moment later (DNS rebinding) cannot get through.

Signature (Stripe-style): ``X-Leadscore-Signature: t=<unix seconds>,v1=<hex>`` where
``hex = HMAC-SHA256(secret, "<t>." + body)``; receivers recompute it and refuse a
timestamp older than a few minutes (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from leadscore.errors import LeadscoreError
from leadscore.model.automation import ENV_REFERENCE

SIGNATURE_HEADER = "X-Leadscore-Signature"
TIMESTAMP_HEADER = "X-Leadscore-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class DeliveryError(LeadscoreError):
    """A message could not be prepared for delivery (missing secret, refused URL)."""


URLGuard = Callable[[str], None]
ALLOW_ENV = "LEADSCORE_WEBHOOK_ALLOW"
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AllowList:
    """Targets permitted although not public: host names (exact, case ignored) and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        hosts: set[str] = set()
        networks: list[Network] = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def permits(self, address: Address) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)


@lru_cache(maxsize=8)
def _allow_list(text: str) -> AllowList:
    return AllowList.parse(text)


_configured: list[str | None] = [None]


def set_allow_list(text: str | None) -> None:
    """Use ``text`` (the setting ``webhook_allow``) instead of ``LEADSCORE_WEBHOOK_ALLOW``
    (None: back to the environment)."""
    _configured[0] = text


def allow_list() -> AllowList:
    """The allow-list: the one set by :func:`set_allow_list`, else ``LEADSCORE_WEBHOOK_ALLOW``."""
    configured = _configured[0]
    return _allow_list(configured if configured is not None else os.environ.get(ALLOW_ENV, ""))


def unmapped(address: Address) -> Address:
    """The IPv4 address inside an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``), else the address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052, well-known prefix: IPv4 in the low 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: local use, not global
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d (and :: and ::1)


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and that a connection to it may reach:
    IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::a.b.c.d``, 6to4 ``2002:AABB:CCDD::``
    and IPv4-compatible ``::a.b.c.d``; None for any other address."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: Address) -> bool:
    """True for a globally routable unicast address; an IPv6 address that carries an IPv4
    address (:func:`embedded_ipv4`) is judged by that IPv4 address (so that neither
    ``64:ff9b::a9fe:a9fe`` nor ``2002:7f00:1::`` nor ``::7f00:1`` reaches 169.254.169.254 or
    127.0.0.1 through a NAT64 gateway, a 6to4 relay or an old stack)."""
    inner = embedded_ipv4(address)
    if inner is not None:
        address = inner
    elif isinstance(address, ipaddress.IPv6Address) and address in _NAT64_LOCAL:
        return False
    return address.is_global and not address.is_multicast


Resolver = Callable[[str, int], Sequence[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6), the preferred one first."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))  # the system's order of preference


@dataclass(frozen=True)
class Target:
    """A checked webhook target: the URL and the address to connect to."""

    url: str
    host: str
    address: str | None  # None: connect by name (an allow-listed host name)


def check_target(url: str, *, allow: AllowList | None = None, resolver: Resolver | None = None) -> Target:
    """Refuse (DeliveryError) a URL whose host is, or resolves to, a non-public address
    not on the allow-list; return the address to connect to."""
    allow = allow if allow is not None else allow_list()
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise DeliveryError(f"refused webhook target: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError("refused webhook target: the URL needs http:// or https:// and a host")
    host = parts.hostname.lower().rstrip(".")
    if host in allow.hosts:
        return Target(url, host, None)
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        candidates = [str(literal)]
    else:
        try:
            candidates = list((resolver or resolve)(host, port))
        except OSError as exc:
            raise DeliveryError(f"refused webhook target: cannot resolve host '{host}' ({exc})") from None
        if not candidates:
            raise DeliveryError(f"refused webhook target: host '{host}' has no address")
    for candidate in candidates:
        address = ipaddress.ip_address(candidate.split("%", 1)[0])
        if not is_public(address) and not (allow.permits(address) or allow.permits(unmapped(address))):
            inner = unmapped(address)
            shown = f"::ffff:{inner}" if inner is not address else str(address)
            what = "is" if literal is not None else f"resolves to {shown}, which is"
            raise DeliveryError(
                f"refused webhook target: host '{host}' {what} not a public address "
                f"(private, loopback, link-local or reserved); to allow it, add it to {ALLOW_ENV}"
            )
    return Target(url, host, candidates[0])


def _default_guard(url: str) -> None:
    check_target(url)


_guard: list[URLGuard] = [_default_guard]


def set_url_guard(guard: URLGuard | None) -> None:
    """Install ``guard(url)``, which raises :class:`DeliveryError` to refuse a target
    (None: back to the default guard, :func:`check_target`)."""
    _guard[0] = guard or _default_guard


def check_url(url: str) -> Target | None:
    """Run the guard; with the default guard, the checked target (to connect to its address)."""
    if _guard[0] is _default_guard:
        return check_target(url)
    _guard[0](url)
    return None


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
