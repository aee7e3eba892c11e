"""Schemathesis against the app's own OpenAPI document, in-process (ASGI, no network).

Every operation is called with generated data and an admin key; a response must not be a
5xx and must conform to the document: its status code is declared, its body matches the
declared schema and its content type is the declared one. Reproducible (derandomised);
``LEADSCORE_FUZZ_EXAMPLES`` raises the number of examples per operation (default 25).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.api.conftest import MODEL

from leadscore.api import create_app
from leadscore.config import Settings
from leadscore.service.keys import create_key

EXAMPLES = int(os.environ.get("LEADSCORE_FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]


FOLDER = Path(tempfile.mkdtemp(prefix="leadscore-fuzz-"))
(FOLDER / "model.yaml").write_text(MODEL + "segments:\n  - {name: hot, min_score: 25}\n", encoding="utf-8")
APP = create_app(Settings(
    database_url=f"sqlite:///{FOLDER / 'fuzz.db'}", model_file=FOLDER / "model.yaml",
    scheduler=False, max_body_bytes=64_000, rate_limit_per_second=0,
))


schema = schemathesis.openapi.from_asgi("/openapi.json", APP)  # the document needs no store


class Fuzzed:
    def __init__(self, token: str, key_id: int) -> None:
        self.headers, self.key_id = {"Authorization": f"Bearer {token}"}, key_id


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[Fuzzed]:
    try:
        with TestClient(APP) as client:  # runs the lifespan: the store, the model, the worker
            with APP.state.ctx.store.write() as session:
                row, token = create_key(session, "fuzz", "admin", 0)
                key_id = row.id
            headers = {"Authorization": f"Bearer {token}"}
            client.post("/v1/leads", json={"lead_id": "L1", "attributes": {"title": "VP Sales"}}, headers=headers)
            client.post("/v1/events", headers=headers, json={"events": [
                {"event_id": f"e{i}", "lead_id": "L1", "type": "page_view", "properties": {"url": "/pricing"}}
                for i in range(2)]})
            yield Fuzzed(token, key_id)
    finally:
        shutil.rmtree(FOLDER, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case: Any, fuzzed: Fuzzed) -> None:
    if case.path_parameters and str(case.path_parameters.get("key_id")) == str(fuzzed.key_id):
        case.path_parameters["key_id"] = fuzzed.key_id + 1_000  # do not revoke the fuzzer's own key
    case.call_and_validate(headers=fuzzed.headers, checks=CHECKS)
