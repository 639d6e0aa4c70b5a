"""Rules with many menus: generated files pass the check, load with libyaml, and `#` works everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ivr.rules import loader
from ivr.rules.check import load_bundle
from tests.rules.big_rules import SUB_MENUS, menu_id, write_big_rules


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")
def test_files_are_parsed_with_libyaml_where_pyyaml_has_it() -> None:
    assert loader.YAML_LOADER is yaml.CSafeLoader


@pytest.mark.parametrize("menus", [10, 1000])
def test_generated_rules_pass_the_check_and_pound_goes_one_menu_back(
    tmp_path: Path, menus: int
) -> None:
    bundle = load_bundle(*write_big_rules(tmp_path, menus))
    rules = bundle.rules
    assert len(rules.menus) == menus
    assert rules.parent_menu("main") is None
    for index in range(1, menus):
        assert rules.parent_menu(menu_id(index)) == menu_id((index - 1) // SUB_MENUS)
    assert bundle.prompts.catalog("de-DE").texts[f"opt_m{menus - 1:04d}"] == f"Menü {menus - 1}"
