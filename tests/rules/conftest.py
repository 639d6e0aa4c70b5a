"""Fixtures of the rules tests."""

from __future__ import annotations

import pytest

from ivr.rules import loader


@pytest.fixture(
    params=[
        pytest.param(loader.PURE_LOADER, id="pure-python"),
        pytest.param(
            loader.FAST_LOADER,
            id="libyaml",
            marks=pytest.mark.skipif(loader.FAST_LOADER is None, reason="PyYAML without libyaml"),
        ),
    ]
)
def each_yaml_loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the test once with the pure-Python YAML parser and once with libyaml's."""
    monkeypatch.setattr(loader, "YAML_LOADER", request.param)
