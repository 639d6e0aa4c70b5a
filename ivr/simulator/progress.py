"""Progress of the simulator's long runs (`--explore`, `--load`, `--calls`, `--scenario`), which
otherwise print nothing for many seconds: a tqdm bar on stderr, only when stderr is a terminal and
the output is for people (not `--json`, not `--verbose`, whose records show the run as it goes).
Anywhere else it writes nothing at all, so a file or a pipe gets exactly what it got before.

tqdm rather than rich: one small package without dependencies of its own, which draws a bar on any
terminal and keeps out of the way of what the command prints on stdout (`Progress.write`)."""

from __future__ import annotations

import sys
from typing import NoReturn, TextIO

from tqdm import tqdm


def wanted(as_json: bool, verbose: bool = False) -> bool:
    """Whether to show progress: stderr is a terminal, and stdout is not records of the run."""
    return not as_json and not verbose and sys.stderr.isatty()


class Progress:
    """One bar (a count of `unit`, out of `total` when known), or nothing when not `shown`."""

    def __init__(self, shown: bool, what: str, unit: str, total: int | None = None) -> None:
        self._bar: tqdm[NoReturn] | None = None
        if shown:
            self._bar = tqdm(
                total=total, desc=what, unit=f" {unit}", file=sys.stderr, leave=False, ascii=False
            )

    def expect(self, total: int) -> None:
        """The total, once it is known (a load run's calls, after they are drawn)."""
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def advance(self, by: int = 1) -> None:
        """`by` more done."""
        if self._bar is not None:
            self._bar.update(by)

    def write(self, line: str, out: TextIO) -> None:
        """Print `line` on `out` without tearing the bar (it is drawn again below the line)."""
        if self._bar is None:
            print(line, file=out, flush=True)
        else:
            self._bar.write(line, file=out)
            out.flush()

    def close(self) -> None:
        """Take the bar off the terminal."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
