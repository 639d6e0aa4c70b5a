"""`ivr check` on what callers may say at the menus that listen (`listen: true`; see `ivr.speech`).

A catalog's `phrases` are keyed by option label, and the router compares what a caller said with the
phrases of every option a listening menu reaches (its own and, through sub-menus, theirs). What
would make it route badly, or make Twilio ignore the hints:

- ERROR: a phrase two options share where one listening menu reaches both. The two tie, so a caller
  who says it reaches neither (the keypad menu, or only the area's menu). An area and an issue inside
  it (funds and withdrawal) may share one: the router then picks the issue.
- Warnings (the rules run anyway): the same phrase twice for one option; an option callers can reach
  by speech with no phrase in one of the languages (those callers must press keys for it); a catalog
  with no `operator` phrases; a `phrases` key that labels no option (a typo); a comma inside a
  phrase (one phrase said whole, where two were probably meant); hints over Twilio's limits, which
  the router leaves out (Twilio would log warning 13330 and ignore all the hints).
"""

from __future__ import annotations

import difflib

from ivr.rules.loader import Location, Problem, Source
from ivr.rules.prompts import OPERATOR_PHRASES, Catalog, Prompts
from ivr.rules.schema import Rules
from ivr.speech.router import HINT_CHARACTERS, HINTS_MAX, hint_text, reachable
from ivr.speech.words import is_chinese, words

KeyPath = tuple[str, ...]
Reach = dict[str, list[tuple[KeyPath, str]]]
"""Listening menu id -> (path of keys, label) of every option callers reach by speech from it."""

COMMAS = (",", "\uff0c")
"""A comma, and the full-width one Chinese text uses."""


def check_speech(
    rules: Rules, source: Source, prompts: Prompts, prompt_sources: dict[str, Source]
) -> list[Problem]:
    """Errors and warnings about the phrases of the options the listening menus reach."""
    listening = [menu_id for menu_id, menu in rules.menus.items() if menu.listen]
    if not listening:
        return []  # phrases kept for later do no harm while no menu listens
    reach: Reach = {menu_id: list(reachable(rules, menu_id)) for menu_id in listening}
    labels = sorted(
        {option.label for menu in rules.menus.values() for option in menu.options.values()}
    )
    problems = _missing_phrases(rules, source, prompts, prompt_sources, reach)
    for language, catalog in prompts.catalogs.items():
        catalog_source = prompt_sources[language]
        problems += _phrase_problems(catalog, catalog_source, reach, labels)
        problems += _hint_problems(catalog, catalog_source, reach)
    return problems


def _missing_phrases(
    rules: Rules,
    source: Source,
    prompts: Prompts,
    prompt_sources: dict[str, Source],
    reach: Reach,
) -> list[Problem]:
    """Warnings at the label of each option callers can reach by speech but not in every language."""
    warnings: list[Problem] = []
    done: set[tuple[str, str]] = set()
    for listening_menu, options in reach.items():
        for path, label in options:
            menu_id, _ = rules.option_at(listening_menu, path)
            key = path[-1]
            if (menu_id, key) in done:
                continue
            done.add((menu_id, key))
            missing = [
                f"{language} ({prompt_sources[language].file})"
                for language, catalog in prompts.catalogs.items()
                if not catalog.phrases.get(label)
            ]
            if missing:
                warnings.append(
                    source.warning(
                        ("menus", menu_id, "options", key, "label"),
                        f"no phrases for {label} in {_listed(missing)}: callers who say it "
                        f"at menu {listening_menu!r} must press keys for it",
                    )
                )
    return warnings


def _listed(items: list[str]) -> str:
    """The items as a sentence lists them: "a", "a and b", "a, b and c"."""
    return " and ".join(filter(None, [", ".join(items[:-1]), items[-1]]))


def _phrase_problems(
    catalog: Catalog, source: Source, reach: Reach, labels: list[str]
) -> list[Problem]:
    """A catalog's phrases: shared by two options, listed twice, under a key no option has.

    A key that labels an option no listening menu reaches is left alone: not a typo, and when a
    mistake in the rules cuts a sub-menu off, its phrases would only bury that mistake."""
    problems: list[Problem] = []
    reached: dict[str, dict[str, list[KeyPath]]] = {}
    """label -> listening menu -> the paths from it to options with that label"""
    for listening_menu, options in reach.items():
        for path, label in options:
            reached.setdefault(label, {}).setdefault(listening_menu, []).append(path)
    if not catalog.phrases.get(OPERATOR_PHRASES):
        problems.append(
            source.warning(
                ("phrases",),
                f"no {OPERATOR_PHRASES!r} phrases: callers at a menu that listens cannot ask for a "
                "person by saying so (only by pressing 0)",
                at_key=True,
            )
        )
    for key in catalog.phrases:
        if key != OPERATOR_PHRASES and key not in labels:
            near = difflib.get_close_matches(key, [*labels, OPERATOR_PHRASES], n=1, cutoff=0.6)
            hint = f": did you mean {near[0]!r}?" if near else ""
            message = f"{key!r} is neither {OPERATOR_PHRASES!r} nor the label of an option{hint}"
            problems.append(source.warning(("phrases", key), message, at_key=True))

    def menu_reaching_both(first: str, second: str) -> str | None:
        """A listening menu from which the two labels lead to options the router cannot tell
        apart: neither inside the other's sub-menu."""
        for menu_id, paths in reached.get(first, {}).items():
            for one in paths:
                for other in reached.get(second, {}).get(menu_id, []):
                    shorter, longer = sorted((one, other), key=len)
                    if longer[: len(shorter)] != shorter:
                        return menu_id
        return None

    earlier: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    """The words of each phrase so far -> (key, text) of the phrases that have them."""
    for label, texts in catalog.phrases.items():
        for index, text in enumerate(texts):
            cut = words(text, catalog.language)
            if not cut:
                continue
            where: Location = ("phrases", label, index)
            before = earlier.setdefault(cut, [])
            # One option may list forms that come to the same words ("withdraw", "withdrawal"):
            # they route alike, and as hints they help recognition hear either. Only the same
            # text twice is a slip.
            if any(key == label and _same_text(other, text) for key, other in before):
                problems.append(source.warning(where, f"{text!r} is already a phrase of {label}"))
                continue
            if any(key == label for key, _ in before):
                before.append((label, text))
                continue
            for other_label, other in before:
                menu_id = menu_reaching_both(other_label, label)
                if menu_id is not None:
                    same = "" if other == text else f" (as {other!r}, the same words)"
                    problems.append(
                        source.problem(
                            where,
                            f"{text!r} is also a phrase of {other_label}{same}: at menu "
                            f"{menu_id!r} a caller who says it reaches neither {other_label} "
                            f"nor {label}",
                        )
                    )
                    break
            before.append((label, text))
    return problems


def _same_text(one: str, other: str) -> bool:
    return " ".join(one.casefold().split()) == " ".join(other.casefold().split())


def _hint_problems(catalog: Catalog, source: Source, reach: Reach) -> list[Problem]:
    """Warnings about phrases Twilio would not take as hints, and commas that split them.

    Twilio: "hints must be a comma-separated list of up to 500 entries, each entry can be 100
    characters or fewer"; otherwise it logs warning 13330 and ignores the hints. The router leaves
    out what does not fit (the phrases still route what callers say), so these are warnings."""
    warnings: list[Problem] = []
    for key, texts in catalog.phrases.items():
        for index, text in enumerate(texts):
            if any(comma in text for comma in COMMAS):
                warnings.append(
                    source.warning(
                        ("phrases", key, index),
                        f"{text!r} is one phrase, which callers must say whole: to give two, list "
                        "them as two (a comma also separates Twilio's hints)",
                    )
                )
    chinese = is_chinese(catalog.language)
    hinted = {label for options in reach.values() for _, label in options}
    for key, texts in catalog.phrases.items():
        for index, text in enumerate(texts):
            length = len(hint_text(text, chinese))
            if key in hinted and length > HINT_CHARACTERS:
                warnings.append(
                    source.warning(
                        ("phrases", key, index),
                        f"this phrase has {length} characters, more than the {HINT_CHARACTERS} "
                        "Twilio takes for a hint: it is left out of the hints (it still routes "
                        "what callers say)",
                    )
                )
    for menu_id, options in reach.items():
        entries: dict[str, Location] = {}
        for _, label in options:
            for index, text in enumerate(catalog.phrases.get(label, ())):
                hint = hint_text(text, chinese)
                if hint and len(hint) <= HINT_CHARACTERS:
                    entries.setdefault(hint, ("phrases", label, index))
        if len(entries) > HINTS_MAX:
            left_out = len(entries) - HINTS_MAX
            which = "this one is" if left_out == 1 else f"this one and {left_out - 1} others are"
            warnings.append(
                source.warning(
                    list(entries.values())[HINTS_MAX],
                    f"menu {menu_id!r} listens for {len(entries)} different phrases in "
                    f"{catalog.language}, more than the {HINTS_MAX} hints Twilio takes: {which} "
                    "left out of the hints (they still route what callers say)",
                )
            )
    return warnings
