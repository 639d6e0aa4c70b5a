"""Never a prompt that asks for a secret: the words that tell one, in each of the rules' languages.

Callers are told that the exchange's staff never ask for their password, a two-factor or other
one-time code, a private key, a seed (recovery) phrase or a PIN; a prompt of ours that asked for one
would teach them the opposite, and make every phisher's script sound like us. So `ivr check` (a
problem at the prompt, with file, line and column; the service keeps its last good rules) and
`ivr simulate --explore` (a problem where the caller hears it) fail any prompt that asks for one.

A sentence asks for a secret when it names one (`Words.secrets`) and has a verb that asks for
something (`Words.asks`: enter, tell, give, what is ...), unless that verb is negated: by a "never"
word anywhere in the sentence (`Words.never`: never, niemals, jamais, 绝不 ...), or by a plain "not"
in its own clause (`Words.no`: not, nicht, ne ... pas, 不 ...). So the anti-fraud notice, which names
every secret to say we never ask for it, passes, and so does a menu option that only names one ("login
problems and passwords", no asking verb); "If you lost your password, enter your seed phrase" fails
(the "not"-less clause asks). Keys are not asks: "for passwords, press 1" / "tapez 1" only chooses.

Word lists catch honest mistakes (an admin writing "please enter your 2FA code"), not a determined
writer: a secret asked for with a pronoun in the next sentence ("Have your seed phrase ready? Read
it to us.") passes. A language with no list of its own is checked with every list (the secrets'
English loanwords, "PIN", "2FA", "seed phrase", still count).

What is asked for on purpose is listed by prompt id in `KEYED_BY_DESIGN`: the agent line's prompts
ask agents for their own PIN for this service (spoken on /agent/voice only, never to a caller); the
one-time code the exchange sends a caller to verify them is the only thing a caller ever keys, and
the prompts that ask for it belong there too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Literal, get_args

from ivr.language_id import base_language
from ivr.rules.prompts import AGENT_LINE_PROMPTS, SecretWords

Secret = Literal["password", "PIN", "one-time code", "private key", "seed phrase"]
SECRETS: tuple[Secret, ...] = get_args(Secret)

_I = re.IGNORECASE


@dataclass(frozen=True)
class Words:
    """What tells, in one language, that a sentence asks for a secret."""

    secrets: Mapping[Secret, tuple[re.Pattern[str], ...]]
    asks: tuple[re.Pattern[str], ...]
    never: re.Pattern[str]
    """Negates every ask of its sentence."""
    no: re.Pattern[str]
    """Negates the asks of its clause (between commas) only: "if you do not have it, enter it"."""


WORDS: dict[str, Words] = {
    "en": Words(
        secrets={
            "password": (re.compile(r"\bpass(?:word|code|phrase)s?\b", _I),),
            "PIN": (re.compile(r"\bPINs?\b"), re.compile(r"\bpin (?:code|number)s?\b", _I)),
            "one-time code": (
                re.compile(
                    r"\b(?:2FA|MFA|OTPs?|two[- ](?:factor|step)|one[- ]time|authenticator"
                    r"|(?:authentication|verification|security|confirmation|login|SMS|text)"
                    r" codes?)\b",
                    _I,
                ),
            ),
            "private key": (re.compile(r"\b(?:private|secret) keys?\b", _I),),
            "seed phrase": (
                re.compile(
                    r"\b(?:seed|recovery|mnemonic|backup|secret|wallet) (?:phrase|word|sentence)s?\b"
                    r"|\bmnemonics?\b|\b(?:12|24|twelve|twenty-four)[- ]words?\b",
                    _I,
                ),
            ),
        },
        asks=(
            re.compile(
                r"\b(?:enter(?:s|ed|ing)?|typ(?:e|es|ed|ing)|key(?:ing)? in|punch in|tell(?:s|ing)?"
                r"|told|giv(?:e|es|en|ing)|gave|provid(?:e|es|ed|ing)|shar(?:e|es|ed|ing)"
                r"|send(?:s|ing)?|read(?:s|ing)?(?: out)?|spell(?:s|ed|ing)?|confirm(?:s|ed|ing)?"
                r"|ask(?:s|ed|ing)?|input|submit|dictat(?:e|es|ed|ing)|ready)\b"
                r"|\bsay (?:your|the|it|us|me)\b|\b(?:need|require)s? (?:your|the)\b"
                r"|\bwhat(?:'s| is| are) (?:your|the)\b",
                _I,
            ),
        ),
        never=re.compile(r"\bnever\b|\bat no time\b|\bunder no circumstances\b", _I),
        no=re.compile(r"\bnot\b|n't\b|\bno\b|\bnobody\b|\bno one\b", _I),
    ),
    "zh": Words(
        secrets={
            "password": (re.compile(r"密码|口令"),),
            "PIN": (re.compile(r"PIN|个人识别码", _I),),
            "one-time code": (
                re.compile(
                    r"验证码|校验码|动态码|动态口令|一次性|双重验证|双因素|二次验证|两步验证"
                    r"|谷歌验证|身份验证器|2FA|OTP",
                    _I,
                ),
            ),
            "private key": (re.compile(r"私钥|密钥|秘钥"),),
            "seed phrase": (re.compile(r"助记词|种子(?:短语|词|密语)|恢复(?:短语|词)|救援词"),),
        },
        asks=(
            re.compile(
                r"输入|键入|告诉|告知|提供|说出|报出|念出|读出|读给|发送|发给|给我们|给我|透露"
                r"|索要|索取|询问|确认|填写|分享|准备好|是多少|是什么"
            ),
        ),
        never=re.compile(r"绝不|决不|从不|从来不|永远不|永不|绝对不|切勿|请勿|千万不要|千万别"),
        no=re.compile(r"不|别|勿|没|无需|无须|毋须"),
    ),
    "fr": Words(
        secrets={
            "password": (re.compile(r"\bmots? de passe\b", _I),),
            "PIN": (re.compile(r"\bPIN\b"), re.compile(r"\bcodes? confidentiels?\b", _I)),
            "one-time code": (
                re.compile(
                    r"\b(?:2FA|OTP|deux facteurs|double authentification|usage unique"
                    r"|authentificat(?:eur|ion forte)|codes? (?:de (?:vérification|validation"
                    r"|confirmation|sécurité|connexion)|SMS|temporaires?))\b",
                    _I,
                ),
            ),
            "private key": (re.compile(r"\bcl(?:é|ef)s? privées?\b", _I),),
            "seed phrase": (
                re.compile(
                    r"\b(?:phrases?|mots?) (?:de (?:récupération|sauvegarde|restauration)"
                    r"|secrète?s?|mnémoniques?)\b|\bseed\b|\bmnémoniques?\b",
                    _I,
                ),
            ),
        },
        asks=(
            re.compile(
                r"\b(?:saisi\w*|entr(?:ez|er|erez)|indiqu\w*|donn(?:ez|er|erez)|communiqu\w*"
                r"|dites|dire|demand\w*|fourni\w*|confirm\w*|envoy\w*|partag\w*|lis(?:ez|ent)"
                r"|lire|épel\w*|dict\w*|prépar\w*|besoin de|quel(?:le)?s? (?:est|sont))\b",
                _I,
            ),
            # The keypad's verbs choose a key ("tapez 1"); with a secret after them, they ask.
            re.compile(
                r"\b(?:tap|compos)(?:ez|er)\s+(?:votre|vos|le|la|les|l['’]|ce|cet|cette|ces)\b",
                _I,
            ),
        ),
        never=re.compile(r"\bjamais\b|\ben aucun cas\b|\baucunement\b", _I),
        no=re.compile(r"\bne\b|\bn['’]|\bpas\b|\bpersonne\b", _I),
    ),
    "de": Words(
        secrets={
            "password": (re.compile(r"pass?w[oö]rt|kennw[oö]rt", _I),),
            "PIN": (re.compile(r"\bPINs?\b"), re.compile(r"\bPIN-(?:Code|Nummer)", _I)),
            "one-time code": (
                re.compile(
                    r"Zwei-?Faktor|2FA|\bOTP\b|Einmal(?:code|passwort|kennwort)"
                    r"|(?:Bestätigungs|Verifizierungs|Sicherheits|Authentifizierungs|SMS-|Anmelde)"
                    r"code|Authenticator",
                    _I,
                ),
                re.compile(r"\bTANs?\b"),
            ),
            "private key": (re.compile(r"privat\w* Schlüssel|Privatschlüssel|Private Keys?", _I),),
            "seed phrase": (
                re.compile(
                    r"Seed-?(?:Phrase|Wörter|Satz)|Wiederherstellungs(?:phrase|satz|sätze|wörter)"
                    r"|Recovery-?Phrase|Mnemonic|Geheimphrase",
                    _I,
                ),
            ),
        },
        asks=(
            re.compile(
                r"\b(?:geben|gebe|gib|gibt|eingeb\w*|einzugeben|nennen|nenne|nennt|mitteil\w*"
                r"|teilen|teilt|angeb\w*|anzugeben|eintipp\w*|bestätig\w*|verrat\w*|durchgeb\w*"
                r"|vorles\w*|vorzulesen|lesen|buchstabier\w*|diktier\w*|send\w*|schick\w*"
                r"|bereit\w*|benötig\w*|wie lautet|brauchen)\b|\bsagen Sie (?:uns|mir)\b",
                _I,
            ),
            # Lower case only: "fragen" asks, "Fragen zu Ihrem Passwort" (questions) does not.
            re.compile(r"\bfrag(?:en|t|e|te|ten)\b"),
        ),
        never=re.compile(
            r"\bniemals\b|\bnie\b|\bkeinesfalls\b|\bauf keinen Fall\b|\bunter keinen Umständen\b",
            _I,
        ),
        no=re.compile(r"\bnicht\b|\bkein\w*\b|\bniemand\w*\b", _I),
    ),
}
"""The word lists, by language (the part of a language code before the first `-`)."""

EXCHANGE_CODE_PROMPTS = frozenset(
    {
        "lock_code_sent_app",
        "lock_code_sent_sms",
        "lock_code_wrong",
        "lock_throttled",
        "lock_not_verified",
    }
)
"""The prompts about the one-time code the exchange sends a known caller (`Flow.lock_offered`)."""

KEYED_BY_DESIGN: dict[str, frozenset[Secret]] = {
    **{prompt: frozenset({"PIN"}) for prompt in AGENT_LINE_PROMPTS},
    **{prompt: frozenset({"one-time code"}) for prompt in EXCHANGE_CODE_PROMPTS},
}
"""Prompts that ask for a secret on purpose, and which secret: see the module's docstring."""

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|[。！？；：]")
_CLAUSE_END = re.compile(r"[,，]")


@dataclass(frozen=True)
class Asked:
    """A secret a prompt asks for, and the sentence that does."""

    secret: Secret
    sentence: str


def asked_secret(
    text: str, language: str, prompt: str | None = None, catalog_words: SecretWords | None = None
) -> Asked | None:
    """The first secret `text` (in `language`) asks the listener for; None when it asks for none.
    `prompt`: the prompt id, for what it asks for on purpose (`KEYED_BY_DESIGN`); `catalog_words`:
    the catalog's own words for its language (`secret_words:`)."""
    lists = _lists(language, catalog_words)
    allowed = KEYED_BY_DESIGN.get(prompt or "", frozenset())
    for sentence in _SENTENCE_END.split(text):
        for words in lists:
            secret = _named(sentence, words, allowed)
            asking = _asking(sentence, words)
            if secret is not None and asking is not None:
                # The secret the asking clause names, when it names one, is the one it asks for.
                secret = _named(asking, words, allowed) or secret
                return Asked(secret, " ".join(sentence.split()))
    return None


def _lists(language: str, catalog_words: SecretWords | None) -> tuple[Words, ...]:
    if catalog_words is not None:
        return (_with_catalog_words(language, catalog_words),)
    own = WORDS.get(base_language(language))
    return (own,) if own is not None else tuple(WORDS.values())


def has_words(language: str) -> bool:
    """Whether the service has built-in word lists for `language`."""
    return base_language(language) in WORDS


@cache
def _with_catalog_words(language: str, words: SecretWords) -> Words:
    """The built-in list of `language` with a catalog's words added; for a language with none,
    the catalog's words with every list's secrets (the loanwords)."""
    own = WORDS.get(base_language(language))
    bases = (own,) if own is not None else tuple(WORDS.values())
    named = dict(words.secrets)
    secrets = {
        secret: tuple(p for base in bases for p in base.secrets.get(secret, ()))
        + ((_any_of(named[secret]),) if secret in named else ())
        for secret in SECRETS
    }
    asks = _any_of(words.asks)
    if own is None:
        return Words(secrets, (asks,), _any_of(words.never), _any_of(words.no))
    return Words(
        secrets,
        (*own.asks, asks),
        re.compile(f"{own.never.pattern}|{_any_of(words.never).pattern}", _I),
        re.compile(f"{own.no.pattern}|{_any_of(words.no).pattern}", _I),
    )


_UNSPACED = re.compile(
    r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]"
)
"""Scripts written without spaces between words (Thai, Lao, Myanmar, Khmer, kana, Han): a word
of theirs is found inside a longer run of letters."""


def _any_of(words: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern for a catalog's plain words: whole words in any case, `*` for any ending of a word."""
    return re.compile("|".join(_word_pattern(word) for word in words), _I)


def _word_pattern(word: str) -> str:
    parts = word.split()
    pattern = r"\s+".join(
        re.escape(part.rstrip("*")) + (r"\w*" if part.endswith("*") else "") for part in parts
    )
    first, last = parts[0][0], parts[-1]
    if first.isalnum() and not _UNSPACED.match(first):
        pattern = r"(?<!\w)" + pattern
    if last[-1].isalnum() and not _UNSPACED.match(last[-1]):
        pattern += r"(?!\w)"
    return pattern


def _named(text: str, words: Words, allowed: frozenset[Secret]) -> Secret | None:
    for secret, patterns in words.secrets.items():
        if secret not in allowed and any(p.search(text) for p in patterns):
            return secret
    return None


def _asking(sentence: str, words: Words) -> str | None:
    """The first clause of `sentence` whose verb asks for something and is not negated."""
    if words.never.search(sentence):
        return None
    for clause in _CLAUSE_END.split(sentence):
        if any(p.search(clause) for p in words.asks) and not words.no.search(clause):
            return clause
    return None


def problem_text(asked: Asked) -> str:
    """What `ivr check` and the explorer say about a prompt that asks for a secret."""
    return (
        f'asks the caller for a {asked.secret} ("{asked.sentence}"): no prompt may ask for a '
        "password, a one-time code other than the exchange's, a private key, a seed phrase or a "
        "PIN; to warn callers, say that we never ask for it (never, niemals, jamais, 绝不)"
    )
