"""How well the main menu understands callers: the speech router on the corpora, written up.

    .venv/bin/python -m bench.speech

Every utterance of `bench/speech/corpus/<set>/<language>.yaml` (format: the comment at the top of
each file and the README) goes through the shipped rules' router at menu `main`, as `/voice/input`
would send it, and the figures per language and set go to `docs/qa/speech.md` and the terminal:

- leaf accuracy: on-topic utterances whose route reaches their issue (a route the line first asks
  about counts: the caller presses 1);
- area accuracy: on-topic utterances whose route starts with their area's key (the option of
  `main` whose sub-tree holds the issue), whether or not it goes further;
- clarification rate: on-topic utterances the line asks about before following;
- operator: requests for a person that reach the operator queue;
- off-topic understood: utterances about nothing the menu offers that lead anywhere (asked about
  or not): each one sends a caller somewhere they did not ask for.

The `heldout` set was written apart from the catalogs' phrases and is never tuned on; its figures
are the ones held against the targets. The `tune` set is the one the phrases are tuned on, so its
figures only show what the tuning reached. Pure: no clock, no network; the same corpus, rules and
prompts always give the same figures.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ivr.rules.schema import Rules
from ivr.speech.router import Route, Utterance, reachable

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "bench" / "speech" / "corpus"
REPORT = ROOT / "docs" / "qa" / "speech.md"
RULES, PROMPTS = ROOT / "routing_rules.yaml", ROOT / "voice_prompts"
SETS = ("heldout", "tune")
"""Held-out first: the figures we hold ourselves to."""
MENU = "main"
OPERATOR, OFF_TOPIC, NOT_UNDERSTOOD = "operator", "off_topic", "menu"
DEFAULT_CONFIDENCE = 0.9
"""Twilio's `Confidence` for an utterance that gives none: clear speech."""


@dataclass(frozen=True)
class Target:
    """A figure's target: at least (`most` False) or at most `share`."""

    share: float
    most: bool = False

    def met(self, value: float) -> bool:
        return value <= self.share if self.most else value >= self.share

    def __str__(self) -> str:
        return f"{'<=' if self.most else '>='} {self.share:.0%}"


TARGETS = {
    "leaf": Target(0.90),
    "area": Target(0.97),
    "asked": Target(0.15, most=True),
    "off_topic": Target(0.05, most=True),
}
"""From the issue. The operator figure has none: it is reported, not held to."""


@dataclass(frozen=True)
class Sample:
    said: str
    to: str
    confidence: float = DEFAULT_CONFIDENCE


@dataclass(frozen=True)
class Corpus:
    set: str
    language: str
    samples: tuple[Sample, ...]
    path: Path


class CorpusError(ValueError):
    """A corpus file that does not follow the format: the file and what is wrong."""


def load_corpus(path: Path, set_name: str) -> Corpus:
    """One corpus file, checked for its shape (not yet against the rules: `problems`)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CorpusError(f"{path}: not YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("utterances"), list):
        raise CorpusError(f"{path}: needs `language:` and a list `utterances:`")
    language = data.get("language")
    if language != path.stem:
        raise CorpusError(f"{path}: `language: {language}` differs from the file's name")
    samples = []
    for number, item in enumerate(data["utterances"], start=1):
        where = f"{path}: utterance {number}"
        if not isinstance(item, dict) or set(item) - {"said", "to", "confidence"}:
            raise CorpusError(f"{where}: needs said, to and optionally confidence, nothing else")
        said, to, confidence = item.get("said"), item.get("to"), item.get("confidence")
        if not isinstance(said, str) or not said.strip():
            raise CorpusError(f"{where}: `said` must be a non-empty text")
        if not isinstance(to, str) or not to:
            raise CorpusError(f"{where}: `to` must name an issue, operator or off_topic")
        if confidence is None:
            confidence = DEFAULT_CONFIDENCE
        if isinstance(confidence, bool) or not isinstance(confidence, int | float):
            raise CorpusError(f"{where}: `confidence` must be a number from 0 to 1")
        if not 0 <= confidence <= 1:
            raise CorpusError(f"{where}: `confidence` must be a number from 0 to 1")
        samples.append(Sample(said, to, float(confidence)))
    return Corpus(set_name, language, tuple(samples), path)


def load_corpora(root: Path, sets: Iterable[str], languages: Sequence[str]) -> list[Corpus]:
    """Every corpus file under `root` of these sets, in the rules' order of languages; a file
    whose language the rules do not offer is an error, a missing set is just absent."""
    corpora = []
    for set_name in sets:
        files = {p.stem: p for p in sorted((root / set_name).glob("*.yaml"))}
        unknown = sorted(files.keys() - set(languages))
        if unknown:
            raise CorpusError(f"{root / set_name}: languages the rules do not offer: {unknown}")
        corpora += [load_corpus(files[lang], set_name) for lang in languages if lang in files]
    return corpora


def leaves(rules: Rules, menu_id: str = MENU) -> dict[str, tuple[str, ...]]:
    """Issue name -> keys from `menu_id` of every option reachable from it that ends the menus
    (a queue, an answer or voicemail); the first key is the issue's area."""
    found: dict[str, tuple[str, ...]] = {}
    for path, _ in reachable(rules, menu_id):  # breadth first: the shortest path wins
        _, option = rules.option_at(menu_id, path)
        if option.menu is None:
            found.setdefault(option.issue_name, path)
    return found


def problems(corpus: Corpus, issues: Iterable[str]) -> list[str]:
    """What in a corpus does not fit the rules or the format's minimums (empty: it is usable)."""
    known = set(issues)
    found = [
        f"{corpus.path}: `to: {s.to}` ({s.said!r}) is not an issue reachable from {MENU}, "
        f"{OPERATOR} or {OFF_TOPIC}"
        for s in corpus.samples
        if s.to not in known | {OPERATOR, OFF_TOPIC}
    ]
    counts = Counter(s.to for s in corpus.samples)
    if len(corpus.samples) < 40:
        found.append(f"{corpus.path}: {len(corpus.samples)} utterances, at least 40 wanted")
    found += [
        f"{corpus.path}: {issue} said {counts[issue]} times, at least 2 wanted"
        for issue in sorted(known)
        if counts[issue] < 2
    ]
    if counts[OPERATOR] < 4:
        found.append(f"{corpus.path}: {counts[OPERATOR]} operator utterances, at least 4 wanted")
    if counts[OFF_TOPIC] < 6:
        found.append(f"{corpus.path}: {counts[OFF_TOPIC]} off_topic utterances, at least 6 wanted")
    return found


def destination(rules: Rules, route: Route, menu_id: str = MENU) -> str:
    """Where a route leads, as the confusion tables name it: an issue, a sub-menu's id (only
    the area was clear), `operator`, or `menu` (not understood: the keypad menu)."""
    if route.operator:
        return OPERATOR
    if not route.path:
        return NOT_UNDERSTOOD
    _, option = rules.option_at(menu_id, route.path)
    return option.menu or option.issue_name


@dataclass(frozen=True)
class Outcome:
    """One utterance and where the router sent it."""

    sample: Sample
    route: Route
    led_to: str
    area: str | None
    """The key of `main` the utterance belongs under (None for operator and off_topic)."""

    @property
    def on_topic(self) -> bool:
        return self.area is not None

    @property
    def right(self) -> bool:
        """Did the caller get what they asked for (off_topic: that nothing was followed)."""
        if self.sample.to == OFF_TOPIC:
            return not self.route.understood
        if self.sample.to == OPERATOR:
            return self.route.operator
        return self.led_to == self.sample.to


Router = Callable[[str, Utterance], Route]
"""(language, utterance) -> route at menu main: `bundle.router.route` with the menu bound."""


def run(rules: Rules, route: Router, corpus: Corpus) -> list[Outcome]:
    paths = leaves(rules)
    outcomes = []
    for sample in corpus.samples:
        result = route(corpus.language, Utterance(sample.said, sample.confidence))
        area = paths[sample.to][0] if sample.to in paths else None
        outcomes.append(Outcome(sample, result, destination(rules, result), area))
    return outcomes


@dataclass(frozen=True)
class Share:
    """`hits` of `of`, as a share (nan when there is nothing to count)."""

    hits: int
    of: int

    @property
    def value(self) -> float:
        return self.hits / self.of if self.of else math.nan

    def __str__(self) -> str:
        return f"{self.value:.1%} ({self.hits}/{self.of})" if self.of else "–"


@dataclass(frozen=True)
class Figures:
    leaf: Share
    area: Share
    asked: Share
    operator: Share
    off_topic: Share

    def met(self, name: str) -> bool | None:
        """Whether the figure `name` meets its target (None: no target, or nothing counted)."""
        share: Share = getattr(self, name)
        target = TARGETS.get(name)
        return None if target is None or not share.of else target.met(share.value)


def figures(outcomes: Sequence[Outcome]) -> Figures:
    on_topic = [o for o in outcomes if o.on_topic]
    operator = [o for o in outcomes if o.sample.to == OPERATOR]
    off_topic = [o for o in outcomes if o.sample.to == OFF_TOPIC]
    return Figures(
        leaf=Share(sum(o.led_to == o.sample.to for o in on_topic), len(on_topic)),
        area=Share(sum(o.route.path[:1] == (o.area,) for o in on_topic), len(on_topic)),
        asked=Share(sum(o.route.confirm for o in on_topic), len(on_topic)),
        operator=Share(sum(o.route.operator for o in operator), len(operator)),
        off_topic=Share(sum(o.route.understood for o in off_topic), len(off_topic)),
    )


# --- the report ---------------------------------------------------------------------------------

COLUMNS = (
    ("leaf", "leaf accuracy"),
    ("area", "area accuracy"),
    ("asked", "clarification rate"),
    ("operator", "operator"),
    ("off_topic", "off-topic understood"),
)
ALL = "all languages"
TITLES = {"heldout": "held-out", "tune": "tune"}


@dataclass
class Results:
    """Outcomes per (set, language), in the order run."""

    by_corpus: dict[tuple[str, str], list[Outcome]] = field(default_factory=dict)

    def sets(self) -> list[str]:
        return list(dict.fromkeys(s for s, _ in self.by_corpus))

    def languages(self, set_name: str) -> list[str]:
        return [lang for s, lang in self.by_corpus if s == set_name]

    def pooled(self, set_name: str) -> list[Outcome]:
        return [o for (s, _), found in self.by_corpus.items() if s == set_name for o in found]


def _cell(found: Figures, name: str) -> str:
    met = found.met(name)
    verdict = "" if met is None else (", met" if met else ", **missed**")
    return f"{getattr(found, name)}{verdict}"


def table(results: Results, set_name: str) -> list[str]:
    """The figures of one set, a row per language and one for all of them together."""
    lines = [
        "| language | utterances | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 2) + "|",
    ]
    rows = [(lang, results.by_corpus[(set_name, lang)]) for lang in results.languages(set_name)]
    rows.append((ALL, results.pooled(set_name)))
    for name, outcomes in rows:
        found = figures(outcomes)
        cells = " | ".join(_cell(found, key) for key, _ in COLUMNS)
        lines.append(f"| {name} | {len(outcomes)} | {cells} |")
    lines.append(
        "| target | | "
        + " | ".join(str(TARGETS[key]) if key in TARGETS else "–" for key, _ in COLUMNS)
        + " |"
    )
    return lines


def confusion(outcomes: Sequence[Outcome]) -> list[str]:
    """Rows = what the utterances were about, in the rules' order; where they led, non-empty
    cells only, the right destination first."""
    order = list(dict.fromkeys(o.sample.to for o in outcomes))
    lines = [
        "| said about | utterances | right | led elsewhere |",
        "|---|---|---|---|",
    ]
    for label in order:
        mine = [o for o in outcomes if o.sample.to == label]
        wrong = Counter(o.led_to for o in mine if not o.right)
        elsewhere = ", ".join(f"{dest} ×{n}" for dest, n in _ranked(wrong)) or "–"
        lines.append(f"| {label} | {len(mine)} | {sum(o.right for o in mine)} | {elsewhere} |")
    return lines


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def misses(results: Results, set_name: str, rules: Rules) -> str:
    """What dominates the misses of a set: where the wrong routes went, most frequent first."""
    wrong = [o for o in results.pooled(set_name) if not o.right]
    if not wrong:
        return "No misses: every utterance led where it should."
    where = Counter(o.led_to for o in wrong)
    submenus = {o.menu for m in rules.menus.values() for o in m.options.values() if o.menu}
    kinds: dict[str, Counter[str]] = {
        "went nowhere (not understood: the caller hears the keypad menu)": Counter(),
        "stopped at an area's menu (the issue was not clear)": Counter(),
        "went to a person": Counter(),
        "reached another issue": Counter(),
    }
    nowhere, area, person, issue = kinds.values()
    for dest, count in where.items():
        kind = {NOT_UNDERSTOOD: nowhere, OPERATOR: person}.get(dest)
        if kind is None:  # not `or`: an empty Counter is false
            kind = area if dest in submenus else issue
        kind[dest] = count
    parts = []
    for what, counts in sorted(kinds.items(), key=lambda item: -item[1].total()):
        if not counts:
            continue
        total = counts.total()
        detail = ", ".join(f"{dest} {n}" for dest, n in _ranked(counts))
        shown = f" ({detail})" if counts is area or counts is issue else ""
        parts.append(f"{total} ({total / len(wrong):.0%}) {what}{shown}")
    pairs = Counter(f"{o.sample.to} → {o.led_to}" for o in wrong)
    top = ", ".join(f"{pair} ({n})" for pair, n in _ranked(pairs)[:5])
    by_language = ", ".join(
        f"{lang} {sum(not o.right for o in results.by_corpus[(set_name, lang)])}"
        for lang in results.languages(set_name)
    )
    return (
        f"Of the {len(wrong)} misses ({by_language}): "
        + "; ".join(parts)
        + f". The most frequent: {top}."
    )


def report(results: Results, rules: Rules, command: str, commit: str, date: str) -> str:
    lines = [
        "# Speech at the main menu: how often callers get where they asked",
        "",
        f"Made by `{command}` on {date}, commit {commit}.",
        "",
        "Every utterance of `bench/speech/corpus/<set>/<language>.yaml` went through the router of",
        f"the shipped rules and prompts at menu `{MENU}`, as `/voice/input` sends it, with its",
        f"`confidence` (default {DEFAULT_CONFIDENCE}) as Twilio's.",
        "",
        "- **leaf accuracy**: utterances about an issue that lead to that issue (a route the line",
        "  asks about first counts: the caller presses 1);",
        "- **area accuracy**: the same utterances whose route starts in the issue's area (the option",
        f"  of `{MENU}` whose menus hold it), whether it goes on to the issue or not;",
        "- **clarification rate**: the same utterances the line asks about before following;",
        "- **operator**: requests for a person that reach the operator queue (no target);",
        "- **off-topic understood**: utterances about nothing the menu offers that lead anywhere",
        "  (asked about or not).",
        "",
    ]
    if "heldout" in results.sets():
        lines += [
            "## Held-out set: the figures we hold ourselves to",
            "",
            "Written from the option labels only, apart from the catalogs' phrases, and never tuned",
            "on.",
            "",
            *table(results, "heldout"),
            "",
        ]
    if "tune" in results.sets():
        lines += [
            "## Tune set",
            "",
            "The phrases were tuned on these utterances, so these figures show what the tuning",
            "reached, not how the router does on what callers will say.",
            "",
            *table(results, "tune"),
            "",
        ]
    for set_name in SETS:
        if set_name not in results.sets():
            lines += [f"(No `{set_name}` set: `bench/speech/corpus/{set_name}/` has no files.)", ""]
    shown = "heldout" if "heldout" in results.sets() else results.sets()[0]
    lines += [
        f"## Where the utterances led ({TITLES[shown]} set)",
        "",
        "Per language: how many utterances were about each issue (`operator`: asked for a person,",
        "`off_topic`: nothing the menu offers), how many got it, and where the others went (an",
        "issue; a sub-menu's id when only the area was clear; `operator`; `menu` when nothing was",
        "understood and the caller hears the keypad menu).",
        "",
    ]
    for language in results.languages(shown):
        lines += [f"### {language}", "", *confusion(results.by_corpus[(shown, language)]), ""]
    lines += ["## What dominates the misses", "", misses(results, shown, rules), ""]
    if ROUNDS.exists():
        lines += ["## Earlier rounds", "", ROUNDS.read_text(encoding="utf-8").strip(), ""]
    return "\n".join(lines)


ROUNDS = Path(__file__).with_name("rounds.md")
"""Earlier held-out measurements, kept by hand: a held-out set once looked at joins the tune set,
and what it measured before that stays on record in the report."""


def summary(results: Results) -> str:
    """The figures of every set run, for the terminal."""
    lines: list[str] = []
    for set_name in results.sets():
        lines += [f"{set_name}:", *table(results, set_name), ""]
    return "\n".join(lines).rstrip()


def run_all(rules: Rules, route: Router, corpora: Sequence[Corpus]) -> Results:
    results = Results()
    for corpus in corpora:
        results.by_corpus[(corpus.set, corpus.language)] = run(rules, route, corpus)
    return results
