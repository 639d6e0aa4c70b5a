"""What an admin reads about a new version of the rules and prompts (`ivr rules diff`, the
dashboard's Rules page): one sentence per change, in the admin's words, and never a change unsaid.

The versions compared are copies of the shipped rules and catalogs with a few text replacements,
loaded as the service loads them (`load_bundle`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from ivr.rules.bundle import Bundle
from ivr.rules.check import load_bundle
from ivr.rules.diff import (
    DESTINATIONS,
    TEXT_LIMIT,
    describe_changes,
    describe_prompt_changes,
    describe_rules_changes,
)
from ivr.rules.prompts import Prompts
from ivr.rules.schema import DateOverride, HolidayCalendar, Rules, RulesVoice, Target
from tests.support import PROMPTS, RULES, copy_project, edit

Edits = tuple[tuple[str, str], ...]


@pytest.fixture(scope="module")
def shipped() -> Bundle:
    return load_bundle(RULES, PROMPTS)


def version(folder: Path, rules: Edits = (), prompts: dict[str, Edits] | None = None) -> Bundle:
    """The shipped rules and catalogs with `rules` edits and, per language, `prompts` edits."""
    rules_path, prompts_dir = copy_project(folder)
    if rules:
        edit(rules_path, *rules)
    for language, edits in (prompts or {}).items():
        edit(prompts_dir / f"{language}.yaml", *edits)
    return load_bundle(rules_path, prompts_dir)


def test_equal_versions_say_nothing(shipped: Bundle, tmp_path: Path) -> None:
    assert describe_changes(shipped, shipped) == []
    assert describe_changes(shipped, version(tmp_path)) == []


OPTION_5 = '"5": {label: opt_app, queue: tech, issue: app_problem}'
SELF_SERVICE_1 = '"1": {label: opt_hours, say: answer_hours, issue: faq_hours}'
SELF_SERVICE_5 = '"5": {label: opt_voicemail, voicemail: true, issue: voicemail}'
EUROPE = '  europe:\n    timezone: Europe/Berlin\n    weekly: {mon-fri: "08:00-20:00"}'
SECURITY_DESK = "  security_desk:\n    timezone: UTC\n    weekly: always"
FUNDS_QUEUE = (
    "  funds:\n    team: {zh-CN: asia, en-US: americas, default: europe}\n    priority: 30"
)
EMMA = "    languages: [en-US]\n    queues: [general, account, funds, tech, supervisors]\n    client: emma"
TEAM_CLOSED_DE = (
    '  team_closed: "Das für Ihr Anliegen zuständige Team ist zurzeit nicht erreichbar. '
    'Wir sind {when}, Ortszeit {city}, wieder für Sie da."'
)
LONG = (
    "Unsere Telefonberatung ist montags bis freitags von 8 bis 20 Uhr für Sie da, jeweils zur "
    "Ortszeit des zuständigen Teams. Sicherheitsnotfälle werden rund um die Uhr angenommen."
)
NEW_MENU = (
    '"5": {label: opt_voicemail, voicemail: true, issue: voicemail}',
    '"5": {label: opt_voicemail, voicemail: true, issue: voicemail}\n'
    '      "6": {label: opt_funds, menu: billing}\n'
    "  billing:\n"
    "    options:\n"
    '      "1": {label: opt_deposit, queue: funds}\n'
    '      "2": {label: opt_withdrawal, queue: funds}',
)
NEW_TEAM = (
    "  supervisors:\n    timezone: Europe/Berlin",
    '  latam:\n    timezone: America/Sao_Paulo\n    weekly: {mon-fri: "09:00-17:00"}\n'
    "  supervisors:\n    timezone: Europe/Berlin",
)
NEW_QUEUE = (
    "  supervisors:\n    team: supervisors\n    priority: 50",
    "  supervisors:\n    team: supervisors\n    priority: 50\n"
    "  vip:\n    team: europe\n    priority: 60",
)
NEW_AGENT = (
    "  sec_desk:\n",
    '  max:\n    name: Max Muster\n    extension: "105"\n    languages: [de-DE]\n'
    '    queues: [general]\n    phone: "+4930000000105"\n  sec_desk:\n',
)


@pytest.mark.parametrize(
    ("rules", "prompts", "expected"),
    [
        # Menus: where a key leads, and how it is said.
        pytest.param(
            [(OPTION_5, OPTION_5.replace("tech", "general"))],
            {},
            ["main menu: option 5 now goes to queue general (was tech)"],
            id="option-queue",
        ),
        pytest.param(
            [
                (
                    '"2": {label: opt_withdrawal, queue: funds,',
                    '"2": {label: opt_withdrawal, menu: security,',
                )
            ],
            {},
            ["menu funds: option 2 now goes to menu security (was queue funds)"],
            id="option-to-menu",
        ),
        pytest.param(
            [(SELF_SERVICE_1, SELF_SERVICE_1.replace("say: answer_hours", "voicemail: true"))],
            {},
            ["menu self_service: option 1 now records a voicemail (was saying answer_hours)"],
            id="option-to-voicemail",
        ),
        pytest.param(
            [(SELF_SERVICE_5, SELF_SERVICE_5.replace("voicemail: true", "say: answer_email"))],
            {},
            ["menu self_service: option 5 now says answer_email (was a voicemail)"],
            id="option-to-say",
        ),
        pytest.param(
            [(SELF_SERVICE_1, SELF_SERVICE_1.replace("answer_hours", "answer_prepare"))],
            {},
            ["menu self_service: option 1 now says answer_prepare (was answer_hours)"],
            id="option-says-another",
        ),
        pytest.param(
            [
                (
                    OPTION_5,
                    OPTION_5 + '\n      "7": {label: opt_records, queue: funds, issue: records}',
                )
            ],
            {},
            ["main menu: option 7 added: opt_records, goes to queue funds"],
            id="option-added",
        ),
        pytest.param(
            [(SELF_SERVICE_5, "")],
            {},
            ["menu self_service: option 5 removed (was opt_voicemail, records a voicemail)"],
            id="option-removed",
        ),
        pytest.param(
            [(OPTION_5, '"5": {label: opt_email, queue: tech, issue: app, priority: 40}')],
            {},
            [
                "main menu: option 5 label opt_email (was opt_app)",
                "main menu: option 5 issue app (was app_problem)",
                "main menu: option 5 priority 40 (was not set)",
            ],
            id="option-label-issue-priority",
        ),
        pytest.param(
            [('priority: 100, lock_offer: true}\n      "2"', 'priority: 100}\n      "2"')],
            {},
            ["menu security: option 1 no longer offers to lock the caller's account"],
            id="option-lock-offer",
        ),
        pytest.param(
            [NEW_MENU],
            {},
            [
                "menu self_service: option 6 added: opt_funds, goes to menu billing",
                "menu billing added with 2 options",
            ],
            id="menu-added",
        ),
        pytest.param(
            [
                ("    intro: prepare_transaction", "    intro: prepare_account"),
                ("    max_tries: 2 ", "    max_tries: 3 "),
                ("    fallback: {queue: security}", "    fallback: {queue: general}"),
                ("    listen: true ", "    listen: false "),
            ],
            {},
            [
                "main menu: no longer listens to what callers say",
                "menu funds: intro prepare_account (was prepare_transaction)",
                "menu security: max_tries 3 (was 2)",
                "menu security: fallback now goes to queue general (was security)",
            ],
            id="menu-settings",
        ),
        # Teams: hours per weekday, as spans expand to days.
        pytest.param(
            [
                (
                    EUROPE,
                    EUROPE.replace(
                        '{mon-fri: "08:00-20:00"}', '{mon-thu: "08:00-20:00", fri: "08:00-18:00"}'
                    ),
                )
            ],
            {},
            ["team europe: Friday 08:00-18:00 (was 08:00-20:00)"],
            id="team-friday",
        ),
        pytest.param(
            [
                (
                    EUROPE,
                    EUROPE.replace(
                        '{mon-fri: "08:00-20:00"}',
                        '{mon-fri: "09:00-18:00", sat-sun: ["10:00-12:00", "13:00-15:00"]}',
                    ),
                )
            ],
            {},
            [
                "team europe: Monday-Friday 09:00-18:00 (was 08:00-20:00)",
                "team europe: Saturday-Sunday 10:00-12:00, 13:00-15:00 (was closed)",
            ],
            id="team-days-joined",
        ),
        pytest.param(
            [
                (
                    SECURITY_DESK,
                    SECURITY_DESK.replace("always", '{mon-sat: "00:00-24:00", sun: closed}'),
                )
            ],
            {},
            ["team security_desk: Monday-Saturday 00:00-24:00, Sunday closed (was always open)"],
            id="team-no-longer-always",
        ),
        pytest.param(
            [(EUROPE, EUROPE.replace('{mon-fri: "08:00-20:00"}', "always"))],
            {},
            ["team europe: always open (was Monday-Friday 08:00-20:00, Saturday-Sunday closed)"],
            id="team-always",
        ),
        pytest.param(
            [(EUROPE, EUROPE.replace('"08:00-20:00"}', '"08:00-20:00", sat: closed}'))],
            {},
            ["team europe: weekly hours written differently, the same opening times"],
            id="team-closed-day-written-out",
        ),
        pytest.param(
            [
                ("timezone: Asia/Shanghai", "timezone: Asia/Hong_Kong"),
                ("holidays: {country: CN}", "holidays: {country: HK}"),
                ("    holidays: {country: US}\n", ""),
            ],
            {},
            [
                "team asia: time zone Asia/Hong_Kong (was Asia/Shanghai)",
                "team asia: public holidays HK (was CN)",
                "team americas: public holidays none (was US)",
            ],
            id="team-zone-holidays",
        ),
        pytest.param(
            [
                (
                    'hours: "08:00-12:00", note: Christmas Eve',
                    'hours: "08:00-14:00", note: Christmas Eve',
                ),
                ('      - {date: 2026-12-31, hours: "08:00-14:00", note: New Year\'s Eve}\n', ""),
                (
                    "holidays: {country: US}",
                    "holidays: {country: US}\n"
                    "    overrides: [{date: 2026-12-28, hours: closed, note: staff party}]",
                ),
            ],
            {},
            [
                "team europe: 2026-12-24 08:00-14:00 (was 08:00-12:00)",
                "team europe: override for 2026-12-31 removed (was 08:00-14:00, New Year's Eve)",
                "team americas: override for 2026-12-28 added: closed, staff party",
            ],
            id="team-overrides",
        ),
        pytest.param(
            [NEW_TEAM],
            {},
            [
                "team latam added: America/Sao_Paulo, Monday-Friday 09:00-17:00, Saturday-Sunday closed"
            ],
            id="team-added",
        ),
        # Queues: whose hours apply, per language, and the scalar settings.
        pytest.param(
            [
                (
                    FUNDS_QUEUE,
                    "  funds:\n    team: {zh-CN: asia, default: europe}\n    priority: 40\n"
                    "    max_wait: 900\n    comfort: [hold_comfort_email]\n"
                    "    hold_music: https://example.com/hold.mp3\n    hold_music_seconds: 25",
                )
            ],
            {},
            [
                "queue funds: en-US callers now go to team europe (was americas)",
                "queue funds: priority 40 (was 30)",
                "queue funds: hold_music https://example.com/hold.mp3 (was not set)",
                "queue funds: hold_music_seconds 25 (was not set)",
                "queue funds: comfort [hold_comfort_email] (was [])",
                "queue funds: max_wait 900 (was not set)",
            ],
            id="queue-settings",
        ),
        pytest.param(
            [
                ("    announce_every: 20\n", "    announce_every: 40\n"),
                ("    max_length: 50\n", ""),
            ],
            {},
            [
                "queue general: max_length not set (was 50)",
                "queue security: announce_every 40 (was 20)",
            ],
            id="queue-more-settings",
        ),
        pytest.param(
            [("    team: security_desk", "    team: {default: security_desk}")],
            {},
            ["queue security: team {default: security_desk} (was security_desk)"],
            id="queue-team-written-differently",
        ),
        pytest.param(
            [NEW_QUEUE, ("queues: [security]", "queues: [security, vip]")],
            {},
            [
                "queue vip added: team europe, priority 60",
                "agent sec_desk: queue vip added",
            ],
            id="queue-added",
        ),
        # Agents, languages, the lists and settings of the file itself.
        pytest.param(
            [
                (
                    EMMA,
                    EMMA.replace("[en-US]", "[en-US, fr-FR]").replace(
                        "tech, supervisors]", "supervisors, security]"
                    ),
                )
            ],
            {},
            [
                "agent emma: language fr-FR added",
                "agent emma: queue security added",
                "agent emma: queue tech removed",
            ],
            id="agent-queues-languages",
        ),
        pytest.param(
            [NEW_AGENT],
            {},
            [
                "agent max added: Max Muster, extension 105, phone +4930000000105, "
                "languages [de-DE], queues [general]"
            ],
            id="agent-added",
        ),
        pytest.param(
            [("[en-US, zh-CN, fr-FR, de-DE]", "[de-DE, en-US, zh-CN, fr-FR]")],
            {},
            [
                "agent sec_desk: languages [de-DE, en-US, zh-CN, fr-FR] "
                "(was [en-US, zh-CN, fr-FR, de-DE])"
            ],
            id="agent-whisper-language",
        ),
        pytest.param(
            [
                ("    name: Emma Clarke\n", "    name: Emma Clarke-Jones\n"),
                ("    client: emma", '    phone: "+4930000000102"'),
            ],
            {},
            [
                "agent emma: name Emma Clarke-Jones (was Emma Clarke)",
                "agent emma: phone +4930000000102 (was not set)",
                "agent emma: client not set (was emma)",
            ],
            id="agent-settings",
        ),
        pytest.param(
            [
                ("brand: BitP", "brand: BitX"),
                ("  max_tries: 3 ", "  max_tries: 4 "),
                (
                    "  fallback:                # after max_tries: where the caller goes instead "
                    "of being dropped\n    queue: general",
                    "  fallback: {voicemail: true}",
                ),
                ("greeting: [greeting, anti_fraud]", "greeting: [anti_fraud, greeting]"),
                ('  voicemail: "3"', "  voicemail: null"),
                (
                    "sms_reference: true",
                    'sms_reference: true\ntesters: ["+4930111111", "+4930222222"]',
                ),
                ("  callback_tries: 3", "  callback_tries: 5"),
                ("  vip_priority: 50", "  vip_priority: 60"),
                ("  confirm_below: 0.6", "  confirm_below: 0.7"),
            ],
            {},
            [
                "brand: BitX (was BitP)",
                "defaults: max_tries 4 (was 3)",
                "defaults: fallback now records a voicemail (was queue general)",
                "greeting: [anti_fraud, greeting] (was [greeting, anti_fraud])",
                "speech: confirm_below 0.7 (was 0.6)",
                "hold_keys: voicemail off (was 3)",
                "known_callers: vip_priority 60 (was 50)",
                "after_hours: callback_tries 5 (was 3)",
                "testers: +4930111111 added",
                "testers: +4930222222 added",
            ],
            id="file-settings",
        ),
        pytest.param(
            [
                ("    end: 2026-12-01T05:00:00+00:00", "    end: 2026-12-01T06:00:00+00:00"),
                ('  "+44": en-US\n', '  "+44": en-US\n  "+353": en-US\n'),
                ('  "+41": de-DE\n', '  "+41": fr-FR\n'),
            ],
            {},
            [
                "announcement announcement_maintenance: end 2026-12-01T06:00:00+00:00 "
                "(was 2026-12-01T05:00:00+00:00)",
                "country_languages: +353 en-US added",
                "country_languages: +41 fr-FR (was de-DE)",
            ],
            id="announcement-country-languages",
        ),
        pytest.param(
            [
                ('  - {key: "3", code: fr-FR}\n', ""),
                ('  "+33": fr-FR\n  "+32": fr-FR\n', ""),
                ("    languages: [fr-FR, en-US]", "    languages: [en-US]"),
                (
                    "    languages: [en-US, zh-CN, fr-FR, de-DE]",
                    "    languages: [en-US, zh-CN, de-DE]",
                ),
            ],
            {},
            [
                "language fr-FR removed (was key 3)",
                "country_languages: +33 removed (was fr-FR)",
                "country_languages: +32 removed (was fr-FR)",
                "agent lucas: language fr-FR removed",
                "agent sec_desk: language fr-FR removed",
                "prompt catalog fr-FR removed",
            ],
            id="language-removed",
        ),
        # Prompts, per language, and what callers may say.
        pytest.param(
            [],
            {"de-DE": ((TEAM_CLOSED_DE, '  team_closed: "Wir sind {when} wieder da ({city})."'),)},
            [
                'de-DE prompt team_closed changed: "Wir sind {when} wieder da ({city})." '
                '(was "Das für Ihr Anliegen zuständige Team ist zurzeit nicht erreichbar. Wir '
                'sind {when}, Ortszeit {city}, wieder für Sie da.")'
            ],
            id="prompt-changed",
        ),
        pytest.param(
            [],
            {"de-DE": (("  goodbye:", f'  answer_later: "{LONG}"\n  goodbye:'),)},
            [
                'de-DE prompt answer_later added: "Unsere Telefonberatung ist montags bis freitags '
                'von 8 bis 20 Uhr für Sie da, jeweils zur Ortszeit des zuständigen…"'
            ],
            id="prompt-added-long",
        ),
        pytest.param(
            [],
            {
                "en-US": (
                    ("not show up, delayed, still waiting]", "not show up, delayed, stuck money]"),
                    ("voice: Polly.Joanna", "voice: Polly.Salli"),
                )
            },
            [
                "en-US prompts: voice Polly.Salli (was Polly.Joanna)",
                'en-US phrases for opt_funds: "stuck money" added, "still waiting" removed',
            ],
            id="catalog-voice-phrases",
        ),
    ],
)
def test_each_change_is_said_in_the_admins_words(
    shipped: Bundle,
    tmp_path: Path,
    rules: list[tuple[str, str]],
    prompts: dict[str, Edits],
    expected: list[str],
) -> None:
    changed = version(tmp_path, tuple(rules), prompts)
    assert describe_changes(shipped, changed) == expected


def test_the_example_sentence_of_the_brief(shipped: Bundle, tmp_path: Path) -> None:
    """Key 5 of the main menu moved from the general queue to tech (the shipped version)."""
    before = version(tmp_path, ((OPTION_5, OPTION_5.replace("tech", "general")),))
    assert describe_changes(before, shipped) == [
        "main menu: option 5 now goes to queue tech (was general)"
    ]


def test_what_was_removed(shipped: Bundle, tmp_path: Path) -> None:
    """The shipped version, from one that had one more menu, team, queue, agent and prompt."""
    bigger = version(
        tmp_path,
        (
            NEW_MENU,
            NEW_TEAM,
            NEW_QUEUE,
            NEW_AGENT,
            ("queues: [security]", "queues: [security, vip]"),
        ),
        {"de-DE": (("  goodbye:", f'  answer_later: "{LONG}"\n  goodbye:'),)},
    )
    assert describe_changes(bigger, shipped) == [
        "menu self_service: option 6 removed (was opt_funds, goes to menu billing)",
        "menu billing removed",
        "team latam removed",
        "queue vip removed",
        "agent max removed (was Max Muster)",
        "agent sec_desk: queue vip removed",
        'de-DE prompt answer_later removed (was "Unsere Telefonberatung ist montags bis '
        'freitags von 8 bis 20 Uhr für Sie da, jeweils zur Ortszeit des zuständigen…")',
    ]


def test_a_long_text_changed_near_its_end_shows_where(shipped: Bundle, tmp_path: Path) -> None:
    """Two long texts that differ after the first 120 characters are not cut into the same
    excerpt: both start shortly before the difference."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    before = version(
        tmp_path / "a", (), {"de-DE": (("  goodbye:", f'  answer_later: "{LONG}"\n  goodbye:'),)}
    )
    after_text = LONG.replace("rund um die Uhr", "jederzeit")
    after = version(
        tmp_path / "b",
        (),
        {"de-DE": (("  goodbye:", f'  answer_later: "{after_text}"\n  goodbye:'),)},
    )
    assert describe_changes(before, after) == [
        'de-DE prompt answer_later changed: "…zuständigen Teams. Sicherheitsnotfälle werden '
        'jederzeit angenommen." (was "…zuständigen Teams. Sicherheitsnotfälle werden rund um '
        'die Uhr angenommen.")'
    ]


def with_text(bundle: Bundle, language: str, prompt_id: str, text: str) -> Prompts:
    """The bundle's prompts with one text replaced (no files: for many texts in a row)."""
    catalog = bundle.prompts.catalogs[language]
    changed = dataclasses.replace(catalog, texts={**catalog.texts, prompt_id: text})
    return dataclasses.replace(
        bundle.prompts, catalogs={**bundle.prompts.catalogs, language: changed}
    )


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    words=st.lists(
        st.sampled_from(
            ["Konto", "Auszahlung", "wird", "bearbeitet", "Sicherheitsnotfälle", "bitte", "x"]
        ),
        min_size=1,
        max_size=60,
    ),
    at=st.integers(min_value=0, max_value=59),
    chinese=st.booleans(),
)
def test_two_excerpts_of_a_changed_text_never_look_the_same(
    shipped: Bundle, words: list[str], at: int, chinese: bool
) -> None:
    """Wherever one word of a text of any length changes, the two excerpts differ and stay short
    (a Chinese text has no spaces to cut at)."""
    glue = "" if chinese else " "
    changed = [*words]
    changed[at % len(words)] += "n"
    old, new = glue.join(words), glue.join(changed)
    sentences = describe_prompt_changes(
        with_text(shipped, "de-DE", "goodbye", old), with_text(shipped, "de-DE", "goodbye", new)
    )
    assert len(sentences) == 1
    quoted = re.fullmatch(r'de-DE prompt goodbye changed: "(.*)" \(was "(.*)"\)', sentences[0])
    assert quoted is not None, sentences[0]
    now, was = quoted.groups()
    assert now != was
    assert len(now) <= TEXT_LIMIT + 1 and len(was) <= TEXT_LIMIT + 1
    if len(old) <= TEXT_LIMIT and len(new) <= TEXT_LIMIT:
        assert (was, now) == (old, new)


def test_a_text_changed_in_its_spacing_only(shipped: Bundle) -> None:
    text = shipped.prompts.catalogs["en-US"].texts["goodbye"]
    spaced = with_text(shipped, "en-US", "goodbye", text.replace(" ", "\n  ", 1))
    assert describe_prompt_changes(shipped.prompts, spaced) == [
        "en-US prompt goodbye changed in its spaces and line breaks only"
    ]


# --- nothing goes unsaid: every single edit of the shipped version ----------------------------------

EXAMPLES: dict[type, object] = {
    Target: Target(voicemail=True),
    HolidayCalendar: HolidayCalendar(country="DE"),
    DateOverride: DateOverride(date=date(2026, 12, 28)),
    RulesVoice: RulesVoice(name="Polly.Lucia", language="es-ES", engine="polly-standard"),
}
"""A value for a setting of these types where the shipped rules leave it out."""


def _arms(annotation: Any) -> list[Any]:
    """The types an annotation allows, without None and `Annotated` constraints."""
    arms = (
        get_args(annotation)
        if get_origin(annotation) in (Union, type(int | None))
        else (annotation,)
    )
    return [
        get_args(arm)[0] if get_origin(arm) is Annotated else arm
        for arm in arms
        if arm is not type(None)
    ]


def _example(annotation: Any) -> object:
    """A value of `annotation`'s type, for a setting or element the shipped rules do not have."""
    for arm in _arms(annotation):
        origin = get_origin(arm) or arm
        simple = {int: 7, float: 0.5, str: "x", bool: True}
        if origin in simple:
            return simple[origin]
        if origin is tuple:
            return (_example(get_args(arm)[0]),)
        if origin in EXAMPLES:
            return EXAMPLES[origin]
    raise AssertionError(f"no example value of {annotation}: add one to EXAMPLES")


def _arm(annotation: Any, kind: type) -> Any:
    """The arm of `annotation` for a value of `kind` (dict or tuple), for its element types."""
    return next((arm for arm in _arms(annotation) if get_origin(arm) is kind), Any)


def single_edits(value: Any, annotation: Any) -> Iterator[tuple[str, Any]]:
    """(where, `value` with one edit there) for each setting, entry and list item: changed,
    removed, added; lists also reversed. Not validated: the diff must word any value."""
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            current = getattr(value, name)
            if isinstance(value, Target) and name == "voicemail" and current:
                continue  # voicemail is left for another destination (below), not for none
            variants = (
                [("", _example(info.annotation))]
                if current is None
                else single_edits(current, info.annotation)
            )
            for where, changed in variants:
                update = {name: changed}
                if isinstance(value, Target) and name in DESTINATIONS and not current:
                    # A target has one destination: the admin writes another one instead.
                    update = {
                        **{d: False if d == "voicemail" else None for d in DESTINATIONS},
                        **update,
                    }
                yield f"{name}{where and '.' + where}", value.model_copy(update=update)
    elif isinstance(value, dict):
        _, item_type = get_args(_arm(annotation, dict)) or (Any, Any)
        for key, item in value.items():
            yield f"{key} removed", {k: v for k, v in value.items() if k != key}
            for where, changed in single_edits(item, item_type):
                yield f"{key}.{where}", {**value, key: changed}
        if value:
            first = next(iter(value))
            new_key = (
                next(day for day in range(8) if day not in value)
                if isinstance(first, int)
                else f"{first}x"
            )
            yield f"{new_key} added", {**value, new_key: value[first]}
    elif isinstance(value, tuple):
        args = get_args(_arm(annotation, tuple))
        for index, item in enumerate(value):
            item_type = (
                args[index] if len(args) > 1 and args[1] is not Ellipsis else (args or (Any,))[0]
            )
            yield f"[{index}] removed", value[:index] + value[index + 1 :]
            for where, changed in single_edits(item, item_type):
                yield f"[{index}].{where}", (*value[:index], changed, *value[index + 1 :])
        yield "added", (*value, value[-1] if value else _example(args[0] if args else Any))
        if len(set(value)) > 1:
            yield "reversed", value[::-1]
    elif isinstance(value, bool):
        yield "", not value
    elif isinstance(value, int | float):
        yield "", value + 1
    elif isinstance(value, str):
        yield "", value + "x"
    elif isinstance(value, datetime | date):
        yield "", value + timedelta(days=1)
    else:
        raise AssertionError(f"no edit for {value!r}: teach single_edits")


def fields(rules: Rules) -> dict[str, Any]:
    """The settings of a rules version. (`Rules.__eq__` also compares the lookups it fills in
    lazily, `shared_lines`: two equal files can compare unequal.)"""
    return {name: getattr(rules, name) for name in Rules.model_fields}


def prompt_edits(prompts: Prompts) -> Iterator[tuple[str, Prompts]]:
    """Every catalog with one text changed, removed or added, one phrase list changed, removed,
    added or reordered, a recording added, or one of its own settings changed."""
    for language, catalog in prompts.catalogs.items():
        variants: list[tuple[str, Any]] = []
        texts, phrases = dict(catalog.texts), dict(catalog.phrases)
        for prompt_id, text in texts.items():
            variants.append((f"{prompt_id} changed", {"texts": {**texts, prompt_id: text + "!"}}))
            variants.append(
                (
                    f"{prompt_id} removed",
                    {"texts": {k: v for k, v in texts.items() if k != prompt_id}},
                )
            )
        variants.append(("prompt added", {"texts": {**texts, "brand_new": "Hello"}}))
        variants.append(("recording added", {"audio": {**catalog.audio, "goodbye": "goodbye.mp3"}}))
        for label, said in phrases.items():
            variants.append(
                (f"{label} phrase added", {"phrases": {**phrases, label: (*said, "zz")}})
            )
            variants.append(
                (
                    f"{label} phrases removed",
                    {"phrases": {k: v for k, v in phrases.items() if k != label}},
                )
            )
            variants.append((f"{label} reordered", {"phrases": {**phrases, label: said[::-1]}}))
        variants.append(("phrases added", {"phrases": {**phrases, "opt_new": ("new words",)}}))
        for field in dataclasses.fields(catalog):
            if isinstance(getattr(catalog, field.name), str) and field.name != "language":
                variants.append((field.name, {field.name: getattr(catalog, field.name) + "x"}))
        for where, update in variants:
            changed = dataclasses.replace(catalog, **update)
            yield (
                f"{language} {where}",
                dataclasses.replace(prompts, catalogs={**prompts.catalogs, language: changed}),
            )
    yield (
        "catalog removed",
        dataclasses.replace(
            prompts, catalogs={k: v for k, v in prompts.catalogs.items() if k != "fr-FR"}
        ),
    )


def test_every_single_edit_of_the_rules_is_said(shipped: Bundle) -> None:
    """Each edit of one setting, entry or list item anywhere in the rules gets a sentence of its
    own, not the last resort (`<section> changed`)."""
    edits = list(single_edits(shipped.rules, Rules))
    assert len(edits) > 700  # the walk reaches every menu option, team, queue and agent
    unsaid = []
    for where, edited in edits:
        assert fields(edited) != fields(shipped.rules), where
        said = describe_rules_changes(shipped.rules, edited)
        back = describe_rules_changes(edited, shipped.rules)
        if not said or not back or any(s.endswith(" changed") for s in said + back):
            unsaid.append((where, said, back))
    assert unsaid == []


def test_every_single_edit_of_the_prompts_is_said(shipped: Bundle) -> None:
    edits = list(prompt_edits(shipped.prompts))
    assert len(edits) > 1000
    unsaid = [
        where
        for where, edited in edits
        if not describe_prompt_changes(shipped.prompts, edited)
        or not describe_prompt_changes(edited, shipped.prompts)
    ]
    assert unsaid == []


@pytest.fixture(scope="module")
def edited_versions(shipped: Bundle) -> list[tuple[Rules, Prompts]]:
    rules = [(r, shipped.prompts) for _, r in single_edits(shipped.rules, Rules)]
    return (
        rules
        + [(shipped.rules, p) for _, p in prompt_edits(shipped.prompts)]
        + [(shipped.rules, shipped.prompts)]
    )


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_two_versions_differ_exactly_when_something_is_said(
    edited_versions: list[tuple[Rules, Prompts]], data: st.DataObject
) -> None:
    """Any two versions, each one edit away from the shipped one (or the shipped one itself):
    the description is empty exactly when they are the same."""
    old_rules, old_prompts = data.draw(st.sampled_from(edited_versions))
    new_rules, new_prompts = data.draw(st.sampled_from(edited_versions))
    differ = fields(old_rules) != fields(new_rules) or old_prompts != new_prompts
    said = describe_rules_changes(old_rules, new_rules) + describe_prompt_changes(
        old_prompts, new_prompts
    )
    assert bool(said) == differ, said
