"""The length of audio clips, read from the file itself (mutagen)."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from ivr.audio import clip_seconds, is_remote, spoken_length

_MP3_FRAME = bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(413)
"""One MPEG-1 Layer III frame: 128 kbit/s, 44.1 kHz, 1152 samples, 417 bytes (silent)."""


def write_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(rate)
        clip.writeframes(bytes(2 * round(seconds * rate)))
    return path


def write_mp3(path: Path, seconds: float) -> Path:
    path.write_bytes(_MP3_FRAME * round(seconds * 44100 / 1152))
    return path


def test_a_wav_file_is_measured(tmp_path: Path) -> None:
    assert clip_seconds(write_wav(tmp_path / "hold.wav", 3)) == 3.0


def test_an_mp3_file_is_measured(tmp_path: Path) -> None:
    seconds = clip_seconds(write_mp3(tmp_path / "hold.mp3", 12))
    assert seconds == pytest.approx(12, abs=0.05)


@pytest.mark.parametrize(
    "content", [b"ID3fake", b"", b"not audio at all"], ids=["bad-id3", "empty", "text"]
)
def test_a_file_that_is_not_audio_has_no_length(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "greeting.mp3"
    path.write_bytes(content)
    assert clip_seconds(path) is None


def test_a_missing_file_has_no_length(tmp_path: Path) -> None:
    assert clip_seconds(tmp_path / "nowhere.mp3") is None


@pytest.mark.parametrize(
    ("location", "remote"),
    [
        ("http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3", True),
        ("HTTPS://example.com/hold.mp3", True),
        ("/voice/audio/en-US/hold.mp3", False),
    ],
)
def test_remote_locations(location: str, remote: bool) -> None:
    assert is_remote(location) is remote


@pytest.mark.parametrize(
    ("seconds", "text"), [(45, "45 s"), (59.6, "1 min"), (252, "4 min 12 s"), (120, "2 min")]
)
def test_lengths_read_as_an_admin_says_them(seconds: float, text: str) -> None:
    assert spoken_length(seconds) == text
