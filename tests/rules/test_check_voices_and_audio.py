"""`ivr check` on voices and clip lengths: a voice that cannot speak its catalog's language is an
error at the catalog's `voice:` line; a hold clip longer than its queue's `announce_every` is a warning
(the rules still load), since "a <Play> lasts as long as its audio file" (DESIGN.md) and callers then
hear their position once per clip.

`‸` in replacement text marks where the admin must be pointed (see tests/support.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.rules.check import load_bundle
from ivr.rules.loader import RulesError
from tests.rules.test_check import bundle_problems
from tests.support import PROMPTS, ROOT, RULES, copy_project, edit
from tests.test_audio import write_mp3, write_wav

pytestmark = pytest.mark.usefixtures("each_yaml_loader")

BUSY_STRINGS = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"


def test_a_voice_that_does_not_speak_the_catalog_language_is_an_error_at_its_line(
    tmp_path: Path,
) -> None:
    rules_file, prompts = copy_project(tmp_path)
    catalog = prompts / "de-DE.yaml"
    [(line, column)] = edit(catalog, ("voice: Polly.Vicki ", "voice: ‸Polly.Zhiyu "))
    assert bundle_problems(rules_file, prompts) == [
        f"{catalog}:{line}:{column}: voice 'Polly.Zhiyu' speaks cmn-CN, not de-DE: use one of "
        "Polly.Hans, Polly.Marlene, Polly.Vicki, Polly.Daniel-Neural, ..."
    ]


def test_a_misspelt_voice_gets_did_you_mean(tmp_path: Path) -> None:
    rules_file, prompts = copy_project(tmp_path)
    catalog = prompts / "fr-FR.yaml"
    [(line, column)] = edit(catalog, ("voice: Polly.Lea ", "voice: ‸Polly.Léa "))
    assert bundle_problems(rules_file, prompts) == [
        f"{catalog}:{line}:{column}: unknown voice 'Polly.Léa': did you mean 'Polly.Lea'?"
    ]


def test_mandarin_must_be_said_as_cmn_CN(tmp_path: Path) -> None:
    rules_file, prompts = copy_project(tmp_path)
    catalog = prompts / "zh-CN.yaml"
    edit(catalog, ("say_language: cmn-CN", "say_language: zh-CN"))
    [(line, column)] = edit(catalog, ("voice: Polly.Zhiyu", "voice: ‸Polly.Zhiyu"))
    assert bundle_problems(rules_file, prompts) == [
        f"{catalog}:{line}:{column}: no voice in the voice table speaks 'zh-CN' (Mandarin is "
        "cmn-CN); the table has cmn-CN, de-DE, en-US, fr-FR"
    ]


def test_the_shipped_rules_announce_at_the_interval_they_promise() -> None:
    bundle = load_bundle(ROOT / "routing_rules.yaml", ROOT / "voice_prompts")
    assert bundle.warnings == ()
    for queue in bundle.rules.queues.values():
        # Without music a round is `announce_every` seconds of silence; with it, the clip's length.
        assert queue.hold_music is None or (
            queue.hold_music_seconds is not None
            and queue.hold_music_seconds <= queue.announce_every
        )


def hold_warnings(rules_file: Path, prompts: Path) -> list[str]:
    """The warnings `ivr check` prints; the rules load all the same."""
    return [str(warning) for warning in load_bundle(rules_file, prompts).warnings]


def test_a_declared_remote_clip_longer_than_the_interval_is_a_warning(tmp_path: Path) -> None:
    rules_file, prompts = copy_project(tmp_path)
    [(line, column)] = edit(
        rules_file,
        (
            "    priority: 20\n",
            f"    priority: 20\n    hold_music: {BUSY_STRINGS}\n    hold_music_seconds: ‸252\n",
        ),
    )
    assert hold_warnings(rules_file, prompts) == [
        f"{rules_file}:{line}:{column}: warning: the hold clip plays 4 min 12 s (declared in "
        "hold_music_seconds), longer than announce_every (30 s): callers hear their position only "
        "every time the clip ends; use a shorter clip or a longer announce_every"
    ]


def test_a_declared_remote_clip_within_the_interval_is_fine(tmp_path: Path) -> None:
    rules_file, prompts = copy_project(tmp_path)
    edit(
        rules_file,
        (
            "    priority: 20\n",
            "    priority: 20\n    hold_music: https://music.example/short.mp3\n"
            "    hold_music_seconds: 28.5\n",
        ),
    )
    assert hold_warnings(rules_file, prompts) == []


def test_a_remote_clip_without_a_declared_length_is_a_warning(tmp_path: Path) -> None:
    rules_file, prompts = copy_project(tmp_path)
    [(line, column)] = edit(
        rules_file, ("    priority: 20\n", f"    priority: 20\n    hold_music: ‸{BUSY_STRINGS}\n")
    )
    assert hold_warnings(rules_file, prompts) == [
        f"{rules_file}:{line}:{column}: warning: the length of this clip is unknown: declare it "
        "with hold_music_seconds, or callers may wait longer than announce_every (30 s) between "
        "updates"
    ]


@pytest.mark.parametrize(
    ("write", "seconds", "warned"),
    [
        pytest.param(write_wav, 45, True, id="45-s-wav"),
        pytest.param(write_mp3, 45, True, id="45-s-mp3"),
        pytest.param(write_wav, 25, False, id="25-s-wav"),
    ],
)
def test_a_local_recording_is_measured_not_declared(
    tmp_path: Path, write: Callable[[Path, float], Path], seconds: int, warned: bool
) -> None:
    rules_file, prompts = copy_project(tmp_path)
    (prompts / "audio" / "en-US").mkdir(parents=True)
    write(prompts / "audio" / "en-US" / "hold.mp3", seconds)
    # The declared length is ignored for a file that can be measured.
    [(line, column)] = edit(
        rules_file,
        (
            "    priority: 20\n",
            "    priority: 20\n    hold_music: ‸/voice/audio/en-US/hold.mp3\n"
            "    hold_music_seconds: 10\n",
        ),
    )
    expected = (
        f"{rules_file}:{line}:{column}: warning: the hold clip plays {seconds} s (measured), "
        "longer than announce_every (30 s): callers hear their position only every time the clip "
        "ends; use a shorter clip or a longer announce_every"
    )
    assert hold_warnings(rules_file, prompts) == ([expected] if warned else [])


def test_a_recorded_prompt_that_is_not_audio_is_a_warning(tmp_path: Path) -> None:
    rules_file, prompts = copy_project(tmp_path)
    recordings = prompts / "audio" / "fr-FR"
    recordings.mkdir(parents=True)
    (recordings / "greeting.mp3").write_bytes(b"ID3fake")
    write_wav(recordings / "goodbye.wav", 2)
    assert hold_warnings(rules_file, prompts) == [
        f"{recordings / 'greeting.mp3'}:1:1: warning: cannot be read as audio: "
        "Twilio may fail to play it"
    ]


def test_warnings_are_printed_with_the_errors(tmp_path: Path) -> None:
    rules_file, prompts = copy_project(tmp_path)
    [(warning_line, warning_column)] = edit(
        rules_file, ("    priority: 20\n", f"    priority: 20\n    hold_music: ‸{BUSY_STRINGS}\n")
    )
    [(error_line, error_column)] = edit(
        rules_file, ("operator_queue: general", "operator_queue: ‸operators")
    )
    with pytest.raises(RulesError) as raised:
        load_bundle(rules_file, prompts)
    assert [(p.line, p.column, p.severity) for p in raised.value.problems] == sorted(
        [(error_line, error_column, "error"), (warning_line, warning_column, "warning")]
    )


def test_a_catalog_without_the_other_language_offer_is_fine_while_the_offer_is_off(
    tmp_path: Path,
) -> None:
    """Catalogs written before the offer existed keep loading until the rules switch it on."""
    prompts = tmp_path / "voice_prompts"
    shutil.copytree(PROMPTS, prompts)
    for catalog in prompts.glob("*.yaml"):
        lines = catalog.read_text(encoding="utf-8").splitlines(keepends=True)
        catalog.write_text(
            "".join(line for line in lines if "offer_other_language:" not in line),
            encoding="utf-8",
        )
    rules = tmp_path / "routing_rules.yaml"
    rules.write_text(
        RULES.read_text(encoding="utf-8").replace(
            "other_languages: true", "other_languages: false"
        ),
        encoding="utf-8",
    )
    load_bundle(rules, prompts)  # no error
    shutil.copy(RULES, rules)  # the offer on: now the prompt is needed
    with pytest.raises(RulesError, match="missing prompt 'offer_other_language'"):
        load_bundle(rules, prompts)


LANGUAGES_END = '  - {key: "4", code: de-DE}\n'


@pytest.mark.parametrize(
    ("voice", "message"),
    [
        pytest.param(
            "{name: Polly.Lucia, language: es-ES, engine: ‸polly-turbo}",
            "unknown engine 'polly-turbo': use one of polly-standard, polly-neural, "
            "polly-generative, google-standard, google-wavenet, google-neural2",
            id="unknown-engine",
        ),
        pytest.param(
            "{name: ‸Polly.Lucia-Neural, language: es-ES, engine: polly-standard}",
            "a polly-standard voice for es-ES is named Polly.<Name>, not 'Polly.Lucia-Neural'",
            id="neural-name-for-a-standard-voice",
        ),
        pytest.param(
            "{name: ‸Google.es-MX-Standard-A, language: es-ES, engine: google-standard}",
            "a google-standard voice for es-ES is named Google.es-ES-Standard-<letter>, "
            "not 'Google.es-MX-Standard-A'",
            id="google-name-of-another-language",
        ),
        pytest.param(
            "{name: Polly.Lucia, language: ‸es_ES, engine: polly-standard}",
            "'es_ES' is not a language tag like es-ES (language, then region: Twilio's "
            "<Say language>)",
            id="underscore-tag",
        ),
        pytest.param(
            "{name: ‸Polly.Joanna, language: es-ES, engine: polly-standard}",
            "voice 'Polly.Joanna' speaks en-US, not es-ES",
            id="a-built-in-voice-of-another-language",
        ),
    ],
)
def test_a_voice_the_rules_add_is_checked_where_it_is_written(
    tmp_path: Path, voice: str, message: str
) -> None:
    rules_file, prompts = copy_project(tmp_path)
    [(line, column)] = edit(rules_file, (LANGUAGES_END, f"{LANGUAGES_END}voices:\n  - {voice}\n"))
    assert bundle_problems(rules_file, prompts) == [f"{rules_file}:{line}:{column}: {message}"]


def test_a_catalog_may_name_a_voice_the_rules_add(tmp_path: Path) -> None:
    rules_file, prompts = copy_project(tmp_path)
    # Amazon's Austrian German voice Hannah is not shipped: a catalog naming it is refused until
    # the rules add it.
    edit(prompts / "de-DE.yaml", ("voice: Polly.Vicki ", "voice: Polly.Hannah-Neural "))
    edit(prompts / "de-DE.yaml", ("say_language: de-DE", "say_language: de-AT"))
    assert "no voice in the voice table speaks 'de-AT'" in bundle_problems(rules_file, prompts)[0]
    added = "voices:\n  - {name: Polly.Hannah-Neural, language: de-AT, engine: polly-neural}\n"
    edit(rules_file, (LANGUAGES_END, LANGUAGES_END + added))
    bundle = load_bundle(rules_file, prompts)
    assert bundle.prompts.catalog("de-DE").voice == "Polly.Hannah-Neural"
