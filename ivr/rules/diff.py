"""What changed between two versions of the rules and prompts, said the way an admin thinks of them.

Why: before a version goes live (`ivr rules diff A B`, the dashboard's Rules page) an admin has to
see what callers will notice. A line diff of YAML shows that `mon-fri: "08:00-20:00"` became two
lines, not that the team now closes at 18:00 on Fridays; it shows a flow mapping, not that key 5 of
the main menu now leads to another queue. So each section of the rules file gets a small function
that words its changes ("main menu: option 5 now goes to queue tech (was general)", "team europe:
Friday 08:00-18:00 (was 08:00-20:00)"), on the typed values `ivr.rules.schema` parsed (spans like
`mon-fri` are already days there), and the prompt catalogs are compared text by text.

Nothing may go unsaid: a setting without a sentence of its own gets a generic one ("queue funds:
priority 40 (was 30)"), and a top-level section that differs without any sentence still says so
(`<section> changed`), which tests/rules/test_diff.py shows no single edit ever needs.

Values are written as the admin writes them in YAML (`true`, `[a, b]`, `08:00-20:00`), never as
Python reprs; a value left out is "not set".
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import date, datetime
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel

from ivr.rules.bundle import Bundle
from ivr.rules.prompts import Catalog, Prompts
from ivr.rules.schema import (
    Agent,
    Announcement,
    DateOverride,
    HolidayCalendar,
    Menu,
    Option,
    Queue,
    Rules,
    Target,
    Team,
    TimeRange,
)

__all__ = ["describe_changes", "describe_prompt_changes", "describe_rules_changes", "said"]

TEXT_LIMIT = 120
"""Characters of a prompt text quoted in a sentence; a longer one is cut with an ellipsis."""
ELLIPSIS = "…"
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
NOT_SET = "not set"
ALWAYS = (TimeRange(start=0, end=1440),)
"""A day of a team whose weekly hours are `always`."""

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def describe_changes(old: Bundle, new: Bundle) -> list[str]:
    """What changed from `old` to `new`, one sentence per change, in the order of the rules file."""
    return describe_rules_changes(old.rules, new.rules) + describe_prompt_changes(
        old.prompts, new.prompts
    )


# --- values as the admin writes them, and the generic sentences -----------------------------------


def said(value: object) -> str:
    """A value as it stands in the YAML: `true`, `08:00-20:00`, `[a, b]`, `{key: value}`."""
    if value is None:
        return NOT_SET
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, TimeRange):
        return f"{_clock(value.start)}-{_clock(value.end)}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # `hold_music_seconds: 25` is read as 25.0
    if isinstance(value, BaseModel):
        return said(_written(value))
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{said(k)}: {said(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(said(item) for item in value) + "]"
    return str(value) if value != "" else '""'


def _written(model: BaseModel) -> dict[str, object]:
    """The fields of `model` an admin wrote: the required ones and those not at their default."""
    written = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if info.is_required() or value != info.get_default(call_default_factory=True):
            written[name] = value
    return written


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _setting(subject: str, old: object, new: object) -> str:
    """The generic sentence: `queue funds: priority 40 (was 30)`."""
    return f"{subject} {said(new)} (was {said(old)})"


Wording = Callable[[Any, Any], list[str]]
"""The sentences for one setting that changed, from its old and new value."""


def _settings(
    prefix: str, old: BaseModel, new: BaseModel, wordings: Mapping[str, Wording] | None = None
) -> list[str]:
    """A sentence for each field that differs, in the schema's order (the file's, as a rule):
    the field's own wording if it has one, else the generic `<prefix><field> <new> (was <old>)`."""
    sentences: list[str] = []
    for name in type(new).model_fields:
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            wording = (wordings or {}).get(name)
            sentences += (
                wording(before, after) if wording else [_setting(prefix + name, before, after)]
            )
    return sentences


def _said_elsewhere(_before: object, _after: object) -> list[str]:
    """The wording of a field whose change is said with another field (a target's destination)."""
    return []


def _in_order(old: Iterable[K], new: Iterable[K]) -> list[K]:
    """The keys of both versions in file order: the new file's, each removed key after the key it
    followed in the old file."""
    merged = list(new)
    present = set(merged)
    previous: K | None = None
    for key in old:
        if key not in present:
            merged.insert(merged.index(previous) + 1 if previous is not None else 0, key)
            present.add(key)
        previous = key
    return merged


def _keyed(
    old: Mapping[K, V],
    new: Mapping[K, V],
    added: Callable[[K, V], list[str]],
    removed: Callable[[K, V], list[str]],
    changed: Callable[[K, V, V], list[str]],
) -> list[str]:
    """The sentences for each key of two mappings (menus, queues, prompts...), in file order."""
    sentences: list[str] = []
    for key in _in_order(old, new):
        if key not in old:
            sentences += added(key, new[key])
        elif key not in new:
            sentences += removed(key, old[key])
        elif old[key] != new[key]:
            sentences += changed(key, old[key], new[key])
    return sentences


def _members(subject: str, old: Sequence[str], new: Sequence[str]) -> list[str]:
    """A list read as a set (testers, an agent's queues): `testers: +4930111111 added`, `agent
    emma: queue tech removed`; the whole list when nothing but its order (or a repeat) changed."""
    added = [f"{subject} {item} added" for item in new if item not in old]
    removed = [f"{subject} {item} removed" for item in old if item not in new]
    return added + removed or [_setting(_plural(subject), old, new)]


def _plural(subject: str) -> str:
    """`agent emma: queue` -> `agent emma: queues`; `testers:` stays."""
    return subject if subject.endswith(":") else subject + "s"


# --- the rules file, section by section -----------------------------------------------------------


def describe_rules_changes(old: Rules, new: Rules) -> list[str]:
    """The changes between two rules files, section by section in the order of the shipped
    `routing_rules.yaml` (`FILE_ORDER`)."""
    sentences: list[str] = []
    fields = list(Rules.model_fields)
    ordered = [name for name in FILE_ORDER if name in fields]
    for name in ordered + [name for name in fields if name not in ordered]:
        before, after = getattr(old, name), getattr(new, name)
        if before == after:
            continue
        section = SECTIONS.get(name)
        found = section(old, new) if section else _top_level(name, before, after)
        sentences += found or [f"{name} changed"]  # never silent, whatever a section missed
    return sentences


def _top_level(name: str, old: Any, new: Any) -> list[str]:
    """A setting of the file itself (`brand: BitX (was BitP)`) or of a section of plain settings
    (`after_hours: callback_tries 5 (was 3)`)."""
    if isinstance(old, BaseModel) and type(old) is type(new):
        return _settings(f"{name}: ", old, new)
    return [_setting(f"{name}:", old, new)]


def _defaults(old: Rules, new: Rules) -> list[str]:
    return _settings("defaults: ", old.defaults, new.defaults, {"fallback": _fallback("defaults")})


# Menus --------------------------------------------------------------------------------------------


def _menu_name(menu_id: str) -> str:
    return "main menu" if menu_id == "main" else f"menu {menu_id}"


def _menus(old: Rules, new: Rules) -> list[str]:
    def added(menu_id: str, menu: Menu) -> list[str]:
        count = len(menu.options)
        return [f"{_menu_name(menu_id)} added with {count} option{'' if count == 1 else 's'}"]

    return _keyed(
        old.menus,
        new.menus,
        added,
        lambda menu_id, _: [f"{_menu_name(menu_id)} removed"],
        lambda menu_id, before, after: _menu(_menu_name(menu_id), before, after),
    )


def _menu(name: str, old: Menu, new: Menu) -> list[str]:
    def options(before: dict[str, Option], after: dict[str, Option]) -> list[str]:
        return _keyed(
            before,
            after,
            lambda key, option: [f"{name}: option {key} added: {_option_summary(option)}"],
            lambda key, option: [f"{name}: option {key} removed (was {_option_summary(option)})"],
            lambda key, was, now: _option(f"{name}: option {key}", was, now),
        )

    def listen(_before: bool, after: bool) -> list[str]:
        return [f"{name}: {'now listens' if after else 'no longer listens'} to what callers say"]

    return _settings(
        f"{name}: ", old, new, {"options": options, "fallback": _fallback(name), "listen": listen}
    )


def _option_summary(option: Option) -> str:
    return f"{option.label}, {_destination(option)}"


def _option(subject: str, old: Option, new: Option) -> list[str]:
    destination = [_target_change(subject, old, new)] if _where(old) != _where(new) else []

    def lock_offer(_before: bool, after: bool) -> list[str]:
        return [
            f"{subject} {'now offers' if after else 'no longer offers'} to lock the caller's account"
        ]

    # The destination fields come first in the schema: said once, whichever of them changed.
    wordings = dict.fromkeys(DESTINATIONS, _said_elsewhere) | {"lock_offer": lock_offer}
    return destination + _settings(f"{subject} ", old, new, wordings)


DESTINATIONS = ("menu", "queue", "say", "voicemail")
"""The fields of a `Target`, of which exactly one is set."""


def _where(target: Target) -> tuple[str, str]:
    """Where a target leads: its kind and, but for voicemail, the id."""
    if target.menu is not None:
        return "menu", target.menu
    if target.queue is not None:
        return "queue", target.queue
    if target.say is not None:
        return "say", target.say
    return "voicemail", ""


def _destination(target: Target) -> str:
    """`goes to queue tech`, `goes to menu funds`, `says answer_hours`, `records a voicemail`."""
    kind, name = _where(target)
    if kind == "say":
        return f"says {name}"
    if kind == "voicemail":
        return "records a voicemail"
    return f"goes to {kind} {name}"


def _fallback(owner: str) -> Wording:
    """The wording of a `fallback:` (of the defaults or of a menu): where callers now go."""
    return lambda before, after: [_target_change(f"{owner}: fallback", before, after)]


def _target_change(subject: str, old: Target | None, new: Target | None) -> str:
    """`main menu: option 5 now goes to queue tech (was general)`: the old kind is only named
    when it differs (`(was queue general)`)."""
    if new is None:
        return f"{subject} {NOT_SET} (was {_destination(old) if old else NOT_SET})"
    if old is None:
        return f"{subject} now {_destination(new)} (was {NOT_SET})"
    (old_kind, old_name), (new_kind, _) = _where(old), _where(new)
    if old_kind == new_kind:
        was = old_name
    elif old_kind == "say":
        was = f"saying {old_name}"
    elif old_kind == "voicemail":
        was = "a voicemail"
    else:
        was = f"{old_kind} {old_name}"
    return f"{subject} now {_destination(new)} (was {was})"


# Languages, announcements, lists of numbers -------------------------------------------------------


def _languages(old: Rules, new: Rules) -> list[str]:
    before = {choice.code: choice.key for choice in old.languages}
    after = {choice.code: choice.key for choice in new.languages}
    sentences = _keyed(
        before,
        after,
        lambda code, key: [f"language {code} added (key {key})"],
        lambda code, key: [f"language {code} removed (was key {key})"],
        lambda code, was, now: [f"language {code}: key {now} (was {was})"],
    )
    # The same languages and keys in another order: the language menu offers them so.
    return sentences or [_setting("languages: order", list(before), list(after))]


def _country_languages(old: Rules, new: Rules) -> list[str]:
    before, after = old.country_languages, new.country_languages
    sentences = _keyed(
        before,
        after,
        lambda prefix, code: [f"country_languages: {prefix} {code} added"],
        lambda prefix, code: [f"country_languages: {prefix} removed (was {code})"],
        lambda prefix, was, now: [_setting(f"country_languages: {prefix}", was, now)],
    )
    return sentences or [_setting("country_languages: order", list(before), list(after))]


def _announcements(old: Rules, new: Rules) -> list[str]:
    """Announcements are matched by prompt: one played at new times is one change, not two."""
    by_prompt: dict[str, tuple[list[Announcement], list[Announcement]]] = {}
    for side, announcements in enumerate((old.announcements, new.announcements)):
        for announcement in announcements:
            by_prompt.setdefault(announcement.prompt, ([], []))[side].append(announcement)
    old_order = [a.prompt for a in old.announcements]
    new_order = [a.prompt for a in new.announcements]
    sentences = []
    for prompt in dict.fromkeys(_in_order(old_order, new_order)):
        before, after = by_prompt[prompt]
        subject = f"announcement {prompt}"
        if len(before) == len(after) == 1:
            sentences += _settings(f"{subject}: ", before[0], after[0])
            continue
        sentences += [f"{subject} removed (was {_period(a)})" for a in before if a not in after]
        sentences += [f"{subject} added: {_period(a)}" for a in after if a not in before]
    return sentences or [_setting("announcements: order", old_order, new_order)]


def _period(announcement: Announcement) -> str:
    return f"{said(announcement.start)} to {said(announcement.end)}"


def _testers(old: Rules, new: Rules) -> list[str]:
    return _members("testers:", old.testers, new.testers)


def _callback_prefixes(old: Rules, new: Rules) -> list[str]:
    before, after = old.callback_prefixes, new.callback_prefixes
    if before is None or after is None:  # unset: the calling codes of country_languages
        return [_setting("callback_prefixes:", before, after)]
    return _members("callback_prefixes:", before, after)


def _hold_keys(old: Rules, new: Rules) -> list[str]:
    """A hold option switched off is `null` in the file: it is said "off", not "not set"."""
    return [
        f"hold_keys: {name} {getattr(new.hold_keys, name) or 'off'}"
        f" (was {getattr(old.hold_keys, name) or 'off'})"
        for name in type(new.hold_keys).model_fields
        if getattr(old.hold_keys, name) != getattr(new.hold_keys, name)
    ]


# Teams and their hours ----------------------------------------------------------------------------

Weekly = Mapping[int, tuple[TimeRange, ...]]
"""`Team.weekly`: weekday (0 = Monday) -> opening ranges; a day left out is closed."""


def _teams(old: Rules, new: Rules) -> list[str]:
    return _keyed(
        old.teams,
        new.teams,
        lambda team_id, team: [f"team {team_id} added: {team.timezone}, {_week(team.weekly)}"],
        lambda team_id, _: [f"team {team_id} removed"],
        lambda team_id, before, after: _team(f"team {team_id}", before, after),
    )


def _team(subject: str, old: Team, new: Team) -> list[str]:
    def holidays(before: HolidayCalendar | None, after: HolidayCalendar | None) -> list[str]:
        return [f"{subject}: public holidays {_calendar(after)} (was {_calendar(before)})"]

    return _settings(
        f"{subject}: ",
        old,
        new,
        {
            "timezone": lambda before, after: [_setting(f"{subject}: time zone", before, after)],
            "weekly": partial(_weekly, subject),
            "holidays": holidays,
            "overrides": partial(_overrides, subject),
        },
    )


def _weekly(subject: str, old: Weekly, new: Weekly) -> list[str]:
    """Hours per weekday (`Friday 08:00-18:00 (was 08:00-20:00)`), days changed alike joined
    (`Monday-Friday ...`); a change to or from `always` in one sentence."""
    if _always(old) != _always(new):
        return [f"{subject}: {_week(new)} (was {_week(old)})"]
    changed = [
        (day, (_day(old, day), _day(new, day)))
        for day in range(7)
        if _day(old, day) != _day(new, day)
    ]
    if not changed:  # e.g. `sat: closed` written out where the day was left out before
        return [f"{subject}: weekly hours written differently, the same opening times"]
    return [
        f"{subject}: {days} {_hours(after)} (was {_hours(before)})"
        for days, (before, after) in _spans(changed)
    ]


def _day(weekly: Weekly, day: int) -> tuple[TimeRange, ...]:
    return weekly.get(day, ())


def _always(weekly: Weekly) -> bool:
    return all(_day(weekly, day) == ALWAYS for day in range(7))


def _week(weekly: Weekly) -> str:
    """A whole week: `always open` or `Monday-Friday 08:00-20:00, Saturday-Sunday closed`."""
    if _always(weekly):
        return "always open"
    spans = _spans([(day, _day(weekly, day)) for day in range(7)])
    return ", ".join(f"{days} {_hours(ranges)}" for days, ranges in spans)


def _spans(days: Sequence[tuple[int, V]]) -> list[tuple[str, V]]:
    """Consecutive weekdays with equal values joined: [(`Monday-Friday`, value), ...]."""
    spans: list[tuple[int, int, V]] = []
    for day, value in days:
        if spans and spans[-1][1] == day - 1 and spans[-1][2] == value:
            spans[-1] = (spans[-1][0], day, value)
        else:
            spans.append((day, day, value))
    return [
        (DAY_NAMES[first] if first == last else f"{DAY_NAMES[first]}-{DAY_NAMES[last]}", value)
        for first, last, value in spans
    ]


def _hours(ranges: tuple[TimeRange, ...]) -> str:
    return ", ".join(said(r) for r in ranges) if ranges else "closed"


def _calendar(calendar: HolidayCalendar | None) -> str:
    if calendar is None:
        return "none"
    return calendar.country + (f" ({calendar.subdivision})" if calendar.subdivision else "")


def _overrides(subject: str, old: Sequence[DateOverride], new: Sequence[DateOverride]) -> list[str]:
    before = {override.date: override for override in old}
    after = {override.date: override for override in new}

    def changed(day: date, was: DateOverride, now: DateOverride) -> list[str]:
        def hours(before: tuple[TimeRange, ...], after: tuple[TimeRange, ...]) -> list[str]:
            return [f"{subject}: {day} {_hours(after)} (was {_hours(before)})"]

        return _settings(f"{subject}: {day} ", was, now, {"hours": hours})

    sentences = _keyed(
        before,
        after,
        lambda day, now: [f"{subject}: override for {day} added: {_override(now)}"],
        lambda day, was: [f"{subject}: override for {day} removed (was {_override(was)})"],
        changed,
    )
    # The same dates and hours, listed in another order.
    return sentences or [_setting(f"{subject}: overrides order", list(before), list(after))]


def _override(override: DateOverride) -> str:
    return _hours(override.hours) + (f", {override.note}" if override.note else "")


# Queues and agents --------------------------------------------------------------------------------


def _queues(old: Rules, new: Rules) -> list[str]:
    languages = _in_order(old.language_codes, new.language_codes)

    def added(queue_id: str, queue: Queue) -> list[str]:
        return [f"queue {queue_id} added: team {said(queue.team)}, priority {queue.priority}"]

    def changed(queue_id: str, before: Queue, after: Queue) -> list[str]:
        subject = f"queue {queue_id}"
        team = partial(_queue_team, subject, languages=languages)
        return _settings(f"{subject}: ", before, after, {"team": team})

    return _keyed(
        old.queues, new.queues, added, lambda queue_id, _: [f"queue {queue_id} removed"], changed
    )


def _queue_team(
    subject: str, old: QueueTeam, new: QueueTeam, languages: Sequence[str]
) -> list[str]:
    """Whose hours apply, per language of the line: what a caller of that language notices."""
    sentences = [
        f"{subject}: {language} callers now go to team {now or NOT_SET} (was {was or NOT_SET})"
        for language in languages
        if (now := _team_for(new, language)) != (was := _team_for(old, language))
    ]
    if not sentences:  # the same team for every language, written another way
        sentences.append(_setting(f"{subject}: team", old, new))
    return sentences


QueueTeam = str | dict[str, str]
"""`Queue.team`: one team, or one per language (`default` for the rest)."""


def _team_for(team: QueueTeam, language: str) -> str | None:
    if isinstance(team, str):
        return team
    return team.get(language) or team.get("default")


def _agents(old: Rules, new: Rules) -> list[str]:
    def changed(agent_id: str, before: Agent, after: Agent) -> list[str]:
        subject = f"agent {agent_id}:"
        return _settings(
            f"{subject} ",
            before,
            after,
            {
                "languages": partial(_members, f"{subject} language"),
                "queues": partial(_members, f"{subject} queue"),
            },
        )

    return _keyed(
        old.agents,
        new.agents,
        lambda agent_id, agent: [f"agent {agent_id} added: {_agent(agent)}"],
        lambda agent_id, agent: [f"agent {agent_id} removed (was {agent.name})"],
        changed,
    )


def _agent(agent: Agent) -> str:
    reached = f"phone {agent.phone}" if agent.phone else f"client {agent.client}"
    return (
        f"{agent.name}, extension {agent.extension}, {reached}, "
        f"languages {said(agent.languages)}, queues {said(agent.queues)}"
    )


FILE_ORDER = (
    "version",
    "brand",
    "support_email",
    "website",
    "defaults",
    "greeting",
    "announcements",
    "languages",
    "country_languages",
    "operator_queue",
    "main_menu",
    "menus",
    "speech",
    "teams",
    "queues",
    "hold_keys",
    "callback_prefixes",
    "callback_opening",
    "sms_reference",
    "satisfaction_survey",
    "agents",
    "known_callers",
    "after_hours",
    "testers",
)
"""The sections in the order of the shipped `routing_rules.yaml`; a field of `Rules` missing here
follows them, in the schema's order."""

SECTIONS: dict[str, Callable[[Rules, Rules], list[str]]] = {
    "defaults": _defaults,
    "announcements": _announcements,
    "languages": _languages,
    "country_languages": _country_languages,
    "menus": _menus,
    "teams": _teams,
    "queues": _queues,
    "hold_keys": _hold_keys,
    "callback_prefixes": _callback_prefixes,
    "agents": _agents,
    "testers": _testers,
}
"""The sections with sentences of their own; the others get `_top_level`'s generic ones."""


# --- the prompt catalogs ---------------------------------------------------------------------------


def describe_prompt_changes(old: Prompts, new: Prompts) -> list[str]:
    """The changes between two sets of prompt catalogs, language by language."""
    return _keyed(
        old.catalogs,
        new.catalogs,
        lambda language, catalog: [
            f"prompt catalog {language} added ({catalog.name}, {len(catalog.texts)} prompts)"
        ],
        lambda language, _: [f"prompt catalog {language} removed"],
        _catalog,
    )


def _catalog(language: str, old: Catalog, new: Catalog) -> list[str]:
    sentences = [
        _setting(f"{language} prompts: {field.name}", getattr(old, field.name), now)
        for field in dataclasses.fields(new)
        if field.name not in ("texts", "audio", "phrases")
        and getattr(old, field.name) != (now := getattr(new, field.name))
    ]

    def changed(prompt_id: str, before: str, after: str) -> list[str]:
        if _flat(before) == _flat(after):
            return [f"{language} prompt {prompt_id} changed in its spaces and line breaks only"]
        was, now = _excerpts(before, after)
        return [f'{language} prompt {prompt_id} changed: "{now}" (was "{was}")']

    sentences += _keyed(
        old.texts,
        new.texts,
        lambda prompt_id, text: [f'{language} prompt {prompt_id} added: "{_excerpt(text)}"'],
        lambda prompt_id, text: [f'{language} prompt {prompt_id} removed (was "{_excerpt(text)}")'],
        changed,
    )
    # A recording is worth a sentence only for a prompt that is still there.
    sentences += [
        _recording(f"{language} prompt {prompt_id}", old.audio.get(prompt_id), recording)
        for prompt_id in _in_order(old.audio, new.audio)
        if prompt_id in new.texts
        and old.audio.get(prompt_id) != (recording := new.audio.get(prompt_id))
    ]
    return sentences + _phrases(language, old.phrases, new.phrases)


def _recording(subject: str, old: str | None, new: str | None) -> str:
    if new is None:
        return f"{subject}: spoken from its text again (was recording {old})"
    return f"{subject}: now plays recording {new} (was {f'recording {old}' if old else 'spoken'})"


def _phrases(
    language: str, old: Mapping[str, tuple[str, ...]], new: Mapping[str, tuple[str, ...]]
) -> list[str]:
    """What callers may say for an option (keyed by its label), phrase by phrase."""

    def changed(label: str, before: tuple[str, ...], after: tuple[str, ...]) -> list[str]:
        subject = f"{language} phrases for {label}"
        changes = [f'"{p}" added' for p in after if p not in before]
        changes += [f'"{p}" removed' for p in before if p not in after]
        return [f"{subject}: {', '.join(changes)}" if changes else f"{subject} reordered"]

    return _keyed(
        old,
        new,
        lambda label, phrases: [f"{language} phrases for {label} added: {_quoted(phrases)}"],
        lambda label, _: [f"{language} phrases for {label} removed"],
        changed,
    )


def _quoted(phrases: Iterable[str]) -> str:
    return ", ".join(f'"{phrase}"' for phrase in phrases)


def _flat(text: str) -> str:
    """A prompt text on one line (a YAML block text keeps its line breaks)."""
    return re.sub(r"\s+", " ", text).strip()


def _excerpt(text: str, start: int = 0) -> str:
    """`text` from the word at `start`, at most about `TEXT_LIMIT` characters, cut at a word."""
    text = _flat(text)
    if start:
        space = text.rfind(" ", 0, start)
        text = ELLIPSIS + text[space + 1 if space >= 0 else start :]
    if len(text) > TEXT_LIMIT:
        cut = text.rfind(" ", 0, TEXT_LIMIT)
        text = text[: cut if cut > TEXT_LIMIT // 2 else TEXT_LIMIT].rstrip(" ,;:") + ELLIPSIS
    return text


def _excerpts(old: str, new: str) -> tuple[str, str]:
    """Both texts shortened alike; when they share a beginning too long to show whole, both start
    shortly before the first difference, so that the two excerpts never look the same."""
    old, new = _flat(old), _flat(new)
    same = 0
    while same < min(len(old), len(new)) and old[same] == new[same]:
        same += 1
    # An excerpt is cut at a word after at least TEXT_LIMIT // 2 characters: a difference before
    # that is always shown, one after it is brought forward.
    too_long = max(len(old), len(new)) > TEXT_LIMIT
    start = same - 40 if too_long and same >= TEXT_LIMIT // 2 else 0
    return _excerpt(old, start), _excerpt(new, start)
