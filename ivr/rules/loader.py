"""Read `routing_rules.yaml` into `Rules`, keeping the line and column of every value for error messages.

PyYAML's composer gives us a node tree with positions; we turn it into plain Python data ourselves (so a
duplicated key is an error instead of silently winning) and remember where each path came from. Pydantic
errors carry a path (`loc`), which we map back to that position.
"""

from __future__ import annotations

from dataclasses import dataclass
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

    def position(self, loc: Location) -> tuple[int, int]:
        """Position of the deepest part of `loc` that exists in the file."""
        for end in range(len(loc), -1, -1):
            found = self.positions.get(tuple(loc[:end]))
            if found:
                return found
        return (1, 1)

    def problem(self, loc: Location, message: str) -> Problem:
        line, column = self.position(loc)
        return Problem(self.file, line, column, message)


def _scalar(node: yaml.Node) -> Any:
    """The Python value of a scalar node, by YAML's safe rules (so `2026-12-01` is a date)."""
    return yaml.constructor.SafeConstructor().construct_object(node)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _construct(
    node: yaml.Node,
    loc: Location,
    positions: dict[Location, tuple[int, int]],
    problems: list[Problem],
    file: str,
) -> Any:
    positions[loc] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if isinstance(key, int | float | bool):
                key = str(key_node.value)  # `1:` is a menu key "1", not the number one
            if key in result:
                line, column = _mark(key_node)
                problems.append(Problem(file, line, column, f"duplicate key {key!r}"))
            result[key] = _construct(value_node, (*loc, key), positions, problems, file)
            positions[(*loc, key)] = _mark(value_node)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, (*loc, index), positions, problems, file)
            for index, item in enumerate(node.value)
        ]
    return _scalar(node)


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
    problems: list[Problem] = []
    data = _construct(root, (), positions, problems, file)
    if problems:
        raise RulesError(problems)
    return Source(file, data, positions)


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
            problems.append(source.problem(loc, f"{where}: {message}" if where else message))
        raise RulesError(problems) from exc


def load_rules(path: Path | str) -> tuple[Rules, Source]:
    """Read and validate a rules file (shape only; see `check.check_rules` for cross-references)."""
    source = read_yaml(path)
    return parse_rules(source), source
