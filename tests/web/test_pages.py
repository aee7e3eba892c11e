"""The dashboard as a person uses it: sign-in, the session cookie, CSRF, every page."""

from __future__ import annotations

from html.parser import HTMLParser

from fastapi.testclient import TestClient

from web.conftest import SignIn, csrf_of


class Text(HTMLParser):
    """The visible text of a page, and its controls without a label."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0
        self.inputs: list[str] = []
        self.labels: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("script", "style"):
            self.skip += 1
        if tag == "label" and found.get("for"):
            self.labels.add(str(found["for"]))
        if tag in ("input", "select", "textarea") and found.get("type") not in ("hidden", "submit"):
            self.inputs.append(str(found.get("id")))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip and data.strip():
            self.parts.append(" ".join(data.split()))


def text_of(html: str) -> str:
    parser = Text()
    parser.feed(html)
    return " ".join(parser.parts)


def unlabelled(html: str) -> list[str]:
    parser = Text()
    parser.feed(html)
    return [i for i in parser.inputs if i not in parser.labels]


def test_pages_need_a_signed_in_key(app_client: TestClient) -> None:
    response = app_client.get("/leads/L1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fleads%2FL1"
    page = app_client.get("/signin")
    assert "API key" in text_of(page.text)
    assert unlabelled(page.text) == []


def test_sign_in_sets_a_hardened_cookie_and_a_wrong_key_is_refused(app_client: TestClient) -> None:
    page = app_client.get("/signin")
    wrong = app_client.post("/signin", data={"key": "lsk_nope", "csrf_token": csrf_of(page.text)})
    assert wrong.status_code == 401
    assert "unknown API key" in text_of(wrong.text)
    right = app_client.post("/signin", data={"key": app_client.tokens["read"],  # type: ignore[attr-defined]
                                             "csrf_token": csrf_of(page.text), "next": "https://evil.example/"},
                            follow_redirects=False)
    assert (right.status_code, right.headers["location"]) == (303, "/")  # no open redirect
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http in tests; https gets Secure
    assert app_client.get("/").status_code == 200


def test_secure_cookie_over_https(app_client: TestClient) -> None:
    response = app_client.get("https://testserver/signin")
    assert "Secure" in response.headers["set-cookie"]


def test_forms_without_the_csrf_token_are_refused(sign_in: SignIn) -> None:
    client = sign_in("admin")
    response = client.post("/leads/L2/erase", data={"confirm": "L2"})
    assert response.status_code == 403
    assert "expired" in text_of(response.text)
    response = client.post("/leads/L2/erase", data={"confirm": "L2", "csrf_token": "forged"})
    assert response.status_code == 403
    assert client.get("/leads/L2").status_code == 200  # still there


def test_a_tampered_cookie_signs_out(sign_in: SignIn) -> None:
    client = sign_in("read")
    value = client.cookies["ls_session"]
    client.cookies.clear()  # replaced, not added beside it (httpx2 keeps both: the server's has a domain)
    client.cookies.set("ls_session", value)
    assert client.get("/", follow_redirects=False).status_code == 200  # the cookie set this way is sent
    client.cookies.clear()
    client.cookies.set("ls_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_leads_list_ranks_filters_and_shows_vietnamese_names(sign_in: SignIn) -> None:
    client = sign_in("read")
    page = client.get("/")
    text = text_of(page.text)
    assert "3 leads" in text
    assert text.index("Nguyễn Thị Minh Khai") < text.index("Björn Schneider") < text.index("Ada Lovelace")
    assert unlabelled(page.text) == []
    assert 'Content-Security-Policy' in page.headers
    found = client.get("/?q=nguy%E1%BB%85n")
    assert "1 lead" in text_of(found.text) and "Nguyễn Thị Minh Khai" in found.text
    hot = client.get("/?stage=Hot", headers={"HX-Request": "true", "HX-Target": "leads"})
    assert "<html" not in hot.text  # the partial only
    assert "2 leads" in text_of(hot.text)
    graded = client.get("/?grade=fit:A&sort=-score")
    assert "2 leads" in text_of(graded.text)


def _give_owner_and_tags(client: TestClient, lead_id: str, owner: str, tags: list[str]) -> None:
    """As a trigger's assign_owner and tag actions would (tests/actions test those)."""
    from sqlalchemy import select

    from leadscore.store.tables import leads
    from leadscore.store.tables_automation import lead_owners, lead_tags

    with client.app.state.ctx.store.write() as session:  # type: ignore[attr-defined]
        pk = session.execute(select(leads.c.id).where(leads.c.lead_id == lead_id)).scalar_one()
        session.execute(lead_owners.insert().values(lead_pk=pk, owner=owner, assigned_us=0, trigger_id="t"))
        session.execute(lead_tags.insert(), [{"lead_pk": pk, "tag": tag, "added_us": 0} for tag in tags])


def test_lead_page_shows_breakdown_history_and_the_predictive_slot(sign_in: SignIn) -> None:
    client = sign_in("read")
    assert 'id="lead-owner-tags"' not in client.get("/leads/L1").text  # none given yet
    _give_owner_and_tags(client, "L1", "anna@example.com", ["mql", "🔥 hot"])
    page = client.get("/leads/L1")
    text = text_of(page.text)
    assert "Nguyễn Thị Minh Khai" in text
    assert "Owner anna@example.com · mql 🔥 hot" in text
    assert "Pricing page (2 events) default +30.00 VP title fit +10.00" in text
    assert "No predictive score for this lead yet" in text
    assert 'data-chart="chart-rules"' in page.text and 'data-chart="chart-history"' in page.text
    assert "customer" in text  # outcome
    assert "Erase" not in text  # read scope: no erase button
    assert client.get("/leads/L1/erase").status_code == 403
    assert client.get("/leads/nope").status_code == 404


def test_export_and_erase_with_confirmation(sign_in: SignIn) -> None:
    client = sign_in("admin")
    export = client.get("/leads/L2/export")
    assert export.headers["content-disposition"] == 'attachment; filename="lead-L2.json"'
    assert export.json()["lead"]["lead_id"] == "L2"
    form = client.get("/leads/L2/erase")
    wrong = client.post("/leads/L2/erase", data={"confirm": "L3", "csrf_token": csrf_of(form.text)})
    assert wrong.status_code == 422 and "Type the lead id exactly" in wrong.text
    done = client.post("/leads/L2/erase", data={"confirm": "L2", "csrf_token": csrf_of(form.text)},
                       follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, "/?erased=L2")
    assert client.get("/leads/L2").status_code == 404


def test_a_lead_id_with_a_slash_has_its_page_export_and_erasure(sign_in: SignIn, app_client: TestClient) -> None:
    api = {"Authorization": f"Bearer {app_client.tokens['admin']}"}  # type: ignore[attr-defined]
    assert app_client.post("/v1/leads", json={"lead_id": "acct/42", "attributes": {"name": "Trần Văn Ân"}},
                           headers=api).status_code == 201
    client = sign_in("admin")
    assert 'href="/leads/acct%2F42"' in client.get("/").text
    assert "Trần Văn Ân" in text_of(client.get("/leads/acct%2F42").text)
    assert client.get("/leads/acct%2F42/export").json()["lead"]["lead_id"] == "acct/42"
    # a Vietnamese / emoji id: a file name in ASCII (a header is Latin-1; it was a 500)
    assert app_client.post("/v1/leads", json={"lead_id": "Nguyễn-🚀", "attributes": {}}, headers=api).status_code == 201
    exported = client.get("/leads/Nguy%E1%BB%85n-%F0%9F%9A%80/export")
    assert exported.status_code == 200 and exported.json()["lead"]["lead_id"] == "Nguyễn-🚀"
    assert exported.headers["content-disposition"] == 'attachment; filename="lead-Nguy_n-_.json"'
    form = client.get("/leads/acct%2F42/erase")
    done = client.post("/leads/acct%2F42/erase", data={"confirm": "acct/42", "csrf_token": csrf_of(form.text)},
                       follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, "/?erased=acct%2F42")
    assert client.get("/leads/acct%2F42").status_code == 404


BETTER = """
version: 1
name: web-test-2
groups: {fit: {grades: {A: 10, B: 0}}}
rules:
  - {id: vp, label: "VP title", group: fit, points: 30, when: {attribute: job_title, contains: vp}}
stages:
  - {name: Hot, min_score: 25}
  - {name: New, min_score: 0}
"""


def test_model_page_rules_preview_errors_and_activation(sign_in: SignIn) -> None:
    client = sign_in("admin")
    page = client.get("/model")
    text = text_of(page.text)
    assert "Active: web-test" in text
    assert "Pricing page pricing default +15 event page_view where url contains “pricing” within 30 days" in text
    assert unlabelled(page.text) == []
    token = csrf_of(page.text)
    bad = client.post("/model/preview", data={"document": "version: 1\nname: x\nrules: 3\n", "csrf_token": token})
    assert "The model is invalid" in bad.text and "rules" in bad.text
    preview = client.post("/model/preview", data={"document": BETTER, "csrf_token": token})
    assert "Stage distribution before and after" in text_of(preview.text)
    refused = client.post("/model", data={"document": "version: 1\nname: x\nrules: 3\n", "csrf_token": token})
    assert refused.status_code == 422
    assert "nothing was changed" in text_of(refused.text) and "rules: 3" in refused.text  # kept for editing
    done = client.post("/model", data={"document": BETTER, "csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/model?activated=")
    after = client.get("/model")
    assert "Active: web-test-2" in text_of(after.text)
    assert 'class="add"' in after.text  # the diff between the two versions
    # the same document saved again: no new version, no rescoring, and the page says so
    version = done.headers["location"].split("=")[1]
    again = client.post("/model", data={"document": BETTER, "csrf_token": token}, follow_redirects=False)
    assert (again.status_code, again.headers["location"]) == (303, f"/model?unchanged={version}")
    said = text_of(client.get(again.headers["location"]).text)
    assert f"This is the active model's document (version {version}): nothing changed, no lead was rescored." in said
    assert said.count("web-test-2") == text_of(after.text).count("web-test-2")  # no version added to the list
    # as a browser sends the text area: lines ended by CRLF; still the same document
    crlf = client.post("/model", data={"document": BETTER.replace("\n", "\r\n"), "csrf_token": token},
                       follow_redirects=False)
    assert (crlf.status_code, crlf.headers["location"]) == (303, f"/model?unchanged={version}")


def test_model_upload_as_file(sign_in: SignIn) -> None:
    client = sign_in("admin")
    token = csrf_of(client.get("/model").text)
    response = client.post("/model/preview", data={"document": "", "csrf_token": token},
                           files={"file": ("model.yaml", BETTER.encode(), "application/yaml")})
    assert "Preview: web-test-2" in text_of(response.text)


def test_read_key_cannot_activate(sign_in: SignIn) -> None:
    client = sign_in("read")
    token = csrf_of(client.get("/model").text)
    assert client.post("/model", data={"document": BETTER, "csrf_token": token}).status_code == 403


def test_analytics_and_segments_pages(sign_in: SignIn) -> None:
    client = sign_in("read")
    text = text_of(client.get("/analytics").text)
    assert "Lead → opportunity 33.3 %" in text
    assert "Opportunity → customer 100.0 %" in text
    assert "The active model (web-test) defines no segment yet." in text_of(client.get("/segments").text)


def test_static_files_are_vendored_and_nothing_else_is_served(app_client: TestClient) -> None:
    assert app_client.get("/static/vendor/htmx.min.js").status_code == 200
    assert "Chart" in app_client.get("/static/vendor/chart.umd.min.js").text[:2000]
    assert app_client.get("/static/../base.py").status_code == 404
    assert app_client.get("/static/templates/base.html").status_code == 404
