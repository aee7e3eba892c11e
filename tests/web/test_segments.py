"""The segments pages: sizes and changes, definition, members, and creating, editing and
deleting a segment from the page (a new model version each time, errors inline)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from leadscore.errors import ModelError
from leadscore.model.loading import parse_model
from leadscore.store.tables import leads
from leadscore.store.tables_automation import segment_members
from leadscore.web.segment_form import edit_document
from web.conftest import SignIn, csrf_of
from web.test_pages import text_of, unlabelled

GOOD = {"name": "hot-vn", "description": "Hot leads from Việt Nam", "min_score": "20", "stage": "Hot",
        "grade.fit": "A", "attributes": "- {attribute: company, contains: Công ty}", "max_score": "",
        "active_within_days": ""}


def _form(client: TestClient, url: str) -> dict[str, str]:
    page = client.get(url)
    assert page.status_code == 200, page.text
    base = re.search(r'name="base_version" value="(\d+)"', page.text)
    assert base
    return {"csrf_token": csrf_of(page.text), "base_version": base.group(1)}


def _create(client: TestClient, **fields: str) -> object:
    return client.post("/segments", data={**_form(client, "/segments/+new"), **GOOD, **fields},
                       follow_redirects=False)


def test_create_show_edit_and_delete_a_segment(sign_in: SignIn) -> None:
    client = sign_in("admin")
    assert "defines no segment yet" in text_of(client.get("/segments").text)
    form_page = client.get("/segments/+new")
    assert unlabelled(form_page.text) == []
    saved = _create(client)
    assert saved.status_code == 303, saved.text  # type: ignore[attr-defined]
    assert saved.headers["location"].startswith("/segments?saved=hot-vn")  # type: ignore[attr-defined]
    listing = text_of(client.get(saved.headers["location"]).text)  # type: ignore[attr-defined]
    assert "Segment hot-vn was saved" in listing
    for words in ("score ≥ 20", "stage is Hot", "fit grade is A", "company contains “Công ty”",
                  "Hot leads from Việt Nam"):
        assert words in listing
    row = re.search(r"hot-vn .*? 1 \+1 \+1 / −0", listing)
    assert row, listing  # one member now, one entered in the last 7 days
    detail = client.get("/segments/hot-vn")
    assert 'href="/leads/L1"' in detail.text and "Nguyễn Thị Minh Khai" in detail.text
    assert "Ada Lovelace" not in detail.text
    # the model now holds it: a new version
    model = client.get("/v1/model", headers={"Authorization": f"Bearer {client.tokens['admin']}"}).json()  # type: ignore[attr-defined]
    assert model["model"]["segments"][0]["name"] == "hot-vn"
    # edit: a higher minimum makes L1 (score 40) leave
    edit = client.get("/segments/hot-vn/edit")
    assert 'value="Hot leads from Việt Nam"' in edit.text and "checked" in edit.text
    changed = client.post("/segments/hot-vn/edit", data={**_form(client, "/segments/hot-vn/edit"), **GOOD,
                                                          "min_score": "50"}, follow_redirects=False)
    assert changed.status_code == 303, changed.text
    listing = text_of(client.get("/segments").text)
    assert "score ≥ 50" in listing and re.search(r"hot-vn .*? 0 ±0 \+1 / −1", listing), listing
    assert "No lead is in this segment now." in text_of(client.get("/segments/hot-vn").text)
    # delete, with confirmation
    confirm = client.get("/segments/hot-vn/delete")
    token = csrf_of(confirm.text)
    base = re.search(r'name="base_version" value="(\d+)"', confirm.text)
    assert base
    gone = client.post("/segments/hot-vn/delete", data={"csrf_token": token, "base_version": base.group(1)},
                       follow_redirects=False)
    assert gone.status_code == 303
    assert "Segment hot-vn was deleted" in text_of(client.get(gone.headers["location"]).text)
    assert client.get("/segments/hot-vn").status_code == 404


def test_invalid_segments_are_refused_with_errors_next_to_the_fields(sign_in: SignIn) -> None:
    client = sign_in("admin")
    bad = _create(client, name="Hot VN", min_score="lots", attributes="- {attribute: [")
    assert bad.status_code == 422  # type: ignore[attr-defined]
    html = bad.text  # type: ignore[attr-defined]
    assert 'id="e-min_score">must be a number, got &#39;lots&#39;' in html
    assert 'id="e-attributes">not valid YAML (line 1' in html
    assert 'aria-invalid="true" aria-describedby="e-min_score"' in html
    assert 'value="Hot VN"' in html  # what was typed is kept
    bad = _create(client, name="Hot VN")
    assert bad.status_code == 422 and 'id="e-name">' in bad.text  # type: ignore[attr-defined]
    bad = _create(client, min_score="60", max_score="10")
    assert "must be at least the minimum score (60)" in bad.text  # type: ignore[attr-defined]
    # the model's own checks (an unknown operator) land next to the field too
    bad = _create(client, attributes="- {attribute: company, resembles: x}")
    assert bad.status_code == 422 and 'id="e-attributes">' in bad.text  # type: ignore[attr-defined]
    assert _create(client).status_code == 303  # type: ignore[attr-defined]
    dup = _create(client)
    assert dup.status_code == 422 and "already has a segment &#39;hot-vn&#39;" in dup.text  # type: ignore[attr-defined]


def test_a_stale_form_and_a_missing_csrf_token_change_nothing(sign_in: SignIn) -> None:
    client = sign_in("admin")
    stale = _form(client, "/segments/+new")
    assert _create(client).status_code == 303  # type: ignore[attr-defined]  # a new version since
    again = client.post("/segments", data={**stale, **GOOD, "name": "other"}, follow_redirects=False)
    assert again.status_code == 422 and "The model changed while you were editing" in again.text
    assert client.post("/segments", data={**GOOD, "name": "x"}, follow_redirects=False).status_code == 403
    assert "other" not in text_of(client.get("/segments").text)


def test_read_keys_see_segments_but_cannot_change_them(sign_in: SignIn) -> None:
    client = sign_in("read")
    assert client.get("/segments").status_code == 200
    assert "New segment" not in client.get("/segments").text
    assert client.get("/segments/+new").status_code == 403
    assert client.post("/segments", data={**GOOD}, follow_redirects=False).status_code == 403


def test_members_are_paged_and_link_to_their_leads(sign_in: SignIn) -> None:
    client = sign_in("admin")
    assert _create(client, min_score="", stage="", attributes="", **{"grade.fit": ""}).status_code == 303  # type: ignore[attr-defined]
    store = client.app.state.ctx.store  # type: ignore[attr-defined]
    with store.write() as session:
        for i in range(70):
            pk = session.execute(leads.insert().values(
                lead_id=f"M{i:03}", attributes={"name": f"Trần Văn {i}"}, created_us=0, updated_us=0, score=1.0,
                stage="New")).inserted_primary_key[0]
            session.execute(segment_members.insert().values(segment="hot-vn", lead_pk=pk, entered_us=0))
    first = client.get("/segments/hot-vn")
    assert first.text.count('href="/leads/') == 50
    following = re.search(r'href="(/segments/hot-vn\?after=\d+&amp;start=51)"', first.text)
    assert following, first.text
    second = client.get(following.group(1).replace("&amp;", "&"))
    assert "Trần Văn 69" in second.text and "51–" in text_of(second.text)
    assert 'rel="next"' not in second.text


COMMENTED = """\
version: 1
name: commented  # the name
rules:
  - {id: vp, points: 10, when: {attribute: title, contains: vp}}
stages:
  - {name: Hot, min_score: 5}
  - {name: New, min_score: 0}
segments:
  # the best leads
  - name: hot
    min_score: 5   # keep in step with the Hot stage
  # everyone else
  - name: rest
    max_score: 5
# the end
"""


def test_editing_the_document_keeps_comments_and_layout() -> None:
    replaced = edit_document(COMMENTED, "yaml", "hot", {"name": "hot", "min_score": 7})
    assert replaced == COMMENTED.replace("  - name: hot\n    min_score: 5   # keep in step with the Hot stage\n",
                                         "  - name: hot\n    min_score: 7\n")
    added = edit_document(COMMENTED, "yaml", None, {"name": "warm_vn", "stage": ["New"]})
    assert added == COMMENTED.replace("    max_score: 5\n", "    max_score: 5\n  - name: warm_vn\n    stage: [New]\n")
    assert [s.name for s in parse_model(added).segments or []] == ["hot", "rest", "warm_vn"]
    removed = edit_document(COMMENTED, "yaml", "hot", None)
    assert "# the best leads" in removed and "name: hot" not in removed and "# everyone else" in removed
    only = edit_document(edit_document(COMMENTED, "yaml", "rest", None), "yaml", "hot", None)
    assert parse_model(only).segments == []
    assert only.startswith("version: 1\nname: commented  # the name\n") and only.endswith("# the end\n")
    without = COMMENTED.split("segments:")[0]
    first = edit_document(without, "yaml", None, {"name": "hot"})
    assert first == without + "segments:\n  - name: hot\n"
    flow = without + "segments: [{name: hot}]\n"
    assert [s.name for s in parse_model(edit_document(flow, "yaml", None, {"name": "b"})).segments or []] == ["hot", "b"]
    as_json = '{"version": 1, "name": "j", "segments": [{"name": "a"}]}'
    out = edit_document(as_json, "json", "a", {"name": "ä-free", "min_score": 1})
    with pytest.raises(ModelError):  # the name pattern is checked by the model
        parse_model(out, fmt="json")
    assert '"min_score": 1' in out
    with pytest.raises(KeyError):
        edit_document(COMMENTED, "yaml", "missing", None)
