"""The HTTP API as a user sees it: exact JSON and status codes."""

from __future__ import annotations

import re
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from fastapi.testclient import TestClient

from leadscore.engine import iso, to_micros


def _ago(days: float) -> str:
    return iso(to_micros(datetime.now(UTC) - timedelta(days=days)))


def _view(event_id: str, lead_id: str = "L1", days: float = 1.0) -> dict[str, object]:
    return {"event_id": event_id, "lead_id": lead_id, "type": "page_view", "timestamp": _ago(days),
            "properties": {"url": "/pricing"}}


def test_health_needs_no_key_and_everything_else_does(client: TestClient) -> None:
    health = client.get("/health", headers={"Authorization": ""}).json()
    assert re.fullmatch("[0-9a-f]{8}", health.pop("worker"))  # random per process, not the pid
    assert health == {"status": "ok", "version": "0.1.0", "database": "sqlite", "jobs": True}
    response = client.get("/v1/leads", headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    response = client.get("/v1/leads", headers={"Authorization": "Bearer nope"})
    assert (response.status_code, response.json()) == (401, {
        "error": "unauthenticated", "message": "unknown API key", "field": "Authorization"})


def test_scopes(client: TestClient) -> None:
    ingest, read = client.headers_for["ingest"], client.headers_for["read"]  # type: ignore[attr-defined]
    assert client.post("/v1/events", json=_view("e1"), headers=ingest).status_code == 200
    response = client.get("/v1/leads", headers=ingest)
    assert (response.status_code, response.json()) == (403, {
        "error": "forbidden", "field": "Authorization",
        "message": "API key 'ingest' has scope 'ingest'; this needs scope 'read' or 'admin'"})
    assert client.get("/v1/leads/L1", headers=read).status_code == 200
    assert client.post("/v1/events", json=_view("e2"), headers=read).status_code == 403
    assert client.delete("/v1/leads/L1", headers=read).status_code == 403
    assert client.get("/v1/leads/L1/export", headers=read).status_code == 403


def test_events_read_your_writes_and_duplicates(client: TestClient) -> None:
    response = client.post("/v1/events", json={"events": [_view("e1"), _view("e2", "L2"), _view("e1")]})
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 2, "duplicates": 1, "duplicate_event_ids": ["e1"],
        "leads": [
            {"lead_id": "L1", "score": 15.0, "stage": "New", "groups": {"fit": 0.0, "default": 15.0},
             "grades": {"fit": "B"}, "created": True},
            {"lead_id": "L2", "score": 15.0, "stage": "New", "groups": {"fit": 0.0, "default": 15.0},
             "grades": {"fit": "B"}, "created": True},
        ],
    }
    response = client.post("/v1/leads", json={"lead_id": "L1", "attributes": {"title": "VP Sales"}})
    assert (response.status_code, response.json()) == (200, {
        "lead_id": "L1", "created": False, "changed_attributes": ["title"], "score": 25.0,
        "stage": "Hot", "groups": {"fit": 10.0, "default": 15.0}, "grades": {"fit": "A"}})
    lead = client.get("/v1/leads/L1").json()
    assert (lead["score"], lead["stage"], lead["attributes"]["title"]) == (25.0, "Hot", "VP Sales")
    assert [e["event_id"] for e in lead["events"]] == ["e1"]
    assert [(h["cause"], h["old_stage"], h["new_stage"]) for h in lead["history"]] == [
        ("attributes", "New", "Hot"), ("event", None, "New")]
    assert [r["rule"] for r in lead["explain"]["rules"]] == ["vp", "pricing"]
    transitions = client.get("/v1/leads/L1/history").json()["transitions"]
    assert [(t["from_stage"], t["to_stage"]) for t in transitions] == [("New", "Hot"), (None, "New")]


def test_bad_input_is_refused_with_the_field_and_nothing_is_stored(client: TestClient) -> None:
    future = iso(to_micros(datetime.now(UTC) + timedelta(minutes=10)))
    cases = [
        (b'{"lead_id": "L1", ', 400, "malformed_body", "body"),
        ({"lead_id": "L1", "type": "x", "colour": "red"}, 422, "invalid_request", "colour"),
        ({"lead_id": "L1", "type": 5}, 422, "invalid_request", "type"),
        ({"lead_id": ["L1"], "type": "x"}, 422, "invalid_request", "lead_id"),
        ({"type": "x"}, 422, "invalid_request", "lead_id"),
        ({"lead_id": "L1", "type": "x", "timestamp": "tomorrow"}, 422, "invalid_request", "timestamp"),
        ({"lead_id": "L1", "type": "x", "timestamp": future}, 422, "invalid_request", "timestamp"),
        ({"events": []}, 422, "invalid_request", "events"),
        ({"events": [_view("ok"), {"lead_id": "L1", "type": "x", "properties": [1]}]}, 422,
         "invalid_request", "events[1].properties"),
        ({"events": [_view("ok")], "extra": 1}, 422, "invalid_request", "extra"),
    ]
    for body, status, code, field in cases:
        if isinstance(body, bytes):
            response = client.post("/v1/events", content=body)
        else:
            response = client.post("/v1/events", json=body)
        assert (response.status_code, response.json()["error"], response.json()["field"]) == (
            status, code, field), body
    response = client.post("/v1/events", json={"lead_id": "L1", "type": "x", "timestamp": future})
    assert "more than 300 seconds ahead of the server clock" in response.json()["message"]
    response = client.post("/v1/events", json={"events": [_view(str(i)) for i in range(200)]})
    assert (response.status_code, response.json()["error"]) == (413, "payload_too_large")
    assert client.get("/v1/leads").json() == {"leads": [], "next_cursor": None}


def test_list_filters_and_cursor_pagination(client: TestClient) -> None:
    client.post("/v1/events", json={"events": [_view(f"e{i}", f"L{i}") for i in range(5)]})
    client.post("/v1/events", json={"events": [_view("x1", "L1", 2), _view("x2", "L2", 2)]})
    client.post("/v1/leads", json={"lead_id": "L2", "attributes": {"title": "VP", "country": "VN"}})
    page = client.get("/v1/leads?limit=2").json()
    assert [(lead["lead_id"], lead["score"]) for lead in page["leads"]] == [("L2", 40.0), ("L1", 30.0)]
    rest = client.get(f"/v1/leads?limit=2&cursor={page['next_cursor']}").json()
    assert [lead["lead_id"] for lead in rest["leads"]] == ["L4", "L3"]
    assert client.get("/v1/leads?stage=Hot").json()["leads"][0]["lead_id"] == "L2"
    assert [lead["lead_id"] for lead in client.get("/v1/leads?min_score=20&max_score=35").json()["leads"]] == ["L1"]
    assert [lead["lead_id"] for lead in client.get("/v1/leads?grade_fit=A").json()["leads"]] == ["L2"]
    assert [lead["lead_id"] for lead in client.get("/v1/leads?attr.country=vn").json()["leads"]] == ["L2"]
    newest = client.get("/v1/leads?order=updated&limit=1").json()["leads"]
    assert newest[0]["lead_id"] == "L2"
    response = client.get("/v1/leads?stag=Hot")
    assert (response.status_code, response.json()["message"]) == (422,
        "unknown filter 'stag' - did you mean 'stage'? (filters: stage, min_score, max_score, "
        "updated_since, owner, tag, order, limit, cursor, grade_<group>, attr.<name>)")
    # owner and tags come from triggers' actions (tests/actions); none here
    assert client.get("/v1/leads?owner=rep@example.com").json()["leads"] == []
    assert client.get("/v1/leads?tag=mql&tag=cold").json()["leads"] == []
    assert {(lead["owner"], tuple(lead["tags"])) for lead in client.get("/v1/leads").json()["leads"]} == {(None, ())}
    assert (client.get("/v1/leads/L1").json()["owner"], client.get("/v1/leads/L1").json()["tags"]) == (None, [])


def test_export_and_erase(client: TestClient) -> None:
    client.post("/v1/events", json=_view("e1"))
    export = client.get("/v1/leads/L1/export").json()
    assert [e["event_id"] for e in export["events"]] == ["e1"]
    assert export["lead"]["lead_id"] == "L1" and len(export["history"]) == 1
    assert client.delete("/v1/leads/L1").status_code == 204
    assert client.get("/v1/leads/L1").status_code == 404
    assert client.delete("/v1/leads/L1").json() == {
        "error": "not_found", "message": "no lead with lead_id 'L1'", "field": "lead_id"}


def test_model_versions_preview_and_change(client: TestClient) -> None:
    client.post("/v1/events", json={"events": [_view(f"e{i}", f"L{i}") for i in range(3)]})
    model = client.get("/v1/model").json()
    assert (model["version"], model["name"], model["active"]) == (1, "api-test", True)
    candidate = model["document"].replace("points: 15", "points: 30")
    preview = client.post("/v1/model/preview", content=candidate).json()
    assert (preview["stages"], preview["current_stages"], preview["leads_changing_stage"]) == (
        {"Hot": 3, "New": 0}, {"New": 3}, 3)
    bad = client.put("/v1/model", content="version: 1\nname: x\nrules: [{id: a, points: 0, when: {attribute: t, exists: true}}]")
    assert bad.status_code == 422
    assert bad.json()["issues"] == [
        {"path": "rules[0].points", "message": "points must not be 0 (remove the rule instead)", "line": 3}]
    response = client.put("/v1/model", content=candidate, headers={"Content-Type": "application/yaml"})
    assert response.status_code == 202
    assert response.json()["version"]["version"] == 2
    for _ in range(100):
        progress = client.get("/v1/model/rescore").json()
        if progress["status"] == "done":
            break
        time.sleep(0.05)
    assert (progress["status"], progress["total"], progress["done"], progress["model_version"]) == (
        "done", 3, 3, 2)
    assert client.get("/v1/leads/L0").json()["score"] == 30.0
    assert [v["version"] for v in client.get("/v1/model/versions").json()] == [2, 1]
    history = client.get("/v1/leads/L0/history").json()["history"]
    assert (history[0]["cause"], history[0]["detail"]) == ("model", "model version 2")


def test_the_active_model_put_again_changes_nothing(client: TestClient) -> None:
    client.post("/v1/events", json={"events": [_view(f"e{i}", f"L{i}") for i in range(3)]})
    document = client.get("/v1/model").json()["document"]
    job = client.get("/v1/model/rescore").json()
    again = client.put("/v1/model", content=document, headers={"Content-Type": "application/yaml"})
    assert (again.status_code, again.json()["unchanged"], again.json()["version"]["version"]) == (200, True, 1)
    assert again.json()["rescore"] == job == client.get("/v1/model/rescore").json()  # no rescoring started
    assert [v["version"] for v in client.get("/v1/model/versions").json()] == [1]
    # one byte more is another document: a new version, activated and rescored as any change
    changed = client.put("/v1/model", content=document + "\n", headers={"Content-Type": "application/yaml"})
    assert (changed.status_code, changed.json()["unchanged"], changed.json()["version"]["version"]) == (202, False, 2)
    # and the first one again, now that it is not the active one: a version of its own
    back = client.put("/v1/model", content=document, headers={"Content-Type": "application/yaml"})
    assert (back.status_code, back.json()["version"]["version"]) == (202, 3)


def test_a_model_whose_line_breaks_were_lost_says_so(client: TestClient) -> None:
    document = client.get("/v1/model").json()["document"]
    flattened = document.replace("\n", "")  # what `curl -d @model.yaml` sends
    for route in ("/v1/model/preview", "/v1/model"):
        refused = client.request("POST" if route.endswith("preview") else "PUT", route, content=flattened,
                                 headers={"Content-Type": "application/yaml"})
        assert refused.status_code == 422
        (issue,) = refused.json()["issues"]
        assert issue["message"].startswith("the YAML body is a single line (its line breaks were lost on the way")
        assert issue["message"].endswith("with curl, send the file with --data-binary @model.yaml, not -d, "
                                         "which strips line breaks")
    assert [v["version"] for v in client.get("/v1/model/versions").json()] == [1]


def test_segment_identify_track_page_and_batch(client: TestClient) -> None:
    body = {"batch": [
        {"type": "identify", "userId": "u1", "traits": {"title": "VP Marketing"}, "messageId": "m0"},
        {"type": "track", "userId": "u1", "event": "signed_up", "messageId": "m1", "timestamp": _ago(1)},
        {"type": "page", "anonymousId": "a1", "properties": {"url": "/pricing"}, "messageId": "m2",
         "timestamp": _ago(1)},
        {"type": "group", "userId": "u1", "groupId": "g"},
    ]}
    response = client.post("/v1/segment", json=body)
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 2, "duplicates": 0, "identified": 1, "ignored": 1,
        "leads": [
            {"lead_id": "u1", "score": 10.0, "stage": "New", "groups": {"fit": 10.0, "default": 0.0},
             "grades": {"fit": "A"}, "created": True},
            {"lead_id": "a1", "score": 15.0, "stage": "New", "groups": {"fit": 0.0, "default": 15.0},
             "grades": {"fit": "B"}, "created": True},
        ],
    }
    assert client.post("/v1/segment", json=body).json()["duplicates"] == 2
    response = client.post("/v1/segment", json={"type": "track", "event": "x"})
    assert (response.status_code, response.json()["field"]) == (422, "body.userId")


def test_openapi_document_lists_every_route(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert set(document["paths"]) == {
        "/health", "/v1/leads", "/v1/leads/{lead_id}", "/v1/leads/{lead_id}/history",
        "/v1/leads/{lead_id}/export", "/v1/events", "/v1/segment", "/v1/model",
        "/v1/model/versions", "/v1/model/rescore", "/v1/model/preview",
        "/v1/segments", "/v1/segments/{name}/members", "/v1/webhooks/deliveries",
        "/v1/webhooks/outbox", "/v1/outcomes", "/v1/analytics", "/v1/analytics/scores",
        "/v1/analytics/stages", "/v1/analytics/conversion", "/v1/analytics/velocity",
        "/v1/analytics/sales-cycle", "/v1/analytics/webhooks", "/v1/keys", "/v1/keys/{key_id}",
        "/v1/audit",
        "/v1/predictive",  # predict: the predictive model
    }
    assert {"EventIn", "EventBatch", "LeadCreate"} <= set(document["components"]["schemas"])
    assert client.get("/docs").status_code == 200


def test_lead_ids_with_a_slash_or_another_unicode_form_are_reachable(client: TestClient) -> None:
    """An id may hold a "/" (sent as %2F) and may come in the URL in another Unicode form
    than the NFC the body's id is stored in: every lead route still finds the lead."""
    for lead_id in ("acct/42", "mail/anna@x.vn/history", "Nguyễn-🚀"):
        assert client.post("/v1/events", json=_view(f"e-{lead_id}", lead_id)).status_code == 200
    slash = quote("acct/42", safe="")
    assert client.get(f"/v1/leads/{slash}").json()["lead_id"] == "acct/42"
    assert client.get(f"/v1/leads/{slash}/history").json()["lead_id"] == "acct/42"
    assert client.get(f"/v1/leads/{slash}/export").json()["lead"]["lead_id"] == "acct/42"
    nfd = quote(unicodedata.normalize("NFD", "Nguyễn-🚀"), safe="")
    assert nfd != quote("Nguyễn-🚀", safe="")
    assert client.get(f"/v1/leads/{nfd}").json()["lead_id"] == "Nguyễn-🚀"
    # an id ending in "/history" names the history route of the shorter id (documented)
    assert client.get(f"/v1/leads/{quote('mail/anna@x.vn/history', safe='')}").json()["message"] == (
        "no lead with lead_id 'mail/anna@x.vn'")
    assert client.delete(f"/v1/leads/{slash}").status_code == 204
    assert client.get(f"/v1/leads/{slash}").status_code == 404
    assert client.delete(f"/v1/leads/{nfd}").status_code == 204


def test_export_lists_events_and_history_once(client: TestClient) -> None:
    client.post("/v1/events", json=_view("e1"))
    export = client.get("/v1/leads/L1/export").json()
    assert len(export["events"]) == 1 and len(export["history"]) == 1
    assert not {"events", "history", "owner", "tags"} & set(export["lead"])


def test_filters_on_a_stage_group_or_grade_the_model_lacks_are_refused(client: TestClient) -> None:
    client.post("/v1/events", json={"events": [_view("e1", "L1"), _view("e2", "L1", 2)]})
    assert [lead["lead_id"] for lead in client.get("/v1/leads?stage=hot").json()["leads"]] == ["L1"]
    assert [lead["lead_id"] for lead in client.get("/v1/leads?grade_fit=b").json()["leads"]] == ["L1"]
    refused = {
        "stage=Warm": ("stage", "stage: unknown stage 'Warm' (stages of the active model: Hot, New)"),
        "grade_fitt=A": ("grade_fitt", "grade_fitt: unknown graded group 'fitt' - did you mean 'fit'? "
                                       "(graded groups of the active model: fit)"),
        "grade_fit=C": ("grade_fit", "grade_fit: unknown grade 'C' (grades of the active model: A, B)"),
    }
    for query, (field, message) in refused.items():
        response = client.get(f"/v1/leads?{query}")
        assert (response.status_code, response.json()["field"], response.json()["message"]) == (422, field, message)
    response = client.get("/v1/leads?updated_since=2026-12-04T15:29:00+01:00")
    assert response.status_code == 422 and "must be sent as %2B" in response.json()["message"]


def test_an_unreadable_model_document_has_no_field(client: TestClient) -> None:
    response = client.post("/v1/model/preview", content="version: 1\nname: [x\n",
                           headers={"Content-Type": "application/yaml"})
    assert response.status_code == 422
    assert response.json()["field"] is None and response.json()["issues"][0]["line"] == 3


def test_a_batch_of_leads_is_upserted_in_one_transaction(client: TestClient) -> None:
    client.post("/v1/leads", json={"lead_id": "L1", "attributes": {"title": "VP Sales"}})
    response = client.post("/v1/leads", json={"leads": [
        {"lead_id": "L1", "attributes": {"title": "VP Sales"}},  # unchanged
        {"lead_id": "L2", "attributes": {"title": "VP Marketing", "name": "Nguyễn Thị Ánh 🌸"}},
        {"lead_id": "L1", "attributes": {"country": "VN"}},
    ]})
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (1, 1, 1)
    assert [(lead["lead_id"], lead["created"], lead["changed_attributes"], lead["score"]) for lead in body["leads"]] == [
        ("L1", False, [], 10.0), ("L2", True, ["created_at", "name", "title"], 10.0), ("L1", False, ["country"], 10.0)]
    assert client.get("/v1/leads/L2").json()["attributes"]["name"] == "Nguyễn Thị Ánh 🌸"
    # a refused item refuses the batch: nothing of it is stored
    refused = client.post("/v1/leads", json={"leads": [{"lead_id": "L3"}, {"lead_id": "L4", "attributes": []}]})
    assert (refused.status_code, refused.json()["field"]) == (422, "leads[1].attributes")
    refused = client.post("/v1/leads", json={"leads": [{"lead_id": "L3"}, {"lead_id": ""}]})
    assert (refused.status_code, refused.json()["field"]) == (422, "leads[1].lead_id")
    assert client.get("/v1/leads/L3").status_code == 404
    for payload, field in (({"leads": []}, "leads"), ({"leads": {}}, "leads"),
                           ({"leads": [{"lead_id": "L5"}], "x": 1}, "x"),
                           ({"leads": [{"lead_id": "L5", "attrs": {}}]}, "leads[0].attrs")):
        response = client.post("/v1/leads", json=payload)
        assert (response.status_code, response.json()["field"]) == (422, field), payload


def test_preview_percentiles_are_nearest_rank() -> None:
    from leadscore.service.preview import _summary

    assert (_summary([0.0, 70.0])["p50"], _summary([0.0, 70.0])["p90"]) == (0.0, 70.0)
    ten = [float(i) for i in range(1, 11)]
    assert (_summary(ten)["p50"], _summary(ten)["p90"], _summary([5.0])["p90"]) == (5.0, 9.0, 5.0)
