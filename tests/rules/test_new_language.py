"""Adding a language is a rules change: Spanish, added to a copy of the shipped rules as an admin
would (a voice under `voices:`, a catalog with every prompt in Spanish, the language menu, an agent
who speaks it), passes `ivr check` and is what a caller who picks it hears, with no edit of `ivr/`.

The voice: Twilio's <Say> page accepts "any of the Twilio-supported Amazon Polly Voices, e.g.
Polly.Amy", and Amazon's list of Polly voices (docs.aws.amazon.com/polly/latest/dg/available-voices)
has Lucia for "Spanish (European)", language code es-ES, a standard and a neural voice: Twilio's
`Polly.Lucia` and `Polly.Lucia-Neural`. The shipped voice table (ivr/voices.yaml) has no es-ES voice.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask

from ivr.clock import FrozenClock
from ivr.rules.check import load_bundle
from ivr.rules.loader import load_prompts
from ivr.rules.prompts import Catalog
from ivr.rules.secrets import asked_secret
from tests.rules.test_check import bundle_problems
from tests.support import Phone, copy_project, edit, run_ivr

SPANISH = Path(__file__).parent / "spanish" / "es-ES.yaml"
"""Every prompt of voice_prompts/en-US.yaml, in Spanish."""

LANGUAGES_END = '  - {key: "4", code: de-DE}\n'
SPANISH_RULES = (
    (
        LANGUAGES_END,
        LANGUAGES_END + '  - {key: "5", code: es-ES}\n\n'
        "voices:\n  - {name: Polly.Lucia, language: es-ES, engine: ‸polly-standard}\n",
    ),
    ('  "+43": de-DE\n', '  "+43": de-DE\n  "+34": es-ES\n'),
    (
        "    languages: [en-US, zh-CN, fr-FR, de-DE]",
        "    languages: [en-US, zh-CN, fr-FR, de-DE, es-ES]",
    ),
    (
        "  sec_desk:\n",
        '  sofia:\n    name: Sofía García\n    extension: "105"\n    languages: [es-ES, en-US]\n'
        "    queues: [general, account, funds, tech, supervisors]\n"
        '    phone: "+34910000105"\n  sec_desk:\n',
    ),
)
"""What an admin adds to routing_rules.yaml: the language menu's option, the voice, Spain's calling
code, an agent who speaks Spanish and Spanish for the security desk (`ivr check` asks for one
in every queue)."""


def spanish_project(tmp_path: Path, *, voice: bool = True) -> tuple[Path, Path]:
    """A copy of the shipped rules and catalogs with Spanish added (without its voice: `voice`)."""
    rules, prompts = copy_project(tmp_path)
    [(line, _)] = edit(rules, *SPANISH_RULES)
    if not voice:
        lines = rules.read_text(encoding="utf-8").splitlines(keepends=True)
        del lines[line - 2 : line]  # `voices:` and its one entry
        rules.write_text("".join(lines), encoding="utf-8")
    shutil.copy(SPANISH, prompts / "es-ES.yaml")
    return rules, prompts


def test_spanish_added_to_the_rules_passes_ivr_check(tmp_path: Path) -> None:
    rules, prompts = spanish_project(tmp_path)
    checked = run_ivr("check", str(rules), "--prompts", str(prompts), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip().endswith(
        "routing_rules.yaml: ok (5 languages, 5 menus, 6 queues, 5 teams)"
    ), checked.stdout  # no warning either


def test_a_caller_who_picks_spanish_hears_spanish_in_its_voice(
    tmp_path: Path, app_factory: Callable[..., Flask]
) -> None:
    rules, prompts = spanish_project(tmp_path)
    phone = Phone(app_factory(routing_rules=rules, voice_prompts=prompts).test_client())
    language_menu = phone.dial()
    [offer] = [say for say in language_menu.iter("Say") if say.attrib["language"] == "es-ES"]
    assert offer.attrib["voice"] == "Polly.Lucia"
    assert offer.text == "Para español, pulse 5."

    main_menu = phone.press("5")
    says = list(main_menu.iter("Say"))
    assert {(say.attrib["voice"], say.attrib["language"]) for say in says} == {
        ("Polly.Lucia", "es-ES")
    }
    heard = [say.text for say in says]
    assert "Para cuenta e inicio de sesión, pulse 1." in heard
    assert "Por favor, elija entre las siguientes opciones." in heard


def test_a_catalog_voice_nobody_added_is_an_error_at_its_line(tmp_path: Path) -> None:
    rules, prompts = spanish_project(tmp_path, voice=False)
    [(line, column)] = edit(prompts / "es-ES.yaml", ("voice: Polly.Lucia ", "voice: ‸Polly.Lucia "))
    assert bundle_problems(rules, prompts) == [
        f"{prompts / 'es-ES.yaml'}:{line}:{column}: no voice in the voice table speaks 'es-ES'; "
        "the table has cmn-CN, de-DE, en-US, fr-FR: add the voice under `voices:` in the rules "
        "(name, language: es-ES, engine)"
    ]


def test_a_voice_that_does_not_exist_is_an_error_at_its_line(tmp_path: Path) -> None:
    rules, prompts = spanish_project(tmp_path)
    [(line, column)] = edit(prompts / "es-ES.yaml", ("voice: Polly.Lucia ", "voice: ‸Polly.Lucía "))
    assert bundle_problems(rules, prompts) == [
        f"{prompts / 'es-ES.yaml'}:{line}:{column}: unknown voice 'Polly.Lucía': did you mean "
        "'Polly.Lucia'?"
    ]


def test_a_language_with_missing_texts_is_told_which(tmp_path: Path) -> None:
    rules, prompts = spanish_project(tmp_path)
    catalog = prompts / "es-ES.yaml"
    edit(catalog, ('  goodbye: "Gracias por llamar a {brand}. Adiós."\n', ""))
    edit(catalog, ('  opt_hours: "nuestro horario de atención"\n', ""))
    [(line, column)] = edit(catalog, ("  language_option:", "  ‸language_option:"))
    problems = bundle_problems(rules, prompts)
    assert f"{catalog}:{line}:{column}: missing prompt 'goodbye'" in problems
    assert any(
        p.endswith("prompt 'opt_hours' is missing from " + str(catalog)) for p in problems
    ), problems


def test_a_language_with_no_catalog_is_told_where_to_write_it(tmp_path: Path) -> None:
    rules, prompts = spanish_project(tmp_path)
    (prompts / "es-ES.yaml").unlink()
    assert bundle_problems(rules, prompts) == [
        f"{prompts / 'es-ES.yaml'}:1:1: no prompt catalog for language es-ES"
    ]


def test_a_caller_on_saturday_hears_when_the_team_opens_in_spanish_words(
    tmp_path: Path, app_factory: Callable[..., Flask], clock: FrozenClock
) -> None:
    rules, prompts = spanish_project(tmp_path)
    clock.set(datetime(2026, 11, 28, 15, 0, tzinfo=UTC))  # Saturday: the teams are closed
    phone = Phone(app_factory(routing_rules=rules, voice_prompts=prompts).test_client())
    phone.dial()
    phone.press("5")  # Spanish
    phone.press("1")  # account and login
    heard = " ".join(say.text or "" for say in phone.press("1").iter("Say"))  # login problems
    assert "Volvemos a abrir el lunes, 30 de noviembre a las " in heard, heard


def test_a_language_the_service_has_no_date_words_for_is_told_which_to_add(
    tmp_path: Path,
) -> None:
    rules, prompts = spanish_project(tmp_path)
    catalog = prompts / "es-ES.yaml"
    dates = '  at_time: "{day} a las {time}"\n  on_date: "el {date}"\n'
    edit(catalog, (dates, ""), ("dates: ", "# dates: "))
    [(line, column)] = edit(catalog, ("locale: es_ES", "locale: ‸es_ES"))
    assert [str(warning) for warning in load_bundle(rules, prompts).warnings] == [
        f"{catalog}:{line}:{column}: warning: no words of es-ES to lead into a day and a time: "
        'add dates: {at_time: "{day} at {time}", on_date: "on {date}"} in this language, or '
        "callers hear the bare date and time"
    ]


def test_date_words_with_the_wrong_placeholder_are_an_error_at_them(tmp_path: Path) -> None:
    rules, prompts = spanish_project(tmp_path)
    catalog = prompts / "es-ES.yaml"
    [(line, column)] = edit(catalog, ('  on_date: "el {date}"', '  on_date: ‸"el {day}"'))
    assert bundle_problems(rules, prompts) == [
        f"{catalog}:{line}:{column}: a text with {{date}} and no other"
    ]


def test_a_spanish_prompt_that_asks_for_a_password_is_an_error_at_its_line(tmp_path: Path) -> None:
    # "Introduzca" and "contraseña" are the catalog's own words (`secret_words:`): the built-in
    # English, Chinese, French and German lists know neither.
    rules, prompts = spanish_project(tmp_path)
    catalog = prompts / "es-ES.yaml"
    main_intro = spanish_catalog().texts["main_intro"]
    [(line, column)] = edit(
        catalog,
        (
            f'  main_intro: "{main_intro}"',
            f'  main_intro: ‸"{main_intro} Introduzca su contraseña y pulse almohadilla."',
        ),
    )
    assert bundle_problems(rules, prompts) == [
        f'{catalog}:{line}:{column}: asks the caller for a password ("Introduzca su contraseña y '
        'pulse almohadilla."): no prompt may ask for a password, a one-time code other than the '
        "exchange's, a private key, a seed phrase or a PIN; to warn callers, say that we never ask "
        "for it (never, niemals, jamais, 绝不)"
    ]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Si no recuerda su contraseña, díganos su frase semilla.", "seed phrase"),
        ("¿Cuál es su clave privada?", "private key"),
        ("Tenga a mano su código de verificación.", "one-time code"),
        ("Introduzca su PIN.", "PIN"),  # a loanword the catalog need not list
    ],
)
def test_a_spanish_request_for_a_secret_is_found(text: str, secret: str) -> None:
    words = spanish_catalog().secret_words
    asked = asked_secret(text, "es-ES", catalog_words=words)
    assert asked is not None and asked.secret == secret


def test_the_spanish_anti_fraud_notice_names_the_secrets_and_passes() -> None:
    catalog = spanish_catalog()
    for prompt in ("anti_fraud", "hold_comfort_safety", "answer_official_channels"):
        text = catalog.texts[prompt]
        assert "contraseña" in text and "nunca" in text
        assert asked_secret(text, "es-ES", prompt, catalog.secret_words) is None, text
    # Without its "nunca", the notice asks.
    asking = catalog.texts["anti_fraud"].replace("nunca le pedirá", "le pedirá")
    assert asked_secret(asking, "es-ES", "anti_fraud", catalog.secret_words) is not None
    # A menu option that only names a secret asks for nothing.
    opt_login = catalog.texts["opt_login"]
    assert asked_secret(opt_login, "es-ES", "opt_login", catalog.secret_words) is None


def test_a_language_with_no_words_for_secrets_is_told_which_to_add(tmp_path: Path) -> None:
    rules, prompts = spanish_project(tmp_path)
    catalog = prompts / "es-ES.yaml"
    text = catalog.read_text(encoding="utf-8")
    start, end = text.index("secret_words:\n"), text.index("# What callers say")
    catalog.write_text(text[:start] + text[end:], encoding="utf-8")
    [(line, column)] = edit(catalog, ("\nlanguage: es-ES", "\nlanguage: ‸es-ES"))
    assert [str(warning) for warning in load_bundle(rules, prompts).warnings] == [
        f"{catalog}:{line}:{column}: warning: no words of es-ES to tell a prompt that asks for a "
        "secret: add secret_words: {secrets: {password: [...], PIN: [...], one-time code: [...], "
        "private key: [...], seed phrase: [...]}, asks: [...], never: [...], no: [...]} in this "
        "language, or its prompts are checked with English, Chinese, French and German words only"
    ]


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        (
            '  no: ["no", nadie',
            "  no: [‸no, nadie",
            'YAML reads this word as false: write it in quotes ("no")',
        ),
        (
            "    password: [contraseña*,",
            "    ‸pasword: [contraseña*,",
            "unknown secret 'pasword': did you mean 'password'? (the secrets: password, PIN, "
            "one-time code, private key, seed phrase)",
        ),
        (
            "    PIN: [PIN, PINs,",
            '    PIN: [PIN, ‸"co*digo PIN", PINs,',
            "'*' (any ending) may only end a word, once",
        ),
        (
            "secret_words:\n  secrets:",
            "‸secret_words:\n  secrets:",
            "missing 'never' (a list of words)",
        ),
        ("  asks: [", "  ‸asked: [", "only secrets, asks, never and no go here"),
    ],
)
def test_malformed_secret_words_are_an_error_at_them(
    tmp_path: Path, before: str, after: str, message: str
) -> None:
    rules, prompts = spanish_project(tmp_path)
    catalog = prompts / "es-ES.yaml"
    if message.startswith("missing 'never'"):
        edit(catalog, ("  never: [nunca, jamás, en ningún caso, bajo ningún concepto]\n", ""))
    [(line, column)] = edit(catalog, (before, after))
    problems = bundle_problems(rules, prompts)
    assert f"{catalog}:{line}:{column}: {message}" in problems, problems


def spanish_catalog() -> Catalog:
    """The Spanish test catalog, as the service reads it."""
    prompts, _ = load_prompts(SPANISH.parent, ("es-ES",))
    return prompts.catalog("es-ES")
