"""A rolling upgrade: the previous release and this commit side by side on one Redis and database.

The previous tagged release is extracted from the repository (`git archive`) and served by the same
Python as this commit, each behind one nginx that hands every webhook to either (round-robin), so
each call in flight meets both releases. Callers must not notice, every ticket must come out whole
and right, and nothing may land in the rejected stream: both write only what the other reads
(docs/operators/upgrading.md). Then the previous release's writer meets a record a newer release wrote
with a name it does not know: it rejects it, and this commit's writer takes it out of the rejected
stream again, to wait for the release that reads it.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from ivr.db import Database
from ivr.tickets.changes import EventRecord, Outcome, QueueEvent
from ivr.tickets.journal import REJECTED_KEY, STREAM_KEY, Journal, newer_key
from tests.conftest import ROOT, write_agent_pins
from tests.faults import RedisProcess, wait_until
from tests.instances import Instance, Nginx
from tests.support import edit, journal_record, write_rules
from tests.test_instances import ALWAYS_OPEN, Site, _environment, three_callers_and_emma
from tests.tickets.test_writer import writer_for

PREVIOUS_RELEASE = "v0.23.0"
PREVIOUS_COMMIT = "fefb264ee03c33373f294f8c4590706cf445b4b6"
"""v0.23.0's commit, for a clone without its tags (a shallow CI checkout fetches no tags)."""


def previous_release(folder: Path) -> Path:
    """The previous release's source tree, extracted from this repository into `folder`."""
    for name in (f"{PREVIOUS_RELEASE}^{{commit}}", PREVIOUS_COMMIT):
        found = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", name],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if found.returncode == 0:
            commit = found.stdout.strip()
            break
    else:
        pytest.fail(
            f"neither the tag {PREVIOUS_RELEASE} nor its commit {PREVIOUS_COMMIT} is in this "
            "repository: fetch them (git fetch --tags, or an unshallow clone) to run this test"
        )
    archive = folder / "previous.tar"
    with open(archive, "wb") as output:
        subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", commit],
            stdout=output,
            check=True,
            timeout=60,
        )
    tree = folder / "previous"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def previous_env(env: dict[str, str], tree: Path, folder: Path) -> dict[str, str]:
    """An instance's settings for the previous release: its code, its own rules and prompts."""
    rules = folder / "routing_rules.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    rules.write_text((tree / "routing_rules.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    edit(rules, ALWAYS_OPEN)
    return {
        **env,
        "PYTHONPATH": str(tree),
        "ROUTING_RULES": str(rules),
        "VOICE_PROMPTS": str(tree / "voice_prompts"),
    }


@dataclass
class Upgrade:
    site: Site
    redis: redis.Redis
    redis_url: str
    tree: Path


@pytest.fixture
def upgrade(database: Database, tmp_path: Path) -> Iterator[Upgrade]:
    tree = previous_release(tmp_path)
    write_agent_pins(tmp_path / "agent_pins.json")
    rules, _ = write_rules(tmp_path, ALWAYS_OPEN)
    instances: list[Instance] = []
    nginx: Nginx | None = None
    with RedisProcess() as redis_server:
        try:
            new_env = _environment(database, redis_server.url, rules, tmp_path, "new")
            old_env = previous_env(
                _environment(database, redis_server.url, rules, tmp_path, "old"),
                tree,
                tmp_path / "old",
            )
            where = subprocess.run(
                ["python", "-c", "import ivr; print(ivr.__file__)"],
                env=old_env,
                cwd=tree,
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert where.stdout.strip() == str(tree / "ivr" / "__init__.py"), where
            instances.append(Instance.start(old_env, tmp_path / "old.log", root=tree))
            instances.append(Instance.start(new_env, tmp_path / "new.log"))
            for instance in instances:
                instance.wait_ready()
            nginx = Nginx(tmp_path / "nginx", [instance.port for instance in instances])
            nginx.start()
            client = redis.Redis.from_url(redis_server.url)
            yield Upgrade(Site(nginx, instances, database), client, redis_server.url, tree)
        finally:
            if nginx is not None:
                nginx.stop()
            for instance in instances:
                instance.stop()


def entries(client: redis.Redis, key: str) -> list[dict[str, str]]:
    found: Any = client.xrange(key)
    return [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in found]


def healthz(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        body: dict[str, object] = json.loads(response.read())
    return body


def test_calls_in_flight_complete_whichever_release_answers_each_webhook(
    upgrade: Upgrade,
) -> None:
    # The same calls as behind two instances of one release (tests/test_instances.py), with one
    # of the two the previous release: every webhook of each call meets both.
    three_callers_and_emma(upgrade.site, "+1415555020", survey=4, tickets_within=30)
    # Neither release set aside what the other wrote, and nothing waits for a newer one.
    assert upgrade.redis.xlen(REJECTED_KEY) == 0
    assert not upgrade.redis.exists(newer_key(2))
    journal = healthz(upgrade.site.instances[1].port)["journal"]
    assert isinstance(journal, dict) and journal["waiting_for_newer"] == {}


def test_a_record_the_previous_release_rejected_is_taken_back_by_this_ones_writer(
    upgrade: Upgrade, database: Database, tmp_path: Path
) -> None:
    # A rollback: only the previous release runs. A newer release's record names an event the
    # previous release does not know, still as version 1 (a release that forgot to bump).
    upgrade.site.instances[1].stop()
    record = journal_record(
        "CA" + "7" * 32,
        datetime.now(UTC),
        caller="+14155550209",
        outcome=Outcome.CALLBACK,
        events=(EventRecord(QueueEvent.CALLBACKQUEUED, queue="funds"),),
    )
    body = json.loads(record.to_json())
    body["change"]["events"][0]["event"] = "CALLBACKMOVED"
    line = json.dumps(body)
    upgrade.redis.xadd(STREAM_KEY, {"r": line})

    wait_until(lambda: upgrade.redis.xlen(REJECTED_KEY) == 1, timeout=20)  # its writer's verdict
    [rejected] = entries(upgrade.redis, REJECTED_KEY)
    assert rejected["r"] == line and "CALLBACKMOVED" in rejected["reason"]

    # This commit's writer (upgraded again): out of the rejected stream, waiting for its release.
    journal = Journal(redis.Redis.from_url(upgrade.redis_url), tmp_path / "spool")
    writer_for(journal, database).drain()
    assert upgrade.redis.xlen(REJECTED_KEY) == 0
    assert [entry["r"] for entry in entries(upgrade.redis, newer_key(2))] == [line]
    assert journal.backlog().newer == {2: 1}
    # The previous release keeps serving beside records it cannot read: its health is unchanged.
    assert healthz(upgrade.site.instances[0].port)["status"] == "ok"
    assert os.environ.get("PYTHONPATH", "") != str(upgrade.tree)  # this process runs this commit
