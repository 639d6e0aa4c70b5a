"""What a caller says, as the words the router compares: the ways one word is said meet."""

from __future__ import annotations

import pytest

from ivr.speech.words import COIN, words


@pytest.mark.parametrize(
    ("language", "said", "same_as"),
    [
        ("en-US", "withdrawals withdrawing", "withdraw withdraw"),
        ("en-US", "I didn't make it", "i did not make it"),
        ("en-US", "I didnt make it", "i did not make it"),
        ("en-US", "it can't load", "it can not load"),
        ("en-US", "two factor", "2 factor"),
        ("en-US", "my e-mail", "my email"),
        ("fr-FR", "dépôt", "depot"),
        ("fr-FR", "l'argent", "l argent"),
        ("de-DE", "Auszahlungen", "Auszahlung"),
        ("de-DE", "zwei Faktoren", "2 Faktoren"),
        ("zh-CN", "体现", "提现"),  # ti xian: recognition's homophone
        ("zh-CN", "冲值", "充值"),  # chong zhi
        # A language the rules add (docs/admins/voices.md) is stemmed too, if Snowball stems it.
        ("es-ES", "mis retiros", "mis retiro"),
        ("it-IT", "prelievi", "prelievo"),
        ("pt-BR", "depósitos", "depósito"),
    ],
)
def test_the_ways_a_word_is_said_meet(language: str, said: str, same_as: str) -> None:
    assert words(said, language) == words(same_as, language)


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("en-US", "my USDT and BTC and u s d t and ethereum"),
        ("fr-FR", "mes bitcoins et mes cryptos"),
        ("de-DE", "meine Kryptowährung"),
        ("zh-CN", "我的比特币"),
    ],
)
def test_coin_names_are_one_word_that_says_nothing_of_the_issue(language: str, said: str) -> None:
    heard = words(said, language)
    assert COIN in heard
    assert not {"usdt", "btc", "bitcoin", "ethereum", "crypto", "bi", "te"} & set(heard)


def test_letters_inside_chinese_stay_words() -> None:
    assert words("KYC审核", "zh-CN") == ("kyc", "shen", "he")


def test_a_language_snowball_does_not_stem_is_only_stripped_of_accents() -> None:
    assert words("Dépôts retiros", "xx-XX") == ("depots", "retiros")
