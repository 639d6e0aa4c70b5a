"""Where what a caller said at a listening menu leads: an option of that menu or of its sub-menus
(straight to the issue when it is clear, to the sub-menu when only the area is), a person, or
nowhere (the caller then hears the keypad menu).

Pure and built once per version of the rules and prompts (`Bundle.router`): a request only
compares the caller's words with phrases already cut into words.

How it decides:

1. The caller's words and every phrase go through `words.words` (stems, pinyin, spelled letters,
   negations written out, coin names as one word). Small words (`STOP_WORDS`: articles, pronouns,
   fillers, "want", "please") and coin names are then left out on both sides: they never match
   and do not stand between the words of a phrase; a phrase of numbers only is left out.
2. A phrase matches when its words appear in what was said, in order; between two of its words
   at most `GAP` others may stand. A Chinese phrase is compared syllable by syllable without gaps,
   except where the catalog puts a space ("账户 被盗" also matches "账户昨天被盗了"): there up to
   `CHINESE_GAP` syllables may stand. A word matches when it is the same, when the caller's word
   begins with it (German: holds it anywhere; compounds: "auszahlungsproblem" holds "auszahl",
   "kontoauszug" holds "auszug"), or when it is a long word recognition spelled a little
   differently (`SIMILAR` or more on `rapidfuzz`'s ratio).
3. A match weighs its words: 1 each (`PARTIAL` for a word found inside a longer one, `SPELLED`
   for one spelled a little differently, `SYLLABLE` for a Chinese syllable). The heaviest
   matches are kept first and a match that shares a word with one already kept is dropped: in
   "a withdrawal I did not make" the security option's "withdrawal ... not make" keeps the word
   "withdrawal" from the funds option's "withdrawal". An option's strength is the weight of its
   kept matches, plus, for an option inside a sub-menu, a share (`AREA_SHARE`) of its area's.
4. The strongest area (an option of the listening menu) must beat the next; inside it, the
   strongest issue must beat the next, else only the area is clear and the caller gets its menu.
5. How sure: Twilio's confidence times how clearly the winner beat the runner-up. Below the
   rules' `speech.ignore_below` nothing is followed; below `speech.confirm_below` the caller is
   asked once.
6. "A person" (the catalog's `operator` phrases) wins only when no option matched at all: "I want
   to talk to someone about my withdrawal" goes to the withdrawal team, who are people too.

A request looks each word it heard up once in the phrases' words (a dictionary, its prefixes and
one `rapidfuzz` pass over the long words) and tries only the phrases that start with a word found.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rapidfuzz import fuzz, process

from ivr.rules.prompts import OPERATOR_PHRASES, Prompts
from ivr.speech.words import CJK, COIN, is_chinese, stem, words

if TYPE_CHECKING:
    from ivr.rules.schema import Option, Rules

GAP = 2
"""Other words (not small ones) that may stand between two words of a phrase."""
CHINESE_GAP = 6
"""Syllables that may stand where a Chinese phrase has a space."""
SIMILAR = 86.0
"""rapidfuzz ratio (0-100) from which two words of `LONG_WORD` letters or more are the same word."""
LONG_WORD = 6
PART_WORD = 4
"""A phrase word of this many letters or more is also found at the start of a longer word."""
PARTIAL = 0.8
"""The weight of a phrase word found inside a longer word ("retrait" in "retraits" is whole: the
stems are the same): a whole word of another option's phrase outweighs it."""
SPELLED = 0.9
"""The weight of a phrase word recognition spelled a little differently: the word itself weighs
more."""
SYLLABLE = 0.5
"""The weight of a Chinese syllable: two of them make about one word."""
AREA_WEIGHT = 0.6
"""The weight of a match for an area (an option with a sub-menu): its phrases are the general
words ("money", "pending", "not me") that an issue's own words should outweigh."""
AREA_SHARE = 0.5
"""How much of its area's strength an issue inside it gets."""
HINTS_MAX = 500
HINT_CHARACTERS = 100
"""Twilio's limits on `<Gather hints>`: "a comma-separated list of up to 500 entries, each entry
can be 100 characters or fewer" (Twilio error 13330)."""
ANY_ORDER = ("de",)
"""Languages whose two-word phrases also match the other way round (see `_orders`)."""
NEGATIONS = frozenset({"nicht", "kein", "nie", "niemand"})
"""Words whose place in a German phrase matters: what they deny follows them."""
CACHE_WORDS = 20_000
"""Words heard whose matches a router remembers (per language) before it starts again."""

STOP_WORDS = {
    "en": """a an the i im my mine myself we our us he him his she her it its they
        them their this that these those is am are was were be been being has had of for on at by
        with about as than then ve ll re d s m so and or but if because um uh uhm er erm hmm hi hello hey
        yes yeah yep ok okay please thanks thank just like well oh also again still very
        some any anything something there here which who how why where want wanna need
        would like trying try get got gets getting help question problem issue regarding guys
        good morning afternoon evening sir madam all""",
    "fr": """le la les l un une des de du d au aux à a je j me m mon ma mes tu te t ton ta tes vous
        votre vos son sa ses nous notre nos il elle ils elles on ce c cet cette ces ça ca cela est
        et ou mais donc que qu qui quoi dont en y pour par avec sur dans chez se s ne n oui bonjour
        allô allo euh bah ben alors voilà merci svp plaît plait voudrais veux voudrait souhaite
        souhaiterais aimerais besoin aide question problème souci madame monsieur bien très encore
        toujours déjà comment pourquoi quand où est-ce suis es sommes
        êtes sont avais""",
    "de": """der die das den dem des ein eine einen einem einer eines ich mich sich mein meine meinen
        meinem meiner meines du dich dir dein deine sie ihr ihre ihren ihrem ihnen wir uns unser
        unsere er es man und oder aber denn dass weil wenn ob zu zum zur von vom mit bei beim für
        auf an am im in ins aus nach über um so ja nein doch mal bitte danke hallo guten tag äh
        ähm hm also halt eben noch schon gerne gern möchte möchten würde will wollen hätte bin
        bist ist sind war waren wurde wurden worden sein da hier was wie warum wo welche
        welcher welches frage problem hilfe brauche immer mehr ganz ganze ganzen seit glaube""",
}
"""Words that carry nothing about what the caller needs (before stemming; negations, "can",
"did", "not" are not among them: "did not make" and "can not withdraw" differ)."""


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
    choice: int
    """Index of the option in the menu's choices; one past the last = a person."""
    parts: tuple[tuple[str, ...], ...]
    """Runs of words that stand together; up to the gap between runs (see the module)."""
    scale: float = 1.0
    """`AREA_WEIGHT` for an area's phrase."""


@dataclass(frozen=True)
class _Match:
    weight: float
    choice: int
    positions: frozenset[int]


class _Lexicon:
    """One language's phrase words, and what each word a caller says matches among them."""

    def __init__(self, language: str, phrase_words: set[str], latin: set[str]) -> None:
        self.chinese = is_chinese(language)
        self.latin = frozenset(latin)
        """Chinese catalogs: the words written in letters ("APP", "KYC"), which weigh a word."""
        self.infix = language.split("-")[0].lower() == "de"
        self.stop = _stop_words(language)
        self.vocabulary = frozenset(phrase_words)
        self.long = sorted(w for w in phrase_words if len(w) >= LONG_WORD)
        self._cache: dict[str, dict[str, float]] = {}

    def content(self, text: str, language: str) -> tuple[str, ...]:
        """The words of `text` that can match: no small words or coin names; two words that
        recognition split and that together make a phrase word ("with drawl", "aus Zahlung")
        are joined again."""
        said = words(text, language)
        if not self.chinese and self.vocabulary:
            said = self._joined(said, language)
        return tuple(w for w in said if w not in self.stop and w != COIN)

    def _joined(self, said: tuple[str, ...], language: str) -> tuple[str, ...]:
        """`said` with each pair of words joined whose first word is no phrase word and whose
        joined form is one; a joined form only spelled like one when the second word is no phrase
        word either ("my password" stays two words)."""
        base = language.split("-")[0].lower()
        out: list[str] = []
        index = 0
        while index < len(said):
            first = said[index]
            if index + 1 < len(said) and first.isalpha() and first not in self.vocabulary:
                second = said[index + 1]
                joined = stem(first + second, base) if second.isalpha() else ""
                if joined in self.vocabulary or (
                    joined and self._alone(second) and SPELLED in self.found(joined).values()
                ):
                    out.append(joined)
                    index += 2
                    continue
            out.append(first)
            index += 1
        return tuple(out)

    def found(self, word: str) -> dict[str, float]:
        """The phrase words `word` matches, with the weight it gives them."""
        known = self._cache.get(word)
        if known is not None:
            return known
        found = self._syllable(word) if self.chinese else self._latin(word)
        if len(self._cache) >= CACHE_WORDS:
            self._cache.clear()
        self._cache[word] = found
        return found

    def _alone(self, word: str) -> bool:
        """A word that is no phrase word, nor spelled like one."""
        return not {SPELLED, 1.0} & set(self.found(word).values())

    def _syllable(self, syllable: str) -> dict[str, float]:
        if syllable not in self.vocabulary:
            return {}
        return {syllable: 1.0 if syllable in self.latin else SYLLABLE}

    def _latin(self, word: str) -> dict[str, float]:
        if word in self.vocabulary:  # "fehlt" is itself a phrase word, not "Fehler" ("fehl")
            return {word: 1.0}
        found: dict[str, float] = {}
        for end in range(PART_WORD, len(word)):
            if word[:end] in self.vocabulary:
                found[word[:end]] = PARTIAL
        if self.infix:
            for start in range(1, len(word) - PART_WORD + 1):
                for end in range(start + PART_WORD, len(word) + 1):
                    if word[start:end] in self.vocabulary:
                        found[word[start:end]] = PARTIAL
        if len(word) >= LONG_WORD:
            for similar, _, _ in process.extract(
                word, self.long, scorer=fuzz.ratio, score_cutoff=SIMILAR, limit=None
            ):
                if abs(len(similar) - len(word)) <= 2:
                    found[similar] = SPELLED
        return found


class Router:
    """Routes utterances for every listening menu of one version of the rules (see the module)."""

    def __init__(self, rules: Rules, prompts: Prompts) -> None:
        self._rules = rules
        self._paths: dict[str, tuple[tuple[str, ...], ...]] = {}
        self._phrases: dict[tuple[str, str], dict[str, tuple[_Phrase, ...]]] = {}
        self._lexicons: dict[str, _Lexicon] = {}
        self._hints: dict[tuple[str, str], str] = {}
        listening = [menu_id for menu_id, menu in rules.menus.items() if menu.listen]
        self._urgent: dict[str, frozenset[tuple[str, ...]]] = {}
        labels: dict[str, list[str]] = {}
        for menu_id in listening:
            options = list(reachable(rules, menu_id))
            self._paths[menu_id] = tuple(path for path, _ in options)
            labels[menu_id] = [label for _, label in options] + [OPERATOR_PHRASES]
            self._urgent[menu_id] = self._most_urgent(menu_id)
        for language in rules.language_codes:
            if language not in prompts.catalogs:
                continue
            catalog = prompts.catalog(language)
            lexicon = _Lexicon(language, set(), set())
            vocabulary: set[str] = set()
            latin: set[str] = set()
            for menu_id in listening:
                paths = self._paths[menu_id]
                by_first: dict[str, list[_Phrase]] = {}
                for choice, label in enumerate(labels[menu_id]):
                    for text in catalog.phrases.get(label, ()):
                        area = choice < len(paths) and self._is_area(menu_id, paths[choice])
                        phrase = _phrase(text, choice, language, lexicon, area)
                        if phrase is None:
                            continue
                        vocabulary.update(w for part in phrase.parts for w in part)
                        latin.update(words(CJK.sub(" ", text), language))
                        for form in _orders(phrase, language):
                            by_first.setdefault(form.parts[0][0], []).append(form)
                self._phrases[(menu_id, language)] = {w: tuple(p) for w, p in by_first.items()}
                self._hints[(menu_id, language)] = _hints(
                    catalog.phrases, labels[menu_id], lexicon.chinese
                )
            self._lexicons[language] = _Lexicon(language, vocabulary, latin)

    def options(self, menu_id: str) -> Iterator[tuple[tuple[str, ...], str]]:
        """(path of keys, label prompt id) of every option a caller can reach from `menu_id` by
        speech (`reachable`)."""
        return reachable(self._rules, menu_id)

    def _priority(self, menu_id: str, path: tuple[str, ...]) -> int:
        """The priority a caller who chose the option at `path` waits with: the option's own, else
        its queue's (0 for an option without a queue)."""
        option = self._option(menu_id, path)
        if option.priority is not None:
            return option.priority
        queue = self._rules.queues.get(option.queue) if option.queue else None
        return queue.priority if queue else 0

    def _most_urgent(self, menu_id: str) -> frozenset[tuple[str, ...]]:
        """The options served first (the highest priority of all reachable from `menu_id`, when
        some option has a priority of its own) and their areas: their words win over another
        area's ("a withdrawal I never made", "hacked, I can't log in")."""
        paths = self._paths[menu_id]
        own = [p for p in paths if self._option(menu_id, p).priority is not None]
        if not own:
            return frozenset()
        top = max(self._priority(menu_id, p) for p in paths)
        urgent = {p for p in own if self._priority(menu_id, p) == top}
        return frozenset(urgent | {p[:1] for p in urgent if self._is_area(menu_id, p[:1])})

    def _option(self, menu_id: str, path: tuple[str, ...]) -> Option:
        return self._rules.option_at(menu_id, path)[1]

    def _is_area(self, menu_id: str, path: tuple[str, ...]) -> bool:
        """An option of the menu itself that leads to a sub-menu."""
        return len(path) == 1 and bool(self._rules.menus[menu_id].options[path[0]].menu)

    def hints(self, menu_id: str, language: str) -> str:
        """Twilio's `hints` for a listening menu: its options' phrases and the phrases for a
        person, within Twilio's limits."""
        return self._hints.get((menu_id, language), "")

    def route(self, menu_id: str, language: str, said: Utterance) -> Route:
        phrases = self._phrases.get((menu_id, language))
        lexicon = self._lexicons.get(language)
        if phrases is None or lexicon is None:
            return NOWHERE
        heard = lexicon.content(said.text, language)
        if not heard:
            return NOWHERE
        paths = self._paths[menu_id]
        strength = _strengths(heard, phrases, lexicon, len(paths) + 1)
        confidence = 1.0 if said.confidence is None else min(max(said.confidence, 0.0), 1.0)
        if not any(strength[: len(paths)]):
            if strength[len(paths)]:
                return self._judged(Route(operator=True), confidence)
            return NOWHERE
        by_path = dict(zip(paths, strength, strict=False))
        # Each area (an option of the menu spoken at): its own strength and its best issue's.
        areas: dict[str, float] = {}
        for keys, value in by_path.items():
            head = keys[0]
            areas[head] = max(areas.get(head, 0.0), value + by_path[(head,)] * (len(keys) > 1))
        ranked = sorted(areas.items(), key=lambda item: item[1], reverse=True)
        urgent = {keys[0] for keys in self._urgent[menu_id] if by_path[keys] > 0}
        if len(urgent) == 1 and ranked[0][0] not in urgent:
            # Security first: its words were said, next to another area's ("money left my
            # account and it wasn't me"); its team sorts out the rest.
            ranked = sorted(ranked, key=lambda item: item[0] not in urgent)
            ranked[1] = (ranked[1][0], 0.0)
        (area, best), runner_up = ranked[0], (ranked[1][1] if len(ranked) > 1 else 0.0)
        if best <= runner_up:
            return NOWHERE
        clarity = best / (best + runner_up)
        inside = sorted(
            (
                (value + AREA_SHARE * by_path[(area,)], keys)
                for keys, value in by_path.items()
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


def _stop_words(language: str) -> frozenset[str]:
    base = language.split("-")[0].lower()
    return frozenset(words(STOP_WORDS.get(base, ""), language))


def _phrase(text: str, choice: int, language: str, lexicon: _Lexicon, area: bool) -> _Phrase | None:
    """A catalog phrase as the router compares it (None when only small words are left)."""
    if lexicon.chinese:
        runs = (lexicon.content(run, language) for run in text.split())
        parts = tuple(run for run in runs if run)
    else:
        parts = tuple((word,) for word in lexicon.content(text, language))
    if all(word.isdigit() for part in parts for word in part):
        return None  # a bare number says nothing
    return _Phrase(choice, parts, AREA_WEIGHT if area else 1.0)


def _orders(phrase: _Phrase, language: str) -> tuple[_Phrase, ...]:
    """The phrase, and in German a phrase of two words also the other way round: German puts
    the verb second or last ("Handynummer ändern", "wie ändere ich die Handynummer"). Not a
    negation: "nicht von mir" is not "kann mir nicht"."""
    base = language.split("-")[0].lower()
    if base not in ANY_ORDER or len(phrase.parts) != 2 or NEGATIONS & set(phrase.parts[0]):
        return (phrase,)
    return phrase, _Phrase(phrase.choice, phrase.parts[::-1], phrase.scale)


def _strengths(
    heard: tuple[str, ...],
    phrases: Mapping[str, tuple[_Phrase, ...]],
    lexicon: _Lexicon,
    choices: int,
) -> list[float]:
    """Each choice's strength: the weight of its matches that no heavier match took a word of."""
    found = [lexicon.found(word) for word in heard]
    gap = CHINESE_GAP if lexicon.chinese else GAP
    matches: list[_Match] = []
    for start, here in enumerate(found):
        for first in here:
            for phrase in phrases.get(first, ()):
                match = _match(phrase, found, start, gap)
                if match is not None:
                    matches.append(match)
    matches.sort(key=lambda m: (-m.weight, max(m.positions) - min(m.positions)))
    strength = [0.0] * choices
    taken: set[int] = set()
    for match in matches:
        if taken.isdisjoint(match.positions):
            taken |= match.positions
            strength[match.choice] += match.weight
    return strength


def _match(phrase: _Phrase, found: list[dict[str, float]], start: int, gap: int) -> _Match | None:
    """`phrase` matched from the word at `start` (its first word is there), or None."""
    positions: list[int] = []
    weight = 0.0
    at = start
    for index, part in enumerate(phrase.parts):
        if index:  # the next run starts within the gap
            window = range(at + 1, min(at + 2 + gap, len(found)))
            at = next((i for i in window if part[0] in found[i]), -1)
            if at < 0:
                return None
        for offset, word in enumerate(part):
            position = at + offset
            if position >= len(found) or word not in found[position]:
                return None
            weight += found[position][word]
            positions.append(position)
        at = positions[-1]
    return _Match(weight * phrase.scale, phrase.choice, frozenset(positions))


def reachable(rules: Rules, menu_id: str) -> Iterator[tuple[tuple[str, ...], str]]:
    """(path of keys, label prompt id) of every option a caller can reach from `menu_id` by
    speech: its own and, through sub-menus, theirs (each menu once)."""
    seen = {menu_id}
    todo: list[tuple[tuple[str, ...], str]] = [((), menu_id)]
    while todo:
        prefix, current = todo.pop(0)
        for key, option in rules.menus[current].options.items():
            path = (*prefix, key)
            yield path, option.label
            if option.menu and option.menu not in seen and option.menu in rules.menus:
                seen.add(option.menu)
                todo.append((path, option.menu))


def hint_text(phrase: str, chinese: bool) -> str:
    """A phrase as `<Gather hints>` carries it: one space between words (none in Chinese), no
    comma (it separates the hints)."""
    text = "".join(phrase.split()) if chinese else " ".join(phrase.split())
    return text.replace(",", " ").strip()


def _hints(phrases: Mapping[str, tuple[str, ...]], labels: list[str], chinese: bool) -> str:
    seen: dict[str, None] = {}
    for label in labels:
        for phrase in phrases.get(label, ()):
            text = hint_text(phrase, chinese)
            if text and len(text) <= HINT_CHARACTERS:
                seen.setdefault(text, None)
    return ", ".join(list(seen)[:HINTS_MAX])
