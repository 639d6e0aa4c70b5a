"""Reading `routing_rules.yaml`: every mistake an admin can make is reported as `FILE:LINE:COL: message`.

Broken files are the shipped rules with one edit. In the replacement text, `‸` marks where the admin
must be pointed; it is removed before the file is written, so expected lines and columns come from the
edited text itself, not from numbers that go stale when the example file changes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.rules.loader import Problem, RulesError, load_rules, read_yaml
from tests.support import RULES, write_rules

# Lines and columns must come out the same from both YAML parsers.
pytestmark = pytest.mark.usefixtures("each_yaml_loader")


def problems_of(path: Path) -> list[str]:
    """The lines `ivr check` would print for `path`, as far as the loader goes."""
    with pytest.raises(RulesError) as raised:
        load_rules(path)
    assert str(raised.value) == "\n".join(str(p) for p in raised.value.problems)
    return [str(problem) for problem in raised.value.problems]


def test_a_problem_prints_as_file_line_column_message() -> None:
    assert str(Problem("rules.yaml", 79, 42, "queue 'x' is not defined")) == (
        "rules.yaml:79:42: queue 'x' is not defined"
    )


def test_the_shipped_rules_load() -> None:
    rules, source = load_rules(RULES)
    assert rules.brand == "BitP"
    assert rules.language_codes == ("zh-CN", "en-US", "fr-FR", "de-DE")
    assert source.file == str(RULES)


def test_read_yaml_knows_where_each_value_stands(tmp_path: Path) -> None:
    path, spots = write_rules(
        tmp_path,
        ("  asia:\n    timezone: Asia/Shanghai", "  asia:\n    ‸timezone: ‸Asia/Shanghai"),
    )
    team, zone = spots
    source = read_yaml(path)
    assert source.data["teams"]["asia"]["timezone"] == "Asia/Shanghai"
    assert source.position(("teams", "asia", "timezone")) == zone
    # A setting that is not there is placed at the nearest enclosing value that is.
    assert source.position(("teams", "asia", "no_such_setting")) == team
    assert source.problem(("teams", "asia", "timezone"), "x") == Problem(str(path), *zone, "x")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        pytest.param(
            "brand: BitP\n",
            "brand: BitP‸: Exchange\n",
            "YAML syntax: mapping values are not allowed here",
            id="yaml-syntax",
        ),
        pytest.param(
            "  account:\n    intro: prepare_account\n",
            "  ‸main:\n    intro: prepare_account\n",
            "duplicate key 'main'",
            id="duplicate-key-at-the-second-one",
        ),
        pytest.param(
            '"1": {label: opt_login, queue: account, issue: login}',
            '"1": ‸{queue: account, issue: login}',
            "menus.account.options.1.label: missing required setting 'label'",
            id="missing-setting",
        ),
        pytest.param(
            "version: 1\nbrand: BitP\n",
            "‸version: 1\n",
            "brand: missing required setting 'brand'",
            id="missing-top-level-setting",
        ),
        pytest.param(
            "    max_tries: 2 ",
            "    max_tries: ‸0 ",
            "menus.security.max_tries: Input should be greater than or equal to 1",
            id="max-tries-0",
        ),
        pytest.param(
            "issue: account_compromised, priority: 100,",
            "issue: account_compromised, priority: ‸101,",
            "menus.security.options.1.priority: Input should be less than or equal to 100",
            id="priority-101",
        ),
        pytest.param(
            "  gather_timeout: 6 ",
            "  gather_timeout: ‸six ",
            "defaults.gather_timeout: Input should be a valid integer, "
            "unable to parse string as an integer",
            id="not-a-number",
        ),
        pytest.param(
            "  silence_limit: 300 ",
            "  silence_limit: ‸30 ",
            "defaults.silence_limit: Input should be greater than or equal to 60",
            id="silence-limit-under-a-minute",
        ),
        pytest.param(
            "  silence_limit: 300 ",
            "  silence_limit: ‸14400 ",
            "defaults.silence_limit: Input should be less than or equal to 1800",
            id="silence-limit-as-long-as-twilios",
        ),
        pytest.param(
            "  silence_limit: 300 ",
            "  silence_limit: ‸5 minutes ",
            "defaults.silence_limit: Input should be a valid integer, "
            "unable to parse string as an integer",
            id="silence-limit-in-words",
        ),
        pytest.param(
            '"4": {label: opt_complaint, queue: supervisors, issue: complaint}',
            '"4": ‸{label: opt_complaint, queue: supervisors, say: answer_hours, issue: complaint}',
            "menus.main.options.4: needs exactly one of 'menu', 'queue', 'say' or 'voicemail: true'"
            ", got queue, say",
            id="two-destinations",
        ),
        pytest.param(
            "    start: 2026-12-01T01:00:00+00:00",
            "    start: ‸2026-12-01T01:00:00",
            "announcements.0.start: needs a time zone offset, for example 2026-12-01T02:00:00+00:00",
            id="naive-announcement-start",
        ),
        pytest.param(
            "  - prompt: announcement_maintenance\n"
            "    start: 2026-12-01T01:00:00+00:00\n"
            "    end: 2026-12-01T05:00:00+00:00",
            "  - ‸prompt: announcement_maintenance\n"
            "    start: 2026-12-01T01:00:00+00:00\n"
            "    end: 2026-11-30T05:00:00+00:00",
            "announcements.0: 'end' must be after 'start'",
            id="announcement-ends-before-it-starts",
        ),
        pytest.param(
            "timezone: Asia/Shanghai",
            "timezone: ‸Asia/Shanghia",
            "teams.asia.timezone: unknown time zone 'Asia/Shanghia' "
            "(use an IANA name like Europe/Berlin)",
            id="unknown-time-zone",
        ),
        pytest.param(
            'weekly: {mon-fri: "08:00-20:00"}\n    holidays: {country: CN}',
            'weekly: {‸mon-fry: "08:00-20:00"}\n    holidays: {country: CN}',
            "teams.asia.weekly.mon-fry: unknown day 'mon-fry': "
            "use mon..sun, a span like mon-fri, or daily",
            id="bad-day-span-at-the-day-not-the-brace",
        ),
        pytest.param(
            'weekly: {mon-fri: "08:00-20:00"}\n    holidays: {country: CN}',
            'weekly: {mon-fri: ‸"25:00-26:00"}\n    holidays: {country: CN}',
            "teams.asia.weekly.mon-fri: in '25:00-26:00' the start 25:00 and the end 26:00 "
            "are not times of day (00:00 to 24:00)",
            id="bad-time-range-at-the-range-not-the-brace",
        ),
        pytest.param(
            "holidays: {country: CN}",
            "holidays: ‸{country: XX}",
            "teams.asia.holidays: unknown holiday country 'XX'",
            id="unknown-holiday-country",
        ),
        pytest.param(
            "satisfaction_survey: true\n",
            'satisfaction_survey: true\ncallback_prefixes: ‸["+49", "0049"]\n',
            "callback_prefixes: '0049' is not the start of a phone number like '+49'",
            id="callback-prefix",
        ),
    ],
)
def test_a_mistake_is_reported_where_it_is(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path, [(line, column)] = write_rules(tmp_path, (old, new))
    assert problems_of(path) == [f"{path}:{line}:{column}: {message}"]


# --- what an admin reported: the `{` of a map instead of the bad value, two lines and no "did you
# mean" for a misspelt key, no word on which half of a range is wrong, no hint for a tab -----------


def test_a_misspelt_required_setting_is_one_line_with_did_you_mean(tmp_path: Path) -> None:
    path, [(line, column)] = write_rules(
        tmp_path, ('"1": {label: opt_login,', '"1": {‸labl: opt_login,')
    )
    assert problems_of(path) == [
        f"{path}:{line}:{column}: menus.account.options.1.labl: unknown setting 'labl': "
        "did you mean 'label'?"
    ]


def test_a_misspelt_optional_setting_gets_did_you_mean(tmp_path: Path) -> None:
    path, [(line, column)] = write_rules(tmp_path, ("    max_tries: 2 ", "    ‸max_trys: 2 "))
    assert problems_of(path) == [
        f"{path}:{line}:{column}: menus.security.max_trys: unknown setting 'max_trys': "
        "did you mean 'max_tries'?"
    ]


def test_a_setting_like_nothing_known_has_no_did_you_mean(tmp_path: Path) -> None:
    path, [(line, column)] = write_rules(tmp_path, ("    max_tries: 2 ", "    ‸colour: blue "))
    assert problems_of(path) == [
        f"{path}:{line}:{column}: menus.security.colour: unknown setting 'colour'"
    ]


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        pytest.param(
            '‸"8:00-25:00"',
            "teams.asia.weekly.mon-fri: in '8:00-25:00' the end 25:00 is not a time of day "
            "(00:00 to 24:00)",
            id="the-end-is-wrong",
        ),
        pytest.param(
            '‸"08:60-20:00"',
            "teams.asia.weekly.mon-fri: in '08:60-20:00' the start 8:60 is not a time of day "
            "(00:00 to 24:00)",
            id="the-start-is-wrong",
        ),
        pytest.param(
            '["08:00-12:00", ‸"14:00-13:00"]',
            "teams.asia.weekly.mon-fri.1: '14:00-13:00' ends before it starts "
            "(a range cannot pass midnight)",
            id="the-second-range-of-a-list-runs-backwards",
        ),
    ],
)
def test_a_bad_time_range_says_which_half_is_wrong_and_points_at_it(
    tmp_path: Path, hours: str, message: str
) -> None:
    path, [(line, column)] = write_rules(
        tmp_path,
        (
            '    weekly: {mon-fri: "08:00-20:00"}\n    holidays: {country: CN}',
            f"    weekly: {{mon-fri: {hours}}}\n    holidays: {{country: CN}}",
        ),
    )
    assert problems_of(path) == [f"{path}:{line}:{column}: {message}"]


def test_bad_override_hours_point_at_the_hours(tmp_path: Path) -> None:
    path, [(line, column)] = write_rules(
        tmp_path,
        ('{date: 2026-12-24, hours: "08:00-12:00"', '{date: 2026-12-24, hours: ‸"08:00-32:00"'),
    )
    assert problems_of(path) == [
        f"{path}:{line}:{column}: teams.europe.overrides.0.hours: in '08:00-32:00' the end 32:00 "
        "is not a time of day (00:00 to 24:00)"
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(
            "  account:\n    intro: prepare_account",
            "  account:\n‸\tintro: prepare_account",
            id="a-tab-for-the-whole-indentation",
        ),
        pytest.param(
            "  account:\n    intro: prepare_account",
            "  account:\n  ‸\tintro: prepare_account",
            id="spaces-then-a-tab",
        ),
    ],
)
def test_tab_indentation_gets_a_hint(tmp_path: Path, old: str, new: str) -> None:
    path, [(line, column)] = write_rules(tmp_path, (old, new))
    assert problems_of(path) == [
        f"{path}:{line}:{column}: YAML syntax: a tab character: YAML indents with spaces only, "
        "so replace the tab with spaces"
    ]


# Mistakes in a *key* (a misspelt setting, a reserved menu key). `‸` marks the key itself.
KEY_MISTAKES = [
    pytest.param(
        '      "6": {label: opt_self_service',
        '      ‸"0": {label: opt_self_service',
        "menus.main.options.0: menu key must be one of 1-9 (0, * and # are reserved), not '0'",
        id="menu-key-0",
    ),
    pytest.param(
        '      "6": {label: opt_self_service',
        '      ‸"*": {label: opt_self_service',
        "menus.main.options.*: menu key must be one of 1-9 (0, * and # are reserved), not '*'",
        id="menu-key-star",
    ),
    pytest.param(
        '"1": {label: opt_login,',
        '"1": {‸labl: opt_login,',
        "menus.account.options.1.labl: unknown setting 'labl': did you mean 'label'?",
        id="unknown-setting-in-a-flow-mapping",
    ),
    pytest.param(
        "brand: BitP",
        "‸brnd: BitP",
        "brnd: unknown setting 'brnd': did you mean 'brand'?",
        id="unknown-top-level-setting",
    ),
    pytest.param(
        '    extension: "102"\n',
        '    extension: "102"\n    ‸pin: "730152"\n',
        "agents.emma.pin: a PIN does not belong in the rules file: delete this line and set it "
        "with `ivr agents set-pin emma` (it is stored hashed in IVR_AGENT_PINS)",
        id="a-pin-in-the-rules-file",
    ),
]
BLOCK_KEY_MISTAKE = pytest.param(
    "  account:\n    intro: prepare_account\n    options:",
    "  account:\n    intro: prepare_account\n    ‸optons:",
    "menus.account.optons: unknown setting 'optons': did you mean 'options'?",
    id="unknown-setting-over-a-block",
)


@pytest.mark.parametrize(("old", "new", "message"), KEY_MISTAKES)
def test_a_mistake_in_a_key_is_reported_on_its_line(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path, [(line, _)] = write_rules(tmp_path, (old, new))
    reported = [p for p in problems_of(path) if p.endswith(f": {message}")]
    assert len(reported) == 1 and reported[0].startswith(f"{path}:{line}:")


@pytest.mark.parametrize(("old", "new", "message"), [*KEY_MISTAKES, BLOCK_KEY_MISTAKE])
def test_a_mistake_in_a_key_points_at_the_key(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path, [(line, column)] = write_rules(tmp_path, (old, new))
    assert f"{path}:{line}:{column}: {message}" in problems_of(path)


def test_every_problem_in_a_file_is_reported_not_just_the_first(tmp_path: Path) -> None:
    path, spots = write_rules(
        tmp_path,
        ("    max_tries: 2 ", "    max_tries: ‸0 "),
        ("account_compromised, priority: 100,", "account_compromised, priority: ‸101,"),
        ("timezone: Asia/Shanghai", "timezone: ‸Asia/Shanghia"),
    )
    messages = [
        "menus.security.max_tries: Input should be greater than or equal to 1",
        "menus.security.options.1.priority: Input should be less than or equal to 100",
        "teams.asia.timezone: unknown time zone 'Asia/Shanghia' (use an IANA name like Europe/Berlin)",
    ]
    expected = [
        f"{path}:{line}:{column}: {m}" for (line, column), m in zip(spots, messages, strict=True)
    ]
    assert sorted(problems_of(path)) == sorted(expected)


def test_every_duplicate_key_is_reported(tmp_path: Path) -> None:
    path, spots = write_rules(
        tmp_path,
        ("  account:\n    intro: prepare_account\n", "  ‸main:\n    intro: prepare_account\n"),
        ('      "2": {label: opt_withdrawal', '      ‸"1": {label: opt_withdrawal'),
    )
    (main_line, main_column), (key_line, key_column) = spots
    assert problems_of(path) == [
        f"{path}:{main_line}:{main_column}: duplicate key 'main'",
        f"{path}:{key_line}:{key_column}: duplicate key '1'",
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing here yet\n"])
def test_an_empty_file_is_reported(tmp_path: Path, text: str) -> None:
    path = tmp_path / "routing_rules.yaml"
    path.write_text(text, encoding="utf-8")
    assert problems_of(path) == [f"{path}:1:1: the file is empty"]


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "no_such_rules.yaml"
    assert problems_of(path) == [f"{path}:1:1: cannot read file: No such file or directory"]


def test_an_unquoted_number_key_is_the_menu_key(tmp_path: Path) -> None:
    path, _ = write_rules(
        tmp_path,
        (
            '      "1": {label: opt_account, menu: account}',
            "      1: {label: opt_account, menu: account}",
        ),
        ('  "+49": de-DE', "  +49: de-DE"),
    )
    rules, _ = load_rules(path)
    options = rules.menus["main"].options
    assert list(options) == ["1", "2", "3", "4", "5", "6"]
    assert options["1"].menu == "account"
    assert rules.language_for_caller("+4930123456") == "de-DE"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("{date: 2026-12-24,", "{date: ‸2026-02-30,", id="override-on-february-30"),
        pytest.param(
            "start: 2026-12-01T01:00:00+00:00",
            "start: ‸2026-13-01T01:00:00+00:00",
            id="announcement-in-month-13",
        ),
        pytest.param(
            # Columns count characters, not bytes: libyaml reads UTF-8 and must agree.
            '{date: 2026-12-24, hours: "08:00-12:00", note: Christmas Eve}',
            '{note: 平安夜 – Heiligabend, date: ‸2026-02-30, hours: "08:00-12:00"}',
            id="after-chinese-text-on-the-same-line",
        ),
    ],
)
def test_an_impossible_date_is_reported_where_it_is(tmp_path: Path, old: str, new: str) -> None:
    path, [(line, column)] = write_rules(tmp_path, (old, new))
    with pytest.raises(RulesError) as raised:
        load_rules(path)
    assert [(p.file, p.line, p.column) for p in raised.value.problems] == [
        (str(path), line, column)
    ]


def test_a_character_yaml_does_not_allow_is_reported_where_it_is(tmp_path: Path) -> None:
    path, [(line, column)] = write_rules(tmp_path, ("brand: BitP", "brand: Bit‸\x07P"))
    assert problems_of(path) == [
        f"{path}:{line}:{column}: YAML syntax: character #x0007: special characters are not allowed"
    ]
