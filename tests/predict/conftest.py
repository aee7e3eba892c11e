"""Small synthetic lead worlds for the predictive tests (no shared data needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
TYPES = ("page_view", "email_open", "form_submit", "webinar_attended")


def synthetic_frames(n: int = 1200, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Leads (with a known signal), their events, and outcomes (lead_id, converted)."""
    rng = np.random.default_rng(seed)
    intent = rng.normal(size=n)
    title = rng.choice(["CEO", "Manager", "Student", "Engineer", "Analyst"], n, p=[0.15, 0.3, 0.15, 0.3, 0.1])
    size = np.round(np.exp(rng.normal(4, 1.2, n)))
    size_text = np.where(rng.random(n) < 0.1, None, size.astype(int).astype(str))
    country = rng.choice(["US", "DE", "FR", "VN", "BR", "XX1", "XX2"], n, p=[0.4, 0.2, 0.2, 0.1, 0.08, 0.01, 0.01])
    created = [AS_OF - timedelta(days=float(d)) for d in rng.uniform(0, 200, n)]
    ids = [f"L{i:05d}" for i in range(n)]
    logit = -1.2 + 1.3 * intent + np.where(title == "Student", -1.5, 0) + np.where(title == "CEO", 0.8, 0)
    converted = rng.random(n) < 1 / (1 + np.exp(-logit))
    leads = pd.DataFrame({
        "lead_id": ids,
        "email": [f"person{i}@example.com" for i in range(n)],
        "job_title": title,
        "company_size": size_text,
        "country": country,
        "notes": [f"free text note number {i} about {rng.integers(1_000_000)}" for i in range(n)],
        "created_at": [c.strftime("%Y-%m-%dT%H:%M:%SZ") for c in created],
    })
    rows = []
    event_no = 0
    for i in range(n):
        visits = rng.poisson(np.exp(0.8 * intent[i] + 0.5))
        for _ in range(visits):
            age = rng.uniform(0, 120)
            kind = rng.choice(TYPES, p=[0.6, 0.25, 0.1, 0.05])
            url = rng.choice(["/pricing", "/blog/a", "/careers", "/docs"]) if kind == "page_view" else None
            event_no += 1
            rows.append({
                "event_id": f"E{event_no}", "lead_id": ids[i], "type": kind,
                "timestamp": (AS_OF - timedelta(days=float(age))).strftime("%Y-%m-%dT%H:%M:%SZ"), "url": url,
            })
    events = pd.DataFrame(rows)
    outcomes = pd.DataFrame({"lead_id": ids, "converted": np.where(converted, "true", "false")})
    return leads, events, outcomes


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """leads.csv (with a `converted` column), leads_only.csv, events.csv, outcomes.csv."""
    directory = tmp_path_factory.mktemp("synthetic")
    leads, events, outcomes = synthetic_frames()
    leads.merge(outcomes, on="lead_id").to_csv(directory / "leads.csv", index=False)
    leads.to_csv(directory / "leads_only.csv", index=False)
    events.to_csv(directory / "events.csv", index=False)
    outcomes.to_csv(directory / "outcomes.csv", index=False)
    return directory
