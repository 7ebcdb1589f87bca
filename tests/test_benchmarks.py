"""The benchmarks' own machinery: the generated clips of bench_scale (reused by bench_extract_parallel), and
bench_processes end to end at a tiny size."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
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


@pytest.mark.slow
def test_processes_benchmark_runs_both_ways_and_prints_the_ratio(capsys):
    """bench_processes: one process with every core against one per core, workers released together."""
    from benchmarks import bench_processes

    assert bench_processes.main(["--samples", "32", "--epochs", "1", "--rounds", "1", "--processes", "2"]) == 0
    out = capsys.readouterr().out
    assert "per process: " in out and re.search(r"^split +[\d.]+ .* [\d.]+x$", out, re.MULTILINE)
    assert re.search(r"^shared +[\d.]+ .* 1\.00x$", out, re.MULTILINE)


def test_processes_benchmark_needs_two_workers():
    from benchmarks import bench_processes

    with pytest.raises(SystemExit):
        bench_processes.main(["--processes", "1"])
