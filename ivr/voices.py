"""Which Twilio `<Say>` voice speaks which `<Say>` language: the table `ivr check`, the renderer and the
simulator share, so that a voice that cannot speak its language is an error everywhere.

Twilio's <Say> page: "If you are using both the language and voice attributes, ensure that the voice
value you use is available for the language. Invalid combinations of voice and language may result in
error and <Say> instruction failure." The voices are Twilio's names for Amazon Polly voices
(`Polly.Vicki`, neural ones end in `-Neural`) and Google voices (`Google.de-DE-Standard-A`), each for one
language; only the four languages the shipped rules use are listed. A voice missing here is refused
until it is added to the table, which is safer than a caller hearing German read by a Mandarin voice.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Provider = Literal["Polly", "Google"]
Engine = Literal["standard", "neural", "wavenet", "neural2"]


@dataclass(frozen=True)
class Voice:
    """One voice `<Say voice="...">` accepts, and the one `<Say language="...">` it speaks."""

    name: str
    language: str
    provider: Provider
    engine: Engine


# Amazon Polly (https://docs.aws.amazon.com/polly/latest/dg/available-voices.html), by language:
# standard voices, then the neural ones (Twilio's name adds "-Neural").
_POLLY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cmn-CN": (("Zhiyu",), ("Zhiyu",)),
    "en-US": (
        ("Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kimberly", "Matthew", "Salli"),
        (
            "Danielle",
            "Gregory",
            "Ivy",
            "Joanna",
            "Joey",
            "Justin",
            "Kendra",
            "Kevin",
            "Kimberly",
            "Matthew",
            "Ruth",
            "Salli",
            "Stephen",
        ),
    ),
    "fr-FR": (("Celine", "Lea", "Mathieu"), ("Lea", "Remi")),
    "de-DE": (("Hans", "Marlene", "Vicki"), ("Daniel", "Vicki")),
}

# Google voices: Twilio's name is "Google.<language>-<engine>-<letter>".
_GOOGLE: dict[str, dict[Engine, str]] = {
    "cmn-CN": {"standard": "ABCD", "wavenet": "ABCD"},
    "en-US": {"standard": "ABCDEFGHIJ", "wavenet": "ABCDEFGHIJ", "neural2": "ACDEFGHIJ"},
    "fr-FR": {"standard": "ABCDE", "wavenet": "ABCDE", "neural2": "ABCDE"},
    "de-DE": {"standard": "ABCDEF", "wavenet": "ABCDEF", "neural2": "ABCDF"},
}
_GOOGLE_ENGINE_NAME: dict[Engine, str] = {
    "standard": "Standard",
    "wavenet": "Wavenet",
    "neural2": "Neural2",
    "neural": "Neural",
}


def _table() -> dict[str, Voice]:
    voices: dict[str, Voice] = {}
    for language, (standard, neural) in _POLLY.items():
        for name in standard:
            voices[f"Polly.{name}"] = Voice(f"Polly.{name}", language, "Polly", "standard")
        for name in neural:
            full = f"Polly.{name}-Neural"
            voices[full] = Voice(full, language, "Polly", "neural")
    for language, engines in _GOOGLE.items():
        for engine, letters in engines.items():
            for letter in letters:
                full = f"Google.{language}-{_GOOGLE_ENGINE_NAME[engine]}-{letter}"
                voices[full] = Voice(full, language, "Google", engine)
    return voices


VOICES: Mapping[str, Voice] = MappingProxyType(_table())
"""Every voice `ivr check` accepts, by the name written in a catalog's `voice:`."""

_SUGGESTED = 4
"""How many voices of the language a message offers instead of a wrong one."""


def voices_for(language: str) -> tuple[str, ...]:
    """The voices that speak `language` (a `<Say language>` value), Polly standard voices first."""
    return tuple(voice.name for voice in VOICES.values() if voice.language == language)


def voice_problem(voice: str, language: str) -> str | None:
    """None when `voice` speaks `language` (a `<Say language>` value); else what is wrong, for an admin."""
    known = VOICES.get(voice)
    if known is not None and known.language == language:
        return None
    candidates = voices_for(language)
    if not candidates:
        languages = sorted({v.language for v in VOICES.values()})
        hint = " (Mandarin is cmn-CN)" if language.lower().startswith("zh") else ""
        return (
            f"no voice in the voice table speaks {language!r}{hint}; "
            f"the table has {', '.join(languages)}"
        )
    offer = ", ".join(candidates[:_SUGGESTED]) + (", ..." if len(candidates) > _SUGGESTED else "")
    if known is not None:
        return f"voice {voice!r} speaks {known.language}, not {language}: use one of {offer}"
    by_case = {name.lower(): name for name in candidates}
    near = by_case.get(voice.lower()) or next(
        iter(difflib.get_close_matches(voice, candidates, n=1, cutoff=0.75)), None
    )
    if near is not None:
        return f"unknown voice {voice!r}: did you mean {near!r}?"
    return f"unknown voice {voice!r} for {language}: use one of {offer}"
