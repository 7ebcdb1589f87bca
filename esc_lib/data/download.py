"""Verified downloads of ESC-50 (GitHub) and ESC-US (Harvard Dataverse).

Every transfer streams into ``<file>.part`` with a progress bar, resumes an
interrupted transfer with an HTTP ``Range`` request (and starts again from
zero when the server ignores it), checks the size and checksum when they are
known, and only then renames the file to its final name: a half-downloaded
file is never taken as complete.  Archives are extracted by
:func:`safe_extract`, which refuses members that would land outside the
target folder.

ESC-50
    :func:`download_esc50` fetches the GitHub archive of one pinned commit
    (:data:`ESC50_COMMIT`; the ``master`` archive changes with every commit, so
    a checksum of it would be useless), extracts it and runs
    :func:`verify_esc50` (sha256 of ``meta/esc50.csv``, 2000 rows, 400 per
    fold, 40 per class, every clip present, 5 s at 44.1 kHz mono) before the
    folder is moved into place.  A verified folder carries a marker, so a
    second call does no network access.

ESC-10 and a pool of ESC-50's other classes
    :func:`download_esc10` downloads ESC-50 (as above) and splits it by
    :func:`esc_lib.data.datasets.esc10_split`: ESC-10's rows become a folder
    in ESC-50 layout (its metadata cut to them) and the other 40 classes'
    clips a folder of unlabeled audio, both made of links to the downloaded
    clips (hard links, else symbolic; copies only where neither is possible)
    and moved into place complete.  :func:`missing_esc10_folders` says which
    of the configured folders a run must make that way: only when no ESC-10
    is found or set.

ESC-US
    :func:`list_escus_files` reads the dataset's file list (sizes and
    checksums) from the Dataverse native API, and :func:`download_escus`
    downloads the chosen parts through the access API, verifies each against
    its listed checksum, extracts it and marks it complete.  Load the clips
    with :func:`esc_lib.data.datasets.escus_pool` (which removes ESC-50's sources).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
import zlib
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Sequence

import pandas as pd
import requests
import soundfile
import urllib3
from tqdm import tqdm  # text bars: tqdm.auto would want ipywidgets in a notebook (and warn without)

from esc_lib import atomic, config, locks
from esc_lib.data.datasets import DatasetError, esc10_split, read_metadata, resolve_clips

__all__ = [
    "ESC50_COMMIT",
    "ESC50_META_SHA256",
    "ESCUS_DOI",
    "DATAVERSE_SERVER",
    "DownloadError",
    "UnsafeArchiveError",
    "download_file",
    "file_checksum",
    "safe_extract",
    "esc50_archive_url",
    "download_esc50",
    "verify_esc50",
    "esc50_expectations",
    "download_esc10",
    "esc10_from_esc50",
    "missing_esc10_folders",
    "DataverseFile",
    "list_escus_files",
    "download_escus",
]

#: Commit of github.com/karolpiczak/ESC-50 whose archive is downloaded (the
#: WAV release with ``meta/esc50.csv``; the clips have not changed since
#: v2.0.0, later commits only edit the README's results table).
ESC50_COMMIT = "5983fb0c35e751b452e7c562d9207f27b76ddf0d"
#: sha256 of ``meta/esc50.csv`` of the ESC-50 release.
ESC50_META_SHA256 = "ca660da60191a97de289983a05821c9382d852a38a2ba8428980816b68cf6246"
#: Persistent id of ESC-US on Harvard Dataverse.
ESCUS_DOI = "doi:10.7910/DVN/YDEPUT"
#: The Dataverse installation holding ESC-US.
DATAVERSE_SERVER = config.DEFAULT_ESCUS_SERVER

_USER_AGENT = "esc_lib (research toolkit; python-requests)"
_MARKER_ESC50 = ".esc_lib-esc50.json"
#: Marker of a folder :func:`esc10_from_esc50` made: its source and how its clips are linked.
_MARKER_FROM_ESC50 = ".esc_lib-from-esc50.json"
_MARKER_DIR_ESCUS = ".esc_lib-parts"
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
#: What a second process that finds a download under way can do.
_LOCK_ADVICE = "point this run at another data folder"
_HASH_NAMES = {"md5": "md5", "sha1": "sha1", "sha-1": "sha1", "sha256": "sha256", "sha-256": "sha256",
               "sha512": "sha512", "sha-512": "sha512"}


class DownloadError(RuntimeError):
    """A transfer failed, a checksum did not match or an archive is damaged.

    The message names the URL or file and says what to do.
    """


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the target folder."""


class _RetryableError(Exception):
    """Internal: the transfer stopped early; resume it."""


# ----------------------------------------------------------------------------
# Single files
# ----------------------------------------------------------------------------


def file_checksum(path: str | Path, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """Hex digest of a file (``algorithm``: md5, sha1, sha256, sha512; Dataverse's 'SHA-1' etc. too)."""
    name = _HASH_NAMES.get(algorithm.lower())
    if name is None:
        raise ValueError(f"unsupported checksum algorithm {algorithm!r}; use one of {sorted(set(_HASH_NAMES.values()))}")
    digest = hashlib.new(name)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def _expectations(sha256, md5, checksum) -> list[tuple[str, str]]:
    expected = []
    if sha256:
        expected.append(("sha256", sha256.lower()))
    if md5:
        expected.append(("md5", md5.lower()))
    if checksum:
        algorithm, value = checksum
        if algorithm.lower() not in _HASH_NAMES:
            raise ValueError(f"unsupported checksum algorithm {algorithm!r}")
        expected.append((_HASH_NAMES[algorithm.lower()], str(value).lower()))
    return expected


def _mismatches(path: Path, expected: list[tuple[str, str]], expected_size: int | None) -> list[str]:
    problems = []
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        problems.append(f"size: expected {expected_size} bytes, got {size}")
        return problems
    for algorithm, value in expected:
        got = file_checksum(path, algorithm)
        if got != value:
            problems.append(f"{algorithm}: expected {value}, got {got}")
    return problems


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """(start, total) of a ``Content-Range: bytes start-end/total`` header."""
    match = re.match(r"bytes\s+(\d+|\*)(?:-\d+)?/(\d+|\*)", header or "")
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) != "*" else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def _transfer(session, url, part: Path, resume, progress, timeout, chunk_size, expected_size) -> None:
    """One attempt: fetch (the rest of) ``url`` into ``part``; raise _RetryableError if cut short."""
    offset = part.stat().st_size if (resume and part.exists()) else 0
    if expected_size is not None and offset > expected_size:
        part.unlink()
        offset = 0
    if expected_size is not None and offset == expected_size and offset > 0:
        return
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
        if response.status_code == 416 and offset:
            _, total = _content_range(response.headers.get("Content-Range"))
            if total == offset:
                return
            part.unlink()
            raise _RetryableError("the server refused to resume (HTTP 416); starting again")
        if response.status_code == 206 and offset:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise _RetryableError(f"the server resumed at byte {start}, not {offset}; starting again")
            mode = "ab"
            if total is None and response.headers.get("Content-Length"):
                total = offset + int(response.headers["Content-Length"])
        elif response.status_code == 200:
            mode, offset = "wb", 0
            total = int(response.headers["Content-Length"]) if response.headers.get("Content-Length") else None
        elif response.status_code in (408, 429) or response.status_code >= 500:
            raise _RetryableError(f"HTTP {response.status_code} {response.reason}")
        else:
            raise DownloadError(
                f"{url}: HTTP {response.status_code} {response.reason}; check the address "
                f"(and, for a pinned version, that it still exists)"
            )
        if total is not None:
            free = shutil.disk_usage(part.parent).free
            if total - offset > free:
                raise DownloadError(
                    f"{url}: {total - offset} bytes to download but only {free} free in {part.parent}; "
                    f"free some space or choose another destination"
                )
        with open(part, mode) as handle, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name[: -len(".part")], disable=not progress, leave=False,
        ) as bar:
            # Raw bytes, never transparently decompressed: the checksum is of the file as served.
            for block in response.raw.stream(chunk_size, decode_content=False):
                handle.write(block)
                bar.update(len(block))
    size = part.stat().st_size
    if total is not None and size < total:
        raise _RetryableError(f"connection closed after {size} of {total} bytes")


def download_file(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    md5: str | None = None,
    expected_size: int | None = None,
    resume: bool = True,
    progress: bool = True,
    session: requests.Session | None = None,
    checksum: tuple[str, str] | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``dest``, resuming and verifying.

    Bytes go to ``<dest>.part``.  A transfer cut short is resumed with an
    HTTP ``Range`` request, up to ``retries`` times in this call; the
    ``.part`` file stays, so a later call resumes too.  When the transfer is
    complete the size and checksums (if given) are checked and the file is
    renamed to ``dest``.  A ``dest`` that already exists and passes the checks
    is returned without any network access (with no checksum or size given,
    any existing ``dest`` counts: only complete files ever get that name).

    Parameters
    ----------
    url : str
    dest : str or Path
        Final file name (its folder is created).
    sha256, md5 : str, optional
        Expected hex digests.
    expected_size : int, optional
        Expected size in bytes.
    resume : bool
        Continue an existing ``.part`` file; ``False`` starts from zero.
    progress : bool
        Show a tqdm progress bar.
    session : requests.Session, optional
    checksum : (algorithm, hex digest), optional
        Another expected digest, e.g. Dataverse's ``("SHA-1", "...")``.
    retries : int >= 0
        Resumptions attempted after an interrupted transfer.
    timeout : float > 0
        Seconds to wait for the connection and for each read.

    Returns
    -------
    dest : Path

    Raises
    ------
    DownloadError
        On an HTTP error, a transfer still incomplete after the retries (the
        ``.part`` file is kept for a later resume), or a size/checksum
        mismatch (the ``.part`` file is deleted; the message gives the URL, the
        file, and the expected and actual values).
    """
    dest = Path(dest)
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries!r}")
    expected = _expectations(sha256, md5, checksum)
    if dest.is_file() and not _mismatches(dest, expected, expected_size):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if not resume and part.exists():
        part.unlink()
    own_session = session is None
    if own_session:
        session = requests.Session()
        session.headers["User-Agent"] = _USER_AGENT
    try:
        attempt = 0
        while True:
            try:
                _transfer(session, url, part, resume, progress, timeout, chunk_size, expected_size)
                break
            except (_RetryableError, requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError, urllib3.exceptions.HTTPError) as error:
                attempt += 1
                if attempt > retries:
                    kept = part.stat().st_size if part.exists() else 0
                    raise DownloadError(
                        f"{url}: transfer interrupted ({error}) and not completed after {retries} "
                        f"resumption(s); {part} keeps the {kept} bytes received, run again to resume"
                    ) from error
                time.sleep(min(0.25 * 2 ** (attempt - 1), 10.0))
    finally:
        if own_session:
            session.close()
    problems = _mismatches(part, expected, expected_size)
    if problems:
        part.unlink()
        raise DownloadError(
            f"{url}: downloaded file {dest.name} does not match ({'; '.join(problems)}); the partial "
            f"file was deleted. Run again to download afresh; if it persists the file on the server "
            f"differs from the one expected"
        )
    os.replace(part, dest)
    return dest


# ----------------------------------------------------------------------------
# Archives
# ----------------------------------------------------------------------------


def _archive_kind(archive: Path) -> str:
    name = archive.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if any(name.endswith(s) for s in _ARCHIVE_SUFFIXES):
        return "tar"
    if zipfile.is_zipfile(archive):
        return "zip"
    try:
        if tarfile.is_tarfile(archive):
            return "tar"
    except (OSError, EOFError):
        pass
    raise DownloadError(f"{archive}: not a zip or tar archive (or it is damaged); delete it and download again")


def _check_member_name(archive: Path, name: str, root: Path) -> None:
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    if ".." in PurePosixPath(normalised).parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} climbs out with '..'; refusing to extract")
    target = os.path.normpath(os.path.join(root, normalised))
    if os.path.commonpath([target, str(root)]) != str(root):
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside the target; refusing")


def _check_link(archive: Path, name: str, link: str, root: Path, relative_to_member: bool) -> None:
    if link.startswith("/") or re.match(r"^[A-Za-z]:", link):
        raise UnsafeArchiveError(f"{archive}: link {name!r} -> {link!r} points to an absolute path; refusing")
    base = os.path.dirname(os.path.join(root, name)) if relative_to_member else str(root)
    target = os.path.normpath(os.path.join(base, link))
    if os.path.commonpath([target, str(root)]) != str(root):
        raise UnsafeArchiveError(f"{archive}: link {name!r} -> {link!r} points outside the target; refusing")


def _is_zip_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _extract_zip(archive: Path, into: Path) -> None:
    with zipfile.ZipFile(archive) as handle:
        members = handle.infolist()
        for info in members:
            _check_member_name(archive, info.filename, into)
            if _is_zip_symlink(info):
                _check_link(archive, info.filename, handle.read(info).decode("utf-8", "replace"), into, True)
        for info in members:
            if _is_zip_symlink(info):
                link = handle.read(info).decode("utf-8")
                path = into / info.filename.rstrip("/")
                path.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(link, path)
            else:
                handle.extract(info, into)


def _extract_tar(archive: Path, into: Path) -> None:
    with tarfile.open(archive) as handle:
        members = handle.getmembers()
        for member in members:
            _check_member_name(archive, member.name, into)
            if member.issym():
                _check_link(archive, member.name, member.linkname, into, True)
            elif member.islnk():
                _check_link(archive, member.name, member.linkname, into, False)
            elif not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(
                    f"{archive}: member {member.name!r} is a device or pipe; refusing to extract"
                )
        # The 'data' filter repeats these checks inside the standard library.
        handle.extractall(into, members=members, filter="data")


def _move_into(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``, merging folders that already exist."""
    if source.is_dir() and not source.is_symlink() and target.is_dir() and not target.is_symlink():
        for child in source.iterdir():
            _move_into(child, target / child.name)
        source.rmdir()
    else:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(source, target)


def safe_extract(archive: str | Path, dest: str | Path) -> list[Path]:
    """Extract a zip or tar (``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``) archive safely.

    Every member is checked before anything is written: absolute paths,
    ``..`` components, links pointing outside ``dest`` and device files are
    refused.  The members are extracted into a temporary folder beside
    ``dest`` and then renamed into ``dest`` (existing folders are merged,
    existing files replaced), so a damaged archive leaves ``dest`` untouched.

    Returns
    -------
    files : list of Path
        Every extracted file (not folders) at its final place, sorted.

    Raises
    ------
    UnsafeArchiveError
        If a member would land outside ``dest``.
    DownloadError
        If the archive is damaged or truncated (delete it and download again).
    """
    archive, dest = Path(archive), Path(dest).resolve()
    if not archive.is_file():
        raise DownloadError(f"{archive}: archive not found")
    kind = _archive_kind(archive)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extracting-", dir=dest.parent))
    try:
        try:
            (_extract_zip if kind == "zip" else _extract_tar)(archive, staging)
        except UnsafeArchiveError:
            raise
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError, ValueError) as error:
            raise DownloadError(
                f"{archive}: damaged or truncated archive ({type(error).__name__}: {error}); "
                f"delete it and download again"
            ) from error
        extracted = [p.relative_to(staging) for p in staging.rglob("*") if p.is_file() or p.is_symlink()]
        dest.mkdir(parents=True, exist_ok=True)
        for child in list(staging.iterdir()):
            _move_into(child, dest / child.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(dest / p for p in extracted)


def _write_json(path: Path, content: dict) -> None:
    atomic.write_text(path, json.dumps(content, indent=2) + "\n")


# ----------------------------------------------------------------------------
# ESC-50
# ----------------------------------------------------------------------------


def esc50_archive_url(commit: str = ESC50_COMMIT, base_url: str = "https://github.com") -> str:
    """Address of the GitHub archive of one ESC-50 commit."""
    return f"{base_url.rstrip('/')}/karolpiczak/ESC-50/archive/{commit}.zip"


def verify_esc50(
    root: str | Path,
    expected_meta_sha256: str | None = ESC50_META_SHA256,
    check_audio: bool = True,
    n_rows: int | None = 2000,
    per_fold: int | None = 400,
    per_class: int | None = 40,
    sample_rate: int = 44100,
    n_samples: int = 220500,
    length_tolerance: int = 0,
) -> None:
    """Check that ``root`` holds the complete ESC-50 release.

    Checks, in order: ``meta/esc50.csv`` exists and has sha256
    ``expected_meta_sha256``; it has ``n_rows`` rows, ``per_fold`` per fold and
    ``per_class`` per category; every listed clip is in ``audio/``; and (with
    ``check_audio``) every clip is mono, ``sample_rate`` Hz and ``n_samples``
    long (± ``length_tolerance``), read from the file header only.  Pass
    ``None`` to skip a check (e.g. for a smaller dataset in the same layout).

    Raises
    ------
    DatasetError
        Saying which check failed and, for clips, which files.
    """
    root = Path(root)
    meta_path = root / "meta" / "esc50.csv"
    if not meta_path.is_file():
        raise DatasetError(f"{meta_path}: metadata file missing; {root} is not an ESC-50 folder")
    if expected_meta_sha256:
        got = file_checksum(meta_path, "sha256")
        if got != expected_meta_sha256.lower():
            raise DatasetError(
                f"{meta_path}: sha256 is {got}, expected {expected_meta_sha256}; this is not the "
                f"metadata of the pinned ESC-50 release"
            )
    meta = read_metadata(meta_path)
    problems = []
    if n_rows is not None and len(meta) != n_rows:
        problems.append(f"{len(meta)} rows, expected {n_rows}")
    if per_fold is not None:
        counts = meta["fold"].value_counts().sort_index()
        if (counts != per_fold).any():
            problems.append(f"clips per fold {counts.to_dict()}, expected {per_fold} each")
    if per_class is not None:
        counts = meta["category"].value_counts()
        wrong = counts[counts != per_class]
        if len(wrong):
            problems.append(f"clips per class {wrong.head(5).to_dict()}, expected {per_class} each")
    if problems:
        raise DatasetError(f"{meta_path}: {'; '.join(problems)}")
    paths = resolve_clips(root / "audio", list(meta["filename"]))
    if not check_audio:
        return
    bad = []
    for path in paths:
        try:
            info = soundfile.info(str(path))
        except (soundfile.LibsndfileError, RuntimeError) as error:
            bad.append(f"{path.name} (unreadable: {error})")
            continue
        if (
            info.samplerate != sample_rate
            or info.channels != 1
            or abs(info.frames - n_samples) > length_tolerance
        ):
            bad.append(f"{path.name} ({info.samplerate} Hz, {info.channels} channel(s), {info.frames} samples)")
    if bad:
        raise DatasetError(
            f"{root / 'audio'}: {len(bad)} clip(s) are not mono {sample_rate} Hz with {n_samples} samples: "
            f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}; download the dataset again"
        )


def esc50_expectations(path: str | Path | None = None) -> dict | None:
    """:func:`verify_esc50`'s expectations for another release than the pinned one, read from a JSON file.

    ``path`` (default :func:`esc_lib.config.esc50_expect`, ``ESC50_EXPECT``)
    holds an object of :func:`verify_esc50`'s keyword arguments, e.g.
    ``{"expected_meta_sha256": "...", "n_rows": 200, "per_fold": 40, "per_class": 4}``
    for a scaled-down mirror (the end-to-end test serves one).  None when
    unset: the pinned release's checks.
    """
    import inspect

    path = Path(path) if path is not None else config.esc50_expect()
    if path is None:
        return None
    def unique(pairs):  # a key given twice would silently keep the last value
        keys = [key for key, _ in pairs]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise ValueError(f"key(s) {twice} given twice")
        return dict(pairs)

    try:
        options = json.loads(path.read_text(), object_pairs_hook=unique)
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path} (ESC50_EXPECT): cannot read it as JSON ({error}); fix or unset it") from None
    allowed = set(inspect.signature(verify_esc50).parameters) - {"root"}
    if not isinstance(options, dict) or set(options) - allowed:
        unknown = sorted(set(options) - allowed) if isinstance(options, dict) else type(options).__name__
        raise DatasetError(f"{path} (ESC50_EXPECT): unknown expectation(s) {unknown}; allowed: {sorted(allowed)}")
    return options


def download_esc50(
    dest: str | Path | None = None,
    commit: str = ESC50_COMMIT,
    base_url: str = "https://github.com",
    progress: bool = True,
    session: requests.Session | None = None,
    retries: int = 3,
    keep_archive: bool = False,
    verify_options: dict | None = None,
) -> Path:
    """Download, extract and verify ESC-50 at one commit; return its folder.

    The archive (about 600 MB) is downloaded beside ``dest`` (resumable, see
    :func:`download_file`), extracted by :func:`safe_extract` into a staging
    folder, verified by :func:`verify_esc50`, and only then renamed to
    ``dest``.  A ``dest`` that already verifies is returned at once (no
    network): the check is quick when the marker of an earlier verification
    is present, complete otherwise.

    Parameters
    ----------
    dest : str or Path, optional
        Folder to create (``meta/``, ``audio/``, ...); default
        :func:`esc_lib.config.esc50_dir` (``ESC50_DIR``).
    commit : str
        40-hex commit of github.com/karolpiczak/ESC-50.
    base_url : str
        GitHub, or a mirror in the same layout (the tests use a local server).
    progress : bool
    session : requests.Session, optional
    retries : int >= 0
        Resumptions of an interrupted transfer.
    keep_archive : bool
        Keep the zip after a successful verification.
    verify_options : dict, optional
        Keyword arguments of :func:`verify_esc50` (expected sha256 and counts).

    Raises
    ------
    DownloadError
        The transfer failed or the archive is damaged (the archive is deleted
        so the next call downloads it afresh) or unsafe.
    DatasetError
        The archive's content fails verification, or ``dest`` holds something
        that is not a complete ESC-50 (it is never overwritten).
    """
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise ValueError(
            f"commit must be a full 40-hex commit of ESC-50 (a branch archive changes and cannot be "
            f"verified), got {commit!r}"
        )
    options = dict(verify_options or {})
    dest = Path(dest).expanduser().resolve() if dest is not None else config.esc50_dir()
    marker = dest / _MARKER_ESC50
    if dest.is_dir() and any(dest.iterdir()):
        try:
            if marker.is_file():
                verify_esc50(dest, **{**options, "check_audio": False})
            else:
                verify_esc50(dest, **options)
                _write_json(marker, {"commit": None, "verified": _now(), "source": "found in place"})
        except DatasetError as error:
            raise DatasetError(
                f"{dest} exists but is not a complete ESC-50 ({error}); move it away or delete it, "
                f"then call download_esc50 again"
            ) from error
        return dest

    url = esc50_archive_url(commit, base_url)
    archive = dest.parent / f"ESC-50-{commit}.zip"
    staging = dest.parent / f".ESC-50-{commit}.staging"
    # One process downloads into dest at a time: two would append to one .part file and extract over each other.
    with locks.hold(dest, "ESC-50 folder", advice=_LOCK_ADVICE), locks.hold(archive, "ESC-50 archive", advice=_LOCK_ADVICE):
        return _esc50_into(dest, url, archive, staging, commit, progress, session, retries, keep_archive, options)


def _esc50_into(dest: Path, url: str, archive: Path, staging: Path, commit: str, progress: bool, session, retries: int,
                keep_archive: bool, options: dict) -> Path:
    """:func:`download_esc50` once it holds the locks of ``dest`` and the archive: download, extract, verify, move."""
    if dest.is_dir() and (dest / _MARKER_ESC50).is_file():
        return dest  # another process finished it between this one's first look and its lock
    download_file(url, archive, progress=progress, session=session, retries=retries)
    if staging.exists():
        shutil.rmtree(staging)
    try:
        safe_extract(archive, staging)
        tops = [p for p in staging.iterdir() if p.is_dir()]
        if len(tops) != 1:
            raise DatasetError(
                f"{url}: expected one top folder ESC-50-{commit}/ in the archive, found {[p.name for p in tops]}"
            )
        try:
            verify_esc50(tops[0], **options)
        except DatasetError as error:
            raise DatasetError(f"the ESC-50 archive {url} fails verification: {error}") from error
        _write_json(tops[0] / _MARKER_ESC50, {"commit": commit, "url": url, "verified": _now()})
        if dest.is_dir():
            dest.rmdir()  # empty, checked above
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tops[0], dest)
    except (DownloadError, DatasetError):
        # A damaged, unsafe or wrong archive must not be resumed or reused.
        archive.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not keep_archive:
        archive.unlink(missing_ok=True)
    return dest


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------
# ESC-10 and a pool of ESC-50's other classes, made from ESC-50
# ----------------------------------------------------------------------------


def missing_esc10_folders(pool: bool = True) -> tuple[Path | None, Path | None]:
    """The configured ESC-10 and pool folders a run must make from ESC-50 (:func:`download_esc10`), if any.

    Only when ESC-10 is neither found at :func:`esc_lib.config.esc10_dir` nor
    set (``ESC10_DIR``, ``--esc10-dir``): a folder that is set but absent is the
    user's mistake and stays an error of the loader.  The pool folder
    (:func:`esc_lib.config.unlabeled_dir`) is made with it when ``pool`` is true
    and it too is neither found nor set; a pool of one's own is never replaced.
    With a data root holding ``esc10/`` (and ``unlabeled/``) nothing is made.

    Returns
    -------
    (esc10, pool) : (Path or None, Path or None)
        ``(None, None)`` when ESC-10 is at hand or set.
    """
    def given(name: str) -> bool:
        return bool(os.environ.get(config.ENVIRONMENT_VARIABLES[name], "").strip())

    esc10 = config.esc10_dir()
    if given("esc10_dir") or esc10.exists():
        return None, None
    folder = config.unlabeled_dir()
    return esc10, (folder if pool and not given("unlabeled_dir") and not folder.exists() else None)


def download_esc10(
    esc10_dest: str | Path | None = None,
    pool_dest: str | Path | None = None,
    esc50_dest: str | Path | None = None,
    pool: bool = True,
    base_url: str = "https://github.com",
    verify_options: dict | None = None,
    progress: bool = True,
    session: requests.Session | None = None,
    retries: int = 3,
) -> tuple[Path, Path | None]:
    """ESC-10 and an unlabeled pool of ESC-50's 40 other classes, from one verified ESC-50 download.

    ESC-50 is downloaded and verified by :func:`download_esc50` (nothing is
    downloaded when it is already there), then split by :func:`esc10_from_esc50`.
    On the full release: 400 labelled clips of 10 classes, and a pool of 1 600
    clips of the 40 others.

    Parameters
    ----------
    esc10_dest, pool_dest, esc50_dest : str or Path, optional
        Defaults :func:`esc_lib.config.esc10_dir`, :func:`esc_lib.config.unlabeled_dir`,
        :func:`esc_lib.config.esc50_dir` (``ESC10_DIR``, ``ESC_UNLABELED_DIR``, ``ESC50_DIR``).
    pool : bool
        Make the pool folder too.
    base_url, verify_options, progress, session, retries
        As :func:`download_esc50`.

    Returns
    -------
    (esc10, pool) : (Path, Path or None)

    Raises
    ------
    DownloadError, DatasetError
        As :func:`download_esc50` and :func:`esc10_from_esc50`.
    """
    esc10_dest = Path(esc10_dest).expanduser().resolve() if esc10_dest is not None else config.esc10_dir()
    if pool:
        pool_dest = Path(pool_dest).expanduser().resolve() if pool_dest is not None else config.unlabeled_dir()
    else:
        pool_dest = None
    esc50 = download_esc50(esc50_dest, base_url=base_url, progress=progress, session=session, retries=retries,
                           verify_options=verify_options)
    return esc10_from_esc50(esc50, esc10_dest, pool_dest)


def esc10_from_esc50(esc50_root: str | Path, esc10_dest: str | Path, pool_dest: str | Path | None = None
                     ) -> tuple[Path, Path | None]:
    """Split an ESC-50 folder into ESC-10 (labelled) and a folder of its other classes' clips (unlabeled).

    ``esc10_dest`` gets ESC-50's layout with ``meta/esc50.csv`` cut to the
    ``esc10`` rows (every column kept, so the leakage filter sees ESC-10's
    sources only) and ``audio/`` with those clips; ``pool_dest`` gets the clips
    of every other class, under their ESC-50 names (so the leakage filter still
    reads their Freesound ids), and no clip of an ESC-10 class
    (:func:`esc_lib.data.datasets.esc10_split` checks the metadata).  Each clip
    is a hard link to ESC-50's file, or a relative symbolic link where hard
    links cannot be made (another file system), or a copy where neither can:
    the audio is not stored twice.  ESC-50's ``LICENSE`` goes with both.

    Each folder is built beside its destination, under that destination's
    lock (:mod:`esc_lib.locks`), and renamed into place complete; a folder
    that already exists is left as it is, whatever it holds.

    Parameters
    ----------
    esc50_root : str or Path
        ESC-50 in its release layout (e.g. from :func:`download_esc50`).
    esc10_dest : str or Path
    pool_dest : str or Path, optional
        None: no pool folder.

    Returns
    -------
    (esc10, pool) : (Path, Path or None)

    Raises
    ------
    DatasetError
        If the metadata is missing or cannot be split, or a listed clip is missing.
    """
    esc50_root = Path(esc50_root).expanduser().resolve()
    meta_path = esc50_root / "meta" / "esc50.csv"
    meta = read_metadata(meta_path)
    labelled, other = esc10_split(meta, meta_path)
    clips = resolve_clips(esc50_root / "audio", list(meta["filename"]))
    # The metadata is written back as text, each field as it was, not as pandas re-formats numbers and flags.
    text = pd.read_csv(meta_path, dtype=str, keep_default_na=False)
    recorded = json.loads((esc50_root / _MARKER_ESC50).read_text()) if (esc50_root / _MARKER_ESC50).is_file() else {}
    source = {"source": str(esc50_root), "commit": recorded.get("commit"), "made": _now()}
    extras = [path for path in (esc50_root / "LICENSE",) if path.is_file()]

    def esc10_tree(staging: Path, final: Path) -> dict:
        (staging / "meta").mkdir()
        text.loc[labelled].to_csv(staging / "meta" / "esc50.csv", index=False)
        (staging / "audio").mkdir()
        how = _link_all([(clip, staging / "audio" / clip.name, final / "audio") for clip, keep in zip(clips, labelled) if keep])
        return {"clips": int(labelled.sum()), "classes": sorted(set(meta.loc[labelled, "category"])), "linked": how}

    def pool_tree(staging: Path, final: Path) -> dict:
        how = _link_all([(clip, staging / clip.name, final) for clip, keep in zip(clips, other) if keep])
        return {"clips": int(other.sum()), "classes": sorted(set(meta.loc[other, "category"])), "linked": how}

    esc10_dest = _make_folder(Path(esc10_dest), "ESC-10 folder", esc10_tree, extras, source)
    if pool_dest is not None:
        pool_dest = _make_folder(Path(pool_dest), "unlabeled folder", pool_tree, extras, source)
    return esc10_dest, pool_dest


def _make_folder(dest: Path, what: str, build, extras: list[Path], source: dict) -> Path:
    """Build ``dest`` (``build(staging, dest)``) beside it under its lock and rename it into place; an existing ``dest`` stays."""
    dest = dest.expanduser().resolve()
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with locks.hold(dest, what, advice=_LOCK_ADVICE):
        if dest.exists():
            return dest  # another process made it between this one's first look and its lock
        # One name is enough under the lock; a killed process's half-made folder is removed first.
        staging = dest.with_name(f".{dest.name}.making")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            record = build(staging, dest)
            for path in extras:
                shutil.copy2(path, staging / path.name)
            _write_json(staging / _MARKER_FROM_ESC50, {**source, **record})
            os.replace(staging, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dest


def _link_all(pairs: list[tuple[Path, Path, Path]]) -> str:
    """Link each ``source`` to ``target`` (its final folder given, for a relative symbolic link); how it was done.

    A hard link where the file system allows one, else a symbolic link relative
    to the final folder (so it survives the rename, and the data root moved
    whole), else a copy.
    """
    done = set()
    for source, target, final_folder in pairs:
        try:
            os.link(source, target)
            done.add("hard links")
            continue
        except OSError:
            pass
        try:
            os.symlink(os.path.relpath(source, final_folder), target)
            done.add("symbolic links")
        except OSError:
            shutil.copy2(source, target)
            done.add("copies")
    return ", ".join(sorted(done))


# ----------------------------------------------------------------------------
# ESC-US on Dataverse
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DataverseFile:
    """One file of a Dataverse dataset, as listed by the native API.

    Attributes
    ----------
    id : int
        Dataverse file id (``/api/access/datafile/{id}``).
    filename : str
        File name (the original name for files Dataverse ingested as tables).
    size : int or None
        Size in bytes of the file served.
    checksum_type : str
        E.g. ``'MD5'``, ``'SHA-1'``.
    checksum : str
        Hex digest.
    original : bool
        True for an ingested table: ``?format=original`` serves the uploaded file.
    """

    id: int
    filename: str
    size: int | None
    checksum_type: str
    checksum: str
    original: bool = False

    def url(self, server: str = DATAVERSE_SERVER) -> str:
        """Access-API address of the file's bytes."""
        address = f"{server.rstrip('/')}/api/access/datafile/{self.id}"
        return address + ("?format=original" if self.original else "")

    @property
    def is_archive(self) -> bool:
        return self.filename.lower().endswith(_ARCHIVE_SUFFIXES)


def list_escus_files(
    server: str = DATAVERSE_SERVER,
    doi: str = ESCUS_DOI,
    session: requests.Session | None = None,
    timeout: float = 60.0,
) -> list[DataverseFile]:
    """Files of a Dataverse dataset (ESC-US by default) with sizes and checksums.

    Uses the native API ``/api/datasets/:persistentId/?persistentId=<doi>``
    (latest version).

    Returns
    -------
    files : list of DataverseFile, sorted by file name

    Raises
    ------
    DownloadError
        On an HTTP error or an answer that is not a Dataverse dataset listing.
    """
    url = f"{server.rstrip('/')}/api/datasets/:persistentId/"
    own_session = session is None
    session = session or requests.Session()
    try:
        response = session.get(url, params={"persistentId": doi}, timeout=timeout,
                               headers={"User-Agent": _USER_AGENT})
        if response.status_code != 200:
            raise DownloadError(f"{response.url}: HTTP {response.status_code} {response.reason}; check server and DOI")
        payload = response.json()
    except requests.RequestException as error:
        raise DownloadError(f"{url}?persistentId={doi}: cannot list the dataset ({error})") from error
    except ValueError as error:
        raise DownloadError(f"{url}?persistentId={doi}: the answer is not JSON ({error})") from error
    finally:
        if own_session:
            session.close()
    try:
        entries = payload["data"]["latestVersion"]["files"]
        files = []
        for entry in entries:
            data_file = entry["dataFile"]
            original = "originalFileFormat" in data_file
            name = data_file.get("originalFileName") if original else None
            name = name or data_file.get("filename") or entry["label"]
            size = data_file.get("originalFileSize") if original else data_file.get("filesize")
            checksum = data_file.get("checksum") or {"type": "MD5", "value": data_file.get("md5")}
            if not checksum.get("value"):
                raise KeyError(f"checksum of {name}")
            if "/" in str(name) or "\\" in str(name) or str(name) in ("", ".", ".."):
                raise DownloadError(f"{url}?persistentId={doi}: refusing the listed file name {name!r}")
            files.append(DataverseFile(
                id=int(data_file["id"]), filename=str(name),
                size=int(size) if size is not None else None,
                checksum_type=str(checksum["type"]), checksum=str(checksum["value"]).lower(),
                original=original,
            ))
    except (KeyError, TypeError, ValueError) as error:
        raise DownloadError(
            f"{url}?persistentId={doi}: unexpected answer, not a Dataverse dataset listing (missing {error})"
        ) from error
    return sorted(files, key=lambda f: f.filename)


def _choose_parts(archives, n_parts, parts, max_clips, clips_per_part) -> list[DataverseFile]:
    if parts is not None:
        chosen = []
        names = {f.filename: f for f in archives}
        for part in parts:
            if isinstance(part, str):
                if part not in names:
                    raise ValueError(f"parts: no part named {part!r}; parts listed: {sorted(names)}")
                chosen.append(names[part])
            else:
                if not 1 <= int(part) <= len(archives):
                    raise ValueError(f"parts: numbers run from 1 to {len(archives)}, got {part!r}")
                chosen.append(archives[int(part) - 1])
        return list(dict.fromkeys(chosen))
    if max_clips is not None:
        if max_clips < 1:
            raise ValueError(f"max_clips must be a positive number of clips, got {max_clips!r}")
        n_parts = math.ceil(max_clips / clips_per_part)
    if not 1 <= n_parts:
        raise ValueError(f"n_parts must be at least 1, got {n_parts!r}")
    if n_parts > len(archives):
        raise ValueError(f"n_parts={n_parts} but the dataset lists only {len(archives)} part(s)")
    return archives[:n_parts]


def _part_done(dest: Path, item: DataverseFile) -> bool:
    marker = dest / _MARKER_DIR_ESCUS / f"{item.filename}.json"
    if not marker.is_file():
        return False
    recorded = json.loads(marker.read_text())
    return recorded.get("checksum") == item.checksum and recorded.get("id") == item.id


def download_escus(
    dest: str | Path | None = None,
    n_parts: int = 1,
    parts: Sequence[int | str] | None = None,
    max_clips: int | None = None,
    server: str = DATAVERSE_SERVER,
    doi: str = ESCUS_DOI,
    progress: bool = True,
    session: requests.Session | None = None,
    retries: int = 3,
    keep_archives: bool = False,
    clips_per_part: int = 10000,
    refresh_listing: bool = False,
) -> Path:
    """Download, verify and extract parts of ESC-US; return the folder of clips.

    The parts (archives, about 1 GB and 10 000 clips each) are listed with
    their checksums by :func:`list_escus_files`; each chosen part is downloaded
    into ``<dest>/archives/`` (resumable), verified against its listed
    checksum and size, extracted by :func:`safe_extract` into ``dest``, and
    marked complete in ``<dest>/.esc_lib-parts/``.  The dataset's other files
    (e.g. ``ESC-US.csv``) are downloaded into ``dest`` and verified too.  The
    listing is saved in ``<dest>/.esc_lib-listing.json``, so a second call whose parts are all
    complete does no network access at all (``refresh_listing=True`` asks the
    server again).

    Parameters
    ----------
    dest : str or Path, optional
        Default :func:`esc_lib.config.escus_dir` (``ESCUS_DIR``).
    n_parts : int >= 1
        Take the first ``n_parts`` parts (sorted by name).
    parts : sequence of int (1-based) or str (file names), optional
        Exactly these parts; overrides ``n_parts`` and ``max_clips``.
    max_clips : int, optional
        Take as many parts as hold this many clips (``clips_per_part`` each);
        overrides ``n_parts``.  Sample the clips with
        ``esc_lib.data.datasets.escus_pool(max_clips=...)``.
    server, doi : str
        Dataverse installation and dataset.
    keep_archives : bool
        Keep each archive after extraction (default: delete, the marker records its checksum).
    clips_per_part : int > 0
        Clips in one part, for ``max_clips`` (ESC-US: 10 000).
    refresh_listing : bool
        Ask the server for the file list even when a saved one covers the request.

    Raises
    ------
    DownloadError
        Transfer, checksum or archive failure (naming the part).
    ValueError
        Parts that do not exist.
    """
    dest = Path(dest).expanduser().resolve() if dest is not None else config.escus_dir()
    if not _escus_done(dest, server, doi, n_parts, parts, max_clips, clips_per_part, refresh_listing):
        # One process downloads into dest at a time: two would append to one .part file and extract over each other.
        with locks.hold(dest, "ESC-US folder", advice=_LOCK_ADVICE):
            _escus_into(dest, n_parts, parts, max_clips, server, doi, progress, session, retries, keep_archives,
                        clips_per_part)
    return dest


def _escus_done(dest: Path, server: str, doi: str, n_parts, parts, max_clips, clips_per_part, refresh_listing) -> bool:
    """Whether everything chosen is already verified and extracted (read from the saved listing; no network)."""
    saved_listing = dest / ".esc_lib-listing.json"
    if not refresh_listing and saved_listing.is_file():
        # Everything chosen already verified and extracted: answer without the network.
        saved = json.loads(saved_listing.read_text())
        if saved.get("server") == server and saved.get("doi") == doi:
            listing = [DataverseFile(**item) for item in saved["files"]]
            chosen = _choose_parts([f for f in listing if f.is_archive], n_parts, parts, max_clips, clips_per_part)
            others = [f for f in listing if not f.is_archive]
            if all(_part_done(dest, f) for f in chosen) and all(
                (dest / f.filename).is_file() and (f.size is None or (dest / f.filename).stat().st_size == f.size)
                for f in others
            ):
                return True
    return False


def _escus_into(dest: Path, n_parts, parts, max_clips, server: str, doi: str, progress: bool, session, retries: int,
                keep_archives: bool, clips_per_part: int) -> None:
    """:func:`download_escus` once it holds ``dest``'s lock: list, download, verify and extract what is missing."""
    saved_listing = dest / ".esc_lib-listing.json"
    own_session = session is None
    if own_session:
        session = requests.Session()
        session.headers["User-Agent"] = _USER_AGENT
    try:
        listing = list_escus_files(server, doi, session=session)
        archives = [f for f in listing if f.is_archive]
        if not archives:
            raise DownloadError(f"{server} {doi}: the dataset lists no archive part ({[f.filename for f in listing]})")
        chosen = _choose_parts(archives, n_parts, parts, max_clips, clips_per_part)
        _write_json(saved_listing, {"server": server, "doi": doi, "listed": _now(),
                                    "files": [asdict(f) for f in listing]})
        for item in listing:
            if not item.is_archive:
                download_file(item.url(server), dest / item.filename, expected_size=item.size,
                              checksum=(item.checksum_type, item.checksum), progress=progress,
                              session=session, retries=retries)
        for item in chosen:
            if _part_done(dest, item):
                continue
            marker = dest / _MARKER_DIR_ESCUS / f"{item.filename}.json"
            archive = dest / "archives" / item.filename
            download_file(item.url(server), archive, expected_size=item.size,
                          checksum=(item.checksum_type, item.checksum), progress=progress,
                          session=session, retries=retries)
            try:
                extracted = safe_extract(archive, dest)
            except DownloadError:
                archive.unlink(missing_ok=True)
                raise
            _write_json(marker, {**asdict(item), "n_files": len(extracted), "extracted": _now()})
            if not keep_archives:
                archive.unlink(missing_ok=True)
    finally:
        if own_session:
            session.close()
