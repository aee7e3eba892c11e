"""Scoring-model rules as readable sentences, and diffs between model versions (pure)."""

from __future__ import annotations

import difflib
import json
from typing import Any

OPERATORS = {
    "equals": "is", "not_equals": "is not", "contains": "contains", "starts_with": "starts with",
    "ends_with": "ends with", "matches": "matches", "in": "is one of", "not_in": "is not one of",
    "gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "between": "between", "exists": "exists",
}


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, str):
        return f"“{value}”"
    return json.dumps(value)


def _tests(subject: str, spec: dict[str, Any]) -> list[str]:
    out = []
    for op, value in spec.items():
        if op in ("attribute", "event", "where", "within_days", "count", "absent"):
            continue
        word = OPERATORS.get(op, op.replace("_", " "))
        out.append(f"{subject} {word}" + ("" if op == "exists" and value is True else f" {_value(value)}"))
    return out


def describe(condition: Any) -> str:
    """A condition of the model language in words.

    >>> describe({"attribute": "country", "in": ["US", "CA"]})
    'country is one of [“US”, “CA”]'
    >>> describe({"event": "page_view", "where": {"url": {"contains": "/pricing"}}, "within_days": 90})
    'event page_view where url contains “/pricing” within 90 days'
    """
    if not isinstance(condition, dict):
        return str(condition)
    if "all" in condition:
        return "(" + " and ".join(describe(c) for c in condition["all"]) + ")"
    if "any" in condition:
        return "(" + " or ".join(describe(c) for c in condition["any"]) + ")"
    if "not" in condition:
        return "not " + describe(condition["not"])
    if "attribute" in condition:
        return " and ".join(_tests(str(condition["attribute"]), condition)) or f"{condition['attribute']} is set"
    if "event" in condition:
        text = f"event {condition['event']}"
        where = condition.get("where") or {}
        parts = [t for field, spec in where.items()
                 for t in (_tests(field, spec) if isinstance(spec, dict) else [f"{field} is {_value(spec)}"])]
        if parts:
            text += " where " + " and ".join(parts)
        extra = {k: v for k, v in condition.items() if k not in ("event", "where")}
        if extra.get("min_count") == 1:
            del extra["min_count"]
        if "within_days" in extra:
            text += f" within {_value(extra.pop('within_days'))} days"
        for key, value in extra.items():
            text += f", {key.replace('_', ' ')} {_value(value)}"
        return text
    return json.dumps(condition, ensure_ascii=False)


def rule_rows(model_json: dict[str, Any]) -> list[dict[str, Any]]:
    """The rules of a parsed model (``GET /v1/model``'s ``model``) ready for a table."""
    rows = []
    for rule in model_json.get("rules", []):
        extras = []
        if rule.get("repeat") == "each":
            extras.append("each time" + (f", at most {rule['max_times']}×" if rule.get("max_times") else ""))
        if rule.get("decay"):
            extras.append("decays: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in rule["decay"].items()))
        rows.append({"id": rule["id"], "label": rule.get("label") or rule["id"], "group": rule.get("group", ""),
                     "points": rule["points"], "when": describe(rule.get("when")), "extras": "; ".join(extras)})
    return rows


def document_diff(old: str, new: str, old_name: str, new_name: str) -> list[tuple[str, str]]:
    """A unified diff as ``(kind, line)`` pairs: kind is add, del, hunk or same."""
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), old_name, new_name, lineterm="", n=3)
    out = []
    for line in lines:
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        out.append((kind, line))
    return out
