"""Typed, frozen model of `routing_rules.yaml`.

The YAML is parsed once (see `loader.py`) into these objects; the rest of the code only ever sees them.
Field-level shape checks live here; checks that span several sections (a menu naming a queue that does
not exist, a prompt missing from a catalog) live in `check.py`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from types import MappingProxyType
from typing import Annotated, Any, Literal

import pytz
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MENU_KEYS = frozenset("123456789")
"""Keys an admin may assign. `0` (operator), `*` (repeat) and `#` (back) are reserved everywhere."""

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class ValueAt(ValueError):
    """A problem with a value inside the one being validated: `path` leads from the validated value
    to it (a weekday key, a range in a list), so that `ivr check` points at it and not at the `{`."""

    def __init__(self, message: str, path: tuple[str | int, ...], at_key: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.at_key = at_key


class Frozen(BaseModel):
    # Numbers become text where text is expected, so `extension: 104` works as well as `"104"`.
    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, coerce_numbers_to_str=True
    )


def _menu_key(value: str) -> str:
    if value not in MENU_KEYS:
        raise ValueError(f"menu key must be one of 1-9 (0, * and # are reserved), not {value!r}")
    return value


MenuKey = Annotated[str, AfterValidator(_menu_key)]
PromptId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]


class Target(Frozen):
    """Where a choice leads: exactly one of a sub-menu, a queue, a spoken answer or voicemail."""

    menu: Name | None = None
    queue: Name | None = None
    say: PromptId | None = None
    voicemail: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        chosen = [n for n in ("menu", "queue", "say") if getattr(self, n) is not None]
        if self.voicemail:
            chosen.append("voicemail")
        if len(chosen) != 1:
            raise ValueError(
                "needs exactly one of 'menu', 'queue', 'say' or 'voicemail: true'"
                + (f", got {', '.join(chosen)}" if chosen else "")
            )
        return self


class Option(Target):
    """One key of a menu: the label spoken for it, and the issue recorded on the ticket."""

    label: PromptId
    issue: Name | None = None
    priority: int | None = Field(default=None, ge=0, le=100)
    lock_offer: bool = False
    """An account-security emergency: a caller the exchange knows first hears that they can have
    their account locked at once (`known_callers`), before they are queued."""

    @property
    def issue_name(self) -> str:
        return self.issue or self.label

    @model_validator(mode="after")
    def _lock_offer_queues(self) -> Option:
        if self.lock_offer and self.queue is None:
            raise ValueError(
                "lock_offer: true needs a 'queue' (the team that takes the caller after)"
            )
        return self


class Menu(Frozen):
    intro: PromptId | None = None
    options: dict[MenuKey, Option]
    max_tries: int | None = Field(default=None, ge=1, le=10)
    fallback: Target | None = None
    listen: bool = False
    """Callers may also say what they are calling about (`ivr.speech`): they hear "Briefly tell us
    what you are calling about, or choose from the following options", and what they say is
    matched against the phrases of this menu's options and of the options of its sub-menus (the
    prompt catalogs' `phrases`). A key always wins and works as at any menu."""

    @field_validator("options")
    @classmethod
    def _not_empty(cls, options: dict[str, Option]) -> dict[str, Option]:
        if not options:
            raise ValueError("a menu needs at least one option")
        return options


class LanguageChoice(Frozen):
    key: MenuKey
    code: str


class RulesVoice(Frozen):
    """A `<Say>` voice the rules add to the shipped table (`ivr/voices.yaml`), so that a catalog
    may name it; `ivr check` checks each (`ivr.voices.entry_problems`)."""

    name: str
    language: str
    """The `<Say language>` it speaks (es-ES; Mandarin is cmn-CN)."""
    engine: str
    """polly-standard, polly-neural, polly-generative, google-standard, google-wavenet or
    google-neural2 (`ivr.voices.ENGINES`)."""


class Defaults(Frozen):
    language: str
    max_tries: int = Field(default=3, ge=1, le=10)
    gather_timeout: int = Field(default=6, ge=1, le=30, description="seconds of silence = no input")
    fallback: Target
    silence_limit: int = Field(default=300, ge=60, le=1800, description="seconds")
    """How long a caller may go without pressing a key or leaving a recording before, at their next
    silence, they hear goodbye and the call ends (ticket outcome `no_input`): an answering machine
    or a pocket dial does not hold the line until Twilio's 4-hour limit. Time on hold does not
    count: waiting is what a holding caller asked for."""


class Announcement(Frozen):
    """A service notice (outage, maintenance) played after the greeting between `start` and `end`."""

    prompt: PromptId
    start: datetime
    end: datetime

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a time zone offset, for example 2026-12-01T02:00:00+00:00")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Announcement:
        if self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        return self

    def active(self, now: datetime) -> bool:
        return self.start <= now < self.end


class TimeRange(Frozen):
    """Opening time within one local day, in minutes since midnight; `end` may be 1440 (24:00)."""

    start: int = Field(ge=0, le=1440)
    end: int = Field(ge=0, le=1440)

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.end <= self.start:
            raise ValueError("a time range must end after it starts")
        return self

    @classmethod
    def parse(cls, text: str) -> TimeRange:
        match = _RANGE.match(text)
        if not match:
            raise ValueError(f"expected a range like '08:00-20:00', got {text!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        wrong = [
            f"{half} {hours}:{minutes:02d}"
            for half, hours, minutes in (("start", h1, m1), ("end", h2, m2))
            if hours > 24 or minutes > 59 or (hours == 24 and minutes)
        ]
        if wrong:
            verb = "are not times" if len(wrong) == 2 else "is not a time"
            raise ValueError(
                f"in {text!r} the {' and the '.join(wrong)} {verb} of day (00:00 to 24:00)"
            )
        if h2 * 60 + m2 <= h1 * 60 + m1:
            raise ValueError(f"{text!r} ends before it starts (a range cannot pass midnight)")
        return cls(start=h1 * 60 + m1, end=h2 * 60 + m2)


def _ranges(value: Any) -> tuple[TimeRange, ...]:
    """'closed', '08:00-20:00' or a list of such ranges -> sorted ranges.

    A bad range raises `ValueAt` with its index in the list (empty for a single range)."""
    if value is None or value == "closed":
        return ()
    listed = isinstance(value, list)
    items = value if listed else [value]
    ranges = []
    for index, item in enumerate(items):
        at: tuple[str | int, ...] = (index,) if listed else ()
        if isinstance(item, TimeRange):
            ranges.append(item)
        elif isinstance(item, str):
            try:
                ranges.append(TimeRange.parse(item))
            except ValueError as exc:
                raise ValueAt(str(exc), at) from exc
        else:
            raise ValueAt(f"expected 'HH:MM-HH:MM' or 'closed', got {item!r}", at)
    return tuple(sorted(ranges, key=lambda r: r.start))


def _weekday_span(key: str) -> list[int]:
    key = key.strip().lower()
    if key == "daily":
        return list(range(7))
    first, _, last = key.partition("-")
    if first not in WEEKDAYS or (last and last not in WEEKDAYS):
        raise ValueError(f"unknown day {key!r}: use mon..sun, a span like mon-fri, or daily")
    start = WEEKDAYS.index(first)
    end = WEEKDAYS.index(last) if last else start
    if end < start:
        raise ValueError(f"day span {key!r} runs backwards")
    return list(range(start, end + 1))


class HolidayCalendar(Frozen):
    """Public holidays from the `holidays` package; the team is closed on them unless overridden."""

    country: str
    subdivision: str | None = None

    @model_validator(mode="after")
    def _known(self) -> HolidayCalendar:
        import holidays

        try:
            holidays.country_holidays(self.country, subdiv=self.subdivision, years=2026)
        except NotImplementedError as exc:
            raise ValueError(f"unknown holiday country {self.country!r}") from exc
        except Exception as exc:  # holidays raises various errors for a bad subdivision
            raise ValueError(str(exc)) from exc
        return self


class DateOverride(Frozen):
    """Hours for one calendar date (local to the team), replacing the weekly hours and holidays."""

    date: date
    hours: tuple[TimeRange, ...] = ()
    note: str | None = None

    @field_validator("hours", mode="before")
    @classmethod
    def _parse_hours(cls, value: Any) -> tuple[TimeRange, ...]:
        return _ranges(value)


class Team(Frozen):
    timezone: str
    weekly: dict[int, tuple[TimeRange, ...]] = Field(
        description="weekday (0 = Monday) -> opening ranges; parsed from keys like 'mon-fri'"
    )
    holidays: HolidayCalendar | None = None
    overrides: tuple[DateOverride, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in pytz.all_timezones_set:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)")
        return value

    @field_validator("weekly", mode="before")
    @classmethod
    def _parse_weekly(cls, value: Any) -> dict[int, tuple[TimeRange, ...]]:
        if value == "always":
            return {day: (TimeRange(start=0, end=1440),) for day in range(7)}
        if not isinstance(value, dict):
            raise ValueError("expected a mapping like {mon-fri: '08:00-20:00'} or 'always'")
        weekly: dict[int, tuple[TimeRange, ...]] = {}
        for key, hours in value.items():
            try:
                days = _weekday_span(str(key))
            except ValueError as exc:
                raise ValueAt(str(exc), (key,), at_key=True) from exc
            for day in days:
                if day in weekly:
                    raise ValueAt(f"{WEEKDAYS[day]} is given twice", (key,), at_key=True)
                try:
                    weekly[day] = _ranges(hours)
                except ValueAt as exc:
                    raise ValueAt(str(exc), (key, *exc.path)) from exc
        return weekly

    @field_validator("overrides")
    @classmethod
    def _unique_dates(cls, value: tuple[DateOverride, ...]) -> tuple[DateOverride, ...]:
        seen: set[date] = set()
        for override in value:
            if override.date in seen:
                raise ValueError(f"date {override.date} is overridden twice")
            seen.add(override.date)
        return value


class Queue(Frozen):
    """A hold queue. Callers wait per language; `team` gives whose hours apply (per language if a map)."""

    team: Name | dict[str, Name]
    priority: int = Field(default=0, ge=0, le=100)
    hold_music: str | None = None
    hold_music_seconds: float | None = Field(default=None, gt=0, le=3600)
    """How long the `hold_music` clip plays, in seconds: a remote clip cannot be measured, so its
    length is declared here (`ivr check` warns when it is missing or longer than `announce_every`)."""
    announce_every: int = Field(default=30, ge=10, le=600, description="seconds between updates")
    announce_position: bool = True
    announce_position_limit: int | None = Field(default=None, ge=1)
    """Above this position, say "many callers are ahead of you" instead of the number (Asterisk's
    announce-position-limit)."""
    announce_wait: bool = True
    comfort: tuple[PromptId, ...] = ()
    """Messages spoken in turn, one per hold round, after the position."""
    max_length: int | None = Field(default=None, ge=1)
    """Callers beyond this many are offered a callback or voicemail instead of joining."""
    max_wait: int | None = Field(default=None, ge=30, description="seconds")
    """A caller who waited this long (or is told a longer estimate) is offered callback or voicemail."""
    default_handle_time: int = Field(default=300, ge=10, le=7200, description="seconds")
    """Assumed length of one conversation until the queue has answered calls to learn from."""
    service_level: int = Field(default=60, ge=1, description="seconds")
    """Target answer time; the share of calls answered within it is the queue's service level."""
    wait_estimate: Literal["formula", "live"] = "live"
    """How the wait is estimated (`ivr.waits`): `live` draws the distribution of the caller's wait
    from the calls in progress, the line's handling times, abandonment and the callers of higher
    priority likely to join ahead, and says its median and `wait_percentiles`; `formula` is
    ceil(position / agents) x average handling time, said with the `wait_range` factors."""
    wait_speech: Literal["about", "under", "between"] = "between"
    """How the estimate is said: "about N minutes" (the median), "less than N minutes" (the high
    end of the range), or "between A and B minutes" (both ends)."""
    wait_percentiles: tuple[int, int] = (10, 90)
    """`live`: the percentiles of the predicted wait said as the range; the 10th to the 90th is the
    narrowest range that holds for 80% of callers."""
    wait_range: tuple[float, float] = (0.4, 1.6)
    """`formula`: factors of the estimate for the low and high ends of what is said to a caller
    next in line; further back the range narrows as position ** -0.25 (docs/qa/waits.md)."""
    position_only_down: bool = True
    """Never announce a higher position than the one this caller last heard; say instead that
    urgent calls are being served first (Asterisk's announce-position-only-up). The wait said is
    never smaller than the last one unless the caller moved forward."""

    @model_validator(mode="after")
    def _range_brackets_the_estimate(self) -> Queue:
        below, above = self.wait_percentiles
        if not (1 <= below < 50 < above <= 99):
            raise ValueError(
                f"wait_percentiles [{below}, {above}]: the low percentile must be 1-49 and the "
                "high one 51-99, so that the range brackets the median (e.g. [10, 90])"
            )
        low, high = self.wait_range
        if not (0 <= low <= 1 <= high <= 10):
            raise ValueError(
                f"wait_range [{low}, {high}]: the low factor must be 0-1 and the high one 1-10, "
                "so that the range brackets the estimate"
            )
        return self

    def team_for(self, language: str) -> str:
        if isinstance(self.team, str):
            return self.team
        return self.team.get(language) or self.team["default"]


PIN_IN_RULES = (
    "a PIN does not belong in the rules file: delete this line and set it with "
    "`ivr agents set-pin {agent}` (it is stored hashed in IVR_AGENT_PINS)"
)
"""The message for an agent's `pin:` (the rules file names agents, never their secrets)."""


class Agent(Frozen):
    """A person who takes calls: the languages they speak, the queues they serve, how to reach them."""

    name: str
    extension: Annotated[str, Field(pattern=r"^\d{2,6}$")]
    """Digits the agent types on the agent line to log in (with their PIN, which is not in the
    rules: `ivr agents set-pin`, see `ivr.credentials`)."""
    languages: tuple[str, ...] = Field(min_length=1)
    queues: tuple[Name, ...] = Field(min_length=1)
    phone: Annotated[str, Field(pattern=r"^\+[1-9]\d{6,15}$")] | None = None
    client: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,120}$")] | None = None
    """Twilio Client identity (a web or app softphone) instead of a phone number."""

    @model_validator(mode="after")
    def _reachable(self) -> Agent:
        if (self.phone is None) == (self.client is None):
            raise ValueError("an agent needs exactly one of 'phone' or 'client'")
        return self


class HoldKeys(Frozen):
    """Keys a caller may press while holding. Under a `hold_keys:` section an option left out (or
    set to null) is switched off; without the section all three are on (`DEFAULT_HOLD_KEYS`)."""

    position: MenuKey | None = None
    callback: MenuKey | None = None
    voicemail: MenuKey | None = None

    @model_validator(mode="after")
    def _distinct(self) -> HoldKeys:
        keys = [k for k in (self.position, self.callback, self.voicemail) if k]
        if len(set(keys)) != len(keys):
            raise ValueError("two hold options share a key")
        return self


DEFAULT_HOLD_KEYS = HoldKeys(position="1", callback="2", voicemail="3")
"""The hold keys of a rules file without a `hold_keys:` section."""


class AfterHours(Frozen):
    voicemail: bool = True
    callback: bool = True
    max_recording_seconds: int = Field(default=120, ge=10, le=600)
    other_languages: bool = False
    """When the caller's team is closed, first offer the same queue's team of another language
    that is open now (the offer is spoken in that language; key 3)."""
    callback_tries: int = Field(default=3, ge=1, le=10)
    """Calls placed for one after-hours callback request before it is given up (`ivr.callbacks`)."""
    callback_retry_minutes: int = Field(default=15, ge=1, le=1440)
    """How long after an unanswered try the next one may be placed (within the team's hours)."""
    callback_keep_days: int = Field(default=3, ge=1, le=30)
    """How long after the request it is still tried; later it is given up."""


class KnownCallers(Frozen):
    """What the line does for callers the exchange knows (`ivr.exchange`, with IVR_EXCHANGE_URL set):
    greets them in their language, queues its VIPs higher, and locks an account on request."""

    vip_priority: int = Field(default=50, ge=0, le=100)
    """The least priority a caller of the exchange's "vip" tier waits with (an option's own higher
    priority still wins)."""
    lock_without_verification: bool = False
    """Lock an account for a caller who could not be verified (the exchange could not send a code):
    fast in an emergency, but anyone calling from the customer's number could do it."""


class SpeechSettings(Frozen):
    """How sure the line must be of what a caller said at a listening menu (`Menu.listen`).

    How sure is a number from 0 to 1: Twilio's `Confidence` in the words it heard, times how
    clearly those words point at one option (`ivr.speech.Router`)."""

    confirm_below: float = Field(default=0.6, ge=0, le=1)
    """Less sure than this: ask once ("You want help with a withdrawal. Press 1 if that is right,
    or 2 to choose from the menu") before following what was said."""
    ignore_below: float = Field(default=0.3, ge=0, le=1)
    """Less sure than this: what was said is not used, and the caller hears the keypad menu."""

    @model_validator(mode="after")
    def _ordered(self) -> SpeechSettings:
        if self.ignore_below > self.confirm_below:
            raise ValueError("ignore_below must not be above confirm_below")
        return self


class Rules(Frozen):
    version: Literal[1]
    brand: str
    support_email: str
    website: str
    defaults: Defaults
    greeting: tuple[PromptId, ...]
    announcements: tuple[Announcement, ...] = ()
    languages: tuple[LanguageChoice, ...]
    voices: tuple[RulesVoice, ...] = ()
    """Voices beyond the shipped table, for a language (or a voice) it lacks."""
    country_languages: dict[str, str] = {}
    operator_queue: Name
    main_menu: Name = "main"
    menus: dict[Name, Menu]
    teams: dict[Name, Team]
    queues: dict[Name, Queue]
    after_hours: AfterHours = AfterHours()
    known_callers: KnownCallers = KnownCallers()
    speech: SpeechSettings = SpeechSettings()
    agents: dict[Name, Agent] = {}
    hold_keys: HoldKeys = DEFAULT_HOLD_KEYS
    satisfaction_survey: bool = True
    """After the agent hangs up, ask the caller for a score from 1 to 5."""
    callback_opening: tuple[PromptId, ...] | None = None
    """What a callback the service places says after "This is {brand} support calling you back",
    the callback code and the ticket number, before the agent is put through: the anti-fraud
    notice. Unset: the greeting's prompts after its first (the welcome)."""
    sms_reference: bool = False
    """Text the caller their ticket number (and callback code) when it is read back to them
    (voicemail saved, callback asked for), from the number they called, to numbers the line may
    call back (`callback_prefixes`); needs the Twilio REST credentials. Off unless switched on:
    a text costs money and may need the number registered for SMS."""
    callback_prefixes: tuple[str, ...] | None = None
    """The numbers the line calls back (from the queue or after hours), as E.164 prefixes ('+49',
    '+1212'). Unset: the calling codes of `country_languages`, the countries the line serves. A
    caller ID elsewhere (a premium-rate or satellite number: toll fraud) is offered a voicemail."""
    testers: tuple[str, ...] = ()
    """Calling numbers (E.164) that hear the draft, when one is staged (`ivr rules publish
    --draft`); everyone else hears the live version. The live and the draft version's lists count."""

    @field_validator("languages")
    @classmethod
    def _distinct_languages(cls, value: tuple[LanguageChoice, ...]) -> tuple[LanguageChoice, ...]:
        keys = [choice.key for choice in value]
        codes = [choice.code for choice in value]
        if len(set(keys)) != len(keys):
            raise ValueError("two languages share a key")
        if len(set(codes)) != len(codes):
            raise ValueError("a language is listed twice")
        if not value:
            raise ValueError("at least one language is needed")
        return value

    @field_validator("callback_prefixes")
    @classmethod
    def _number_prefixes(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for prefix in value or ():
            if not re.fullmatch(r"\+[1-9]\d{0,7}", prefix):
                raise ValueError(f"{prefix!r} is not the start of a phone number like '+49'")
        return value

    @field_validator("testers")
    @classmethod
    def _tester_numbers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for number in value:
            if not re.fullmatch(r"\+[1-9]\d{6,14}", number):
                raise ValueError(f"{number!r} is not a whole phone number like '+4930123456'")
        return value

    @property
    def callback_notice(self) -> tuple[str, ...]:
        """The prompts a placed callback opens with after the proof (`callback_opening`)."""
        return self.greeting[1:] if self.callback_opening is None else self.callback_opening

    def may_call_back(self, number: str) -> bool:
        """Whether the line calls `number` back (`callback_prefixes`)."""
        allowed = (
            self.country_languages if self.callback_prefixes is None else self.callback_prefixes
        )
        return any(number.startswith(prefix) for prefix in allowed)

    @field_validator("country_languages")
    @classmethod
    def _calling_codes(cls, value: dict[str, str]) -> dict[str, str]:
        for prefix in value:
            if not re.fullmatch(r"\+\d{1,4}", prefix):
                raise ValueError(f"{prefix!r} is not a calling code like '+49'")
        return value

    # Lookups the call flow makes on every request, computed once per loaded version (see
    # `model_post_init`) so that a request costs the same with 10 menus or 1,000.
    _language_codes: tuple[str, ...] = PrivateAttr(default=())
    _language_by_key: dict[str, str] = PrivateAttr(default_factory=dict)
    _country_prefixes: tuple[str, ...] = PrivateAttr(default=())
    _parents: dict[str, str] = PrivateAttr(default_factory=dict)
    _agent_by_extension: dict[str, tuple[str, Agent]] = PrivateAttr(default_factory=dict)
    _agents_serving: dict[tuple[str, str], tuple[str, ...]] = PrivateAttr(default_factory=dict)
    _shared_lines: dict[tuple[str, str], Mapping[tuple[str, str], float]] = PrivateAttr(
        default_factory=dict
    )

    def model_post_init(self, context: Any, /) -> None:
        """Precompute the per-request lookups (the model is frozen, so they never go stale)."""
        self._language_codes = tuple(choice.code for choice in self.languages)
        self._language_by_key = {}
        for choice in self.languages:
            self._language_by_key.setdefault(choice.key, choice.code)
        # Longest first, so the first prefix that matches is the longest (+852 before +8).
        self._country_prefixes = tuple(sorted(self.country_languages, key=len, reverse=True))
        self._parents = _menu_parents(self.main_menu, self.menus)
        self._agent_by_extension = {}
        serving: dict[tuple[str, str], list[str]] = {}
        for agent_id, agent in self.agents.items():
            self._agent_by_extension.setdefault(agent.extension, (agent_id, agent))
            for line in self.lines_of(agent):
                if agent_id not in serving.setdefault(line, []):
                    serving[line].append(agent_id)
        self._agents_serving = {line: tuple(ids) for line, ids in serving.items()}

    @property
    def language_codes(self) -> tuple[str, ...]:
        return self._language_codes

    def language_for_key(self, key: str) -> str | None:
        return self._language_by_key.get(key)

    def language_for_caller(self, number: str) -> str | None:
        """The language suggested by the caller's country calling code (longest prefix wins)."""
        prefix = next((p for p in self._country_prefixes if number.startswith(p)), None)
        return self.country_languages[prefix] if prefix is not None else None

    def active_announcements(self, now: datetime) -> tuple[Announcement, ...]:
        return tuple(a for a in self.announcements if a.active(now))

    @property
    def menu_parents(self) -> Mapping[str, str]:
        """Menu id -> the menu one step closer to the main menu (what `#` goes back to)."""
        return MappingProxyType(self._parents)

    def parent_menu(self, menu_id: str) -> str | None:
        """The menu `#` goes back to from `menu_id`; None for the main menu and unreachable menus."""
        return self._parents.get(menu_id)

    def option_at(self, menu_id: str, keys: Sequence[str]) -> tuple[str, Option]:
        """The option the keys lead to from `menu_id` (every key but the last choosing a
        sub-menu), and the menu it is written in. KeyError when they lead nowhere."""
        for key in keys[:-1]:
            sub_menu = self.menus[menu_id].options[key].menu
            if sub_menu is None:
                raise KeyError(key)
            menu_id = sub_menu
        return menu_id, self.menus[menu_id].options[keys[-1]]

    def agent_by_extension(self, extension: str) -> tuple[str, Agent] | None:
        return self._agent_by_extension.get(extension)

    def lines_of(self, agent: Agent) -> tuple[tuple[str, str], ...]:
        """The (queue, language) lines an agent can take callers from."""
        return tuple((q, lang) for q in agent.queues for lang in agent.languages)

    def agents_serving(self, queue: str, language: str) -> tuple[str, ...]:
        """The agents who take callers of this queue in this language, in the order listed."""
        return self._agents_serving.get((queue, language), ())

    def shared_lines(self, queue: str, language: str) -> Mapping[tuple[str, str], float]:
        """The other lines this line's agents serve, each with the share of its agents that are
        ours: an agent takes the best caller of all its lines (higher priority first, then
        earlier), so a caller of another line who goes first takes one of our agents about as
        often. Worked out once per line and kept (the model is frozen: it never goes stale)."""
        line = (queue, language)
        shares = self._shared_lines.get(line)
        if shares is None:
            ours = set(self.agents_serving(queue, language))
            others = {other for agent in ours for other in self.lines_of(self.agents[agent])}
            found = {}
            for other in sorted(others - {line}):
                serving = self.agents_serving(*other)
                if serving:
                    found[other] = len(ours.intersection(serving)) / len(serving)
            shares = self._shared_lines[line] = MappingProxyType(found)
        return shares


def _menu_parents(main_menu: str, menus: Mapping[str, Menu]) -> dict[str, str]:
    """Each menu's parent: breadth first from the main menu, the first menu found leading to it wins."""
    parents: dict[str, str] = {}
    todo = deque([main_menu])
    while todo:
        current = todo.popleft()
        if current not in menus:  # an undefined menu is reported by `ivr check`, not here
            continue
        for option in menus[current].options.values():
            if option.menu and option.menu not in parents and option.menu != main_menu:
                parents[option.menu] = current
                todo.append(option.menu)
    return parents
