"""Atomic file writes: a temporary name in the same folder, then :func:`os.replace`.

Every file the package writes (tables, JSON records, figures, checkpoints,
models, cache entries) goes through :func:`atomic_path`, so a reader sees
either the old file or the complete new one, never half a file, and a failed
or interrupted write leaves no temporary file behind.

The temporary file lives beside the target because :func:`os.replace` is only
atomic within one file system.  Its name starts with a dot (hidden, and not
matched by globs such as ``epoch-*.npz``) and ends in ``.tmp`` plus an optional
suffix, for writers that insist on an extension (``np.save`` adds ``.npy``,
Keras wants ``.keras``).

Folder-level swaps (a bundle folder in :func:`esc_lib.predict.save_bundle`, an
extracted archive in :mod:`esc_lib.data.download`) are not covered here.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "write_bytes", "write_text"]

#: How many random names to try before giving up (as :data:`tempfile.TMP_MAX`, but
#: with 32 random bits a collision is already unlikely on the first try).
_ATTEMPTS = 100


def _create_temporary(path: Path, suffix: str) -> Path:
    """Create an empty, new file beside ``path`` and return its name.

    Like :func:`tempfile.mkstemp` (``O_EXCL``, so never an existing file) but
    with mode ``0o666`` minus the umask, so the final file gets the same
    permissions a plain ``open(path, "w")`` would give it, not ``0o600``.
    """
    for _ in range(_ATTEMPTS):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{suffix}")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        os.close(descriptor)
        return temporary
    raise FileExistsError(f"{path}: no free temporary name after {_ATTEMPTS} attempts")


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "", *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` if the block succeeds.

    Parameters
    ----------
    path : str or Path
        The file to write.  Missing parent folders are created.  An existing
        file is replaced only when the block completes.
    suffix : str
        Appended to the temporary name (e.g. ``".keras"``, ``".npy"``) for
        writers that choose the format, or add an extension, by the name.
        Must not contain a path separator.
    fsync : bool
        Flush the temporary file to disk before the rename, so that a power
        loss cannot leave an empty file under the final name.  Caches whose
        entries are cheap to recompute may pass ``False``.

    Yields
    ------
    temporary : Path
        An empty file, created for this call only, in the folder of ``path``.
        Write (or overwrite) it in the block.

    Raises
    ------
    ValueError
        If ``path`` has no file name or ``suffix`` holds a path separator.
    OSError
        If the folder cannot be created or the file cannot be written or
        renamed; the temporary file is removed and ``path`` is left as it was.
        Any exception raised in the block (including ``KeyboardInterrupt``)
        likewise removes the temporary file and propagates unchanged.

    Examples
    --------
    >>> with atomic_path("results/model.keras", suffix=".keras") as temporary:  # doctest: +SKIP
    ...     model.save(temporary)
    """
    path = Path(path)
    if not path.name or path.name in {".", ".."}:
        raise ValueError(f"path must name a file, got {str(path)!r}")
    if not isinstance(suffix, str) or "/" in suffix or os.sep in suffix:
        raise ValueError(f"suffix must be a plain string without path separators, got {suffix!r}")
    try:
        temporary = _create_temporary(path, suffix)
    except (FileNotFoundError, NotADirectoryError):
        # Create folders only when needed: a mkdir per write would cost more than
        # a small cache entry.  mkdir raises the usual error if a parent is a file.
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = _create_temporary(path, suffix)
    try:
        yield temporary
        if fsync:
            _fsync(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`).

    Parameters
    ----------
    path : str or Path
        The file to write; missing parent folders are created.
    data : bytes-like
        The whole content.
    fsync : bool
        Flush to disk before the rename.

    Returns
    -------
    path : Path

    Raises
    ------
    TypeError
        If ``data`` is a ``str`` (use :func:`write_text`).
    """
    if isinstance(data, str):
        raise TypeError("data must be bytes, not str (use write_text for text)")
    path = Path(path)
    with atomic_path(path, fsync=fsync) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
    return path


def write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8", fsync: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`).

    Line endings are written as given (no ``\\n`` translation on any platform).

    Parameters
    ----------
    path : str or Path
        The file to write; missing parent folders are created.
    text : str
        The whole content.
    encoding : str
        Text encoding.
    fsync : bool
        Flush to disk before the rename.

    Returns
    -------
    path : Path

    Raises
    ------
    TypeError
        If ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return write_bytes(path, text.encode(encoding), fsync=fsync)
