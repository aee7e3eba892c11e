"""`leadscore send` against a real server (uvicorn in a thread, the real HTTP client), and
its retries against a fake transport."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cli_run import run_cli as run
from leadscore.client.send import Row, Sender, SendError, read_lead_rows
from leadscore.demo import write_world
from leadscore.errors import InputError
from leadscore.store.db import Store
from leadscore.store.raw import from_json
from leadscore.store.tables import events, leads
from live import serving


@dataclass
class Live:
    url: str
    key: str
    store: Store



@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """``leadscore serve`` of the starter model on a fresh SQLite store, with an ingest key."""
    from leadscore.api import create_app
    from leadscore.config import Settings
    from leadscore.service.keys import create_key

    for name in ("LEADSCORE_API_KEY", "LEADSCORE_URL"):
        monkeypatch.delenv(name, raising=False)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'served.db'}", scheduler=False))
    with serving(app) as url:
        with app.state.ctx.store.write() as session:
            key = create_key(session, "sender", "ingest", 0)[1]
        yield Live(url, key, app.state.ctx.store)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    summary = write_world(tmp_path_factory.mktemp("world"), 50, seed=42)
    return {name: Path(path) for name, path in summary.files.items()}


def _contents(store: Store) -> dict[str, Any]:
    """Every lead's attributes (without the empty ones), score columns and events (not the
    unrounded total: a decaying score moves between the two stores' scoring moments)."""
    with store.read() as session:
        rows = session.execute(select(
            leads.c.id, leads.c.lead_id, leads.c.attributes, leads.c.score, leads.c.stage,
            leads.c.groups, leads.c.grades,
        )).all()
        stored = session.execute(select(
            events.c.lead_pk, events.c.event_id, events.c.type, events.c.ts_us, events.c.properties,
        ).order_by(events.c.lead_pk, events.c.id)).all()
    by_pk: dict[int, list[tuple[Any, ...]]] = {}
    for pk, event_id, kind, ts, properties in stored:
        by_pk.setdefault(pk, []).append((event_id, kind, ts, from_json(properties) or {}))
    return {
        row.lead_id: (
            {k: v for k, v in (from_json(row.attributes) or {}).items() if v is not None},
            row.score, row.stage, row.groups, row.grades, by_pk.get(row.id, []),
        )
        for row in rows
    }


SUMMARY = re.compile(
    r"sent 50 lead\(s\) \(50 new\) in \d+\.\d s, 669 event\(s\) in 4 batch\(es\) in \d+\.\d s "
    r"\([\d,]+ events/s\): 669 accepted, 0 duplicate\(s\); 50 lead\(s\) touched "
    r"\(to http://127\.0\.0\.1:\d+\)\n"
)


def test_send_stores_what_import_stores_and_a_second_send_is_duplicates(
    live: Live, world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADSCORE_API_KEY", live.key)  # the key from the environment, not --key
    monkeypatch.setenv("LEADSCORE_URL", live.url)
    args = ["send", "--leads", str(world["leads"]), "--events", str(world["events"]), "--quiet"]
    code, out, err = run([*args, "--batch", "200"], capsys)
    assert (code, out) == (0, ""), err
    assert SUMMARY.fullmatch(err), err

    imported = f"sqlite:///{tmp_path / 'imported.db'}"
    code, _, err = run(["import", "--leads", str(world["leads"]), "--events", str(world["events"]),
                        "--db", imported, "--quiet", "--no-triggers"], capsys)
    assert code == 0, err
    other = Store.open(imported)
    try:
        expected = _contents(other)
    finally:
        other.dispose()
    sent = _contents(live.store)
    assert len(sent) == 50 and sum(len(lead[-1]) for lead in sent.values()) == 669
    assert len({lead[2] for lead in sent.values()}) > 1  # several stages: not a vacuous comparison
    assert sent == expected

    code, _, err = run(["send", "--events", str(world["events"]), "-q"], capsys)
    assert code == 0, err
    assert re.fullmatch(r"669 event\(s\) in 1 batch\(es\) in \d+\.\d s \([\d,]+ events/s\): 0 accepted, "
                        r"669 duplicate\(s\); 47 lead\(s\) touched \(to http://127\.0\.0\.1:\d+\)\n", err), err
    assert _contents(live.store) == sent


def test_a_refused_batch_names_the_file_row_and_field_and_stops(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "event_id,lead_id,type,timestamp,url\n"
        "e1,L1,page_view,2026-01-01T00:00:00Z,/pricing\n"
        "e2,L1,page_view,2026-01-02T00:00:00Z,\n"
        "\n"  # a blank line: the rows of the file are still counted
        "e3,L2,page_view,2026-01-03T00:00:00Z,/a\n"
        "e4,L2,page_view,2099-01-01T00:00:00Z,/b\n"
        "e5,L3,page_view,2026-01-05T00:00:00Z,/c\n"
    )
    code, _, err = run(["send", "--events", str(path), "--url", live.url, "--key", live.key,
                        "--batch", "2", "-q"], capsys)
    assert code == 2
    assert re.fullmatch(
        rf"error: {re.escape(str(path))}: batch 2 \(rows 4-5\) refused by the service \(422 "
        r"invalid_request\): row 5, field 'events\[1\]\.timestamp': 2099-01-01T00:00:00Z is more "
        r"than 300 seconds ahead of the server clock \(\S+\); events from the future are refused; "
        r"nothing after it was sent \(2 event\(s\) were sent before it\)\n", err), err
    with live.store.read() as session:
        assert session.execute(select(events.c.event_id).order_by(events.c.id)).scalars().all() == ["e1", "e2"]


def test_bad_rows_keys_and_options_stop_before_anything_is_sent(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"lead_id": "L1", "type": "visit", "timestamp": "2026-01-01"}\n'
                    '{"lead_id": "L1", "type": "visit", "timestamp": "yesterday"}\n')
    base = ["send", "--url", live.url, "-q"]
    assert run([*base, "--events", str(path), "--key", live.key], capsys)[1:] == (
        "", f"error: {path}, row 2, column 'timestamp': timestamp: 'yesterday' is not an ISO 8601 "
        "timestamp (expected e.g. 2025-03-01T14:30:00Z)\n")
    assert run([*base, "--events", str(path)], capsys) == (
        2, "", "error: give --key KEY or set LEADSCORE_API_KEY (a key of scope ingest or admin: "
        "`leadscore keys create --name NAME --scope ingest`)\n")
    assert run([*base, "--key", live.key], capsys) == (2, "", "error: give --events FILE, --leads FILE or both\n")
    assert run(["send", "--url", "127.0.0.1:8000", "--key", live.key, "--events", str(path)], capsys) == (
        2, "", "error: --url must be http://HOST[:PORT] or https://..., got '127.0.0.1:8000'\n")
    good = tmp_path / "good.csv"
    good.write_text("lead_id,type,timestamp\nL1,visit,2026-01-01\n")
    code, _, err = run([*base, "--events", str(good), "--key", "lsk_wrong"], capsys)
    assert (code, err) == (2, f"error: {good}: batch 1 (rows 1-1) refused by the service (401 "
                              "unauthenticated - check --key or LEADSCORE_API_KEY): field 'Authorization': unknown API key; nothing after it "
                              "was sent (0 event(s) were sent before it)\n")
    with live.store.read() as session:
        assert session.execute(select(events.c.id)).first() is None


def _stored_ids(store: Store) -> list[str]:
    with store.read() as session:
        return list(session.execute(select(events.c.event_id).order_by(events.c.id)).scalars())


def test_rows_without_event_ids_are_stored_once_however_often_the_file_is_sent(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "no-ids.csv"
    rows = ["L1,page_view,2026-11-30T09:00:00Z,/pricing",
            "L1,page_view,2026-11-30T09:00:00Z,/pricing",  # the same again: a second event, not a copy
            "Lê Văn Thành 😀,page_view,2026-11-30T09:00:00Z,/pricing",
            "L1,page_view,2026-11-30T09:00:01Z,/pricing"]
    path.write_text("lead_id,type,timestamp,url\n" + "\n".join(rows) + "\n", encoding="utf-8")
    args = ["send", "--events", str(path), "--url", live.url, "--key", live.key, "-q"]
    code, _, err = run(args, capsys)
    assert code == 0 and "4 event(s) in 1 batch(es)" in err and "4 accepted, 0 duplicate(s)" in err, err
    stored = _stored_ids(live.store)
    assert len(set(stored)) == 4 and all(re.fullmatch(r"derived:[0-9a-f]{32}(:2)?", i) for i in stored), stored
    assert stored[1] == f"{stored[0]}:2"
    code, _, err = run(args, capsys)  # the same file again: nothing new
    assert code == 0 and "0 accepted, 4 duplicate(s)" in err, err
    # the ids come from what the rows say, not from where they are: the same rows as JSON
    # lines, in another order, are the same events
    lines = tmp_path / "no-ids.jsonl"
    lines.write_text("".join(
        json.dumps({"lead_id": lead, "type": kind, "timestamp": at, "url": url}, ensure_ascii=False) + "\n"
        for lead, kind, at, url in (r.split(",") for r in reversed(rows))), encoding="utf-8")
    code, _, err = run([*args[:2], str(lines), *args[3:]], capsys)
    assert code == 0 and "0 accepted, 4 duplicate(s)" in err, err
    # a row added to the file, identical to the first two: their third, one new event
    path.write_text(path.read_text(encoding="utf-8") + rows[0] + "\n", encoding="utf-8")
    code, _, err = run(args, capsys)
    assert code == 0 and "1 accepted, 4 duplicate(s)" in err, err
    assert _stored_ids(live.store) == [*stored, f"{stored[0]}:3"]


class _AnswerLost(httpx.BaseTransport):
    """Delivers every request to the real server, but loses the answer to the first one
    (as a connection cut after the server committed)."""

    def __init__(self) -> None:
        self.real, self.lost = httpx.HTTPTransport(), False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.real.handle_request(request)
        if not self.lost:
            self.lost = True
            response.read()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


def test_a_batch_sent_again_after_a_lost_answer_stores_nothing_twice(live: Live, tmp_path: Path) -> None:
    from leadscore.client.send import event_rows, scan_events

    path = tmp_path / "no-ids.csv"
    path.write_text("lead_id,type,timestamp\nL1,visit,2026-11-30T09:00:00Z\nL1,visit,2026-11-30T09:00:00Z\n"
                    "L2,visit,2026-11-30T09:00:00Z\n")
    scan = scan_events(path)
    client = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.key}"}, transport=_AnswerLost())
    sender = Sender(client, sleep=lambda _: None)
    sender.send_events(path, event_rows(path, scan.repeated), 1000, scan.count)
    assert (sender.summary.retries, sender.summary.accepted, sender.summary.duplicates) == (1, 0, 3)
    assert len(_stored_ids(live.store)) == 3  # stored by the first send, whose answer was lost; not again


def _answers(*answers: int | Exception) -> tuple[httpx.Client, list[int]]:
    """A client whose transport answers with these statuses (or raises), in turn."""
    sent: list[int] = []
    remaining = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(len(request.content))
        answer = remaining.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if answer == 503:
            return httpx.Response(503, json={"error": "unavailable", "message": "database is locked",
                                             "field": None}, headers={"Retry-After": "1"})
        return httpx.Response(answer, json={"accepted": 1, "duplicates": 0, "leads": [{"lead_id": "L1"}]})

    return httpx.Client(base_url="http://service", transport=httpx.MockTransport(handle)), sent


ROWS = [Row(1, {"lead_id": "L1", "type": "visit", "event_id": "e1"})]


def test_a_transport_error_or_503_is_sent_again_after_a_pause() -> None:
    client, sent = _answers(httpx.ConnectError("refused"), 503, 200)
    pauses: list[float] = []
    sender = Sender(client, sleep=pauses.append)
    sender.send_events(Path("events.csv"), ROWS, 10, 1)
    assert (len(sent), pauses, sender.summary.accepted, sender.summary.retries) == (3, [0.5, 1.0], 1, 2)


def test_the_last_failure_is_named_when_retries_run_out() -> None:
    client, sent = _answers(*[503] * 3)
    with pytest.raises(SendError) as caught:
        Sender(client, retries=2, sleep=lambda _: None).send_events(Path("events.csv"), ROWS, 10, 1)
    assert len(sent) == 3
    assert str(caught.value) == (
        "events.csv: batch 1 (rows 1-1): http://service gave no answer to store after 3 tries (the "
        "last: 503 database is locked); nothing after it was sent. The service stores each event_id once: running the "
        "same command again is safe")


def test_every_option_and_variable_is_documented() -> None:
    import typer.main

    from leadscore.cli import app

    docs = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    section = docs[docs.index("## Post a file of events through the API: `leadscore send`"):]
    command = typer.main.get_group(app).commands["send"]
    # typer vendors click (typer._click): its options are not click.Option, so no isinstance
    options = [p for p in command.params if p.param_type_name == "option"]
    names = [name for p in options for name in [*p.opts, *([p.envvar] if isinstance(p.envvar, str) else [])]]
    assert len(options) == 6 and {"--batch", "LEADSCORE_API_KEY", "LEADSCORE_URL"} <= set(names)
    for name in names:
        assert name in section, f"{name} is not in docs/api.md, `leadscore send`"


@pytest.mark.parametrize(("status", "headers", "content", "expected"), [
    (301, {"Location": "https://service/v1/events"}, b"", "leads.csv: lead batch 1 (rows 1-1) refused by the service "
     "(301 - redirected to https://service/v1/events: give that address as --url): Moved Permanently"),
    (413, {}, b'{"error": "payload_too_large", "message": "the body is over 16777216 bytes", "field": null}',
     "leads.csv: lead batch 1 (rows 1-1) refused by the service (413 payload_too_large - use a smaller --batch, or "
     "raise the service's LEADSCORE_MAX_BODY_BYTES): the body is over 16777216 bytes"),
    (200, {}, b"<html>hello</html>", "leads.csv: lead batch 1 (rows 1-1): the answer (200) is not JSON of the "
     "leadscore API - is --url the service's address?"),
])
def test_other_answers_are_refusals_with_a_hint(status: int, headers: dict[str, str], content: bytes,
                                                 expected: str) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, headers=headers, content=content))
    sender = Sender(httpx.Client(base_url="http://service", transport=transport))
    with pytest.raises(SendError) as caught:
        sender.send_leads(Path("leads.csv"), [Row(1, {"lead_id": "L1", "attributes": {}})], 10)
    assert str(caught.value) == expected + "; nothing after it was sent (0 lead(s) were sent before it)"


def test_a_lead_file_reads_as_import_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("lead_id,title,size\nL1,VP Sales,\n 2 ,,12\n")
    assert read_lead_rows(path) == [Row(1, {"lead_id": "L1", "attributes": {"title": "VP Sales"}}),
                                    Row(2, {"lead_id": "2", "attributes": {"size": "12"}})]
    path.write_text("lead_id,title\nL1,a\nL2,b\nL1,c\n")
    with pytest.raises(InputError) as caught:
        read_lead_rows(path)
    assert str(caught.value) == (f"{path}, row 3, column 'lead_id': lead_id 'L1' appears again (first at "
                                 "row 1); each lead must appear once")
