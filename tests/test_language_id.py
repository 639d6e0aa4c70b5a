"""Which language a prompt is written in: the shipped catalogs pass, a pasted-in text does not."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ivr.language_id import base_language, judged_text, wrong_language

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ("zh-CN", "en-US", "fr-FR", "de-DE")


def catalog(language: str) -> dict[str, str]:
    data = yaml.safe_load((ROOT / "voice_prompts" / f"{language}.yaml").read_text(encoding="utf-8"))
    texts: dict[str, str] = data["prompts"]
    return texts


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_shipped_prompt_reads_as_another_language(language: str) -> None:
    # `ivr check` runs this on the shipped files in CI: a false alarm there would fail every build.
    wrong = {
        prompt: found
        for prompt, text in catalog(language).items()
        if (found := wrong_language(text, language, LANGUAGES))
    }
    assert wrong == {}


@pytest.mark.parametrize(
    ("text", "expected", "written_in"),
    [
        ("Please choose from the following options.", "de-DE", "en-US"),
        ("Please hold the line, an agent will be with you shortly.", "fr-FR", "en-US"),
        ("Bitte bleiben Sie in der Leitung.", "en-US", "de-DE"),
        ("Merci de patienter, un conseiller va vous répondre.", "de-DE", "fr-FR"),
        ("Please hold the line, an agent will be with you shortly.", "zh-CN", "en-US"),
        ("请稍候，我们正在为您转接客服。", "en-US", "zh-CN"),
    ],
)
def test_a_text_in_another_language_is_named(text: str, expected: str, written_in: str) -> None:
    assert wrong_language(text, expected, LANGUAGES) == written_in


def test_every_english_sentence_pasted_into_the_german_catalog_is_found() -> None:
    sentences = [t for t in catalog("en-US").values() if len(t.split()) >= 6]
    assert len(sentences) > 20
    missed = [t for t in sentences if wrong_language(t, "de-DE", LANGUAGES) != "en-US"]
    assert missed == []


def test_names_numbers_and_placeholders_do_not_count() -> None:
    # Left with fewer than two words, a text is not judged at all.
    assert judged_text("{brand}: support@bitp.example, www.bitp.example, 0800 123 456") is None
    assert judged_text("Support") is None
    assert wrong_language("BitP Support {reference}", "de-DE", LANGUAGES) is None
    # What is left still tells the language: an address does not make German English.
    assert judged_text("Schreiben Sie an support@bitp.example.") == "Schreiben Sie an"
    assert wrong_language("Schreiben Sie uns an support@bitp.example.", "de-DE", LANGUAGES) is None
    # Chinese runs without spaces: a number in it takes no Chinese with it.
    assert judged_text("请按1。") == "请按 。"


def test_only_the_rules_languages_are_candidates() -> None:
    # Spanish is not one of them: it is not reported as some language the caller cannot choose.
    assert wrong_language("Por favor, espere en la línea.", "de-DE", ("de-DE",)) is None
    assert base_language("cmn-CN") == "zh"
