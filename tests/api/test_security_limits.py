"""Input limits: attribute/property counts, name and value lengths, nesting depth, batch
size; each refused with 422 naming the field, and nothing stored. Text is NFC on the way in."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from fastapi.testclient import TestClient

from leadscore.api.bodies import Limits
from leadscore.config import Settings

VIET = "Nguyễn Thị Ánh Tuyết, Đà Nẵng"
VIET_NFD = unicodedata.normalize("NFD", VIET)


@pytest.fixture
def small(client: TestClient) -> TestClient:
    client.app.state.ctx.limits = Limits(attributes=3, key_length=8, value_bytes=12, depth=3)  # type: ignore[attr-defined]
    return client


def nothing_stored(client: TestClient) -> bool:
    return client.get("/v1/leads").json()["leads"] == []


def event(index: int, **properties: Any) -> dict[str, Any]:
    return {"event_id": f"e{index}", "lead_id": f"L{index}", "type": "pv", "properties": properties}


@pytest.mark.parametrize(("properties", "field", "words"), [
    ({"x": "a" * 13}, "events[3].properties.x", "13 bytes of UTF-8 text; at most 12"),
    ({"x": "🚀🚀🚀🚀"}, "events[3].properties.x", "16 bytes"),  # 4 characters, 16 bytes
    ({"x": ["ok", "a" * 13]}, "events[3].properties.x[1]", "13 bytes"),
    ({"toolongname": 1}, "events[3].properties.toolongname", "11 characters long; at most 8"),
    ({"a": 1, "b": 2, "c": 3, "d": 4}, "events[3].properties", "4 properties; at most 3"),
    ({"a": {"b": {"c": {}}}}, "events[3].properties.a.b.c", "nested 4 deep; at most 3"),
    ({"a": [[["x"]]]}, "events[3].properties.a[0][0]", "nested 4 deep"),
    ({"Việt": 1, unicodedata.normalize("NFD", "Việt"): 2}, "events[3].properties.Việt", "Unicode-normalised"),
    ({"K": 1, "\u212a": 2}, "events[3].properties.K", "Unicode-normalised"),  # the Kelvin sign is K in NFC
    ({"x": "é" * 7}, "events[3].properties.x", "14 bytes"),  # 7 characters
])
def test_a_batch_with_one_event_over_a_limit_stores_nothing(
    small: TestClient, properties: dict[str, Any], field: str, words: str,
) -> None:
    events = [event(i, ok="fine") for i in range(3)] + [event(3, **properties)] + [event(4)]
    response = small.post("/v1/events", json={"events": events})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field
    assert words in body["message"]
    assert nothing_stored(small)


def test_limits_apply_to_a_single_event_with_body_paths(small: TestClient) -> None:
    response = small.post("/v1/events", json={"lead_id": "L1", "type": "t", "properties": {"x": "y" * 20}})
    assert response.status_code == 422
    assert response.json()["field"] == "properties.x"
    long_type = small.post("/v1/events", json={"lead_id": "L1", "type": "page_vue"})
    assert long_type.status_code == 200  # 8 characters: allowed
    long_type = small.post("/v1/events", json={"lead_id": "L1", "type": "page_view"})
    assert long_type.status_code == 422 and long_type.json()["field"] == "type"
    assert len(small.get("/v1/leads").json()["leads"]) == 1  # only the allowed one


def test_lead_attributes_are_limited(small: TestClient) -> None:
    for attributes, field in [
        ({"a": 1, "b": 2, "c": 3, "d": 4}, "attributes"),
        ({"bio": "ế" * 5}, "attributes.bio"),  # 5 characters, 15 bytes
        ({"deep": {"a": {"b": {}}}}, "attributes.deep.a.b"),
        ({"nine_char": 1}, "attributes.nine_char"),
    ]:
        response = small.post("/v1/leads", json={"lead_id": "L1", "attributes": attributes})
        assert response.status_code == 422, (attributes, response.text)
        assert response.json()["field"] == field
    assert nothing_stored(small)
    ok = small.post("/v1/leads", json={"lead_id": "L1", "attributes": {"bio": "ế" * 4, "d": {"a": 1}}})
    assert ok.status_code == 201, ok.text


def test_segment_traits_and_properties_are_limited(small: TestClient) -> None:
    batch = [{"type": "identify", "userId": "u1", "traits": {"name": "An"}},
             {"type": "identify", "userId": "u2", "traits": {"name": "a" * 40}}]
    response = small.post("/v1/segment", json={"batch": batch})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "batch[1].traits.name"
    track = small.post("/v1/segment", json={"type": "track", "userId": "u1", "event": "e",
                                            "properties": {"a": {"b": {"c": {"d": 1}}}}})
    assert track.status_code == 422 and track.json()["field"] == "properties.a.b.c"
    assert nothing_stored(small)


def test_batch_size_is_limited(client: TestClient) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    ctx.settings = ctx.settings.model_copy(update={"max_batch_events": 3})
    response = client.post("/v1/events", json={"events": [event(i) for i in range(4)]})
    assert response.status_code == 422
    assert response.json()["field"] == "events"
    assert nothing_stored(client)


def test_defaults_are_generous_but_bounded(client: TestClient) -> None:
    defaults = Settings()
    assert (defaults.max_attributes, defaults.max_key_length, defaults.max_value_bytes,
            defaults.max_nesting_depth) == (200, 128, 8192, 8)
    fine = {f"a{i}": "x" * 8192 if i == 0 else i for i in range(200)}
    assert client.post("/v1/leads", json={"lead_id": "L1", "attributes": fine}).status_code == 201
    over = {**fine, "a200": 1}
    response = client.post("/v1/leads", json={"lead_id": "L2", "attributes": over})
    assert response.status_code == 422 and response.json()["field"] == "attributes"


def test_text_is_stored_nfc_whatever_form_it_came_in(client: TestClient) -> None:
    """Vietnamese typed in decomposed form (as macOS file names and some keyboards send it)
    and emoji come back in NFC, and the decomposed lead_id names the same lead."""
    key_nfd = unicodedata.normalize("NFD", "họ_tên")
    response = client.post("/v1/leads", json={"lead_id": VIET_NFD, "attributes": {key_nfd: VIET_NFD, "icon": "🚀✨"}})
    assert response.status_code == 201, response.text
    client.post("/v1/events", json={"lead_id": VIET, "type": unicodedata.normalize("NFD", "xem_trang_giá"),
                                    "properties": {key_nfd: VIET_NFD}})
    lead = client.get(f"/v1/leads/{VIET}").json()
    assert lead["lead_id"] == VIET
    assert lead["attributes"]["họ_tên"] == VIET and lead["attributes"]["icon"] == "🚀✨"
    assert unicodedata.is_normalized("NFC", str(lead["attributes"]))
    assert lead["events"][0]["type"] == "xem_trang_giá"
    assert lead["events"][0]["properties"] == {"họ_tên": VIET}
    assert len(client.get("/v1/leads").json()["leads"]) == 1


@pytest.mark.parametrize("path", [
    "/v1/webhooks/deliveries?outbox_id=9223372036854775808",  # one past SQLite's largest integer
    "/v1/segments/hot/members?after=9223372036854775808",
    "/v1/keys/9223372036854775808",
])
def test_ids_beyond_the_database_integer_range_are_422_not_500(client: TestClient, path: str) -> None:
    method = client.delete if path.startswith("/v1/keys/") else client.get
    response = method(path)
    assert response.status_code == 422, response.text
