"""Finding places in a model document's YAML text by PyYAML's node marks, so that an edit
(learned points, stage cuts, a segment from the dashboard's form) replaces only those
lines and keeps everything else - comments, order, layout - byte for byte."""

from __future__ import annotations

import yaml


def mapping_value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value node of ``key`` in a mapping node (None: not a mapping, or no such key)."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == key:
                return value_node
    return None


def key_node(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The key node of ``key`` in a mapping node (present even when its value is empty)."""
    if isinstance(node, yaml.MappingNode):
        for key_, _ in node.value:
            if getattr(key_, "value", None) == key:
                return key_  # type: ignore[no-any-return]
    return None


def item_lines(sequence: yaml.SequenceNode, index: int, lines: list[str]) -> tuple[int, int]:
    """First and last line (0-based) of a block sequence's item ``index``; the blank and
    comment lines after it are left to what follows."""
    items = sequence.value
    first = items[index].start_mark.line
    end = items[index + 1].start_mark.line if index + 1 < len(items) else sequence.end_mark.line
    if index + 1 == len(items) and sequence.end_mark.column > 0:
        end += 1
    last = max(first, min(end, len(lines)) - 1)
    while last > first and (not lines[last].strip() or lines[last].lstrip().startswith("#")):
        last -= 1
    return first, last
