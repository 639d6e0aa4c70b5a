"""The background's share of the work: settling the agents of a large roster a share at a time."""

from __future__ import annotations

from ivr.background import SETTLE_AGENTS_PER_ROUND, agents_to_settle


def test_the_first_round_settles_every_agent_then_each_round_the_next_share() -> None:
    roster = [f"agent{i:04d}" for i in range(1000)]

    first, start = agents_to_settle(roster, None)
    rounds = [first]
    for _ in range(1000 // SETTLE_AGENTS_PER_ROUND):
        chunk, start = agents_to_settle(roster, start)
        rounds.append(chunk)

    assert rounds[0] == roster
    assert all(len(chunk) == SETTLE_AGENTS_PER_ROUND for chunk in rounds[1:])
    # After the first round, every agent is read once in each pass over the roster.
    assert sorted(a for chunk in rounds[1:] for a in chunk) == roster
    assert agents_to_settle(roster, start)[0] == roster[:SETTLE_AGENTS_PER_ROUND]


def test_a_small_roster_is_settled_whole_every_round_and_a_shrunk_one_wraps_around() -> None:
    small = ["emma", "lucas"]
    assert agents_to_settle(small, 7) == (small, 0)
    roster = [f"a{i}" for i in range(SETTLE_AGENTS_PER_ROUND + 10)]
    chunk, start = agents_to_settle(roster, 5 * len(roster) + 20)  # the rules lost agents
    assert (
        chunk[0] == "a20" and chunk[-1] == roster[(20 + SETTLE_AGENTS_PER_ROUND - 1) % len(roster)]
    )
    assert start == (20 + SETTLE_AGENTS_PER_ROUND) % len(roster)
