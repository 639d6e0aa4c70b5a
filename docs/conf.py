"""Sphinx configuration of the docs site: Markdown pages read by MyST, built strictly.

Build: `python -m sphinx -W --keep-going -n docs build/docs` (CI and tests/test_docs.py). `-W` makes
every warning an error: a link to a page or file that does not exist, a page in no table of contents,
a heading that skips a level.
"""

project = "ivr"
author = "the ivr maintainers"
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["screenshots", "*.yaml"]
html_theme = "alabaster"
html_title = "ivr — the support line of a crypto exchange"
myst_heading_anchors = 3
# Every kind of warning counts; none is silenced.
suppress_warnings: list[str] = []
