"""`python -m bench.speech`: the corpora fit the shipped rules, and the figures add up."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.speech import (
    CORPUS,
    PROMPTS,
    RULES,
    SETS,
    TARGETS,
    Corpus,
    CorpusError,
    Results,
    Sample,
    confusion,
    figures,
    leaves,
    load_corpora,
    load_corpus,
    misses,
    problems,
    run,
    table,
)
from bench.speech.__main__ import main
from ivr.rules.bundle import Bundle
from ivr.rules.check import load_bundle
from ivr.speech.router import Route, Utterance


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(RULES, PROMPTS)


def test_the_leaves_are_the_shipped_issues_under_main(bundle: Bundle) -> None:
    found = leaves(bundle.rules)
    assert found["withdrawal"] == ("2", "2")
    assert found["complaint"] == ("4",)
    assert found["faq_hours"] == ("6", "1")
    assert found["voicemail"] == ("6", "5")
    assert len(found) == 16
    assert "funds" not in found  # a sub-menu is an area, not an issue


def test_every_corpus_file_parses_and_fits_the_rules(bundle: Bundle) -> None:
    languages = bundle.rules.language_codes
    corpora = load_corpora(CORPUS, SETS, languages)
    heldout = [c.language for c in corpora if c.set == "heldout"]
    assert heldout == list(languages), "every language needs a held-out corpus"
    tune = [c.language for c in corpora if c.set == "tune"]
    # The tune set comes from the router's branch; once any of it is here, all of it must be.
    assert tune in ([], list(languages))
    issues = leaves(bundle.rules)
    for corpus in corpora:
        assert problems(corpus, issues) == []
        assert len(corpus.samples) >= 40


def test_the_held_out_set_is_not_the_tune_set() -> None:
    heldout = {s.said.lower() for f in (CORPUS / "heldout").glob("*.yaml") for s in _samples(f)}
    tune = {s.said.lower() for f in (CORPUS / "tune").glob("*.yaml") for s in _samples(f)}
    assert heldout and not heldout & tune


def _samples(path: Path) -> tuple[Sample, ...]:
    return load_corpus(path, path.parent.name).samples


def test_a_corpus_that_does_not_fit_is_told(bundle: Bundle, tmp_path: Path) -> None:
    path = tmp_path / "en-US.yaml"
    path.write_text(
        "language: en-US\nutterances:\n"
        '  - {said: "my coins are gone", to: stolen_coins}\n'
        '  - {said: "a person please", to: operator, confidence: 0.4}\n',
        encoding="utf-8",
    )
    found = problems(load_corpus(path, "heldout"), leaves(bundle.rules))
    assert f"{path}: `to: stolen_coins` ('my coins are gone') is not an issue" in found[0]
    assert f"{path}: 2 utterances, at least 40 wanted" in found
    assert f"{path}: withdrawal said 0 times, at least 2 wanted" in found
    assert f"{path}: 1 operator utterances, at least 4 wanted" in found
    path.write_text("language: en-US\nutterances:\n  - {said: hi, to: x, confidence: 2}\n")
    with pytest.raises(CorpusError, match="utterance 1: `confidence` must be a number from 0"):
        load_corpus(path, "heldout")
    path.write_text("language: fr-FR\nutterances: []\n")
    with pytest.raises(CorpusError, match="differs from the file's name"):
        load_corpus(path, "heldout")


# A hand-made corpus and the routes a hand-made router gives it: leaf, area, clarification and
# off-topic figures all differ, so a figure computed from the wrong utterances shows.
ROUTES = {
    "w1": ("withdrawal", Route(("2", "2"), sure=0.9)),  # right
    "w2": ("withdrawal", Route(("2",), sure=0.9)),  # only the area: the funds menu
    "w3": ("withdrawal", Route(("2", "2"), sure=0.5, confirm=True)),  # right, after a question
    "l1": ("login", Route(("3", "1"), sure=0.9)),  # another area: account_compromised
    "c1": ("complaint", Route(("4",), sure=0.9)),  # right: a leaf of main itself
    "h1": ("faq_hours", Route()),  # not understood
    "o1": ("operator", Route(operator=True, sure=0.9)),
    "o2": ("operator", Route()),
    "x1": ("off_topic", Route()),
    "x2": ("off_topic", Route(("2",), sure=0.4, confirm=True)),  # followed, after a question
}


@pytest.fixture
def hand_made(bundle: Bundle) -> Results:
    corpus = Corpus(
        "heldout",
        "en-US",
        tuple(Sample(said, to) for said, (to, _) in ROUTES.items()),
        Path("en-US.yaml"),
    )

    def route(language: str, said: Utterance) -> Route:
        assert (language, said.confidence) == ("en-US", 0.9)
        return ROUTES[said.text][1]

    return Results({("heldout", "en-US"): run(bundle.rules, route, corpus)})


def test_the_figures_of_a_hand_made_corpus(hand_made: Results) -> None:
    found = figures(hand_made.pooled("heldout"))
    assert (found.leaf.hits, found.leaf.of) == (3, 6)  # w1, w3, c1
    assert (found.area.hits, found.area.of) == (4, 6)  # and w2
    assert (found.asked.hits, found.asked.of) == (1, 6)  # w3
    assert (found.operator.hits, found.operator.of) == (1, 2)
    assert (found.off_topic.hits, found.off_topic.of) == (1, 2)  # x2
    assert found.met("operator") is None  # reported, no target
    assert TARGETS["asked"].met(0.15) and not TARGETS["asked"].met(0.151)
    assert TARGETS["leaf"].met(0.9) and not TARGETS["leaf"].met(0.89)
    assert table(hand_made, "heldout") == [
        "| language | utterances | leaf accuracy | area accuracy | clarification rate "
        "| operator | off-topic understood |",
        "|---|---|---|---|---|---|---|",
        "| en-US | 10 | 50.0% (3/6), **missed** | 66.7% (4/6), **missed** | 16.7% (1/6), "
        "**missed** | 50.0% (1/2) | 50.0% (1/2), **missed** |",
        "| all languages | 10 | 50.0% (3/6), **missed** | 66.7% (4/6), **missed** | 16.7% (1/6), "
        "**missed** | 50.0% (1/2) | 50.0% (1/2), **missed** |",
        "| target | | >= 90% | >= 97% | <= 15% | – | <= 5% |",
    ]


def test_the_confusion_table_and_the_misses_of_a_hand_made_corpus(
    bundle: Bundle, hand_made: Results
) -> None:
    assert confusion(hand_made.by_corpus[("heldout", "en-US")]) == [
        "| said about | utterances | right | led elsewhere |",
        "|---|---|---|---|",
        "| withdrawal | 3 | 2 | funds ×1 |",
        "| login | 1 | 0 | account_compromised ×1 |",
        "| complaint | 1 | 1 | – |",
        "| faq_hours | 1 | 0 | menu ×1 |",
        "| operator | 2 | 1 | menu ×1 |",
        "| off_topic | 2 | 1 | funds ×1 |",
    ]
    assert misses(hand_made, "heldout", bundle.rules) == (
        "Of the 5 misses (en-US 5): 2 (40%) went nowhere (not understood: the caller hears the "
        "keypad menu); 2 (40%) stopped at an area's menu (the issue was not clear) (funds 2); "
        "1 (20%) reached another issue (account_compromised 1). The most frequent: "
        "faq_hours → menu (1), login → account_compromised (1), off_topic → funds (1), "
        "operator → menu (1), withdrawal → funds (1)."
    )


def test_the_command_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(CORPUS / "heldout", tmp_path / "corpus" / "heldout")
    out = tmp_path / "docs" / "speech.md"
    assert main(["--corpus", str(tmp_path / "corpus"), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "## Held-out set: the figures we hold ourselves to" in text
    assert "(No `tune` set: `bench/speech/corpus/tune/` has no files.)" in text
    for language in ("zh-CN", "en-US", "fr-FR", "de-DE"):
        assert f"### {language}\n" in text
        # The row of this set, counted from its file: the first set's record (63) is on file too.
        count = len(_samples(CORPUS / "heldout" / f"{language}.yaml"))
        assert f"\n| {language} | {count} | " in text
    assert "## What dominates the misses" in text
    printed = capsys.readouterr().out
    assert printed.startswith("heldout:\n| language | utterances | leaf accuracy |")
    assert f"wrote {out}" in printed


def test_the_command_refuses_a_corpus_naming_no_issue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "corpus" / "heldout"
    shutil.copytree(CORPUS / "heldout", folder)
    text = (folder / "de-DE.yaml").read_text(encoding="utf-8")
    (folder / "de-DE.yaml").write_text(text.replace("to: faq_hours", "to: hours"))
    said = next(s.said for s in _samples(CORPUS / "heldout" / "de-DE.yaml") if s.to == "faq_hours")
    out = tmp_path / "speech.md"
    assert main(["--corpus", str(tmp_path / "corpus"), "--out", str(out), "--set", "heldout"]) == 2
    assert f"de-DE.yaml: `to: hours` ({said!r})" in capsys.readouterr().err
    assert not out.exists()
