"""The voice/language table: a `<Say>` voice must speak its `<Say>` language.

Twilio's <Say> page: "If you are using both the language and voice attributes, ensure that the voice
value you use is available for the language. Invalid combinations of voice and language may result in
error and <Say> instruction failure." Its text-to-speech page gives the form of the names: Amazon Polly
voices as `Polly.Joanna` (`<Say language="en-US" voice="Polly.Joanna">`), Google voices as
`Google.en-GB-Standard-A`; Amazon lists Zhiyu as its Chinese (Mandarin) voice, language code cmn-CN.
"""

from __future__ import annotations

import re

import pytest

from ivr.voices import BUILT_IN, read_table


@pytest.mark.parametrize(
    ("voice", "language"),
    [
        ("Polly.Zhiyu", "cmn-CN"),
        ("Polly.Zhiyu-Neural", "cmn-CN"),
        ("Google.cmn-CN-Standard-A", "cmn-CN"),
        ("Polly.Joanna", "en-US"),
        ("Polly.Matthew-Neural", "en-US"),
        ("Google.en-US-Neural2-F", "en-US"),
        ("Polly.Lea", "fr-FR"),
        ("Google.fr-FR-Wavenet-C", "fr-FR"),
        ("Polly.Vicki", "de-DE"),
        ("Polly.Daniel-Neural", "de-DE"),
        ("Google.de-DE-Standard-B", "de-DE"),
    ],
)
def test_a_voice_that_speaks_its_language_is_fine(voice: str, language: str) -> None:
    assert BUILT_IN.problem(voice, language) is None


def test_every_language_of_the_rules_has_polly_and_google_voices() -> None:
    for language in ("cmn-CN", "en-US", "fr-FR", "de-DE"):
        providers = {BUILT_IN.voices[name].provider for name in BUILT_IN.voices_for(language)}
        assert providers == {"Polly", "Google"}, language


@pytest.mark.parametrize(
    ("voice", "language", "message"),
    [
        pytest.param(
            "Polly.Zhiyu",
            "de-DE",
            "voice 'Polly.Zhiyu' speaks cmn-CN, not de-DE: use one of Polly.Hans, Polly.Marlene, "
            "Polly.Vicki, Polly.Daniel-Neural, ...",
            id="mandarin-voice-for-german",
        ),
        pytest.param(
            "Polly.Vicki",
            "fr-FR",
            "voice 'Polly.Vicki' speaks de-DE, not fr-FR: use one of Polly.Celine, Polly.Lea, "
            "Polly.Mathieu, Polly.Lea-Neural, ...",
            id="german-voice-for-french",
        ),
        pytest.param(
            "Polly.Vikki",
            "de-DE",
            "unknown voice 'Polly.Vikki': did you mean 'Polly.Vicki'?",
            id="misspelt",
        ),
        pytest.param(
            "polly.joanna",
            "en-US",
            "unknown voice 'polly.joanna': did you mean 'Polly.Joanna'?",
            id="wrong-case",
        ),
        pytest.param(
            "Robot",
            "fr-FR",
            "unknown voice 'Robot' for fr-FR: use one of Polly.Celine, Polly.Lea, Polly.Mathieu, "
            "Polly.Lea-Neural, ...",
            id="nothing-like-it",
        ),
        pytest.param(
            "Polly.Zhiyu",
            "zh-CN",
            "no voice in the voice table speaks 'zh-CN' (Mandarin is cmn-CN); "
            "the table has cmn-CN, de-DE, en-US, fr-FR",
            id="mandarin-written-zh-CN",
        ),
        pytest.param(
            "Polly.Lucia",
            "es-ES",
            "no voice in the voice table speaks 'es-ES'; the table has cmn-CN, de-DE, en-US, "
            "fr-FR: add the voice under `voices:` in the rules (name, language: es-ES, engine)",
            id="a-language-the-table-lacks",
        ),
    ],
)
def test_a_voice_that_does_not_speak_its_language_is_explained(
    voice: str, language: str, message: str
) -> None:
    assert BUILT_IN.problem(voice, language) == message


def test_the_shipped_voices_file_lists_each_voice_with_its_language_and_engine() -> None:
    assert BUILT_IN.voices["Polly.Joanna-Neural"].engine == "polly-neural"
    assert BUILT_IN.voices["Google.de-DE-Wavenet-B"].engine == "google-wavenet"
    assert BUILT_IN.voices["Google.de-DE-Wavenet-B"].language == "de-DE"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param(
            "{name: Polly.Lucia, language: es-ES, engine: polly-fast}",
            "voice 1 (Polly.Lucia): unknown engine 'polly-fast'",
            id="unknown-engine",
        ),
        pytest.param(
            "{name: Google.es-ES-Standard-A, language: es-MX, engine: google-standard}",
            "a google-standard voice for es-MX is named Google.es-MX-Standard-<letter>",
            id="google-name-of-another-language",
        ),
        pytest.param(
            "{name: Polly.Lucia, language: spanish, engine: polly-standard}",
            "'spanish' is not a language tag like es-ES",
            id="not-a-tag",
        ),
    ],
)
def test_a_malformed_voices_file_is_refused(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        read_table(f"voices:\n  - {entry}\n")


def test_a_voices_file_cannot_give_one_voice_two_languages() -> None:
    text = (
        "voices:\n"
        "  - {name: Polly.Lucia, language: es-ES, engine: polly-standard}\n"
        "  - {name: Polly.Lucia, language: es-MX, engine: polly-standard}\n"
    )
    with pytest.raises(ValueError, match=re.escape("voice 'Polly.Lucia' speaks es-ES, not es-MX")):
        read_table(text)
