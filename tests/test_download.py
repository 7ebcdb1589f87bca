"""Downloads against a real HTTP server on 127.0.0.1 serving files in the real layouts.

The server (tests/_http_server.py) honours Range requests and can cut a
transfer short, ignore Range, or redirect, so resume, checksum and archive
handling are exercised over real sockets with requests/urllib3.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import urllib.parse
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from _http_server import (
    SMALL_ESC50_COUNTS,
    FileServer,
    build_esc50_tree,
    dataverse_listing,
    write_clip,
)
from esc_lib.data import datasets, download
from esc_lib.data.datasets import DatasetError
from esc_lib.data.download import DownloadError, UnsafeArchiveError

COMMIT = "0123456789abcdef0123456789abcdef01234567"
ARCHIVE_PATH = f"/karolpiczak/ESC-50/archive/{COMMIT}.zip"


@pytest.fixture
def server():
    with FileServer() as running:
        yield running


def _zip_folder(folder: Path, top: str, extra: dict[str, bytes] | None = None) -> bytes:
    """Zip ``folder`` under the top folder ``top`` as GitHub does (folder entries included)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{top}/", b"")
        for path in sorted(folder.rglob("*")):
            name = f"{top}/{path.relative_to(folder).as_posix()}"
            if path.is_dir():
                archive.writestr(name + "/", b"")
            else:
                archive.write(path, name)
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def esc50_release(tmp_path_factory):
    """A small ESC-50 in the GitHub archive layout: (zip bytes, verify options)."""
    source = tmp_path_factory.mktemp("esc50-source")
    (source / "README.md").write_text("# ESC-50 (small fake for tests)\n")
    meta_sha = build_esc50_tree(source)
    body = _zip_folder(source, f"ESC-50-{COMMIT}")
    options = {"expected_meta_sha256": meta_sha, **SMALL_ESC50_COUNTS}
    return body, options


def _parts(path: Path) -> list[Path]:
    return sorted(path.parent.glob("*.part"))


# ----------------------------------------------------------------------------
# download_file
# ----------------------------------------------------------------------------

BODY = bytes(np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8))
BODY_SHA = hashlib.sha256(BODY).hexdigest()
BODY_MD5 = hashlib.md5(BODY).hexdigest()


def test_download_file_verifies_and_renames(server, tmp_path):
    url = server.add("/files/blob.bin", BODY)
    dest = tmp_path / "sub" / "blob.bin"
    result = download.download_file(url, dest, sha256=BODY_SHA, md5=BODY_MD5, expected_size=len(BODY),
                                     progress=True)
    assert result == dest and dest.read_bytes() == BODY
    assert _parts(dest) == []
    assert [r[2] for r in server.requests] == [None]


def test_download_file_with_the_right_file_in_place_does_no_request(server, tmp_path):
    url = server.add("/files/blob.bin", BODY)
    dest = tmp_path / "blob.bin"
    dest.write_bytes(BODY)
    download.download_file(url, dest, sha256=BODY_SHA, progress=False)
    assert server.requests == []


def test_download_file_resumes_within_one_call(server, tmp_path):
    url = server.add("/files/blob.bin", BODY, interrupt_after=100_000)
    dest = download.download_file(url, tmp_path / "blob.bin", sha256=BODY_SHA, progress=False)
    assert dest.read_bytes() == BODY
    ranges = [r[2] for r in server.requests]
    assert ranges == [None, "bytes=100000-"]


def test_download_file_keeps_the_part_and_resumes_in_a_later_call(server, tmp_path):
    url = server.add("/files/blob.bin", BODY, interrupt_after=123_456)
    dest = tmp_path / "blob.bin"
    with pytest.raises(DownloadError, match="run again to resume") as error:
        download.download_file(url, dest, sha256=BODY_SHA, progress=False, retries=0)
    assert url in str(error.value)
    part = tmp_path / "blob.bin.part"
    assert part.stat().st_size == 123_456 and not dest.exists()
    download.download_file(url, dest, sha256=BODY_SHA, progress=False, retries=0)
    assert dest.read_bytes() == BODY and not part.exists()
    assert server.requests[-1][2] == "bytes=123456-"


def test_download_file_starts_again_when_the_server_ignores_range(server, tmp_path):
    url = server.add("/files/blob.bin", BODY, interrupt_after=50_000, ignore_range=True)
    dest = download.download_file(url, tmp_path / "blob.bin", sha256=BODY_SHA, progress=False)
    assert dest.read_bytes() == BODY
    assert server.requests[-1][2] == "bytes=50000-"  # asked, got 200 and the whole file


def test_download_file_with_a_complete_part_asks_for_nothing_more(server, tmp_path):
    url = server.add("/files/blob.bin", BODY)
    (tmp_path / "blob.bin.part").write_bytes(BODY)
    download.download_file(url, tmp_path / "blob.bin", sha256=BODY_SHA, progress=False)
    assert server.requests[-1][2] == f"bytes={len(BODY)}-"  # answered 416: already complete
    assert (tmp_path / "blob.bin").read_bytes() == BODY


@pytest.mark.parametrize(
    "kwargs, expected_text",
    [
        ({"sha256": "0" * 64}, f"sha256: expected {'0' * 64}, got {BODY_SHA}"),
        ({"md5": "f" * 32}, f"md5: expected {'f' * 32}, got {BODY_MD5}"),
        ({"checksum": ("SHA-1", "a" * 40)}, "sha1: expected " + "a" * 40),
        ({"expected_size": len(BODY) - 1, "sha256": BODY_SHA}, "size: expected"),
    ],
)
def test_download_file_mismatch_deletes_the_part_and_says_why(server, tmp_path, kwargs, expected_text):
    url = server.add("/files/blob.bin", BODY)
    dest = tmp_path / "blob.bin"
    with pytest.raises(DownloadError) as error:
        download.download_file(url, dest, progress=False, **kwargs)
    message = str(error.value)
    assert url in message and "blob.bin" in message and expected_text in message
    assert not dest.exists() and _parts(dest) == []


def test_download_file_accepts_a_dataverse_style_checksum(server, tmp_path):
    url = server.add("/files/blob.bin", BODY)
    sha1 = hashlib.sha1(BODY).hexdigest()
    dest = download.download_file(url, tmp_path / "b", checksum=("SHA-1", sha1.upper()), progress=False)
    assert dest.read_bytes() == BODY


def test_download_file_http_error_names_the_url(server, tmp_path):
    url = server.url + "/nothing-here.zip"
    with pytest.raises(DownloadError, match="HTTP 404") as error:
        download.download_file(url, tmp_path / "x.zip", progress=False)
    assert url in str(error.value)
    assert not (tmp_path / "x.zip").exists()


@pytest.mark.parametrize("bad", [{"retries": -1}, {"checksum": ("crc32", "00")}])
def test_download_file_rejects_bad_arguments(server, tmp_path, bad):
    with pytest.raises(ValueError):
        download.download_file(server.url + "/x", tmp_path / "x", progress=False, **bad)


# ----------------------------------------------------------------------------
# safe_extract
# ----------------------------------------------------------------------------


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                name, content = member
                info = tarfile.TarInfo(name)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize("suffix, body", [
    (".zip", _zip_bytes({"top/a.txt": b"a", "top/sub/b.txt": b"b"})),
    (".tar.gz", _tar_bytes([("top/a.txt", b"a"), ("top/sub/b.txt", b"b"), _symlink("top/link", "a.txt")])),
    (".tar", _tar_bytes([("top/a.txt", b"a"), ("top/sub/b.txt", b"b")], mode="w")),
])
def test_safe_extract_extracts_and_merges(tmp_path, suffix, body):
    archive = tmp_path / f"archive{suffix}"
    archive.write_bytes(body)
    dest = tmp_path / "out"
    (dest / "top").mkdir(parents=True)
    (dest / "top" / "kept.txt").write_text("kept")
    files = download.safe_extract(archive, dest)
    assert (dest / "top" / "a.txt").read_bytes() == b"a"
    assert (dest / "top" / "sub" / "b.txt").read_bytes() == b"b"
    assert (dest / "top" / "kept.txt").read_text() == "kept"  # merged, not replaced
    assert dest / "top" / "sub" / "b.txt" in files and all(f.is_relative_to(dest) for f in files)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


@pytest.mark.parametrize("suffix, body, what", [
    (".zip", _zip_bytes({"ok.txt": b"ok", "../evil.txt": b"evil"}), "'..'"),
    (".zip", _zip_bytes({"ok.txt": b"ok", "sub/../../evil.txt": b"evil"}), "'..'"),
    (".zip", _zip_bytes({"/abs/evil.txt": b"evil"}), "absolute"),
    (".tar.gz", _tar_bytes([("ok.txt", b"ok"), ("../evil.txt", b"evil")]), "'..'"),
    (".tar.gz", _tar_bytes([("ok.txt", b"ok"), _symlink("escape", "../../evil.txt")]), "outside"),
    (".tar.gz", _tar_bytes([_symlink("escape", "/etc/passwd")]), "absolute"),
])
def test_safe_extract_refuses_members_escaping_the_target(tmp_path, suffix, body, what):
    archive = tmp_path / "downloads" / f"bad{suffix}"
    archive.parent.mkdir()
    archive.write_bytes(body)
    dest = tmp_path / "downloads" / "out"
    with pytest.raises(UnsafeArchiveError, match=what) as error:
        download.safe_extract(archive, dest)
    assert str(archive) in str(error.value)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "downloads" / "evil.txt").exists()
    assert not dest.exists()  # nothing written at all
    assert sorted(p.name for p in archive.parent.iterdir()) == [archive.name]


@pytest.mark.parametrize("suffix, body", [
    (".zip", _zip_bytes({f"top/{i}.bin": bytes(range(256)) * 40 for i in range(5)})),
    (".tar.gz", _tar_bytes([(f"top/{i}.bin", np.random.default_rng(i).bytes(20_000)) for i in range(5)])),
])
def test_safe_extract_reports_a_truncated_archive(tmp_path, suffix, body):
    archive = tmp_path / f"cut{suffix}"
    archive.write_bytes(body[: len(body) * 2 // 3])
    dest = tmp_path / "out"
    with pytest.raises(DownloadError, match="damaged or truncated|not a zip or tar") as error:
        download.safe_extract(archive, dest)
    assert not isinstance(error.value, UnsafeArchiveError)
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [archive.name]


# ----------------------------------------------------------------------------
# ESC-50
# ----------------------------------------------------------------------------


def test_download_esc50_end_to_end_and_idempotent(server, tmp_path, esc50_release):
    body, options = esc50_release
    # GitHub answers the archive address with a redirect to codeload; the first transfer is cut short.
    server.add(ARCHIVE_PATH, redirect_to=server.url + "/codeload/archive.zip")
    server.add("/codeload/archive.zip", body, content_type="application/zip", interrupt_after=len(body) // 3)
    dest = tmp_path / "data" / "ESC-50"
    root = download.download_esc50(dest, commit=COMMIT, base_url=server.url, progress=False,
                                   verify_options=options)
    assert root == dest.resolve()
    assert (root / "meta" / "esc50.csv").is_file() and (root / "README.md").is_file()
    assert len(list((root / "audio").glob("*.wav"))) == 6
    assert json.loads((root / ".esc_lib-esc50.json").read_text())["commit"] == COMMIT
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["ESC-50"]  # no archive, part or staging
    assert f"bytes={len(body) // 3}-" in [r[2] for r in server.requests]  # resumed, not restarted

    dataset = datasets.load_labelled(root)
    assert dataset.classes == ["dog", "rooster", "rain"] and len(dataset) == 6

    before = len(server.requests)
    assert download.download_esc50(dest, commit=COMMIT, base_url=server.url, progress=False,
                                   verify_options=options) == root
    assert len(server.requests) == before  # verified already: no network


def test_download_esc50_truncated_archive_is_an_error_and_is_not_kept(server, tmp_path, esc50_release):
    body, options = esc50_release
    server.add(ARCHIVE_PATH, body[: len(body) // 2])  # a consistent but truncated file
    dest = tmp_path / "ESC-50"
    with pytest.raises(DownloadError, match="damaged or truncated|not a zip"):
        download.download_esc50(dest, commit=COMMIT, base_url=server.url, progress=False,
                                verify_options=options)
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []  # the bad archive is gone, so a re-run downloads afresh

    server.add(ARCHIVE_PATH, body)
    download.download_esc50(dest, commit=COMMIT, base_url=server.url, progress=False, verify_options=options)
    assert (dest / "meta" / "esc50.csv").is_file()


def test_download_esc50_refuses_an_archive_member_escaping(server, tmp_path, esc50_release):
    body, options = esc50_release
    source = tmp_path / "source"
    build_esc50_tree(source)
    evil = _zip_folder(source, f"ESC-50-{COMMIT}", extra={f"ESC-50-{COMMIT}/../../evil.txt": b"evil"})
    server.add(ARCHIVE_PATH, evil)
    dest = tmp_path / "data" / "ESC-50"
    with pytest.raises(UnsafeArchiveError, match="evil.txt"):
        download.download_esc50(dest, commit=COMMIT, base_url=server.url, progress=False,
                                verify_options=options)
    assert not dest.exists()
    assert not any(p.name == "evil.txt" for p in tmp_path.rglob("*"))
    assert list((tmp_path / "data").iterdir()) == []


def test_download_esc50_wrong_content_fails_verification(server, tmp_path, esc50_release):
    body, options = esc50_release
    server.add(ARCHIVE_PATH, body)
    dest = tmp_path / "ESC-50"
    # The real expectations (pinned sha256, 2000 rows): the small archive must not pass.
    with pytest.raises(DatasetError, match="sha256 is .*expected " + download.ESC50_META_SHA256):
        download.download_esc50(dest, commit=COMMIT, base_url=server.url, progress=False)
    assert not dest.exists() and list(tmp_path.iterdir()) == []


def test_download_esc50_never_overwrites_a_foreign_folder(server, tmp_path, esc50_release):
    body, options = esc50_release
    server.add(ARCHIVE_PATH, body)
    dest = tmp_path / "ESC-50"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="move it away or delete it"):
        download.download_esc50(dest, commit=COMMIT, base_url=server.url, progress=False,
                                verify_options=options)
    assert (dest / "notes.txt").read_text() == "mine" and server.requests == []


def test_download_esc50_accepts_a_complete_folder_in_place(server, tmp_path):
    sha = build_esc50_tree(tmp_path / "ESC-50")
    options = {"expected_meta_sha256": sha, **SMALL_ESC50_COUNTS}
    download.download_esc50(tmp_path / "ESC-50", commit=COMMIT, base_url=server.url, progress=False,
                            verify_options=options)
    assert server.requests == [] and (tmp_path / "ESC-50" / ".esc_lib-esc50.json").is_file()


@pytest.mark.parametrize("commit", ["master", "5983fb0", "X" * 40])
def test_download_esc50_needs_a_pinned_commit(tmp_path, commit):
    with pytest.raises(ValueError, match="40-hex"):
        download.download_esc50(tmp_path / "ESC-50", commit=commit, progress=False)


def test_the_pinned_commit_is_a_full_hash():
    assert len(download.ESC50_COMMIT) == 40 and int(download.ESC50_COMMIT, 16) >= 0
    assert download.esc50_archive_url() == (
        f"https://github.com/karolpiczak/ESC-50/archive/{download.ESC50_COMMIT}.zip"
    )


def _break_missing(root):
    (root / "audio" / "2-100005-B-1.wav").unlink()


def _break_stereo(root):
    write_clip(root / "audio" / "1-100002-A-1.wav", channels=2)


def _break_length(root):
    write_clip(root / "audio" / "1-100002-A-1.wav", seconds=4.0)


def _break_rate(root):
    write_clip(root / "audio" / "1-100002-A-1.wav", sr=22050)


def _break_garbage(root):
    (root / "audio" / "1-100002-A-1.wav").write_bytes(b"not audio")


@pytest.mark.parametrize("damage, options, expected", [
    (_break_missing, {}, "1 listed clip.*2-100005-B-1.wav"),
    (_break_stereo, {}, "1-100002-A-1.wav \\(44100 Hz, 2 channel"),
    (_break_length, {}, "176400 samples"),
    (_break_rate, {}, "22050 Hz"),
    (_break_garbage, {}, "unreadable"),
    (None, {"n_rows": 2000}, "6 rows, expected 2000"),
    (None, {"per_fold": 400}, "clips per fold .*expected 400"),
    (None, {"per_class": 40}, "clips per class .*expected 40"),
    (None, {"expected_meta_sha256": "0" * 64}, "sha256 is"),
])
def test_verify_esc50_says_what_is_wrong(tmp_path, damage, options, expected):
    sha = build_esc50_tree(tmp_path)
    arguments = {"expected_meta_sha256": sha, **SMALL_ESC50_COUNTS, **options}
    if damage is not None:
        download.verify_esc50(tmp_path, expected_meta_sha256=sha, **SMALL_ESC50_COUNTS)  # intact: passes
        damage(tmp_path)
    with pytest.raises(DatasetError, match=expected):
        download.verify_esc50(tmp_path, **arguments)


def test_verify_esc50_without_audio_check_only_needs_the_files(tmp_path):
    sha = build_esc50_tree(tmp_path)
    _break_stereo(tmp_path)
    download.verify_esc50(tmp_path, expected_meta_sha256=sha, check_audio=False, **SMALL_ESC50_COUNTS)


def test_verify_esc50_on_a_folder_without_metadata(tmp_path):
    with pytest.raises(DatasetError, match="metadata file missing"):
        download.verify_esc50(tmp_path)


# ----------------------------------------------------------------------------
# ESC-US through a fake Dataverse
# ----------------------------------------------------------------------------

DATASET_PATH = "/api/datasets/:persistentId/"


def _ogg(seconds: float = 1.0, frequency: float = 300.0) -> bytes:
    buffer = io.BytesIO()
    t = np.arange(int(44100 * seconds)) / 44100
    soundfile.write(buffer, (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32), 44100,
                    format="OGG", subtype="VORBIS")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def escus_parts():
    """Three ESC-US parts (tar.gz, tar.gz, zip), 3 clips each, named ID-FreesoundID-start-end.ogg."""
    clip = _ogg()
    parts = []
    for number in (1, 2, 3):
        names = [f"ESC-US/{number:02d}/{number * 1000 + i:06d}-{200000 + 10 * number + i}-0-5.ogg"
                 for i in range(3)]
        if number < 3:
            body = _tar_bytes([(name, clip) for name in names])
            filename = f"ESC-US-{number:02d}.tar.gz"
        else:
            body = _zip_bytes({name: clip for name in names})
            filename = f"ESC-US-{number:02d}.zip"
        parts.append({"id": 4000 + number, "filename": filename, "body": body})
    csv = b"filename,freesound_id\n" + b"\n".join(f"x-{i},{i}".encode() for i in range(3)) + b"\n"
    metadata = {"id": 4100, "filename": "ESC-US.csv", "body": csv, "tabular": True}
    return parts, metadata


def _serve_dataverse(server, files, **route_options):
    server.add_json(f"{DATASET_PATH}?persistentId={download.ESCUS_DOI}", dataverse_listing(files))
    for item in files:
        options = route_options.get(item["filename"], {})
        server.add(f"/api/access/datafile/{item['id']}", item["body"], **options)


def test_list_escus_files_reads_sizes_and_checksums(server, escus_parts):
    parts, metadata = escus_parts
    _serve_dataverse(server, parts + [metadata])
    files = download.list_escus_files(server=server.url)
    assert [f.filename for f in files] == ["ESC-US-01.tar.gz", "ESC-US-02.tar.gz", "ESC-US-03.zip", "ESC-US.csv"]
    first = files[0]
    assert first.id == 4001 and first.size == len(parts[0]["body"])
    assert (first.checksum_type, first.checksum) == ("MD5", hashlib.md5(parts[0]["body"]).hexdigest())
    assert first.url(server.url) == f"{server.url}/api/access/datafile/4001" and first.is_archive
    table = files[-1]
    assert table.original and table.url("x").endswith("?format=original") and table.size == len(metadata["body"])
    method, target, _ = server.requests[0]
    assert urllib.parse.unquote_plus(target) == f"{DATASET_PATH}?persistentId={download.ESCUS_DOI}"


@pytest.mark.parametrize("answer", [{"status": "OK", "data": {}}, [1, 2], {"data": {"latestVersion": {"files": [{}]}}}])
def test_list_escus_files_rejects_a_strange_answer(server, answer):
    server.add_json(DATASET_PATH, answer)
    with pytest.raises(DownloadError, match="unexpected answer"):
        download.list_escus_files(server=server.url)


def test_list_escus_files_refuses_a_file_name_with_a_path(server):
    server.add_json(DATASET_PATH, dataverse_listing([{"id": 1, "filename": "../evil.zip", "body": b"x"}]))
    with pytest.raises(DownloadError, match="refusing the listed file name '../evil.zip'"):
        download.list_escus_files(server=server.url)


def test_list_escus_files_http_error(server):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download.list_escus_files(server=server.url)


def test_download_escus_parts_verified_resumed_extracted_and_marked(server, tmp_path, escus_parts):
    parts, metadata = escus_parts
    _serve_dataverse(server, parts + [metadata],
                     **{"ESC-US-02.tar.gz": {"interrupt_after": len(parts[1]["body"]) // 2}})
    dest = tmp_path / "ESC-US"
    assert download.download_escus(dest, n_parts=2, server=server.url, progress=False) == dest.resolve()
    clips = datasets.find_audio_files(dest)
    assert len(clips) == 6 and {c.parent.name for c in clips} == {"01", "02"}
    assert (dest / "ESC-US.csv").read_bytes() == metadata["body"]
    markers = sorted(p.name for p in (dest / ".esc_lib-parts").iterdir())
    assert markers == ["ESC-US-01.tar.gz.json", "ESC-US-02.tar.gz.json"]
    assert json.loads((dest / ".esc_lib-parts" / markers[0]).read_text())["n_files"] == 3
    assert not (dest / "archives").exists() or list((dest / "archives").iterdir()) == []
    assert f"bytes={len(parts[1]['body']) // 2}-" in [r[2] for r in server.requests]
    assert any(r[1] == "/api/access/datafile/4100?format=original" for r in server.requests)

    before = len(server.requests)
    download.download_escus(dest, n_parts=2, server=server.url, progress=False)
    assert len(server.requests) == before  # parts and CSV verified and marked: no network at all
    download.download_escus(dest, n_parts=2, server=server.url, progress=False, refresh_listing=True)
    assert len(server.requests) == before + 1  # only the listing; nothing downloaded again
    download.download_escus(dest, parts=[3], server=server.url, progress=False)
    assert len(datasets.find_audio_files(dest)) == 9  # a part not yet marked is fetched

    pool = datasets.escus_pool(dest, esc50_meta=pd.DataFrame({"filename": ["1-200011-A-0.wav"], "src_file": [200011]}))
    assert len(pool.files) == 8 and pool.n_excluded_leakage == 1
    assert "1 excluded by the leakage filter" in pool.summary()
    windows, origin, report = pool.load_all()
    assert windows.shape == (8, 220500) and report.n_skipped == 0 and report.n_used == 8


@pytest.mark.parametrize("choice, expected", [
    ({"parts": [3]}, ["03"]),
    ({"parts": ["ESC-US-02.tar.gz", 1]}, ["01", "02"]),
    ({"max_clips": 4, "clips_per_part": 3}, ["01", "02"]),
    ({"n_parts": 3}, ["01", "02", "03"]),
])
def test_download_escus_chooses_parts(server, tmp_path, escus_parts, choice, expected):
    parts, metadata = escus_parts
    _serve_dataverse(server, parts)
    dest = download.download_escus(tmp_path / "ESC-US", server=server.url, progress=False, **choice)
    assert sorted({p.parent.name for p in datasets.find_audio_files(dest)}) == expected


@pytest.mark.parametrize("choice", [{"parts": [4]}, {"parts": ["nope.zip"]}, {"n_parts": 4}, {"n_parts": 0},
                                    {"max_clips": 0}])
def test_download_escus_rejects_parts_that_do_not_exist(server, tmp_path, escus_parts, choice):
    parts, _ = escus_parts
    _serve_dataverse(server, parts)
    with pytest.raises(ValueError):
        download.download_escus(tmp_path / "ESC-US", server=server.url, progress=False, **choice)


def test_download_escus_checksum_mismatch_extracts_nothing(server, tmp_path, escus_parts):
    parts, _ = escus_parts
    listed = [dict(parts[0], checksum="0" * 32)] + parts[1:]
    _serve_dataverse(server, listed)
    dest = tmp_path / "ESC-US"
    with pytest.raises(DownloadError, match="md5: expected 0{32}, got [0-9a-f]{32}") as error:
        download.download_escus(dest, n_parts=1, server=server.url, progress=False)
    assert "/api/access/datafile/4001" in str(error.value)
    assert datasets.find_audio_files(dest) == []
    assert not (dest / ".esc_lib-parts").exists()
    assert list((dest / "archives").iterdir()) == []  # neither the archive nor a .part


@pytest.mark.parametrize("content, expected", [
    ("{not json", "cannot read it as JSON"),
    ('{"n_rows": 20, "colour": "red"}', r"unknown expectation\(s\) \['colour'\]"),
    ("[1, 2]", "unknown expectation"),
    ('{"n_rows": 20, "n_rows": 40}', r"\['n_rows'\] given twice"),  # JSON would keep the last without a word
])
def test_a_bad_esc50_expectations_file_is_a_one_line_error_naming_it(tmp_path, monkeypatch, content, expected):
    path = tmp_path / "expect.json"
    path.write_text(content)
    monkeypatch.setenv("ESC50_EXPECT", str(path))
    with pytest.raises(DatasetError, match=expected) as error:
        download.esc50_expectations()
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_download_sources_must_be_http_addresses(monkeypatch):
    from esc_lib import config

    monkeypatch.setenv("ESCUS_SERVER", "dataverse.harvard.edu")
    with pytest.raises(ValueError, match="ESCUS_SERVER='dataverse.harvard.edu' is not an http"):
        config.escus_server()
    monkeypatch.setenv("ESC50_URL", "http://127.0.0.1:8000/")
    assert config.esc50_url() == "http://127.0.0.1:8000"
