"""Never a prompt that asks for a secret: `ivr check` fails one, in each of the rules' languages, at the
prompt's line and column; the anti-fraud notice, which names every secret to say we never ask for it,
passes.

Broken catalogs are copies of the shipped ones with one edit; `‸` marks where the admin must be pointed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.rules.check import check_secrets, load_bundle
from ivr.rules.loader import RulesError, load_prompts, load_rules
from ivr.rules.prompts import AGENT_LINE_PROMPTS
from ivr.rules.secrets import WORDS, asked_secret
from tests.support import PROMPTS, RULES, copy_project, edit, prompt_texts, run_ivr

LANGUAGES = ("zh-CN", "en-US", "fr-FR", "de-DE")

ASKING = {
    "zh-CN": ("请输入您的登录密码，然后按井号键。", "password"),
    "en-US": ("To verify you, please tell us your 2FA code.", "one-time code"),
    "fr-FR": (
        "Pour vérifier votre identité, saisissez votre phrase de récupération.",
        "seed phrase",
    ),
    "de-DE": ("Bitte geben Sie Ihren privaten Schlüssel ein.", "private key"),
}
"""One prompt per language that asks the caller for a secret, and the secret it asks for."""


def problems_of(rules: Path, prompts: Path) -> list[str]:
    with pytest.raises(RulesError) as raised:
        load_bundle(rules, prompts)
    return [str(problem) for problem in raised.value.problems]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_prompt_that_asks_for_a_secret_fails_ivr_check_where_it_is_written(
    tmp_path: Path, language: str
) -> None:
    rules, prompts = copy_project(tmp_path)
    sentence, secret = ASKING[language]
    catalog = prompts / f"{language}.yaml"
    main_intro = prompt_texts(language)["main_intro"]
    [(line, column)] = edit(
        catalog, (f'  main_intro: "{main_intro}"', f'  main_intro: ‸"{main_intro}{sentence}"')
    )
    [problem] = problems_of(rules, prompts)
    assert problem.startswith(f"{catalog}:{line}:{column}: asks the caller for a {secret} (")
    assert sentence.rstrip("。.") in problem
    checked = run_ivr("check", str(rules), "--prompts", str(prompts), cwd=tmp_path)
    assert checked.returncode == 1
    assert f"{catalog}:{line}:{column}: asks the caller for a {secret}" in checked.stdout


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_shipped_anti_fraud_notice_passes_in_every_language(language: str) -> None:
    texts = prompt_texts(language)
    for prompt in ("anti_fraud", "hold_comfort_safety", "answer_official_channels"):
        assert asked_secret(texts[prompt], language, prompt) is None, texts[prompt]
    # It names the secrets all the same: the negation is what lets it pass.
    words = WORDS[language.split("-")[0]]
    named = {
        s
        for s, patterns in words.secrets.items()
        for p in patterns
        if p.search(texts["anti_fraud"])
    }
    assert named >= {"password", "one-time code", "private key", "seed phrase"}


def test_no_shipped_prompt_asks_for_a_secret() -> None:
    rules, _ = load_rules(RULES)
    prompts, sources = load_prompts(PROMPTS, rules.language_codes)
    assert check_secrets(prompts, sources) == []


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en-US", "BitP will never ask for your password."),
        ("en-US", "We do not need your seed phrase, only your account email."),
        ("en-US", "Never share your private keys with anyone."),
        ("zh-CN", "我们绝不会向您索要私钥。"),
        ("zh-CN", "我们不会要求您提供密码。"),
        ("zh-CN", "请勿向任何人透露您的助记词。"),
        ("fr-FR", "Ne communiquez jamais votre mot de passe."),
        ("fr-FR", "Nous ne vous demanderons pas vos codes à deux facteurs."),
        ("de-DE", "Geben Sie Ihre Seed-Phrase niemals weiter."),
        ("de-DE", "Wir fragen Sie nicht nach Ihrem Passwort."),
    ],
)
def test_a_prompt_that_names_a_secret_to_say_we_never_ask_passes(language: str, text: str) -> None:
    assert asked_secret(text, language) is None


@pytest.mark.parametrize(
    ("language", "text", "secret"),
    [
        # A "not" in another clause does not make the request in this one harmless.
        ("en-US", "If you do not remember your password, enter your seed phrase.", "seed phrase"),
        ("zh-CN", "如果您不记得密码，请输入您的助记词。", "seed phrase"),
        (
            "fr-FR",
            "Si vous n'avez plus votre mot de passe, indiquez votre clé privée.",
            "private key",
        ),
        ("de-DE", "Wenn Sie Ihr Passwort nicht wissen, nennen Sie uns Ihren TAN.", "one-time code"),
        # Questions and "have it ready" ask too.
        ("en-US", "What is your private key?", "private key"),
        ("zh-CN", "您的交易密码是多少？", "password"),
        ("fr-FR", "Quelle est votre phrase de récupération ?", "seed phrase"),
        ("de-DE", "Wie lautet Ihre Seed-Phrase?", "seed phrase"),
        ("en-US", "Please have your recovery phrase ready.", "seed phrase"),
        ("en-US", "Key in your PIN now.", "PIN"),
        ("fr-FR", "Tapez votre code PIN.", "PIN"),
    ],
)
def test_a_request_for_a_secret_is_found(language: str, text: str, secret: str) -> None:
    asked = asked_secret(text, language)
    assert asked is not None and asked.secret == secret


@pytest.mark.parametrize(
    ("language", "text"),
    [
        # A menu option may name a secret: it asks for nothing, and a key only chooses.
        ("en-US", "For login problems and passwords, press 1."),
        ("zh-CN", "登录与密码问题，请按1。"),
        ("fr-FR", "Pour un problème de connexion ou de mot de passe, tapez 1."),
        ("de-DE", "Für Anmeldeprobleme und Passwörter drücken Sie die 1."),
        ("de-DE", "Bei Fragen zu Ihrem Passwort drücken Sie die 2."),
        # The callback code is ours to give, not a secret of the caller's.
        ("en-US", "Your callback code is 4 7 1 2."),
    ],
)
def test_naming_a_secret_without_asking_for_it_passes(language: str, text: str) -> None:
    assert asked_secret(text, language) is None


def test_the_agent_line_asks_agents_for_their_own_pin_and_nothing_else(tmp_path: Path) -> None:
    # Exempt by prompt id: the agent line's prompts are spoken on /agent/voice only, to agents.
    english = prompt_texts("en-US")
    assert "agent_enter_pin" in AGENT_LINE_PROMPTS
    assert asked_secret(english["agent_enter_pin"], "en-US", "agent_enter_pin") is None
    # The same words in a prompt callers hear fail; and the agent line may ask for no other secret.
    assert asked_secret(english["agent_enter_pin"], "en-US", "main_intro") is not None
    rules, prompts = copy_project(tmp_path)
    catalog = prompts / "en-US.yaml"
    [(line, column)] = edit(
        catalog,
        (
            '  agent_enter_pin: "Please enter your PIN, then press pound."',
            '  agent_enter_pin: ‸"Please enter your PIN and your seed phrase, then press pound."',
        ),
    )
    [problem] = problems_of(rules, prompts)
    assert problem.startswith(f"{catalog}:{line}:{column}: asks the caller for a seed phrase")


def test_a_language_without_word_lists_is_checked_with_every_list() -> None:
    # The secrets' loanwords and every list's verbs still count in a catalog of another language.
    assert asked_secret("Please enter your PIN.", "es-ES") is not None
    assert asked_secret("请输入您的私钥。", "ja-JP") is not None
    assert asked_secret("BitP will never ask for your PIN.", "es-ES") is None
