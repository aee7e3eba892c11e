"""Edit a model document's numbers in place, keeping its comments, order and layout.

``model learn`` rewrites rules' ``points`` and ``thresholds --write-stages`` rewrites
stages' ``min_score``. Both replace the scalar's text at its exact position in the
source (found with PyYAML's node marks), so everything else stays byte for byte. When a
value cannot be placed that way (a JSON document, a missing ``stages`` list), the model
is written in canonical form with :func:`~leadscore.model.dump_model` instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from leadscore.model.loading import _Yaml12Loader, dump_model, parse_model
from leadscore.model.schema import ScoringModel, Stage
from leadscore.model.yaml_nodes import item_lines, mapping_value


def format_number(value: float) -> str:
    """Whole numbers without decimals, others with up to 2."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _splice(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def set_points(text: str, points: Mapping[str, float | None], *, source: str = "model") -> str:
    """Replace rules' points (``None``: comment the rule out); keep everything else."""
    root = yaml.compose(text, Loader=_Yaml12Loader)
    rules = mapping_value(root, "rules")
    if not isinstance(rules, yaml.SequenceNode):
        raise ValueError("the document has no rules list")
    edits: list[tuple[int, int, str]] = []
    lines = text.splitlines(keepends=True)
    commented: list[tuple[int, int, str]] = []
    for index, item in enumerate(rules.value):
        rule_id = str(getattr(mapping_value(item, "id"), "value", ""))
        if rule_id not in points:
            continue
        value = points[rule_id]
        node = mapping_value(item, "points")
        if node is None:
            continue
        if value is None:
            if rules.flow_style or index + 1 < len(rules.value) and rules.value[index + 1].start_mark.line == item.start_mark.line:
                raise ValueError(f"rule '{rule_id}' shares its line with another rule; cannot comment it out")
            first, last = item_lines(rules, index, lines)
            commented.append((first, last, str(rule_id)))
            continue
        edits.append((node.start_mark.index, node.end_mark.index, format_number(value)))
    text = _splice(text, edits)
    if commented:
        lines = text.splitlines(keepends=True)
        for first, last, rule_id in sorted(commented, reverse=True):
            indent = len(lines[first]) - len(lines[first].lstrip())
            body = [" " * indent + "# " + line[indent:] if line.strip() else line for line in lines[first:last + 1]]
            note = " " * indent + f"# model learn: '{rule_id}' carries no weight on these outcomes; disabled\n"
            lines[first:last + 1] = [note, *body]
        text = "".join(lines)
    parse_model(text, source=source)
    return text


def _kept_stages(stages: list[Stage], cuts: Mapping[str, float]) -> list[bool]:
    """Which stages stay: every cut stage, and the others that still fit between the cuts."""
    values = [cuts.get(stage.name, stage.min_score) for stage in stages]
    keep = []
    for i, stage in enumerate(stages):
        if stage.name in cuts:
            keep.append(True)
            continue
        above = [values[j] for j in range(i) if stages[j].name in cuts]
        below = [values[j] for j in range(i + 1, len(stages)) if stages[j].name in cuts]
        upper = above[-1] if above else float("inf")
        lower = below[0] if below else float("-inf")
        keep.append(lower < stage.min_score < upper)
    return keep


def set_stages(text: str, model: ScoringModel, cuts: Mapping[str, float], *,
               source: str = "model") -> tuple[str, list[str]]:
    """Set the ``min_score`` of the named stages; return the text and the stages dropped.

    A stage that no longer fits between the new cut-offs (a ``Warm`` at 20 when MQL
    moves to 15) is removed. When every named stage exists in a block-style ``stages``
    list, the file is edited in place (comments kept); otherwise the stages are rebuilt
    and the model written in canonical form.
    """
    stages = list(model.stages or [])
    names = [s.name for s in stages]
    root = yaml.compose(text, Loader=_Yaml12Loader)
    node = mapping_value(root, "stages")
    if isinstance(node, yaml.SequenceNode) and all(name in names for name in cuts):
        keep = _kept_stages(stages, cuts)
        dropped = [stage.name for stage, kept in zip(stages, keep, strict=True) if not kept]
        edits: list[tuple[int, int, str]] = []
        removals: list[tuple[int, int]] = []
        one_per_line = len({item.start_mark.line for item in node.value}) == len(node.value)
        lines = text.splitlines(keepends=True)
        for index, (item, kept) in enumerate(zip(node.value, keep, strict=True)):
            name = str(getattr(mapping_value(item, "name"), "value", ""))
            score = mapping_value(item, "min_score")
            if not kept:
                removals.append(item_lines(node, index, lines))
            elif name in cuts and score is not None:
                edits.append((score.start_mark.index, score.end_mark.index, format_number(cuts[name])))
        if one_per_line and not node.flow_style:
            edited = _splice(text, edits)
            lines = edited.splitlines(keepends=True)
            for first, last in sorted(removals, reverse=True):
                del lines[first:last + 1]
            edited = "".join(lines)
            parse_model(edited, source=source)
            return edited, dropped
    ordered = sorted(
        [Stage(name=n, min_score=v) for n, v in cuts.items()] + [s for s in stages if s.name not in cuts],
        key=lambda s: -s.min_score,
    )
    keep = _kept_stages(ordered, cuts)
    merged = [s for s, kept in zip(ordered, keep, strict=True) if kept]
    dropped = [s.name for s, kept in zip(ordered, keep, strict=True) if not kept]
    if merged[-1].min_score > model.score.min:
        merged.append(Stage(name="New" if "New" not in [s.name for s in merged] else "Other", min_score=model.score.min))
    rebuilt = model.model_copy(update={"stages": merged})
    object.__setattr__(rebuilt, "__pydantic_fields_set__", set(model.model_fields_set) | {"stages"})
    out = dump_model(rebuilt)
    parse_model(out, source=source)
    return out, dropped
