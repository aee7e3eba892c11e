"""A scoring model compiled to one SQL query, with SQLGlot's expression builder.

``compile_model(model, dialect, leads=..., events=..., as_of_us=...)`` returns a
``SELECT`` that scores every lead of a table in one set-based pass. The tables have
this shape (:func:`model_columns` says which columns a model needs):

``leads``
    ``lead_id`` text (unique), ``created_us`` bigint (``created_at`` in epoch
    microseconds; NULL when absent or blank: only needed for ``no_event`` rules), and
    one text column ``attr_<name>`` per attribute the model reads, holding the value's
    *text form* (see :mod:`leadscore.sql.operators`), NULL when missing.
``events``
    ``lead_id`` text, ``type`` text, ``ts_us`` bigint (epoch microseconds, UTC), one
    text column ``prop_<name>`` per property the model reads (text form, NULL when
    missing) and, unless ``dedupe=False``, ``event_id`` text (NULL when none) and
    ``seq`` bigint (input order: the first of several events with the same
    ``event_id`` counts). Events of leads not in ``leads`` are ignored.

The result has one row per lead: ``lead_id``, ``score`` (exact, unrounded), ``stage``,
``score_<group>`` (exact), ``grade_<group>``; no particular order. Round with
:func:`leadscore.engine.round_score` (2 decimals, half away from zero) at the end.

The query is built in stages, one CTE each: matching events (``ls_events``), one
aggregate row per lead (``ls_agg``), each rule's points (``ls_rules``), clipped group
scores (``ls_groups``), the total (``ls_totals``), then stage and grades.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from leadscore.engine.timestamps import MICROS_PER_DAY
from leadscore.model.schema import (
    AbsenceCondition,
    AllCondition,
    AnyCondition,
    AttributeCondition,
    EventCondition,
    NotCondition,
    Rule,
    ScoringModel,
    time_conditions,
    walk_conditions,
)
from leadscore.sql.dialects import Dialect, UnsupportedOnEngine, double, get_dialect
from leadscore.sql.operators import predicate, within_lower_bound

ATTRIBUTE_PREFIX = "attr_"
PROPERTY_PREFIX = "prop_"


def attribute_column(name: str) -> str:
    """The leads column holding attribute ``name``."""
    return ATTRIBUTE_PREFIX + name


def property_column(name: str) -> str:
    """The events column holding property ``name``."""
    return PROPERTY_PREFIX + name


@dataclass(frozen=True)
class ModelColumns:
    """What a model reads: attribute and property names, event types, ``created_at``."""

    attributes: tuple[str, ...]
    properties: tuple[str, ...]
    event_types: tuple[str, ...]
    needs_created: bool


def model_columns(model: ScoringModel) -> ModelColumns:
    """The columns :func:`compile_model` reads for this model, in first-use order."""
    attributes: dict[str, None] = {}
    properties: dict[str, None] = {}
    types: dict[str, None] = {}
    needs_created = False
    for rule in model.rules:
        for condition in walk_conditions(rule.when):
            if isinstance(condition, AttributeCondition) and condition.attribute != "lead_id":
                attributes[condition.attribute] = None
            elif isinstance(condition, (EventCondition, AbsenceCondition)):
                types.update(dict.fromkeys(condition.types))
                properties.update(dict.fromkeys(condition.where or {}))
                needs_created = needs_created or isinstance(condition, AbsenceCondition)
    return ModelColumns(tuple(attributes), tuple(properties), tuple(types), needs_created)


def _col(name: str, table: str) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _coalesce(value: exp.Expr, default: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=value, expressions=[default])


def _alias(expression: exp.Expr, name: str) -> exp.Expr:
    return exp.alias_(expression, name, quoted=True)


def _clip(value: exp.Expr, low: float | None, high: float | None) -> exp.Expr:
    """``engine.scoring.clip``: a missing bound does not clip (low <= high, as models are
    checked). GREATEST/LEAST name ``value`` once, so that no engine computes it twice."""
    if low is not None:
        value = exp.Greatest(this=value, expressions=[double(low)])
    if high is not None:
        value = exp.Least(this=value, expressions=[double(high)])
    return value


def _sum_in_order(values: list[exp.Expr]) -> exp.Expr:
    """``0.0 + v1 + v2 + ...``, left to right: the python engine's order of additions."""
    total: exp.Expr = double(0)
    for value in values:
        total = exp.Add(this=total, expression=value)
    return total


def _first_match(pairs: list[tuple[exp.Expr, str]]) -> exp.Expr:
    """``CASE WHEN c1 THEN 'n1' ... END`` (NULL when none holds)."""
    if not pairs:
        return exp.cast(exp.null(), exp.DataType.Type.TEXT)
    case = exp.case()
    for condition, name in pairs:
        case = case.when(condition, exp.Literal.string(name))
    return case


class _Compiler:
    """One compilation: collects per-lead aggregates while the rules are written."""

    def __init__(self, model: ScoringModel, dialect: Dialect, as_of_us: int, *, lookups: bool = False,
                 future: bool = False) -> None:
        self.model = model
        self.dialect = dialect
        self.as_of_us = as_of_us
        # ``ls_events`` also holds the events stamped after as_of (for next-change moments):
        # every match then says ``ts_us <= as_of`` itself
        self.future = future
        self.aggregates: dict[str, tuple[str, exp.Expr]] = {}
        self.ranks: dict[str, tuple[str, exp.Expr]] = {}
        # attribute -> (CTE alias, {predicate SQL: (column, predicate on the CTE's "v")})
        self.lookups: dict[str, tuple[str, dict[str, tuple[str, exp.Expr]]]] | None = {} if lookups else None

    def attribute_test(self, attribute: str, test: Callable[[exp.Expr], exp.Expr], *, costly: bool) -> exp.Expr:
        """``test`` of the lead's attribute; with lookups, a ``costly`` one (a regex) is
        computed once per distinct value (cheap ones cost less than the join)."""
        column = _col(attribute_column(attribute), "l")
        if self.lookups is None or not costly:
            return test(column)
        alias, tests = self.lookups.setdefault(attribute, (f"la{len(self.lookups)}", {}))
        predicate_on_value = test(_col("v", "d"))
        key = predicate_on_value.sql()
        if key not in tests:
            tests[key] = (f"p{len(tests)}", predicate_on_value)
        return _col(tests[key][0], alias)

    # -- per-event --------------------------------------------------------------------

    def match(self, condition: EventCondition | AbsenceCondition, where: str, *, future: bool = False) -> exp.Expr:
        """Does an event (row of ``ls_events``, alias ``e``) match the condition?
        (``future``: an event stamped after as_of matching its types and filters.)

        Type and window are tested first; the ``where`` filters (text functions, the costly
        part) only on the events that pass them."""
        types = [exp.Literal.string(t) for t in condition.types]
        cheap: list[exp.Expr] = [
            exp.EQ(this=_col("type", "e"), expression=types[0]) if len(types) == 1
            else exp.In(this=_col("type", "e"), expressions=types)
        ]
        if self.future and not future:
            cheap.append(exp.LTE(this=_col("ts_us", "e"), expression=exp.Literal.number(self.as_of_us)))
        elif future:
            cheap.append(exp.GT(this=_col("ts_us", "e"), expression=exp.Literal.number(self.as_of_us)))
        if condition.within_days is not None and not future:
            lowest = within_lower_bound(self.as_of_us, condition.within_days)
            cheap.append(exp.GTE(this=_col("ts_us", "e"), expression=exp.Literal.number(lowest)))
        filters = [
            predicate(self.dialect, _col(property_column(name), "e"), test.op, test.value,
                      f"{where}.where.{name}")
            for name, test in (condition.where or {}).items()
        ]
        if not filters:
            return exp.and_(*cheap)
        return exp.If(this=exp.and_(*cheap), true=exp.and_(*filters), false=exp.false())

    def aggregate(self, expression: exp.Expr) -> exp.Expr:
        """A per-lead aggregate over ``ls_events``, as a column of ``ls_agg`` (alias ``a``)."""
        key = expression.sql()
        if key not in self.aggregates:
            self.aggregates[key] = (f"x{len(self.aggregates)}", expression)
        return _col(self.aggregates[key][0], "a")

    def count(self, match: exp.Expr) -> exp.Expr:
        counted = exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=match))
        return _coalesce(self.aggregate(counted), exp.Literal.number(0))

    def decay(self, ts: exp.Expr, half_life_days: float) -> exp.Expr:
        """``0.5 ** (age_days / half_life)`` with ``age_days = (as_of - ts) / 86400 s``."""
        elapsed = exp.cast(
            exp.Paren(this=exp.Sub(this=exp.Literal.number(self.as_of_us), expression=ts)),
            exp.DataType.Type.DOUBLE,
        )
        age = exp.Div(this=elapsed, expression=double(MICROS_PER_DAY))
        return self.dialect.half_power(exp.Div(this=exp.Paren(this=age), expression=double(half_life_days)))

    # -- per-lead ---------------------------------------------------------------------

    def holds(self, condition: Any, where: str) -> exp.Expr:
        emitter = _HOLDS.get(type(condition))
        if emitter is None:
            raise UnsupportedOnEngine(f"{where}: no SQL form for {type(condition).__name__}")
        return emitter(self, condition, where)

    def contribution(self, rule: Rule, where: str) -> exp.Expr:
        points = double(rule.points)
        if not isinstance(rule.when, EventCondition):
            return exp.If(this=self.holds(rule.when, f"{where}.when"), true=points, false=double(0))
        match = self.match(rule.when, f"{where}.when")
        ts = _col("ts_us", "e")
        half_life = rule.decay.half_life_days if rule.decay else None
        if rule.repeat == "once":
            if half_life is None:
                enough = exp.GTE(this=self.count(match), expression=exp.Literal.number(rule.when.min_count))
                return exp.If(this=enough, true=points, false=double(0))
            latest = self.aggregate(exp.Filter(this=exp.Max(this=ts), expression=exp.Where(this=match)))
            holds: exp.Expr
            if rule.when.min_count == 1:
                holds = exp.not_(exp.Is(this=latest, expression=exp.null()))
            else:
                holds = exp.GTE(this=self.count(match), expression=exp.Literal.number(rule.when.min_count))
            return exp.If(this=holds, true=exp.Mul(this=points, expression=self.decay(latest, half_life)),
                          false=double(0))
        if half_life is None:
            counted: exp.Expr = self.count(match)
            if rule.max_times is not None:
                counted = exp.Least(this=counted, expressions=[exp.Literal.number(rule.max_times)])
            return exp.Mul(this=points, expression=counted)
        if rule.max_times is None:
            each = exp.Mul(this=points.copy(), expression=self.decay(ts, half_life))
            total = self.aggregate(exp.Filter(this=exp.Sum(this=each), expression=exp.Where(this=match)))
            return _coalesce(total, double(0))
        return self.most_recent(match, rule.max_times, points, half_life)

    def most_recent(self, match: exp.Expr, n: int, points: exp.Expr,
                    half_life: float) -> exp.Expr:
        """Sum of ``points * f(e)`` over the ``n`` most recent matching events."""
        if self.dialect.top_n_aggregate:
            # MAX(ts, n): the n largest timestamps, most recent first (DuckDB).
            latest = exp.Filter(
                this=exp.func("max", _col("ts_us", "e"), exp.Literal.number(n)),
                expression=exp.Where(this=match),
            )
            stamps = self.aggregate(latest)
            each = exp.Lambda(
                this=exp.Mul(this=points, expression=self.decay(exp.column("t"), half_life)),
                expressions=[exp.to_identifier("t")],
            )
            summed = exp.func("list_sum", exp.func("list_transform", stamps, each))
            return _coalesce(summed, double(0))
        key = f"{match.sql()}"
        if key not in self.ranks:
            window = exp.Window(
                this=exp.RowNumber(),
                partition_by=[_col("lead_id", "e"), match.copy()],
                order=exp.Order(expressions=[exp.Ordered(this=_col("ts_us", "e"), desc=True)]),
            )
            self.ranks[key] = (f"rank{len(self.ranks)}", window)
        rank = _col(self.ranks[key][0], "e")
        counted = exp.and_(match, exp.LTE(this=rank, expression=exp.Literal.number(n)))
        points_each = exp.Mul(this=points, expression=self.decay(_col("ts_us", "e"), half_life))
        total = self.aggregate(exp.Filter(this=exp.Sum(this=points_each), expression=exp.Where(this=counted)))
        return _coalesce(total, double(0))


def _attribute_holds(c: _Compiler, condition: AttributeCondition, where: str) -> exp.Expr:
    if condition.attribute == "lead_id":  # never an attribute: the engine sees it as missing
        value: exp.Expr = exp.cast(exp.null(), exp.DataType.Type.TEXT)
        return predicate(c.dialect, value, condition.op, condition.value, where)
    return c.attribute_test(condition.attribute,
                            lambda value: predicate(c.dialect, value, condition.op, condition.value, where),
                            costly=condition.op == "matches")


def _event_holds(c: _Compiler, condition: EventCondition, where: str) -> exp.Expr:
    count = c.count(c.match(condition, where))
    return exp.GTE(this=count, expression=exp.Literal.number(condition.min_count))


def _absence_holds(c: _Compiler, condition: AbsenceCondition, where: str) -> exp.Expr:
    none = exp.EQ(this=c.count(c.match(condition, where)), expression=exp.Literal.number(0))
    # not punished for silence it has not had time for: as_of - created < N days
    window = condition.within_days * MICROS_PER_DAY
    newest_created = c.as_of_us - math.ceil(window) + 1
    created = _col("created_us", "l")
    too_young = exp.and_(
        exp.not_(exp.Is(this=created, expression=exp.null())),
        exp.GTE(this=created.copy(), expression=exp.Literal.number(newest_created)),
    )
    return exp.and_(exp.not_(exp.Paren(this=too_young)), none)


def _all_holds(c: _Compiler, condition: AllCondition, where: str) -> exp.Expr:
    return exp.and_(*[c.holds(child, f"{where}.all[{i}]") for i, child in enumerate(condition.all)])


def _any_holds(c: _Compiler, condition: AnyCondition, where: str) -> exp.Expr:
    return exp.or_(*[c.holds(child, f"{where}.any[{i}]") for i, child in enumerate(condition.any)])


def _not_holds(c: _Compiler, condition: NotCondition, where: str) -> exp.Expr:
    return exp.not_(exp.Paren(this=c.holds(condition.not_, f"{where}.not")))


_HOLDS: dict[type, Callable[[_Compiler, Any, str], exp.Expr]] = {
    AttributeCondition: _attribute_holds,
    EventCondition: _event_holds,
    AbsenceCondition: _absence_holds,
    AllCondition: _all_holds,
    AnyCondition: _any_holds,
    NotCondition: _not_holds,
}


def _events_cte(events: str, columns: ModelColumns, as_of_us: int, dedupe: bool, *,
                future: bool = False, ordered: bool = False) -> exp.Select:
    """Deduplicated events of the model's types up to as_of (``future``: all of them), with
    the columns it reads (``ordered``: also ``event_id`` and ``seq``)."""
    names = ["lead_id", "type", "ts_us", *[property_column(p) for p in columns.properties]]
    if ordered:
        names += ["event_id", "seq"]
    query = exp.select(*[_col(n, "e") for n in names]).from_(exp.to_table(events).as_("e"))
    conditions: list[exp.Expr] = [
        exp.In(this=_col("type", "e"), expressions=[exp.Literal.string(t) for t in columns.event_types]),
    ]
    if not future:
        conditions.insert(0, exp.LTE(this=_col("ts_us", "e"), expression=exp.Literal.number(as_of_us)))
    if dedupe:
        # the first (lowest seq) of the events sharing an event_id counts, whatever its type
        firsts = (
            exp.select(_col("event_id", "d"), exp.alias_(exp.Min(this=_col("seq", "d")), "first_seq"))
            .from_(exp.to_table(events).as_("d"))
            .where(exp.not_(exp.Is(this=_col("event_id", "d"), expression=exp.null())))
            .group_by(_col("event_id", "d"))
            .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
        )
        query = query.join(
            exp.Subquery(this=firsts, alias=exp.TableAlias(this=exp.to_identifier("f"))),
            on=exp.EQ(this=_col("event_id", "f"), expression=_col("event_id", "e")),
            join_type="left",
        )
        conditions.append(exp.or_(
            exp.Is(this=_col("first_seq", "f"), expression=exp.null()),
            exp.EQ(this=_col("seq", "e"), expression=_col("first_seq", "f")),
        ))
    return query.where(exp.and_(*conditions))


def compile_model(
    model: ScoringModel,
    dialect: str | Dialect,
    *,
    leads: str = "leads",
    events: str = "events",
    as_of_us: int,
    dedupe: bool = True,
    carry: tuple[str, ...] = (),
    attribute_lookups: bool = False,
    explain: bool = False,
) -> exp.Select:
    """One SELECT scoring every lead of ``leads`` (see the module docstring for the shape).

    Raises :class:`~leadscore.sql.dialects.UnsupportedOnEngine` when the model uses
    something the dialect cannot compute exactly as the python engine does (such as a
    regex look-ahead on DuckDB), naming the rule. ``carry`` names further columns of
    ``leads`` to copy to the result (such as a position to order by).

    ``attribute_lookups``: each regex test of an attribute is computed once per
    distinct value of the attribute, in a CTE joined back to the leads (on ``IS NOT
    DISTINCT FROM``): faster when leads are many and their values repeat (job titles,
    countries), as in files of a million leads.

    ``explain``: instead of scores, what :mod:`leadscore.sql.explain` builds the engine's
    results from, one row per lead: ``lead_id``, ``rule_<i>`` (the points of rule ``i``,
    for each rule whose ``when`` is neither a single event condition, whose counted events
    come from :func:`compile_counted`, nor about attributes only, which Python tests) and, for the ``k``-th event or absence
    condition of the model (nested ones included, in :func:`next_change_conditions` order),
    ``next_future_<k>`` (the oldest matching event stamped after as_of) and, when it has a
    window, ``next_oldest_<k>`` (the oldest matching event inside it); NULL when there is
    none. Events after as_of are then read too.
    """
    target = get_dialect(dialect)
    compiler = _Compiler(model, target, as_of_us, lookups=attribute_lookups, future=explain)
    columns = model_columns(model)
    rule_values = [
        _alias(compiler.contribution(rule, f"rules[{i}] ({rule.id})"), f"rule_{i}" if explain else f"r{i}")
        for i, rule in enumerate(model.rules)
        if not (explain and (isinstance(rule.when, EventCondition) or attribute_only(rule.when)))
    ]
    if explain:
        for k, (where, condition) in enumerate(next_change_conditions(model)):
            ts = _col("ts_us", "e")
            future = compiler.aggregate(exp.Filter(
                this=exp.Min(this=ts), expression=exp.Where(this=compiler.match(condition, where, future=True))))
            rule_values.append(_alias(future, f"next_future_{k}"))
            if condition.within_days is not None:
                oldest = compiler.aggregate(exp.Filter(
                    this=exp.Min(this=ts.copy()), expression=exp.Where(this=compiler.match(condition, where))))
                rule_values.append(_alias(oldest, f"next_oldest_{k}"))
    kept = ["lead_id", *carry]
    query = exp.select(*[_col(c, "l") for c in kept], *rule_values).from_(exp.to_table(leads).as_("l"))
    ctes: list[tuple[str, exp.Expr]] = []
    for attribute, (alias, tests) in (compiler.lookups or {}).items():
        values = exp.select(exp.alias_(_col(attribute_column(attribute), "l"), "v", quoted=True)).distinct().from_(
            exp.to_table(leads).as_("l"))
        lookup = exp.select(_col("v", "d"), *[_alias(test, name) for name, test in tests.values()]).from_(
            exp.Subquery(this=values, alias=exp.TableAlias(this=exp.to_identifier("d"))))
        ctes.append((f"ls_{alias}", lookup))
        query = query.join(
            exp.to_table(f"ls_{alias}").as_(alias),
            on=exp.NullSafeEQ(this=_col("v", alias), expression=_col(attribute_column(attribute), "l")),
            join_type="left",
        )
    if compiler.aggregates:
        source = _events_cte(events, columns, as_of_us, dedupe, future=explain)
        ctes.append(("ls_events", source))
        source_name = "ls_events"
        if compiler.ranks:
            ranked = exp.select(exp.Star(), *[
                _alias(window, name) for name, window in compiler.ranks.values()
            ]).from_(exp.to_table("ls_events").as_("e"))
            ctes.append(("ls_ranked", ranked))
            source_name = "ls_ranked"
        agg = exp.select(
            _col("lead_id", "e"), *[_alias(expr, name) for name, expr in compiler.aggregates.values()]
        ).from_(exp.to_table(source_name).as_("e")).group_by(_col("lead_id", "e"))
        ctes.append(("ls_agg", agg))
        query = query.join(
            exp.to_table("ls_agg").as_("a"),
            on=exp.EQ(this=_col("lead_id", "a"), expression=_col("lead_id", "l")),
            join_type="left",
        )
    if explain:
        for name, cte in ctes:
            query = query.with_(name, as_=cte)
        return query
    ctes.append(("ls_rules", query))

    groups = model.group_names()
    group_values = []
    for g, name in enumerate(groups):
        raw = _sum_in_order([_col(f"r{i}", "r") for i, rule in enumerate(model.rules) if rule.group == name])
        spec = model.groups.get(name)
        clipped = _clip(raw, spec.min, spec.max) if spec else raw
        group_values.append(_alias(clipped, f"g{g}"))
    ctes.append(("ls_groups", exp.select(*[_col(c, "r") for c in kept], *group_values).from_(
        exp.to_table("ls_rules").as_("r"))))

    total = _clip(_sum_in_order([_col(f"g{g}", "s") for g in range(len(groups))]),
                  model.score.min, model.score.max)
    ctes.append(("ls_totals", exp.select(
        *[_col(c, "s") for c in kept], *[_col(f"g{g}", "s") for g in range(len(groups))],
        _alias(total, "total"),
    ).from_(exp.to_table("ls_groups").as_("s"))))

    score = _col("total", "t")
    stage = _first_match([
        (exp.GTE(this=score.copy(), expression=double(s.min_score)), s.name) for s in model.stages or []
    ])
    outputs: list[exp.Expr] = [_col("lead_id", "t"), _alias(score, "score"), _alias(stage, "stage")]
    outputs += [_alias(_col(f"g{g}", "t"), f"score_{name}") for g, name in enumerate(groups)]
    outputs += [_col(c, "t") for c in carry]
    for name in model.graded_groups():
        value = _col(f"g{groups.index(name)}", "t")
        grades = model.groups[name].grades or {}
        outputs.append(_alias(_first_match([
            (exp.GTE(this=value.copy(), expression=double(threshold)), grade)
            for grade, threshold in grades.items()
        ]), f"grade_{name}"))
    final = exp.select(*outputs).from_(exp.to_table("ls_totals").as_("t"))
    for name, cte in ctes:
        # the rules' points are the costly part: computed once, whatever reads them
        materialized = True if name == "ls_rules" and target.materialize else None
        final = final.with_(name, as_=cte, materialized=materialized)
    return final


def attribute_only(condition: Any) -> bool:
    """The condition reads attributes only (no event or absence condition inside)."""
    return not time_conditions(condition)


def next_change_conditions(model: ScoringModel) -> list[tuple[str, EventCondition | AbsenceCondition]]:
    """Every event and absence condition of a model, nested ones included, in the order the
    engine looks at them for the next change (``engine.scoring._plan_model``), with where."""
    found: list[tuple[str, EventCondition | AbsenceCondition]] = []
    for i, rule in enumerate(model.rules):
        found += [(f"rules[{i}] ({rule.id}).when", condition) for condition in time_conditions(rule.when)]
    return found


def compile_counted(
    model: ScoringModel,
    dialect: str | Dialect,
    *,
    events: str = "events",
    as_of_us: int,
    dedupe: bool = True,
) -> exp.Expr | None:
    """The events each event rule counts, for explanations: one row per (lead, rule, counted
    event) with ``lead_id``, ``rule`` (index in the model), ``event_id``, ``type``, ``ts_us``
    and ``position`` (1 = first in the engine's order: most recent first; equal timestamps
    in the order of the condition's types, then later input (higher ``seq``) first). ``seq``
    is needed even with ``dedupe=False``. None when the model has no event rule."""
    target = get_dialect(dialect)
    # without dedupe each rule reads the events itself (its type test first: one shared
    # CTE of every event of the model's types was slower on PostgreSQL); match says as_of
    compiler = _Compiler(model, target, as_of_us, future=not dedupe)
    columns = model_columns(model)
    source = "ls_events" if dedupe else events
    parts: list[exp.Select] = []
    for i, rule in enumerate(model.rules):
        condition = rule.when
        if not isinstance(condition, EventCondition):
            continue
        match = compiler.match(condition, f"rules[{i}] ({rule.id}).when")
        types = list(dict.fromkeys(condition.types))
        order: list[exp.Ordered] = [exp.Ordered(this=_col("ts_us", "e"), desc=True)]
        if len(types) > 1:
            position = exp.case(_col("type", "e"))
            for p, kind in enumerate(types):
                position = position.when(exp.Literal.string(kind), exp.Literal.number(p))
            order.append(exp.Ordered(this=position, desc=False))
        order.append(exp.Ordered(this=_col("seq", "e"), desc=True))
        ranked = exp.select(
            _col("lead_id", "e"), _col("event_id", "e"), _col("type", "e"), _col("ts_us", "e"),
            _alias(exp.Window(this=exp.RowNumber(), partition_by=[_col("lead_id", "e")],
                              order=exp.Order(expressions=order)), "position"),
            _alias(exp.Window(this=exp.Count(this=exp.Star()), partition_by=[_col("lead_id", "e")]), "matched"),
        ).from_(exp.to_table(source).as_("e")).where(match)
        limit = 1 if rule.repeat == "once" else rule.max_times
        needed = condition.min_count if rule.repeat == "once" else 1
        keep: list[exp.Expr] = []
        if limit is not None:
            keep.append(exp.LTE(this=_col("position", "c"), expression=exp.Literal.number(limit)))
        if needed > 1:
            keep.append(exp.GTE(this=_col("matched", "c"), expression=exp.Literal.number(needed)))
        part = exp.select(
            _col("lead_id", "c"), _alias(exp.Literal.number(i), "rule"), _col("event_id", "c"),
            _col("type", "c"), _col("ts_us", "c"), _col("position", "c"),
        ).from_(exp.Subquery(this=ranked, alias=exp.TableAlias(this=exp.to_identifier("c"))))
        parts.append(part.where(exp.and_(*keep)) if keep else part)
    if not parts:
        return None
    union: exp.Expr = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    query = exp.select(exp.Star()).from_(exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("u"))))
    if not dedupe:
        return query
    return query.with_("ls_events", as_=_events_cte(events, columns, as_of_us, dedupe, ordered=True))


def compile_sql(model: ScoringModel, dialect: str | Dialect, *, pretty: bool = False, **tables: Any) -> str:
    """:func:`compile_model` as SQL text in the dialect."""
    target = get_dialect(dialect)
    return target.sql(compile_model(model, target, **tables), pretty=pretty)
