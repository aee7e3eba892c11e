"""The session secret is shared through the store: a restart keeps the session, and two
processes over one database accept each other's cookies."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from leadscore.api import create_app
from leadscore.config import Settings
from leadscore.service.keys import create_key
from leadscore.store.tables_analytics import settings_kv
from leadscore.web.security import COOKIE, SECRET_ENV
from web.conftest import csrf_of


def _app(url: str) -> TestClient:
    return TestClient(create_app(Settings(database_url=url, scheduler=False)))


def _signed_in_cookie(client: TestClient, token: str) -> str:
    page = client.get("/signin")
    response = client.post("/signin", data={"key": token, "csrf_token": csrf_of(page.text), "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    cookie = response.cookies.get(COOKIE)
    assert cookie
    return cookie


def _page_with(client: TestClient, cookie: str, path: str = "/segments") -> int:
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie)
    return client.get(path, follow_redirects=False).status_code


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)


def test_two_apps_over_one_database_accept_each_others_cookie(db_url: str) -> None:
    with _app(db_url) as first, _app(db_url) as second:
        with first.app.state.ctx.store.write() as session:  # type: ignore[attr-defined]
            token = create_key(session, "me", "read", 0)[1]
        from_first = _signed_in_cookie(first, token)
        from_second = _signed_in_cookie(second, token)
        assert _page_with(second, from_first) == 200
        assert _page_with(first, from_second) == 200
        # a cookie signed with another secret is still refused
        assert _page_with(first, from_first[:-4] + "AAAA") == 303
        with first.app.state.ctx.store.read() as session:  # type: ignore[attr-defined]
            assert session.execute(select(func.count()).select_from(settings_kv)).scalar_one() == 1


def test_a_restart_keeps_the_session(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    with _app(url) as before:
        with before.app.state.ctx.store.write() as session:  # type: ignore[attr-defined]
            token = create_key(session, "me", "read", 0)[1]
        cookie = _signed_in_cookie(before, token)
        assert _page_with(before, cookie) == 200
    with _app(url) as after:  # a new process: nothing kept in memory
        assert _page_with(after, cookie) == 200


def test_the_environment_secret_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    with _app(url) as stored:
        with stored.app.state.ctx.store.write() as session:  # type: ignore[attr-defined]
            token = create_key(session, "me", "read", 0)[1]
        cookie = _signed_in_cookie(stored, token)
    monkeypatch.setenv(SECRET_ENV, "an operator's own secret, ünïcode too")
    with _app(url) as configured:
        assert _page_with(configured, cookie) == 303  # signed with the stored secret: not accepted
        assert _page_with(configured, _signed_in_cookie(configured, token)) == 200
