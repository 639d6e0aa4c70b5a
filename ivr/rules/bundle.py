"""The rules and the prompt catalogs of one version, as the call flow runs on them.

Made by `ivr.rules.check.load_bundle` once the rules passed every check; held by the service
(`ivr.rules.live`), the simulator and the tests. Importing it loads no checker, no YAML parser and
no audio library: the pure call flow takes a `Bundle` (`import ivr.flow` stays light).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ivr.rules.prompts import Prompts
from ivr.rules.schema import Rules
from ivr.speech.router import Router

if TYPE_CHECKING:
    from ivr.rules.loader import Problem


@dataclass(frozen=True)
class Bundle:
    """Rules plus the prompt catalogs they speak with: everything the call flow needs."""

    rules: Rules
    prompts: Prompts
    warnings: tuple[Problem, ...] = ()
    """What `ivr check` prints as `warning:` lines; the rules run anyway."""
    router: Router = field(init=False, repr=False, compare=False)
    """Where speech at the listening menus leads, built once for this version (`ivr.speech`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "router", Router(self.rules, self.prompts))
