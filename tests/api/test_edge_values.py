"""Values at the edges, on SQLite and PostgreSQL (found by a QA pass, 2026-12-05): a CRM's
``0001-01-01`` "no date" placeholder, half of a UTF-16 surrogate pair (an emoji cut in two),
list cursors that decode but hold the wrong things, and score bounds that are not finite.
Each got a 500 (plain text) or a wrong answer before; now a clear 4xx in JSON, or the
right answer, and nothing half-stored."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def client(admin_client_on_each_database: TestClient) -> TestClient:
    return admin_client_on_each_database


def _post(client: TestClient, path: str, body: str) -> Any:
    return client.post(path, content=body.encode(), headers={"Content-Type": "application/json"})


def test_a_year_one_placeholder_is_a_timestamp_like_any_other(client: TestClient) -> None:
    posted = client.post("/v1/events", json={"lead_id": "OLD", "type": "page_view",
                                             "timestamp": "0001-01-01T00:00:00Z"})
    assert posted.status_code == 200, posted.text
    lead = client.get("/v1/leads/OLD").json()
    assert lead["attributes"]["created_at"] == "0001-01-01T00:00:00Z"
    assert [e["timestamp"] for e in lead["events"]] == ["0001-01-01T00:00:00Z"]
    again = client.post("/v1/events", json={"lead_id": "OLD", "type": "page_view",
                                            "timestamp": "0999-12-31T23:59:59.5Z"})
    assert again.status_code == 200, again.text
    assert {e["timestamp"] for e in client.get("/v1/leads/OLD").json()["events"]} == {
        "0001-01-01T00:00:00Z", "0999-12-31T23:59:59.5Z"}


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/leads", '{"lead_id": "L1", "attributes": {"name": "Nguy\\ud83d"}}', "attributes.name"),
    ("/v1/leads", '{"lead_id": "L\\udc00", "attributes": {}}', "lead_id"),
    ("/v1/events", '{"lead_id": "L1", "type": "pv", "properties": {"\\ud83dx": 1}}', "properties"),
    ("/v1/events", '{"events": [{"lead_id": "L1", "type": "pv"}, {"lead_id": "L2", "type": "p\\uDE00"}]}',
     "events[1].type"),
    ("/v1/segment", '{"type": "identify", "userId": "U1", "traits": {"city": "H\\ud800 Noi"}}', "body.traits.city"),
])
def test_half_a_surrogate_pair_is_refused_naming_the_field(client: TestClient, path: str, body: str,
                                                           field: str) -> None:
    answer = _post(client, path, body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field and "surrogate" in answer.json()["message"]
    assert client.get("/v1/leads").json()["leads"] == []
    # a whole pair, as json.dumps writes an emoji by default, is the emoji
    whole = _post(client, "/v1/leads", '{"lead_id": "L1", "attributes": {"name": "Lan \\ud83d\\ude00"}}')
    assert whole.status_code == 201, whole.text
    assert client.get("/v1/leads/L1").json()["attributes"]["name"] == "Lan 😀"


def _cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


def test_a_cursor_that_decodes_but_holds_the_wrong_things_is_refused(client: TestClient) -> None:
    for n in range(3):
        client.post("/v1/events", json={"lead_id": f"L{n}", "type": "page_view"})
    page = client.get("/v1/leads?limit=1").json()
    assert client.get(f"/v1/leads?limit=1&cursor={page['next_cursor']}").status_code == 200
    for bad in (_cursor("score", None, 5), _cursor("score", "abc", 5), _cursor("score", 1.0, 2**70),
                _cursor("score", 1.0, True), _cursor("score", True, 3), _cursor("updated", 1.5, 3),
                _cursor("updated", 10**30, 3), _cursor("score", 1.0, 2.0)):
        order = "updated" if "updated" in base64.urlsafe_b64decode(bad + "==").decode() else "score"
        answer = client.get(f"/v1/leads?order={order}&cursor={bad}")
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["field"] == "cursor"


@pytest.mark.parametrize("bound", ["nan", "inf", "-inf", "1e400"])
def test_score_bounds_that_are_not_finite_are_refused(client: TestClient, bound: str) -> None:
    client.post("/v1/events", json={"lead_id": "L1", "type": "page_view"})
    for name in ("min_score", "max_score"):
        answer = client.get(f"/v1/leads?{name}={bound}")
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == name


PEOPLE: dict[str, dict[str, Any]] = {
    "P1": {"name": "Nguyễn Văn Ánh", "vip": True, "size": 100.0, "big": 1e20, 'Lead "Source"': "Hội chợ",
           "pad": "  pad  ",
           "crm_id": 9007199254740993, "big_text": "9007199254740993", "huge": "1e400"},
    "P2": {"name": "NGUYỄN VĂN ÁNH", "vip": False, "size": 100, "big": 100000000000000000000,
           "pad": "\tPad\r\n", "code": "\t42\n"},
    "P3": {"name": "nguyễn văn ánh", "size": "100", "Lead \\Src": "x", "pad": "\u00a0pad", "code": "\u00a042"},
    "P4": {"name": "Đặng Thu Thảo", "size": 99.5, "pad": "\vpad\f"},
}


def _found(client: TestClient, query: str) -> list[str]:
    answer = client.get(f"/v1/leads?{query}&limit=100")
    assert answer.status_code == 200, answer.text
    return sorted(lead["lead_id"] for lead in answer.json()["leads"])


def test_attribute_filters_find_the_same_leads_on_both_databases(client: TestClient) -> None:
    """attr.NAME=VALUE compares as the model language's equals: case ignored for every
    letter (SQLite's lower() folds A-Z only), NFC, booleans as true/false, numbers as
    numbers, any attribute name."""
    import unicodedata
    from urllib.parse import quote

    for lead_id, attributes in PEOPLE.items():
        assert client.post("/v1/leads", json={"lead_id": lead_id, "attributes": attributes}).status_code == 201
    cases = {
        "attr.name=" + quote("nguyễn văn ánh"): ["P1", "P2", "P3"],
        "attr.name=" + quote(unicodedata.normalize("NFD", "NGUYỄN VĂN ÁNH")): ["P1", "P2", "P3"],
        "attr.name=" + quote("ĐẶNG THU THẢO"): ["P4"],
        "attr.vip=true": ["P1"], "attr.vip=FALSE": ["P2"], "attr.vip=1": [],
        "attr.size=100": ["P1", "P2", "P3"], "attr.size=100.0": ["P1", "P2", "P3"], "attr.size=99.5": ["P4"],
        "attr.big=1e20": ["P1", "P2"],
        "attr." + quote('Lead "Source"') + "=" + quote("hội chợ"): ["P1"],
        "attr." + quote("Lead \\Src") + "=X": ["P3"],
        # the white space the engine's equals strips (not a no-break space, which it keeps)
        "attr.pad=pad": ["P1", "P2", "P4"], "attr.pad=" + quote("\tpad "): ["P1", "P2", "P4"],
        "attr.code=42": ["P2"],
        # numbers compare as the engine's floats: above 2**53 two integers can be one float
        "attr.crm_id=9007199254740993": ["P1"], "attr.crm_id=9007199254740992": ["P1"],
        "attr.big_text=9007199254740992": ["P1"], "attr.crm_id=9007199254740995": [],
        "attr.huge=1e400": ["P1"], "attr.huge=" + quote("1E400"): ["P1"], "attr.huge=5": [],
    }
    for query, expected in cases.items():
        assert _found(client, query) == expected, query
