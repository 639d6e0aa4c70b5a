"""Read `routing_rules.yaml` into `Rules`, keeping the line and column of every value for error messages.

PyYAML's composer gives us a node tree with positions; we turn it into plain Python data ourselves (so a
duplicated key is an error instead of silently winning) and remember where each path came from. Pydantic
errors carry a path (`loc`), which we map back to that position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ivr.rules.schema import Rules

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rules (or prompts) file, printed as `FILE:LINE:COL: message`."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class RulesError(Exception):
    """The rules file could not be loaded; `problems` says every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Source:
    """The raw data of a YAML file and where each value in it stands (1-based line and column)."""

    file: str
    data: Any
    positions: dict[Location, tuple[int, int]]
    """Where each value stands."""
    key_positions: dict[Location, tuple[int, int]] = field(default_factory=dict)
    """Where the key of each mapping entry stands (for problems about the key itself)."""

    def position(self, loc: Location, at_key: bool = False) -> tuple[int, int]:
        """Position of the deepest part of `loc` that exists in the file."""
        if at_key and tuple(loc) in self.key_positions:
            return self.key_positions[tuple(loc)]
        for end in range(len(loc), -1, -1):
            found = self.positions.get(tuple(loc[:end]))
            if found:
                return found
        return (1, 1)

    def problem(self, loc: Location, message: str, at_key: bool = False) -> Problem:
        line, column = self.position(loc, at_key)
        return Problem(self.file, line, column, message)


class _BadValue(Exception):
    """A scalar YAML cannot turn into a value (an impossible date, an unknown tag)."""


def _scalar(node: yaml.Node) -> Any:
    """The Python value of a scalar node, by YAML's safe rules (so `2026-12-01` is a date)."""
    try:
        return yaml.constructor.SafeConstructor().construct_object(node)
    except (ValueError, OverflowError, yaml.YAMLError) as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise _BadValue(f"{node.value!r} is not a valid value: {problem}") from exc


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _construct(
    node: yaml.Node,
    loc: Location,
    positions: dict[Location, tuple[int, int]],
    key_positions: dict[Location, tuple[int, int]],
    problems: list[Problem],
    file: str,
) -> Any:
    positions[loc] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            line, column = _mark(key_node)
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(Problem(file, line, column, "a key must be a plain word or number"))
                continue
            key = key_node.value  # keys stay text: `1:` is menu key "1", `2026-12-24:` a name
            if key in result:
                problems.append(Problem(file, line, column, f"duplicate key {key!r}"))
            key_positions[(*loc, key)] = (line, column)
            result[key] = _construct(
                value_node, (*loc, key), positions, key_positions, problems, file
            )
            positions[(*loc, key)] = _mark(value_node)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, (*loc, index), positions, key_positions, problems, file)
            for index, item in enumerate(node.value)
        ]
    try:
        return _scalar(node)
    except _BadValue as exc:
        problems.append(Problem(file, *_mark(node), str(exc)))
        return None


def read_yaml(path: Path | str) -> Source:
    """Parse one YAML file into a `Source`; syntax errors become a `RulesError` with a position."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError([Problem(file, 1, 1, f"cannot read file: {exc.strerror}")]) from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise RulesError([Problem(file, line, column, f"YAML syntax: {exc.problem}")]) from exc
    if root is None:
        raise RulesError([Problem(file, 1, 1, "the file is empty")])
    positions: dict[Location, tuple[int, int]] = {}
    key_positions: dict[Location, tuple[int, int]] = {}
    problems: list[Problem] = []
    data = _construct(root, (), positions, key_positions, problems, file)
    if problems:
        raise RulesError(problems)
    return Source(file, data, positions, key_positions)


def _describe(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"unknown setting {error['loc'][-1]!r}"
    if error["type"] == "missing":
        return f"missing required setting {error['loc'][-1]!r}"
    return message


def _clean_loc(loc: tuple[Any, ...]) -> Location:
    # Pydantic inserts validator names for unions and tagged types ('str', 'function-after[...]').
    return tuple(
        part
        for part in loc
        if not (isinstance(part, str) and ("[" in part or part in {"str", "dict[str,str]"}))
    )


def parse_rules(source: Source) -> Rules:
    """Validate a `Source` against the schema; every error is reported with its position."""
    try:
        return Rules.model_validate(source.data)
    except ValidationError as exc:
        problems = []
        seen: set[tuple[Location, str]] = set()
        for error in exc.errors():
            loc = _clean_loc(error["loc"])
            message = _describe(error)
            if (loc, message) in seen:
                continue
            seen.add((loc, message))
            where = ".".join(str(p) for p in loc)
            # Problems with a key itself (a typo, a reserved menu key) point at the key.
            about_key = error["type"] == "extra_forbidden" or "[key]" in error["loc"]
            text = f"{where}: {message}" if where else message
            problems.append(source.problem(loc, text, at_key=about_key))
        raise RulesError(problems) from exc


def load_rules(path: Path | str) -> tuple[Rules, Source]:
    """Read and validate a rules file (shape only; see `check.check_rules` for cross-references)."""
    source = read_yaml(path)
    return parse_rules(source), source
