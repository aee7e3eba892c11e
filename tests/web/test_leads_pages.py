"""The leads list pages with keyset cursors: every lead exactly once, in order, forwards
and backwards, with ties on the sort value; a broken cursor starts again from page 1."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from leadscore.analytics.browse import decode_cursor, encode_cursor
from leadscore.service.errors import InvalidRequest
from leadscore.store.tables import leads
from web.conftest import SignIn
from web.test_pages import text_of

ROW = re.compile(r'<tr>\s*<td class="num muted">(\d+)</td>\s*<td><a href="/leads/([^"]+)"')


def _fill(client: TestClient, n: int = 130) -> None:
    with client.app.state.ctx.store.write() as session:  # type: ignore[attr-defined]
        for i in range(n):
            session.execute(leads.insert().values(
                lead_id=f"K{i:03}", attributes={"name": f"Phạm {i}"}, created_us=1_000 * (i % 7),
                updated_us=5_000 * (i % 11), score=float(i % 9) * 5, stage="New" if i % 3 else "Hot"))


def _rows(html: str) -> list[tuple[int, str]]:
    return [(int(rank), lead) for rank, lead in ROW.findall(html)]


def _link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)"[^>]*rel="{rel}"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def _expected(client: TestClient, order: list[str]) -> list[str]:
    with client.app.state.ctx.store.read() as session:  # type: ignore[attr-defined]
        rows = session.execute(leads.select().where(leads.c.score.is_not(None))).all()
    key = {"score": lambda r: (-r.score, -r.id), "-score": lambda r: (r.score, r.id),
           "created": lambda r: (-r.created_us, -r.id), "updated": lambda r: (-r.updated_us, -r.id),
           "lead_id": lambda r: (r.lead_id,)}[order[0]]
    return [r.lead_id for r in sorted(rows, key=key)]


@pytest.mark.parametrize("sort", ["score", "-score", "created", "lead_id"])
def test_walking_every_page_forwards_and_backwards(sign_in: SignIn, sort: str) -> None:
    client = sign_in("read")
    _fill(client)
    expected = _expected(client, [sort])
    url: str | None = f"/?sort={sort}&per_page=25"
    seen: list[tuple[int, str]] = []
    while url:
        page = client.get(url).text
        seen.extend(_rows(page))
        url = _link(page, "next")
    assert [lead for _, lead in seen] == expected
    assert [rank for rank, _ in seen] == list(range(1, len(expected) + 1))
    last = client.get(f"/?sort={sort}&per_page=25&last=1").text
    assert "of 133" in text_of(last)
    back: list[tuple[int, str]] = []
    url = f"/?sort={sort}&per_page=25&last=1"
    while url:
        page = client.get(url).text
        back[:0] = _rows(page)
        url = _link(page, "prev")
    assert back == seen


def test_the_partial_has_the_pager_and_a_stage_filter_stays(sign_in: SignIn) -> None:
    client = sign_in("read")
    _fill(client)
    partial = client.get("/?stage=Hot&per_page=25", headers={"HX-Request": "true", "HX-Target": "leads"}).text
    assert "<html" not in partial
    following = _link(partial, "next")
    assert following and "stage=Hot" in following and "start=26" in following
    assert all(lead.startswith("K") for _, lead in _rows(client.get(following).text))


def test_a_broken_cursor_says_so_and_shows_the_first_page(sign_in: SignIn) -> None:
    client = sign_in("read")
    page = client.get("/?after=bm90LWEtY3Vyc29y")
    assert page.status_code == 200
    assert "after is not a page cursor of this list" in text_of(page.text)
    assert _rows(page.text)[0] == (1, "L1")


def test_cursors_round_trip_and_refuse_other_shapes() -> None:
    assert decode_cursor(encode_cursor([12.5, 7]), 2, "after") == [12.5, 7]
    assert decode_cursor(encode_cursor(["Nguyễn"]), 1, "after") == ["Nguyễn"]
    for bad in ("", "%%%", encode_cursor([1]), encode_cursor([True, 1]), encode_cursor([[1], 2])):
        with pytest.raises(InvalidRequest, match="not a page cursor"):
            decode_cursor(bad, 2, "after")
