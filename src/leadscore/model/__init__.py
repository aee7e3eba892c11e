"""The scoring-model language: schema, loading and validation messages."""

from leadscore.model.checks import document_issues, document_warnings
from leadscore.model.loading import dump_model, load_model, model_json_schema, parse_model
from leadscore.model.schema import (
    AbsenceCondition,
    AllCondition,
    AnyCondition,
    AttributeCondition,
    Condition,
    EventCondition,
    Group,
    NotCondition,
    PropertyFilter,
    Rule,
    ScoringModel,
    Stage,
    time_conditions,
    walk_conditions,
)

__all__ = [
    "AbsenceCondition",
    "AllCondition",
    "AnyCondition",
    "AttributeCondition",
    "Condition",
    "EventCondition",
    "Group",
    "NotCondition",
    "PropertyFilter",
    "Rule",
    "ScoringModel",
    "Stage",
    "document_issues",
    "document_warnings",
    "dump_model",
    "load_model",
    "model_json_schema",
    "parse_model",
    "time_conditions",
    "walk_conditions",
]
