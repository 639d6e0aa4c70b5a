"""Where what a caller said at a listening menu leads: an option of that menu or of its sub-menus
(straight to the issue when it is clear, to the sub-menu when only the area is), a person, or
nowhere (the caller then hears the keypad menu).

Pure and built once per version of the rules and prompts (`Bundle.router`): a request only
compares the caller's words with phrases already cut into words.

How it decides:

1. The caller's words and every phrase go through `words.words` (stems, pinyin, spelled letters).
2. A phrase matches when its words appear in what was said, in order; between two of its words
   at most `GAP` others may stand (Chinese: none, syllables are too short to stand apart). A word
   matches when it is the same, when the caller's word begins with it (German compounds:
   "auszahlungsproblem" holds "auszahl"), or when it is a long word recognition spelled a little
   differently (`SIMILAR` or more on `rapidfuzz`'s ratio).
3. An option's strength is the weight of its best matching phrase (its words; a Chinese syllable
   counts half) plus, for an option inside a sub-menu, a share of its area's strength.
4. The strongest area (an option of the listening menu) must beat the next; inside it, the
   strongest issue must beat the next, else only the area is clear and the caller gets its menu.
5. How sure: Twilio's confidence times how clearly the winner beat the runner-up. Below the
   rules' `speech.ignore_below` nothing is followed; below `speech.confirm_below` the caller is
   asked once.
6. "A person" (the catalog's `operator` phrases) wins only when no option matched at all: "I want
   to talk to someone about my withdrawal" goes to the withdrawal team, who are people too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rapidfuzz import fuzz

from ivr.prompts import OPERATOR_PHRASES, Prompts
from ivr.speech.words import is_chinese, words

if TYPE_CHECKING:
    from ivr.rules.schema import Rules

GAP = 2
SIMILAR = 86.0
"""rapidfuzz ratio (0-100) from which two words of `LONG_WORD` letters or more are the same word."""
LONG_WORD = 6
AREA_SHARE = 0.5
"""How much of its area's strength an issue inside it gets."""
HINTS_MAX = 500
HINT_CHARACTERS = 100
"""Twilio's limits on `<Gather hints>`: "a comma-separated list of up to 500 entries, each entry
can be 100 characters or fewer" (Twilio error 13330)."""


@dataclass(frozen=True)
class Utterance:
    """What Twilio heard: `SpeechResult`, and its `Confidence` (0-1; None when it sent none)."""

    text: str
    confidence: float | None = None


@dataclass(frozen=True)
class Route:
    """Where an utterance leads from the menu it was said at."""

    path: tuple[str, ...] = ()
    """The keys that lead there from that menu: ("2", "2") = funds, then withdrawal; ("2",) =
    the funds menu (only the area was clear); () = nowhere (see `operator`)."""
    operator: bool = False
    """The caller asked for a person."""
    sure: float = 0.0
    """0-1: Twilio's confidence times how clearly the words pointed here."""
    confirm: bool = False
    """Ask once before following it (`sure` is below the rules' `confirm_below`)."""

    @property
    def understood(self) -> bool:
        return self.operator or bool(self.path)


NOWHERE = Route()


@dataclass(frozen=True)
class _Phrase:
    words: tuple[str, ...]
    weight: float


@dataclass(frozen=True)
class _Choice:
    path: tuple[str, ...]
    phrases: tuple[_Phrase, ...]


class Router:
    """Routes utterances for every listening menu of one version of the rules (see the module)."""

    def __init__(self, rules: Rules, prompts: Prompts) -> None:
        self._rules = rules
        self._choices: dict[tuple[str, str], tuple[_Choice, ...]] = {}
        self._operator: dict[str, tuple[_Phrase, ...]] = {}
        self._hints: dict[tuple[str, str], str] = {}
        for language in rules.language_codes:
            if language not in prompts.catalogs:
                continue
            catalog = prompts.catalog(language)
            self._operator[language] = _phrases(catalog.phrases.get(OPERATOR_PHRASES, ()), language)
            for menu_id, menu in rules.menus.items():
                if not menu.listen:
                    continue
                choices = tuple(
                    _Choice(path, _phrases(catalog.phrases.get(label, ()), language))
                    for path, label in self.options(menu_id)
                )
                self._choices[(menu_id, language)] = choices
                self._hints[(menu_id, language)] = _hints(
                    catalog.phrases, [label for _, label in self.options(menu_id)]
                )

    def options(self, menu_id: str) -> Iterator[tuple[tuple[str, ...], str]]:
        """(path of keys, label prompt id) of every option a caller can reach from `menu_id` by
        speech: its own and, through sub-menus, theirs (each menu once)."""
        seen = {menu_id}
        todo: list[tuple[tuple[str, ...], str]] = [((), menu_id)]
        while todo:
            prefix, current = todo.pop(0)
            for key, option in self._rules.menus[current].options.items():
                path = (*prefix, key)
                yield path, option.label
                if option.menu and option.menu not in seen and option.menu in self._rules.menus:
                    seen.add(option.menu)
                    todo.append((path, option.menu))

    def hints(self, menu_id: str, language: str) -> str:
        """Twilio's `hints` for a listening menu: its options' phrases, within Twilio's limits."""
        return self._hints.get((menu_id, language), "")

    def route(self, menu_id: str, language: str, said: Utterance) -> Route:
        choices = self._choices.get((menu_id, language))
        if choices is None:
            return NOWHERE
        heard = words(said.text, language)
        if not heard:
            return NOWHERE
        chinese = is_chinese(language)
        strength = {c.path: _strength(c.phrases, heard, chinese) for c in choices}
        confidence = 1.0 if said.confidence is None else min(max(said.confidence, 0.0), 1.0)
        if not any(strength.values()):
            if _strength(self._operator.get(language, ()), heard, chinese):
                return self._judged(Route(operator=True), confidence)
            return NOWHERE
        # Each area (an option of the menu spoken at): its own strength and its best issue's.
        areas: dict[str, float] = {}
        for keys, value in strength.items():
            head = keys[0]
            areas[head] = max(areas.get(head, 0.0), value + strength[(head,)] * (len(keys) > 1))
        ranked = sorted(areas.items(), key=lambda item: item[1], reverse=True)
        (area, best), runner_up = ranked[0], (ranked[1][1] if len(ranked) > 1 else 0.0)
        if best <= runner_up:
            return NOWHERE
        clarity = best / (best + runner_up)
        inside = sorted(
            (
                (value + AREA_SHARE * strength[(area,)], keys)
                for keys, value in strength.items()
                if len(keys) > 1 and keys[0] == area and value > 0
            ),
            reverse=True,
        )
        path: tuple[str, ...] = (area,)
        if inside and (len(inside) == 1 or inside[0][0] > inside[1][0]):
            path = inside[0][1]
            if len(inside) > 1:
                clarity = min(clarity, inside[0][0] / (inside[0][0] + inside[1][0]))
        return self._judged(Route(path=path), confidence * clarity)

    def _judged(self, route: Route, sure: float) -> Route:
        settings = self._rules.speech
        if sure < settings.ignore_below:
            return NOWHERE
        return Route(route.path, route.operator, sure, confirm=sure < settings.confirm_below)


def _phrases(texts: tuple[str, ...], language: str) -> tuple[_Phrase, ...]:
    chinese = is_chinese(language)
    out = []
    for text in texts:
        cut = words(text, language)
        if cut:
            weight = len(cut) * (0.5 if chinese else 1.0)
            out.append(_Phrase(cut, weight))
    return tuple(out)


def _strength(phrases: tuple[_Phrase, ...], heard: tuple[str, ...], chinese: bool) -> float:
    return max((p.weight for p in phrases if _matches(p.words, heard, chinese)), default=0.0)


def _matches(phrase: tuple[str, ...], heard: tuple[str, ...], chinese: bool) -> bool:
    gap = 0 if chinese else GAP
    for start, word in enumerate(heard):
        if not _same(phrase[0], word, chinese):
            continue
        at = start
        for wanted in phrase[1:]:
            window = heard[at + 1 : at + 2 + gap]
            found = next((i for i, w in enumerate(window) if _same(wanted, w, chinese)), None)
            if found is None:
                break
            at += 1 + found
        else:
            return True
    return False


def _same(wanted: str, word: str, chinese: bool) -> bool:
    if wanted == word:
        return True
    if chinese and len(wanted) < 4:
        return False
    if len(wanted) >= 4 and word.startswith(wanted):
        return True
    return (
        len(wanted) >= LONG_WORD
        and abs(len(wanted) - len(word)) <= 2
        and fuzz.ratio(wanted, word) >= SIMILAR
    )


def _hints(phrases: Mapping[str, tuple[str, ...]], labels: list[str]) -> str:
    seen: dict[str, None] = {}
    for label in labels:
        for phrase in phrases.get(label, ()):
            text = " ".join(phrase.replace(",", " ").split())
            if text and len(text) <= HINT_CHARACTERS:
                seen.setdefault(text, None)
    return ", ".join(list(seen)[:HINTS_MAX])
