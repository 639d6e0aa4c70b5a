"""Which Twilio `<Say>` voice speaks which `<Say>` language: the table `ivr check`, the renderer and the
simulator share, so that a voice that cannot speak its language is an error everywhere.

Twilio's <Say> page: "If you are using both the language and voice attributes, ensure that the voice
value you use is available for the language. Invalid combinations of voice and language may result in
error and <Say> instruction failure." The voices are Twilio's names for Amazon Polly voices
(`Polly.Vicki`, neural ones end in `-Neural`) and Google voices (`Google.de-DE-Standard-A`), each for one
language. The table is data: `ivr/voices.yaml` ships the voices of the four languages of the shipped
rules, and the rules' `voices:` section adds more (`BUILT_IN.extended`), so adding a language is a rules
change. A voice in neither is refused, which is safer than a caller hearing German read by a Mandarin
voice.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from types import MappingProxyType
from typing import Literal, cast, get_args

import yaml

Provider = Literal["Polly", "Google"]
Engine = Literal[
    "polly-standard",
    "polly-neural",
    "polly-generative",
    "google-standard",
    "google-wavenet",
    "google-neural2",
]
ENGINES: tuple[Engine, ...] = get_args(Engine)

_NAME_FORMS: dict[str, tuple[str, str]] = {
    "polly-standard": (r"Polly\.[A-Z][a-z]+", "Polly.<Name>"),
    "polly-neural": (r"Polly\.[A-Z][a-z]+-Neural", "Polly.<Name>-Neural"),
    "polly-generative": (r"Polly\.[A-Z][a-z]+-Generative", "Polly.<Name>-Generative"),
    "google-standard": (
        r"Google\.{language}-Standard-[A-Z]",
        "Google.{language}-Standard-<letter>",
    ),
    "google-wavenet": (r"Google\.{language}-Wavenet-[A-Z]", "Google.{language}-Wavenet-<letter>"),
    "google-neural2": (r"Google\.{language}-Neural2-[A-Z]", "Google.{language}-Neural2-<letter>"),
}
"""Each engine's form of a Twilio voice name (regular expression, and as an admin reads it)."""

LANGUAGE_TAG = re.compile(
    r"[a-z]{2,3}(?:-[A-Z][a-z]{3})?(?:-(?:[A-Z]{2}|[0-9]{3}))?(?:-[A-Z0-9]{3,8})?"
)
"""A `<Say language>` value: language, optional script, region, optional variant (es-ES, cmn-CN,
es-419, en-GB-WLS)."""

_SUGGESTED = 4
"""How many voices of the language a message offers instead of a wrong one."""


@dataclass(frozen=True)
class Voice:
    """One voice `<Say voice="...">` accepts, and the one `<Say language="...">` it speaks."""

    name: str
    language: str
    engine: Engine

    @property
    def provider(self) -> Provider:
        return "Polly" if self.engine.startswith("polly-") else "Google"


def entry_problems(name: str, language: str, engine: str, table: VoiceTable) -> dict[str, str]:
    """What is wrong with a voice the rules add to `table`, by field (`name`, `language`,
    `engine`); empty when it can be added."""
    problems: dict[str, str] = {}
    if not LANGUAGE_TAG.fullmatch(language):
        problems["language"] = (
            f"{language!r} is not a language tag like es-ES (language, then region: "
            "Twilio's <Say language>)"
        )
    forms = _NAME_FORMS.get(engine)
    if forms is None:
        problems["engine"] = f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}"
    elif "language" not in problems:
        pattern, form = forms
        if not re.fullmatch(pattern.replace("{language}", re.escape(language)), name):
            problems["name"] = (
                f"a {engine} voice for {language} is named {form.format(language=language)}, "
                f"not {name!r}"
            )
    known = table.voices.get(name)
    if known is not None and known.language != language and "name" not in problems:
        problems["name"] = f"voice {name!r} speaks {known.language}, not {language}"
    return problems


@dataclass(frozen=True)
class VoiceTable:
    """Every voice `ivr check` accepts, by the name written in a catalog's `voice:`."""

    voices: Mapping[str, Voice]

    def extended(self, voices: Iterable[Voice]) -> VoiceTable:
        """This table and `voices` (the rules' `voices:`, checked by `entry_problems`)."""
        table = dict(self.voices)
        table.update((voice.name, voice) for voice in voices)
        return VoiceTable(MappingProxyType(table))

    def voices_for(self, language: str) -> tuple[str, ...]:
        """The voices that speak `language` (a `<Say language>` value), in the table's order."""
        return tuple(voice.name for voice in self.voices.values() if voice.language == language)

    def problem(self, voice: str, language: str) -> str | None:
        """None when `voice` speaks `language` (a `<Say language>` value); else what is wrong, for
        an admin."""
        known = self.voices.get(voice)
        if known is not None and known.language == language:
            return None
        candidates = self.voices_for(language)
        if not candidates:
            languages = sorted({v.language for v in self.voices.values()})
            none = f"no voice in the voice table speaks {language!r}"
            if language.lower().startswith("zh"):
                return f"{none} (Mandarin is cmn-CN); the table has {', '.join(languages)}"
            return (
                f"{none}; the table has {', '.join(languages)}: add the voice under `voices:` in "
                f"the rules (name, language: {language}, engine)"
            )
        offer = ", ".join(candidates[:_SUGGESTED]) + (
            ", ..." if len(candidates) > _SUGGESTED else ""
        )
        if known is not None:
            return f"voice {voice!r} speaks {known.language}, not {language}: use one of {offer}"
        by_case = {name.lower(): name for name in candidates}
        near = by_case.get(voice.lower()) or next(
            iter(difflib.get_close_matches(voice, candidates, n=1, cutoff=0.75)), None
        )
        if near is not None:
            return f"unknown voice {voice!r}: did you mean {near!r}?"
        return f"unknown voice {voice!r} for {language}: use one of {offer}"


def read_table(text: str) -> VoiceTable:
    """The table of a voices file (`ivr/voices.yaml`'s form); a malformed entry is a ValueError."""
    entries = (yaml.safe_load(text) or {}).get("voices") or []
    voices: dict[str, Voice] = {}
    table = VoiceTable(
        MappingProxyType(voices)
    )  # a live view: each entry is checked against those before
    for index, entry in enumerate(entries):
        name, language, engine = (str(entry.get(key, "")) for key in ("name", "language", "engine"))
        problems = entry_problems(name, language, engine, table)
        if problems:
            raise ValueError(f"voice {index + 1} ({name}): {'; '.join(problems.values())}")
        voices[name] = Voice(name, language, cast(Engine, engine))
    return table


BUILT_IN = read_table(files("ivr").joinpath("voices.yaml").read_text(encoding="utf-8"))
"""The voices shipped with the package (`ivr/voices.yaml`)."""
