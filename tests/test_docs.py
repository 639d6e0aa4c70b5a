"""The documentation: the README starts people, the site under docs/ builds strictly, and every
setting the service reads is documented on the operators' Settings page.

The site is built as CI builds it (`python -m sphinx -W --keep-going -n`): any warning fails, so a
link to a page or file that does not exist, a page in no table of contents or a heading that skips
a level fails this test, and with it the README's test command.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from ivr.config import Settings
from tests.support import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"
SETTINGS_PAGE = DOCS / "operators" / "settings.md"
CONFIG = ROOT / "ivr" / "config.py"
READ_ELSEWHERE = {
    "HOST": "ivr serve's default --host",
    "PORT": "ivr serve's default --port",
    "IVR_SERVE_WORKERS": "the image's serve role (deploy/entrypoint.sh)",
    "IVR_SERVE_THREADS": "the image's serve role (deploy/entrypoint.sh)",
}
"""Settings the Settings page documents that `Settings.from_env` does not read, and who reads them."""
NAME = re.compile(r"[A-Z][A-Z0-9_]*")


def build(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """Sphinx over `source` into `out`, strictly, as CI runs it."""
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", str(source), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    built = build(DOCS, tmp_path / "site")
    assert built.returncode == 0 and not built.stderr, built.stderr
    assert (tmp_path / "site" / "operators" / "settings.html").is_file()


def test_a_broken_link_or_a_page_outside_the_contents_fails_the_build(tmp_path: Path) -> None:
    source = tmp_path / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("screenshots", "*.png", "*.svg"))
    (source / "operators" / "forgotten.md").write_text("# Forgotten\n\nIn no table of contents.\n")
    settings = source / "operators" / "settings.md"
    settings.write_text(settings.read_text() + "\nSee [the old page](../settings-old.md).\n")
    built = build(source, tmp_path / "site")
    assert built.returncode != 0
    assert "forgotten.md: WARNING: document isn't included in any toctree" in built.stderr
    assert "settings-old.md" in built.stderr and "[myst.xref_missing]" in built.stderr


def readme_links() -> Iterator[str]:
    """The targets of the README's links and images that are paths in this repository."""
    for target in re.findall(r"\]\(([^)\s]+)\)", README.read_text(encoding="utf-8")):
        if not re.match(r"[a-z]+://|#|mailto:", target):
            yield target.split("#", 1)[0]


def test_the_readme_is_short_and_its_links_lead_somewhere() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 150
    links = list(readme_links())
    assert "docs/operators/settings.md" in links  # the readers' pages are linked
    missing = [target for target in links if not (ROOT / target).exists()]
    assert not missing, f"README.md links to what does not exist: {missing}"


class RecordingEnvironment(Mapping[str, str]):
    """An environment that records every name read from it, and refuses to be listed (a reader
    that walks the whole environment would read names this test cannot see)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self.values[name]

    def __contains__(self, name: object) -> bool:
        self.read.add(str(name))
        return name in self.values

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("Settings.from_env lists the environment: say here what it reads")

    def __len__(self) -> int:
        raise AssertionError("Settings.from_env counts the environment: say here what it reads")


def names_read_at_run_time() -> set[str]:
    """What `Settings.from_env` reads, run on an empty environment and on one that takes the
    branches read only when a setting is on (the development mode, the exchange hook, the clock)."""
    read: set[str] = set()
    for values in (
        {},
        {
            "IVR_DEV_MODE": "1",
            "IVR_EXCHANGE_URL": "embedded://",
            "IVR_CLOCK": "2026-12-25T09:00:00+01:00@2026-12-02T10:00:00Z",
        },
    ):
        environment = RecordingEnvironment(values)
        Settings.from_env(environment)
        read |= environment.read
    return read


def names_in_the_code() -> set[str]:
    """Every name ivr/config.py reads from an environment: `env[NAME]`, `env.get(NAME)`, and the
    names it hands with `env` to a helper (`_seconds(env, "IVR_DRAIN_SECONDS", ...)`)."""
    names: set[str] = set()

    def constants(nodes: list[ast.expr]) -> set[str]:
        return {
            node.value
            for node in nodes
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and NAME.fullmatch(node.value)
        }

    def is_env(node: ast.expr) -> bool:
        return isinstance(node, ast.Name) and node.id == "env"

    for node in ast.walk(ast.parse(CONFIG.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Subscript) and is_env(node.value):
            names |= constants([node.slice])
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "get" and is_env(func.value):
                names |= constants(node.args[:1])
            if any(is_env(arg) for arg in node.args):
                names |= constants(node.args)
    return names


def documented_settings() -> set[str]:
    """The names in the first column of the Settings page's table."""
    names: set[str] = set()
    for line in SETTINGS_PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names |= {name for name in re.findall(r"`([^`]+)`", first_cell) if NAME.fullmatch(name)}
    return names


def test_the_code_reads_no_setting_the_parse_of_config_py_misses() -> None:
    read = names_read_at_run_time()
    assert "TWILIO_AUTH_TOKEN" in read and "IVR_EXCHANGE_SECRET" in read
    assert read <= names_in_the_code(), read - names_in_the_code()


def test_every_setting_from_env_reads_is_documented_and_no_other() -> None:
    code = names_in_the_code() | names_read_at_run_time()
    documented = documented_settings()
    assert code - documented == set(), (
        "read by Settings.from_env, not on docs/operators/settings.md"
    )
    extra = documented - code
    assert extra == READ_ELSEWHERE.keys(), f"on the Settings page, read by nothing: {extra}"
    code_elsewhere = [*(ROOT / "ivr").rglob("*.py"), ROOT / "deploy" / "entrypoint.sh"]
    for name, reader in READ_ELSEWHERE.items():
        quoted = re.compile(rf"[\"'{{$]{name}\b")
        assert any(quoted.search(f.read_text(encoding="utf-8")) for f in code_elsewhere), (
            f"nothing reads {name} ({reader}) any more"
        )
