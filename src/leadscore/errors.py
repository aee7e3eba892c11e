"""One root error type; every error knows where the problem is.

The CLI turns any :class:`LeadscoreError` into one line on stderr and exit code 2;
the API turns it into a 4xx JSON body. Nothing else catches them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class LeadscoreError(Exception):
    """Root of every error leadscore raises on purpose."""

    exit_code = 2

    def one_line(self) -> str:
        """The message as one line, for a terminal."""
        return " ".join(str(self).split("\n"))


UNREADABLE = "cannot read the file"  # a model file that could not be read (model.loading)


@dataclass(frozen=True)
class ModelIssue:
    """One problem in a scoring-model document."""

    path: str  # e.g. "rules[3].when.event"
    message: str
    line: int | None = None  # 1-based line in the YAML/JSON source, when known

    def __str__(self) -> str:
        where = self.path or "(document)"
        if self.line is not None:
            where = f"{where} (line {self.line})"
        return f"{where}: {self.message}"


class ModelError(LeadscoreError):
    """A scoring-model document is invalid; it is refused as a whole."""

    def __init__(self, issues: list[ModelIssue], source: str | None = None) -> None:
        self.issues = issues
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        if self._unreadable():
            return f"{prefix}{self.issues[0].message}"  # not a model at all: a missing file, a directory
        if len(self.issues) == 1:
            return f"{prefix}invalid model: {self.issues[0]}"
        lines = [f"{prefix}invalid model ({len(self.issues)} problems):"]
        lines += [f"  {issue}" for issue in self.issues]
        return "\n".join(lines)

    def _unreadable(self) -> bool:
        issue = self.issues[0]
        return len(self.issues) == 1 and not issue.path and issue.message.startswith(UNREADABLE)

    def one_line(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        if self._unreadable():
            return self._render()
        first = f"{prefix}invalid model: {self.issues[0]}"
        if len(self.issues) > 1:
            first += f" (and {len(self.issues) - 1} more problem(s); run `leadscore model check`)"
        return first


@dataclass
class InputError(LeadscoreError):
    """A data file (leads, events) cannot be read as it is."""

    message: str
    file: str | None = None
    row: int | None = None  # 1-based data row (the header is not counted)
    column: str | None = None
    details: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column '{self.column}'")
        where = ", ".join(parts)
        return f"{where}: {self.message}" if where else self.message


class UsageError(LeadscoreError):
    """A command was called with options that do not fit together."""
