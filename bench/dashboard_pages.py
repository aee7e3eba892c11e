"""Server time of each dashboard page over a store (goal: under 1 s with 100k leads on SQLite).

    leadscore demo-data --leads 100000 --seed 42 --out world
    leadscore import --leads world/leads.csv --events world/events.csv --db sqlite:///bench.db
    leadscore outcomes world/outcomes.csv --db sqlite:///bench.db
    python bench/dashboard_pages.py --db sqlite:///bench.db

The app runs in-process (no network); each page is fetched --repeat times after one
warm-up and the median and worst times are printed.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time

from fastapi.testclient import TestClient

from leadscore.api import create_app
from leadscore.config import Settings
from leadscore.service.keys import create_key

PAGES = [
    ("leads, best first", "/"),
    ("leads, page 1000", "/?page=1000"),
    ("leads, stage filter", "/?stage=SQL"),
    ("leads, grade filter + sort", "/?grade=fit:A&sort=updated"),
    ("leads, text search", "/?q=nguy"),
    ("leads, htmx partial", "/?stage=MQL&__partial"),
    ("lead page", "/leads/{top}"),
    ("model page", "/model"),
    ("analytics page", "/analytics"),
    ("segments page", "/segments"),
    ("GET /v1/analytics", "/v1/analytics"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="database URL of an imported store")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    app = create_app(Settings(database_url=args.db, scheduler=False))
    with TestClient(app) as client:
        with app.state.ctx.store.write() as session:
            _, token = create_key(session, "bench", "admin", time.time_ns() // 1000)
        page = client.get("/signin")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        client.post("/signin", data={"key": token, "csrf_token": csrf.group(1)})
        top = re.search(r'href="/leads/([^"]+)"', client.get("/").text)
        assert top is not None
        print(f"{'page':32} {'median ms':>10} {'worst ms':>10}  status")
        worst_all = 0.0
        for name, url in PAGES:
            url = url.replace("{top}", top.group(1))
            headers = {"Authorization": f"Bearer {token}"} if url.startswith("/v1") else {}
            if url.endswith("&__partial"):
                url = url.removesuffix("&__partial")
                headers = {"HX-Request": "true", "HX-Target": "leads"}
            status = client.get(url, headers=headers).status_code  # warm-up
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                client.get(url, headers=headers)
                times.append((time.perf_counter() - start) * 1000)
            worst_all = max(worst_all, max(times))
            print(f"{name:32} {statistics.median(times):10.0f} {max(times):10.0f}  {status}")
        print(f"slowest page: {worst_all:.0f} ms ({'OK' if worst_all < 1000 else 'OVER'} the 1 s goal)")


if __name__ == "__main__":
    main()
