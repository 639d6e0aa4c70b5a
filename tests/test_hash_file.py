"""The file of argon2 hashes both the PIN store and the admin accounts keep."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ivr.hash_file import HashFileError, read_hashes, write_hashes

HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"


def test_what_is_written_is_read_back_and_only_its_owner_may_read_it(tmp_path: Path) -> None:
    path = tmp_path / "instance" / "pins.json"
    assert read_hashes(path, "agents", "a PIN file", "ivr agents") == {}  # no file yet: nobody
    write_hashes(path, "agents", {"zoe": HASH, "anna": HASH})
    assert read_hashes(path, "agents", "a PIN file", "ivr agents") == {"anna": HASH, "zoe": HASH}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.joinpath("instance").iterdir()) == [path]  # no temporary file left


@pytest.mark.parametrize(
    "text",
    ['{"admins": {"ada": "' + HASH + '"}}', '{"agents": {"anna": "1234"}}', "not json", "[]"],
)
def test_a_file_this_service_did_not_write_is_refused_saying_who_writes_it(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "pins.json"
    path.write_text(text)
    with pytest.raises(HashFileError, match=r"not a PIN file written by `ivr agents`"):
        read_hashes(path, "agents", "a PIN file", "ivr agents")


def test_a_new_secret_is_typed_twice_keeps_a_password_s_spaces_and_needs_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ivr.hash_file import read_new_secret

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    typed = iter([" correct horse ", " correct horse "])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(typed))
    assert read_new_secret("password", "--password-stdin", from_stdin=False, strip=False) == (
        " correct horse "
    )
    typed = iter(["581937", "581938"])
    assert read_new_secret("PIN", "--pin-stdin", from_stdin=False, strip=True) is None
    assert "the two PINs differ: nothing changed" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert read_new_secret("password", "--password-stdin", from_stdin=False, strip=False) is None
    assert "give --password-stdin to read the password from it" in capsys.readouterr().err
