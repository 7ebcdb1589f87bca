"""One process at a time in a folder it writes: a run folder, a dataset being downloaded.

Two runs given the same ``--run-name`` would train the same models into one folder, and two
downloads into one data folder would append to one ``.part`` file.  So the process that writes
such a folder holds its lock, and a second one stops at once with one line that names the
folder and the process holding it::

    with locks.hold(run_dir, "run folder", advice="give this run another --run-name"):
        ...  # only this process writes run_dir

The lock is the operating system's (``flock`` through the kept library :mod:`filelock`) on a
hidden file beside the folder, ``<parent>/.<name>.lock``.  It belongs to an open file, so a
process that ends in any way -- killed with SIGKILL included -- releases it: the lock file a
killed process leaves behind never blocks the next one, which takes it over.  The holder
writes who it is (process id, host, command, since when) into that file; that is where a
second process reads the process it names.  A clean release removes the file (while still
holding it, so a process that opened it meanwhile sees a removed file and tries again).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

__all__ = ["FolderBusyError", "lock_path", "holder", "acquire", "release", "hold"]


class FolderBusyError(RuntimeError):
    """Another process holds the lock of a folder; the message names the folder and the process.

    Attributes
    ----------
    folder : Path
    pid : int or None
        The holding process, when it recorded itself (it does so right after taking the lock).
    """

    def __init__(self, message: str, folder: Path, pid: int | None):
        super().__init__(message)
        self.folder, self.pid = folder, pid


def lock_path(folder: str | Path) -> Path:
    """The lock file of ``folder``: ``<parent>/.<name>.lock`` (beside it, so the folder itself need not exist)."""
    folder = Path(folder).expanduser().absolute()
    return folder.with_name(f".{folder.name}.lock")


def holder(folder: str | Path) -> dict | None:
    """What the process holding (or that last held) ``folder``'s lock recorded: ``pid``, ``host``, ``command``, ``since``.

    ``None`` when there is no lock file or it records nothing readable (a holder that has just
    taken the lock and not yet written).  A record alone does not mean the lock is held: a killed
    holder leaves its record behind; :func:`acquire` is what tells.
    """
    try:
        record = json.loads(lock_path(folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _record() -> bytes:
    command = " ".join([Path(sys.executable).name, *sys.argv])
    record = {"pid": os.getpid(), "host": socket.gethostname(), "command": command[:300],
              "since": datetime.now().isoformat(timespec="seconds")}
    return json.dumps(record).encode("utf-8")


def _write_record(descriptor: int) -> None:
    # filelock hands the locked file's descriptor over once the lock is held.
    data = _record()
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, data, 0)


def _busy(folder: Path, what: str, advice: str) -> FolderBusyError:
    record = holder(folder) or {}
    pid = record.get("pid") if isinstance(record.get("pid"), int) else None
    if pid is None:
        by = "another process (it has not recorded its id yet)"
    else:
        host = record.get("host")
        where = f" on {host}" if host and host != socket.gethostname() else ""
        by = f"process {pid}{where} ({record.get('command', '?')}, since {record.get('since', '?')})"
        if pid == os.getpid() and not where:
            by = f"this process ({pid}) already"
    stop = f"wait for it to end or stop it (kill {pid})" if pid is not None else "wait for it to end"
    message = f"{what} {folder} is in use by {by}; {stop}" + (f", or {advice}" if advice else "")
    return FolderBusyError(" ".join(message.split()), folder, pid)


def acquire(folder: str | Path, what: str = "folder", advice: str = ""):
    """Take ``folder``'s lock now or raise; release it with :func:`release` (or use :func:`hold`).

    Parameters
    ----------
    folder : str or Path
        The folder to hold (it need not exist; its parent is created).
    what : str
        What the folder is, for the message ("run folder", "ESC-50 download").
    advice : str
        What else the user can do, appended to the message ("give this run another --run-name").

    Returns
    -------
    filelock.FileLock or None
        The held lock; ``None`` where the file system has no locks (a warning says so, and the
        folder is used unlocked rather than not at all).

    Raises
    ------
    FolderBusyError
        Another process holds the lock (at once, no waiting): one line naming the folder and it.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder).expanduser().absolute()
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=0, thread_local=False, fallback_to_soft=False, on_acquired=_write_record)
    try:
        lock.acquire()
    except Timeout:
        raise _busy(folder, what, advice) from None
    except OSError as error:  # a file system without flock (some network and FUSE mounts)
        warnings.warn(f"{path}: cannot lock {what} {folder} ({error.strerror or error}); "
                      "a second process on it would not be stopped", RuntimeWarning, stacklevel=2)
        return None
    return lock


def release(lock) -> None:
    """Give up a lock from :func:`acquire`, removing its file first (``None`` does nothing)."""
    if lock is None or not lock.is_locked:
        return
    try:
        os.unlink(lock.lock_file)  # still held: one who opened it meanwhile sees it removed and tries again
    except OSError:
        pass
    lock.release()


@contextmanager
def hold(folder: str | Path, what: str = "folder", advice: str = "") -> Iterator[Path]:
    """Hold ``folder``'s lock for the block (see :func:`acquire`); yields the folder as an absolute path."""
    lock = acquire(folder, what, advice)
    try:
        yield Path(folder).expanduser().absolute()
    finally:
        release(lock)
