"""The one home for writing (and checksumming, and reading CSV) files in the course helpers.

Writes are *atomic*: the bytes go to a temporary file in the target's folder
(``.<name>.<random>.tmp``), are flushed and ``fsync``-ed, the temporary file is
renamed over the target with ``os.replace`` and the folder is ``fsync``-ed, so a
reader (or a rerun after a crash or ``kill -9``) sees either the old file or the
complete new one, never a torn one. If anything fails on the way -- a full disk
(``ENOSPC``) in ``write`` or ``fsync``, a permission error, ``KeyboardInterrupt`` --
the temporary file is removed before the error propagates. A process killed with
``kill -9`` cannot clean up; :func:`remove_stale_temps` removes what such a process
left next to a target (the pull calls it while it holds its lock).

CSV reading (:func:`read_csv`) turns pandas' bare errors into :class:`CSVFormatError`
naming the file (and the line, where known).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:  # POSIX (Linux, macOS, Binder)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

PathLike = str | os.PathLike[str]

_TMP_SUFFIX = ".tmp"


def sha256_file(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks), as written into manifests."""
    digest = hashlib.sha256()
    with open(Path(path), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(path: PathLike) -> None:
    """``fsync`` a folder so that a rename or unlink inside it survives a power cut.

    A no-op where folders cannot be opened (Windows).
    """
    try:
        fd = os.open(Path(path), os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _create_temp(path: Path) -> tuple[int, Path]:
    """Create ``.<name>.<8 hex digits>.tmp`` beside ``path`` exclusively; return (fd, temp path)."""
    while True:
        tmp = path.with_name(f"{_temp_prefix(path)}{secrets.token_hex(4)}{_TMP_SUFFIX}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), tmp
        except FileExistsError:  # pragma: no cover - 1 in 4 billion
            continue


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring); create its folder.

    The file gets the usual permissions (``0o666`` minus the umask).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OSError: e.g. ``ENOSPC`` when the disk is full; the temporary file is gone
            and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` atomically, encoded with ``encoding``; line ends are written as given."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: PathLike, obj: Any, *, indent: int | None = 2, sort_keys: bool = False) -> Path:
    """Write ``obj`` as UTF-8 JSON (plus a final newline) atomically.

    Raises:
        ValueError: ``obj`` holds NaN or infinity (not valid JSON); nothing is written.
        TypeError: ``obj`` is not JSON-serialisable; nothing is written.
    """
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def move_into_place(src: PathLike, dst: PathLike) -> Path:
    """Rename a complete, already ``fsync``-ed file ``src`` over ``dst`` (``os.replace``), then
    ``fsync`` the folder. Both must be in the same folder (same file system)."""
    dst = Path(dst)
    os.replace(src, dst)
    fsync_dir(dst.parent)
    return dst


def remove_stale_temps(path: PathLike) -> list[Path]:
    """Delete temporary files that an interrupted :func:`atomic_write_bytes` left for ``path``.

    Only call this while no other process writes ``path`` (e.g. holding its lock).

    Returns:
        The removed files.
    """
    path = Path(path)
    removed = []
    pattern = re.compile(re.escape(_temp_prefix(path)) + r"[0-9a-f]{8}" + re.escape(_TMP_SUFFIX))
    for tmp in path.parent.glob(f"{_temp_prefix(path)}*{_TMP_SUFFIX}"):
        if pattern.fullmatch(tmp.name):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


class FileLockedError(RuntimeError):
    """Another process holds the lock. Attributes: ``path`` (the lock file), ``holder`` (its PID text)."""

    def __init__(self, path: Path, holder: str, waited: float) -> None:
        self.path = path
        self.holder = holder
        self.waited = waited
        super().__init__(f"{path} is locked by process {holder or '?'} (waited {waited:g} s)")


def _try_lock(fd: int) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    import msvcrt  # pragma: no cover - Windows

    try:  # pragma: no cover
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:  # pragma: no cover
        return False
    return True  # pragma: no cover


@contextmanager
def exclusive_lock(path: PathLike, wait: float = 0.0, poll: float = 0.1) -> Iterator[Path]:
    """Hold an exclusive lock on the lock file ``path`` (``fcntl.flock``) for the ``with`` block.

    The lock file holds the PID of its holder (for the error message) and is deleted on
    release. The kernel drops the lock when its holder dies, even by ``kill -9``, so a
    crashed process never blocks the next one; a left-over lock file is simply reused.

    Args:
        path: the lock file (created if needed), e.g. ``<name>.lock`` beside the file to guard.
        wait: seconds to wait for another holder to finish; 0 fails at once.
        poll: seconds between attempts while waiting.

    Raises:
        FileLockedError: still locked after ``wait`` seconds; names the holder's PID.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if _try_lock(fd):
            try:  # the holder before us may have deleted the file we locked: then lock the new one
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
            continue
        try:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        except OSError:  # pragma: no cover
            holder = ""
        os.close(fd)
        waited = time.monotonic() - t0
        if waited >= wait:
            raise FileLockedError(path, holder, round(waited, 1))
        time.sleep(min(poll, max(wait - waited, 0.0)))
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        path.unlink(missing_ok=True)  # still holding the lock: nobody else can be using this file
        os.close(fd)


class CSVFormatError(ValueError):
    """A CSV file cannot be read as CSV text; the message names the file (and line, where known)."""


_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)


def read_csv_text(path: PathLike) -> str:
    """The text of a UTF-8 CSV file (a UTF-8 byte-order mark is dropped).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CSVFormatError: the file is empty, UTF-16/32 encoded, or not valid UTF-8 (e.g.
            Latin-1); the message names the file, the line and the offending byte.
    """
    path = Path(path)
    raw = path.read_bytes()
    if not raw.strip():
        raise CSVFormatError(f"{path}: the file is empty ({len(raw)} bytes); expected a CSV header line")
    if raw.startswith(_UTF16_BOMS):
        raise CSVFormatError(
            f"{path}: the file is UTF-16/UTF-32 encoded (byte-order mark {raw[:2]!r}); save it as UTF-8"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise CSVFormatError(
            f"{path}: line {line} is not UTF-8 text (byte {raw[exc.start : exc.start + 1]!r} at offset "
            f"{exc.start}; Latin-1/Windows-1252 file?); save it as UTF-8"
        ) from None


def read_csv(path: PathLike, **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_csv`` of a UTF-8 file whose errors name the file and line.

    Args:
        path: the CSV file.
        **kwargs: passed to :func:`pandas.read_csv` (``encoding`` is not accepted: the
            course's CSVs are UTF-8).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CSVFormatError: empty file, wrong encoding (see :func:`read_csv_text`), or a row
            pandas cannot tokenize (e.g. more fields than the header), with pandas' line number.
    """
    import pandas as pd

    if "encoding" in kwargs:
        raise TypeError("read_csv reads UTF-8 only; do not pass encoding")
    text = read_csv_text(path)
    try:
        frame = pd.read_csv(io.StringIO(text), **kwargs)
    except pd.errors.EmptyDataError as exc:
        raise CSVFormatError(f"{Path(path)}: no columns to read ({exc})") from None
    except pd.errors.ParserError as exc:
        raise CSVFormatError(f"{Path(path)}: malformed CSV: {exc}") from None
    if "index_col" not in kwargs and not frame.index.equals(pd.RangeIndex(len(frame))):
        # pandas silently turns the extra leading fields of a too-long first row into an index
        # (a leading 0, 1, 2, ... column, as pandas' own to_csv writes it, is harmless: pandas 3
        # returns it as a RangeIndex, pandas 2 as an integer Index; both are accepted)
        rows = csv.reader(io.StringIO(text))
        width = len(next(rows))
        line = next((i for i, row in enumerate(rows, start=2) if len(row) > width), "?")
        raise CSVFormatError(f"{Path(path)}: malformed CSV: line {line} has more fields than the {width} of the header")
    return frame


def require_regular_file(path: PathLike, what: str = "file") -> Path:
    """``path`` if it is a regular file (a symlink to one is fine), checked *without opening it*.

    Opening a named pipe (FIFO) blocks until a writer appears, and a device or socket
    is no file to read: a loader that opened such a path would hang or read garbage.
    ``os.stat`` does not open the path.

    Raises:
        FileNotFoundError: nothing at ``path`` (naming ``what`` and the path).
        IsADirectoryError: ``path`` is a directory.
        ValueError: ``path`` is a FIFO, socket, or device ("not a regular file").
    """
    import stat

    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{what} {path} is a directory, not a file")
    if not stat.S_ISREG(mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise ValueError(f"{what} {path} is not a regular file but {kind}; refused without opening it")
    return path


def read_json(path: PathLike, hint: str = "") -> Any:
    """Parse a UTF-8 JSON file; a ValueError names the file (and line and column of a JSON error).

    ``hint`` is appended to the JSON-error message (e.g. how to regenerate the file).
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}){hint}") from None
