"""Checks that need the whole document: each finds problems with their exact path."""

from __future__ import annotations

import re

from leadscore.errors import ModelIssue
from leadscore.model.schema import DEFAULT_GROUP, GROUP_NAME_PATTERN, ScoringModel, did_you_mean


def document_issues(model: ScoringModel) -> list[ModelIssue]:
    """Problems that make the document invalid, in document order."""
    issues: list[ModelIssue] = []
    if model.score.min >= model.score.max:
        issues.append(
            ModelIssue("score", f"min ({model.score.min:g}) must be below max ({model.score.max:g})")
        )
    for name, group in model.groups.items():
        where = f"groups.{name}"
        if not re.fullmatch(GROUP_NAME_PATTERN, name):
            issues.append(
                ModelIssue(where, f"group name {name!r} may only hold letters, digits, '_' and '-'")
            )
        if group.min is not None and group.max is not None and group.min > group.max:
            issues.append(
                ModelIssue(where, f"min ({group.min:g}) must not be above max ({group.max:g})")
            )
        if group.grades is not None:
            if not group.grades:
                issues.append(ModelIssue(f"{where}.grades", "needs at least one grade"))
            thresholds = list(group.grades.items())
            for (prev_name, prev), (grade, value) in zip(thresholds, thresholds[1:], strict=False):
                if value >= prev:
                    issues.append(
                        ModelIssue(
                            f"{where}.grades.{grade}",
                            f"grades must be listed by falling threshold: {grade} ({value:g}) "
                            f"comes after {prev_name} ({prev:g})",
                        )
                    )
    seen: dict[str, int] = {}
    for index, rule in enumerate(model.rules):
        if rule.id in seen:
            issues.append(
                ModelIssue(
                    f"rules[{index}].id",
                    f"duplicate rule id '{rule.id}' (first used by rules[{seen[rule.id]}])",
                )
            )
        else:
            seen[rule.id] = index
    if model.stages is not None:
        if not model.stages:
            issues.append(ModelIssue("stages", "needs at least one stage (or leave stages out)"))
        names: dict[str, int] = {}
        for index, stage in enumerate(model.stages):
            if stage.name in names:
                issues.append(
                    ModelIssue(f"stages[{index}].name", f"duplicate stage name '{stage.name}'")
                )
            names.setdefault(stage.name, index)
            if index and stage.min_score >= model.stages[index - 1].min_score:
                issues.append(
                    ModelIssue(
                        f"stages[{index}].min_score",
                        f"stages must be listed by falling min_score: {stage.min_score:g} is not "
                        f"below {model.stages[index - 1].min_score:g} of '{model.stages[index - 1].name}'",
                    )
                )
        if model.stages and model.stages[-1].min_score > model.score.min:
            last = model.stages[-1]
            issues.append(
                ModelIssue(
                    f"stages[{len(model.stages) - 1}].min_score",
                    f"the last stage's min_score ({last.min_score:g}) must be at most score.min "
                    f"({model.score.min:g}) so that every lead has a stage - "
                    f"set '{last.name}' to min_score: {model.score.min:g}",
                )
            )
    if model.triggers or model.segments or model.email is not None:
        from leadscore.model.automation import automation_issues

        issues.extend(automation_issues(model))
    return issues


def document_warnings(model: ScoringModel) -> list[ModelIssue]:
    """Things that are valid but probably not meant."""
    warnings: list[ModelIssue] = []
    if model.groups:
        declared = list(model.groups)
        for index, rule in enumerate(model.rules):
            if rule.group not in model.groups and rule.group != DEFAULT_GROUP:
                hint = did_you_mean(rule.group, declared)
                warnings.append(
                    ModelIssue(
                        f"rules[{index}].group",
                        f"group '{rule.group}' is not declared under groups, so it has no "
                        f"min, max or grades{hint}",
                    )
                )
    if not model.rules:
        warnings.append(ModelIssue("rules", "the model has no rules: every lead scores score.min"))
    return warnings
