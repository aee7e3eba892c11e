"""API keys over the API (admin only), revocation taking effect, and per-key rate limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from leadscore.api import create_app
from leadscore.cli import app as cli_app
from leadscore.config import Settings
from leadscore.service.keys import (
    KEY_CACHE_SECONDS,
    SHARED_SLOTS,
    RateLimiter,
    SharedRateLimiter,
    create_shared_buckets,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_admin_creates_lists_and_revokes_keys(client: TestClient) -> None:
    created = client.post("/v1/keys", json={"name": "crm-sync Đà Nẵng 🚀", "scope": "ingest"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["key"].startswith("lsk_") and body["key"].startswith(body["prefix"])
    assert body["scope"] == "ingest" and body["revoked_at"] is None
    assert body["name"] == "crm-sync Đà Nẵng 🚀"
    listed = client.get("/v1/keys").json()["keys"]
    assert [k["name"] for k in listed] == ["admin", "ingest", "read", "crm-sync Đà Nẵng 🚀"]
    assert all("key" not in k for k in listed)  # the key itself is never shown again
    assert body["key"] not in client.get("/v1/keys").text

    new = bearer(body["key"])
    assert client.post("/v1/events", json={"lead_id": "L1", "type": "page_view"}, headers=new).status_code == 200
    assert client.get("/v1/leads", headers=new).status_code == 403  # ingest cannot read

    revoked = client.delete(f"/v1/keys/{body['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    # at once in this process, although the key was remembered by the cache a moment ago
    refused = client.post("/v1/events", json={"lead_id": "L1", "type": "page_view"}, headers=new)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["message"]
    again = client.delete(f"/v1/keys/{body['id']}")  # idempotent: the first revocation time stays
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x", "scope": "root"}, "scope"),
    ({"name": "   ", "scope": "read"}, "name"),
    ({"name": 3, "scope": "read"}, "name"),
    ({"name": "x" * 201, "scope": "read"}, "name"),
    ({"scope": "read"}, "name"),
    ({"name": "x", "scope": "read", "extra": 1}, "extra"),
])
def test_bad_key_requests_are_refused_with_the_field(client: TestClient, body: object, field: str) -> None:
    response = client.post("/v1/keys", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert len(client.get("/v1/keys").json()["keys"]) == 3  # nothing created


def test_revoking_an_unknown_key_is_404(client: TestClient) -> None:
    response = client.delete("/v1/keys/424242")
    assert response.status_code == 404
    assert response.json()["field"] == "key_id"


def test_a_key_revoked_elsewhere_stops_working_within_the_cache_time(client: TestClient) -> None:
    """`leadscore keys revoke` runs in another process: this one notices when its cache
    entry expires (KEY_CACHE_SECONDS)."""
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    clock = Clock()
    ctx.keys.clock = clock
    ctx.keys.forget()
    read = client.headers_for["read"]  # type: ignore[attr-defined]
    assert client.get("/v1/leads", headers=read).status_code == 200
    url = ctx.settings.database_url
    result = CliRunner().invoke(cli_app, ["keys", "revoke", "read", "--db", url])
    assert result.exit_code == 0, result.output
    clock.now += KEY_CACHE_SECONDS - 0.5
    assert client.get("/v1/leads", headers=read).status_code == 200  # still remembered
    clock.now += 1.0
    response = client.get("/v1/leads", headers=read)
    assert response.status_code == 401
    assert response.json()["message"] == "API key 'read' was revoked"


def test_rate_limit_gives_429_with_retry_after(client: TestClient) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    clock = Clock()
    ctx.limiter = RateLimiter(0.5, 3, clock=clock)  # 3 at once, then one every 2 s
    read = client.headers_for["read"]  # type: ignore[attr-defined]
    for _ in range(3):
        assert client.get("/v1/leads", headers=read).status_code == 200
    limited = client.get("/v1/leads", headers=read)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.json()["error"] == "rate_limited"
    assert "'read'" in limited.json()["message"]
    # another key has its own bucket
    assert client.get("/v1/leads", headers=client.headers_for["admin"]).status_code == 200  # type: ignore[attr-defined]
    clock.now += 0.3  # a refused request took nothing; 1.15 tokens short -> still 429, Retry-After >= 1
    again = client.get("/v1/leads", headers=read)
    assert again.status_code == 429 and int(again.headers["retry-after"]) >= 1
    clock.now += 1.8
    assert client.get("/v1/leads", headers=read).status_code == 200
    assert client.get("/v1/leads", headers=read).status_code == 429


def test_rate_limit_comes_from_the_settings_and_zero_turns_it_off(tmp_path: Path) -> None:
    settings = Settings(database_url="sqlite://", scheduler=False, rate_limit_per_second=0)
    limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    assert not limiter.enabled
    assert all(limiter.wait(1) == 0.0 for _ in range(10_000))
    defaults = Settings()
    assert (defaults.rate_limit_per_second, defaults.rate_limit_burst) == (1000.0, 2000)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'rl.db'}", scheduler=False,
                              rate_limit_per_second=7,
                              rate_limit_burst=9))
    with TestClient(app):
        limiter = app.state.ctx.limiter
        assert (limiter.rate, limiter.capacity) == (7.0, 9.0)


def test_the_bucket_refills_at_the_rate_and_never_beyond_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(10, 5, clock=clock)
    assert [limiter.wait(1) for _ in range(5)] == [0.0] * 5
    assert limiter.wait(1) == pytest.approx(0.1)
    clock.now += 100  # a long pause refills to the burst, not more
    assert sum(limiter.wait(1) == 0.0 for _ in range(20)) == 5


def test_shared_buckets_hold_one_limit_for_every_process_and_key_by_key(tmp_path: Path) -> None:
    """Two limiters on one bucket file, as two workers of ``serve --workers 2`` have: a
    key's burst is spent once in all, not once in each; another key has its own."""
    path = create_shared_buckets(tmp_path / "rate-limits")
    first, second = SharedRateLimiter(0.01, 3, path), SharedRateLimiter(0.01, 3, path)
    try:
        assert [first.wait(7), second.wait(7), first.wait(7)] == [0.0, 0.0, 0.0]
        assert second.wait(7) > 0 and first.wait(7) > 0
        assert second.wait(8) == 0.0
        assert first.wait(7 + SHARED_SLOTS) == 0.0  # the same first slot, a bucket of its own
    finally:
        first.close()
        second.close()


def test_keys_create_says_which_database_holds_the_key(tmp_path: Path) -> None:
    """A key made for another database than the server's is the classic PostgreSQL trap:
    `keys create` names the database (without a password) beside the one-time key."""
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    result = CliRunner().invoke(cli_app, ["keys", "create", "--name", "crm", "--scope", "read", "--db", url])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("lsk_")
    assert f"created key 1 'crm' (scope read) in {url}; it is shown only once:" in result.output
    listed = CliRunner().invoke(cli_app, ["keys", "list", "--db", url])
    assert listed.output.splitlines()[0].split("\t") == ["id", "prefix", "scope", "name", "state"]
    assert listed.output.splitlines()[1].split("\t")[2:] == ["read", "crm", "active"]
