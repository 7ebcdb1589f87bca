"""Tests for esc_lib.atomic: all-or-nothing file writes."""

import os
import stat

import numpy as np
import pytest

from esc_lib import atomic


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("existing", [None, b"old content"])
def test_atomic_path_replaces_the_file_when_the_block_succeeds(tmp_path, existing):
    target = tmp_path / "out.bin"
    if existing is not None:
        target.write_bytes(existing)
    with atomic.atomic_path(target) as temporary:
        assert temporary.parent == tmp_path and temporary != target
        assert temporary.name.startswith(".out.bin.") and temporary.name.endswith(".tmp")
        assert temporary.exists() and temporary.read_bytes() == b""  # created, empty
        temporary.write_bytes(b"new content")
        # Until the block ends, readers still see the old state.
        assert (target.read_bytes() if target.exists() else None) == existing
    assert target.read_bytes() == b"new content"
    assert _names(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("error", [OSError("disk full"), ValueError("bad value"), KeyboardInterrupt("killed")])
def test_an_exception_in_the_block_keeps_the_old_file_and_leaves_no_temporary(tmp_path, error):
    target = tmp_path / "table.csv"
    target.write_text("a\n1\n")
    with pytest.raises(type(error), match=str(error)):
        with atomic.atomic_path(target) as temporary:
            temporary.write_text("a\n2\n3")  # half written, then the failure
            raise error
    assert target.read_text() == "a\n1\n"
    assert _names(tmp_path) == ["table.csv"]


def test_a_failing_rename_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "entry.json"
    target.write_text("{}")

    def failing_replace(source, destination):
        raise OSError("rename failed")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        atomic.write_text(target, '{"a": 1}')
    assert target.read_text() == "{}"
    assert _names(tmp_path) == ["entry.json"]


@pytest.mark.parametrize("suffix", [".npy", ".keras", ".png", ".tar.gz"])
def test_the_suffix_is_kept_on_the_temporary_name(tmp_path, suffix):
    target = tmp_path / f"model{suffix}"
    with atomic.atomic_path(target, suffix=suffix) as temporary:
        assert temporary.name.endswith(".tmp" + suffix)
        temporary.write_bytes(b"x")
    assert _names(tmp_path) == [target.name]


def test_np_save_keeps_the_name_with_a_npy_suffix(tmp_path):
    # Without the suffix np.save would write "<temporary>.npy" and the rename would miss it.
    target = tmp_path / "array.npy"
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    with atomic.atomic_path(target, suffix=".npy") as temporary:
        np.save(temporary, array)
    np.testing.assert_array_equal(np.load(target), array)
    assert _names(tmp_path) == ["array.npy"]


@pytest.mark.parametrize("fsync", [True, False])
def test_parents_are_created(tmp_path, fsync):
    target = tmp_path / "a" / "b" / "c.txt"
    assert atomic.write_text(target, "hello\n", fsync=fsync) == target
    assert target.read_text() == "hello\n"
    with atomic.atomic_path(tmp_path / "x" / "y.bin", fsync=fsync) as temporary:
        temporary.write_bytes(b"1")
    assert (tmp_path / "x" / "y.bin").read_bytes() == b"1"


@pytest.mark.parametrize(("relative", "error"), [("blocker/out.txt", FileExistsError),
                                                 ("blocker/sub/out.txt", NotADirectoryError)])
def test_a_parent_that_is_a_file_raises_and_writes_nothing(tmp_path, relative, error):
    # The same errors as path.parent.mkdir(parents=True, exist_ok=True) gives.
    (tmp_path / "blocker").write_text("a file, not a folder")
    with pytest.raises(error):
        atomic.write_text(tmp_path / relative, "x")
    assert _names(tmp_path) == ["blocker"]


@pytest.mark.parametrize("text", ["plain\n", "crlf kept\r\n", "unicode: \u00e9\u00e8 \u2192 \u266b\n", ""])
def test_write_text_writes_utf8_without_newline_translation(tmp_path, text):
    target = atomic.write_text(str(tmp_path / "t.txt"), text)
    assert target.read_bytes() == text.encode("utf-8")


def test_write_bytes_round_trip(tmp_path):
    target = atomic.write_bytes(tmp_path / "b.bin", b"\x00\x01\xff")
    assert target.read_bytes() == b"\x00\x01\xff"


def test_the_final_file_gets_ordinary_permissions(tmp_path):
    # Like open(path, "w"): 0o666 minus the umask, not mkstemp's 0o600.
    umask = os.umask(0)
    os.umask(umask)
    target = atomic.write_text(tmp_path / "shared.csv", "a\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_concurrent_temporaries_do_not_collide(tmp_path):
    target = tmp_path / "same.txt"
    with atomic.atomic_path(target) as first, atomic.atomic_path(target) as second:
        assert first != second
        first.write_text("first")
        second.write_text("second")
    # The outer block finishes last, so its content wins.
    assert target.read_text() == "first"
    assert _names(tmp_path) == ["same.txt"]


@pytest.mark.parametrize("bad_path", ["", ".", "some/folder/.."])
def test_a_path_without_a_file_name_is_rejected(bad_path):
    with pytest.raises(ValueError, match="path must name a file"):
        with atomic.atomic_path(bad_path):
            pass


@pytest.mark.parametrize("bad_suffix", ["/x", "a/b", 3])
def test_a_bad_suffix_is_rejected(tmp_path, bad_suffix):
    with pytest.raises(ValueError, match="suffix"):
        with atomic.atomic_path(tmp_path / "f", suffix=bad_suffix):
            pass
    assert _names(tmp_path) == []


@pytest.mark.parametrize(("function", "content"), [(atomic.write_text, b"bytes"), (atomic.write_text, 3),
                                                   (atomic.write_bytes, "text")])
def test_wrong_content_types_raise_type_error(tmp_path, function, content):
    with pytest.raises(TypeError):
        function(tmp_path / "f", content)
    assert _names(tmp_path) == []
