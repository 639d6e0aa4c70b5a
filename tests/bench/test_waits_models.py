"""bench.waits_models: the Erlang C and Erlang A wait distributions, and the yardsticks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.waits_models import (
    Model,
    connect_time,
    least_possible_mae,
    model_of,
    position_only,
    position_only_yardstick,
    wait_cdf,
    wait_quantiles,
)
from tests.bench.waits_support import (
    Estimate,
    Round,
    Scenario,
    Shift,
    Stream,
    Talk,
    drawn_rounds,
    model_waits,
)

ERLANG_C = Model(agents=4, service_mean=250.0, patience_mean=None, connect=8.0)
ERLANG_A = Model(agents=20, service_mean=250.0, patience_mean=300.0, connect=8.0)


def test_next_in_line_waits_the_connect_time_plus_a_median_of_ln2_over_s_mu() -> None:
    (median,) = wait_quantiles(ERLANG_C, 0, (0.5,))
    assert median == pytest.approx(8.0 + math.log(2) * 250.0 / 4, rel=1e-6)
    # With abandonment a caller who stays also leaves the first stage at their own rate theta.
    (median,) = wait_quantiles(ERLANG_A, 0, (0.5,))
    assert median == pytest.approx(8.0 + math.log(2) / (20 / 250 + 1 / 300), rel=1e-6)
    (published,) = wait_quantiles(ERLANG_A, 0, (0.5,), served=False)
    assert published == pytest.approx(8.0 + math.log(2) / (20 / 250), rel=1e-6)


@pytest.mark.parametrize(
    ("model", "ahead"), [(ERLANG_C, 0), (ERLANG_C, 9), (ERLANG_A, 3), (ERLANG_A, 60)]
)
def test_the_mean_is_the_sum_of_the_stages_means(model: Model, ahead: int) -> None:
    cdf = wait_cdf(model, ahead, top_q=1 - 1e-9)
    expected = model.connect + float(np.sum(1 / model.rates(ahead)))
    # E[W] = integral of the survival function, here by the trapezoid rule on a fine grid.
    grid = np.linspace(0.0, 6 * expected + 600, 4001)
    survival = np.array([1.0 - cdf(t) for t in grid])
    mean = float(np.sum((survival[1:] + survival[:-1]) / 2 * np.diff(grid)))
    assert mean == pytest.approx(expected, rel=1e-3)
    assert model.mean_wait(ahead) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("model", "ahead"),
    [(ERLANG_C, 0), (ERLANG_C, 4), (ERLANG_C, 30), (ERLANG_A, 0), (ERLANG_A, 5), (ERLANG_A, 40)],
)
def test_quantiles_match_a_monte_carlo_of_the_stages(model: Model, ahead: int) -> None:
    waits = model_waits(model, ahead, 200_000, seed=ahead + 1)
    qs = (0.1, 0.5, 0.9)
    for q, found in zip(qs, wait_quantiles(model, ahead, qs), strict=True):
        assert found == pytest.approx(float(np.quantile(waits, q)), rel=0.01)


def test_the_waits_of_callers_who_stay_are_those_of_the_served_distribution() -> None:
    """Callers ahead leave at i theta; the caller's own patience, Exp(theta), races the queue and
    only those it loses to are answered (and measured)."""
    model = Model(agents=4, service_mean=250.0, patience_mean=300.0)
    ahead, n = 6, 200_000
    rng = np.random.default_rng(5)
    queue = np.zeros(n)
    for rate in model.rates(ahead, served=False):
        queue += rng.exponential(1 / rate, n)
    stayed = queue[rng.exponential(300.0, n) > queue]
    qs = (0.1, 0.5, 0.9)
    for q, found in zip(qs, wait_quantiles(model, ahead, qs), strict=True):
        assert found == pytest.approx(float(np.quantile(stayed, q)), rel=0.01)
    published = wait_quantiles(model, ahead, (0.5,), served=False)[0]
    assert published > 1.1 * float(np.median(stayed))


@pytest.mark.parametrize("model", [ERLANG_C, ERLANG_A])
def test_three_hundred_ahead_is_stable(model: Model) -> None:
    ahead = 300
    low, median, high = wait_quantiles(model, ahead, (0.1, 0.5, 0.9))
    waits = model_waits(model, ahead, 200_000, seed=3)
    assert low < median < high
    for q, found in zip((0.1, 0.5, 0.9), (low, median, high), strict=True):
        assert found == pytest.approx(float(np.quantile(waits, q)), rel=0.01)


def test_a_tiny_abandonment_rate_agrees_with_the_exact_erlang() -> None:
    """The two methods (uniformization, the Erlang CDF) meet where the models do."""
    almost = Model(agents=4, service_mean=250.0, patience_mean=1e9, connect=8.0)
    for ahead in (0, 12, 150):
        assert wait_quantiles(almost, ahead, (0.1, 0.5, 0.9)) == pytest.approx(
            wait_quantiles(ERLANG_C, ahead, (0.1, 0.5, 0.9)), rel=1e-4
        )


def test_quantiles_outside_zero_one_are_refused() -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        wait_quantiles(ERLANG_C, 0, (0.5, 1.0))


def test_the_model_median_has_the_least_mae_and_its_range_holds_for_80_percent() -> None:
    rounds = drawn_rounds(ERLANG_A, 3000, range(1, 9), {})
    best = least_possible_mae(ERLANG_A, rounds)
    assert best.rounds == len(rounds)
    assert best.coverage == pytest.approx(0.8, abs=0.015)
    mae = best.mae or 0.0
    for factor in (0.9, 1.1):  # any other estimate does worse
        other = Model(20, 250.0 * factor, 300.0, 8.0)
        assert (least_possible_mae(other, rounds).mae or 0.0) > mae
    quantiles = [wait_quantiles(ERLANG_A, k, (0.1, 0.9)) for k in range(8)]
    assert best.width == pytest.approx(np.mean([high - low for low, high in quantiles]))


def test_only_rounds_with_every_agent_busy_and_an_answer_count() -> None:
    rounds = [
        Round(1, 50.0),
        Round(1, 10.0, agents_available=1),  # put through at once: not a queueing wait
        Round(2, None),  # never answered
    ]
    assert least_possible_mae(ERLANG_C, rounds).rounds == 1
    assert position_only(rounds) == {"1": 50.0}


def test_position_only_is_the_median_wait_per_position_six_and_more_pooled() -> None:
    waits = {1: [10, 20, 90], 2: [40, 60], 6: [300, 500], 9: [400]}
    rounds = [Round(p, float(w)) for p, ws in waits.items() for w in ws]
    assert position_only(rounds) == {"1": 20.0, "2": 50.0, "6+": 400.0}
    figures = position_only_yardstick(rounds)
    # |10-20| + |20-20| + |90-20| + |40-50| + |60-50| + |300-400| + |500-400| + 0
    assert figures.mae == pytest.approx(300 / 8)


def test_an_erlang_scenario_has_a_model_with_the_connect_time_in_the_service() -> None:
    scenario = Scenario(Talk(240.0), (Stream(patience=300.0),), (Shift(),) * 20)
    assert model_of(scenario, connect=11.0) == Model(20, 251.0, 300.0, 11.0)
    assert model_of(Scenario(), connect=0.0) == Model(4, 240.0, None, 0.0)


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario(talk=Talk(240.0, "lognormal")),
        Scenario(streams=(Stream(), Stream())),
        Scenario(streams=(Stream(callback_share=0.3),)),
        Scenario(shifts=(Shift(), Shift(logout=45.0))),
        Scenario(shifts=(Shift(), Shift(login=10.0))),
    ],
    ids=["lognormal talk", "two streams", "callbacks", "a logout", "a late login"],
)
def test_other_scenarios_have_no_model(scenario: Scenario) -> None:
    assert model_of(scenario, connect=5.0) is None


def test_the_connect_time_is_the_wait_of_callers_put_through_at_once() -> None:
    told = {"live": Estimate(0, 0, 0)}
    at_once = [Round(1, w, told, agents_available=1) for w in (9.0, 11.0, 10.0, 12.0, 10.5)]
    busy = [Round(1, 80.0), Round(2, 10.0, agents_available=1)]
    assert connect_time([*at_once, *busy], fallback=5.0) == 10.5
    assert connect_time([*at_once[:4], *busy], fallback=5.0) == 5.0
