"""Server time of each dashboard page over a store (goal: under 1 s with 100k leads on SQLite).

    leadscore demo-data --leads 100000 --seed 42 --out world
    leadscore import --leads world/leads.csv --events world/events.csv --db sqlite:///bench.db
    leadscore outcomes world/outcomes.csv --db sqlite:///bench.db
    python bench/dashboard_pages.py --db sqlite:///bench.db

The segment pages are timed when the store has segment members (add segments on the
Segments page, or to the model, then `leadscore rescore`).

The app runs in-process (no network). For each page, "cold" is its first fetch by a new
app (empty in-process caches: the analytics summary, the model), "warm" the median and
worst of --repeat fetches after it. Every time is also given as a ratio to a baseline
query timed in the same run (one full read of the leads table), so runs on machines of
different speed or load can be compared.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from leadscore.analytics.browse import encode_cursor
from leadscore.api import create_app
from leadscore.config import Settings
from leadscore.service.keys import create_key
from leadscore.store.tables import leads
from leadscore.store.tables_automation import segment_members

PAGES = [
    ("leads, best first", "/"),
    ("leads, deep page (rank 50,001)", "/?after={middle}&start=50001"),
    ("leads, last page", "/?last=1"),
    ("leads, stage filter", "/?stage=SQL"),
    ("leads, grade filter + sort", "/?grade=fit:A&sort=updated"),
    ("leads, text search", "/?q=nguy"),
    ("leads, text search, no match", "/?q=zzqqxx"),
    ("leads, newest first, last page", "/?sort=created&last=1"),
    ("leads, htmx partial", "/?stage=MQL&__partial"),
    ("lead page", "/leads/{top}"),
    ("model page", "/model"),
    ("analytics page", "/analytics"),
    ("segments page", "/segments"),
    ("segment page (largest)", "/segments/{segment}"),
    ("segment members, page 100", "/segments/{segment}?after={member_after}&start=4951"),
    ("segment edit form", "/segments/{segment}/edit"),
    ("GET /v1/analytics", "/v1/analytics"),
    ("GET /v1/analytics/conversion", "/v1/analytics/conversion"),
    ("GET /v1/analytics/velocity", "/v1/analytics/velocity"),
    ("GET /v1/analytics/sales-cycle", "/v1/analytics/sales-cycle"),
    ("GET /v1/analytics/stages", "/v1/analytics/stages"),
]
BASELINE = "SELECT count(*), sum(length(lead_id)), max(updated_us) FROM leads"


def _signed_in(db: str, token: str) -> tuple[TestClient, Any]:
    app = create_app(Settings(database_url=db, scheduler=False))
    client = TestClient(app)
    client.__enter__()
    page = client.get("/signin")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    assert client.post("/signin", data={"key": token, "csrf_token": csrf.group(1)},
                       follow_redirects=False).status_code == 303
    return client, app


def _timed(client: TestClient, url: str, headers: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    status = client.get(url, headers=headers).status_code
    return (time.perf_counter() - start) * 1000, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="database URL of an imported store")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    setup = create_app(Settings(database_url=args.db, scheduler=False))
    with TestClient(setup):
        with setup.state.ctx.store.write() as session:
            _, token = create_key(session, "bench", "admin", time.time_ns() // 1000)
        with setup.state.ctx.store.read() as session:
            row = session.execute(
                select(leads.c.score, leads.c.id).where(leads.c.score.is_not(None))
                .order_by(leads.c.score.desc(), leads.c.id.desc()).limit(1).offset(50_000)
            ).one_or_none()
            top = session.execute(select(leads.c.lead_id).order_by(leads.c.score.desc()).limit(1)).scalar_one()
            baselines = []
            for _ in range(max(3, args.repeat)):
                start = time.perf_counter()
                session.execute(text(BASELINE)).one()
                baselines.append((time.perf_counter() - start) * 1000)
            n_leads = session.execute(select(func.count()).select_from(leads)).scalar_one()
            largest = session.execute(
                select(segment_members.c.segment, func.count()).where(segment_members.c.left_us.is_(None))
                .group_by(segment_members.c.segment).order_by(func.count().desc()).limit(1)
            ).first()
            segment, member_after = (largest[0], 0) if largest else (None, 0)
            if segment is not None:
                member_after = session.execute(
                    select(segment_members.c.id).where(segment_members.c.segment == segment,
                                                       segment_members.c.left_us.is_(None))
                    .order_by(segment_members.c.id).limit(1).offset(4949)
                ).scalar_one_or_none() or 0
    base = statistics.median(baselines)
    middle = encode_cursor([row.score, row.id]) if row is not None else ""
    print(f"{n_leads:,} leads; baseline query (full read of the leads table): {base:.1f} ms")
    print(f"{'page':34} {'cold ms':>8} {'warm ms':>8} {'worst':>7} {'cold/base':>9} {'warm/base':>9}  status")
    worst_all = 0.0
    for name, url in PAGES:
        if "{segment}" in url and segment is None:
            print(f"{name:34} (no segment in this store)")
            continue
        url = (url.replace("{top}", top).replace("{middle}", middle).replace("{segment}", str(segment))
               .replace("{member_after}", str(member_after)))
        headers = {"Authorization": f"Bearer {token}"} if url.startswith("/v1") else {}
        if url.endswith("&__partial"):
            url = url.removesuffix("&__partial")
            headers = {"HX-Request": "true", "HX-Target": "leads"}
        client, app = _signed_in(args.db, token)  # a new app: its caches are empty
        try:
            cold, status = _timed(client, url, headers)
            warm = [_timed(client, url, headers)[0] for _ in range(args.repeat)]
        finally:
            client.__exit__(None, None, None)
        worst = max(cold, *warm)
        worst_all = max(worst_all, worst)
        median = statistics.median(warm)
        print(f"{name:34} {cold:8.0f} {median:8.0f} {max(warm):7.0f} {cold / base:9.1f} {median / base:9.1f}  {status}")
    print(f"slowest fetch: {worst_all:.0f} ms ({'OK' if worst_all < 1000 else 'OVER'} the 1 s goal)")


if __name__ == "__main__":
    main()
