"""Browser fixtures: a live server on a fresh store and Debian's Chromium driven by Playwright.

Skips when /usr/bin/chromium is missing, except in CI (CI set), where it fails
(`make browser` installs it). Playwright never downloads a browser here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from live import serving

CHROMIUM = Path(os.environ.get("LEADSCORE_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

MODEL = """
version: 1
name: browser-test
groups: {fit: {grades: {A: 10, B: 0}}}
rules:
  - {id: vp, label: "VP title", group: fit, points: 10, when: {attribute: job_title, contains: vp}}
  - {id: pricing, label: "Pricing page", points: 15, when: {event: page_view, where: {url: {contains: pricing}}, within_days: 30}, repeat: each}
stages:
  - {name: Hot, min_score: 25}
  - {name: New, min_score: 0}
"""
NAMES = ["Nguyễn Thị Minh Khai", "Trần Hữu Huy", "Ada Lovelace", "Björn Schneider", "Lê Văn Lương",
         "Grace Hopper", "Phạm Ngọc Thạch", "Alan Turing"]
TITLES = ["VP Sales", "Engineer", "VP Marketing", "Analyst"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Chromium with Playwright (mandatory in CI)")


@dataclass
class Live:
    url: str
    admin_key: str
    read_key: str



@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from leadscore.api import create_app
    from leadscore.config import Settings

    folder = tmp_path_factory.mktemp("browser")
    (folder / "model.yaml").write_text(MODEL)
    settings = Settings(database_url=f"sqlite:///{folder / 'browser.db'}", model_file=folder / "model.yaml",
                        scheduler=False)
    app = create_app(settings)
    with serving(app) as url:
        yield _filled(app, url)


def _filled(app: Any, url: str) -> Live:
    """The browser tests' store: 40 leads with Vietnamese names, events, outcomes."""
    from leadscore.engine import iso
    from leadscore.service.keys import create_key

    with app.state.ctx.store.write() as session:
        admin = create_key(session, "admin", "admin", 0)[1]
        read = create_key(session, "reader", "read", 0)[1]
    headers = {"Authorization": f"Bearer {admin}"}
    now = time.time_ns() // 1000
    events: list[dict[str, Any]] = []
    for i in range(40):
        lead_id = f"L{i:03d}"
        attributes = {"name": NAMES[i % len(NAMES)] + ("" if i < len(NAMES) else f" {i}"),
                      "job_title": TITLES[i % len(TITLES)], "company": f"Company {i}",
                      "created_at": iso(now - (i * 3 + 1) * 86_400_000_000)}
        httpx.post(f"{url}/v1/leads", json={"lead_id": lead_id, "attributes": attributes}, headers=headers)
        events += [{"event_id": f"e{i}-{k}", "lead_id": lead_id, "type": "page_view",
                    "timestamp": iso(now - (k + 1) * 3_600_000_000), "properties": {"url": "/pricing"}}
                   for k in range(i % 3)]
    httpx.post(f"{url}/v1/events", json={"events": events}, headers=headers).raise_for_status()
    for i in range(0, 40, 4):
        httpx.post(f"{url}/v1/outcomes", json={"lead_id": f"L{i:03d}", "outcome": "opportunity",
                                               "at": iso(now - i * 86_400_000_000)}, headers=headers)
        if i % 8 == 0:
            httpx.post(f"{url}/v1/outcomes", json={"lead_id": f"L{i:03d}", "outcome": "customer",
                                                   "at": iso(now - 3_600_000_000)}, headers=headers)
    return Live(url, admin, read)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {CHROMIUM} is missing: run `make browser`")
        pytest.skip(f"{CHROMIUM} is missing (make browser installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def sign_in(page: Any, live: Live, key: str | None = None) -> None:
    page.goto(f"{live.url}/")
    page.get_by_label("API key").fill(key or live.admin_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live.url}/")
