"""Read `routing_rules.yaml` into `Rules`, and the prompt catalogs into `Prompts`, keeping the line and
column of every value for error messages.

PyYAML's composer gives us a node tree with positions; we turn it into plain Python data ourselves (so a
duplicated key is an error instead of silently winning) and remember where each path came from. Pydantic
errors carry a path (`loc`), which we map back to that position.

The node tree comes from libyaml (PyYAML's C parser) when PyYAML was built with it: it gives the same
nodes and positions some ten times faster than the pure-Python parser, which stays as the fallback.
"""

from __future__ import annotations

import difflib
import string
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from ivr.rules.prompts import Catalog, DateWords, Prompts, SecretWords, placeholders
from ivr.rules.schema import PIN_IN_RULES, Rules, ValueAt
from ivr.rules.secrets import SECRETS

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rules (or prompts) file, printed as `FILE:LINE:COL: message`.

    A warning (`FILE:LINE:COL: warning: message`) is something the admin should look at that does
    not stop the rules from running; it never makes `ivr check` fail.
    """

    file: str
    line: int
    column: int
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        kind = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.column}: {kind}{self.message}"


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

    def warning(self, loc: Location, message: str, at_key: bool = False) -> Problem:
        line, column = self.position(loc, at_key)
        return Problem(self.file, line, column, message, "warning")


YamlLoader = type[yaml.SafeLoader] | type[yaml.CSafeLoader]

PURE_LOADER: YamlLoader = yaml.SafeLoader
FAST_LOADER: YamlLoader | None = (
    getattr(yaml, "CSafeLoader", None) if yaml.__with_libyaml__ else None
)
"""libyaml's parser with the same safe resolver; None when PyYAML was built without libyaml."""

YAML_LOADER: YamlLoader = FAST_LOADER or PURE_LOADER
"""The loader that composes every file (tests set it to `PURE_LOADER` to check the fallback)."""

_STR_TAG = "tag:yaml.org,2002:str"


class _Builder:
    """Turns the node tree of one file into plain data, recording the position of every value."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: dict[Location, tuple[int, int]] = {}
        self.key_positions: dict[Location, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        # One constructor for the whole file: creating one per scalar cost more than the parse.
        self._constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, loc: Location) -> Any:
        mark = node.start_mark
        self.positions[loc] = (mark.line + 1, mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, index)) for index, item in enumerate(node.value)]
        return self._scalar(node)

    def _mapping(self, node: yaml.MappingNode, loc: Location) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            mark = key_node.start_mark
            line, column = mark.line + 1, mark.column + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(line, column, "a key must be a plain word or number")
                continue
            key = key_node.value  # keys stay text: `1:` is menu key "1", `2026-12-24:` a name
            if key in result:
                self._problem(line, column, f"duplicate key {key!r}")
            self.key_positions[(*loc, key)] = (line, column)
            result[key] = self.build(value_node, (*loc, key))
        return result

    def _scalar(self, node: yaml.Node) -> Any:
        """The Python value of a scalar node, by YAML's safe rules (so `2026-12-01` is a date)."""
        if node.tag == _STR_TAG:  # most scalars: the constructor would return the text as it is
            return node.value
        try:
            return self._constructor.construct_object(node)
        except (ValueError, OverflowError, yaml.YAMLError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            mark = node.start_mark
            self._problem(
                mark.line + 1, mark.column + 1, f"{node.value!r} is not a valid value: {problem}"
            )
            return None

    def _problem(self, line: int, column: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, column, message))


def _compose(text: str, file: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=YAML_LOADER)
    except yaml.YAMLError as exc:
        error = exc
    if YAML_LOADER is not PURE_LOADER:
        # libyaml words some errors differently; a broken file is rare, so parse it again with the
        # pure-Python parser to report the same message and position as where libyaml is missing.
        try:
            yaml.compose(text, Loader=PURE_LOADER)
        except yaml.YAMLError as exc:
            error = exc
    raise RulesError([_syntax_problem(error, text, file)]) from error


def _syntax_problem(error: yaml.YAMLError, text: str, file: str) -> Problem:
    if isinstance(error, yaml.reader.ReaderError):  # a character YAML does not allow
        before = text[: error.position]
        line, column = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        character = error.character
        code = f"#x{character:04x}" if isinstance(character, int) else repr(character)
        return Problem(file, line, column, f"YAML syntax: character {code}: {error.reason}")
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    if mark and text[mark.index : mark.index + 1] == "\t":
        return Problem(
            file,
            line,
            column,
            "YAML syntax: a tab character: YAML indents with spaces only, "
            "so replace the tab with spaces",
        )
    return Problem(file, line, column, f"YAML syntax: {getattr(error, 'problem', None) or error}")


def read_yaml(path: Path | str) -> Source:
    """Parse one YAML file into a `Source`; syntax errors become a `RulesError` with a position."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError([Problem(file, 1, 1, f"cannot read file: {exc.strerror}")]) from exc
    root = _compose(text, file)
    if root is None:
        raise RulesError([Problem(file, 1, 1, "the file is empty")])
    builder = _Builder(file)
    data = builder.build(root, ())
    if builder.problems:
        raise RulesError(builder.problems)
    return Source(file, data, builder.positions, builder.key_positions)


def _describe(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    loc = error["loc"]
    if error["type"] == "extra_forbidden" and len(loc) == 3 and loc[::2] == ("agents", "pin"):
        return PIN_IN_RULES.format(agent=loc[1])
    if error["type"] == "extra_forbidden":
        return f"unknown setting {loc[-1]!r}"
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


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation can hold directly (through Optional, Annotated and unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    return []


def _items(annotation: Any) -> list[Any]:
    """What the values of a mapping (or the items of a tuple) of this annotation are."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _items(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [item for arg in typing.get_args(annotation) for item in _items(arg)]
    args = typing.get_args(annotation)
    if origin is dict and len(args) == 2:
        return [args[1]]
    if origin in (tuple, list) and args:
        return [args[0]]
    return []


def _settings_at(loc: Location) -> list[str]:
    """The setting names the schema allows in the mapping at `loc` (for "did you mean")."""
    annotations: list[Any] = [Rules]
    for part in loc:
        found: list[Any] = []
        for annotation in annotations:
            models = _models(annotation)
            for model in models:
                if isinstance(part, str) and part in model.model_fields:
                    found.append(model.model_fields[part].annotation)
            if not models:
                found += _items(annotation)
        annotations = found
    return sorted({name for a in annotations for m in _models(a) for name in m.model_fields})


def _misspelt(errors: list[Any]) -> dict[Location, str]:
    """Unknown setting (its loc) -> the setting it is a typo of, the missing one if there is one."""
    missing = {_clean_loc(e["loc"]) for e in errors if e["type"] == "missing"}
    found: dict[Location, str] = {}
    for error in errors:
        if error["type"] != "extra_forbidden":
            continue
        loc = _clean_loc(error["loc"])
        parent, key = loc[:-1], str(loc[-1])
        absent = [str(m[-1]) for m in missing if m[:-1] == parent]
        near = difflib.get_close_matches(key, absent, n=1, cutoff=0.6) or difflib.get_close_matches(
            key, _settings_at(parent), n=1, cutoff=0.75
        )
        if near:
            found[loc] = near[0]
    return found


def parse_rules(source: Source) -> Rules:
    """Validate a `Source` against the schema; every error is reported with its position."""
    try:
        return Rules.model_validate(source.data)
    except ValidationError as exc:
        problems = []
        seen: set[tuple[Location, str]] = set()
        errors = exc.errors()
        misspelt = _misspelt(errors)
        explained = {(*loc[:-1], name) for loc, name in misspelt.items()}
        for error in errors:
            loc = _clean_loc(error["loc"])
            if error["type"] == "missing" and loc in explained:
                continue  # the typo's message says it
            message = _describe(error)
            # Problems with a key itself (a typo, a reserved menu key) point at the key.
            about_key = error["type"] == "extra_forbidden" or "[key]" in error["loc"]
            if loc in misspelt:
                message += f": did you mean {misspelt[loc]!r}?"
            raised = (error.get("ctx") or {}).get("error")
            if isinstance(raised, ValueAt):  # a problem deeper inside the value: point at it
                loc, about_key = (*loc, *raised.path), raised.at_key
            if (loc, message) in seen:
                continue
            seen.add((loc, message))
            where = ".".join(str(p) for p in loc)
            text = f"{where}: {message}" if where else message
            problems.append(source.problem(loc, text, at_key=about_key))
        raise RulesError(problems) from exc


AUDIO_SUFFIXES = (".mp3", ".wav")
"""The recordings a catalog's audio directory may hold."""


def _read_catalog(path: Path, audio_root: Path) -> tuple[Catalog, Source]:
    source = read_yaml(path)
    data = source.data
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise RulesError([source.problem((), "a prompt catalog must be a mapping")])
    for required in ("language", "name", "say_language", "voice", "locale", "prompts"):
        if required not in data:
            problems.append(source.problem((), f"missing required setting {required!r}"))
    texts = data.get("prompts")
    if "prompts" in data and not isinstance(texts, dict):
        problems.append(source.problem(("prompts",), "'prompts' must map prompt ids to texts"))
    if problems:
        raise RulesError(problems)
    assert isinstance(texts, dict)
    for prompt_id, text in texts.items():
        if not isinstance(text, str) or not text.strip():
            problems.append(source.problem(("prompts", prompt_id), "a prompt needs a text"))
            continue
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
        except ValueError as exc:
            problems.append(source.problem(("prompts", prompt_id), f"bad placeholder: {exc}"))
            continue
        for name in fields:
            if not name.isidentifier():
                problems.append(
                    source.problem(
                        ("prompts", prompt_id),
                        f"placeholder {{{name}}} must be a name like {{brand}}; "
                        "write {{ and }} for literal braces",
                    )
                )
    phrases = _read_phrases(source, data.get("phrases"), problems)
    dates = _read_dates(source, data.get("dates"), problems)
    secret_words = _read_secret_words(source, data.get("secret_words"), problems)
    speech_language = data.get("speech_language", "")
    if not isinstance(speech_language, str):
        problems.append(source.problem(("speech_language",), "must be a language tag like en-US"))
    if path.stem != data["language"]:
        problems.append(
            source.problem(
                ("language",), f"file {path.name} declares language {data['language']!r}"
            )
        )
    if problems:
        raise RulesError(problems)
    audio_dir = audio_root / str(data["language"])
    audio = {}
    if audio_dir.is_dir():
        for file in sorted(audio_dir.iterdir()):
            if file.suffix in AUDIO_SUFFIXES and file.stem in texts:
                audio[file.stem] = file.name
    catalog = Catalog(
        language=str(data["language"]),
        name=str(data["name"]),
        say_language=str(data["say_language"]),
        voice=str(data["voice"]),
        locale=str(data["locale"]),
        texts={str(k): str(v) for k, v in texts.items()},
        audio=audio,
        speech_language=str(speech_language),
        phrases=phrases,
        dates=dates,
        secret_words=secret_words,
    )
    return catalog, source


_DATE_PLACEHOLDERS = {"at_time": frozenset({"day", "time"}), "on_date": frozenset({"date"})}


def _read_dates(source: Source, value: object, problems: list[Problem]) -> DateWords:
    """A catalog's `dates:` (`at_time: "{day} a las {time}"`, `on_date: "el {date}"`)."""
    if value is None:
        return DateWords()
    if not isinstance(value, dict):
        problems.append(source.problem(("dates",), "'dates' must map at_time and on_date to texts"))
        return DateWords()
    found: dict[str, str] = {}
    for key, text in value.items():
        names = _DATE_PLACEHOLDERS.get(str(key))
        if names is None:
            problems.append(source.problem(("dates", key), "only at_time and on_date go here"))
        elif not isinstance(text, str) or placeholders(text) != names:
            wanted = " and ".join(f"{{{name}}}" for name in sorted(names))
            problems.append(source.problem(("dates", key), f"a text with {wanted} and no other"))
        else:
            found[str(key)] = text
    return DateWords(**found)


_SECRET_WORD_KEYS = ("secrets", "asks", "never", "no")


def _read_secret_words(
    source: Source, value: object, problems: list[Problem]
) -> SecretWords | None:
    """A catalog's `secret_words:` (`secrets: {password: [contraseña]}`, `asks: [introduzca]`,
    `never: [nunca]`, `no: ["no"]`): every key is needed, so that a notice naming a secret to say
    we never ask for it is read as the service reads it in the built-in languages."""
    if value is None:
        return None
    where: Location = ("secret_words",)
    if not isinstance(value, dict):
        problems.append(
            source.problem(where, "'secret_words' must map secrets, asks, never and no to words")
        )
        return None
    before = len(problems)
    for key in value:
        if key not in _SECRET_WORD_KEYS:
            problems.append(
                source.problem(
                    (*where, key), "only secrets, asks, never and no go here", at_key=True
                )
            )
    for key in _SECRET_WORD_KEYS:
        if key not in value:
            message = f"missing {key!r} (a list of words)"
            problems.append(source.problem(where, message, at_key=True))
    secrets: list[tuple[str, tuple[str, ...]]] = []
    named = value.get("secrets")
    if "secrets" in value and not isinstance(named, dict):
        problems.append(
            source.problem(
                (*where, "secrets"),
                f"'secrets' must map each secret ({', '.join(SECRETS)}) to its names",
            )
        )
    elif isinstance(named, dict):
        for secret, items in named.items():
            if secret not in SECRETS:
                near = difflib.get_close_matches(str(secret), SECRETS, n=1, cutoff=0.6)
                hint = f": did you mean {near[0]!r}?" if near else ""
                problems.append(
                    source.problem(
                        (*where, "secrets", secret),
                        f"unknown secret {secret!r}{hint} (the secrets: {', '.join(SECRETS)})",
                        at_key=True,
                    )
                )
                continue
            secrets.append(
                (secret, _secret_word_list(source, (*where, "secrets", secret), items, problems))
            )
    lists = {
        key: _secret_word_list(source, (*where, key), value[key], problems)
        for key in _SECRET_WORD_KEYS[1:]
        if key in value
    }
    if len(problems) > before:
        return None
    return SecretWords(
        secrets=tuple(secrets), asks=lists["asks"], never=lists["never"], no=lists["no"]
    )


def _secret_word_list(
    source: Source, loc: Location, items: object, problems: list[Problem]
) -> tuple[str, ...]:
    if not isinstance(items, list) or not items:
        problems.append(source.problem(loc, "give a list of words"))
        return ()
    words = []
    for index, item in enumerate(items):
        if isinstance(item, bool):
            message = f'YAML reads this word as {str(item).lower()}: write it in quotes ("no")'
        elif not isinstance(item, str) or not item.strip("* "):
            message = "a word needs letters"
        elif any(
            "*" in part.rstrip("*") or part.startswith("*") or part.endswith("**")
            for part in item.split()
        ):
            message = "'*' (any ending) may only end a word, once"
        else:
            words.append(" ".join(item.split()))
            continue
        problems.append(source.problem((*loc, index), message))
    return tuple(words)


def _read_phrases(
    source: Source, value: object, problems: list[Problem]
) -> dict[str, tuple[str, ...]]:
    """A catalog's `phrases`: label prompt id (or `operator`) -> the phrases callers say for it."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(source.problem(("phrases",), "'phrases' must map option labels to lists"))
        return {}
    phrases: dict[str, tuple[str, ...]] = {}
    for key, items in value.items():
        if not isinstance(items, list) or not items:
            problems.append(source.problem(("phrases", key), "give a list of phrases"))
            continue
        kept = []
        for index, item in enumerate(items):
            if not isinstance(item, str | int | float) or not str(item).strip():
                problems.append(source.problem(("phrases", key, index), "a phrase needs words"))
                continue
            kept.append(str(item).strip())
        phrases[str(key)] = tuple(kept)
    return phrases


def load_prompts(
    directory: Path | str, languages: tuple[str, ...]
) -> tuple[Prompts, dict[str, Source]]:
    """Load the catalog of each language; a missing or malformed catalog is a `RulesError`."""
    directory = Path(directory)
    audio_root = directory / "audio"
    catalogs: dict[str, Catalog] = {}
    sources: dict[str, Source] = {}
    problems: list[Problem] = []
    for language in languages:
        path = directory / f"{language}.yaml"
        if not path.exists():
            problems.append(Problem(str(path), 1, 1, f"no prompt catalog for language {language}"))
            continue
        try:
            catalogs[language], sources[language] = _read_catalog(path, audio_root)
        except RulesError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RulesError(problems)
    return Prompts(catalogs=catalogs, audio_root=audio_root), sources


def load_rules(path: Path | str) -> tuple[Rules, Source]:
    """Read and validate a rules file (shape only; see `check.check_rules` for cross-references)."""
    source = read_yaml(path)
    return parse_rules(source), source
