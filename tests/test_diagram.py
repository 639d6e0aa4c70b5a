"""The call-flow diagram (`ivr diagram`, the admin Rules page) as an admin reads it: every menu, key
and queue of the rules is in the picture, with the texts callers hear, and it draws as SVG and PNG."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.diagram import DiagramUnavailable, diagram_dot, diagram_png, diagram_svg, short_hours
from ivr.rules.bundle import Bundle
from ivr.rules.check import load_bundle
from ivr.rules.schema import Team
from tests.support import PROMPTS, RULES, write_rules

SVG = "{http://www.w3.org/2000/svg}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(RULES, PROMPTS)


class Picture:
    """The nodes and edges of a diagram's SVG: node id -> its text, (from, to) -> each edge's text
    and style. Graphviz writes each node's and edge's id in its <title>; a wrapped label is several
    <text> elements, joined here with single spaces (indenting spaces become one)."""

    def __init__(self, svg: str) -> None:
        root = ET.fromstring(svg)
        self.nodes: dict[str, str] = {}
        self.edges: list[tuple[str, str, str, str]] = []
        for group in root.iter(f"{SVG}g"):
            title = group.findtext(f"{SVG}title") or ""
            text = " ".join(" ".join(t.text or "" for t in group.iter(f"{SVG}text")).split())
            if group.get("class") == "node":
                self.nodes[title] = text
            elif group.get("class") == "edge":
                tail, _, head = title.partition("->")
                path = group.find(f"{SVG}path")
                dash = path.get("stroke-dasharray", "") if path is not None else ""
                self.edges.append((tail, head, text, dash))

    def edges_from(self, node: str) -> list[tuple[str, str, str]]:
        return [(head, text, dash) for tail, head, text, dash in self.edges if tail == node]


def squeezed(text: str) -> str:
    """Text without whitespace: labels are wrapped at spaces (and Chinese anywhere)."""
    return "".join(text.split())


@pytest.fixture(scope="module")
def picture(bundle: Bundle) -> Picture:
    return Picture(diagram_svg(bundle))


def test_every_menu_and_every_key_with_its_label_is_drawn(bundle: Bundle, picture: Picture) -> None:
    texts = bundle.prompts.catalog("en-US").texts
    for menu_id, menu in bundle.rules.menus.items():
        node = f"menu/{menu_id}"
        assert menu_id in picture.nodes[node]
        if menu.intro:
            assert squeezed(texts[menu.intro]) in squeezed(picture.nodes[node])
        edges = picture.edges_from(node)
        for key, option in menu.options.items():
            labelled = [text for _, text, _ in edges if text.startswith(f"{key} · ")]
            assert len(labelled) == 1, (menu_id, key, edges)
            assert squeezed(texts[option.label]).lower() in squeezed(labelled[0]).lower()


def test_a_menu_that_listens_says_so(bundle: Bundle, picture: Picture) -> None:
    for menu_id, menu in bundle.rules.menus.items():
        says = "listens:" in picture.nodes[f"menu/{menu_id}"]
        assert says == menu.listen, menu_id
    assert bundle.rules.menus[bundle.rules.main_menu].listen


def test_keys_lead_where_the_rules_say(bundle: Bundle, picture: Picture) -> None:
    heads = {text.split(" · ")[0]: head for head, text, _ in picture.edges_from("menu/main")}
    assert heads["1"] == "menu/account"
    assert heads["4"] == "queue/supervisors"
    answers = {
        text.split(" · ")[0]: head for head, text, _ in picture.edges_from("menu/self_service")
    }
    assert "Our phone support is open Monday to Friday" in picture.nodes[answers["1"]]
    assert picture.nodes[answers["5"]].startswith("Voicemail")


def test_the_language_menu_comes_first_and_leads_to_the_main_menu(
    bundle: Bundle, picture: Picture
) -> None:
    assert picture.edges_from("call")[0][0] == "language"
    [(head, text, _)] = picture.edges_from("language")
    assert head == "menu/main"
    for choice in bundle.rules.languages:
        name = bundle.prompts.catalog(choice.code).name
        assert f"{choice.key} · {name} ({choice.code})" in text


def test_every_queue_shows_its_teams_and_their_hours(bundle: Bundle, picture: Picture) -> None:
    for queue_id in bundle.rules.queues:
        assert f"Queue: {queue_id}" in picture.nodes[f"queue/{queue_id}"]
    general = picture.nodes["queue/general"]
    assert "en-US → team americas Mon-Fri 08:00-20:00 America/New_York" in general
    assert "fr-FR, de-DE → team europe Mon-Fri 08:00-20:00 Europe/Berlin" in general
    assert "closed on DE holidays, 2 dated exception(s)" in general
    assert "operator" in general
    assert "team security_desk Open around the clock (UTC)" in picture.nodes["queue/security"]


def test_closed_teams_offer_voicemail_callback_and_another_languages_team(
    picture: Picture,
) -> None:
    closing = {head: text for head, text, _ in picture.edges_from("queue/funds")}
    assert closing["closed/funds"] == "team closed"
    offers = {text: head for head, text, _ in picture.edges_from("closed/funds")}
    assert offers["1 · voicemail"] == "voicemail"
    assert offers["2 · callback"] == "callback"
    assert offers["3 · another language's team, if open now"] == "queue/funds"
    # One team for every language: there is no other language's team to offer.
    assert "3 · another language's team, if open now" not in {
        text for _, text, _ in picture.edges_from("closed/supervisors")
    }
    # Staffed around the clock: never closed.
    assert "closed/security" not in picture.nodes


def test_each_menu_falls_back_on_a_dashed_edge_after_its_tries(picture: Picture) -> None:
    [security] = [e for e in picture.edges_from("menu/security") if e[1].startswith("after")]
    assert security == ("queue/security", "after 2 tries (wrong key or silence)", "5,2")
    [main_menu] = [e for e in picture.edges_from("menu/main") if e[1].startswith("after")]
    assert main_menu[:2] == ("queue/general", "after 3 tries (wrong key or silence)")


def test_one_legend_says_what_0_star_and_pound_do(picture: Picture) -> None:
    legend = picture.nodes["legend"]
    assert "0 · operator: queue general" in legend
    assert "* · repeat this menu" in legend
    assert "# · back one menu (from main: the language menu)" in legend
    assert "2 · callback, keeping the place" in legend  # the hold keys


def test_the_legend_says_when_a_silent_caller_is_let_go(picture: Picture, tmp_path: Path) -> None:
    legend = picture.nodes["legend"]
    assert "No key for 5 min (holding not counted): goodbye, the call ends (no_input)" in legend
    rules, _ = write_rules(tmp_path, ("  silence_limit: 300 ", "  silence_limit: 90 "))
    odd = Picture(diagram_svg(load_bundle(rules, PROMPTS))).nodes["legend"]
    assert "No key for 1 min 30 s (holding not counted)" in odd


def test_labels_are_in_the_chosen_language(bundle: Bundle) -> None:
    svg = diagram_svg(bundle, "zh-CN")
    edges = {text for _, text, _ in Picture(svg).edges_from("menu/main")}
    assert "1 · 账户与登录" in edges
    title = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")][:2]
    assert title == ["BitP support line: call flow", "texts in 中文 (zh-CN)"]


def test_an_unknown_language_is_refused_by_name(bundle: Bundle) -> None:
    with pytest.raises(ValueError, match="xx-XX"):
        diagram_dot(bundle, "xx-XX")


def test_quotes_angle_brackets_ampersands_and_backslashes_appear_as_written(
    bundle: Bundle,
) -> None:
    tricky = 'Log "in" <now> & \\N \\l'
    catalog = bundle.prompts.catalog("en-US")
    edited = dataclasses.replace(catalog, texts={**catalog.texts, "opt_login": tricky})
    prompts = dataclasses.replace(
        bundle.prompts, catalogs={**bundle.prompts.catalogs, "en-US": edited}
    )
    picture = Picture(diagram_svg(dataclasses.replace(bundle, prompts=prompts)))
    edges = {text for _, text, _ in picture.edges_from("menu/account")}
    assert f"1 · {tricky}" in edges


def test_the_dot_source_is_valid_graphviz(bundle: Bundle) -> None:
    dot = shutil.which("dot")
    assert dot is not None, "Graphviz's dot is needed (Debian package graphviz)"
    drawn = subprocess.run(
        [dot, "-Tsvg"], input=diagram_dot(bundle).encode(), capture_output=True, check=False
    )
    assert drawn.returncode == 0
    assert drawn.stderr == b""  # not even a warning
    assert b"<svg" in drawn.stdout


def test_the_svg_can_be_inlined_in_a_page(bundle: Bundle) -> None:
    svg = diagram_svg(bundle)
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")


def test_the_png_is_a_png(bundle: Bundle) -> None:
    assert diagram_png(bundle).startswith(PNG_SIGNATURE)


def test_without_graphviz_installed_the_diagram_is_unavailable(
    bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `dot` on it
    with pytest.raises(DiagramUnavailable, match="Debian package 'graphviz'"):
        diagram_svg(bundle)
    with pytest.raises(DiagramUnavailable):
        diagram_png(bundle)
    assert "digraph" in diagram_dot(bundle)  # the source needs no Graphviz


def test_short_hours_joins_days_with_the_same_hours() -> None:
    team = Team.model_validate(
        {
            "timezone": "Europe/Paris",
            "weekly": {
                "mon-thu": "08:00-20:00",
                "fri": ["08:00-12:00", "13:00-17:00"],
                "sun": "10:00-12:00",
            },
        }
    )
    assert short_hours(team) == (
        "Mon-Thu 08:00-20:00; Fri 08:00-12:00, 13:00-17:00; Sun 10:00-12:00 Europe/Paris"
    )
    daily = Team.model_validate({"timezone": "UTC", "weekly": {"daily": "06:00-22:00"}})
    assert short_hours(daily) == "Daily 06:00-22:00 UTC"


# --- `ivr diagram` -------------------------------------------------------------------------------


def test_cli_writes_svg_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", "--rules", str(RULES), "--prompts", str(PROMPTS)]) == 0
    picture = Picture(capsys.readouterr().out)
    assert "menu/security" in picture.nodes


def test_cli_writes_png_and_dot_files(tmp_path: Path) -> None:
    png, dot = tmp_path / "flow.png", tmp_path / "flow.dot"
    assert main(["diagram", "--format", "png", "--out", str(png)]) == 0
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert main(["diagram", "--format", "dot", "--language", "de-DE", "--out", str(dot)]) == 0
    assert "Deutsch (de-DE)" in dot.read_text(encoding="utf-8")


def test_cli_refuses_png_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", "--format", "png"]) == 1
    assert "--out" in capsys.readouterr().err


def test_cli_names_the_debian_package_when_dot_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["diagram", "--out", str(tmp_path / "flow.svg")]) == 1
    assert "graphviz" in capsys.readouterr().err
    assert not (tmp_path / "flow.svg").exists()


def test_cli_reports_a_broken_rules_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, _ = write_rules(tmp_path, ("queue: supervisors, issue: complaint", "queue: nowhere"))
    assert main(["diagram", "--rules", str(rules), "--prompts", str(PROMPTS)]) == 1
    assert "nowhere" in capsys.readouterr().err
