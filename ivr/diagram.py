"""The call flow of the routing rules as a picture (`ivr diagram`, the admin Rules page).

The rules become Graphviz DOT source through the `graphviz` package, and Graphviz's `dot` program
(Debian package `graphviz`) draws it as SVG or PNG. The picture reads from the top: the call is
answered, the language menu, the main menu and its sub-menus (boxes, one labelled edge per key),
then where the keys lead: queues with their teams' opening hours, self-service answers, voicemail,
and what happens when a queue's team is closed. A dashed edge is a menu's fallback after too many
wrong keys or silences; one legend node says what 0, * and # do everywhere.

Every text comes from the prompt catalog of the chosen language, so labels may hold quotes, `<`,
`&`, backslashes or Chinese: they are escaped for DOT here, and Graphviz escapes them for SVG.
"""

from __future__ import annotations

import argparse
import string
import sys
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import graphviz  # type: ignore[import-untyped]  # the package ships no type hints

from ivr.audio import spoken_length
from ivr.rules.bundle import Bundle
from ivr.rules.schema import WEEKDAYS, Option, Rules, Target, Team, TimeRange

DEBIAN_PACKAGE = "graphviz"
LABEL_WIDTH = 34
"""Characters per line of a wrapped label (Chinese is wrapped at the same count)."""
ANSWER_LENGTH = 140
"""Self-service answers longer than this are cut short with an ellipsis: the diagram shows the gist."""
FONT = "Helvetica"

_MENU = {"shape": "box", "style": "filled", "fillcolor": "#eef3fb", "color": "#3b5b92"}
_QUEUE = {"shape": "box", "style": "rounded,filled", "fillcolor": "#e6f4ea", "color": "#2e7d32"}
_ANSWER = {"shape": "note", "style": "filled", "fillcolor": "#fff8e1", "color": "#a67c00"}
_CLOSED = {"shape": "octagon", "style": "filled", "fillcolor": "#fdecea", "color": "#b3261e"}
_END = {"shape": "cylinder", "style": "filled", "fillcolor": "#f3e5f5", "color": "#6a1b9a"}
_LEGEND = {"shape": "box", "style": "dashed", "color": "#666666", "fontcolor": "#333333"}
_FALLBACK_EDGE = {"style": "dashed", "color": "#b3261e", "fontcolor": "#b3261e"}


class DiagramUnavailable(Exception):
    """Graphviz's `dot` program is not installed, so no SVG or PNG can be drawn."""


def diagram_dot(bundle: Bundle, language: str | None = None) -> str:
    """The DOT source of the call-flow diagram, its texts in `language` (default: the rules')."""
    return str(_Drawing(bundle, language).graph().source)


def diagram_svg(bundle: Bundle, language: str | None = None) -> str:
    """The diagram as an `<svg>` element, ready to inline in an HTML page (no XML prolog)."""
    svg = _render(_Drawing(bundle, language).graph(), "svg").decode("utf-8")
    return svg[svg.index("<svg") :].strip()


def diagram_png(bundle: Bundle, language: str | None = None) -> bytes:
    """The diagram as a PNG image."""
    return _render(_Drawing(bundle, language).graph(), "png")


def _render(graph: graphviz.Digraph, output: str) -> bytes:
    try:
        data: bytes = graph.pipe(format=output)
    except graphviz.ExecutableNotFound as exc:
        raise DiagramUnavailable(
            f"Graphviz's `dot` program is not installed: install the Debian package "
            f"{DEBIAN_PACKAGE!r} (apt-get install {DEBIAN_PACKAGE}) to draw the diagram"
        ) from exc
    return data


def label(lines: Iterable[str], left: bool = False) -> str:
    """A DOT label of these lines, taken literally: no `\\N` escapes, never an HTML label."""
    # `escape` doubles backslashes; `nohtml` keeps a text like "<b>" from being read as HTML.
    end = "\\l" if left else "\\n"
    text = end.join(graphviz.escape(line) for line in lines)
    literal: str = graphviz.nohtml(text + end if left else text)
    return literal


def wrapped(text: str, width: int = LABEL_WIDTH) -> list[str]:
    """`text` in lines of about `width` characters (words kept whole where there are spaces)."""
    return textwrap.wrap(" ".join(text.split()), width) or [""]


def shortened(text: str, length: int = ANSWER_LENGTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _day_span(first: int, last: int) -> str:
    if first == 0 and last == 6:
        return "Daily"
    names = [day.capitalize() for day in WEEKDAYS]
    return names[first] if first == last else f"{names[first]}-{names[last]}"


def _always_open(team: Team | None) -> bool:
    """Staffed around the clock: its callers never reach the after-hours branch."""
    always = (TimeRange(start=0, end=1440),)
    return (
        team is not None
        and not team.overrides
        and all(team.weekly.get(day) == always for day in range(7))
    )


def short_hours(team: Team) -> str:
    """A team's weekly hours in short form: "Mon-Fri 08:00-20:00 America/New_York"."""
    if _always_open(team):
        return f"Open around the clock ({team.timezone})"
    spans: list[str] = []
    day = 0
    while day < 7:  # runs of consecutive days with the same ranges: "Mon-Fri", "Sat"
        ranges = team.weekly.get(day, ())
        last = day
        while last + 1 < 7 and team.weekly.get(last + 1, ()) == ranges:
            last += 1
        if ranges:
            times = ", ".join(f"{_clock(r.start)}-{_clock(r.end)}" for r in ranges)
            spans.append(f"{_day_span(day, last)} {times}")
        day = last + 1
    return f"{'; '.join(spans) or 'Closed every day'} {team.timezone}"


def _team_extras(team: Team) -> str:
    extras = []
    if team.holidays is not None:
        region = team.holidays.country + (
            f"-{team.holidays.subdivision}" if team.holidays.subdivision else ""
        )
        extras.append(f"closed on {region} holidays")
    if team.overrides:
        extras.append(f"{len(team.overrides)} dated exception(s)")
    return ", ".join(extras)


class _Placeholders(dict[str, str]):
    """Leaves a placeholder the service fills in during the call ({key}, {number}) as it is."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class _Drawing:
    """Builds the graph of one bundle in one language."""

    def __init__(self, bundle: Bundle, language: str | None) -> None:
        self.rules: Rules = bundle.rules
        self.language = language or self.rules.defaults.language
        if self.language not in bundle.prompts.catalogs:
            known = ", ".join(bundle.prompts.catalogs) or "none"
            raise ValueError(f"no prompts in language {self.language!r} (there are: {known})")
        self.prompts = bundle.prompts
        self.texts: Mapping[str, str] = bundle.prompts.catalog(self.language).texts
        self.dot = graphviz.Digraph("call_flow")
        self._drawn: set[str] = set()

    # --- texts ---------------------------------------------------------------------------------

    def text(self, prompt_id: str, language: str | None = None) -> str:
        """A prompt's text with {brand}, {email} and {website} filled in; its id if it has none."""
        texts = self.texts if language is None else self.prompts.catalog(language).texts
        raw = texts.get(prompt_id)
        if raw is None:
            return f"[{prompt_id}]"
        values = _Placeholders(
            brand=self.rules.brand, email=self.rules.support_email, website=self.rules.website
        )
        try:
            return string.Formatter().vformat(raw, (), values)
        except (ValueError, IndexError, KeyError):  # a stray brace: show the text as written
            return raw

    def option_text(self, option: Option) -> str:
        words = self.text(option.label)
        return words[:1].upper() + words[1:]

    def language_name(self, code: str) -> str:
        catalog = self.prompts.catalogs.get(code)
        return f"{catalog.name} ({code})" if catalog else code

    # --- the graph -----------------------------------------------------------------------------

    def graph(self) -> graphviz.Digraph:
        dot, rules = self.dot, self.rules
        dot.attr(
            rankdir="TB",
            fontname=FONT,
            labelloc="t",
            label=label(
                [
                    f"{rules.brand} support line: call flow",
                    f"texts in {self.language_name(self.language)}",
                ]
            ),
            nodesep="0.3",
            ranksep="0.6",
        )
        dot.attr("node", fontname=FONT, fontsize="11")
        dot.attr("edge", fontname=FONT, fontsize="10")
        self.start()
        for menu_id in rules.menus:
            self.menu(menu_id)
        self.legend()
        return dot

    def start(self) -> None:
        rules = self.rules
        greeting = ", ".join(rules.greeting)
        self.dot.node("call", label(["Call answered", f"greeting: {greeting}"]), shape="oval")
        self.dot.node(
            "language",
            label(["Language menu", "(each option in its own language)"]),
            **_MENU,
        )
        self.dot.edge("call", "language")
        lines = [f"{c.key} · {self.language_name(c.code)}" for c in rules.languages]
        lines.append(f"no key · caller's country code, else {rules.defaults.language}")
        self.dot.edge("language", f"menu/{rules.main_menu}", label(lines))

    def menu(self, menu_id: str) -> None:
        rules = self.rules
        menu = rules.menus[menu_id]
        title = "Main menu" if menu_id == rules.main_menu else "Menu"
        lines = [f"{title}: {menu_id}"]
        if menu.intro:
            lines += wrapped(self.text(menu.intro))
        if menu.listen:
            lines.append("listens: words lead to its options and its sub-menus' options")
        self.dot.node(f"menu/{menu_id}", label(lines), **_MENU)
        for key, option in menu.options.items():
            words = [
                f"{key} · {line}" if i == 0 else line
                for i, line in enumerate(wrapped(self.option_text(option)))
            ]
            if option.priority is not None:
                words.append(f"(priority {option.priority})")
            self.dot.edge(f"menu/{menu_id}", self.target(option, f"{menu_id}/{key}"), label(words))
        fallback = menu.fallback or rules.defaults.fallback
        tries = menu.max_tries or rules.defaults.max_tries
        self.dot.edge(
            f"menu/{menu_id}",
            self.target(fallback, f"{menu_id}/fallback"),
            label([f"after {tries} tries", "(wrong key or silence)"]),
            **_FALLBACK_EDGE,
        )

    def target(self, target: Target, place: str) -> str:
        """The node a menu option or fallback leads to, drawn on first use."""
        if target.menu:
            return f"menu/{target.menu}"
        if target.queue:
            return self.queue(target.queue)
        if target.say:
            node = f"answer/{place}"
            lines = ["Self-service answer", *wrapped(shortened(self.text(target.say)))]
            self.dot.node(node, label([*lines, "then the same menu again"]), **_ANSWER)
            return node
        return self.voicemail()

    def queue(self, queue_id: str) -> str:
        node = f"queue/{queue_id}"
        if node in self._drawn:
            return node
        self._drawn.add(node)
        rules = self.rules
        queue = rules.queues.get(queue_id)
        if queue is None:  # `ivr check` reports it; the picture still shows where the key leads
            self.dot.node(node, label([f"Queue: {queue_id}", "(not defined)"]), **_QUEUE)
            return node
        lines = [f"Queue: {queue_id} (priority {queue.priority})"]
        for team_id, languages in self.teams_of(queue_id).items():
            team = rules.teams.get(team_id)
            who = f"{', '.join(languages)} → " if len(self.teams_of(queue_id)) > 1 else ""
            lines.append(f"{who}team {team_id}")
            if team is not None:
                lines.append(f"    {short_hours(team)}")
                extras = _team_extras(team)
                if extras:
                    lines.append(f"    {extras}")
        limits = []
        if queue.max_length:
            limits.append(f"more than {queue.max_length} waiting")
        if queue.max_wait:
            limits.append(f"a wait over {queue.max_wait // 60} min")
        if limits:
            lines.append(f"{' or '.join(limits)}: offer callback / voicemail")
        if queue_id == rules.operator_queue:
            lines.append("(the operator queue: key 0)")
        self.dot.node(node, label(lines), **_QUEUE)
        if not all(_always_open(rules.teams.get(t)) for t in self.teams_of(queue_id)):
            self.after_hours(queue_id)
        return node

    def teams_of(self, queue_id: str) -> dict[str, list[str]]:
        """Team id -> the languages whose callers of this queue it serves, in menu order."""
        queue = self.rules.queues[queue_id]
        teams: dict[str, list[str]] = {}
        for code in self.rules.language_codes:
            teams.setdefault(queue.team_for(code), []).append(code)
        return teams

    def after_hours(self, queue_id: str) -> None:
        after = self.rules.after_hours
        node = f"closed/{queue_id}"
        lines = ["Team closed", "(says when it opens)", "# · back to the menu"]
        self.dot.node(node, label(lines), **_CLOSED)
        self.dot.edge(f"queue/{queue_id}", node, label(["team closed"]), color="#b3261e")
        if after.voicemail:
            self.dot.edge(node, self.voicemail(), label(["1 · voicemail"]))
        if after.callback:
            self.dot.edge(node, self.callback(), label(["2 · callback"]))
        if after.other_languages and len(self.teams_of(queue_id)) > 1:
            self.dot.edge(
                node,
                f"queue/{queue_id}",
                label(["3 · another language's team,", "if open now"]),
                style="dotted",
                constraint="false",
            )

    def voicemail(self) -> str:
        if "voicemail" not in self._drawn:
            self._drawn.add("voicemail")
            seconds = self.rules.after_hours.max_recording_seconds
            self.dot.node(
                "voicemail", label(["Voicemail", f"(up to {seconds} s, on the ticket)"]), **_END
            )
        return "voicemail"

    def callback(self) -> str:
        if "callback" not in self._drawn:
            self._drawn.add("callback")
            self.dot.node("callback", label(["Callback", "in working hours"]), **_END)
        return "callback"

    def legend(self) -> None:
        rules = self.rules
        hold = rules.hold_keys
        lines = [
            "Keys in every menu:",
            f"0 · operator: queue {rules.operator_queue}",
            "* · repeat this menu",
            f"# · back one menu (from {rules.main_menu}: the language menu)",
        ]
        held = [
            f"{key} · {what}"
            for key, what in (
                (hold.position, "position in line"),
                (hold.callback, "callback, keeping the place"),
                (hold.voicemail, "voicemail"),
            )
            if key
        ]
        if held:
            lines += ["", "While holding:", *held]
        lines += ["", "When a team is closed:", "# · back to the menu, * · repeat"]
        limit = rules.defaults.silence_limit
        lines += [
            "",
            f"No key for {spoken_length(limit)} (holding not counted):",
            "goodbye, the call ends (no_input)",
        ]
        with self.dot.subgraph() as top:
            top.attr(rank="source")
            top.node("legend", label(lines, left=True), **_LEGEND)
            top.node("call")


# --- `ivr diagram` ---------------------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    """Add `ivr diagram` to the `ivr` command's subcommands."""
    diagram = commands.add_parser(
        "diagram",
        help="draw the call flow of the rules (menus, keys, queues, hours) as SVG, PNG or DOT",
        description="Draw the call flow of a rules file with Graphviz (Debian package graphviz).",
    )
    diagram.add_argument(
        "--rules", help="rules file (default: $ROUTING_RULES or routing_rules.yaml)"
    )
    diagram.add_argument(
        "--prompts", help="voice prompt folder (default: $VOICE_PROMPTS or voice_prompts)"
    )
    diagram.add_argument("--language", help="language of the labels (default: the rules' default)")
    diagram.add_argument("--format", choices=("svg", "png", "dot"), default="svg")
    diagram.add_argument("--out", help="file to write (default: stdout; PNG needs --out)")
    diagram.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    """`ivr diagram`: write the diagram; 1, said why on stderr, when it cannot be drawn."""
    from ivr.config import Settings
    from ivr.rules.check import load_bundle
    from ivr.rules.loader import RulesError

    if args.format == "png" and not args.out:
        print("a PNG is binary: give --out FILE to write it to", file=sys.stderr)
        return 1
    settings = Settings.from_env()
    rules_file = Path(args.rules) if args.rules else settings.routing_rules
    prompts_dir = Path(args.prompts) if args.prompts else settings.voice_prompts
    try:
        bundle = load_bundle(rules_file, prompts_dir)
        if args.format == "dot":
            drawn: str | bytes = diagram_dot(bundle, args.language)
        elif args.format == "png":
            drawn = diagram_png(bundle, args.language)
        else:
            drawn = diagram_svg(bundle, args.language) + "\n"
    except RulesError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except (DiagramUnavailable, ValueError) as exc:
        print(f"no diagram: {exc}", file=sys.stderr)
        return 1
    if not args.out:
        assert isinstance(drawn, str)
        sys.stdout.write(drawn)
        return 0
    data = drawn.encode("utf-8") if isinstance(drawn, str) else drawn
    try:
        Path(args.out).write_bytes(data)
    except OSError as exc:
        print(f"no diagram written: {exc}", file=sys.stderr)
        return 1
    print(f"{args.format.upper()} diagram of {rules_file} written to {args.out}", file=sys.stderr)
    return 0
