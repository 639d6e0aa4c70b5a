"""The benchmark's own database: a name of its own, and it drops nothing else."""

from __future__ import annotations

import pytest

from bench import servers


def test_a_runs_database_is_named_after_its_process_and_a_random_part() -> None:
    name = servers.database_name(4242, "9f3a0c1b")
    assert name == "ivr_bench_4242_9f3a0c1b"
    assert servers.is_run_database(name)
    assert servers.name_of(servers.database_url(name)) == name


def test_two_runs_of_one_process_get_different_names() -> None:
    first = servers.database_name(7, "00aa")
    second = servers.database_name(7, "00ab")
    assert first != second


@pytest.mark.parametrize("name", ["ivr_bench", "test", "postgres", "ivr", "ivr_bench_1_x; drop"])
def test_other_databases_are_not_the_benchmarks(name: str) -> None:
    assert not servers.is_run_database(name)


@pytest.mark.parametrize("name", ["ivr_bench", "test", "postgres"])
def test_dropping_refuses_a_database_the_benchmark_did_not_create(name: str) -> None:
    # Refused before any connection is made: no PostgreSQL is needed to prove it.
    with pytest.raises(ValueError, match="not a database a benchmark run created"):
        servers.drop_database(servers.database_url(name))


def test_a_name_that_would_need_quoting_is_refused() -> None:
    with pytest.raises(ValueError):
        servers.database_name(1, "a-b")
