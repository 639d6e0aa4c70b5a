"""The estimated wait: learnt from the line's recent conversations and the agents logged in."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from ivr.rules.check import load_bundle
from ivr.waits import (
    LineHistories,
    LineHistory,
    Spoken,
    WaitEstimate,
    estimate_wait,
    formula_estimate,
    live_estimate,
    say_minutes,
    sharing_agents,
    spoken_minutes,
    spoken_wait,
)
from tests.support import PROMPTS, RULES


@pytest.mark.parametrize(
    ("position", "available", "busy", "talks", "expected"),
    [
        (3, 0, 2, [240, 240], 480),  # ceil(3/2) x 4 min
        (1, 0, 1, [], 300),  # no history yet: the queue's default handling time
        (4, 0, 1, [60, 120, 0], 360),  # zero-length calls (dropped) do not count
        (1, 1, 1, [240], 0),  # a free agent: being connected now
        (2, 1, 1, [240], 240),
        (5, 0, 0, [240], None),  # nobody logged in: no estimate
    ],
)
def test_estimate(
    position: int, available: int, busy: int, talks: list[int], expected: int | None
) -> None:
    assert estimate_wait(position, available, busy, talks, 300) == expected


def test_the_estimate_moves_with_the_queues_history() -> None:
    quick = estimate_wait(3, 0, 2, [120] * 10, 300)
    slow = estimate_wait(3, 0, 2, [600, *[120] * 10], 300)
    assert quick is not None and slow is not None and slow > quick


@pytest.mark.parametrize(("seconds", "minutes"), [(1, 1), (60, 1), (61, 2), (479, 8)])
def test_minutes_are_rounded_up_and_never_zero(seconds: int, minutes: int) -> None:
    assert spoken_minutes(seconds) == minutes


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("en_US", "8 minutes"),
        ("zh_Hans_CN", "8分钟"),
        ("fr_FR", "8 minutes"),
        ("de_DE", "8 Minuten"),
    ],
)
def test_minutes_are_spoken_in_the_callers_language(locale: str, words: str) -> None:
    assert say_minutes(8, locale) == words


# --- the live estimator ---------------------------------------------------------------------------


WAITS_RULES = RULES.parent / "scenarios" / "waits" / "rules" / "routing_rules.yaml"


def exponential_talks(mean: float, n: int = 400) -> tuple[float, ...]:
    """`n` conversations whose lengths are an exponential distribution's quantiles of `mean`."""
    return tuple(-mean * math.log(1 - (i + 0.5) / n) for i in range(n))


def erlang_quantile(q: float, phases: int, rate: float) -> float:
    """The `q` quantile of an Erlang(phases, rate) time, by bisection on its CDF."""

    def cdf(t: float) -> float:
        x = rate * t
        term = total = math.exp(-x)
        for n in range(1, phases):
            term *= x / n
            total += term
        return 1 - total

    low, high = 0.0, 100 * phases / rate
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < q else (low, middle)
    return low


def test_live_has_no_estimate_without_agents_and_none_for_a_caller_a_free_agent_takes() -> None:
    assert live_estimate(3, 30, 0, [], [240], 300) is None
    assert live_estimate(2, 30, 2, [], [240], 300) == WaitEstimate(0, 0, 0)


def test_live_counts_what_is_left_of_the_calls_in_progress() -> None:
    # One agent, 200 s into a call; conversations here last 300 s: the caller next in line waits
    # the remaining 100 s, where the formula says a whole 300.
    assert live_estimate(1, 30, 0, [200.0], [300] * 20, 300) == WaitEstimate(100, 100, 100)
    assert estimate_wait(1, 0, 1, [300] * 20, 300) == 300
    # Second in line: the rest of this call, then one whole call.
    assert live_estimate(2, 30, 0, [200.0], [300] * 20, 300) == WaitEstimate(400, 400, 400)


def test_live_uses_the_distribution_not_only_the_mean() -> None:
    # Half the calls are 60 s, half 540 s (mean 300). A call 100 s old is one of the long ones:
    # 440 s left; the mean alone would say 200.
    talks = [60, 540] * 10
    assert live_estimate(1, 30, 0, [100.0], talks, 300) == WaitEstimate(440, 440, 440)


def test_a_call_longer_than_any_in_the_history_still_ends_soon() -> None:
    estimate = live_estimate(1, 30, 0, [1000.0], [300] * 20, 300)
    assert estimate is not None and 0 < estimate.low < estimate.median < 100 < estimate.high


@pytest.mark.parametrize(
    ("agents", "ahead"),
    [(4, 0), (4, 1), (4, 4), (4, 12), (20, 0), (20, 9), (200, 30), (1000, 0), (1000, 60)],
)
def test_with_exponential_conversations_the_estimate_is_erlangs(agents: int, ahead: int) -> None:
    # Erlang C: with every agent busy, a caller with k callers ahead waits an Erlang(k + 1, s mu)
    # time, whatever the calls in progress have lasted (exponential conversations forget). Its
    # median is the estimate with the least mean absolute error, its 10th to 90th percentiles the
    # narrowest range that holds for 80% of callers. A line of hundreds of agents plays out fewer
    # futures, and only the agents that free up first in each (DRAWS, SPARE_AGENTS).
    rng = random.Random(agents * 100 + ahead)
    busy = [rng.uniform(0, 600) for _ in range(agents)]
    history = LineHistory(talk_seconds=exponential_talks(240))
    estimate = live_estimate(ahead + 1, 0, 0, busy, [], 300, history)
    assert estimate is not None
    rate = agents / 240
    for said, q in ((estimate.median, 0.5), (estimate.low, 0.1), (estimate.high, 0.9)):
        exact = erlang_quantile(q, ahead + 1, rate)
        assert said == pytest.approx(exact, rel=0.15, abs=3), (q, said, exact)


@pytest.mark.parametrize("ahead", [0, 5, 20])
def test_with_abandonment_the_estimate_is_that_of_the_callers_who_are_answered(ahead: int) -> None:
    # Erlang A (Ibrahim and Whitt): with i callers ahead, the next one is gone (served, or given
    # up) at rate s mu + i theta, so a caller who stays waits the sum over i = 0..k of
    # Exp(s mu + i theta). The callers who are answered are those whose own patience outlasted
    # that: their waits, weighted by exp(-theta w), are the same sum with every stage theta faster.
    agents, theta = 20, 1 / 300
    rng = np.random.default_rng(1)
    stays = agents / 240 + theta * np.arange(ahead + 1)
    answered = stays + theta
    history = LineHistory(talk_seconds=exponential_talks(240), abandon_rate=theta)
    estimate = live_estimate(ahead + 1, 0, 0, [100.0] * agents, [], 300, history)
    assert estimate is not None
    said = (estimate.low, estimate.median, estimate.high)
    draws = rng.exponential(1 / answered, (100_000, ahead + 1)).sum(axis=1)
    assert said == pytest.approx(tuple(np.quantile(draws, [0.1, 0.5, 0.9])), rel=0.1, abs=3)
    longer = np.median(rng.exponential(1 / stays, (100_000, ahead + 1)).sum(axis=1))
    assert estimate.median < longer  # shorter than the wait of a caller who would never give up


def test_abandonment_shortens_the_wait_of_a_caller_far_back() -> None:
    patient = live_estimate(10, 30, 0, [0.0, 0.0], [300] * 20, 300)
    impatient = live_estimate(
        10, 30, 0, [0.0, 0.0], [300] * 20, 300, LineHistory(abandon_rate=1 / 600)
    )
    assert patient is not None and impatient is not None
    assert impatient.median < patient.median * 0.8


def test_urgent_callers_likely_to_join_ahead_lengthen_the_wait() -> None:
    # Security emergencies (priority 100) join this line about once every 10 minutes.
    emergencies = LineHistory(arrivals_per_second={100: 1 / 600, 30: 1 / 60})
    plain = live_estimate(5, 30, 0, [0.0], [300] * 20, 300)
    behind_urgent = live_estimate(5, 30, 0, [0.0], [300] * 20, 300, emergencies)
    first_class = live_estimate(5, 100, 0, [0.0], [300] * 20, 300, emergencies)
    assert plain is not None and behind_urgent is not None
    assert behind_urgent.median > plain.median
    assert first_class == plain  # nobody goes ahead of the highest priority


def test_putting_a_caller_through_takes_the_lines_connect_time() -> None:
    # Ringing and the whisper take 10 s on this line: the caller next in line waits the rest of
    # the call in progress and their own 10 s; the second also the next caller's 10 s.
    connect = {"recent_connect_seconds": [10] * 20}
    assert live_estimate(1, 30, 0, [200.0], [300] * 20, 300, **connect).median == 110  # type: ignore[union-attr]
    assert live_estimate(2, 30, 0, [200.0], [300] * 20, 300, **connect).median == 420  # type: ignore[union-attr]
    # An agent who has been putting a caller through for 4 s: 6 s more, then a conversation.
    through = live_estimate(1, 30, 0, [0.0], [300] * 20, 300, connecting_seconds=[4.0], **connect)
    assert through == WaitEstimate(316, 316, 316)


def test_with_few_conversations_known_only_their_mean_is_trusted() -> None:
    # Five conversations of 300 s are no proof that every conversation lasts exactly 300 s: the
    # range is that of exponential conversations of that mean, not a certainty.
    estimate = live_estimate(1, 30, 0, [0.0], [300] * 5, 300)
    assert estimate is not None and estimate.low < estimate.median < estimate.high
    assert estimate.median == pytest.approx(300 * math.log(2), rel=0.15)


def test_the_range_is_the_percentiles_the_queue_asks_for() -> None:
    history = LineHistory(talk_seconds=exponential_talks(240))
    wide = live_estimate(3, 0, 0, [50.0] * 4, [], 300, history)
    narrow = live_estimate(3, 0, 0, [50.0] * 4, [], 300, history, percentiles=(25, 75))
    assert wide is not None and narrow is not None and wide.median == narrow.median
    assert wide.low < narrow.low < narrow.median < narrow.high < wide.high


def test_the_range_far_back_allows_for_a_mean_learnt_from_few_conversations() -> None:
    # The same shape of conversations, known from 20 calls or from 400: the median is the same,
    # but 30 places back the range allows for the 20 calls' mean being off by a few percent.
    few = LineHistory(talk_seconds=exponential_talks(240, 20))
    many = LineHistory(talk_seconds=exponential_talks(240, 400))
    a = live_estimate(30, 0, 0, [50.0] * 4, [], 300, few)
    b = live_estimate(30, 0, 0, [50.0] * 4, [], 300, many)
    assert a is not None and b is not None
    assert a.median == pytest.approx(b.median, rel=0.05)
    assert a.high - a.low > 1.3 * (b.high - b.low)


def test_urgent_callers_of_the_other_lines_our_agents_serve_go_ahead_too() -> None:
    # In the emergency scenario's rules, the four funds agents are four of security's five: a
    # security caller (priority 90 or 100) takes one of ours four times in five.
    rules = load_bundle(WAITS_RULES, PROMPTS).rules
    shares = rules.shared_lines("funds", "en-US")
    assert shares[("security", "en-US")] == pytest.approx(4 / 5)
    shipped = load_bundle(RULES, PROMPTS).rules.shared_lines("funds", "en-US")
    assert ("funds", "de-DE") in shipped  # anna takes German funds callers too
    assert not any(queue == "security" for queue, _ in shipped)  # but no funds agent security
    histories = LineHistories()
    security = LineHistory(
        arrivals_per_second={100: 1 / 60}, usual_arrivals_per_second={100: 1 / 300, 0: 1 / 60}
    )
    histories.replace({("security", "en-US"): security})
    funds = LineHistory(arrivals_per_second={30: 1 / 80})
    shared = sharing_agents(shares, histories, funds)
    assert shared is not None
    assert shared.faster_arrivals(30) == pytest.approx(4 / 5 / 300)
    assert shared.arrivals_per_second[30] == funds.arrivals_per_second[30]
    assert sharing_agents({}, histories, funds) == funds  # agents of our own: nothing added
    busy = [10.0, 80.0, 150.0, 220.0]
    slower = live_estimate(5, 30, 0, busy, [300] * 20, 300, shared)
    plain = live_estimate(5, 30, 0, busy, [300] * 20, 300, funds)
    assert slower is not None and plain is not None and slower.median > plain.median


def test_callers_of_other_lines_waiting_to_go_first_take_our_agents_as_often_as_they_share_them() -> (
    None
):
    busy = [10.0, 80.0, 150.0, 220.0]
    plain = live_estimate(2, 30, 0, busy, [300] * 20, 300)
    # Three security callers wait; our agents are all of that line's: they take three departures.
    behind_three = live_estimate(2, 30, 0, busy, [300] * 20, 300, waiting_elsewhere=[(3, 1.0)])
    assert plain is not None and behind_three is not None
    assert behind_three == live_estimate(5, 30, 0, busy, [300] * 20, 300)
    # Our agents are half of that line's: about half of them go to ours.
    half = live_estimate(2, 30, 0, busy, [300] * 20, 300, waiting_elsewhere=[(3, 0.5)])
    assert half is not None and plain.median < half.median < behind_three.median


def test_the_database_history_is_preferred_once_it_has_enough_calls() -> None:
    few = LineHistory(talk_seconds=(600.0,) * 5)
    enough = LineHistory(talk_seconds=(600.0,) * 10)
    assert live_estimate(1, 30, 0, [0.0], [300] * 20, 300, few) == WaitEstimate(300, 300, 300)
    assert live_estimate(1, 30, 0, [0.0], [300] * 20, 300, enough) == WaitEstimate(600, 600, 600)
    nothing = live_estimate(1, 30, 0, [0.0], [], 300)  # nothing at all: the default's mean
    assert nothing is not None and nothing.median == pytest.approx(300 * math.log(2), rel=0.15)


@pytest.mark.parametrize(
    "history",
    [
        LineHistory(),
        LineHistory(abandon_rate=1 / 300),
        LineHistory(abandon_rate=1 / 300, arrivals_per_second={100: 1 / 120}),
    ],
)
@pytest.mark.parametrize("busy", [[50.0, 120.0], [float(i % 400) for i in range(1000)]])
def test_live_never_tells_a_later_caller_a_shorter_wait(
    history: LineHistory, busy: list[float]
) -> None:
    estimates = [live_estimate(p, 30, 1, busy, [200, 400] * 10, 300, history) for p in range(1, 30)]
    for a, b in itertools.pairwise(estimates):
        assert a is not None and b is not None
        assert (a.low, a.median, a.high) <= (b.low, b.median, b.high) or (
            a.low <= b.low and a.median <= b.median and a.high <= b.high
        )


def test_the_formula_says_its_estimate_with_the_queues_factors_narrowing_further_back() -> None:
    assert formula_estimate(400, (0.5, 1.5)) == WaitEstimate(400, 200, 600)
    second = formula_estimate(400, (0.5, 1.5), position=16)  # 16 ** -0.25 = 1/2
    assert second == WaitEstimate(400, 300, 500)


def test_line_histories_are_empty_until_refreshed_and_due_again_after_a_while() -> None:
    histories = LineHistories()
    assert histories.get("funds", "en-US") is None and histories.due(60)
    histories.replace({("funds", "en-US"): LineHistory(abandon_rate=0.01)})
    assert histories.get("funds", "en-US") == LineHistory(abandon_rate=0.01)
    assert not histories.due(60) and histories.due(0)


@pytest.mark.parametrize(
    ("estimate", "style", "spoken"),
    [
        (WaitEstimate(400, 180, 600), "between", Spoken(3, 10)),
        (WaitEstimate(400, 180, 600), "under", Spoken(0, 10)),
        (WaitEstimate(400, 180, 600), "about", Spoken(7, 7)),
        (WaitEstimate(400, 200, 620), "between", Spoken(3, 10)),  # to the nearest minute
        (WaitEstimate(50, 20, 110), "between", Spoken(0, 2)),  # "less than 2 minutes"
        (WaitEstimate(20, 5, 25), "between", Spoken(0, 1)),  # never "less than 0 minutes"
        (WaitEstimate(75, 65, 85), "between", Spoken(1, 1)),  # both ends one minute: "about"
        (WaitEstimate(30, 10, 50), "about", Spoken(1, 1)),
    ],
)
def test_the_spoken_minutes_bracket_the_estimate(
    estimate: WaitEstimate, style: str, spoken: Spoken
) -> None:
    assert spoken_wait(estimate, style) == spoken
