"""The dashboard in a real browser: sign in, find a lead, see its breakdown, refuse an invalid
model, activate a valid one and see the stage distribution change."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from browser.conftest import MODEL, Live, sign_in

pytestmark = pytest.mark.browser

INVALID = "version: 1\nname: broken\nrules:\n  - {id: x, points: 0, when: {attribute: a, equals: 1}}\n"
GENEROUS = """version: 1
name: generous
groups: {fit: {grades: {A: 10, B: 0}}}
rules:
  - {id: vp, label: "VP title", group: fit, points: 30, when: {attribute: job_title, contains: vp}}
stages:
  - {name: Hot, min_score: 25}
  - {name: New, min_score: 0}
"""


@pytest.fixture
def page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 422" not in m.text
            else None)  # a refused model is answered with 422, as it should
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert errors == [], errors  # no script error, no CSP violation


def test_sign_in_find_a_lead_and_see_the_breakdown(page: Any, live: Live) -> None:
    sign_in(page, live, live.read_key)
    assert page.locator("#leads-count").inner_text() == "40 leads"
    page.get_by_label("Search (id, name, e-mail, company)").fill("Nguyễn")
    expect(page.locator("#leads-count")).to_contain_text("on this page")
    assert "Nguyễn Thị Minh Khai" in page.locator("table.leads").inner_text()
    assert "q=" in page.url  # the filter is in the address (htmx push)
    page.get_by_role("link", name="Nguyễn Thị Minh Khai").first.click()
    page.wait_for_selector("#h-breakdown")
    assert "VP title" in page.locator("#breakdown").inner_text()
    page.wait_for_selector("canvas[data-chart='chart-rules'][data-drawn='1']")
    assert page.locator("canvas[data-chart='chart-rules']").bounding_box()["height"] > 100
    assert "No predictive score" in page.locator("#h-predictive + *").inner_text()


def test_keyboard_reaches_the_search_box(page: Any, live: Live) -> None:
    sign_in(page, live, live.read_key)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "q":
            break
    assert page.evaluate("document.activeElement.id") == "q"


def test_invalid_model_shows_errors_and_a_valid_one_changes_the_distribution(page: Any, live: Live,
                                                                             tmp_path: Path) -> None:
    sign_in(page, live)
    page.goto(f"{live.url}/model")
    bad = tmp_path / "broken.yaml"
    bad.write_text(INVALID)
    page.get_by_label("…or upload a file (.yaml, .yml, .json)").set_input_files(str(bad))
    page.get_by_role("button", name="Validate and activate").click()
    page.wait_for_selector("#model-errors")
    assert "points must not be 0" in page.locator("#model-errors").inner_text()
    assert "Active: browser-test" in page.locator("#h-active").inner_text()

    page.goto(f"{live.url}/model")
    page.get_by_label("Model document (YAML or JSON)").fill(GENEROUS)
    page.get_by_role("button", name="Preview").click()
    page.wait_for_selector("#preview-stages")
    rows = {r.split("\t")[0]: r.split("\t")[1:] for r in page.locator("#preview-stages tbody tr").all_inner_texts()}
    assert rows["Hot"] != rows["Hot"][::-1] or rows["Hot"][0] != rows["Hot"][1]
    before = page.locator("#preview-stages tbody").inner_text()
    page.get_by_role("button", name="Validate and activate").click()
    page.wait_for_selector("text=is now active")
    assert "Active: generous" in page.locator("#h-active").inner_text()
    expect(page.locator("#rescore .notice")).to_have_count(0, timeout=20_000)
    page.goto(f"{live.url}/analytics?fresh=1")
    stages = page.locator("#conversion-by-stage").inner_text()
    hot = next(line for line in stages.splitlines() if line.startswith("Hot"))
    assert hot.split("\t")[1] == "20", (before, stages)  # the 20 VP leads, and only them


@pytest.mark.skipif(not os.environ.get("LEADSCORE_SCREENSHOTS"), reason="set LEADSCORE_SCREENSHOTS=docs/screenshots")
def test_screenshots(browser: Any, live: Live) -> None:
    """Screenshots of the main pages at 1280 and 390 px (docs/screenshots)."""
    folder = Path(os.environ["LEADSCORE_SCREENSHOTS"])
    folder.mkdir(parents=True, exist_ok=True)
    with_segments = MODEL + (  # the segments page needs segments in the active model (<= 500 leads: rescored at once)
        "segments:\n  - {name: hot-vps, description: VPs on the pricing page, min_score: 25, rule_fired: vp}\n"
        "  - {name: engaged, description: Any activity in 14 days, active_within_days: 14}\n")
    response = httpx.put(f"{live.url}/v1/model", content=with_segments,
                         headers={"Authorization": f"Bearer {live.admin_key}", "Content-Type": "application/yaml"})
    assert response.status_code in (200, 202), response.text
    for width, height, suffix in ((1280, 900, ""), (390, 844, "-390")):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        sign_in(page, live)
        for name, path in (("leads", "/"), ("lead", "/leads/L000"), ("model", "/model"),
                           ("segments", "/segments"), ("analytics", "/analytics?fresh=1")):
            page.goto(f"{live.url}{path}")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(folder / f"{name}{suffix}.png"), full_page=suffix == "")
        context.close()
