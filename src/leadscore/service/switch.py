"""The model switch set-based inside PostgreSQL: what :func:`leadscore.service.scoring.record_scores`
writes for every pending score, in a few statements instead of one batch per 500 leads.

A pending score (``pending_scores.change``) is the text of
:func:`~leadscore.service.scoring.change_to_json`, which the per-lead switch decodes back
into a change. :func:`pending_text` appends to it, under the key ``"row"``, the values that
``record_scores`` would compute from that change: the JSON texts of the groups, grades and
explanation (the same texts, from the same encoders, cast by PostgreSQL exactly as the
per-lead UPDATE casts them), the score, the flags ``changed`` / ``recorded`` / stage moved. The switch
(:func:`apply_set_based`) then reads those rows once (``json_to_record``) into a temporary
table and writes, in the caller's transaction:

- ``UPDATE leads ... FROM`` it (the columns of ``record_scores``' UPDATE; ``updated_us`` only
  where the score, stage or a grade changed, ``recorded_score`` only where history records it);
- ``INSERT INTO score_history ... SELECT`` and ``INSERT INTO stage_transitions ... SELECT``,
  in lead order, as the per-lead switch inserts them;
- the pending scores of those leads deleted.

Listeners are called only when they would do something: the automation listener
(:func:`leadscore.actions.triggers.on_changes`) does nothing for a model without triggers and
segments; any other listener, or that one with triggers or segments, gets the decoded changes
chunk by chunk, in lead order, after the writes (it reads the leads' attributes, events,
memberships and fired rules, none of which the switch writes). The predictive hook
(:func:`leadscore.service.predictive.apply`) changes nothing while no predictive model is
active; with one active the switch is refused (None) and the per-lead switch runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from leadscore.engine.explain import rounded_groups_json
from leadscore.service import predictive, scoring
from leadscore.service.models import ActiveModel
from leadscore.service.scoring import (
    ScoreChange,
    change_from_json,
    change_to_json,
    explanation_text,
)
from leadscore.store.raw import raw, to_json

ROW_KEY = "row"
_SWITCH = "ls_switch_rows"
# json_to_record's columns: the keys of pending_text's row and their SQL types
_ROW_COLUMNS = (
    ("total", "float8"), ("score", "float8"), ("groups", "text"), ("grades", "text"),
    ("explanation", "text"), ("next", "bigint"), ("stage", "text"), ("version", "integer"),
    ("changed", "boolean"), ("recorded", "boolean"), ("moved", "boolean"), ("cause", "text"),
    ("detail", "text"), ("old_score", "float8"), ("old_stage", "text"), ("old_grades", "text"),
)


def pending_text(change: ScoreChange, updated_us: int) -> str:
    """``change_to_json(change, updated_us)`` with the row the set-based switch writes
    (``change_from_json`` reads it as before: it ignores the extra key)."""
    text = change_to_json(change, updated_us)
    result = change.result
    row = {
        "total": result.total, "score": result.score, "groups": rounded_groups_json(result),
        "grades": to_json(result.grades), "explanation": explanation_text(result),
        "next": change.next_change_us, "stage": result.stage, "version": change.model_version_id,
        "changed": change.changed, "recorded": change.recorded, "moved": change.stage_changed,
        "cause": change.cause, "detail": change.detail[:1024] if change.detail else None,
        "old_score": change.old_score, "old_stage": change.old_stage, "old_grades": to_json(change.old_grades),
    }
    assert text.endswith("}")
    return f'{text[:-1]},"{ROW_KEY}":{to_json(row)}}}'


def listeners_needed(model: ActiveModel) -> list[Callable[..., None]]:
    """The registered score listeners that would do something with this model's changes."""
    try:
        from leadscore.actions.triggers import on_changes
    except ImportError:  # pragma: no cover - actions is part of the package
        on_changes = None  # type: ignore[assignment]
    idle = not model.model.triggers and not model.model.segments
    return [listener for listener in list(scoring._listeners) if not (listener is on_changes and idle)]


def apply_set_based(
    session: Session, model: ActiveModel, job_id: int, now_us: int, *, chunk: int = 500,
) -> list[int] | None:
    """Write every pending score of the job, stamped ``now_us``, in the caller's transaction
    (which has activated the job's version): the same rows as the per-lead switch. Returns
    the keys of the leads written, or None (nothing written) where the per-lead switch must
    run: SQLite, an active predictive model, or a pending score without its row (written by
    an older version of this code)."""
    db = raw(session)
    if not db.postgresql or predictive.active(session) is not None or db.all(
        "SELECT 1 FROM predictive_models WHERE active LIMIT 1"
    ):
        return None
    columns = ", ".join(f"{name} {kind}" for name, kind in _ROW_COLUMNS)
    db.execute(
        f"CREATE TEMPORARY TABLE {_SWITCH} ON COMMIT DROP AS SELECT p.lead_pk, r.* FROM pending_scores p "
        f"CROSS JOIN LATERAL json_to_record(CAST(p.change AS json) -> '{ROW_KEY}') AS r({columns}) "
        "WHERE p.job_id = ?", [job_id],
    ).close()
    # a pending score without its row comes out as a row of nulls (every row has a version)
    if db.all(f"SELECT 1 FROM {_SWITCH} WHERE version IS NULL LIMIT 1"):
        db.execute(f"DROP TABLE {_SWITCH}").close()
        return None
    db.execute(
        f"UPDATE leads SET total = s.total, score = s.score, \"groups\" = CAST(s.groups AS jsonb), "
        "grades = CAST(s.grades AS jsonb), explanation = CAST(s.explanation AS jsonb), scored_us = ?, "
        "next_change_us = s.next, stage = s.stage, model_version_id = s.version, "
        "updated_us = CASE WHEN s.changed THEN ? ELSE leads.updated_us END, "
        "recorded_score = CASE WHEN s.recorded THEN s.score ELSE leads.recorded_score END "
        f"FROM {_SWITCH} s WHERE leads.id = s.lead_pk",
        [now_us, now_us],
    ).close()
    db.execute(
        "INSERT INTO score_history (lead_pk, at_us, cause, detail, model_version_id, old_score, new_score, "
        "old_stage, new_stage, old_grades, new_grades) "
        "SELECT lead_pk, ?, cause, detail, version, old_score, score, old_stage, stage, "
        f"CAST(old_grades AS json), CAST(grades AS json) FROM {_SWITCH} WHERE recorded ORDER BY lead_pk",
        [now_us],
    ).close()
    db.execute(
        "INSERT INTO stage_transitions (lead_pk, at_us, from_stage, to_stage, cause) "
        f"SELECT lead_pk, ?, old_stage, stage, cause FROM {_SWITCH} WHERE moved ORDER BY lead_pk",
        [now_us],
    ).close()
    listeners = listeners_needed(model)
    if listeners:
        _call_listeners(session, listeners, job_id, now_us, chunk)
    done = [int(pk) for (pk,) in db.all(f"SELECT lead_pk FROM {_SWITCH} ORDER BY lead_pk")]
    # a lead written here loses every pending score (record_scores does the same)
    db.execute(f"DELETE FROM pending_scores WHERE lead_pk IN (SELECT lead_pk FROM {_SWITCH})").close()
    db.execute(f"DROP TABLE {_SWITCH}").close()
    return done


def _call_listeners(
    session: Session, listeners: list[Callable[..., None]], job_id: int, now_us: int, chunk: int,
) -> None:
    """The listeners with the job's changes, decoded as the per-lead switch decodes them, in
    lead order, ``chunk`` leads per call."""
    db = raw(session)
    after = -1
    while True:
        rows = db.all("SELECT lead_pk, change FROM pending_scores WHERE job_id = ? AND lead_pk > ? "
                      "ORDER BY lead_pk LIMIT ?", [job_id, after, chunk])
        if not rows:
            return
        after = rows[-1][0]
        changes: Any = [replace(change_from_json(text)[0], at_us=now_us) for _, text in rows]
        for listener in listeners:
            listener(session, changes)
