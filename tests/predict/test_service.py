"""A predictive model in the service: activation, lead detail, score policies, CLI, bad input."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.predict.test_cli import run
from tests.predict.test_training import FAST, _data
from tests.web.conftest import csrf_of

from leadscore.api import create_app
from leadscore.config import Settings
from leadscore.engine import Event, Lead
from leadscore.engine.timestamps import parse_timestamp
from leadscore.predict.predictor import Predictor
from leadscore.predict.training import TrainOptions, train
from leadscore.service import predictive
from leadscore.service.keys import create_key

RULES = """
version: 1
name: service-rules
rules:
  - {id: ceo, points: 30, when: {attribute: job_title, equals: CEO}}
  - {id: views, points: 5, when: {event: page_view, within_days: 30}, repeat: each, max_times: 6}
stages:
  - {name: Hot, min_score: 40}
  - {name: Warm, min_score: 10}
  - {name: New, min_score: 0}
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data, y = _data(700)
    result = train(data, y, TrainOptions(target="converted", exclude=("email",), **FAST))  # type: ignore[arg-type]
    return result.predictor.save(tmp_path_factory.mktemp("model") / "demo-model")


def _zip(directory: Path) -> bytes:
    return predictive.pack_directory(directory)


@pytest.fixture
def client(tmp_path: Path, db_url: str) -> Iterator[TestClient]:
    """The app on SQLite and on PostgreSQL (its own schema)."""
    (tmp_path / "rules.yaml").write_text(RULES)
    settings = Settings(database_url=db_url, model_file=tmp_path / "rules.yaml", scheduler=False)
    app = create_app(settings)
    predictive.forget_cached()
    predictive._failed.clear()
    with TestClient(app) as test_client:
        with app.state.ctx.store.write() as session:
            _, admin = create_key(session, "admin", "admin", 0)
            _, read = create_key(session, "read", "read", 0)
        test_client.headers.update({"Authorization": f"Bearer {admin}"})
        test_client.read_headers = {"Authorization": f"Bearer {read}"}  # type: ignore[attr-defined]
        yield test_client
    predictive.forget_cached()


NOW = datetime.now(UTC)


def _seed(client: TestClient) -> None:
    people = {"A1": {"job_title": "CEO", "company_size": "500", "country": "DE"},
              "A2": {"job_title": "Student", "country": "VN"},
              "A3": {"job_title": "Engineer", "company_size": "40", "country": "US"}}
    for lead_id, attributes in people.items():
        assert client.post("/v1/leads", json={"lead_id": lead_id, "attributes": attributes}).status_code in (200, 201)
    views = [{"event_id": f"v{i}", "lead_id": "A1", "type": "page_view",
              "timestamp": (NOW - timedelta(days=i + 1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "properties": {"url": "/pricing"}} for i in range(4)]
    assert client.post("/v1/events", json={"events": views}).status_code == 200


def _rule_score(lead: dict[str, Any]) -> float:
    """The rule score of a lead as shown (its explanation's rule points; these rules have no caps)."""
    return float(round(sum(r["points"] for r in lead["explain"]["rules"]), 2))


def _settle() -> None:
    time.sleep(predictive.ACTIVE_TTL + 0.05)  # another process's view of the active model expires


def test_activate_predict_blend_and_deactivate(client: TestClient, model_dir: Path) -> None:
    assert client.get("/v1/predictive").json() == {"active": False, "policy": "rules", "model": None}
    _seed(client)
    before = client.get("/v1/leads/A1").json()
    assert before["predictive"] is None
    rule_score = before["score"]

    response = client.put("/v1/predictive?policy=blend&weight=0.25&name=demo", content=_zip(model_dir),
                          headers={"Content-Type": "application/zip"})
    assert response.status_code == 202, response.text
    status = client.get("/v1/predictive").json()
    assert (status["active"], status["policy"], status["weight"], status["leads_predicted"], status["leads_total"]) == (
        True, "blend", 0.25, 3, 3)
    assert status["model"]["name"] == "demo" and status["model"]["algorithm"] in ("logistic", "lightgbm")

    lead = client.get("/v1/leads/A1").json()
    shown = lead["predictive"]
    assert 0 < shown["probability"] < 1 and shown["model"]["name"] == "demo"
    assert shown["score"] == pytest.approx(round(100 * shown["probability"], 2), abs=0.01)
    assert shown["rule_score"] == rule_score
    assert shown["reasons"] and all({"factor", "effect"} <= set(r) for r in shown["reasons"])
    assert lead["score"] == pytest.approx(0.25 * shown["score"] + 0.75 * rule_score, abs=0.006)
    assert lead["stage"] == before["stage"]  # a blend keeps the rule stages
    assert client.get("/v1/leads/A1/export").json()["lead"]["predictive"] == shown  # a data-subject export has it

    # the stored prediction is what the model gives the lead at that moment
    model = Predictor.load(model_dir)
    events = [Event.at("A1", "page_view", (NOW - timedelta(days=i + 1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       {"url": "/pricing"}, f"v{i}") for i in range(4)]
    expected = model.predict_lead(Lead("A1", lead["attributes"]), events, parse_timestamp(shown["at"]))
    assert shown["probability"] == round(expected.probability, 4)

    # a new event predicts the lead again; a process that has not loaded the model yet loads it from the store
    predictive._predictors.clear()
    predictive.forget_cached()
    client.post("/v1/events", json={"event_id": "f1", "lead_id": "A1", "type": "form_submit",
                                    "timestamp": NOW.strftime("%Y-%m-%dT%H:%M:%SZ")})
    again = client.get("/v1/leads/A1").json()["predictive"]
    assert again["at"] >= shown["at"]

    # the dashboard's model page says which predictive model is active and how it is used
    client.post("/signin", data={"key": client.headers["Authorization"][7:],
                                 "csrf_token": csrf_of(client.get("/signin").text), "next": "/"})
    page = client.get("/model", headers={"Authorization": ""})
    assert "<strong>demo</strong>" in page.text and "blend: 25 % predictive + 75 % rules" in page.text, page.text
    assert "Leads predicted</dt><dd>3 of 3" in page.text

    response = client.delete("/v1/predictive")
    assert response.status_code == 200 and response.json()["rescoring"] is True
    after = client.get("/v1/leads/A1").json()
    assert after["predictive"] is None
    assert after["score"] == client.get("/v1/leads/A1").json()["explain"]["score"]


def test_predictive_policy_uses_the_model_cut_offs(client: TestClient, model_dir: Path) -> None:
    _seed(client)
    response = client.put("/v1/predictive?policy=predictive&stages=Hot%3D60,Warm%3D20", content=_zip(model_dir))
    assert response.status_code == 202, response.text
    assert client.get("/v1/predictive").json()["stages"]["cut_offs"] == {"Hot": 60.0, "Warm": 20.0}
    for lead_id in ("A1", "A2", "A3"):
        lead = client.get(f"/v1/leads/{lead_id}").json()
        score = lead["predictive"]["score"]
        assert lead["score"] == score
        assert lead["stage"] == ("Hot" if score >= 60 else "Warm" if score >= 20 else "New")
    listed = client.get("/v1/leads?order=score").json()["leads"]
    predicted = {i: client.get(f"/v1/leads/{i}").json()["predictive"]["score"] for i in ("A1", "A2", "A3")}
    assert [item["lead_id"] for item in listed] == sorted(predicted, key=lambda i: -predicted[i])


def test_bad_requests_are_refused_clearly(client: TestClient, model_dir: Path) -> None:
    read = client.read_headers  # type: ignore[attr-defined]
    assert client.get("/v1/predictive", headers=read).status_code == 403
    assert client.put("/v1/predictive", content=_zip(model_dir), headers=read).status_code == 403
    bad = client.put("/v1/predictive", content=b"not a zip")
    assert bad.status_code == 422 and "zip" in bad.json()["message"]
    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("notes.txt", "hello")
    bad = client.put("/v1/predictive", content=empty.getvalue())
    assert bad.status_code == 422 and "manifest.json" in bad.json()["message"]
    assert "/tmp" not in bad.json()["message"]
    bad = client.put("/v1/predictive?policy=magic", content=_zip(model_dir))
    assert bad.status_code == 422 and bad.json()["field"] == "policy"
    bad = client.put("/v1/predictive?policy=blend&weight=2", content=_zip(model_dir))
    assert bad.status_code == 422 and "between 0 and 1" in bad.json()["message"]
    bad = client.put("/v1/predictive?policy=predictive&stages=Hot", content=_zip(model_dir))
    assert bad.status_code == 422 and bad.json()["field"] == "stages"
    # cut-offs in the wrong order made leads of 10-40 "SQL" and those above 40 "MQL"
    bad = client.put("/v1/predictive?policy=predictive&stages=SQL%3D10,MQL%3D40", content=_zip(model_dir))
    assert bad.status_code == 422 and bad.json() == {
        "error": "invalid_request", "field": "stages",
        "message": "stages: stages must be listed by falling min_score (e.g. SQL=40,MQL=15): MQL 40 is not "
                   "below 10 of SQL"} | {k: v for k, v in bad.json().items() if k not in ("error", "field", "message")}
    bad = client.put("/v1/predictive?policy=predictive",
                     content=_edited(model_dir, "stages.json", lambda _: '{"MQL": 15, "SQL": 40}'))
    assert bad.status_code == 422 and "listed by falling min_score" in bad.json()["message"]
    assert client.get("/v1/predictive").json()["active"] is False


def _edited(directory: Path, name: str, change: Any) -> bytes:
    """The model directory as a zip, its JSON file ``name`` (manifest.json, stages.json)
    written by ``change(manifest)``."""
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(directory.iterdir()):
            if path.name != name:
                archive.write(path, path.name)
        archive.writestr(name, change(manifest))
    return buffer.getvalue()


NOT_FINITE = "is not a finite number (NaN, Infinity and numbers beyond 1.8e308 are refused)"
# (file, its text from the manifest, field, what): JSON the service stores. Before, SQLite
# stored it (activated) and PostgreSQL answered 500 in plain text
UNSTORABLE_FILES = [
    ("manifest.json", lambda m: json.dumps({**m, "algorithm": m["algorithm"] + "\0"}), "manifest.json.algorithm",
     "contains a NUL character"),
    ("manifest.json", lambda m: json.dumps({**m, "a\0": 1}), "manifest.json",
     "the name 'a\\x00' contains a NUL character"),
    ("manifest.json", lambda m: json.dumps({**m, "as_of_offset_days": float("nan")}),
     "manifest.json.as_of_offset_days", NOT_FINITE),
    ("manifest.json", lambda m: json.dumps({**m, "as_of_offset_days": "@"}).replace('"@"', "1e400"),
     "manifest.json.as_of_offset_days", NOT_FINITE),
    ("stages.json", lambda _: json.dumps({"S\0QL": 40, "New": 0}), "stages.json",
     "the name 'S\\x00QL' contains a NUL character"),
]


@pytest.mark.parametrize(("name", "change", "field", "what"), UNSTORABLE_FILES,
                         ids=["nul", "nul-name", "nan", "1e400", "stages-nul-name"])
def test_a_model_directory_with_a_nul_or_a_number_that_is_not_finite_is_refused(
    client: TestClient, model_dir: Path, name: str, change: Any, field: str, what: str
) -> None:
    response = client.put("/v1/predictive?policy=predictive", content=_edited(model_dir, name, change))
    assert response.status_code == 422, response.text
    assert response.json() == {"error": "invalid_request", "message": f"{field}: {what}", "field": field}
    assert client.get("/v1/predictive").json()["active"] is False


def test_cli_activate_refuses_a_model_directory_with_a_nul(
    db_url: str, tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, ``leadscore predictive activate`` activated it on SQLite and stopped with a
    traceback of the database's error on PostgreSQL."""
    name, change, field, what = UNSTORABLE_FILES[0]
    directory = tmp_path / "model"
    with zipfile.ZipFile(io.BytesIO(_edited(model_dir, name, change))) as archive:
        archive.extractall(directory)
    code, _, errors = run(["predictive", "activate", str(directory), "--db", db_url, "--policy", "predictive"],
                          capsys)
    assert (code, errors.strip()) == (2, f"error: {field}: {what}")
    code, output, _ = run(["predictive", "status", "--db", db_url, "--json"], capsys)
    assert json.loads(output)["active"] is False


def test_cli_activate_status_deactivate(tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    app = create_app(Settings(database_url=url, model_file=tmp_path / "rules.yaml", scheduler=False))
    with TestClient(app) as api:
        with app.state.ctx.store.write() as session:
            _, admin = create_key(session, "admin", "admin", 0)
        api.headers.update({"Authorization": f"Bearer {admin}"})
        _seed(api)
    predictive.forget_cached()
    code, _, errors = run(["predictive", "activate", str(model_dir), "--db", url, "--policy", "predictive"], capsys)
    assert code == 0, errors
    assert "scored 3 lead(s) again" in errors
    code, output, _ = run(["predictive", "status", "--db", url, "--json"], capsys)
    status: dict[str, Any] = json.loads(output)
    assert (status["policy"], status["leads_predicted"], status["model"]["name"]) == ("predictive", 3, "demo-model")
    code, _, errors = run(["predictive", "activate", str(tmp_path), "--db", url], capsys)
    assert code == 2 and "manifest.json" in errors
    code, _, errors = run(["predictive", "activate", str(model_dir), "--db", url, "--policy", "blend",
                           "--weight", "1.5"], capsys)
    assert code == 2 and "weight" in errors
    _settle()
    code, _, errors = run(["predictive", "deactivate", "--db", url], capsys)
    assert code == 0 and "deactivated predictive model" in errors
    code, output, _ = run(["predictive", "status", "--db", url], capsys)
    assert "no predictive model is active" in output


def test_thresholds_save_stages_and_activation_uses_them(tmp_path: Path, model_dir: Path, synthetic_dir: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    copy = Path(shutil.copytree(model_dir, tmp_path / "with-stages"))
    code, _, errors = run(["thresholds", "--model", str(copy), "--leads", str(synthetic_dir / "leads.csv"),
                           "--events", str(synthetic_dir / "events.csv"), "--target", "converted",
                           "--as-of", "2026-06-01T00:00:00Z", "--save-stages"], capsys)
    assert code == 0, errors
    saved = json.loads((copy / predictive.STAGES_FILE).read_text())
    assert set(saved) == {"SQL", "MQL"} and saved["SQL"] >= saved["MQL"]
    code, _, errors = run(["thresholds", "--model", str(synthetic_dir / "leads.csv"), "--leads",
                           str(synthetic_dir / "leads.csv"), "--target", "converted", "--save-stages"], capsys)
    assert code == 2 and "--save-stages needs a predictive model" in errors
    (tmp_path / "rules.yaml").write_text(RULES)
    from leadscore.store.db import Store

    store = Store.open(f"sqlite:///{tmp_path / 'stages.db'}")
    try:
        with store.write() as session:
            status = predictive.activate_directory(session, copy, now_us=0, policy="predictive")
        assert status["stages"]["cut_offs"] == saved
    finally:
        store.dispose()
        predictive.forget_cached()


def test_attribute_changes_and_rule_model_changes_keep_the_policy(client: TestClient, model_dir: Path) -> None:
    _seed(client)
    assert client.put("/v1/predictive?policy=predictive", content=_zip(model_dir)).status_code == 202
    first = client.get("/v1/leads/A2").json()
    # an attribute change predicts the lead again (Student -> CEO moves the probability)
    client.post("/v1/leads", json={"lead_id": "A2", "attributes": {"job_title": "CEO"}})
    changed = client.get("/v1/leads/A2").json()
    assert changed["predictive"]["probability"] != first["predictive"]["probability"]
    assert changed["score"] == changed["predictive"]["score"]
    # a rule-model change rescores every lead: the score stays the predictive one, the
    # stored prediction is reused (not recomputed), the rule score is the new model's
    new_rules = RULES.replace("points: 30", "points: 50").replace("name: service-rules", "name: service-rules-2")
    assert client.put("/v1/model", content=new_rules).status_code == 202
    from leadscore.service.models import ModelCache
    from leadscore.service.rescore import rescore_all_pending

    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    rescore_all_pending(ctx.store, ModelCache(), ctx.now_us)
    after = client.get("/v1/leads/A2").json()
    assert after["model_version"] != changed["model_version"]
    assert after["predictive"]["at"] == changed["predictive"]["at"]  # reused
    assert after["predictive"]["rule_score"] == after["explain"]["rules"][0]["points"] == 50
    assert after["score"] == after["predictive"]["score"]


@pytest.mark.parametrize("policy", ["predictive", "blend"])
def test_time_rescoring_records_history_only_when_the_final_score_moves(
    client: TestClient, model_dir: Path, policy: str,
) -> None:
    """Time rescoring applies the history rule to the policy's final score: passes that change
    nothing write no row; a final score that moves by history_min_delta or more writes one."""
    from leadscore.service.models import ModelCache, active_model
    from leadscore.service.rescore import rescore_pks
    from leadscore.store.raw import raw

    _seed(client)
    assert client.put(f"/v1/predictive?policy={policy}", content=_zip(model_dir)).status_code == 202
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    now = ctx.now_us()

    def time_pass(at_us: int) -> int:
        with ctx.store.write() as session:
            pks = [p for (p,) in raw(session).all("SELECT id FROM leads ORDER BY id")]
            rescore_pks(session, active_model(session, ModelCache()), pks, at_us, "time")
        with ctx.store.read() as session:
            return int(raw(session).all("SELECT count(*) FROM score_history WHERE cause = 'time'")[0][0])

    assert [time_pass(now + 1000 * (i + 1)) for i in range(3)] == [0, 0, 0]
    # a real time-driven change: A1's page views (5 points each, within 30 days) expire
    later = now + 40 * 86_400 * 1_000_000
    assert time_pass(later) >= 1
    with ctx.store.read() as session:
        rows = raw(session).all("SELECT l.lead_id, h.old_score, h.new_score, l.score, l.recorded_score "
                                "FROM score_history h JOIN leads l ON l.id = h.lead_pk WHERE h.cause = 'time'")
    assert all(old != new and new == score == recorded for _, old, new, score, recorded in rows), rows
    assert "A1" in {r[0] for r in rows}
    count = time_pass(later + 1000)
    assert time_pass(later + 2000) == count  # settled again: no more rows


def test_a_model_this_process_cannot_load_falls_back_to_rule_scores(
    client: TestClient, model_dir: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """A stored model another process cannot load (a damaged blob, a missing library) never
    fails scoring: the failure is logged once, leads get rule scores and no prediction."""
    from leadscore.store.raw import raw

    _seed(client)
    assert client.put("/v1/predictive?policy=predictive", content=_zip(model_dir)).status_code == 202
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.store.write() as session:
        raw(session).execute("UPDATE predictive_models SET files = ?", [b"not a zip any more"])
    predictive._predictors.clear()  # as a process that has not loaded it yet
    predictive.forget_cached()
    with caplog.at_level("ERROR", logger="leadscore.predictive"):
        for i in range(2):
            response = client.post("/v1/events", json={"event_id": f"x{i}", "lead_id": "A1", "type": "page_view",
                                                       "timestamp": NOW.strftime("%Y-%m-%dT%H:%M:%SZ")})
            assert response.status_code == 200, response.text
            predictive.forget_cached()
        assert client.post("/v1/leads", json={"lead_id": "A9", "attributes": {"job_title": "CEO"}}).status_code in (
            200, 201)
    errors = [r for r in caplog.records if r.name == "leadscore.predictive" and r.levelname == "ERROR"]
    assert len(errors) == 1 and "cannot be loaded" in errors[0].getMessage()
    assert "A1" not in errors[0].getMessage() and "CEO" not in errors[0].getMessage()
    for lead_id in ("A1", "A9"):
        lead = client.get(f"/v1/leads/{lead_id}").json()
        assert lead["predictive"] is None
        assert lead["score"] == _rule_score(lead)


def test_activation_loads_the_model_before_the_write_transaction(
    client: TestClient, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unzipping and loading a model (up to 200 MB) happens before the write transaction
    opens, so that ingest is not blocked meanwhile (on SQLite)."""
    _seed(client)
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    order: list[str] = []
    load, open_write = predictive._load_predictor, ctx.store.write

    def loading(files: bytes) -> Any:
        order.append("load")
        return load(files)

    def writing(*args: Any, **kwargs: Any) -> Any:
        order.append("write")
        return open_write(*args, **kwargs)

    monkeypatch.setattr(predictive, "_load_predictor", loading)
    monkeypatch.setattr(ctx.store, "write", writing)
    assert client.put("/v1/predictive?policy=blend", content=_zip(model_dir)).status_code == 202
    assert order[:2] == ["load", "write"] and order.count("load") == 1, order


def test_the_active_model_is_forgotten_after_commit_and_stale_scores_are_redone(
    client: TestClient, model_dir: Path,
) -> None:
    """A thread that looked the active model up inside the activation's window does not keep
    the old state once it commits; leads scored meanwhile with the old policy are scored
    again by rescore_all's final pass, so after deactivation none keeps a blended score."""
    from leadscore.store.raw import raw

    _seed(client)
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.store.write() as session:
        predictive.activate(session, _zip(model_dir), name="demo", now_us=ctx.now_us(), policy="blend")
        database = predictive._database(session)
        predictive._active[database] = (time.monotonic(), None)  # another thread cached "no model" before the commit
    assert database not in predictive._active  # forgotten at commit
    predictive.rescore_all(ctx.store, ctx.now_us)
    with ctx.store.read() as session:
        stale = predictive.active(session)
    assert stale is not None and stale.policy == "blend"
    blended = client.get("/v1/leads/A1").json()
    assert blended["score"] != _rule_score(blended) == blended["predictive"]["rule_score"]

    with ctx.store.write() as session:
        predictive.deactivate(session)
    # a thread that still holds the old (blend) model scores A1 after the deactivation
    predictive._active[database] = (time.monotonic(), stale)
    assert client.post("/v1/events", json={"event_id": "late", "lead_id": "A1", "type": "page_view",
                                           "timestamp": NOW.strftime("%Y-%m-%dT%H:%M:%SZ")}).status_code == 200
    late = client.get("/v1/leads/A1").json()
    assert late["score"] != _rule_score(late)  # blended by the stale view
    predictive.rescore_all(ctx.store, ctx.now_us)
    for lead_id in ("A1", "A2", "A3"):
        lead = client.get(f"/v1/leads/{lead_id}").json()
        assert lead["score"] == _rule_score(lead) and lead["predictive"] is None
    with ctx.store.read() as session:
        assert raw(session).all("SELECT count(*) FROM lead_predictions")[0][0] == 0


def test_activation_and_deactivation_are_audited(client: TestClient, model_dir: Path) -> None:
    _seed(client)
    assert client.put("/v1/predictive?policy=blend&weight=0.3&name=demo", content=_zip(model_dir)).status_code == 202
    assert client.delete("/v1/predictive").status_code == 200
    assert client.delete("/v1/predictive").status_code == 200  # nothing active: nothing audited
    found = client.get("/v1/audit").json()["entries"]
    actions = [e for e in found if e["action"].startswith("predictive_")]
    assert [e["action"] for e in actions] == ["predictive_deactivated", "predictive_activated"]
    deactivated, activated = actions
    assert activated["actor"].startswith("key ") and "(admin)" in activated["actor"]
    assert activated["subject"] == deactivated["subject"] and activated["subject"].startswith("predictive model ")
    assert (activated["detail"]["name"], activated["detail"]["policy"], activated["detail"]["weight"]) == (
        "demo", "blend", 0.3)
    assert (deactivated["detail"]["name"], deactivated["detail"]["policy"]) == ("demo", "blend")
    only = client.get("/v1/audit?action=predictive_activated").json()["entries"]
    assert [e["action"] for e in only] == ["predictive_activated"]


def test_two_stores_in_one_process_do_not_share_the_active_model(client: TestClient, model_dir: Path,
                                                                  tmp_path: Path) -> None:
    """Model ids are per database: what one store activates is not seen in another one that the
    same process opens (a lead of the other store keeps its rule score and gets no prediction)."""
    from leadscore.store.db import Store

    _seed(client)
    assert client.put("/v1/predictive?policy=predictive", content=_zip(model_dir),
                      headers={"Content-Type": "application/zip"}).status_code == 202
    other = Store.open(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        with client.app.state.ctx.store.read() as session:  # type: ignore[attr-defined]
            assert predictive.active(session) is not None  # cached for this database now
        with other.read() as session:
            assert predictive.active(session) is None
    finally:
        other.dispose()


def test_an_operator_can_turn_model_upload_off(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A model is a pickle (loading it runs code): with LEADSCORE_PREDICTIVE_UPLOAD=false an
    admin key cannot upload one; the operator activates it on the server, and it is used."""
    (tmp_path / "rules.yaml").write_text(RULES)
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    monkeypatch.setenv("LEADSCORE_PREDICTIVE_UPLOAD", "false")
    settings = Settings(database_url=url, model_file=tmp_path / "rules.yaml", scheduler=False)
    assert settings.predictive_upload is False
    app = create_app(settings)
    with TestClient(app) as api:
        with app.state.ctx.store.write() as session:
            _, admin = create_key(session, "admin", "admin", 0)
            _, read = create_key(session, "read", "read", 0)
        api.headers.update({"Authorization": f"Bearer {admin}"})
        _seed(api)
        # a read key still gets the scope's 403 first; the admin key the switch's
        by_reader = api.put("/v1/predictive", content=_zip(model_dir), headers={"Authorization": f"Bearer {read}"})
        assert by_reader.status_code == 403 and "PREDICTIVE_UPLOAD" not in by_reader.json()["message"]
        refused = api.put("/v1/predictive?policy=predictive", content=_zip(model_dir))
        assert refused.status_code == 403
        assert "LEADSCORE_PREDICTIVE_UPLOAD=false" in refused.json()["message"]
        assert "leadscore predictive activate" in refused.json()["message"]
        assert api.get("/v1/predictive").json()["active"] is False
        predictive.forget_cached()
        code, _, errors = run(["predictive", "activate", str(model_dir), "--db", url, "--policy", "predictive"],
                              capsys)
        assert code == 0, errors
        predictive.forget_cached()
        _settle()
        assert api.get("/v1/predictive").json()["active"] is True
        assert api.get("/v1/leads/A1").json()["predictive"]["model"]
        deactivated = api.delete("/v1/predictive")
        assert deactivated.status_code == 200 and deactivated.json()["active"] is False
    predictive.forget_cached()
