"""Texts with a NUL character and numbers that are not finite, on SQLite and PostgreSQL:
every door (POST /v1/leads, /v1/events, /v1/segment, ``leadscore import``) refuses them
with a 422 (or an InputError) naming the field, and stores nothing of the request. Before,
PostgreSQL answered 500 in plain text, SQLite stored the NUL, answered 503 "retry" for an
infinity, and dropped a NaN attribute silently.

A scoring model is refused the same way wherever it comes in (PUT /v1/model, POST
/v1/model/preview, a model file at start-up, the dashboard's model and segment forms),
naming its place in the document; and a URL with %00 is refused once its caller is known."""

from __future__ import annotations

import html
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from tests.api.conftest import MODEL
from tests.web.conftest import csrf_of

from leadscore.api.app import database_unavailable
from leadscore.engine import parse_timestamp, to_micros
from leadscore.errors import InputError, ModelError
from leadscore.service.importer import import_files
from leadscore.service.keys import create_key
from leadscore.service.models import ensure_model
from leadscore.store.db import Store
from leadscore.store.tables import events, leads, model_versions

NOW = to_micros(parse_timestamp("2026-11-01T00:00:00Z"))


@pytest.fixture
def client(admin_client_on_each_database: TestClient) -> TestClient:
    return admin_client_on_each_database


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


# --- scoring models: PUT /v1/model, POST /v1/model/preview, a model file, the dashboard --

NAMED = "the name {!r} contains a NUL character"
# a model whose texts hold a NUL (YAML "\0", JSON "\u0000"): (document, JSON?, place, line,
# what). Before, SQLite stored the model and PostgreSQL answered 500, or stored it too and
# failed later, as the NUL reached a stored stage name, label, grade or event type
MODEL_NUL_CASES = [
    (MODEL.replace("name: api-test", 'name: "api\\0test"'), False, "name", 3, "contains a NUL character"),
    (MODEL.replace("name: api-test", 'name: api-test\ndescription: "a\\0"'), False, "description", 4,
     "contains a NUL character"),
    (MODEL.replace("{id: vp,", '{id: vp, label: "V\\0P",'), False, "rules[0].label", 6, "contains a NUL character"),
    (MODEL.replace("contains: vp}", 'contains: "v\\x00p"}'), False, "rules[0].when.contains", 6,
     "contains a NUL character"),
    (MODEL.replace("event: page_view", 'event: "page\\0view"'), False, "rules[1].when.event", 7,
     "contains a NUL character"),
    (MODEL.replace("where: {url:", 'where: {"u\\0rl":'), False, "rules[1].when.where", 7, NAMED.format("u\0rl")),
    (MODEL.replace("grades: {A: 10", 'grades: {"A\\0": 10'), False, "groups.fit.grades", 4, NAMED.format("A\0")),
    (MODEL.replace("{name: Hot,", '{name: "H\\0ot",'), False, "stages[0].name", 9, "contains a NUL character"),
    (MODEL + 'triggers:\n  - {id: t, on: {stage_entered: Hot}, do: [{assign_owner: {round_robin: [ann, "b\\0b"]}}]}\n',
     False, "triggers[0].do[0].assign_owner.round_robin[1]", 12, "contains a NUL character"),
    ('{"version": 1, "name": "api\\u0000test", "rules": []}', True, "name", 1, "contains a NUL character"),
    ('{"version": 1, "name": "api-test", "stages": [{"name": "New", "min_score": 0}],\n'
     ' "rules": [{"id": "vp", "points": 10, "label": "\\u0000", "when": {"attribute": "title", "exists": true}}]}',
     True, "rules[0].label", 2, "contains a NUL character"),
]


def _active_model(client: TestClient) -> tuple[Any, int]:
    """(the active version's number and checksum, how many versions are stored)."""
    active = client.get("/v1/model").json()
    return (active["version"], active["checksum"]), len(client.get("/v1/model/versions").json())


@pytest.mark.parametrize(("document", "is_json", "place", "line", "what"), MODEL_NUL_CASES,
                         ids=[f"{'json' if case[1] else 'yaml'}:{case[2]}" for case in MODEL_NUL_CASES])
def test_a_model_with_a_nul_is_refused_naming_its_place_and_nothing_is_stored(
    client: TestClient, document: str, is_json: bool, place: str, line: int, what: str
) -> None:
    assert client.post("/v1/leads", json={"lead_id": "L1", "attributes": {"title": "vp"}}).status_code == 201
    before = _active_model(client)
    content_type = "application/json" if is_json else "application/yaml"
    for method, path in (("POST", "/v1/model/preview"), ("PUT", "/v1/model")):
        response = client.request(method, path, content=document.encode(), headers={"Content-Type": content_type})
        assert response.status_code == 422, (method, response.text)
        error = response.json()
        assert (error["error"], error["field"]) == ("invalid_model", place)
        assert error["message"] == f"invalid model: {place} (line {line}): {what}"
        assert error["issues"] == [{"path": place, "message": what, "line": line}]
    assert _active_model(client) == before
    assert client.get("/v1/leads/L1").json()["stage"] == "New"


BAD_MODEL_FILE = 'version: 1\nname: "a\\0b"\nrules: []\n'


def test_a_model_file_with_a_nul_is_refused_at_start_up_and_nothing_is_stored(
    store: Store, tmp_path: Path
) -> None:
    """``serve --model FILE`` (and LEADSCORE_MODEL_FILE) install the file at start-up. Before,
    SQLite stored the model and PostgreSQL failed with a DataError (no JSON, a traceback)."""
    path = tmp_path / "model.yaml"
    path.write_text(BAD_MODEL_FILE)
    with pytest.raises(ModelError) as caught, store.write() as session:
        ensure_model(session, path, NOW)
    assert caught.value.one_line() == f"{path}: invalid model: name (line 2): contains a NUL character"
    with store.read() as session:
        assert session.execute(select(func.count()).select_from(model_versions)).scalar_one() == 0


def test_serve_refuses_a_model_file_with_a_nul_in_one_line_before_starting(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, ``leadscore serve --model FILE`` served the model on SQLite and stopped with a
    traceback of the database's error on PostgreSQL."""
    from leadscore.cli import main

    path = tmp_path / "model.yaml"
    path.write_text(BAD_MODEL_FILE)
    monkeypatch.setattr("uvicorn.run", lambda *_, **__: pytest.fail("serve started a server with the model"))
    with pytest.raises(SystemExit) as caught:
        main(["serve", "--db", db_url, "--model", str(path)])
    assert caught.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {path}: invalid model: name (line 2): contains a NUL character"


def _sign_in(client: TestClient) -> str:
    """Sign the client in to the dashboard with its admin key; the CSRF token of the session."""
    token = client.headers["Authorization"].removeprefix("Bearer ")
    page = client.get("/signin")
    response = client.post("/signin", data={"key": token, "csrf_token": csrf_of(page.text), "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/model").text)


NUL_MODEL = MODEL.replace("name: api-test", 'name: "api\\0test"')


@pytest.mark.parametrize(("path", "form", "status", "shown"), [
    # the model editor: activate, and preview (its errors in a 200 fragment, as for any invalid model)
    ("/model", {"document": NUL_MODEL}, 422, "<code>name</code> (line 3): contains a NUL character"),
    ("/model/preview", {"document": NUL_MODEL}, 200, "<code>name</code> (line 3): contains a NUL character"),
    # a segment (saved as a new model version), its error next to its field
    ("/segments", {"name": "hot", "description": "a\x00b", "min_score": "10"}, 422,
     '<span class="error" id="e-description">contains a NUL character</span>'),
    ("/segments", {"name": "vps", "attributes": '- {attribute: title, equals: "v\\0p"}'}, 422,
     '<span class="error" id="e-attributes">contains a NUL character</span>'),
])
def test_the_dashboard_refuses_a_model_or_segment_with_a_nul_and_stores_nothing(
    client: TestClient, path: str, form: dict[str, str], status: int, shown: str
) -> None:
    csrf = _sign_in(client)
    before = _active_model(client)
    base = re.search(r'name="base_version" value="(\d+)"', client.get("/segments/+new").text)
    assert base is not None
    response = client.post(path, data={**form, "csrf_token": csrf, "base_version": base.group(1)},
                           follow_redirects=False)
    assert response.status_code == status, response.text
    assert shown in response.text
    assert _active_model(client) == before


# --- a NUL in a URL: the caller is checked first ---------------------------------------


def test_a_nul_in_a_url_is_a_401_or_403_before_it_is_a_422(client: TestClient) -> None:
    """Before, any request whose URL held %00 got the 422, with no key or a wrong one too."""
    assert client.post("/v1/leads", json={"lead_id": "a"}).status_code == 201
    token = client.headers.pop("Authorization")
    with client.app.state.ctx.store.write() as session:  # type: ignore[attr-defined]
        _, read = create_key(session, "reader", "read", 0)
    for url in ("/v1/leads/a%00b", "/v1/leads?owner=a%00"):
        for headers in ({}, {"Authorization": "Bearer lsk_not-a-key"}):
            response = client.get(url, headers=headers)
            assert response.status_code == 401, (url, headers, response.text)
            assert response.json()["error"] == "unauthenticated"
    response = client.delete("/v1/leads/a%00", headers={"Authorization": f"Bearer {read}"})
    assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    for url, field in (("/v1/leads/a%00b", "path"), ("/v1/leads?owner=a%00", "owner")):
        response = client.get(url, headers={"Authorization": token})
        assert response.status_code == 422, response.text
        assert response.json() == {"error": "invalid_request", "field": field,
                                   "message": f"{field}: contains a NUL character (%00)"}
    response = client.delete("/v1/leads/a%00", headers={"Authorization": token})
    assert response.status_code == 422, response.text
    assert client.get("/v1/leads/a", headers={"Authorization": token}).status_code == 200  # not erased


def test_every_route_checks_the_caller_before_a_nul_in_its_url(client: TestClient) -> None:
    """Every route but the open ones (/health, the documents, sign-in, static files) answers
    a URL with %00 as it answers any request of an unknown caller (API: 401; dashboard: the
    sign-in page), and with the 422 once the caller is known (the admin key; signed in)."""
    from tests.api.test_security_scopes import API_SCOPES, PUBLIC_PAGES, concrete, routes

    open_routes = PUBLIC_PAGES | {route for route, scope in API_SCOPES.items() if scope is None}
    found = [(method, path) for method, path, _ in routes(client.app)]
    assert len(found) > 40
    stranger = TestClient(client.app, raise_server_exceptions=False)  # no key, no session
    wrong = []
    for method, path in found:
        response = stranger.request(method, f"{concrete(path)}?x=%00", follow_redirects=False)
        if (method, path) in open_routes:
            expected, where = 422, None
        elif path.startswith("/v1/"):
            expected, where = 401, None
        else:
            expected, where = 303, "/signin"
        if response.status_code != expected or response.headers.get("location") != where:
            wrong.append(f"no caller: {method} {path}: {response.status_code} {response.headers.get('location')}")
    _sign_in(client)
    for method, path in found:
        response = client.request(method, f"{concrete(path)}?x=%00", follow_redirects=False)
        shown = response.json()["message"] if path.startswith("/v1/") or (method, path) in open_routes \
            else html.unescape(response.text)
        if response.status_code != 422 or "x: contains a NUL character (%00)" not in shown:
            wrong.append(f"admin: {method} {path}: {response.status_code}")
    assert not wrong, "\n".join(wrong)


def test_a_version_stored_before_with_a_nul_still_works_and_a_new_one_is_refused(client: TestClient) -> None:
    """A model stored before these checks (SQLite took any; PostgreSQL one whose NUL only its
    document held) is read as it was accepted: scoring, GET /v1/model and the dashboard keep
    working; sending it again is refused."""
    from leadscore.service.models import activate, checksum
    from leadscore.store.tables import ModelVersionRow

    document = MODEL.replace("name: api-test", 'name: api-test\ndescription: "a\\0"')
    with client.app.state.ctx.store.write() as session:  # type: ignore[attr-defined]
        row = ModelVersionRow(name="api-test", document=document, format="yaml", checksum=checksum(document),
                              created_us=NOW, activated_us=None, active=False)
        session.add(row)
        session.flush()
        activate(session, row.id, NOW)
    response = _post(client, "/v1/events", '{"lead_id": "L1", "type": "page_view", "properties": {"url": "/pricing"}}')
    assert response.status_code == 200, response.text
    assert client.get("/v1/leads/L1").json()["score"] == 15
    assert client.get("/v1/model").json()["model"]["description"] == "a\0"
    _sign_in(client)
    assert client.get("/segments").status_code == 200
    assert client.get("/model").status_code == 200
    response = client.put("/v1/model", content=document.encode())
    assert (response.status_code, response.json()["field"]) == (422, "description")
