"""Driver-level statements for the hot paths (ingestion, scoring, import).

Building and compiling a SQLAlchemy statement costs far more than running it on SQLite
(hundreds of microseconds against tens), so the statements run for every event are plain
SQL text run on the session's own DBAPI connection, *inside the session's transaction*
(the session begins it: ``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` locks on PostgreSQL).

SQL is written with ``?`` placeholders and ``{json}`` / ``{jsonb}`` where a JSON document
is bound (a cast on PostgreSQL); :func:`sql` turns it into the driver's dialect once.
JSON documents are stored as JSON text on SQLite (as SQLAlchemy's JSON type does, so both
read each other's rows) and as json/jsonb on PostgreSQL; None is stored as SQL NULL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from sqlalchemy.orm import Session


def _plain(value: Any) -> Any:
    """Read-only mappings (``types.MappingProxyType``) and other mappings as dicts."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


_MAX_ROWID = 2**63 - 1  # the largest key of an SQLite table

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_plain).encode
_loads = json.loads
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


@lru_cache(maxsize=512)
def sql(text: str, postgresql: bool) -> str:
    """``text`` in the paramstyle of the driver (``?`` for sqlite3, ``%s`` for psycopg)."""
    if postgresql:
        return text.replace("?", "%s").format(json="CAST(%s AS json)", jsonb="CAST(%s AS jsonb)")
    return text.format(json="?", jsonb="?")


def marks(n: int) -> str:
    """``?, ?, ...`` for an ``IN`` list of ``n`` values."""
    return ",".join("?" * n)


# a JSON string, or a number written with a positive exponent (the group)
_EXPONENT_NUMBER = re.compile(r'"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?e\+\d+)')


def _positional(match: re.Match[str]) -> str:
    number = match.group(1)
    return match.group(0) if number is None else f"{int(float(number))}.0"


def exact_floats(text: str) -> str:
    """JSON text with each float written with a positive exponent (Python writes floats of
    1e16 and more so: ``1e+23``) written out instead (``99999999999999991611392.0``, the
    float's exact value). PostgreSQL keeps a jsonb number as a decimal and gives ``1e+23``
    back as the integer 10**23, which is not the float 1e23 (``equals`` and ``gt`` would
    then differ from SQLite); with a fraction written out, it gives back the same float.
    For jsonb columns (attributes, explanations); ``json`` columns keep the text as it is."""
    return _EXPONENT_NUMBER.sub(_positional, text) if "e+" in text else text


def json_text(value: Any) -> str:
    """The JSON text of a document as stored (compact, UTF-8 text as it is, floats exact:
    :func:`exact_floats`); also SQLAlchemy's serializer of JSON columns (store/db.py)."""
    return exact_floats(_dumps(value))


def to_json(value: Any) -> str | None:
    """:func:`json_text`, or None (SQL NULL) for None."""
    return None if value is None else json_text(value)


_encode_flat = (c_make_encoder(None, _plain, encode_basestring, None, ":", ",", False, False, True)
                if c_make_encoder else None)


def properties_json(properties: Mapping[str, Any]) -> str:
    """The text of an event's properties as stored: json's compact text (floats as ``repr``
    writes them, not :func:`exact_floats`: ``events.properties`` is a ``json`` column on
    PostgreSQL, which keeps the text as written, and the set-based rescoring reads numbers
    there as ``repr`` wrote them, sql/postgres.json_text_form). The C encoder without the
    set-up json makes for each call (perf, issue #3: half the time; every stored event).
    The properties of an event are flat (nested values are JSON text): no cycle to look for."""
    if _encode_flat is None:  # pragma: no cover - Python without json's C accelerator
        return _dumps(properties)
    return "".join(_encode_flat(properties, 0))


def from_json(value: Any) -> Any:
    """A JSON column as read by the driver: text on SQLite, already parsed by psycopg.

    Text as stored (nothing around the document) is read by json's scanner directly,
    without the checks ``json.loads`` makes around it (perf, issue #3: every lead a batch
    touches); any other text, and a scan that does not reach its end, through ``json.loads``
    (the same document, or its error)."""
    if value.__class__ is str:
        try:
            found, end = _scan(value, 0)
        except StopIteration:
            return _loads(value)
        return found if end == len(value) else _loads(value)
    if isinstance(value, (str, bytes)):
        return _loads(value)
    return value


class Raw:
    """The DBAPI connection of a session (its transaction begun), with small helpers."""

    __slots__ = ("connection", "postgresql", "driver")

    def __init__(self, session: Session) -> None:
        self.connection = session.connection()  # begins the transaction when needed
        self.postgresql = self.connection.dialect.name == "postgresql"
        self.driver: Any = self.connection.connection.driver_connection

    def execute(self, text: str, params: Sequence[Any] = ()) -> Any:
        cursor = self.driver.cursor()
        cursor.execute(sql(text, self.postgresql), params)
        return cursor

    def all(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        cursor = self.execute(text, params)
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def inserted(self, table: str, key: str, insert: str, params: Sequence[Any],
                 keys: Sequence[Any]) -> list[tuple[int, Any]] | None:
        """Run ``insert`` (SQLite: one row of ``table`` for each of ``keys``, in their order,
        perhaps ``ON CONFLICT ... DO NOTHING``) and give ``(id, key)`` of the rows it created,
        as ``RETURNING id, key`` would, without RETURNING (perf, issue #3: RETURNING gathers
        the rows in a temporary table first, 10 % of the instructions of the INSERT of a
        batch's new leads). ``table`` has an ``id INTEGER PRIMARY KEY`` without
        AUTOINCREMENT, which gives a new row the largest key plus one while that is below
        2**63 - 1, and the transaction is the database's only writer (``BEGIN IMMEDIATE``):
        the rows created are those after the largest key before, in the order of the VALUES;
        all of them unless one conflicted, and then they are read back. None, and nothing
        run, when the keys could reach 2**63 - 1 (SQLite then picks random ones): ask
        RETURNING."""
        before = self.all(f"SELECT max(id) FROM {table}")[0][0] or 0
        if before + len(keys) >= _MAX_ROWID:
            return None
        cursor = self.execute(insert, params)
        try:
            count, last = cursor.rowcount, cursor.lastrowid
        finally:
            cursor.close()
        if count == len(keys) and last == before + len(keys):
            return list(zip(range(before + 1, last + 1), keys, strict=True))
        return [(row[0], row[1]) for row in self.all(
            f"SELECT id, {key} FROM {table} WHERE id > ? ORDER BY id", (before,))]

    def many(self, text: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        cursor = self.driver.cursor()
        try:
            cursor.executemany(sql(text, self.postgresql), rows)
        finally:
            cursor.close()


def raw(session: Session) -> Raw:
    """The session's connection for driver-level statements (cached on the session)."""
    found = session.info.get("_leadscore_raw")
    if found is None or found.connection is not session.connection():
        found = Raw(session)
        session.info["_leadscore_raw"] = found
    return found
