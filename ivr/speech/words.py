"""What a caller said, as the words the router compares: one language's rules for text that speech
recognition returns (no punctuation, any case, inflected, Chinese without spaces).

- Words are cut to their stem with the Snowball stemmers (`snowballstemmer`, the stemmers of the
  Snowball project: maintained, pure Python, no model to download), in every language Snowball
  stems (English, French and German, and Spanish, Italian, Portuguese, Dutch, Russian... for a
  language the rules add): "withdrawals", "withdrawing" and "withdraw" all become "withdraw";
  "retraits" becomes "retrait"; "Auszahlungen" becomes "auszahl"; "retiros" becomes "retir".
  Accents are dropped after stemming, so "dépôt" and "depot" meet.
- Chinese is compared by how it sounds: each character becomes its pinyin syllable without tones
  (`pypinyin`), so that a homophone recognition writes ("体现" for "提现", both "ti xian") still
  matches. Letters and digits inside Chinese text ("USDT", "2FA") stay words.
- Letters spelled one by one ("u s d t") are joined into one word ("usdt"), and a hyphen or an
  apostrophe splits nothing that belongs together ("e-mail" is "email", "l'argent" is "l argent").
- English negations are written out ("didn't", "didnt" and "did not" are "did not"), so that a
  phrase such as "did not make" meets every way recognition spells it.
- Numbers said as words become digits ("two factor" is "2 factor", like "2-factor").
- Coin names and tickers (USDT, tether, bitcoin, BTC, ETH, 比特币...) become the one word `COIN`:
  which coin a caller names says nothing about what they need, and the router skips it.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import cache, lru_cache

import snowballstemmer
from pypinyin import lazy_pinyin

_SNOWBALL = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "cs": "czech",
    "da": "danish", "nl": "dutch", "en": "english", "eo": "esperanto", "et": "estonian",
    "fi": "finnish", "fr": "french", "de": "german", "el": "greek", "hi": "hindi",
    "hu": "hungarian", "id": "indonesian", "ga": "irish", "it": "italian", "lt": "lithuanian",
    "ne": "nepali", "no": "norwegian", "nb": "norwegian", "nn": "norwegian", "fa": "persian",
    "pl": "polish", "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian",
    "st": "sesotho", "es": "spanish", "sv": "swedish", "ta": "tamil", "tr": "turkish",
    "yi": "yiddish",
}  # fmt: skip
"""ISO 639-1 code -> the Snowball stemmer of that language."""
_STEMMERS = {
    code: name for code, name in _SNOWBALL.items() if name in set(snowballstemmer.algorithms())
}
"""The languages whose words are stemmed: every one Snowball stems, so that a language added by
the rules (docs/admins/voices.md) is stemmed too."""
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SPELLED = re.compile(r"\b(?:[a-z0-9] ){1,}[a-z0-9]\b")
"""Single letters or digits said one by one: "u s d t", "2 f a"."""

COIN = "coin"
"""The word every coin name and ticker becomes."""
_COINS = frozenset(
    {
        *("usdt", "tether", "btc", "bitcoin", "bitcoins", "eth", "ether", "ethereum", "usdc"),
        *("sol", "solana", "xrp", "ripple", "bnb", "doge", "dogecoin", "ltc", "litecoin", "trx"),
        *("tron", "ada", "cardano", "shib", "crypto", "cryptos", "cryptocurrency", "coin", "coins"),
        *("cryptocurrencies", "krypto", "kryptos", "kryptowahrung", "kryptowahrungen"),
        *("cryptomonnaie", "cryptomonnaies"),
    }
)
_CHINESE_COINS = re.compile(
    "比特币|以太坊|以太币|泰达币|狗狗币|莱特币|瑞波币|虚拟币|虚拟货币|数字货币|加密货币"
)
_NUMBERS = {
    "en": "zero one two three four five six seven eight nine ten eleven twelve",
    "fr": "zéro _ deux trois quatre cinq six sept huit _ dix onze douze",
    "de": "null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf",
}
"""Number words by value (`_` where the word means something else too: "un", "neuf" (new))."""
_NUMBER = {
    base: {word: str(value) for value, word in enumerate(names.split()) if word != "_"}
    for base, names in _NUMBERS.items()
}
_NEGATED = re.compile(
    r"\b(ca|wo|do|does|did|is|are|was|were|has|have|had|could|would|should|ai|need|must)n[\'\u2019]?t\b"
)
"""English "n't" forms with or without the apostrophe: "can't", "didnt", "won't"."""
_NEGATED_BASE = {"ca": "can", "wo": "will", "ai": "is"}


def words(text: str, language: str) -> tuple[str, ...]:
    """The words of `text` as the router compares them, in order (see the module's docstring)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    base = language.split("-")[0].lower()
    if base == "en":
        text = _NEGATED.sub(lambda m: _NEGATED_BASE.get(m.group(1), m.group(1)) + " not", text)
    text = _CHINESE_COINS.sub(f" {COIN} ", text)
    text = text.replace("'", " ").replace("\u2019", " ").replace("-", "")
    numbers = _NUMBER.get(base, {})
    text = " ".join(numbers.get(word, word) for word in text.split(" "))
    text = _SPELLED.sub(lambda m: m.group(0).replace(" ", ""), text)
    out: list[str] = []
    position = 0
    for run in CJK.finditer(text):
        out.extend(_latin_words(text[position : run.start()], base))
        out.extend(_syllables(run.group(0)))
        position = run.end()
    out.extend(_latin_words(text[position:], base))
    return tuple(out)


def _syllables(chinese: str) -> list[str]:
    return [syllable for syllable in lazy_pinyin(chinese) if syllable.strip()]


def _latin_words(text: str, base: str) -> list[str]:
    return [COIN if _plain(word) in _COINS else stem(word, base) for word in _WORD.findall(text)]


@lru_cache(maxsize=65536)
def stem(word: str, base: str) -> str:
    """`word` (lower case) cut to its stem in the language `base` ("en", "es", ...), without
    accents; a word in a language Snowball does not stem, or in another script, is only stripped
    of its accents."""
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
