"""API keys: long random tokens; only their SHA-256 is stored, compared in constant time.

A fast hash is right here: the keys have 256 bits of randomness, so there is nothing
to brute-force, and every request checks one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from leadscore.engine import iso
from leadscore.service.errors import Forbidden, InvalidRequest, NotFound, Unauthenticated
from leadscore.store.tables import SCOPES, ApiKeyRow, api_keys

KEY_PREFIX = "lsk_"
# scope -> what it may do; admin may do everything
ALLOWED = {"ingest": {"ingest"}, "read": {"read"}, "admin": {"ingest", "read", "admin"}}


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_key(session: Session, name: str, scope: str, now_us: int) -> tuple[ApiKeyRow, str]:
    """Store a new key; returns the row and the token (shown once, never stored)."""
    if scope not in SCOPES:
        raise InvalidRequest(f"unknown scope '{scope}'; use one of {', '.join(SCOPES)}", "scope")
    if not name.strip():
        raise InvalidRequest("a key needs a name (who or what uses it)", "name")
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKeyRow(
        name=name.strip(), scope=scope, key_hash=hash_key(token), prefix=token[:12],
        created_us=now_us, revoked_us=None,
    )
    session.add(row)
    session.flush()
    return row, token


def authenticate(session: Session, token: str | None) -> ApiKeyRow:
    """The key row of a token; Unauthenticated when missing, unknown or revoked."""
    if not token:
        raise Unauthenticated(
            "missing API key: send the header 'Authorization: Bearer <key>' "
            "(create a key with `leadscore keys create`)", "Authorization"
        )
    digest = hash_key(token)
    row = session.scalars(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest)).one_or_none()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise Unauthenticated("unknown API key", "Authorization")
    if row.revoked_us is not None:
        raise Unauthenticated(f"API key '{row.name}' was revoked", "Authorization")
    return row


def require_scope(key: ApiKeyRow, needed: str) -> None:
    """Forbidden unless the key's scope allows ``needed`` (ingest, read or admin)."""
    if needed not in ALLOWED.get(key.scope, set()):
        raise Forbidden(
            f"API key '{key.name}' has scope '{key.scope}'; this needs scope '{needed}'"
            + (" or 'admin'" if needed != "admin" else ""),
            "Authorization",
        )


def list_keys(session: Session) -> list[ApiKeyRow]:
    return list(session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id)))


def revoke_key(session: Session, ident: str, now_us: int) -> ApiKeyRow:
    """Revoke a key by id, name or the prefix shown by ``keys list``."""
    rows = [r for r in list_keys(session) if ident in (str(r.id), r.name, r.prefix)]
    if not rows:
        raise NotFound(f"no API key with id, name or prefix '{ident}'", "key")
    if len(rows) > 1:
        raise InvalidRequest(f"'{ident}' names {len(rows)} keys; give the id instead", "key")
    row = rows[0]
    session.execute(update(api_keys).where(api_keys.c.id == row.id).values(revoked_us=now_us))
    row.revoked_us = now_us
    return row


def key_public(row: ApiKeyRow) -> dict[str, object]:
    return {
        "id": row.id, "name": row.name, "scope": row.scope, "prefix": row.prefix,
        "created_at": iso(row.created_us),
        "revoked_at": iso(row.revoked_us) if row.revoked_us is not None else None,
    }
