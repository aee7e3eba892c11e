"""A trained predictive model inside the service: activation, per-lead predictions, score policy.

An admin activates a model directory written by ``leadscore train --out DIR``
(``leadscore predictive activate DIR`` or ``PUT /v1/predictive``). Its files are stored in
the store (``predictive_models``), so every process sharing the store uses the same
model; at most one is active.

While one is active, every time a lead is scored (an event, an attribute change, time
rescoring, a rule-model change, an import) :func:`apply` - called once from
:func:`leadscore.service.scoring.record_scores`, inside the same transaction - predicts
the lead with the pandas-free per-row path (:meth:`Predictor.predict_lead`, ~1 ms),
stores ``probability``, ``score`` (100 x probability) and the top reasons in
``lead_predictions``, and applies the **final score policy** to the lead's ``score``:

* ``rules`` (default): ``score`` is the rule score; the prediction is shown beside it;
* ``predictive``: ``score`` = the predictive score (100 x probability);
* ``blend``: ``score`` = ``weight`` x predictive score + (1 - ``weight``) x rule score.

**Stages.** With ``rules`` and ``blend`` stages stay on the rule model's thresholds
applied to the *rule* score (a blend never moves a lead across a stage the sales team
knows). With ``predictive``, stages come from the predictive score and the model's
cut-offs: ``--stages SQL=40,MQL=15`` at activation, else the model directory's
``stages.json`` (written by ``leadscore thresholds --model DIR ... --save-stages``), else
the rule model's own stage thresholds; a lead below every cut-off gets the rule model's
lowest stage. Grades always stay on the rule groups.

A rule-model change (cause ``model``) reuses each lead's stored prediction of the active
predictive model instead of predicting again (the prediction does not depend on the rule
model), so the atomic model switch stays short.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from leadscore.engine import Lead
from leadscore.engine.scoring import round_score
from leadscore.engine.timestamps import from_micros, iso
from leadscore.errors import InputError
from leadscore.ingest.normalise import unstorable
from leadscore.service import audit
from leadscore.service.errors import InvalidRequest, NotFound
from leadscore.store.raw import from_json, marks, raw, to_json
from leadscore.store.tables_predictive import (
    POLICIES,
    PredictiveModelRow,
    predictive_models,
)

if TYPE_CHECKING:  # pragma: no cover
    from leadscore.predict.predictor import Predictor
    from leadscore.service.scoring import ScoreChange
    from leadscore.store.db import Store

log = logging.getLogger("leadscore.predictive")

MAX_MODEL_BYTES = 200 * 1024 * 1024  # a stored model directory (zip) is at most this large
STAGES_FILE = "stages.json"
ACTIVE_TTL = 1.0  # seconds a process trusts its view of which model is active
_CHUNK = 900


@dataclass(frozen=True)
class ActivePredictive:
    """The active predictive model of the store, loaded."""

    id: int
    name: str
    policy: str
    weight: float
    stages: tuple[tuple[str, float], ...] | None
    predictor: Predictor


# ---- packing a model directory --------------------------------------------------------


def pack_directory(directory: str | Path) -> bytes:
    """The files of a model directory as a zip (top level only: that is all a model holds)."""
    directory = Path(directory)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(directory.iterdir()):
            if path.is_file():
                archive.write(path, path.name)
    return buffer.getvalue()


def _unpack(files: bytes, target: Path) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(files)) as archive:
            for info in archive.infolist():
                name = Path(info.filename).name  # no directories, no ../ escapes
                if info.is_dir() or not name or name != info.filename:
                    continue
                (target / name).write_bytes(archive.read(info))
    except zipfile.BadZipFile:
        raise InvalidRequest("the model is not a zip of a model directory (made by `leadscore train --out`)",
                             "body") from None


def _load_predictor(files: bytes) -> Predictor:
    from leadscore.predict.errors import ModelDirError
    from leadscore.predict.predictor import Predictor

    with tempfile.TemporaryDirectory(prefix="leadscore-model-") as folder:
        _unpack(files, Path(folder))
        try:
            return Predictor.load(folder)
        except ModelDirError as exc:
            message = str(exc).replace(folder, "the model")
            raise InvalidRequest(message, "body") from None


def _stages_of_files(files: bytes) -> dict[str, float] | None:
    with zipfile.ZipFile(io.BytesIO(files)) as archive:
        if STAGES_FILE not in archive.namelist():
            return None
        try:
            found = json.loads(archive.read(STAGES_FILE).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidRequest(f"{STAGES_FILE} of the model is not JSON", STAGES_FILE) from None
    return _check_stages(found, STAGES_FILE)


def parse_stages(text: str) -> dict[str, float]:
    """``"SQL=40,MQL=15"`` as ``{"SQL": 40.0, "MQL": 15.0}``."""
    out: dict[str, Any] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise InvalidRequest(f"stages: {part.strip()!r} is not NAME=MIN_SCORE (e.g. SQL=40,MQL=15)", "stages")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InvalidRequest(f"stages: {value.strip()!r} of {name.strip()} is not a number", "stages") from None
    return _check_stages(out, "stages")


def _check_stages(found: Any, where: str) -> dict[str, float]:
    if not isinstance(found, dict) or not found:
        raise InvalidRequest(f"{where}: expected stage names with their minimum scores, e.g. SQL=40,MQL=15", where)
    _refuse_unstorable(found, where, finite=False)  # a number out of 0-100 (NaN too) is refused below
    out: dict[str, float] = {}
    for name, value in found.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise InvalidRequest(f"{where}: a stage name must be non-empty text (at most 255 characters)", where)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= float(value) <= 100:
            raise InvalidRequest(f"{where}: {name} must have a minimum score between 0 and 100 (100 x probability)",
                                 where)
        if out and float(value) >= min(out.values()):  # as a rule model's stages (model/checks.py)
            before = next(reversed(out))
            raise InvalidRequest(
                f"{where}: stages must be listed by falling min_score (e.g. SQL=40,MQL=15): {name.strip()} "
                f"{float(value):g} is not below {out[before]:g} of {before}", where)
        out[name.strip()] = float(value)
    return out


def _refuse_unstorable(document: Any, where: str, *, finite: bool = True) -> None:
    """InvalidRequest naming the place of the first text of ``document`` (JSON the model
    directory holds: stored in a JSON column) with a NUL character, name with one, or (with
    ``finite``) number that is not finite: PostgreSQL stores none of them (it answered
    500), SQLite did, so they are refused on both (:func:`leadscore.ingest.normalise.unstorable`)."""
    found = next(unstorable(document, where, finite=finite), None)
    if found is not None:
        raise InvalidRequest(f"{found.column}: {found.detail}", found.column)


# ---- activation ------------------------------------------------------------------------

_lock = threading.Lock()
_predictors: dict[tuple[int, str], Predictor] = {}  # (model id, checksum) -> the loaded model
# per database (a process may hold several stores, e.g. tests): which model is active, looked up when
_active: dict[str, tuple[float, ActivePredictive | None]] = {}
RETRY_LOAD_AFTER = 300.0  # seconds a process waits before trying again to load a model it could not load
_failed: dict[tuple[int, str], float] = {}  # (model id, checksum) -> when (monotonic) to try loading again
_unusable: set[str] = set()  # databases whose active model this process cannot load: leads get rule scores


def _database(session: Session) -> str:
    """The key of the session's database in this process's caches (model ids are per database)."""
    bind = session.get_bind()
    return str(bind.engine.url)


def forget_cached() -> None:
    """Forget which model is active (this process looks again at its next use)."""
    with _lock:
        _active.clear()


def _forget_after_commit(session: Session) -> None:
    """Forget which model is active when ``session`` commits: a thread that looked it up
    before (in the transaction's window) must not keep the old state for ACTIVE_TTL."""
    event.listen(session, "after_commit", lambda _session: forget_cached(), once=True)


@dataclass(frozen=True)
class PreparedModel:
    """A model directory's files (a zip), loaded and validated: what :func:`activate` stores.
    Made by :func:`prepare` *before* the write transaction (unzipping and loading a model of
    up to 200 MB takes a while; on SQLite it would block every write meanwhile)."""

    files: bytes
    predictor: Predictor
    stages: dict[str, float] | None  # the model directory's stages.json


def check_policy(policy: str, weight: float | None) -> float:
    """The policy's weight (its default when None); refuses a bad policy or weight."""
    if policy not in POLICIES:
        raise InvalidRequest(f"policy {policy!r}; choose one of {', '.join(POLICIES)}", "policy")
    if weight is None:
        weight = 0.5 if policy == "blend" else 1.0 if policy == "predictive" else 0.0
    if policy != "blend" and weight != (1.0 if policy == "predictive" else 0.0):
        raise InvalidRequest(f"weight is for policy blend only (policy is {policy})", "weight")
    if not 0 <= weight <= 1:
        raise InvalidRequest(f"weight {weight:g} must be between 0 and 1 (the predictive score's share)", "weight")
    return float(weight)


def prepare(files: bytes) -> PreparedModel:
    """Load and validate a model directory's files (a zip) outside any transaction."""
    if len(files) > MAX_MODEL_BYTES:
        raise InvalidRequest(f"the model is {len(files) // 1_048_576} MiB; at most {MAX_MODEL_BYTES // 1_048_576} MiB",
                             "body")
    predictor = _load_predictor(files)
    _refuse_unstorable(predictor.manifest, "manifest.json")
    try:
        _probe(predictor)
    except Exception as exc:  # noqa: BLE001 - refuse a model this process cannot run
        raise InvalidRequest(f"the model cannot predict here ({type(exc).__name__}); retrain it with this "
                             "leadscore version", "body") from None
    return PreparedModel(files, predictor, _stages_of_files(files))


def prepare_directory(directory: str | Path) -> PreparedModel:
    """:func:`prepare` a model directory on disk."""
    path = Path(directory)
    if not path.is_dir():
        raise InvalidRequest(f"{path}: not a directory; give the folder written by `leadscore train --out`", "directory")
    return prepare(pack_directory(path))


def activate(
    session: Session, model: bytes | PreparedModel, *, name: str, now_us: int, policy: str = "rules",
    weight: float | None = None, stages: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Store a model directory (prepared by :func:`prepare`, or its zip's bytes) and make it the active
    predictive model."""
    weight = check_policy(policy, weight)
    prepared = model if isinstance(model, PreparedModel) else prepare(model)
    files, predictor = prepared.files, prepared.predictor
    chosen = stages if stages is not None else prepared.stages
    session.execute(update(predictive_models).where(predictive_models.c.active).values(active=False))
    session.flush()
    row = PredictiveModelRow(
        name=name[:255], files=files, checksum=hashlib.sha256(files).hexdigest(), manifest=predictor.manifest,
        policy=policy, weight=weight,
        stages=sorted(([k, v] for k, v in chosen.items()), key=lambda s: -s[1]) if chosen else None,
        created_us=now_us, activated_us=now_us, active=True,
    )
    session.add(row)
    session.flush()
    raw(session).execute("DELETE FROM lead_predictions WHERE model_id <> ?", [row.id])
    audit.record(session, "predictive_activated", now_us, subject=f"predictive model {row.id}",
                 detail={"name": row.name, "checksum": row.checksum, "algorithm": predictor.manifest.get("algorithm"),
                         "policy": policy, "weight": weight, "stages": row.stages})
    with _lock:
        _predictors[(row.id, row.checksum)] = predictor
    forget_cached()  # this transaction's own scoring sees the new model
    _forget_after_commit(session)  # and every thread of the process once it is committed
    return status(session)


def activate_directory(session: Session, directory: str | Path, *, now_us: int, **options: Any) -> dict[str, Any]:
    """:func:`activate` a model directory on disk (better: :func:`prepare_directory` it first,
    outside the transaction, and :func:`activate` the result)."""
    path = Path(directory)
    return activate(session, prepare_directory(path), name=options.pop("name", None) or path.resolve().name,
                    now_us=now_us, **options)


def deactivate(session: Session, now_us: int | None = None) -> bool:
    """No predictive model any more (scores are rule scores again after :func:`rescore_all`)."""
    before = session.execute(select(predictive_models.c.id, predictive_models.c.name, predictive_models.c.policy,
                                    predictive_models.c.weight).where(predictive_models.c.active)).first()
    if before is not None:
        audit.record(session, "predictive_deactivated", now_us if now_us is not None else time.time_ns() // 1000,
                     subject=f"predictive model {before.id}",
                     detail={"name": before.name, "policy": before.policy, "weight": before.weight})
    found = session.execute(update(predictive_models).where(predictive_models.c.active).values(active=False))
    raw(session).execute("DELETE FROM lead_predictions")
    forget_cached()
    _forget_after_commit(session)
    return bool(getattr(found, "rowcount", 0))


def active(session: Session) -> ActivePredictive | None:
    """The active predictive model (looked up at most once a second per process)."""
    now = time.monotonic()
    database = _database(session)
    cached = _active.get(database)
    if cached is not None and now - cached[0] < ACTIVE_TTL:
        return cached[1]
    rows = raw(session).all("SELECT id, name, policy, weight, stages, checksum FROM predictive_models WHERE active")
    found: ActivePredictive | None = None
    unusable = False
    if rows:
        model_id, name, policy, weight, stages, checksum = rows[0]
        key = (int(model_id), str(checksum))
        predictor = _predictors.get(key) or _load_stored(session, key, now)
        if predictor is None:
            unusable = True
        else:
            parsed = from_json(stages)
            found = ActivePredictive(int(model_id), name, policy, float(weight),
                                     tuple((str(n), float(v)) for n, v in parsed) if parsed else None, predictor)
    with _lock:
        _active[database] = (now, found)
        if unusable:
            _unusable.add(database)
        else:
            _unusable.discard(database)
    return found


def _load_stored(session: Session, key: tuple[int, str], now: float) -> Predictor | None:
    """The stored model loaded, or None when this process cannot load it (a missing library,
    a version mismatch, a damaged blob): that is logged once, retried after
    :data:`RETRY_LOAD_AFTER` seconds, and leads keep their rule scores meanwhile - scoring
    never fails because of the predictive model."""
    retry_at = _failed.get(key)
    if retry_at is not None and now < retry_at:
        return None
    try:
        blob = raw(session).all("SELECT files FROM predictive_models WHERE id = ?", [key[0]])[0][0]
        predictor = _load_predictor(bytes(blob))
        _probe(predictor)
    except Exception as exc:  # noqa: BLE001 - whatever it is, scoring goes on with rule scores
        with _lock:
            first = key not in _failed
            _failed[key] = now + RETRY_LOAD_AFTER
        if first:  # the model's files hold no lead data; the reason is the error's type (and our own message)
            reason = exc.message if isinstance(exc, InvalidRequest) else type(exc).__name__
            log.error("predictive model %s cannot be loaded in this process (%s); leads get rule scores "
                      "(tried again every %d s)", key[0], reason, int(RETRY_LOAD_AFTER))
        return None
    with _lock:
        _predictors[key] = predictor
        _failed.pop(key, None)
    if retry_at is not None:
        log.warning("predictive model %s loaded after all; leads get its predictions again", key[0])
    return predictor


def _probe(predictor: Predictor) -> None:
    """Predict one empty lead: the model and every library it needs really work here."""
    from datetime import UTC, datetime

    with contextlib.suppress(InputError):  # an empty lead may lack an as-of attribute: the model itself loaded
        predictor.predict_lead(Lead("leadscore-probe", {}), [], datetime.now(UTC))


def status(session: Session) -> dict[str, Any]:
    """What ``GET /v1/predictive`` shows."""
    row = session.execute(select(
        predictive_models.c.id, predictive_models.c.name, predictive_models.c.checksum, predictive_models.c.manifest,
        predictive_models.c.policy, predictive_models.c.weight, predictive_models.c.stages,
        predictive_models.c.created_us, predictive_models.c.activated_us,
    ).where(predictive_models.c.active)).first()
    if row is None:
        return {"active": False, "policy": "rules", "model": None}
    manifest = row.manifest or {}
    predicted = raw(session).all("SELECT count(*) FROM lead_predictions WHERE model_id = ?", [row.id])[0][0]
    total = raw(session).all("SELECT count(*) FROM leads")[0][0]
    return {
        "active": True,
        "policy": row.policy,
        "weight": row.weight,
        "stages": {"source": "model", "cut_offs": {n: v for n, v in row.stages}} if row.stages
        else {"source": "rules" if row.policy != "predictive" else "rule model thresholds on the predictive score"},
        "model": {
            "id": row.id, "name": row.name, "checksum": row.checksum,
            "algorithm": manifest.get("algorithm"), "target": manifest.get("target"),
            "features": len(manifest.get("features") or []), "uses_events": manifest.get("uses_events"),
            "trained_at": manifest.get("created_at"), "leadscore_version": manifest.get("leadscore_version"),
            "created_at": iso(row.created_us), "activated_at": iso(row.activated_us) if row.activated_us else None,
        },
        "leads_predicted": int(predicted),
        "leads_total": int(total),  # fewer predicted: the background rescoring is still running (or was cut off)
    }


# ---- predicting leads as they are scored -----------------------------------------------


def _stage(cuts: Sequence[tuple[str, float]], score: float, fallback: str | None) -> str | None:
    return next((name for name, low in cuts if low <= score), fallback)


def _final(model: ActivePredictive, change: ScoreChange, rule_stages: Sequence[tuple[str, float]],
           predictive_score: float) -> ScoreChange:
    """The change with the policy's final score (and, for ``predictive``, stage)."""
    result = change.result
    if model.policy == "rules":
        return change
    if model.policy == "predictive":
        total = predictive_score
        cuts = model.stages or tuple(rule_stages)
        stage = _stage(cuts, round_score(total), rule_stages[-1][0] if rule_stages else None) if cuts else None
    else:
        total = model.weight * predictive_score + (1 - model.weight) * result.total
        stage = result.stage
    from leadscore.service.scoring import score_changed, should_record

    final = replace(result, total=total, stage=stage)
    old = (change.old_score, change.old_stage, change.old_grades)
    # the rules of service/scoring.py on the *final* score (recorded_score holds the final score)
    return replace(change, result=final, changed=score_changed(*old, final), recorded=should_record(
        *old, change.recorded_score, final, change.cause, change.history_min_delta))


def apply(session: Session, given: Sequence[ScoreChange]) -> list[ScoreChange]:
    """Predict the rescored leads, store the predictions, and return the changes with the
    policy's final score. A list is updated in place too (callers of ``record_scores`` keep
    and return their list). Called by ``record_scores`` before it writes anything."""
    changes = given if isinstance(given, list) else list(given)
    if not changes:
        return changes
    model = active(session)
    if model is None:
        if _database(session) in _unusable:  # no stale prediction beside a rule score (the model cannot be loaded here)
            db = raw(session)
            for part in _chunks([c.lead_pk for c in changes]):
                db.execute(f"DELETE FROM lead_predictions WHERE lead_pk IN ({marks(len(part))})", part)
        return changes
    from leadscore.service.scoring import load_events

    db = raw(session)
    pks = [c.lead_pk for c in changes]
    reuse: dict[int, tuple[float, float]] = {}
    if all(c.cause == "model" for c in changes):  # a rule-model change: the predictions still hold
        for part in _chunks(pks):
            for pk, probability, score in db.all(
                f"SELECT lead_pk, probability, score FROM lead_predictions WHERE model_id = ? AND lead_pk IN "
                f"({marks(len(part))})", [model.id, *part],
            ):
                reuse[pk] = (probability, score)
    todo = [c for c in changes if c.lead_pk not in reuse]
    attributes: dict[int, dict[str, Any]] = {}
    for part in _chunks([c.lead_pk for c in todo]):
        for pk, attrs in db.all(f"SELECT id, attributes FROM leads WHERE id IN ({marks(len(part))})", part):
            attributes[pk] = from_json(attrs) or {}
    events = load_events(session, {c.lead_pk: c.lead_id for c in todo}) if todo and model.predictor.uses_events else {}
    predictor = model.predictor
    column = predictor.as_of_column
    scores: dict[int, float] = {pk: s for pk, (_, s) in reuse.items()}
    rows = []
    for change in todo:
        attrs = attributes.get(change.lead_pk, {})
        as_of = None if column and attrs.get(column) else from_micros(change.at_us)
        try:
            prediction = predictor.predict_lead(Lead(change.lead_id, attrs), events.get(change.lead_pk, []), as_of)
        except InputError as exc:  # e.g. an as-of attribute that is not a timestamp: keep the rule score
            # the value itself may be personal data: log where, not what
            log.warning("lead pk %s: no prediction, attribute %s is not usable", change.lead_pk, exc.column)
            continue
        scores[change.lead_pk] = prediction.score
        reasons = {"positive": [r.to_dict() for r in prediction.positive],
                   "negative": [r.to_dict() for r in prediction.negative]}
        rows.append((change.lead_pk, model.id, prediction.probability, prediction.score, change.result.score,
                     to_json(reasons), change.at_us))
    for part in _chunks([r[0] for r in rows]):
        db.execute(f"DELETE FROM lead_predictions WHERE lead_pk IN ({marks(len(part))})", part)
    db.many("INSERT INTO lead_predictions (lead_pk, model_id, probability, score, rule_score, reasons, scored_us) "
            "VALUES (?, ?, ?, ?, ?, {jsonb}, ?)", rows)
    if reuse:
        db.many("UPDATE lead_predictions SET rule_score = ? WHERE lead_pk = ?",
                [(c.result.score, c.lead_pk) for c in changes if c.lead_pk in reuse])
    if model.policy == "rules":
        return changes
    rule_stages = _rule_stages(session, changes[0].model_version_id)
    for i, change in enumerate(changes):
        if change.lead_pk in scores:
            changes[i] = _final(model, change, rule_stages, scores[change.lead_pk])
    return changes


def _rule_stages(session: Session, version_id: int) -> tuple[tuple[str, float], ...]:
    model = _models(session).get(session, version_id).model
    return tuple((s.name, s.min_score) for s in model.stages or ())


_rule_caches: dict[str, Any] = {}


def _chunks(items: Sequence[int]) -> list[Sequence[int]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def lead_prediction(session: Session, lead_pk: int) -> dict[str, Any] | None:
    """What ``GET /v1/leads/{id}`` shows as ``predictive`` (None without an active model)."""
    rows = raw(session).all(
        "SELECT p.probability, p.score, p.rule_score, p.reasons, p.scored_us, m.id, m.name, m.policy, m.weight "
        "FROM lead_predictions p JOIN predictive_models m ON m.id = p.model_id WHERE p.lead_pk = ? AND m.active",
        [lead_pk],
    )
    if not rows:
        return None
    probability, score, rule_score, reasons, scored_us, model_id, name, policy, weight = rows[0]
    found = from_json(reasons) or {}
    return {
        "probability": round(float(probability), 4),
        "score": score,
        "reasons": [*found.get("positive", []), *found.get("negative", [])],
        "factors": {"positive": found.get("positive", []), "negative": found.get("negative", [])},
        "rule_score": rule_score,
        "policy": policy,
        **({"weight": weight} if policy == "blend" else {}),
        "model": {"id": model_id, "name": name},
        "at": iso(scored_us),
    }


# ---- every lead at once (after activation, deactivation, a policy change) -------------------


def rescore_all(store: Store, clock: Callable[[], int], *, chunk: int = 500, policy: Any = None,
                progress: Callable[[int], None] | None = None) -> int:
    """Score every lead again (cause ``model``) so that each has the active model's prediction
    and the policy's score. Chunks of ``chunk`` leads, each its own transaction."""
    from leadscore.service.models import active_model
    from leadscore.service.rescore import rescore_pks

    started = time.monotonic()  # the activation (deactivation) was committed before
    options = {"policy": policy} if policy is not None else {}
    done = 0
    for final in (False, True):
        if final:
            # a thread (or process) that looked the active model up just before the change
            # used the old one for up to ACTIVE_TTL: once that has passed, score again each
            # lead that still carries the old model's (or no) prediction
            time.sleep(max(0.0, started + ACTIVE_TTL + 0.1 - time.monotonic()))
        after = 0
        while True:
            with store.write() as session:
                try:
                    model = active_model(session, _models(session))
                except NotFound:
                    return done  # no rule model: nothing is scored
                pks = _stale_pks(session, after, chunk) if final else [
                    r[0] for r in raw(session).all("SELECT id FROM leads WHERE id > ? ORDER BY id LIMIT ?",
                                                   [after, chunk])]
                if not pks:
                    break
                rescore_pks(session, model, pks, clock(), "model", detail="predictive model change", **options)
            after = pks[-1]
            done += len(pks)
            if progress:
                progress(done)
    return done


def _stale_pks(session: Session, after: int, limit: int) -> list[int]:
    """Leads (key > ``after``) scored under another predictive model than the active one
    (their prediction is of an inactive model; or, with an active model, they have none).
    Predictions of an inactive model are deleted."""
    db = raw(session)
    rows = db.all("SELECT id FROM predictive_models WHERE active")
    if rows:
        found = db.all("SELECT l.id FROM leads l WHERE l.id > ? AND NOT EXISTS (SELECT 1 FROM lead_predictions p "
                       "WHERE p.lead_pk = l.id AND p.model_id = ?) ORDER BY l.id LIMIT ?", [after, rows[0][0], limit])
    else:
        found = db.all("SELECT DISTINCT lead_pk FROM lead_predictions WHERE lead_pk > ? ORDER BY lead_pk LIMIT ?",
                       [after, limit])
    pks = [int(r[0]) for r in found]
    for part in _chunks(pks):
        db.execute(f"DELETE FROM lead_predictions WHERE lead_pk IN ({marks(len(part))}) AND model_id NOT IN "
                   "(SELECT id FROM predictive_models WHERE active)", part)
    return pks


def _models(session: Session) -> Any:
    """This process's parsed rule models of the session's database (version ids are per database)."""
    from leadscore.service.models import ModelCache

    with _lock:
        return _rule_caches.setdefault(_database(session), ModelCache())
