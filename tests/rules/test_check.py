"""Checks across the whole rules file and the prompt catalogs, as `ivr check` reports them.

Broken setups are copies of the shipped rules and catalogs with one edit; `‸` in the replacement text
marks where the admin must be pointed and is removed before the file is written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.rules.bundle import Bundle
from ivr.rules.check import check_prompts, check_references, check_silence_limit, load_bundle
from ivr.rules.loader import Problem, RulesError, load_prompts, load_rules
from tests.support import ROOT, copy_project, edit

# Lines and columns must come out the same from both YAML parsers.
pytestmark = pytest.mark.usefixtures("each_yaml_loader")


def bundle_problems(rules: Path, prompts: Path) -> list[str]:
    """What `ivr check` prints for these files."""
    with pytest.raises(RulesError) as raised:
        load_bundle(rules, prompts)
    return [str(problem) for problem in raised.value.problems]


def in_file_order(problems: list[Problem]) -> list[str]:
    return [str(p) for p in sorted(problems, key=lambda p: (p.file, p.line, p.column))]


def test_the_shipped_rules_and_prompts_have_no_problems() -> None:
    rules, source = load_rules(ROOT / "routing_rules.yaml")
    prompts, prompt_sources = load_prompts(ROOT / "voice_prompts", rules.language_codes)
    assert check_references(rules, source) == []
    assert check_prompts(rules, source, prompts, prompt_sources) == []
    bundle = load_bundle(ROOT / "routing_rules.yaml", ROOT / "voice_prompts")
    assert isinstance(bundle, Bundle)
    assert sorted(bundle.prompts.catalogs) == ["de-DE", "en-US", "fr-FR", "zh-CN"]


@pytest.mark.parametrize(
    ("edits", "messages"),
    [
        pytest.param(
            [
                (
                    '"1": {label: opt_account, menu: account}',
                    '"1": {label: opt_account, menu: ‸acount}',
                ),
                (
                    "  account:\n    intro: prepare_account",
                    "  account:\n    ‸intro: prepare_account",
                ),
            ],
            ["menu 'acount' is not defined", "menu 'account' cannot be reached from 'main'"],
            id="unknown-menu",
        ),
        pytest.param(
            [("queue: supervisors, issue: complaint", "queue: ‸supervisor, issue: complaint")],
            ["queue 'supervisor' is not defined"],
            id="unknown-queue",
        ),
        pytest.param(
            [("dropped\n    queue: general\n", "dropped\n    queue: ‸generl\n")],
            ["queue 'generl' is not defined"],
            id="unknown-fallback-queue",
        ),
        pytest.param(
            [("operator_queue: general", "operator_queue: ‸operators")],
            ["operator queue 'operators' is not defined under 'queues'"],
            id="unknown-operator-queue",
        ),
        pytest.param(
            [("    team: supervisors\n", "    team: ‸supervisor\n")],
            ["team 'supervisor' is not defined"],
            id="unknown-team",
        ),
        pytest.param(
            [
                (
                    "  tech:\n    team: {zh-CN: asia, en-US: americas, default: europe}",
                    "  tech:\n    team: ‸{zh-CN: asia, en-US: americas}",
                )
            ],
            ["no team for fr-FR, de-DE: add them or a 'default'"],
            id="team-map-without-default",
        ),
        pytest.param(
            [
                ('      "6": {label: opt_self_service, menu: self_service}\n', ""),
                ("  self_service:\n    options:", "  self_service:\n    ‸options:"),
            ],
            ["menu 'self_service' cannot be reached from 'main'"],
            id="unreachable-menu",
        ),
        pytest.param(
            [("  language: en-US ", "  language: ‸en-GB ")],
            ["default language 'en-GB' is not in 'languages'"],
            id="default-language-not-offered",
        ),
        pytest.param(
            [('"+43": de-DE', '"+43": ‸de-AT')],
            ["language 'de-AT' is not in 'languages'"],
            id="country-language-not-offered",
        ),
        pytest.param(
            [
                ("after_hours:\n  voicemail: true", "after_hours:\n  voicemail: false"),
                ("opt_voicemail, voicemail: true", "opt_voicemail, voicemail: ‸true"),
            ],
            ["voicemail is switched off in 'after_hours'"],
            id="voicemail-option-while-voicemail-is-off",
        ),
    ],
)
def test_a_name_that_points_nowhere_is_reported_where_it_is_used(
    tmp_path: Path, edits: list[tuple[str, str]], messages: list[str]
) -> None:
    rules_file, prompts = copy_project(tmp_path)
    spots = edit(rules_file, *edits)
    expected = [
        f"{rules_file}:{line}:{column}: {message}"
        for (line, column), message in zip(spots, messages, strict=True)
    ]
    rules, source = load_rules(rules_file)
    assert in_file_order(check_references(rules, source)) == expected
    # Warnings come along (an option taken out leaves its phrases behind); the errors are these.
    errors = [p for p in bundle_problems(rules_file, prompts) if ": warning: " not in p]
    assert errors == expected


def test_a_silence_limit_the_menus_time_outs_alone_outlast_is_reported(tmp_path: Path) -> None:
    rules_file, prompts = copy_project(tmp_path)
    [(line, column)] = edit(
        rules_file,
        ("  gather_timeout: 6 ", "  gather_timeout: 20 "),
        ("  silence_limit: 300 ", "  silence_limit: ‸70 "),
    )
    # 3 x 20 s fits in 70 s, and so do the security menu's own 2 tries; 4 tries would not.
    assert check_silence_limit(*load_rules(rules_file)) == []
    edit(rules_file, ("    max_tries: 2 ", "    max_tries: 4 "))
    message = (
        "defaults.silence_limit: 70 s would let a caller who presses nothing go before the "
        "fallback of menu 'security' acts: its 4 time-outs of 20 s alone take 80 s (make "
        "silence_limit longer, or max_tries or gather_timeout shorter)"
    )
    assert bundle_problems(rules_file, prompts) == [f"{rules_file}:{line}:{column}: {message}"]
    edit(
        rules_file,
        ("    max_tries: 4 ", "    max_tries: 2 "),
        ("  max_tries: 3 ", "  max_tries: 4 "),
    )
    assert [p.message for p in check_silence_limit(*load_rules(rules_file))] == [
        message.replace("menu 'security'", "a menu")
    ]


@pytest.mark.parametrize("languages", [["fr-FR"], ["fr-FR", "de-DE"]])
def test_a_prompt_missing_from_a_catalog_is_reported_where_the_rules_use_it(
    tmp_path: Path, languages: list[str]
) -> None:
    rules_file, prompts = copy_project(tmp_path)
    [(line, column)] = edit(rules_file, ('"1": {label: opt_hours,', '"1": {label: ‸opt_hours,'))
    for language in languages:
        edit(prompts / f"{language}.yaml", ('  opt_hours: "', '  opt_hours_old: "'))
    assert sorted(bundle_problems(rules_file, prompts)) == sorted(
        f"{rules_file}:{line}:{column}: prompt 'opt_hours' is missing from "
        f"{prompts / language}.yaml"
        for language in languages
    )


@pytest.mark.parametrize(
    ("language", "edits", "message"),
    [
        pytest.param(
            "de-DE",
            [
                ('  goodbye: "Vielen Dank für Ihren Anruf bei {brand}. Auf Wiederhören."\n', ""),
                ("  language_option:", "  ‸language_option:"),
            ],
            "missing prompt 'goodbye'",
            id="system-prompt-missing",
        ),
        pytest.param(
            "fr-FR",
            [('  greeting: "', '  greeting: ‸"{foo} ')],
            "unknown placeholder {foo}",
            id="unknown-placeholder",
        ),
        pytest.param(
            "fr-FR",
            [
                (
                    '  queue_position: "Vous êtes en position {position} dans',
                    '  queue_position: ‸"Vous êtes en position dans',
                )
            ],
            "must contain {position}",
            id="queue-position-without-position",
        ),
        pytest.param(
            "en-US",
            [
                (
                    '  press_key: "For {label}, press {key}."',
                    '  press_key: ‸"For {label}, press it."',
                )
            ],
            "must contain {key}",
            id="press-key-without-key",
        ),
        pytest.param(
            "fr-FR",
            [('  goodbye: "Merci d\'avoir appelé {brand}. Au revoir."', '  goodbye: ‸""')],
            "a prompt needs a text",
            id="empty-text",
        ),
        pytest.param(
            "fr-FR",
            [("\nlanguage: fr-FR", "\nlanguage: ‸fr-BE")],
            "file fr-FR.yaml declares language 'fr-BE'",
            id="catalog-declares-another-language",
        ),
    ],
)
def test_a_mistake_in_a_catalog_is_reported_in_the_catalog(
    tmp_path: Path, language: str, edits: list[tuple[str, str]], message: str
) -> None:
    rules_file, prompts = copy_project(tmp_path)
    catalog = prompts / f"{language}.yaml"
    [(line, column)] = edit(catalog, *edits)
    assert bundle_problems(rules_file, prompts) == [f"{catalog}:{line}:{column}: {message}"]


def test_a_missing_catalog_is_reported(tmp_path: Path) -> None:
    rules_file, prompts = copy_project(tmp_path)
    (prompts / "de-DE.yaml").unlink()
    assert bundle_problems(rules_file, prompts) == [
        f"{prompts}/de-DE.yaml:1:1: no prompt catalog for language de-DE"
    ]


def test_problems_in_the_rules_and_in_a_catalog_are_reported_together(tmp_path: Path) -> None:
    rules_file, prompts = copy_project(tmp_path)
    [(rules_line, rules_column)] = edit(
        rules_file, ("queue: supervisors, issue: complaint", "queue: ‸supervisor, issue: complaint")
    )
    catalog = prompts / "fr-FR.yaml"
    [(catalog_line, catalog_column)] = edit(catalog, ('  greeting: "', '  greeting: ‸"{foo} '))
    assert sorted(bundle_problems(rules_file, prompts)) == sorted(
        [
            f"{rules_file}:{rules_line}:{rules_column}: queue 'supervisor' is not defined",
            f"{catalog}:{catalog_line}:{catalog_column}: unknown placeholder {{foo}}",
        ]
    )


def test_a_positional_placeholder_is_reported_in_the_catalog(tmp_path: Path) -> None:
    rules_file, prompts = copy_project(tmp_path)
    catalog = prompts / "fr-FR.yaml"
    [(line, column)] = edit(catalog, ('  greeting: "', '  greeting: ‸"{} '))
    with pytest.raises(RulesError) as raised:
        load_bundle(rules_file, prompts)
    assert [(p.file, p.line, p.column) for p in raised.value.problems] == [
        (str(catalog), line, column)
    ]
