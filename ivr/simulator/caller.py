"""What the simulated caller does: keys to press, pauses, speech for a voicemail, hanging up.

A script is a comma-separated list, taken in order at each menu (`<Gather>`) or recording:

    2        press 2 (several characters: "104#" presses them in turn)
    w10      press nothing for 10 seconds, then go on with the next item; the call goes on meanwhile
             (menus time out, hold rounds follow each other), and a key right after a wait is
             pressed the moment the wait ends, cutting off the prompt then playing
    t        press nothing at this menu: let it time out
    r12      at a recording, speak for 12 seconds (at a menu: skipped)
    h        hang up now;  h30: hang up 30 seconds from now, whatever is happening
    code     key the code the simulated exchange last sent to this caller (`--exchange`); nothing
             sent: the menu times out
    s        say the next of the texts given with the script (`--say TEXT`, a scenario's `say:`),
             as Twilio hears speech: at a `<Gather>` that listens, `SpeechResult` and `Confidence`
             are posted; at one that takes keys only, the words are silence

At a menu the caller listens to its prompts to the end, then acts; a wait that is the next item
when a menu starts starts then, so `w3,1` presses 1 three seconds into the menu's prompt. When the
script runs out the caller stays on the line, silent, until the call ends or the simulator's
time limit for one call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Press:
    digits: str


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Silence:
    """Let this menu time out."""


@dataclass(frozen=True)
class Speak:
    seconds: int


@dataclass(frozen=True)
class Utter:
    """Words said at a menu, as Twilio's speech recognition would transcribe them."""

    text: str
    confidence: float = 0.9
    """What Twilio sends as `Confidence` (0-1)."""


@dataclass(frozen=True)
class HangUp:
    after: float = 0.0


@dataclass(frozen=True)
class KeyCode:
    """Key the one-time code the exchange sent (`ivr.simulator.exchange`)."""


Step = Press | Wait | Silence | Speak | Utter | HangUp | KeyCode

_TOKEN = re.compile(
    r"""^(?: (?P<keys>[0-9*#]+)
           | w(?P<wait>\d+(?:\.\d+)?)
           | (?P<t>t)
           | r(?P<speak>\d+)
           | (?P<code>code)
           | (?P<say>s)
           | h(?P<hang>\d+(?:\.\d+)?)? )$""",
    re.VERBOSE,
)


class ScriptError(ValueError):
    """A caller script item that is not one of the forms above."""


def parse_script(text: str, said: Sequence[Utter] = ()) -> list[Step]:
    """'2,w10,1,t,r5,h30' -> the steps it names; raises ScriptError naming the bad item.

    Each `s` says the next of `said`, in order; an `s` with nothing left to say, or words left
    over, is an error: the script and its texts would not say what their author meant."""
    steps: list[Step] = []
    words = list(said)
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        match = _TOKEN.match(item)
        if not match:
            raise ScriptError(
                f"{item!r} is not a key (0-9 * #), a wait (w10), a time-out (t), "
                "speech (r12), a hang-up (h, h30), the code the exchange sent (code) or words "
                "to say (s)"
            )
        if match["keys"]:
            steps.append(Press(match["keys"]))
        elif match["wait"]:
            steps.append(Wait(float(match["wait"])))
        elif match["t"]:
            steps.append(Silence())
        elif match["speak"]:
            steps.append(Speak(int(match["speak"])))
        elif match["code"]:
            steps.append(KeyCode())
        elif match["say"]:
            if not words:
                raise ScriptError(
                    "an s has nothing left to say: give one text to say (--say TEXT, or a "
                    "scenario's say:) for each s of the script"
                )
            steps.append(words.pop(0))
        else:
            steps.append(HangUp(float(match["hang"] or 0)))
    if words:
        raise ScriptError(
            f"{len(words)} text(s) to say but no s left in the script to say them "
            f"(first: {words[0].text!r})"
        )
    return steps


class Caller(Protocol):
    def next_step(self, at: str, heard: list[str]) -> Step | None:
        """The caller's next step at a menu (`at="menu"`) or recording (`"record"`); None: silent."""
        ...


class ScriptedCaller:
    """Follows a script (see the module docstring); `code` is the latest code the exchange sent."""

    def __init__(self, steps: list[Step], code: Callable[[], str | None] | None = None) -> None:
        self.steps = list(steps)
        self._code = code

    def wait_first(self) -> float | None:
        """At the start of a menu: the wait the script goes on with, taken now (it runs while the
        prompts play), or None when the next item is not a wait."""
        if self.steps and isinstance(self.steps[0], Wait):
            return self.steps.pop(0).seconds  # type: ignore[union-attr]
        return None

    def next_step(self, at: str, heard: list[str]) -> Step | None:
        while self.steps:
            step = self.steps.pop(0)
            if at == "menu" and isinstance(step, Speak):
                continue  # speech is for recordings; at a menu it means nothing
            if isinstance(step, KeyCode):
                code = self._code() if self._code is not None else None
                return Press(code) if code else Silence()
            return step
        return None


class InteractiveCaller:
    """Asks a person at the terminal what to do at each menu and recording."""

    def __init__(self, ask: Callable[[str], str] | None = None) -> None:
        self._ask = ask

    def next_step(self, at: str, heard: list[str]) -> Step | None:
        prompt = "keys (or t, w10, h, s WORDS) > " if at == "menu" else "seconds to speak (or h) > "
        while True:
            answer = (self._ask or input)(prompt).strip()
            if at == "menu" and answer.startswith("s ") and answer[2:].strip():
                return Utter(answer[2:].strip())
            if at == "record" and answer.isdigit():
                answer = f"r{answer}"
            try:
                steps = parse_script(answer or "t")
            except ScriptError as exc:
                print(exc)
                continue
            return steps[0] if steps else None
