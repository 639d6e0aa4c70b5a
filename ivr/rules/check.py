"""Checks that span the whole rules file and the prompt catalogs, and the one entry point that loads both.

`load_bundle` is what `ivr check`, the service and the tests use: it either returns rules the call flow
can run on without surprises, or raises `RulesError` listing every problem with file, line and column.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from ivr.audio import clip_seconds, is_remote, spoken_length
from ivr.hours import missing_date_words
from ivr.language_id import wrong_language
from ivr.rules.bundle import Bundle
from ivr.rules.loader import Location, Problem, RulesError, Source, load_prompts, load_rules
from ivr.rules.prompts import (
    BUILT_IN_WORDS,
    GLOBAL_PLACEHOLDERS,
    SYSTEM_PROMPTS,
    Prompts,
    placeholders,
)
from ivr.rules.schema import Queue, Rules, Target
from ivr.rules.secrets import asked_secret, has_words, problem_text
from ivr.rules.speech_check import check_speech
from ivr.voices import BUILT_IN, Engine, Voice, VoiceTable, entry_problems

SYSTEM_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "language_option": frozenset({"key"}),
    "press_key": frozenset({"label", "key"}),
    "queue_position": frozenset({"position"}),
    "team_closed": frozenset({"when", "city"}),
    "callback_confirmed": frozenset({"number"}),
    "ticket_reference": frozenset({"reference"}),
    "queue_wait": frozenset({"wait"}),
    "queue_wait_under": frozenset({"wait"}),
    "queue_wait_between": frozenset({"low", "high"}),
    "hold_option_position": frozenset({"key"}),
    "hold_option_callback": frozenset({"key"}),
    "hold_option_voicemail": frozenset({"key"}),
    "callback_kept": frozenset({"number"}),
    "callback_code": frozenset({"code"}),
    "callback_opening": frozenset({"code"}),
    "sms_reference": frozenset({"reference"}),
    "sms_callback": frozenset({"reference", "code"}),
    "agent_whisper": frozenset({"queue", "language", "reference"}),
    "whisper_locked": frozenset({"time"}),
    "speech_confirm": frozenset({"label"}),
    "incident_notice": frozenset({"eta"}),
    "incident_option_wait": frozenset({"key"}),
    "incident_option_callback": frozenset({"key"}),
}
"""Placeholders the service fills in for its own prompts; each must appear in every translation."""


def _targets(rules: Rules) -> Iterator[tuple[Location, Target]]:
    yield ("defaults", "fallback"), rules.defaults.fallback
    for menu_id, menu in rules.menus.items():
        if menu.fallback:
            yield ("menus", menu_id, "fallback"), menu.fallback
        for key, option in menu.options.items():
            yield ("menus", menu_id, "options", key), option


def _prompt_references(rules: Rules) -> Iterator[tuple[Location, str]]:
    for index, prompt in enumerate(rules.greeting):
        yield ("greeting", index), prompt
    for index, prompt in enumerate(rules.callback_opening or ()):
        yield ("callback_opening", index), prompt
    for index, announcement in enumerate(rules.announcements):
        yield ("announcements", index, "prompt"), announcement.prompt
    for queue_id, queue in rules.queues.items():
        for index, prompt in enumerate(queue.comfort):
            yield ("queues", queue_id, "comfort", index), prompt
    for menu_id, menu in rules.menus.items():
        if menu.intro:
            yield ("menus", menu_id, "intro"), menu.intro
        for key, option in menu.options.items():
            yield ("menus", menu_id, "options", key, "label"), option.label
    for loc, target in _targets(rules):
        if target.say:
            yield (*loc, "say"), target.say


def _reachable_menus(rules: Rules) -> set[str]:
    seen: set[str] = set()
    todo = [rules.main_menu]
    if rules.defaults.fallback.menu:
        todo.append(rules.defaults.fallback.menu)
    while todo:
        menu_id = todo.pop()
        if menu_id in seen or menu_id not in rules.menus:
            continue
        seen.add(menu_id)
        menu = rules.menus[menu_id]
        todo += [o.menu for o in menu.options.values() if o.menu]
        if menu.fallback and menu.fallback.menu:
            todo.append(menu.fallback.menu)
    return seen


def check_references(rules: Rules, source: Source) -> list[Problem]:
    """Every name used in the rules points at something that exists."""
    problems: list[Problem] = []
    codes = set(rules.language_codes)

    def need(condition: bool, loc: Location, message: str) -> None:
        if not condition:
            problems.append(source.problem(loc, message))

    need(
        rules.defaults.language in codes,
        ("defaults", "language"),
        f"default language {rules.defaults.language!r} is not in 'languages'",
    )
    for prefix, code in rules.country_languages.items():
        need(
            code in codes, ("country_languages", prefix), f"language {code!r} is not in 'languages'"
        )
    need(
        rules.operator_queue in rules.queues,
        ("operator_queue",),
        f"operator queue {rules.operator_queue!r} is not defined under 'queues'",
    )
    need(
        rules.main_menu in rules.menus,
        ("main_menu",),
        f"main menu {rules.main_menu!r} is not defined under 'menus'",
    )
    for loc, target in _targets(rules):
        if target.menu:
            need(target.menu in rules.menus, (*loc, "menu"), f"menu {target.menu!r} is not defined")
        if target.queue:
            need(
                target.queue in rules.queues,
                (*loc, "queue"),
                f"queue {target.queue!r} is not defined",
            )
        if target.voicemail and not rules.after_hours.voicemail:
            need(False, (*loc, "voicemail"), "voicemail is switched off in 'after_hours'")
    for queue_id, queue in rules.queues.items():
        teams = [queue.team] if isinstance(queue.team, str) else list(queue.team.values())
        for team in teams:
            need(team in rules.teams, ("queues", queue_id, "team"), f"team {team!r} is not defined")
        if isinstance(queue.team, dict):
            for language in queue.team:
                need(
                    language in codes or language == "default",
                    ("queues", queue_id, "team", language),
                    f"{language!r} is neither a language in 'languages' nor 'default'",
                )
            missing = [c for c in rules.language_codes if c not in queue.team]
            need(
                "default" in queue.team or not missing,
                ("queues", queue_id, "team"),
                f"no team for {', '.join(missing)}: add them or a 'default'",
            )
    extensions: dict[str, str] = {}
    for agent_id, agent in rules.agents.items():
        for index, language in enumerate(agent.languages):
            need(
                language in codes,
                ("agents", agent_id, "languages", index),
                f"language {language!r} is not in 'languages'",
            )
        for index, queue_id in enumerate(agent.queues):
            need(
                queue_id in rules.queues,
                ("agents", agent_id, "queues", index),
                f"queue {queue_id!r} is not defined",
            )
        need(
            agent.extension not in extensions,
            ("agents", agent_id, "extension"),
            f"extension {agent.extension} is also {extensions.get(agent.extension)!r}'s",
        )
        extensions.setdefault(agent.extension, agent_id)
    if rules.agents:  # without any agents yet, every line is unserved on purpose
        for queue_id in rules.queues:
            unserved = [c for c in rules.language_codes if not rules.agents_serving(queue_id, c)]
            need(
                not unserved,
                ("queues", queue_id),
                f"no agent serves queue {queue_id!r} in {', '.join(unserved)}",
            )
    reachable = _reachable_menus(rules)
    for menu_id in rules.menus:
        need(
            menu_id in reachable,
            ("menus", menu_id),
            f"menu {menu_id!r} cannot be reached from {rules.main_menu!r}",
        )
    return problems


def check_silence_limit(rules: Rules, source: Source) -> list[Problem]:
    """`defaults.silence_limit` outlasts the time-outs of every menu before its fallback acts.

    Even a menu with nothing to say takes max_tries time-outs before its fallback: a shorter limit
    would hang up on a caller who cannot press keys instead of taking them to the fallback."""
    defaults = rules.defaults
    limit, timeout = defaults.silence_limit, defaults.gather_timeout
    tries = [("a menu", defaults.max_tries)]
    tries += [
        (f"menu {menu_id!r}", menu.max_tries)
        for menu_id, menu in rules.menus.items()
        if menu.max_tries is not None
    ]
    return [
        source.problem(
            ("defaults", "silence_limit"),
            f"defaults.silence_limit: {limit} s would let a caller who presses nothing go before "
            f"the fallback of {where} acts: its {count} time-outs of {timeout} s alone take "
            f"{count * timeout} s (make silence_limit longer, or max_tries or gather_timeout "
            "shorter)",
        )
        for where, count in tries
        if count * timeout >= limit
    ]


SPEECH_PROMPTS = ("speech_intro", "speech_not_understood", "speech_confirm", "speech_choose")
OPTIONAL_SYSTEM_PROMPTS: dict[str, str] = {
    "offer_other_language": "after_hours.other_languages",
    **dict.fromkeys(SPEECH_PROMPTS, "listen: true"),
}
"""System prompts only rules that switch their feature on need (the setting that does)."""


def _needed_system_prompts(rules: Rules) -> frozenset[str]:
    needed = set(SYSTEM_PROMPTS) - set(OPTIONAL_SYSTEM_PROMPTS)
    if rules.after_hours.other_languages:
        needed.add("offer_other_language")
    if any(menu.listen for menu in rules.menus.values()):
        needed.update(SPEECH_PROMPTS)
    return frozenset(needed)


def check_prompts(
    rules: Rules, source: Source, prompts: Prompts, prompt_sources: dict[str, Source]
) -> list[Problem]:
    """Every prompt the caller may hear exists in every language, with the placeholders it needs."""
    problems: list[Problem] = []
    used = list(_prompt_references(rules))
    for language, catalog in prompts.catalogs.items():
        catalog_source = prompt_sources[language]
        for loc, prompt_id in used:
            if prompt_id not in catalog.texts:
                problems.append(
                    source.problem(
                        loc, f"prompt {prompt_id!r} is missing from {catalog_source.file}"
                    )
                )
        for prompt_id in sorted(_needed_system_prompts(rules) - set(catalog.texts)):
            problems.append(catalog_source.problem(("prompts",), f"missing prompt {prompt_id!r}"))
        for prompt_id, text in catalog.texts.items():
            needed = SYSTEM_PLACEHOLDERS.get(prompt_id, frozenset())
            found = placeholders(text)
            where: Location = ("prompts", prompt_id)
            for name in sorted(found - needed - GLOBAL_PLACEHOLDERS):
                problems.append(catalog_source.problem(where, f"unknown placeholder {{{name}}}"))
            for name in sorted(needed - found):
                problems.append(catalog_source.problem(where, f"must contain {{{name}}}"))
    return problems


def check_secrets(prompts: Prompts, prompt_sources: dict[str, Source]) -> list[Problem]:
    """No prompt, in any of the rules' languages, asks for a secret (`ivr.rules.secrets`)."""
    problems: list[Problem] = []
    for language, catalog in prompts.catalogs.items():
        for prompt_id, text in catalog.texts.items():
            asked = asked_secret(text, language, prompt_id, catalog.secret_words)
            if asked is not None:
                where: Location = ("prompts", prompt_id)
                problems.append(prompt_sources[language].problem(where, problem_text(asked)))
    return problems


def check_secret_words(prompts: Prompts, prompt_sources: dict[str, Source]) -> list[Problem]:
    """Warnings: catalogs of a language the service has no words for to tell a prompt that asks
    for a secret (`ivr.rules.secrets`), that do not give theirs in `secret_words:`."""
    return [
        prompt_sources[language].warning(
            ("language",),
            f"no words of {language} to tell a prompt that asks for a secret: add secret_words: "
            "{secrets: {password: [...], PIN: [...], one-time code: [...], private key: [...], "
            "seed phrase: [...]}, asks: [...], never: [...], no: [...]} in this language, or its "
            "prompts are checked with English, Chinese, French and German words only",
        )
        for language, catalog in prompts.catalogs.items()
        if catalog.secret_words is None and not has_words(language)
    ]


def check_date_words(prompts: Prompts, prompt_sources: dict[str, Source]) -> list[Problem]:
    """Warnings: catalogs of a language the service has no words for to lead into a day and a
    time (`rules.prompts.DateWords`), that do not give theirs in `dates:`."""
    warnings: list[Problem] = []
    for language, catalog in prompts.catalogs.items():
        try:
            missing = missing_date_words(catalog.locale, catalog.dates)
        except ValueError:
            continue  # an unknown locale is refused where it is used
        if missing:
            where: Location = ("dates",) if catalog.dates != BUILT_IN_WORDS else ("locale",)
            wanted = ", ".join(f'{key}: "{example}"' for key, example in missing.items())
            message = (
                f"no words of {language} to lead into a day and a time: add dates: {{{wanted}}} "
                "in this language, or callers hear the bare date and time"
            )
            warnings.append(prompt_sources[language].warning(where, message))
    return warnings


def check_languages(
    rules: Rules, prompts: Prompts, prompt_sources: dict[str, Source]
) -> list[Problem]:
    """Warnings: prompts that read as another of the rules' languages than their catalog's.

    A warning, not an error: the guess (see ivr/language_id.py) is for `ivr check` and
    `ivr simulate --explore` to report, and the service does not refuse a catalog on it."""
    warnings: list[Problem] = []
    for language, catalog in prompts.catalogs.items():
        for prompt_id, text in catalog.texts.items():
            if written_in := wrong_language(text, language, rules.language_codes):
                message = f"reads as {written_in}, not {language}"
                warnings.append(prompt_sources[language].warning(("prompts", prompt_id), message))
    return warnings


def _rules_voices(rules: Rules) -> tuple[VoiceTable, dict[int, dict[str, str]]]:
    """The shipped table with the rules' `voices:` it accepts, and what is wrong with the others
    (by their index, then field)."""
    table = BUILT_IN
    refused: dict[int, dict[str, str]] = {}
    for index, entry in enumerate(rules.voices):
        found = entry_problems(entry.name, entry.language, entry.engine, table)
        if found:
            refused[index] = found
        else:
            table = table.extended([Voice(entry.name, entry.language, cast(Engine, entry.engine))])
    return table, refused


def voice_table(rules: Rules) -> VoiceTable:
    """The voices a `<Say>` of these rules may use: the shipped ones (`ivr/voices.yaml`) and the
    rules' own (`voices:`)."""
    return _rules_voices(rules)[0]


def check_voices(
    rules: Rules, source: Source, prompts: Prompts, prompt_sources: dict[str, Source]
) -> list[Problem]:
    """Every voice the rules add is well-formed and new (`ivr.voices.entry_problems`), and every
    catalog's `voice:` speaks its `say_language:` in the table they make with the shipped one."""
    table, refused = _rules_voices(rules)
    problems = [
        source.problem(("voices", index, field_name), message)
        for index, found in refused.items()
        for field_name, message in found.items()
    ]
    for language, catalog in prompts.catalogs.items():
        problem = table.problem(catalog.voice, catalog.say_language)
        if problem is not None:
            problems.append(prompt_sources[language].problem(("voice",), problem))
    return problems


_SERVED_AUDIO = re.compile(r"^/voice/audio/(?P<language>[^/]+)/(?P<name>[^/]+)$")
"""A recording the service serves itself (`voice_prompts/audio/<language>/<name>`)."""


def _hold_clip(queue: Queue, prompts: Prompts) -> tuple[float | None, str]:
    """How long the queue's hold clip plays (None: unknown), and how that length is known."""
    assert queue.hold_music is not None
    served = _SERVED_AUDIO.match(queue.hold_music)
    if served and not is_remote(queue.hold_music):
        measured = clip_seconds(prompts.audio_root / served["language"] / served["name"])
        if measured is not None:
            return measured, "measured"
    return queue.hold_music_seconds, "declared in hold_music_seconds"


def check_audio(rules: Rules, source: Source, prompts: Prompts) -> list[Problem]:
    """Warnings about clip lengths: a hold round lasts as long as its clip (a `<Play>` is not cut
    short), so a clip longer than `announce_every` makes callers wait longer between updates."""
    warnings: list[Problem] = []
    for queue_id, queue in rules.queues.items():
        if queue.hold_music is None:
            continue
        where: Location = ("queues", queue_id, "hold_music")
        seconds, known = _hold_clip(queue, prompts)
        if seconds is None:
            warnings.append(
                source.warning(
                    where,
                    "the length of this clip is unknown: declare it with hold_music_seconds, "
                    f"or callers may wait longer than announce_every ({queue.announce_every} s) "
                    "between updates",
                )
            )
        elif seconds > queue.announce_every:
            declared: Location = ("queues", queue_id, "hold_music_seconds")
            if known != "measured" and declared in source.positions:
                where = declared  # the number the admin wrote
            warnings.append(
                source.warning(
                    where,
                    f"the hold clip plays {spoken_length(seconds)} ({known}), longer than "
                    f"announce_every ({queue.announce_every} s): callers hear their position only "
                    "every time the clip ends; use a shorter clip or a longer announce_every",
                )
            )
    for catalog in prompts.catalogs.values():
        for file_name in catalog.audio.values():
            path = prompts.audio_root / catalog.language / file_name
            if clip_seconds(path) is None:
                warnings.append(
                    Problem(
                        str(path),
                        1,
                        1,
                        "cannot be read as audio: Twilio may fail to play it",
                        "warning",
                    )
                )
    return warnings


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a bundle is built (it has no cycles to collect).

    Parsing 1,000 menus makes some hundred thousand objects that all stay alive until the file is
    read, so the collector's full passes, each walking every object of the process, come often:
    they were 40 % of the load time and, holding the GIL, stalled every other thread (the requests
    served while the background thread reloads) for ~100 ms at a time. Loads running at once in one
    process never leave it paused: the one that found the collector enabled enables it again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_bundle(rules_path: Path | str, prompts_dir: Path | str) -> Bundle:
    """Load and fully check the rules and their prompts; raise `RulesError` listing every problem."""
    with _collector_paused():
        return _load_bundle(rules_path, prompts_dir)


def _load_bundle(rules_path: Path | str, prompts_dir: Path | str) -> Bundle:
    rules, source = load_rules(rules_path)
    problems = check_references(rules, source) + check_silence_limit(rules, source)
    try:
        prompts, prompt_sources = load_prompts(prompts_dir, rules.language_codes)
    except RulesError as exc:
        raise RulesError(problems + exc.problems) from exc
    problems += check_prompts(rules, source, prompts, prompt_sources)
    problems += check_voices(rules, source, prompts, prompt_sources)
    problems += check_secrets(prompts, prompt_sources)
    speech = check_speech(rules, source, prompts, prompt_sources)
    problems += [p for p in speech if p.severity == "error"]
    warnings = check_audio(rules, source, prompts)
    warnings += check_languages(rules, prompts, prompt_sources)
    warnings += check_date_words(prompts, prompt_sources)
    warnings += check_secret_words(prompts, prompt_sources)
    warnings += [p for p in speech if p.severity == "warning"]
    if problems:
        # The warnings go along: an admin fixing the errors should see them too.
        raise RulesError(_in_file_order(problems + warnings))
    return Bundle(rules=rules, prompts=prompts, warnings=tuple(_in_file_order(warnings)))


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.file, p.line, p.column))
