"""Loading a scoring model from YAML or JSON text, with messages that name the place."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from leadscore.errors import UNREADABLE, ModelError, ModelIssue
from leadscore.model.checks import document_issues
from leadscore.model.schema import TAG_SUFFIX, ScoringModel, _describe


class _Yaml12Loader(yaml.SafeLoader):
    """YAML with the 1.2 core booleans: `on`, `yes`, `no` and `NO` (Norway) stay text,
    and dates stay text too. Numbers follow the 1.2 core schema as well: `1e3` is a
    number, while `1:30` (a 1.1 base-60 number), `1_000` and `0b11` stay text, and
    `017` is seventeen (not a 1.1 octal 15)."""


_REPLACED_TAGS = (
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
)
_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# int before float: a plain `17` matches both patterns, the first one added wins
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _construct_int_12(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int_12)


class _QuotingDumper(yaml.SafeDumper):
    """Quotes every text that a YAML 1.1 reader or our 1.2 loader would read as something
    else (`NO`, `1e3`, `0o17`, ...), so that a dumped model reads back the same."""


for _first, _resolvers in _Yaml12Loader.yaml_implicit_resolvers.items():
    for _tag, _regexp in _resolvers:
        _QuotingDumper.add_implicit_resolver(_tag, _regexp, [_first])


def _construct_mapping_no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_Yaml12Loader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping_no_duplicates
)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects, refusing a key given twice (as YAML loading does)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def parse_yaml(text: str) -> Any:
    """Parse YAML with 1.2 booleans and no implicit dates (also reads JSON)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.endswith(TAG_SUFFIX):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    return tuple(p for p in loc if not (isinstance(p, str) and p.endswith(TAG_SUFFIX)))


_MESSAGES = {
    "missing": "required key is missing",
    "literal_error": None,  # keep pydantic's, it lists the allowed values
}


def _message(error: Any) -> str:
    kind = error["type"]
    loc = _clean_loc(error["loc"])
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error" and loc == ("version",):
        return f"must be 1 (this is the version of the language), got {error.get('input')!r}"
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "id":
        return (
            f"rule id {error.get('input')!r} may only hold lower-case letters, digits, '_' and '-'"
        )
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "group":
        return f"group name {error.get('input')!r} may only hold letters, digits, '_' and '-'"
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "secret":
        return ("the secret must name an environment variable, as ${WEBHOOK_SECRET}: a literal "
                "secret is refused (the model is stored in the database and shown by GET /v1/model; a "
                "secret must not be)")
    if kind in ("list_type", "dict_type"):
        want = "a list" if kind == "list_type" else "a mapping"
        return f"expected {want}, got {type(error.get('input')).__name__}"
    if kind == "too_short" and loc and loc[-1] in ("in", "not_in", "all", "any"):
        return "needs at least one item"
    msg: str = error["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = None
            for key_node, value_node in node.value:
                if getattr(key_node, "value", None) == str(part):
                    found = value_node
                    line = key_node.start_mark.line + 1
                    break
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
        if node is None:
            break
    return line


def _issues_from_validation(exc: ValidationError, root: yaml.Node | None) -> list[ModelIssue]:
    issues: list[ModelIssue] = []
    seen: set[tuple[str, str]] = set()
    for error in exc.errors(include_url=False):
        loc = _clean_loc(error["loc"])
        path, message = _path(error["loc"]), _message(error)
        if (path, message) in seen:
            continue
        seen.add((path, message))
        issues.append(ModelIssue(path, message, _line_of(root, loc)))
    return issues


def parse_model(text: str, *, source: str | None = None, fmt: str | None = None, stored: bool = False) -> ScoringModel:
    """Parse and validate a model document (YAML or JSON text).

    Raises :class:`~leadscore.errors.ModelError` listing every problem found. ``stored``:
    the document of a stored version, read as it was accepted (a version stored before
    texts with a NUL character were refused keeps working; a new model with one is refused).
    """
    fmt = fmt or ("json" if source and source.lower().endswith(".json") else "yaml")
    root: yaml.Node | None = None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys) if fmt == "json" else parse_yaml(text)
    except _DuplicateKey as exc:
        raise ModelError([ModelIssue("", f"duplicate key '{exc.key}' in the JSON document")], source) from None
    except json.JSONDecodeError as exc:
        raise ModelError(
            [ModelIssue("", f"not valid JSON: {exc.msg} (column {exc.colno})", exc.lineno)], source
        ) from None
    except yaml.reader.ReaderError as exc:
        raise ModelError([_reader_issue(text, exc)], source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark is not None else None
        raise ModelError([ModelIssue("", f"not valid YAML: {problem}", line)], source) from None
    try:
        root = yaml.compose(text, Loader=_Yaml12Loader)
    except yaml.YAMLError:  # pragma: no cover - parsed above, so this composes too
        root = None
    if not isinstance(data, dict):
        got = "an empty document" if data is None else _describe(data)
        raise ModelError(
            [ModelIssue("", f"a model is a mapping with version, name and rules; got {got}", 1)], source
        )
    unstorable = [] if stored else _unstorable_issues(data, root)
    try:
        model = ScoringModel.model_validate(data)
    except ValidationError as exc:
        raise ModelError(_with(unstorable, _issues_from_validation(exc, root)), source) from None
    issues = document_issues(model)
    if issues or unstorable:
        located = [ModelIssue(i.path, i.message, _line_of(root, _loc_of(i.path))) for i in issues]
        raise ModelError(_with(unstorable, located), source)
    return model


def _reader_issue(text: str, exc: yaml.reader.ReaderError) -> ModelIssue:
    """A character YAML does not allow in a document (a raw NUL, another control character,
    a lone surrogate) at its line, column and, where the rest of the document parses, its
    field: PyYAML's own message gives only its position in the text."""
    position = min(max(exc.position, 0), len(text))
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    character = exc.character if isinstance(exc.character, str) else chr(exc.character)
    what = f"U+{ord(character):04X}" if character else "a character"
    path = ""
    with contextlib.suppress(yaml.YAMLError, ValueError):  # the document with a space in its place: its field
        path = _path_at(yaml.compose(text[:position] + " " + text[position + 1:], Loader=_Yaml12Loader), position)
    hint = ("remove it: no text of a model may hold a NUL character" if character == "\0"
            else "remove it, or write it as an escape in a double-quoted text")
    return ModelIssue(path, f"not valid YAML: the character {what} at line {line}, column {column} is not "
                            f"allowed in a YAML document ({hint})", line)


def _path_at(root: yaml.Node | None, position: int) -> str:
    """The path (``rules[3].label``) of the value of ``root`` whose text holds the character
    at ``position`` (of the mapping, for a key); ``""`` when it lies between them."""
    loc: list[int | str] = []
    node = root
    while node is not None:
        inside = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.start_mark.index <= position < key_node.end_mark.index:
                    return _path(tuple(loc))  # a key: the mapping that holds it
                if value_node.start_mark.index <= position < value_node.end_mark.index:
                    loc.append(str(key_node.value))
                    inside = value_node
                    break
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                if item.start_mark.index <= position < item.end_mark.index:
                    loc.append(index)
                    inside = item
                    break
        elif isinstance(node, yaml.ScalarNode):
            return _path(tuple(loc))
        node = inside
    return ""


def _unstorable_issues(data: Any, root: yaml.Node | None) -> list[ModelIssue]:
    """A text of the document that holds a NUL character (``"\\0"`` in YAML, ``"\\u0000"``
    in JSON), or a name that holds one, at its place: the schema takes it, but no database
    stores it the same (PostgreSQL refuses it: the model's name, stage names, labels, event
    types and values are stored and queried), so it is refused as every door refuses one
    (:func:`leadscore.ingest.normalise.unstorable`). Numbers that are not finite are the
    schema's to refuse (``Number``, ``Scalar``)."""
    # imported here: leadscore.ingest imports the engine, which imports this package
    from leadscore.ingest.normalise import unstorable

    return [ModelIssue(e.column or "", e.detail, _line_of(root, _loc_of(e.column or ""))) for e in unstorable(data)]


def _with(first: list[ModelIssue], more: list[ModelIssue]) -> list[ModelIssue]:
    """``first``, then the issues of ``more`` at other places."""
    taken = {issue.path for issue in first}
    return first + [issue for issue in more if issue.path not in taken]


def _loc_of(path: str) -> tuple[int | str, ...]:
    loc: list[int | str] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        loc.append(int(index) if index else name)
    return tuple(loc)


def load_model(path: str | Path) -> ScoringModel:
    """Read a model file (``.yaml``, ``.yml`` or ``.json``)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelError([ModelIssue("", f"{UNREADABLE}: {exc.strerror}")], str(path)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ModelError(
            [ModelIssue("", f"not UTF-8 text (byte {exc.start}); save the file as UTF-8")], str(path)
        ) from None
    fmt = "json" if path.suffix.lower() == ".json" else "yaml"
    return parse_model(text, source=str(path), fmt=fmt)


def model_json_schema() -> dict[str, Any]:
    """The JSON Schema of the language, for editors."""
    schema = ScoringModel.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def dump_model(model: ScoringModel) -> str:
    """The model as YAML (canonical form, defaults left out)."""
    data = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return yaml.dump(data, Dumper=_QuotingDumper, sort_keys=False, allow_unicode=True)
