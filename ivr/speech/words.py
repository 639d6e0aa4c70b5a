"""What a caller said, as the words the router compares: one language's rules for text that speech
recognition returns (no punctuation, any case, inflected, Chinese without spaces).

- English, French and German words are cut to their stem with the Snowball stemmers
  (`snowballstemmer`, the stemmers of the Snowball project: maintained, pure Python, no model to
  download): "withdrawals", "withdrawing" and "withdraw" all become "withdraw"; "retraits" becomes
  "retrait"; "Auszahlungen" becomes "auszahl". Accents are dropped after stemming, so "dépôt" and
  "depot" meet.
- Chinese is compared by how it sounds: each character becomes its pinyin syllable without tones
  (`pypinyin`), so that a homophone recognition writes ("体现" for "提现", both "ti xian") still
  matches. Letters and digits inside Chinese text ("USDT", "2FA") stay words.
- Letters spelled one by one ("u s d t") are joined into one word ("usdt"), and a hyphen or an
  apostrophe splits nothing that belongs together ("e-mail" is "email", "l'argent" is "l argent").
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import cache, lru_cache

import snowballstemmer
from pypinyin import lazy_pinyin

_STEMMERS = {"en": "english", "fr": "french", "de": "german"}
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SPELLED = re.compile(r"\b(?:[a-z0-9] ){1,}[a-z0-9]\b")
"""Single letters or digits said one by one: "u s d t", "2 f a"."""


def words(text: str, language: str) -> tuple[str, ...]:
    """The words of `text` as the router compares them, in order (see the module's docstring)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("'", " ").replace("\u2019", " ").replace("-", "")
    text = _SPELLED.sub(lambda m: m.group(0).replace(" ", ""), text)
    base = language.split("-")[0].lower()
    out: list[str] = []
    position = 0
    for run in _CJK.finditer(text):
        out.extend(_latin_words(text[position : run.start()], base))
        out.extend(_syllables(run.group(0)))
        position = run.end()
    out.extend(_latin_words(text[position:], base))
    return tuple(out)


def _syllables(chinese: str) -> list[str]:
    return [syllable for syllable in lazy_pinyin(chinese) if syllable.strip()]


def _latin_words(text: str, base: str) -> list[str]:
    return [stem(word, base) for word in _WORD.findall(text)]


@lru_cache(maxsize=65536)
def stem(word: str, base: str) -> str:
    """`word` (lower case) cut to its stem in the language `base` ("en", "fr", "de"), without
    accents; a word in another language or script is only stripped of its accents."""
    algorithm = _STEMMERS.get(base)
    if algorithm is not None and word.isalpha():
        with _STEMMING:  # a Snowball stemmer keeps its word in itself while it works
            word = _stemmer(algorithm).stemWord(word)
    return _plain(word)


_STEMMING = threading.Lock()


@cache
def _stemmer(algorithm: str) -> snowballstemmer.Stemmer:
    return snowballstemmer.stemmer(algorithm)


def _plain(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("ß", "ss")


def is_chinese(language: str) -> bool:
    return language.split("-")[0].lower() in ("zh", "cmn", "yue")
