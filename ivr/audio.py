"""How long an audio clip plays: local files are measured, remote ones have a length the rules declare.

A `<Play>` lasts as long as its audio file, so a hold round with a 4-minute clip lasts 4 minutes however
small `announce_every` is. `ivr check` uses these lengths to warn about such a queue, and measures the
recorded prompts under `voice_prompts/audio/` with the same function. Files are read with mutagen (MP3,
WAV and the other formats it knows), which reads the headers and never decodes the audio.
"""

from __future__ import annotations

from pathlib import Path

import mutagen


def is_remote(location: str) -> bool:
    """Whether an audio location is a URL Twilio fetches (so only a declared length is known)."""
    return location.lower().startswith(("http://", "https://"))


def clip_seconds(path: Path) -> float | None:
    """The playing time of a local audio file in seconds; None when it cannot be read as audio."""
    try:
        audio = mutagen.File(path)
    except (mutagen.MutagenError, OSError):
        return None
    length = getattr(getattr(audio, "info", None), "length", None)
    if not isinstance(length, int | float) or length <= 0:
        return None
    return float(length)


def spoken_length(seconds: float) -> str:
    """A length as an admin reads it: "45 s", "4 min 12 s"."""
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    if not minutes:
        return f"{whole} s"
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"
