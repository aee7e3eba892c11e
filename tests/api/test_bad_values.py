"""Texts with a NUL character and numbers that are not finite, on SQLite and PostgreSQL:
every door (POST /v1/leads, /v1/events, /v1/segment, ``leadscore import``) refuses them
with a 422 (or an InputError) naming the field, and stores nothing of the request. Before,
PostgreSQL answered 500 in plain text, SQLite stored the NUL, answered 503 "retry" for an
infinity, and dropped a NaN attribute silently."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from tests.api.conftest import MODEL

from leadscore.api import create_app
from leadscore.api.app import database_unavailable
from leadscore.config import Settings
from leadscore.engine import parse_timestamp, to_micros
from leadscore.errors import InputError
from leadscore.service.importer import import_files
from leadscore.service.keys import create_key
from leadscore.service.models import ensure_model
from leadscore.store.db import Store
from leadscore.store.tables import events, leads

NOW = to_micros(parse_timestamp("2026-11-01T00:00:00Z"))


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    (tmp_path / "model.yaml").write_text(MODEL)
    app = create_app(Settings(database_url=db_url, model_file=tmp_path / "model.yaml", scheduler=False))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        with app.state.ctx.store.write() as session:
            _, token = create_key(session, "admin", "admin", 0)
        test_client.headers.update({"Authorization": f"Bearer {token}"})
        yield test_client


def _post(client: TestClient, path: str, body: str) -> Any:
    return client.post(path, content=body.encode(), headers={"Content-Type": "application/json"})


def _nothing_stored(client: TestClient) -> None:
    assert client.get("/v1/leads").json()["leads"] == []


GOOD = '{"lead_id": "L1", "type": "page_view", "properties": {"url": "/pricing"}}'

NUL_CASES = [
    ("/v1/leads", '{"lead_id": "a\\u0000b"}', "lead_id"),
    ("/v1/leads", '{"lead_id": "L1", "attributes": {"title": "VP\\u0000"}}', "attributes.title"),
    ("/v1/leads", '{"lead_id": "L1", "attributes": {"ti\\u0000tle": "VP"}}', "attributes"),
    ("/v1/leads", '{"lead_id": "L1", "attributes": {"tags": ["a", "b\\u0000"]}}', "attributes.tags[1]"),
    ("/v1/events", '{"lead_id": "L\\u0000", "type": "page_view"}', "lead_id"),
    ("/v1/events", '{"lead_id": "L1", "type": "page\\u0000view"}', "type"),
    ("/v1/events", '{"lead_id": "L1", "type": "page_view", "event_id": "e\\u0000"}', "event_id"),
    ("/v1/events", f'{{"events": [{GOOD}, {GOOD}, {GOOD}, '
     '{"lead_id": "L2", "type": "page_view", "properties": {"url": "/p\\u0000"}}]}',
     "events[3].properties.url"),
    ("/v1/events", f'{{"events": [{GOOD}, '
     '{"lead_id": "L2", "type": "page_view", "properties": {"u\\u0000rl": "/p"}}]}',
     "events[1].properties"),
    ("/v1/segment", '{"type": "identify", "userId": "S1", "traits": {"title": "\\u0000"}}', "body.traits.title"),
    ("/v1/segment", '{"batch": [{"type": "track", "userId": "S1", "event": "signup"}, '
     '{"type": "track", "userId": "S1", "event": "signup", "properties": {"plan": "p\\u0000"}}]}',
     "batch[1].properties.plan"),
    ("/v1/segment", '{"type": "track", "userId": "S\\u0000", "event": "signup"}', "body.userId"),
    ("/v1/segment", '{"batch": [{"type": "track", "anonymousId": "A1", "event": "sign\\u0000up"}]}', "batch[0].event"),
    ("/v1/segment", '{"type": "page", "anonymousId": "A1", "messageId": "m\\u0000"}', "body.messageId"),
    ("/v1/segment", '{"type": "identify", "anonymousId": "A\\u0000", "traits": {"a": 1}}', "body.anonymousId"),
]


@pytest.mark.parametrize(("path", "body", "field"), NUL_CASES)
def test_a_nul_character_is_refused_with_its_field_and_nothing_is_stored(
    client: TestClient, path: str, body: str, field: str
) -> None:
    response = _post(client, path, body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "invalid_request"
    assert error["field"] == field
    assert error["message"].startswith(f"{field}: ")
    assert "contains a NUL character" in error["message"]
    _nothing_stored(client)


NON_FINITE = ["1e400", "-1e400", "NaN", "Infinity", "-Infinity"]


@pytest.mark.parametrize("number", NON_FINITE)
@pytest.mark.parametrize(("path", "template", "field"), [
    ("/v1/leads", '{{"lead_id": "L1", "attributes": {{"employees": {n}}}}}', "attributes.employees"),
    ("/v1/leads", '{{"lead_id": "L1", "attributes": {{"sizes": [1, {n}]}}}}', "attributes.sizes"),
    ("/v1/events", f'{{{{"events": [{GOOD.replace("{", "{{").replace("}", "}}")}, '
     '{{"lead_id": "L2", "type": "page_view", "properties": {{"seconds": {n}}}}}]}}',
     "events[1].properties.seconds"),
    ("/v1/segment", '{{"type": "identify", "userId": "S1", "traits": {{"employees": {n}}}}}',
     "body.traits.employees"),
    ("/v1/segment", '{{"batch": [{{"type": "track", "userId": "S1", "event": "signup", '
     '"properties": {{"amount": {n}}}}}]}}', "batch[0].properties.amount"),
])
def test_a_number_that_is_not_finite_is_refused_with_its_field(
    client: TestClient, path: str, template: str, field: str, number: str
) -> None:
    response = _post(client, path, template.format(n=number))
    assert response.status_code == 422, response.text
    assert "Retry-After" not in response.headers
    error = response.json()
    assert (error["error"], error["field"]) == ("invalid_request", field)
    assert error["message"].startswith(f"{field}: ") and "finite" in error["message"]
    _nothing_stored(client)


def test_finite_numbers_and_plain_texts_are_still_stored(client: TestClient) -> None:
    response = _post(client, "/v1/leads", '{"lead_id": "L1", "attributes": {"n": 2.5e10, "m": -2.5}}')
    assert response.status_code == 201, response.text
    response = _post(client, "/v1/events", '{"lead_id": "L1", "type": "page_view", '
                     '"properties": {"url": "/pricing", "s": 1.5e308, "z": -0.0}}')
    assert response.status_code == 200, response.text
    attributes = client.get("/v1/leads/L1").json()["attributes"]
    assert (attributes["n"], attributes["m"]) == (2.5e10, -2.5)


@pytest.mark.parametrize(("path", "body", "field", "message"), [
    ("/v1/leads", '{"lead_id": ""}', "lead_id", "lead_id: is empty"),
    ("/v1/leads", '{"lead_id": "L1", "attributes": "x"}', "attributes",
     "attributes: must be an object, got a string"),
    ("/v1/events", '{"events": [{"lead_id": "L1", "type": "t"}, {"lead_id": "  ", "type": "t"}]}',
     "events[1].lead_id", "events[1].lead_id: is empty"),
    ("/v1/events", '{"events": [{"lead_id": "L1", "type": "t"}, {"lead_id": "L1", "type": "t"}, '
     '{"lead_id": "L1", "type": "t", "properties": "url=/x"}]}',
     "events[2].properties", "events[2].properties: must be an object, got a string"),
    ("/v1/events", '{"lead_id": "L1", "type": 5}', "type", "type: must be a string, got a number"),
    ("/v1/segment", '{"type": "identify", "userId": "S1", "traits": [1]}', "body.traits",
     "body.traits: must be an object, got a list"),
])
def test_messages_name_the_field_once(
    client: TestClient, path: str, body: str, field: str, message: str
) -> None:
    response = _post(client, path, body)
    assert response.status_code == 422, response.text
    assert response.json() == {"error": "invalid_request", "message": message, "field": field}
    _nothing_stored(client)


# --- which database errors ask the client to retry -------------------------------------


def _wrapped(error: Exception) -> OperationalError:
    return OperationalError("INSERT ...", {}, error)


def test_only_an_unavailable_busy_or_locked_database_is_one_to_retry() -> None:
    assert database_unavailable(_wrapped(sqlite3.OperationalError("database is locked")))
    assert database_unavailable(sqlite3.OperationalError("unable to open database file"))
    assert not database_unavailable(_wrapped(sqlite3.OperationalError("malformed JSON")))
    assert not database_unavailable(sqlite3.OperationalError("no such table: leads"))
    connection = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError) as caught:
        connection.execute("select json('{\"a\": Infinity}')")
    assert not database_unavailable(_wrapped(caught.value))  # SQLITE_ERROR, not SQLITE_BUSY


@pytest.mark.parametrize(("error", "status"), [
    (sqlite3.OperationalError("malformed JSON"), 500),
    (sqlite3.OperationalError("database is locked"), 503),
])
def test_a_database_error_that_retrying_cannot_fix_is_not_a_503(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int
) -> None:
    def fail(*_: Any, **__: Any) -> None:
        raise _wrapped(error)

    monkeypatch.setattr("leadscore.api.routes.leads.upsert_lead", fail)
    response = client.post("/v1/leads", json={"lead_id": "L1"})
    assert response.status_code == status, response.text
    assert response.json()["error"] == ("unavailable" if status == 503 else "internal_error")
    assert ("Retry-After" in response.headers) == (status == 503)


# --- leadscore import ------------------------------------------------------------------


def _counts(store: Store) -> tuple[int, int]:
    with store.read() as session:
        return (session.execute(select(func.count()).select_from(leads)).scalar_one(),
                session.execute(select(func.count()).select_from(events)).scalar_one())


@pytest.mark.parametrize(("name", "content", "row", "column"), [
    ("leads.csv", "lead_id,title\nL1,VP\nL2,V\x00P\n", 2, "title"),
    ("leads.csv", "lead_id,title\nL1,VP\nL\x002,VP\n", 2, "lead_id"),
    ("leads.jsonl", '{"lead_id": "L1", "employees": 5}\n{"lead_id": "L2", "employees": NaN}\n', 2, "employees"),
    ("leads.jsonl", '{"lead_id": "L1", "employees": 1e400}\n', 1, "employees"),
    ("events.csv", "lead_id,type,timestamp,url\nL1,page_view,2026-10-01T00:00:00Z,/a\n"
     "L1,page_view,2026-10-02T00:00:00Z,/b\x00\n", 2, "url"),
    ("events.csv", "lead_id,type,timestamp\nL1,page_view,2026-10-01T00:00:00Z\n"
     "L1,page\x00view,2026-10-02T00:00:00Z\n", 2, "type"),
    ("events.jsonl", '{"lead_id": "L1", "type": "page_view", "timestamp": "2026-10-01T00:00:00Z"}\n'
     '{"lead_id": "L1", "type": "page_view", "timestamp": "2026-10-02T00:00:00Z", '
     '"properties": {"seconds": Infinity}}\n', 2, "properties.seconds"),
])
def test_import_refuses_a_bad_file_naming_row_and_column(
    store: Store, tmp_path: Path, name: str, content: str, row: int, column: str
) -> None:
    with store.write() as session:
        ensure_model(session, None, NOW)
    path = tmp_path / name
    path.write_text(content)
    files = (path, None) if name.startswith("leads") else (None, path)
    with pytest.raises(InputError) as caught:
        import_files(store, *files, NOW)
    assert (caught.value.file, caught.value.row, caught.value.column) == (str(path), row, column)
    assert "NUL" in str(caught.value) or "finite" in str(caught.value)
    assert _counts(store) == (0, 0)


def test_a_body_is_nul_free_only_when_no_text_can_hold_a_nul() -> None:
    from leadscore.api.bodies import nul_free

    assert nul_free(b'{"lead_id": "L1", "type": "pv", "properties": {"u": "\\\\u0001"}}')
    assert not nul_free(b'{"lead_id": "L1", "type": "pv", "properties": {"u": "a\\u0000"}}')
    assert not nul_free('{"lead_id": "L1"}'.encode("utf-16"))  # zero bytes: checked in full


@pytest.mark.parametrize(("method", "url", "body", "field"), [
    ("GET", "/v1/leads/L%001", None, "path"),
    ("GET", "/v1/leads/L%001/history", None, "path"),
    ("GET", "/v1/leads?owner=a%00", None, "owner"),
    ("GET", "/v1/leads?stage=New&attr.title=%00", None, "attr.title"),
    ("POST", "/v1/keys", '{"name": "k\\u0000", "scope": "read"}', "name"),
])
def test_a_nul_in_a_url_or_any_json_body_is_a_422_on_both_databases(
    client: TestClient, method: str, url: str, body: str | None, field: str
) -> None:
    response = client.request(method, url, content=None if body is None else body.encode(),
                              headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert response.json()["message"].startswith(f"{field}: contains a NUL character")
