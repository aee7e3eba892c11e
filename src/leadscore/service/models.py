"""Scoring-model versions: store, activate, look up the active one.

Exactly one version is active. Changing it (:func:`activate_document`) stores the new
version and starts a rescore job; :mod:`leadscore.service.rescore` scores every lead with
it in the background and then, in one transaction, activates it and applies the scores:
readers see the old model's scores or the new one's, never a mix. A store without leads
(or without an active model) activates the new version at once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from leadscore.batch import model_inputs
from leadscore.engine.scoring import event_horizons, oldest_counted
from leadscore.errors import ModelError, ModelIssue
from leadscore.model import ScoringModel, load_model, parse_model
from leadscore.service.errors import NotFound
from leadscore.store.db import READ_OPTION
from leadscore.store.raw import raw
from leadscore.store.tables import ModelVersionRow, leads, model_versions, rescore_jobs


@dataclass(frozen=True)
class ActiveModel:
    """A parsed model version, with what it needs from the store."""

    version_id: int
    model: ScoringModel
    event_types: frozenset[str] = field(default_factory=frozenset)
    # per event type, the longest window of the conditions on it (None: events of any age)
    horizons: Mapping[str, float | None] = field(default_factory=dict)

    @classmethod
    def of(cls, version_id: int, model: ScoringModel) -> ActiveModel:
        types, _ = model_inputs(model)
        return cls(version_id, model, frozenset(types), event_horizons(model))

    def oldest_counted(self, now_us: int) -> dict[str, int | None]:
        """Per event type, the earliest timestamp that can still count at ``now_us``
        (:func:`leadscore.engine.scoring.oldest_counted`): what is read back to score."""
        return oldest_counted(self.horizons, now_us)


class ModelCache:
    """Parsed models by version id (a version never changes once stored)."""

    def __init__(self) -> None:
        self._models: dict[int, ActiveModel] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, version_id: int) -> ActiveModel:
        found = self._models.get(version_id)
        if found is not None:
            return found
        row = session.get(ModelVersionRow, version_id)
        if row is None:
            raise NotFound(f"model version {version_id} does not exist")
        active = ActiveModel.of(version_id, parse_model(row.document, fmt=row.format, stored=True))
        with self._lock:
            self._models[version_id] = active
        return active


def active_version_id(session: Session) -> int | None:
    """The id of the active model version (one indexed lookup, on the partial index)."""
    rows = raw(session).all("SELECT id FROM model_versions WHERE active")
    if len(rows) > 1:  # pragma: no cover - the unique partial index forbids it
        raise RuntimeError("more than one active model version")
    return int(rows[0][0]) if rows else None


# Writers that score take this PostgreSQL advisory lock shared; applying a model change
# takes it exclusively, so that no transaction scores with the old model after the switch.
MODEL_SWITCH_LOCK = 7_461_002


def lock_model_switch(session: Session, *, exclusive: bool) -> None:
    """Take the model-switch lock for this transaction (PostgreSQL; SQLite writers are serial)."""
    db = raw(session)
    if db.postgresql:
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        db.execute(f"SELECT {function}(?)", [MODEL_SWITCH_LOCK])


def active_model(session: Session, cache: ModelCache) -> ActiveModel:
    """The active model; a store without one is an error (``serve`` always installs one).

    In a write transaction on PostgreSQL, the model-switch lock is taken (shared) first:
    the model read here stays the active one until the transaction ends."""
    if not session.connection().get_execution_options().get(READ_OPTION):
        lock_model_switch(session, exclusive=False)
    version = active_version_id(session)
    if version is None:
        raise NotFound("no scoring model is active; start `leadscore serve` or PUT /v1/model")
    return cache.get(session, version)


def starter_document() -> str:
    """The commented starter model shipped with leadscore."""
    return resources.files("leadscore.model").joinpath("starter.yaml").read_text(encoding="utf-8")


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def detect_format(text: str, content_type: str | None = None) -> str:
    """``json`` when the body is JSON (by content type, or a leading ``{``), else ``yaml``."""
    if content_type and "json" in content_type.lower():
        return "json"
    return "json" if text.lstrip().startswith("{") else "yaml"


def validate_document(text: str, fmt: str) -> ScoringModel:
    """Parse a model document; ModelError lists every problem. A YAML document whose line
    breaks were lost on the way (``curl -d @model.yaml`` strips them: the model becomes one
    line, often one comment, which reads as empty) is refused with that said."""
    try:
        return parse_model(text, fmt=fmt)
    except ModelError as exc:
        if fmt == "yaml" and "\n" not in text.strip() and "\r" not in text.strip() and (
                "rules:" in text or "version:" in text):
            raise ModelError([ModelIssue("", (
                "the YAML body is a single line (its line breaks were lost on the way, so it does not read "
                "as the model it looks like: " + (exc.issues[0].message if exc.issues else "invalid") + "); "
                "with curl, send the file with --data-binary @model.yaml, not -d, which strips line breaks"
            ), 1)], exc.source) from None
        raise


def store_version(session: Session, text: str, fmt: str, now_us: int) -> ModelVersionRow:
    """Validate and store a model document as a new (inactive) version."""
    model = validate_document(text, fmt)
    row = ModelVersionRow(
        name=model.name, document=text, format=fmt, checksum=checksum(text),
        created_us=now_us, activated_us=None, active=False,
    )
    session.add(row)
    session.flush()
    return row


def activate(session: Session, version_id: int, now_us: int) -> None:
    """Make a version the active one (the previous one is deactivated first)."""
    session.execute(
        update(model_versions).where(model_versions.c.active.is_(True)).values(active=False)
    )
    session.execute(
        update(model_versions)
        .where(model_versions.c.id == version_id)
        .values(active=True, activated_us=now_us)
    )


def start_rescore_job(session: Session, version_id: int, now_us: int) -> int:
    """Record a job that rescores every lead not yet scored by ``version_id``."""
    total = session.execute(select(func.count()).select_from(leads)).scalar_one()
    session.execute(
        update(rescore_jobs).where(rescore_jobs.c.status == "running")
        .values(status="superseded", finished_us=now_us)
    )
    raw(session).execute("DELETE FROM pending_scores")  # what a superseded job prepared
    result = session.execute(
        rescore_jobs.insert().values(
            model_version_id=version_id, status="running" if total else "done",
            total=total, done=0, started_us=now_us, finished_us=None if total else now_us,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[attr-defined]


def active_if_same(session: Session, text: str, fmt: str) -> ModelVersionRow | None:
    """The active version when ``text`` is its very document (byte for byte, same format)
    and no model change is under way: activating it again would change nothing, so a
    caller answers with it instead of storing a new version and rescoring every lead. The
    document is validated as a new one would be (one refused now is refused)."""
    from leadscore.service.rescore import latest_job

    active = active_version_id(session)
    row = session.get(ModelVersionRow, active) if active is not None else None
    if row is None or row.checksum != checksum(text) or row.format != fmt:
        return None
    job = latest_job(session)
    if job is not None and job.status == "running":
        return None
    validate_document(text, fmt)
    return row


# a model change over at most this many leads is applied in the caller's transaction
INLINE_SWITCH_LEADS = 500


def activate_document(
    session: Session, text: str, fmt: str, now_us: int, *, policy: Any = None,
    inline_limit: int = INLINE_SWITCH_LEADS,
) -> ModelVersionRow:
    """Validate, store as a new version and start a rescore job for it.

    The version becomes active when every lead has been scored with it: in this
    transaction when the store holds at most ``inline_limit`` leads (or none, or no model
    is active yet), else in the background (:func:`leadscore.service.rescore.rescore_stale`).
    ``policy`` is the :class:`~leadscore.service.scoring.ScoringPolicy` of the inline case."""
    row = store_version(session, text, fmt, now_us)
    job_id = start_rescore_job(session, row.id, now_us)
    from leadscore.service import audit  # harden (#8): every model change is audited

    audit.record(session, "model_activated", now_us, subject=f"model version {row.id}",
                 detail={"name": row.name, "checksum": row.checksum})
    count = session.execute(
        select(func.count()).select_from(select(leads.c.id).limit(inline_limit + 1).subquery())
    ).scalar_one()
    if count == 0 or active_version_id(session) is None:
        activate(session, row.id, now_us)
    elif count <= inline_limit:
        from leadscore.service.rescore import apply_pending  # rescore builds on this module

        job = session.execute(select(rescore_jobs).where(rescore_jobs.c.id == job_id)).one()
        apply_pending(session, ModelCache(), job, now_us, **({"policy": policy} if policy else {}))
    else:
        return row
    row.active = True
    row.activated_us = now_us
    return row


def ensure_model(session: Session, model_file: Path | None, now_us: int) -> tuple[int, bool]:
    """At start-up: install ``model_file`` when it differs from the active version, or the
    starter model when there is none. Returns ``(active version id, changed)``."""
    if model_file is not None:
        load_model(model_file)  # refuses an unreadable or invalid file, naming it
        text = Path(model_file).read_bytes().decode("utf-8-sig")
        fmt = "json" if str(model_file).lower().endswith(".json") else "yaml"
    else:
        text, fmt = starter_document(), "yaml"
    current = active_version_id(session)
    if current is not None:
        row = session.get(ModelVersionRow, current)
        if model_file is None or (row is not None and row.checksum == checksum(text)):
            return current, False
    row = activate_document(session, text, fmt, now_us)
    return row.id, True


def version_public(row: ModelVersionRow | Any, *, with_document: bool = False) -> dict[str, Any]:
    """A version as the API shows it."""
    from leadscore.engine.timestamps import iso

    out: dict[str, Any] = {
        "version": row.id,
        "name": row.name,
        "active": bool(row.active),
        "format": row.format,
        "checksum": row.checksum,
        "created_at": iso(row.created_us),
        "activated_at": iso(row.activated_us) if row.activated_us is not None else None,
    }
    if with_document:
        out["document"] = row.document
        model = parse_model(row.document, fmt=row.format, stored=True)
        out["model"] = json.loads(model.model_dump_json(by_alias=True, exclude_none=True))
    return out


def list_versions(session: Session) -> list[ModelVersionRow]:
    return list(session.scalars(select(ModelVersionRow).order_by(ModelVersionRow.id.desc())))


def get_active_row(session: Session) -> ModelVersionRow:
    version = active_version_id(session)
    if version is None:
        raise NotFound("no scoring model is active")
    row = session.get(ModelVersionRow, version)
    assert row is not None
    return row
