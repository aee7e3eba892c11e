"""Segments of a model document: read from the dashboard's form, described in words, and
written back into the document (pure; the views in :mod:`leadscore.web.segments` store it).

A segment lives in the active model's ``segments:`` list, so creating, editing or deleting
one makes a new model version. In a YAML document only the segment's own lines change:
comments, order and layout elsewhere stay byte for byte (found with PyYAML's node marks).
A JSON document, or a ``segments`` list written in flow style, is rewritten whole.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from leadscore.errors import ModelError
from leadscore.model import ScoringModel
from leadscore.model.automation import Segment
from leadscore.model.loading import parse_model
from leadscore.model.yaml_nodes import item_lines, key_node, mapping_value
from leadscore.web.rules import describe

FIELDS = ("name", "description", "min_score", "max_score", "stage", "grades", "attributes", "rule_fired",
          "active_within_days")
NUMBERS = ("min_score", "max_score", "active_within_days")


@dataclass
class SegmentForm:
    """What the form holds: the values to show again, and a message per field in error."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.general


def _number(text: str, name: str, errors: dict[str, str]) -> float | None:
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        errors[name] = f"must be a number, got '{text}'"
        return None
    if not math.isfinite(value):
        errors[name] = f"must be a finite number, got '{text}'"
        return None
    return int(value) if value.is_integer() else value


def form_values(segment: Mapping[str, Any] | None) -> dict[str, Any]:
    """The form's fields for a segment of the document (empty for a new one)."""
    data = dict(segment or {})

    def listed(value: Any) -> list[str]:
        return [] if value is None else [str(value)] if isinstance(value, str) else [str(v) for v in value]

    grades = {str(g): listed(v) for g, v in (data.get("grades") or {}).items()}
    attributes = data.get("attributes")
    return {
        "name": str(data.get("name", "")), "description": str(data.get("description") or ""),
        **{n: "" if data.get(n) is None else f"{data[n]:g}" if isinstance(data[n], float) else str(data[n])
           for n in NUMBERS},
        "stage": listed(data.get("stage")), "grades": grades, "rule_fired": listed(data.get("rule_fired")),
        "attributes": yaml.safe_dump(attributes, allow_unicode=True, sort_keys=False, default_flow_style=None,
                                     width=1000).strip() if attributes else "",
    }


def read_form(form: Any, model: ScoringModel) -> tuple[dict[str, Any], SegmentForm]:
    """The segment of a submitted form (``form`` has ``get`` and ``getlist``), as the
    document will hold it, with a message per field that is wrong."""
    errors: dict[str, str] = {}
    text = {name: str(form.get(name) or "") for name in ("name", "description", "attributes", *NUMBERS)}
    stages = [s for s in form.getlist("stage") if s]
    rules = [r for r in form.getlist("rule_fired") if r]
    grades = {group: [g for g in form.getlist(f"grade.{group}") if g] for group in model.graded_groups()}
    data: dict[str, Any] = {"name": text["name"].strip()}
    if not data["name"]:
        errors["name"] = "a segment needs a name (letters, digits, _ and -)"
    if text["description"].strip():
        data["description"] = text["description"].strip()
    for name in NUMBERS:
        value = _number(text[name], name, errors)
        if value is not None:
            data[name] = value
    if stages:
        data["stage"] = stages[0] if len(stages) == 1 else stages
    chosen = {g: (v[0] if len(v) == 1 else v) for g, v in grades.items() if v}
    if chosen:
        data["grades"] = chosen
    if text["attributes"].strip():
        try:
            conditions = yaml.safe_load(text["attributes"])
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            errors["attributes"] = f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"
        else:
            if isinstance(conditions, Mapping):
                conditions = [conditions]
            if not isinstance(conditions, list) or not all(isinstance(c, Mapping) for c in conditions):
                errors["attributes"] = ("a list of conditions, one per line, e.g. "
                                        "- {attribute: country, in: [VN, TH]}")
            else:
                data["attributes"] = conditions
    if rules:
        data["rule_fired"] = rules[0] if len(rules) == 1 else rules
    if "min_score" in data and "max_score" in data and data["min_score"] > data["max_score"]:
        errors.setdefault("max_score", f"must be at least the minimum score ({data['min_score']:g})")
    if not errors:
        try:
            Segment.model_validate(data)
        except ValidationError as exc:
            for problem in exc.errors():
                loc = [str(p) for p in problem["loc"]]
                name = loc[0] if loc and loc[0] in FIELDS else ""
                detail = ".".join(loc[1:])
                message = (f"{detail}: " if detail else "") + problem["msg"]
                if name:
                    errors.setdefault(name, message)
                else:
                    errors.setdefault("name", message)
    values = form_values(data)
    values["attributes"] = text["attributes"]  # as typed
    for name in NUMBERS:
        values[name] = text[name]
    return data, SegmentForm(values, errors)


def _block_item(segment: Mapping[str, Any], indent: int) -> list[str]:
    """The segment as a block sequence item: one key per line, lists of values in flow
    style (``stage: [Hot, Warm]``), conditions one per line."""
    body: list[str] = []
    for key, value in segment.items():
        body.extend(yaml.safe_dump({key: value}, allow_unicode=True, sort_keys=False, width=100,
                                   default_flow_style=None if isinstance(value, list | dict) else False)
                    .splitlines())
    pad = " " * indent
    return [f"{pad}- {body[0]}\n", *(f"{pad}  {line}\n" for line in body[1:])]


def segment_names(model: ScoringModel) -> list[str]:
    return [s.name for s in model.segments or []]


def edit_document(text: str, fmt: str, old_name: str | None, segment: Mapping[str, Any] | None) -> str:
    """The document with the segment ``old_name`` replaced by ``segment`` (``old_name``
    None: added at the end; ``segment`` None: deleted)."""
    if fmt == "json":
        data = json.loads(text)
        data["segments"] = _edited_list(data.get("segments") or [], old_name, segment)
        if not data["segments"]:
            del data["segments"]
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    sequence = mapping_value(root, "segments")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if sequence is None and key_node(root, "segments") is None and isinstance(root, yaml.MappingNode):
        if segment is None:
            raise KeyError(old_name)
        return "".join(lines) + "segments:\n" + "".join(_block_item(segment, 2))
    if not isinstance(sequence, yaml.SequenceNode) or sequence.flow_style or not sequence.value:
        return _rewritten(text, old_name, segment)
    names = [str(getattr(mapping_value(item, "name"), "value", "")) for item in sequence.value]
    first_line = lines[sequence.value[0].start_mark.line]
    indent = len(first_line) - len(first_line.lstrip())
    if old_name is None:
        assert segment is not None
        _, last = item_lines(sequence, len(names) - 1, lines)
        lines[last + 1:last + 1] = _block_item(segment, indent)
        return "".join(lines)
    if old_name not in names:
        raise KeyError(old_name)
    index = names.index(old_name)
    first, last = item_lines(sequence, index, lines)
    if segment is not None:
        lines[first:last + 1] = _block_item(segment, indent)
    elif len(names) == 1:
        key = key_node(root, "segments")
        assert key is not None
        lines[key.start_mark.line:last + 1] = ["segments: []\n"]
    else:
        del lines[first:last + 1]
    return "".join(lines)


def _edited_list(items: Sequence[Any], old_name: str | None, segment: Mapping[str, Any] | None) -> list[Any]:
    out = list(items)
    if old_name is None:
        assert segment is not None
        return [*out, dict(segment)]
    for index, item in enumerate(out):
        if isinstance(item, Mapping) and item.get("name") == old_name:
            if segment is None:
                del out[index]
            else:
                out[index] = dict(segment)
            return out
    raise KeyError(old_name)


def _rewritten(text: str, old_name: str | None, segment: Mapping[str, Any] | None) -> str:
    data = yaml.safe_load(text)
    data["segments"] = _edited_list(data.get("segments") or [], old_name, segment)
    return str(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=None, width=100))


def checked_document(text: str, fmt: str, new_name: str | None, form: SegmentForm) -> ScoringModel | None:
    """Parse the edited document; its problems go to the form (a field's own problem next
    to the field, others at the top). None when it is invalid."""
    try:
        model = parse_model(text, fmt=fmt)
    except ModelError as exc:
        names: list[str] = []
        try:
            loaded = json.loads(text) if fmt == "json" else yaml.safe_load(text)
            names = [str(s.get("name")) for s in loaded.get("segments") or [] if isinstance(s, Mapping)]
        except (ValueError, yaml.YAMLError, AttributeError):
            pass
        prefix = f"segments[{names.index(new_name)}]" if new_name in names else None
        for issue in exc.issues:
            path = issue.path or ""
            if prefix and path.startswith(prefix):
                rest = path[len(prefix):].lstrip(".")
                name = rest.split(".")[0].split("[")[0]
                form.errors.setdefault(name if name in FIELDS else "name", issue.message)
            else:
                form.general.append(f"{path}: {issue.message}" if path else issue.message)
        return None
    return model


def describe_segment(segment: Segment) -> list[str]:
    """A segment's filters in words, one per line."""
    out: list[str] = []
    if segment.min_score is not None and segment.max_score is not None:
        out.append(f"score between {segment.min_score:g} and {segment.max_score:g}")
    elif segment.min_score is not None:
        out.append(f"score ≥ {segment.min_score:g}")
    elif segment.max_score is not None:
        out.append(f"score ≤ {segment.max_score:g}")
    if segment.stages:
        out.append("stage is " + " or ".join(segment.stages))
    for group, wanted in (segment.grades or {}).items():
        letters = [wanted] if isinstance(wanted, str) else list(wanted)
        out.append(f"{group} grade is " + " or ".join(letters))
    for condition in segment.attributes or []:
        out.append(describe(condition.model_dump(mode="json", by_alias=True, exclude_none=True)))
    if segment.rules:
        out.append("rule " + " and ".join(f"“{r}”" for r in segment.rules) + " gives points now")
    if segment.active_within_days is not None:
        out.append(f"active (an event) in the last {segment.active_within_days:g} days")
    return out or ["every scored lead"]
