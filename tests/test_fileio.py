"""Tests for helpers.fileio: atomic writes (also when the disk is full), the lock, CSV reading."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

import pytest

from helpers import fileio


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_writes_create_replace_and_use_normal_permissions(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.json"
    assert fileio.atomic_write_json(target, {"b": 1, "a": [1.5]}) == target  # folder created
    assert target.read_text(encoding="utf-8") == '{\n  "b": 1,\n  "a": [\n    1.5\n  ]\n}\n'
    fileio.atomic_write_text(target, "x,y\r\n1,é\n")
    assert target.read_bytes() == "x,y\r\n1,é\n".encode()  # line ends kept as given, UTF-8
    fileio.atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01" and _names(target.parent) == ["a.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    assert fileio.sha256_file(target) == hashlib.sha256(b"\x00\x01").hexdigest()


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing) -> None:
    """A full disk (ENOSPC) in write/fsync, or an interrupt at the rename: old file intact, no temp."""
    target = tmp_path / "state.json"
    target.write_text("old")

    def disk_full(*args, **kwargs):
        if failing == "replace":
            raise KeyboardInterrupt
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, failing, disk_full)
    with pytest.raises((OSError, KeyboardInterrupt)):
        fileio.atomic_write_bytes(target, b"new" * 100_000)
    monkeypatch.undo()
    assert target.read_text() == "old" and _names(tmp_path) == ["state.json"]


def test_json_with_nan_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        fileio.atomic_write_json(tmp_path / "x.json", {"a": float("nan")})
    assert _names(tmp_path) == []


def test_remove_stale_temps_only_touches_the_targets_temps(tmp_path: Path) -> None:
    target = tmp_path / "psc.csv"
    (tmp_path / ".psc.csv.0a1b2c3d.tmp").write_text("half")
    (tmp_path / ".psc.csv.partial.0a1b2c3d.tmp").write_text("other target")  # belongs to psc.csv.partial
    (tmp_path / "psc.csv").write_text("data")
    removed = fileio.remove_stale_temps(target)
    assert [p.name for p in removed] == [".psc.csv.0a1b2c3d.tmp"]
    assert _names(tmp_path) == [".psc.csv.partial.0a1b2c3d.tmp", "psc.csv"]


def test_move_into_place(tmp_path: Path) -> None:
    (tmp_path / "a.partial").write_text("done")
    fileio.move_into_place(tmp_path / "a.partial", tmp_path / "a.csv")
    assert _names(tmp_path) == ["a.csv"] and (tmp_path / "a.csv").read_text() == "done"


def test_exclusive_lock_refuses_a_second_holder_and_cleans_up(tmp_path: Path) -> None:
    lock = tmp_path / "x.csv.lock"
    with fileio.exclusive_lock(lock) as held:
        assert held == lock and lock.read_text() == f"{os.getpid()}\n"
        with pytest.raises(fileio.FileLockedError, match=rf"locked by process {os.getpid()} \(waited 0\.2 s\)"):
            with fileio.exclusive_lock(lock, wait=0.2, poll=0.05):
                pass
    assert not lock.exists()
    lock.write_text("12345\n")  # left over by a killed process: no lock is held on it
    with fileio.exclusive_lock(lock):
        assert lock.read_text() == f"{os.getpid()}\n"
    assert not lock.exists()


def test_read_csv_passes_options_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,\n", encoding="utf-8")
    frame = fileio.read_csv(path, dtype=str, keep_default_na=False)
    assert frame.to_dict("records") == [{"a": "1", "b": ""}]
    path.write_text("a,b\n1,2,3,4\n", encoding="utf-8")
    too_long = rf"{path}: malformed CSV: line 2 has more fields than the 2 of the header"
    with pytest.raises(fileio.CSVFormatError, match=too_long):
        fileio.read_csv(path)
    with pytest.raises(FileNotFoundError):
        fileio.read_csv(tmp_path / "absent.csv")
    with pytest.raises(TypeError, match="UTF-8"):
        fileio.read_csv(path, encoding="latin-1")


def test_read_csv_accepts_a_leading_row_number_column_under_pandas_2_and_3(tmp_path: Path, monkeypatch) -> None:
    """matminer's CSVs carry an unnamed 0, 1, 2, ... column; pandas 3 returns it as a RangeIndex, pandas 2
    (the robocrys build environment) as an integer Index. Both are harmless and both must be read."""
    import pandas as pd

    path = tmp_path / "t.csv"
    path.write_text("# a comment, with, commas\na,b\n0,1,2\n1,3,4\n", encoding="utf-8")
    frame = fileio.read_csv(path, comment="#")
    assert frame.to_dict("records") == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    real = pd.read_csv

    def pandas2_read_csv(*args, **kwargs):  # pandas 2's result for the same file
        out = real(*args, **kwargs)
        out.index = pd.Index(list(range(len(out))), dtype="int64")
        return out

    monkeypatch.setattr(pd, "read_csv", pandas2_read_csv)
    assert fileio.read_csv(path, comment="#").to_dict("records") == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]


def test_require_regular_file_refuses_pipes_without_opening_them(tmp_path: Path) -> None:
    """Issue 19 item 10: loaders opened a FIFO at a checkpoint path and waited forever."""
    import socket

    regular = tmp_path / "a.json"
    regular.write_text("{}")
    assert fileio.require_regular_file(regular) == regular
    link = tmp_path / "link.json"
    link.symlink_to(regular)
    assert fileio.require_regular_file(link, "config") == link  # a link to a file is a file
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"config .*pipe\.json is not a regular file but a named pipe"):
        fileio.require_regular_file(fifo, "config")  # returns at once: nothing opened the pipe
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(ValueError, match="a socket"):
            fileio.require_regular_file(sock_path)
    with pytest.raises(ValueError, match="a device"):
        fileio.require_regular_file("/dev/null")
    with pytest.raises(FileNotFoundError, match="missing.json does not exist"):
        fileio.require_regular_file(tmp_path / "missing.json")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        fileio.require_regular_file(tmp_path)
