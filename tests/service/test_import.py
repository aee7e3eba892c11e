"""``leadscore import`` on a demo world, on SQLite and PostgreSQL: every event of the files
is stored once, every stored score is the python engine's, and an import cut off while
loading events or while scoring, then run again, ends in the same store with no duplicate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from leadscore.demo import write_world
from leadscore.engine import Event, Lead, parse_timestamp, score_lead, to_micros
from leadscore.engine.changes import decays, next_change
from leadscore.ingest.files import read_events
from leadscore.service import importer
from leadscore.service.importer import import_files
from leadscore.service.models import ModelCache, active_model, ensure_model
from leadscore.service.scoring import ScoringPolicy
from leadscore.store.db import Store
from leadscore.store.raw import from_json
from leadscore.store.tables import events, leads

NOW = to_micros(parse_timestamp("2026-11-01T00:00:00Z"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    summary = write_world(tmp_path_factory.mktemp("world"), 250, seed=11)
    return {name: Path(path) for name, path in summary.files.items()}


def _stored(store: Store) -> dict[str, dict[str, Any]]:
    """Every lead as stored: attributes, score columns and its events in stored order."""
    with store.read() as session:
        rows = session.execute(select(
            leads.c.id, leads.c.lead_id, leads.c.attributes, leads.c.total, leads.c.score,
            leads.c.stage, leads.c.groups, leads.c.grades, leads.c.explanation,
            leads.c.next_change_us,
        )).all()
        stored_events = session.execute(
            select(events.c.lead_pk, events.c.event_id, events.c.type, events.c.ts_us,
                   events.c.properties).order_by(events.c.lead_pk, events.c.id)
        ).all()
    by_pk: dict[int, list[Event]] = {}
    out: dict[str, dict[str, Any]] = {}
    for pk, event_id, kind, ts, properties in stored_events:
        by_pk.setdefault(pk, []).append(Event("", kind, ts, from_json(properties) or {}, event_id))
    for row in rows:
        out[row.lead_id] = {**row._asdict(), "events": by_pk.get(row.id, [])}
    return out


def _check_against_the_engine(store: Store, world: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """The stored events are the file's (first copy of an event_id wins), and every stored
    score is what the reference functions give for the stored lead at NOW."""
    by_lead, _ = read_events(world["events"])
    stored = _stored(store)
    assert set(by_lead) <= set(stored)
    with store.read() as session:
        model = active_model(session, ModelCache()).model
        total_events = session.execute(select(func.count()).select_from(events)).scalar()
    assert total_events == sum(len(v) for v in by_lead.values())
    policy = ScoringPolicy()
    for lead_id, row in stored.items():
        file_events = by_lead.get(lead_id, [])
        assert [(e.event_id, e.type, e.ts, dict(e.properties)) for e in row["events"]] == [
            (e.event_id, e.type, e.ts, dict(e.properties)) for e in file_events
        ], lead_id
        lead = Lead(lead_id, row["attributes"])
        lead_events = [Event(lead_id, e.type, e.ts, e.properties, e.event_id) for e in row["events"]]
        expected = score_lead(model, lead, lead_events, NOW)
        moment = next_change(model, lead, lead_events, NOW)
        if decays(model, expected):
            tick = NOW + policy.decay_rescore_us
            moment = tick if moment is None else min(moment, tick)
        assert (row["total"], row["score"], row["stage"], row["groups"], row["grades"]) == (
            expected.total, expected.score, expected.stage, expected.rounded_groups(),
            dict(expected.grades),
        ), lead_id
        assert row["explanation"] == expected.explanation(), lead_id
        assert row["next_change_us"] == moment, lead_id
    return stored


@pytest.fixture(params=["one process", "pipeline"], autouse=True)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, store: Store) -> str:
    """Each test runs twice: events stored then leads scored in this process, and (the
    path of large imports) events stored by a forked process while this one scores."""
    if request.param == "pipeline":
        if not importer._can_fork(store):
            pytest.skip("no fork on this platform")
        monkeypatch.setattr(importer, "PIPELINE_MIN_EVENTS", 0)
        monkeypatch.setattr(importer, "PIPELINE_MIN_BYTES", 0)
        monkeypatch.setattr(importer, "PIPELINE_CHUNK", 60)
    else:
        monkeypatch.setattr(importer, "PIPELINE_MIN_EVENTS", 10**12)
        monkeypatch.setattr(importer, "PIPELINE_MIN_BYTES", 10**15)
    return str(request.param)


def _fresh(store: Store) -> None:
    with store.write() as session:
        ensure_model(session, None, NOW)


def test_import_stores_every_event_once_and_the_engines_scores(
    store: Store, world: dict[str, Path]
) -> None:
    _fresh(store)
    summary = import_files(store, world["leads"], world["events"], NOW)
    assert summary.leads_read == 250 and summary.events_stored > 2000
    stored = _check_against_the_engine(store, world)
    assert len(stored) == summary.leads_created
    # nonzero scores, stages and decaying leads: the comparison above is not vacuous
    assert len({row["stage"] for row in stored.values()}) > 1
    again = import_files(store, world["leads"], world["events"], NOW)
    assert (again.events_stored, again.leads_created) == (0, 0)
    assert again.duplicates == summary.events_stored + summary.duplicates
    _check_against_the_engine(store, world)


def test_an_event_file_the_row_reader_reads_imports_the_same(
    store: Store, world: dict[str, Path], tmp_path: Path
) -> None:
    """JSON lines (and any file with values to normalise) take the row reader's path."""
    import csv
    import json

    jsonl = tmp_path / "events.jsonl"
    with world["events"].open(newline="") as source, jsonl.open("w") as out:
        for record in csv.DictReader(source):
            out.write(json.dumps({k: v for k, v in record.items() if v != ""}) + "\n")
    _fresh(store)
    summary = import_files(store, world["leads"], jsonl, NOW)
    assert summary.events_stored > 2000
    _check_against_the_engine(store, world)


def test_a_bad_event_row_is_named_and_nothing_is_stored(
    store: Store, world: dict[str, Path], tmp_path: Path
) -> None:
    from leadscore.errors import InputError

    bad = tmp_path / "events.csv"
    lines = world["events"].read_text().splitlines()
    lines[5] = lines[5].replace("T", " at ", 1)  # an unreadable timestamp in data row 5
    bad.write_text("\n".join(lines) + "\n")
    _fresh(store)
    with pytest.raises(InputError) as caught:
        import_files(store, world["leads"], bad, NOW)
    assert (caught.value.row, caught.value.column) == (5, "timestamp")
    with store.read() as session:  # the leads of the lead file neither (they were, before 2026-12-05)
        assert session.execute(select(func.count()).select_from(leads)).scalar() == 0
        assert session.execute(select(func.count()).select_from(events)).scalar() == 0


class Cut(RuntimeError):
    pass


def test_an_import_cut_off_while_loading_events_resumes_without_duplicates(
    store: Store, world: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fresh(store)
    monkeypatch.setattr(importer, "BATCH", 700)
    real = importer._insert_event_rows
    log = tmp_path / "batches"  # a file: the batches may be written by a forked process
    log.write_text("")

    def failing(session: Any, rows: Any) -> int:
        with log.open("a") as out:
            out.write(f"{len(rows)}\n")
        if len(log.read_text().split()) == 3:
            real(session, rows)  # written, then the transaction is rolled back
            raise Cut("killed")
        return real(session, rows)

    monkeypatch.setattr(importer, "_insert_event_rows", failing)
    with pytest.raises(Cut):
        import_files(store, world["leads"], world["events"], NOW)
    with store.read() as session:
        partial = session.execute(select(func.count()).select_from(events)).scalar()
    calls = [int(n) for n in log.read_text().split()]
    assert len(calls) == 3 and partial == calls[0] + calls[1]  # two batches committed, the third rolled back
    monkeypatch.setattr(importer, "_insert_event_rows", real)
    summary = import_files(store, world["leads"], world["events"], NOW)
    assert summary.duplicates >= partial
    _check_against_the_engine(store, world)


def test_an_import_cut_off_while_scoring_resumes_with_the_engines_scores(
    store: Store, world: dict[str, Path], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    _fresh(store)
    monkeypatch.setattr(importer, "SCORE_CHUNK", 60)
    monkeypatch.setattr(importer, "PIPELINE_CHUNK", 60)
    real = importer.record_scores
    calls = []

    def failing(session: Any, changes: Any, **options: Any) -> None:
        calls.append(len(changes))
        if len(calls) == 2:
            raise Cut("killed")
        real(session, changes, **options)

    monkeypatch.setattr(importer, "record_scores", failing)
    with pytest.raises(Cut):
        import_files(store, world["leads"], world["events"], NOW)
    with store.read() as session:
        rows = session.execute(select(leads.c.id, leads.c.score.is_not(None)).order_by(leads.c.id)).all()
    chunks = [{bool(scored) for _, scored in rows[i : i + 60]} for i in range(0, len(rows), 60)]
    # each chunk is its own transaction: scored whole or not at all, and the one cut was
    # rolled back; in one process, the first was scored and the second cut (in the pipeline
    # the writer scores chunks from the last too, and its own second one is cut: which
    # process fails first depends on timing)
    assert all(len(chunk) == 1 for chunk in chunks)
    assert {False} in chunks
    if mode == "one process":
        assert chunks[0] == {True} and chunks[1] == {False}
        assert sum(scored for _, scored in rows) == 60
    monkeypatch.setattr(importer, "record_scores", real)
    import_files(store, world["leads"], world["events"], NOW)
    _check_against_the_engine(store, world)


def _lead_indexes(store: Store) -> list[tuple[str, str]]:
    with store.read() as session:
        return [tuple(row) for row in session.connection().exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'leads' ORDER BY name"
        ).all()]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL keeps its indexes
def test_leads_loaded_before_their_indexes_are_built_end_with_every_index(
    store: Store, world: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large lead file into an empty table (SQLite) is inserted with the table's secondary
    indexes dropped, then built again in the same transaction: a cut in between leaves the
    indexes (and no lead); a finished import has them all, and the engine's scores."""
    _fresh(store)
    before = _lead_indexes(store)
    assert len(before) > 5
    monkeypatch.setattr(importer, "BULK_LEADS", 1)
    real = importer.to_json
    calls = 0

    def failing(value: Any) -> str:
        nonlocal calls
        calls += 1
        if calls > 100:
            raise RuntimeError("cut")
        return real(value)

    monkeypatch.setattr(importer, "to_json", failing)
    with pytest.raises(RuntimeError, match="cut"):
        import_files(store, world["leads"], world["events"], NOW)
    monkeypatch.setattr(importer, "to_json", real)
    assert _lead_indexes(store) == before
    with store.read() as session:
        assert session.execute(select(func.count()).select_from(leads)).scalar() == 0
    import_files(store, world["leads"], world["events"], NOW)
    assert _lead_indexes(store) == before
    _check_against_the_engine(store, world)


@pytest.mark.parametrize("mode", ["pipeline"], indirect=True)  # the forked writer only
def test_a_writer_killed_while_holding_the_write_lock_fails_the_import_and_a_rerun_completes(
    store: Store, world: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The forked writer killed (as by the OOM killer) inside its write turn: the import
    fails with a message instead of waiting forever, and running it again completes."""
    import os
    import signal

    _fresh(store)
    monkeypatch.setattr(importer, "BATCH", 700)
    real = importer._insert_event_rows
    calls = 0

    def killed(session: Any, rows: list[tuple[Any, ...]]) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # runs in the forked writer
        return real(session, rows)

    monkeypatch.setattr(importer, "_insert_event_rows", killed)
    with pytest.raises(RuntimeError, match="ended"):
        import_files(store, world["leads"], world["events"], NOW)
    monkeypatch.setattr(importer, "_insert_event_rows", real)
    import_files(store, world["leads"], world["events"], NOW)
    _check_against_the_engine(store, world)


@pytest.mark.parametrize("mode", ["pipeline"], indirect=True)
def test_the_writer_scores_chunks_from_the_last_once_its_events_are_in(
    store: Store, world: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Both processes of the pipeline score: this one chunks from the first, the writer
    (its events stored) chunks from the last. Every lead is scored once, as the engine
    scores it, the summary and the progress count them all, and each process recorded a
    run of whole chunks from its end."""
    import os
    import time

    _fresh(store)
    monkeypatch.setattr(importer, "PIPELINE_CHUNK", 10)
    real = importer._record_chunk
    log = tmp_path / "chunks"
    log.write_text("")
    parent = os.getpid()

    def logged(store: Store, prepared: Any, scored: Any, *args: Any) -> int:
        if os.getpid() == parent:
            time.sleep(0.05)  # this process slow: the writer surely takes chunks
        done = real(store, prepared, scored, *args)
        with log.open("a") as out:
            out.write(f"{os.getpid()} {scored.part[0]} {scored.part[-1]} {done}\n")
        return done

    monkeypatch.setattr(importer, "_record_chunk", logged)
    seen: list[tuple[int, int | None]] = []
    summary = import_files(store, world["leads"], world["events"], NOW,
                           progress=lambda what, n, total: seen.append((n, total)) if what == "scoring" else None)
    assert summary.leads_scored == summary.leads_read == 250
    scoring = [n for n, _ in seen]
    assert scoring == sorted(scoring) and seen[-1] == (250, 250)
    chunks = [line.split() for line in log.read_text().splitlines()]
    by_process: dict[int, list[tuple[int, int]]] = {}
    for pid, first, last, done in chunks:
        by_process.setdefault(int(pid), []).append((int(first), int(last)))
        assert int(done) == 10 or int(last) == max(int(c[2]) for c in chunks)
    assert parent in by_process and len(by_process) == 2
    mine, theirs = by_process[parent], next(v for k, v in by_process.items() if k != parent)
    assert mine == sorted(mine) and theirs == sorted(theirs, reverse=True)
    assert max(last for _, last in mine) < min(first for first, _ in theirs)
    assert sum(int(done) for *_, done in chunks) == 250
    _check_against_the_engine(store, world)


@pytest.mark.parametrize("mode", ["pipeline"], indirect=True)
def test_a_writer_killed_while_scoring_fails_the_import_and_a_rerun_completes(
    store: Store, world: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The forked writer killed inside the transaction of a chunk it scores (its events
    all stored): the import fails with a message, the chunk is not half-recorded, and
    running the import again completes with the engine's scores."""
    import os
    import signal

    _fresh(store)
    monkeypatch.setattr(importer, "PIPELINE_CHUNK", 10)
    real = importer.record_scores
    parent = os.getpid()

    def killed(session: Any, changes: Any, **options: Any) -> None:
        if os.getpid() == parent:
            import time

            time.sleep(0.05)  # this process slow: the writer surely takes a chunk
        real(session, changes, **options)
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)  # its changes written, not committed

    monkeypatch.setattr(importer, "record_scores", killed)
    with pytest.raises(RuntimeError, match="ended"):
        import_files(store, world["leads"], world["events"], NOW)
    with store.read() as session:
        rows = session.execute(select(leads.c.id, leads.c.score.is_not(None)).order_by(leads.c.id)).all()
    assert not rows[-1][1]  # the writer's first chunk (the last) was rolled back
    assert all(len({bool(s) for _, s in rows[i : i + 10]}) == 1 for i in range(0, len(rows), 10))
    monkeypatch.setattr(importer, "record_scores", real)
    import_files(store, world["leads"], world["events"], NOW)
    _check_against_the_engine(store, world)


def test_rows_without_event_ids_get_the_ids_send_derives_and_load_once(
    store: Store, world: dict[str, Path], tmp_path: Path
) -> None:
    """An id-less event file imported twice (or as CSV, then JSON lines, then Parquet: the
    column path, the row reader and Arrow's table path) stores its events once, with the ids
    `leadscore send` would give them; two identical rows of a file stay two events."""
    import csv
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from leadscore.client.send import event_rows, scan_events
    from leadscore.ingest.columnar import read_event_columns, read_events_fast
    from leadscore.ingest.files import EventStats

    with world["events"].open(newline="") as source:
        records = [{k: v for k, v in r.items() if k != "event_id"} for r in csv.DictReader(source)]
    records.append(dict(records[5]))  # an identical row: a second event
    records.append({**records[0], "url": 'a "quoted" \\ path'})  # JSON escapes in a property value
    records.append({**records[0], "lead_id": 'L"q\\1'})  # ... and in a lead id
    names = list(records[0])
    plain = tmp_path / "no-ids.csv"
    with plain.open("w", newline="") as out:
        writer = csv.DictWriter(out, names)
        writer.writeheader()
        writer.writerows(records)
    lines = tmp_path / "no-ids.jsonl"
    lines.write_text("".join(json.dumps({k: v for k, v in r.items() if v != ""}) + "\n" for r in records))
    table = tmp_path / "no-ids.parquet"
    pq.write_table(pa.table({n: [r.get(n) or None for r in records] for n in names}), table)
    expected = [row.body["event_id"] for row in event_rows(plain, scan_events(plain).repeated)]
    assert len(set(expected)) == len(records) and f"{expected[5]}:2" in expected
    # each file takes the path it is meant to test, and derives the same ids there
    columns = read_event_columns(plain)
    assert columns is not None and columns.event_id.to_pylist() == expected
    fast = read_events_fast(table, None, None, None, EventStats(), derive_ids=True)
    assert fast is not None and sorted(e.event_id for v in fast.values() for e in v) == sorted(expected)
    assert read_event_columns(lines) is None

    _fresh(store)
    first = import_files(store, world["leads"], plain, NOW)
    assert (first.events_stored, first.duplicates) == (len(records), 0)
    with store.read() as session:
        stored = set(session.execute(select(events.c.event_id)).scalars())
        scores = dict(session.execute(select(leads.c.lead_id, leads.c.score)).all())
    assert stored == set(expected)
    for path in (plain, lines, table):
        again = import_files(store, None, path, NOW)
        assert (again.events_stored, again.duplicates) == (0, len(records)), path
    with store.read() as session:
        assert session.execute(select(func.count()).select_from(events)).scalar() == len(records)
        assert dict(session.execute(select(leads.c.lead_id, leads.c.score)).all()) == scores


def test_year_one_placeholders_and_cut_emoji_in_files(store: Store, tmp_path: Path) -> None:
    """A CRM's 0001-01-01 "no date" imports (twice) like any timestamp; half of a surrogate
    pair in a JSON lines file is refused naming the file, line and field, nothing stored."""
    from leadscore.errors import InputError

    _fresh(store)
    old = tmp_path / "old.csv"
    old.write_text("lead_id,type,timestamp\nNEW,page_view,0001-01-01T00:00:00Z\n")
    for stored in (1, 0):
        assert import_files(store, None, old, NOW).events_stored == stored
    with store.read() as session:
        attributes = session.execute(select(leads.c.attributes)).scalar_one()
    assert from_json(attributes)["created_at"] == "0001-01-01T00:00:00Z"
    cut = tmp_path / "cut.jsonl"
    stamp = '"timestamp": "2026-10-01T00:00:00Z"'
    cut.write_text(f'{{"lead_id": "L9", "type": "pv", {stamp}}}\n'
                   f'{{"lead_id": "L9", "type": "pv", {stamp}, "note": "x\\ud83d"}}\n')
    with pytest.raises(InputError) as raised:
        import_files(store, None, cut, NOW)
    assert (raised.value.row, raised.value.column) == (2, "note") and "surrogate" in str(raised.value)
    with store.read() as session:
        assert session.execute(select(func.count()).select_from(events)).scalar() == 1


@pytest.mark.parametrize(("row", "column"), [
    ("L{long},page_view,2026-10-01T00:00:00Z", "lead_id"),
    ("L1,{long},2026-10-01T00:00:00Z", "type"),
])
def test_ids_longer_than_the_store_holds_are_refused_before_anything_is_written(
    store: Store, tmp_path: Path, row: str, column: str
) -> None:
    """As the service refuses them (PostgreSQL's columns would refuse them mid-import), and
    `send` checks them before sending anything."""
    from leadscore.client.send import scan_events
    from leadscore.errors import InputError

    _fresh(store)
    path = tmp_path / "events.csv"
    path.write_text("lead_id,type,timestamp\nL0,page_view,2026-10-01T00:00:00Z\n" + row.format(long="x" * 300) + "\n")
    for check in (lambda: import_files(store, None, path, NOW), lambda: scan_events(path)):
        with pytest.raises(InputError) as raised:
            check()
        assert (raised.value.row, raised.value.column) == (2, column)
        assert "at most 255" in str(raised.value)
    leads_file = tmp_path / "leads.csv"
    leads_file.write_text("lead_id,name\n" + "y" * 256 + ",Lan\n")
    with pytest.raises(InputError, match="lead_id is 256 characters long"):
        import_files(store, leads_file, None, NOW)
    with store.read() as session:
        assert session.execute(select(func.count()).select_from(events)).scalar() == 0
        assert session.execute(select(func.count()).select_from(leads)).scalar() == 0


def test_a_bad_event_row_leaves_the_leads_as_they_were(store: Store, tmp_path: Path) -> None:
    """Nothing is written before both files are read and checked (the leads were stored,
    unscored, or updated without a rescore, before the event file's bad row stopped it)."""
    from leadscore.errors import InputError

    _fresh(store)
    first = tmp_path / "leads.csv"
    first.write_text("lead_id,job_title\nL1,CEO\n")
    import_files(store, first, None, NOW)
    with store.read() as session:
        before = session.execute(select(leads.c.lead_id, leads.c.attributes, leads.c.score)).all()
    changed = tmp_path / "changed.csv"
    changed.write_text("lead_id,job_title\nL1,Student\nL2,CTO\n")
    bad = tmp_path / "events.csv"
    bad.write_text("lead_id,type,timestamp\nL1,page_view,2026-10-01T00:00:00Z\nL2,page_view,yesterday\n")
    with pytest.raises(InputError) as raised:
        import_files(store, changed, bad, NOW)
    assert (raised.value.row, raised.value.column) == (2, "timestamp")
    with store.read() as session:
        assert session.execute(select(leads.c.lead_id, leads.c.attributes, leads.c.score)).all() == before
        assert session.execute(select(func.count()).select_from(events)).scalar() == 0
    # a bad lead row is still the error told first, when both files are bad
    worse = tmp_path / "worse.csv"
    worse.write_text("lead_id,job_title\nL1,CEO\n,CTO\n")
    with pytest.raises(InputError) as raised:
        import_files(store, worse, bad, NOW)
    assert raised.value.column == "lead_id"


# --- events from the future, and an event file of a header alone: refused as `send`, the
# API and `score` refuse them, before anything is written ----------------------------------

DAY_US = 86_400 * 1_000_000


def _event_file(tmp_path: Path, kind: str, stamps: list[int]) -> Path:
    """An event file of lead L1, one row a timestamp, a blank line after the first row (the
    row reader counts it: the third event is row 4 of a CSV file, line 4 of JSON lines).
    ``csv``: plain values (Arrow's column path); ``csv, accents``: a property to normalise
    (Arrow's table path); ``parquet`` (Arrow's table path, no blank row: the third event is
    row 3); ``jsonl`` (the row reader)."""
    import json

    from leadscore.engine import iso

    note = "café" if kind == "csv, accents" else "x"
    rows = [{"event_id": f"E{n}", "lead_id": "L1", "type": "page_view", "timestamp": iso(ts), "note": note}
            for n, ts in enumerate(stamps)]
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = tmp_path / "events.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
        return path
    if kind == "jsonl":
        lines = [json.dumps(row) for row in rows]
        path = tmp_path / "events.jsonl"
    else:
        lines = ["event_id,lead_id,type,timestamp,note"] + [",".join(row.values()) for row in rows]
        path = tmp_path / "events.csv"
    lines.insert(2 if kind != "jsonl" else 1, "")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _contents(store: Store) -> tuple[list[Any], list[Any]]:
    with store.read() as session:
        return (session.execute(select(leads.c.lead_id, leads.c.attributes, leads.c.score)
                                .order_by(leads.c.lead_id)).all(),
                session.execute(select(events.c.event_id, events.c.ts_us).order_by(events.c.event_id)).all())


FILE_KINDS = ["csv", "csv, accents", "parquet", "jsonl"]


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_an_event_from_the_future_is_refused_naming_its_row_and_nothing_is_written(
    store: Store, tmp_path: Path, kind: str
) -> None:
    """More than 300 s ahead of the clock (the API's limit, and its words): the import stops
    on the first such row (here after one 60 s ahead, which is within the limit), before
    the lead file or any event is written."""
    from leadscore.errors import InputError
    from leadscore.service.errors import InvalidRequest
    from leadscore.service.ingest import parse_events

    _fresh(store)
    earlier = tmp_path / "earlier.csv"  # the store holds a lead and an event before
    earlier.write_text("lead_id,type,timestamp\nL0,page_view,2026-10-01T00:00:00Z\n")
    import_files(store, None, earlier, NOW)
    before = _contents(store)
    lead_file = tmp_path / "leads.csv"
    lead_file.write_text("lead_id,job_title\nL0,CTO\nL1,CEO\n")
    late = NOW + 301 * 1_000_000
    path = _event_file(tmp_path, kind, [NOW - DAY_US, NOW + 60 * 1_000_000, late, NOW + 400 * DAY_US])
    row = 3 if kind == "parquet" else 4
    words = ("2026-11-01T00:05:01Z is more than 300 seconds ahead of the server clock "
             "(2026-11-01T00:00:00Z); events from the future are refused")
    for leads_path in (lead_file, None):
        with pytest.raises(InputError) as raised:
            import_files(store, leads_path, path, NOW)
        assert str(raised.value) == f"{path}, row {row}, column 'timestamp': {words}"
        assert _contents(store) == before
    # the API's words, for the same event
    with pytest.raises(InvalidRequest) as refused:
        parse_events([{"lead_id": "L1", "type": "page_view", "timestamp": "2026-11-01T00:05:01Z"}], NOW)
    assert str(refused.value.args[0]).endswith(f"timestamp: {words}")


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_an_event_within_the_tolerance_is_imported(store: Store, tmp_path: Path, kind: str) -> None:
    _fresh(store)
    path = _event_file(tmp_path, kind, [NOW - DAY_US, NOW + 60 * 1_000_000, NOW + 300 * 1_000_000])
    summary = import_files(store, None, path, NOW)
    assert (summary.events_stored, summary.leads_created) == (3, 1)
    assert [ts for _, ts in _contents(store)[1]] == [NOW - DAY_US, NOW + 60 * 1_000_000, NOW + 300 * 1_000_000]


def test_a_repeated_event_id_from_the_future_is_refused_on_the_column_path(
    store: Store, tmp_path: Path
) -> None:
    """Every row is checked, as the API checks every event of a request before it drops
    the duplicates; the check is one pass over Arrow's timestamp column."""
    from leadscore.errors import InputError
    from leadscore.ingest.columnar import LateRow, read_event_columns

    _fresh(store)
    path = tmp_path / "events.csv"
    path.write_text("event_id,lead_id,type,timestamp\nE1,L1,pv,2026-10-01T00:00:00Z\n\n"
                    "E1,L1,pv,2031-01-01T00:00:00Z\n")
    with pytest.raises(LateRow) as late:
        read_event_columns(path, latest_us=NOW)
    assert (late.value.index, late.value.ts_us) == (1, to_micros(parse_timestamp("2031-01-01T00:00:00Z")))
    assert read_event_columns(path) is not None  # no limit: the columns, as before
    with pytest.raises(InputError) as raised:
        import_files(store, None, path, NOW)
    assert (raised.value.row, raised.value.column) == (3, "timestamp")
    assert _contents(store) == ([], [])


@pytest.mark.parametrize("kind", ["csv", "parquet", "jsonl"])
def test_an_event_file_of_a_header_alone_is_refused_and_the_leads_are_not_written(
    store: Store, tmp_path: Path, kind: str
) -> None:
    """As `leadscore score` refuses it (the same error), not a lead file imported alone."""
    from leadscore.errors import InputError

    _fresh(store)
    lead_file = tmp_path / "leads.csv"
    lead_file.write_text("lead_id,job_title\nL1,CEO\n")
    path = _event_file(tmp_path, kind, [])
    if kind == "jsonl":
        assert path.read_text() == "\n"  # a blank line: no event
    with pytest.raises(InputError) as raised:
        import_files(store, lead_file, path, NOW)
    assert str(raised.value) == f"{path}: no events in the file (only a header?)"
    assert _contents(store) == ([], [])


def test_the_command_refuses_a_future_event_or_a_header_alone_with_exit_code_2(
    store: Store, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a user sees, against the real clock: `error: FILE, row N, column 'timestamp':
    ...` and exit code 2, nothing stored; the header alone as `leadscore score` says it."""
    import re
    import time

    import leadscore.model
    from cli_run import run_cli
    from leadscore.engine import iso

    now = time.time_ns() // 1000
    lead_file = tmp_path / "leads.csv"
    lead_file.write_text("lead_id,job_title\nL1,CEO\n")
    args = ["--leads", str(lead_file), "--db", db_url, "--quiet", "--no-triggers"]
    tomorrow = now + DAY_US
    for kind in ("csv", "jsonl"):
        path = _event_file(tmp_path, kind, [now - DAY_US, now + 60 * 1_000_000, tomorrow])
        code, out, err = run_cli(["import", *args, "--events", str(path)], capsys)
        assert (code, out) == (2, ""), err
        assert re.fullmatch(
            rf"error: {re.escape(str(path))}, row 4, column 'timestamp': {re.escape(iso(tomorrow))} is more "
            r"than 300 seconds ahead of the server clock \(\S+Z\); events from the future are refused\n", err), err
        assert _contents(store) == ([], [])
    header = _event_file(tmp_path, "csv", [])
    code, out, err = run_cli(["import", *args, "--events", str(header)], capsys)
    assert (code, out, err) == (2, "", f"error: {header}: no events in the file (only a header?)\n")
    assert _contents(store) == ([], [])
    model = Path(leadscore.model.__file__).parent / "starter.yaml"
    score = ["score", "--model", str(model), "--leads", str(lead_file), "--events", str(header)]
    assert run_cli(score, capsys)[::2] == (2, err)
    # 60 s ahead is within the limit: imported
    path = _event_file(tmp_path, "csv", [now - DAY_US, now + 60 * 1_000_000])
    code, _, err = run_cli(["import", *args, "--events", str(path)], capsys)
    assert code == 0, err
    assert len(_contents(store)[1]) == 2
    # a spreadsheet saved with ';' between values: the hint, as score gives it
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text("lead_id;type;timestamp\nL1;page_view;2026-11-01T00:00:00Z\n")
    code, out, err = run_cli(["import", *args, "--events", str(semicolons)], capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {semicolons}, row 1, column 'lead_id': missing column(s) lead_id, type, "
                          "timestamp; the header seems to be separated by semicolons"), err
    assert len(_contents(store)[1]) == 2


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("mode", ["one process"], indirect=True)
def test_the_summary_is_the_only_line_on_stderr_when_it_is_not_a_terminal(
    world: dict[str, Path], db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log or a pipe gets no progress bar, and no blank line where it was (nor does score's)."""
    from cli_run import run_cli

    code, out, err = run_cli(["import", "--leads", str(world["leads"]), "--events", str(world["events"]),
                              "--db", db_url, "--no-triggers"], capsys)
    assert (code, out) == (0, "")
    assert err.startswith("imported 250 lead(s)") and err.count("\n") == 1, repr(err)
