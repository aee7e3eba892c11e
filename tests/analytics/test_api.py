"""GET /v1/analytics/... and POST /v1/outcomes, exact JSON."""

from __future__ import annotations

from fastapi.testclient import TestClient

from web.conftest import ago


def api(client: TestClient, scope: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {client.tokens[scope]}"}  # type: ignore[attr-defined]


def test_outcomes_are_recorded_and_checked(app_client: TestClient) -> None:
    headers = api(app_client, "ingest")
    response = app_client.post("/v1/outcomes", json={"lead_id": "L3", "outcome": "Converted",
                                                     "at": "2026-01-02T03:04:05Z"}, headers=headers)
    assert (response.status_code, response.json()) == (201, {
        "lead_id": "L3", "outcome": "customer", "at": "2026-01-02T03:04:05Z", "created": True})
    again = app_client.post("/v1/outcomes", json={"lead_id": "L3", "outcome": "won", "at": "2026-01-03T00:00:00Z"},
                            headers=headers)
    assert again.status_code == 200
    assert app_client.post("/v1/outcomes", json={"lead_id": "nope", "outcome": "won"}, headers=headers).json() == {
        "error": "not_found", "message": "no lead with lead_id 'nope'", "field": "lead_id"}
    bad = app_client.post("/v1/outcomes", json={"lead_id": "L3", "outcome": "maybe"}, headers=headers)
    assert (bad.status_code, bad.json()["field"]) == (422, "outcome")
    extra = app_client.post("/v1/outcomes", json={"lead_id": "L3", "outcome": "won", "x": 1}, headers=headers)
    assert extra.json()["field"] == "x"
    assert app_client.post("/v1/outcomes", json={"lead_id": "L3", "outcome": "won"},
                           headers=api(app_client, "read")).status_code == 403
    # a moment that is not a text is refused as what it is, Infinity included (not as "'inf'")
    for at, kind in (("Infinity", "a number"), ("NaN", "a number"), ("1767225600", "a number"),
                     ('{"t": 1}', "an object")):
        body = f'{{"lead_id": "L3", "outcome": "lost", "at": {at}}}'.encode()
        refused = app_client.post("/v1/outcomes", content=body,
                                  headers={**headers, "Content-Type": "application/json"})
        assert (refused.status_code, refused.json()["field"]) == (422, "at")
        assert refused.json()["message"] == (
            f"at: expected an ISO 8601 timestamp text (e.g. 2025-03-01T14:30:00Z), got {kind}")
    unparsable = app_client.post("/v1/outcomes", json={"lead_id": "L3", "outcome": "lost", "at": "inf"},
                                 headers=headers)
    assert unparsable.json()["message"].startswith("at: 'inf' is not an ISO 8601 timestamp")
    held = app_client.get("/v1/leads/L3/export", headers=api(app_client, "admin")).json()["records"]["outcomes"]
    assert [row["outcome"] for row in held] == ["customer"]  # no 'lost' from the refused ones


def test_analytics_routes(app_client: TestClient) -> None:
    headers = api(app_client, "read")
    conversion = app_client.get("/v1/analytics/conversion", headers=headers).json()
    assert conversion["funnel"] == {"leads": 3, "opportunities": 1, "customers": 1, "lead_to_opportunity": 0.3333,
                                    "opportunity_to_customer": 1.0, "lead_to_customer": 0.3333}
    assert {s["stage"]: s["customers"] for s in conversion["by_stage"]} == {"Hot": 1, "New": 0}
    assert conversion["last_30_days"] == {"days": 30, "leads_created": 3, "customers_won": 1, "conversion": 0.3333}
    scores = app_client.get("/v1/analytics/scores?bands=4", headers=headers).json()["bands"]
    assert [b["leads"] for b in scores] == [1, 2, 0, 0]
    cycle = app_client.get("/v1/analytics/sales-cycle", headers=headers).json()
    assert cycle["customers"] == 1 and 0 <= cycle["median_days"] <= 0.2
    velocity = app_client.get("/v1/analytics/velocity", headers=headers).json()
    assert velocity["stages"] == ["Hot"] and velocity["qualified_this_month"] == 2
    stages = app_client.get("/v1/analytics/stages?months=2", headers=headers).json()
    assert stages["now"] == {"Hot": 2, "New": 1} and stages["stages"]["Hot"][-1] == 2
    assert app_client.get("/v1/analytics/webhooks", headers=headers).json()["webhooks"]["attempts"] == 0
    everything = app_client.get("/v1/analytics", headers=headers).json()
    assert everything["leads"] == 3 and everything["funnel"] == conversion["funnel"]
    assert app_client.get("/v1/analytics").status_code == 401


def test_attribute_outcomes_count(app_client: TestClient) -> None:
    headers = api(app_client)
    app_client.post("/v1/leads", json={"lead_id": "L9", "attributes": {"converted": True, "won_at": ago(1)}},
                    headers=headers)
    assert app_client.get("/v1/analytics/conversion", headers=headers).json()["funnel"]["customers"] == 2


def test_erasing_a_lead_erases_its_outcomes(app_client: TestClient) -> None:
    headers = api(app_client)
    assert app_client.delete("/v1/leads/L1", headers=headers).status_code == 204
    assert app_client.get("/v1/analytics/conversion", headers=headers).json()["funnel"]["customers"] == 0
