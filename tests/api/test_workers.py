"""``leadscore serve --workers 2``: real worker processes on loopback, on SQLite and
PostgreSQL. A model change answered by one worker is used by the other; the background
jobs run in exactly one of them and pass to another when it is killed; a revoked key stops
working everywhere within the key cache's bound; a key's rate limit holds for the service,
not per process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadscore.service.keys import KEY_CACHE_SECONDS
from leadscore.service.models import INLINE_SWITCH_LEADS
from live import free_port

MODEL_A = """
version: 1
name: workers-a
rules:
  - {id: view, points: 10, when: {event: page_view}, repeat: each}
  - {id: recent, points: 5, when: {event: demo, within_days: 1}}
stages:
  - {name: Hot, min_score: 50}
  - {name: New, min_score: 0}
"""
MODEL_B = MODEL_A.replace("name: workers-a", "name: workers-b").replace("points: 10", "points: 3")



def _cli(*args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run([sys.executable, "-c", "from leadscore.cli import main; main()", *args],
                          capture_output=True, text=True, check=True, env=env).stdout


@contextmanager
def _serve(db: str, tmp_path: Path, **settings: str) -> Iterator[tuple[str, str]]:
    """``serve --workers 2`` on ``db`` with model A; yields (base URL, admin key)."""
    (tmp_path / "a.yaml").write_text(MODEL_A)
    env = {**os.environ, **{f"LEADSCORE_{k.upper()}": v for k, v in settings.items()}}
    key = _cli("keys", "create", "--name", "admin", "--scope", "admin", "--db", db).strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from leadscore.cli import main; main()", "serve", "--db", db,
         "--model", str(tmp_path / "a.yaml"), "--port", str(port), "--workers", "2",
         "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _eventually(lambda: len(_workers(url, tries=1)) >= 1, 30, "the server did not start")
        yield url, key
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover
            server.kill()


def _eventually(check: Any, seconds: float, message: str) -> float:
    """Poll ``check()`` until true; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if check():
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(message)


def _workers(url: str, tries: int = 40) -> dict[str, bool]:
    """Worker id -> runs the background jobs, from ``tries`` new connections to /health."""
    seen: dict[str, bool] = {}
    for _ in range(tries):
        body = httpx.get(f"{url}/health", timeout=5).json()
        seen[body["worker"]] = body["jobs"]
    return seen


@contextmanager
def _clients(url: str, key: str) -> Iterator[dict[str, httpx.Client]]:
    """One keep-alive connection to each of the two workers: worker id -> client."""
    by_worker: dict[str, httpx.Client] = {}
    spare: list[httpx.Client] = []
    try:
        for _ in range(60):
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
            worker = client.get("/health").json()["worker"]
            if worker in by_worker:
                spare.append(client)
            else:
                by_worker[worker] = client
            if len(by_worker) == 2:
                break
        assert len(by_worker) == 2, "60 connections all landed on one worker"
        yield by_worker
    finally:
        for client in [*by_worker.values(), *spare]:
            client.close()


def _holder_pid(db: str, tmp_path: Path) -> int:
    """The pid of the process holding the background jobs' lock (what an operator reads:
    the SQLite lock file, or pg_stat_activity's application_name)."""
    if db.startswith("sqlite"):
        return int((tmp_path / "w.db-jobs.lock").read_text().split()[0])
    import psycopg

    base, _, query = db.partition("?")
    schema = query.split("%3D", 1)[1]
    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        rows = conn.execute("SELECT application_name FROM pg_stat_activity "
                            "WHERE application_name LIKE %s", (f"leadscore-jobs % {schema}",)).fetchall()
    assert len(rows) == 1, rows
    return int(rows[0][0].split()[1])


def _score(response: httpx.Response) -> float:
    assert response.status_code == 200, response.text
    return float(response.json()["leads"][0]["score"])


def _ts(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


@pytest.mark.slow
def test_two_workers_share_the_model_the_jobs_and_the_keys(db_url: str, tmp_path: Path) -> None:
    db = db_url.replace("leadscore.db", "w.db")
    with _serve(db, tmp_path, rescore_interval_seconds="0.5") as (url, key), _clients(url, key) as clients:
        # exactly one worker runs the background jobs
        workers = _workers(url)
        assert len(workers) == 2 and sorted(workers.values()) == [False, True], workers
        (first, one), (second, other) = clients.items()
        leader = first if workers[first] else second

        # a model change through one worker: the other scores with it on its next request
        for i, client in enumerate(clients.values()):
            response = client.post("/v1/events", json={"event_id": f"v{i}", "lead_id": f"L{i}",
                                                       "type": "page_view"})
            assert _score(response) == 10.0
        assert one.put("/v1/model", content=MODEL_B,
                       headers={"Content-Type": "application/yaml"}).status_code == 202
        for n in range(10):  # on both workers, alternating
            for i, client in enumerate(clients.values()):
                response = client.post("/v1/events", json={"event_id": f"b{n}-{i}", "lead_id": f"L{i}",
                                                           "type": "page_view"})
                assert response.status_code == 200, response.text
                assert _score(response) == 3.0 * (n + 2), (n, i)  # model B, all views
                progress = client.get("/v1/model/rescore").json()
                assert (progress["status"], progress["model_version"]) == ("done", 2), progress

        # time-driven rescoring, once: a "demo" event, sent through the worker that does not
        # run the jobs, leaves its 1-day window in 2 s
        follower = clients[second if leader == first else first]
        demo = {"event_id": "demo", "lead_id": "T", "type": "demo", "timestamp": _ts(timedelta(days=-1, seconds=2))}
        assert _score(follower.post("/v1/events", json=demo)) == 5.0
        _eventually(lambda: other.get("/v1/leads/T").json()["score"] == 0.0, 15, "not rescored with time")
        time.sleep(1.5)  # more scheduler ticks of both workers, had they both one
        history = one.get("/v1/leads/T/history").json()["history"]
        assert [h["cause"] for h in history] == ["time", "event"], history

        # a key revoked through one worker stops working there at once, on the other
        # within the key cache's bound
        extra = one.post("/v1/keys", json={"name": "temp", "scope": "read"}).json()
        headers = {"Authorization": f"Bearer {extra['key']}"}
        for client in clients.values():  # both workers remember it
            assert client.get("/v1/leads?limit=1", headers=headers).status_code == 200
        assert other.delete(f"/v1/keys/{extra['id']}").status_code == 200
        assert other.get("/v1/leads?limit=1", headers=headers).status_code == 401
        took = _eventually(lambda: one.get("/v1/leads?limit=1", headers=headers).status_code == 401,
                           KEY_CACHE_SECONDS + 5, "the revoked key still works on the other worker")
        assert took <= KEY_CACHE_SECONDS + 2.0  # the bound, plus a busy machine's latency

        # SIGKILL of the process running the jobs: uvicorn replaces it, another takes the jobs
        holder = _holder_pid(db, tmp_path)
        os.kill(holder, signal.SIGKILL)
        took = _eventually(lambda: any(w != leader and jobs for w, jobs in _workers(url, 10).items()),
                           10, "no other worker took the background jobs")
        assert took < 8  # another worker tries every second (ELECTION_SECONDS); slack for a busy machine
        assert _holder_pid(db, tmp_path) != holder
        # ... and runs them: time-driven rescoring goes on
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as fresh:
            demo = {**demo, "event_id": "demo2", "lead_id": "T2", "timestamp": _ts(timedelta(days=-1, seconds=2))}
            assert _score(fresh.post("/v1/events", json=demo)) == 5.0
            _eventually(lambda: fresh.get("/v1/leads/T2").json()["score"] == 0.0, 15,
                        "time-driven rescoring stopped with the killed worker")
        _eventually(lambda: len(_workers(url, 20)) == 2, 60, "the killed worker was not replaced")  # start-up on a busy machine


@pytest.mark.slow
def test_a_model_change_through_either_worker_and_a_shared_rate_limit(tmp_path: Path) -> None:
    """Without the periodic scheduler, a model change over more leads than are switched
    inline, answered by the worker that does not run the jobs, is still carried out (the
    job holder finds the job) and its progress is the same on both workers; a key's rate
    limit holds across the workers."""
    db = f"sqlite:///{tmp_path / 'w.db'}"
    settings = {"scheduler": "false", "rate_limit_per_second": "2", "rate_limit_burst": "20"}
    with _serve(db, tmp_path, **settings) as (url, key), _clients(url, key) as clients:
        workers = _workers(url)
        follower = next(client for worker, client in clients.items() if not workers[worker])
        events = [{"lead_id": f"L{i}", "type": "page_view"} for i in range(INLINE_SWITCH_LEADS + 1)]
        assert follower.post("/v1/events", json={"events": events}).status_code == 200
        response = follower.put("/v1/model", content=MODEL_B, headers={"Content-Type": "application/yaml"})
        assert response.status_code == 202
        assert response.json()["rescore"]["status"] == "running"

        def done() -> bool:
            time.sleep(1.2)  # two requests: within the admin key's rate limit (2/s)
            progress = [client.get("/v1/model/rescore").json() for client in clients.values()]
            assert progress[0] == progress[1], progress
            return bool(progress[0]["status"] == "done")

        _eventually(done, 30, "the model change answered by the other worker was not carried out")
        detail = follower.get("/v1/leads/L0").json()
        assert (detail["score"], detail["model_version"]) == (3.0, 2), detail

        # a fresh key, as fast as it goes, alternating between the workers
        extra = follower.post("/v1/keys", json={"name": "fast", "scope": "read"}).json()["key"]
        headers = {"Authorization": f"Bearer {extra}"}
        started = time.monotonic()
        statuses = [client.get("/v1/leads?limit=1", headers=headers).status_code
                    for _ in range(15) for client in clients.values()]
        allowed = 20 + 2 * (int(time.monotonic() - started) + 1)  # the burst, then 2/s (per process: 30)
        assert statuses.count(200) <= allowed, statuses
        assert statuses.count(429) >= len(statuses) - allowed
