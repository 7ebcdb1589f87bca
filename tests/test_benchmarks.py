"""The benchmarks' own machinery: the generated clips of bench_scale (reused by bench_extract_parallel)."""

from __future__ import annotations

import os

import numpy as np
import soundfile

from benchmarks import bench_scale


def test_generated_clips_are_whole_numbered_and_reused(tmp_path):
    paths = bench_scale._clips(tmp_path, 3)
    assert [p.name for p in paths] == ["clip000000.ogg", "clip000001.ogg", "clip000002.ogg"]
    for path in paths:
        y, sr = soundfile.read(str(path))
        assert sr == 44100 and abs(len(y) - 5 * sr) <= 1
    # Nothing half-written is left beside them (each clip is written under a temporary name, then renamed).
    assert sorted(os.listdir(tmp_path / "clips")) == [p.name for p in paths]
    stamps = [p.stat().st_mtime_ns for p in paths]
    more = bench_scale._clips(tmp_path, 4)  # a larger run makes only the missing clip
    assert [p.stat().st_mtime_ns for p in more[:3]] == stamps and more[3].is_file()


def test_a_clip_depends_only_on_its_number(tmp_path):
    # Made in a pool of processes or one by one, clip i is the same audio: a larger N extends a smaller one.
    pooled = bench_scale._clips(tmp_path / "pooled", 2)
    bench_scale._write_clip(tmp_path / "alone.ogg", 1)
    a, _ = soundfile.read(str(pooled[1]))
    b, _ = soundfile.read(str(tmp_path / "alone.ogg"))
    np.testing.assert_array_equal(a, b)
    c, _ = soundfile.read(str(pooled[0]))
    assert not np.array_equal(a[:1000], c[:1000])
