"""Generated rules with many menus, for load-time tests and `bench/micro_rules.py`.

The shipped rules and catalogs with the `menus:` section replaced: a main menu leading through a tree of
sub-menus (6 sub-menus per menu, then keys to the shipped queues, a self-service answer and voicemail)
down to the shipped queues. Every menu has its own intro and label, added to every prompt catalog, so
the catalogs grow with the rules as they would for a real line of that size. The result passes
`ivr check`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "routing_rules.yaml"
PROMPTS = ROOT / "voice_prompts"

SUB_MENUS = 6
"""Sub-menus per menu (keys 1-6); keys 7-9 go to a queue, a spoken answer and voicemail."""
QUEUES = ("general", "account", "funds", "tech", "security", "supervisors")
MENU_WORD = {"zh-CN": "菜单", "en-US": "menu", "fr-FR": "menu", "de-DE": "Menü"}
_MENUS_START = "main_menu: main\nmenus:\n"
_MENUS_END = "\n# Teams and their opening hours"
_PROMPTS_START = "\nprompts:\n"


def menu_id(index: int) -> str:
    """The id of the generated menu number `index` (0 is the main menu)."""
    return "main" if index == 0 else f"m{index:04d}"


def _menus_yaml(count: int) -> str:
    lines = [_MENUS_START]
    for index in range(count):
        lines.append(f"  {menu_id(index)}:\n    intro: intro_m{index:04d}\n    options:\n")
        # Menu i's sub-menus are 6i+1 .. 6i+6 (a heap layout), so every menu is reachable.
        children = [c for c in range(SUB_MENUS * index + 1, SUB_MENUS * index + 7) if c < count]
        for key, child in enumerate(children, start=1):
            lines.append(f'      "{key}": {{label: opt_m{child:04d}, menu: {menu_id(child)}}}\n')
        queue = QUEUES[index % len(QUEUES)]
        lines.append(
            f'      "7": {{label: opt_app, queue: {queue}, issue: issue_m{index:04d}, '
            f"priority: {index % 101}}}\n"
            '      "8": {label: opt_hours, say: answer_hours, issue: faq_hours}\n'
            '      "9": {label: opt_voicemail, voicemail: true}\n'
        )
        if index % 10 == 0:
            lines.append("    max_tries: 2\n    fallback: {queue: general}\n")
        lines.append("\n")
    return "".join(lines)


def _catalog_yaml(language: str, count: int) -> str:
    word = MENU_WORD[language]
    lines = []
    for index in range(count):
        lines.append(f'  intro_m{index:04d}: "{word} {index}."\n')
        if index:
            lines.append(f'  opt_m{index:04d}: "{word} {index}"\n')
    return "".join(lines)


def write_big_rules(folder: Path, menus: int) -> tuple[Path, Path]:
    """Write rules with `menus` menus and matching catalogs into `folder`: (rules file, prompt folder)."""
    text = RULES.read_text(encoding="utf-8")
    start, end = text.index(_MENUS_START), text.index(_MENUS_END)
    rules = folder / RULES.name
    rules.write_text(text[:start] + _menus_yaml(menus) + text[end:], encoding="utf-8")
    prompts = folder / PROMPTS.name
    shutil.copytree(PROMPTS, prompts, dirs_exist_ok=True)
    for language in MENU_WORD:
        catalog = prompts / f"{language}.yaml"
        shipped = (PROMPTS / catalog.name).read_text(encoding="utf-8")
        # The generated prompts go first under `prompts:` (other sections, `phrases:`, follow it).
        at = shipped.index(_PROMPTS_START) + len(_PROMPTS_START)
        generated = _catalog_yaml(language, menus)
        catalog.write_text(shipped[:at] + generated + shipped[at:], encoding="utf-8")
    return rules, prompts
