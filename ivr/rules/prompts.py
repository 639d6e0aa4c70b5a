"""Voice prompt catalogs: one YAML file per language in `voice_prompts/`, plus optional recordings.

A catalog says which Twilio voice speaks the language and holds the text of every prompt id. A recorded
file `voice_prompts/audio/<language>/<prompt id>.mp3` (or `.wav`) replaces the text of a prompt that
has no `{placeholders}`: the caller hears the recording instead of the synthetic voice. The catalogs
are read by `ivr.rules.loader.load_prompts`; this module is what the call flow holds of them.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

AGENT_LINE_PROMPTS = frozenset(
    {
        "agent_line_welcome",
        "agent_enter_extension",
        "agent_enter_pin",
        "agent_login_failed",
        "agent_pin_throttled",
        "agent_callback_coming",
        "agent_callback_enter_pin",
        "agent_login_unavailable",
        "agent_now_available",
        "agent_now_offline",
        "agent_busy_until_call_ends",
        "agent_line_options",
    }
)
"""The prompts of the agent line (`ivr.agent_line`, /agent/voice): agents hear them, callers never."""

SYSTEM_PROMPTS = frozenset(
    {
        "language_option",
        "press_key",
        "menu_keys",
        "not_an_option",
        "no_input",
        "fallback_notice",
        "please_hold",
        "queue_position",
        "queue_next",
        "hold_thanks",
        "team_closed",
        "team_closed_no_opening",
        "offer_voicemail",
        "offer_callback",
        "offer_back",
        "offer_other_language",
        "voicemail_instructions",
        "voicemail_saved",
        "voicemail_empty",
        "callback_confirmed",
        "callback_no_number",
        "ticket_reference",
        "goodbye",
        "silence_goodbye",
        "technical_problem",
        "many_ahead",
        "queue_wait",
        "queue_wait_under",
        "queue_wait_between",
        "queue_urgent_first",
        "no_agents",
        "wait_too_long",
        "queue_full",
        "hold_option_position",
        "hold_option_callback",
        "hold_option_voicemail",
        "callback_kept",
        "callback_code",
        "callback_opening",
        "sms_reference",
        "sms_callback",
        "callback_unavailable",
        "callback_not_this_number",
        "connecting",
        "agent_unavailable",
        "survey_question",
        "survey_thanks",
        "agent_whisper",
        *AGENT_LINE_PROMPTS,
        "whisper_verified",
        "whisper_locked",
        "other_language_key",
        "lock_offer",
        "lock_code_sent_app",
        "lock_code_sent_sms",
        "lock_code_wrong",
        "lock_throttled",
        "lock_unavailable",
        "lock_not_verified",
        "lock_done",
        "speech_intro",
        "speech_not_understood",
        "speech_confirm",
        "speech_choose",
        "incident_notice",
        "incident_notice_no_eta",
        "incident_option_wait",
        "incident_option_callback",
    }
)
"""Prompt ids the service itself speaks; every catalog must have them."""

GLOBAL_PLACEHOLDERS = frozenset({"brand", "email", "website"})


def placeholders(text: str) -> frozenset[str]:
    """The `{names}` a prompt text expects."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


@dataclass(frozen=True)
class DateWords:
    """How a language's sentences lead into a day and a time where the built-in words
    (`hours._AT_TIME`, `hours._ON_DATE`) have none: a catalog's `dates:`, so that a new language
    needs no code."""

    at_time: str = ""
    """A day and a time: "{day} a las {time}" ("mañana a las 8:00")."""
    on_date: str = ""
    """A date further than tomorrow, as a sentence leads into it: "el {date}"."""


BUILT_IN_WORDS = DateWords()
"""No words of a catalog's own: the built-in ones (or CLDR's plain glue)."""


@dataclass(frozen=True)
class SecretWords:
    """The words that tell, in a catalog's language, that a prompt asks for a secret: a catalog's
    `secret_words:`, so that a language the service has no word lists for (`ivr.rules.secrets`)
    is checked in its own words. Plain words, matched whole and in any case; a `*` ending a
    word stands for any ending ("introduzc*", "código* de verificación")."""

    secrets: tuple[tuple[str, tuple[str, ...]], ...]
    """Each secret (password, PIN, one-time code, private key, seed phrase) and its names."""
    asks: tuple[str, ...]
    """Words that ask for something: "introduzca", "diga", "cuál es"."""
    never: tuple[str, ...]
    """Words that negate every ask of their sentence: "nunca", "jamás"."""
    no: tuple[str, ...]
    """Words that negate the asks of their clause (between commas) only: "no"."""


@dataclass(frozen=True)
class Catalog:
    """The prompts of one language and how Twilio should speak them."""

    language: str
    name: str
    say_language: str
    voice: str
    locale: str
    texts: Mapping[str, str]
    audio: Mapping[str, str] = field(default_factory=dict)
    """prompt id -> file name under voice_prompts/audio/<language>/"""
    speech_language: str = ""
    """The language Twilio listens for at a menu that listens (`<Gather language="...">`);
    "" = `say_language`."""
    phrases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """What callers say for an option at a menu that listens, keyed by the option's label prompt
    id (`opt_withdrawal`), and `operator` for a person (`ivr.speech`)."""
    dates: DateWords = BUILT_IN_WORDS
    """How sentences lead into a day and a time, for a language the service has no words for
    (`DateWords`; `ivr check` says when a catalog needs them)."""
    secret_words: SecretWords | None = None
    """The words that tell a prompt asks for a secret, for a language the service has no word
    lists for (`SecretWords`; `ivr check` says when a catalog needs them)."""

    @property
    def listen_language(self) -> str:
        return self.speech_language or self.say_language


@dataclass(frozen=True)
class Prompts:
    """All catalogs, keyed by language code (zh-CN, en-US, ...)."""

    catalogs: Mapping[str, Catalog]
    audio_root: Path

    def catalog(self, language: str) -> Catalog:
        return self.catalogs[language]


OPERATOR_PHRASES = "operator"
"""The key of `phrases` a caller uses to ask for a person (the rules' `operator_queue`)."""
