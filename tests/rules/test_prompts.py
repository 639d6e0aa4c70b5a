"""The shipped voice prompt catalogs, and recordings that replace a prompt's text."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr.rules.loader import load_prompts
from ivr.rules.prompts import SYSTEM_PROMPTS, Prompts, placeholders

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "voice_prompts"
LANGUAGES = ("zh-CN", "en-US", "fr-FR", "de-DE")


@pytest.fixture(scope="module")
def shipped() -> Prompts:
    prompts, _ = load_prompts(PROMPTS, LANGUAGES)
    return prompts


@pytest.mark.parametrize(
    ("language", "name", "say_language", "voice", "locale"),
    [
        ("zh-CN", "中文", "cmn-CN", "Polly.Zhiyu", "zh_Hans_CN"),
        ("en-US", "English", "en-US", "Polly.Joanna", "en_US"),
        ("fr-FR", "Français", "fr-FR", "Polly.Lea", "fr_FR"),
        ("de-DE", "Deutsch", "de-DE", "Polly.Vicki", "de_DE"),
    ],
)
def test_each_language_is_spoken_by_its_voice(
    shipped: Prompts, language: str, name: str, say_language: str, voice: str, locale: str
) -> None:
    catalog = shipped.catalog(language)
    assert (
        catalog.language,
        catalog.name,
        catalog.say_language,
        catalog.voice,
        catalog.locale,
    ) == (
        language,
        name,
        say_language,
        voice,
        locale,
    )
    assert sorted(SYSTEM_PROMPTS - set(catalog.texts)) == []
    assert catalog.audio == {}  # nothing recorded yet: every prompt is spoken


@pytest.mark.parametrize("language", [code for code in LANGUAGES if code != "en-US"])
def test_every_translation_has_every_english_prompt_with_the_same_placeholders(
    shipped: Prompts, language: str
) -> None:
    english = shipped.catalog("en-US").texts
    translated = shipped.catalog(language).texts
    assert sorted(set(english) - set(translated)) == []
    differing = {
        prompt_id: (sorted(placeholders(text)), sorted(placeholders(translated[prompt_id])))
        for prompt_id, text in english.items()
        if placeholders(text) != placeholders(translated[prompt_id])
    }
    assert differing == {}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("For {label}, press {key}.", {"label", "key"}),
        ("Your ticket number is {reference}. Again: {reference}.", {"reference"}),
        ("Welcome to {brand}!", {"brand"}),
        ("Press {{star}} for more.", set()),
        ("No placeholders at all.", set()),
    ],
)
def test_placeholders(text: str, names: set[str]) -> None:
    assert placeholders(text) == names


@pytest.mark.parametrize(
    ("files", "audio"),
    [
        pytest.param(["greeting.mp3"], {"greeting": "greeting.mp3"}, id="mp3"),
        pytest.param(["anti_fraud.wav"], {"anti_fraud": "anti_fraud.wav"}, id="wav"),
        pytest.param(
            ["greeting.mp3", "goodbye.wav"],
            {"greeting": "greeting.mp3", "goodbye": "goodbye.wav"},
            id="several",
        ),
        pytest.param(["no_such_prompt.mp3"], {}, id="unknown-prompt-id-ignored"),
        pytest.param(["greeting.txt", "notes.md"], {}, id="not-audio-ignored"),
    ],
)
def test_a_recording_is_picked_up_for_its_language_only(
    tmp_path: Path, files: list[str], audio: dict[str, str]
) -> None:
    prompts_dir = tmp_path / "voice_prompts"
    shutil.copytree(PROMPTS, prompts_dir)
    recordings = prompts_dir / "audio" / "fr-FR"
    recordings.mkdir(parents=True)
    for name in files:
        (recordings / name).write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00")
    prompts, _ = load_prompts(prompts_dir, LANGUAGES)
    assert dict(prompts.catalog("fr-FR").audio) == audio
    assert prompts.audio_root == prompts_dir / "audio"
    for other in ("zh-CN", "en-US", "de-DE"):
        assert prompts.catalog(other).audio == {}
