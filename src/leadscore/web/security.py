"""Sessions and CSRF tokens of the dashboard.

Signing in with an API key gives a session cookie (``ls_session``): HttpOnly,
SameSite=Lax, Secure when the page is served over https, signed with HMAC-SHA256. It
holds the key's id, a fingerprint of the key's hash (so a revoked or replaced key ends
the session at the next request), when it was issued, and a random nonce. Every form
carries a CSRF token, the HMAC of that nonce; htmx requests send it in ``X-CSRF-Token``.
Visitors who are not signed in get a session without a key, so the sign-in form is
protected too; signing in issues a new nonce (no session fixation).

The signing secret is ``LEADSCORE_SESSION_SECRET`` when set; otherwise one drawn at
random by the first process that needs it and kept in the store (table ``settings_kv``),
so a restart keeps everyone signed in and several processes over one database accept
each other's cookies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from leadscore.store.tables_analytics import settings_kv

# the pages open without signing in (every other page calls base.require first); here, not in
# the package, for the API to read them while the package is being imported (a page module
# imports the API's dependencies, which import the app)
OPEN_PATHS = ("/signin", "/signout", "/static/")

COOKIE = "ls_session"
MAX_AGE_S = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SECRET_ENV = "LEADSCORE_SESSION_SECRET"
SECRET_SETTING = "web.session_secret"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class WebSession:
    """The content of a session cookie."""

    nonce: str
    key_id: int | None = None
    key_print: str | None = None
    issued_s: int = 0

    @property
    def signed_in(self) -> bool:
        return self.key_id is not None


class Signer:
    """Signs and checks session cookies and CSRF tokens with one secret."""

    def __init__(self, secret: bytes | None = None) -> None:
        env = os.environ.get(SECRET_ENV)
        self.secret = secret or (env.encode() if env else secrets.token_bytes(32))

    def _mac(self, purpose: str, payload: bytes) -> str:
        return _b64(hmac.new(self.secret, purpose.encode() + b"\0" + payload, hashlib.sha256).digest())

    def dump(self, session: WebSession) -> str:
        payload = json.dumps(
            {"n": session.nonce, "k": session.key_id, "p": session.key_print, "t": session.issued_s},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{self._mac('session', payload)}"

    def load(self, cookie: str | None, now_s: float | None = None) -> WebSession | None:
        """The session of a cookie; None when missing, tampered with or expired."""
        if not cookie or "." not in cookie:
            return None
        body, mac = cookie.rsplit(".", 1)
        try:
            payload = _unb64(body)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            data = json.loads(payload)
            session = WebSession(str(data["n"]), data["k"], data["p"], int(data["t"]))
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time() if now_s is None else now_s
        if session.signed_in and not 0 <= now - session.issued_s <= MAX_AGE_S:
            return None
        return session

    def csrf_token(self, session: WebSession) -> str:
        return self._mac("csrf", session.nonce.encode())

    def check_csrf(self, session: WebSession | None, token: str | None) -> bool:
        return bool(session and token and hmac.compare_digest(token, self.csrf_token(session)))


def key_print(key_hash: str) -> str:
    """A short fingerprint of a key's stored hash (changes when the key does)."""
    return key_hash[:16]


def new_session(key_id: int | None = None, key_hash: str | None = None) -> WebSession:
    return WebSession(
        nonce=secrets.token_urlsafe(16), key_id=key_id,
        key_print=key_print(key_hash) if key_hash else None, issued_s=int(time.time()),
    )


def stored_secret(session: Session, now_us: int) -> bytes:
    """The session secret kept in the store, created at the first call.

    Concurrent first calls (several workers starting together) insert with "on conflict
    do nothing" and then all read the one row that won, so they agree."""
    query = select(settings_kv.c.value).where(settings_kv.c.name == SECRET_SETTING)
    found = session.execute(query).scalar_one_or_none()
    if found is None:
        dialect = session.get_bind().dialect.name
        values = {"name": SECRET_SETTING, "value": secrets.token_urlsafe(32), "created_us": now_us}
        if dialect == "sqlite":
            session.execute(sqlite.insert(settings_kv).values(values).on_conflict_do_nothing(index_elements=["name"]))
        elif dialect == "postgresql":
            session.execute(
                postgresql.insert(settings_kv).values(values).on_conflict_do_nothing(index_elements=["name"]))
        else:
            raise NotImplementedError(f"no insert-if-absent for dialect '{dialect}'; set {SECRET_ENV}")
        found = session.execute(query).scalar_one()
    return str(found).encode()


def signing_secret(write_session: Session, now_us: int) -> bytes:
    """``LEADSCORE_SESSION_SECRET`` when set, else the secret kept in the store."""
    env = os.environ.get(SECRET_ENV)
    return env.encode() if env else stored_secret(write_session, now_us)
