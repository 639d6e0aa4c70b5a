"""A trial, not part of the line: would a statistical classifier catch what the phrases miss?

    git archive 9b57c2c | tar -x -C /tmp/ivr-r2
    .venv/bin/python -m bench.speech.classifier_trial /tmp/ivr-r2 [--high 0.9] [--low 0.5]

The export is the commit whose router round 2's held-out set measured (the router of that round).
A naive Bayes classifier over character 2-5 grams and the router's words is trained on this
checkout's tune set WITHOUT the round-2 utterances, and tested on them together with that router:
where the router understood nothing or only an area, the classifier's issue is taken when its
probability is at least `--low` (the line would ask once below `--high`). Without `--low`, the
router alone. Figures in docs/qa/speech.md ("What next").
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

TUNE = Path(__file__).resolve().parent / "corpus" / "tune"
LANGUAGES = ("zh-CN", "en-US", "fr-FR", "de-DE")
ROUND_2 = "held out in round 2"


def features(text: str, language: str, words: Any) -> Counter[str]:
    """Character 2-5 grams of the text and the router's words (stems, pinyin)."""
    plain = unicodedata.normalize("NFKC", text).casefold()
    plain = " " + " ".join(re.sub(r"[^\w\s]", " ", plain).split()) + " "
    found: Counter[str] = Counter()
    for n in (2, 3, 4, 5):
        for i in range(len(plain) - n + 1):
            if plain[i : i + n].strip():
                found["c" + plain[i : i + n]] += 1
    found.update("w" + word for word in words(text, language))
    return found


class NaiveBayes:
    def __init__(self, samples: list[tuple[Counter[str], str]], alpha: float = 0.3) -> None:
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.totals: Counter[str] = Counter()
        self.docs: Counter[str] = Counter()
        self.vocabulary: set[str] = set()
        for found, label in samples:
            self.counts[label].update(found)
            self.totals[label] += sum(found.values())
            self.docs[label] += 1
            self.vocabulary |= set(found)
        self.alpha = alpha

    def best(self, found: Counter[str]) -> tuple[float, str]:
        """The most likely label and its probability."""
        size, documents = len(self.vocabulary), sum(self.docs.values())
        scores = {}
        for label, count in self.docs.items():
            score = math.log(count / documents)
            total = self.totals[label] + self.alpha * size
            for gram, times in found.items():
                if gram in self.vocabulary:
                    score += times * math.log((self.counts[label][gram] + self.alpha) / total)
            scores[label] = score
        top = max(scores.values())
        weights = {label: math.exp(score - top) for label, score in scores.items()}
        label = max(weights, key=lambda name: weights[name])
        return weights[label] / sum(weights.values()), label


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.speech.classifier_trial")
    parser.add_argument("root", type=Path, help="an export of the commit whose router is tried")
    parser.add_argument("--high", type=float, default=0.9)
    parser.add_argument("--low", type=float, help="take the classifier's issue from this on")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.root))
    from ivr.rules.check import load_bundle
    from ivr.speech import Utterance
    from ivr.speech.words import words

    bundle = load_bundle(args.root / "routing_rules.yaml", args.root / "voice_prompts")
    main_menu = bundle.rules.menus["main"]

    def led_to(path: tuple[str, ...]) -> tuple[str, bool]:
        menu = main_menu
        for key in path[:-1]:
            menu = bundle.rules.menus[menu.options[key].menu]
        option = menu.options[path[-1]]
        return (option.menu or option.issue_name), bool(option.menu)

    totals = Counter[str]()
    for language in LANGUAGES:
        text = (TUNE / f"{language}.yaml").read_text(encoding="utf-8")
        part = text.partition(ROUND_2)[2].split("round 3")[0]
        lines = [line for line in part.split("\n") if "said:" in line]
        everything = yaml.safe_load(text)["utterances"]
        test = [u for u in everything if any(u["said"] in line for line in lines)]
        train = [u for u in everything if u not in test]
        model = NaiveBayes([(features(u["said"], language, words), u["to"]) for u in train])
        seen = Counter[str]()
        for u in test:
            said = Utterance(u["said"], u.get("confidence", 0.9))
            route = bundle.router.route("main", language, said)
            got, asked, area_only = None, route.confirm, False
            if route.operator:
                got = "operator"
            elif route.path:
                got, area_only = led_to(route.path)
            if args.low is not None and (got is None or area_only):
                probability, label = model.best(features(u["said"], language, words))
                if label != "off_topic" and probability >= args.low:
                    got, asked = label, probability < args.high
            if u["to"] == "off_topic":
                seen["off_topic"] += 1
                seen["off_topic_understood"] += got is not None
            else:
                seen["on_topic"] += 1
                seen["right"] += got == u["to"]
                seen["asked"] += asked
        totals.update(seen)
        print(_line(language, seen))
    print(_line("all", totals))
    return 0


def _line(name: str, seen: Counter[str]) -> str:
    return (
        f"{name}: leaf {seen['right']}/{seen['on_topic']} "
        f"({seen['right'] / seen['on_topic']:.1%}), asked {seen['asked']}, off-topic understood "
        f"{seen['off_topic_understood']}/{seen['off_topic']}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
