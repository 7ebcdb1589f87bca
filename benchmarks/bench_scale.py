"""How extraction and CAE pre-training grow with the pool: the on-disk store against the in-memory pool.

For each pool size N (generated five-second Ogg clips, noise with a random
tone, made once under ``--workdir`` and reused), each measurement runs in its
own child process, so its peak resident memory (``ru_maxrss``) is its own:

1. ``extract, memory``: :func:`esc_lib.features.extract_pool` (threads, the
   features combined in one array);
2. ``extract, store``: :func:`esc_lib.store.build_store` (shard by shard to disk), threads;
   ``extract, dask``: the same on a Dask LocalCluster of one worker per core (target: >= 0.9x
   the threaded speed on 2 cores);
3. ``CAE epoch, memory``: one epoch of the paper's CAE on the standardised
   in-memory array;
4. ``CAE epoch, store``: the same epoch streamed from the store
   (:class:`esc_lib.store.LazyRows` + :class:`esc_lib.store.RowStream`);
5. ``read, memory`` / ``read, store``: one epoch of those standardised batches
   with no model, batches per second (target: the store feeds at least what
   the CAE consumes).

Then, at the largest N, Dask's speed against the threads and the store's read
rate against memory and against the CAE's consumption, and a linear projection
for the 250 000 clips of ESC-US on this machine and on a Dask cluster.

Printed per N: seconds per clip (extraction) or per 1 000 clips (an epoch),
peak RSS in MiB, and both as ratios to the smallest N of the same run (the
targets: time per clip within 10%, RSS within 20%, for the store path).
Features are the paper's 28 x 36 unless ``--strong`` (64 x 108).

Usage::

    python benchmarks/bench_scale.py --sizes 1000 5000 20000
    python benchmarks/bench_scale.py --sizes 1000 5000 20000 --workdir ../bench-scale --only cae-memory cae-store --repeats 3
        # the CAE epochs again on the stores of an earlier run, the fastest of 3 timed epochs each
    python benchmarks/bench_scale.py --sizes 200 400 --workdir ~/bench-scale   # a quick look, clips kept
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _write_clip(path: Path, i: int, sr: int = 44100) -> None:
    """Clip ``i``: a sine of a seeded frequency plus noise, written whole (temporary + rename)."""
    import soundfile

    from esc_lib.atomic import atomic_path

    t = np.arange(5 * sr) / sr
    rng = np.random.default_rng(i)
    y = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t) + 0.1 * rng.standard_normal(len(t))
    with atomic_path(path, ".ogg", fsync=False) as temporary:  # a killed run leaves no half clip to reuse
        soundfile.write(str(temporary), y.astype(np.float32), sr, format="OGG", subtype="VORBIS")


def _clips(workdir: Path, n: int) -> list[Path]:
    """``n`` five-second Ogg clips under ``workdir/clips`` (made once, numbered, reused by larger runs).

    The missing ones are encoded in one process per core (Vorbis encoding is
    most of the time of a first run at 20 000 clips); each clip depends only on
    its number, so the files are the same however many processes make them.
    """
    from concurrent.futures import ProcessPoolExecutor

    folder = workdir / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"clip{i:06d}.ogg" for i in range(n)]
    missing = [(path, i) for i, path in enumerate(paths) if not path.exists()]
    if missing:
        print(f"bench_scale: making {len(missing)} clips in {folder}", flush=True)
        with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
            list(pool.map(_write_clip, *zip(*missing), chunksize=64))
    return paths


def _child(task: dict) -> dict:
    """Run one measurement in a fresh interpreter; returns its figures and peak RSS (MiB)."""
    code = ("import json, resource, sys; sys.path.insert(0, %r); from benchmarks.bench_scale import _measure; "
            "out = _measure(json.load(open(sys.argv[1]))); "
            "out['peak_rss_mib'] = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024; "
            "print(json.dumps(out))") % str(ROOT)  # children: the Dask workers (the largest one)
    # The task (thousands of file names) goes through a file: a command line would be too long.
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(task, handle)
    try:
        done = subprocess.run([sys.executable, "-c", code, handle.name], capture_output=True, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)})  # Dask workers too
    finally:
        os.unlink(handle.name)
    if done.returncode:
        raise SystemExit(f"bench_scale: {task['what']} at N={len(task['files'])} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure(task: dict) -> dict:
    from esc_lib import features, store
    from esc_lib.features import FeatureParams

    params = FeatureParams(**task["params"])
    files = [Path(f) for f in task["files"]]
    n = len(files)
    if task["what"] == "extract-memory":
        start = time.perf_counter()
        pool = features.extract_pool(files, params, cache=False, progress=False)
        return {"seconds": time.perf_counter() - start, "rows": len(pool.X)}
    if task["what"] in ("extract-store", "extract-dask"):
        scheduler = "local" if task["what"] == "extract-dask" else None
        root = task["store"] + ("-dask" if scheduler else "")
        start = time.perf_counter()
        built = store.build_store(files, root, params, progress=False, scheduler=scheduler)
        return {"seconds": time.perf_counter() - start, "rows": len(built)}
    if task["what"] in ("read-memory", "read-store"):
        # One epoch of standardised CAE batches of 32, no model: what the store can feed per second.
        from esc_lib.streams import BatchStream

        built = store.open_store(task["store"])
        scaler = store.standardizer_from(built.X)
        if task["what"] == "read-memory":
            stream = BatchStream(scaler.transform(np.asarray(built.X)), batch_size=32, seed=0, target="input")
        else:
            stream = store.RowStream(store.LazyRows([built.X], transform=scaler.transform), np.arange(len(built)), 32, seed=0)
        start = time.perf_counter()
        batches = sum(1 for _ in stream.epoch(0))
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "rows": n, "batches_per_s": batches / seconds}
    # One CAE epoch (the paper's network), from memory or from the store.
    import keras

    from esc_lib import models, training
    from esc_lib.streams import BatchStream

    built = store.open_store(task["store"])
    scaler = store.standardizer_from(built.X)
    model = models.build_cae(params.shape, encoder="(64)5c-2p-(64)3c-2p-(64)3c-2p", decoder="unpool")
    training.compile_autoencoder(model, learning_rate=0.001)
    if task["what"] == "cae-memory":
        stream = BatchStream(scaler.transform(np.asarray(built.X)), batch_size=32, seed=0, target="input")
    else:
        stream = store.RowStream(store.LazyRows([built.X], transform=scaler.transform), np.arange(len(built)), 32, seed=0)
    dataset = stream.as_dataset(0).repeat()
    model.fit(dataset, steps_per_epoch=stream.steps_per_epoch, epochs=1, verbose=0)  # warm-up: tracing
    times = []
    for _ in range(task.get("repeats", 1)):  # the fastest epoch: the least disturbed by other work on the machine
        start = time.perf_counter()
        model.fit(dataset, steps_per_epoch=stream.steps_per_epoch, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    keras.backend.clear_session()
    return {"seconds": min(times), "rows": n}


MEASURES = ("extract-memory", "extract-store", "extract-dask", "read-memory", "read-store", "cae-memory", "cae-store")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--workdir", type=Path, default=None, help="where the generated clips and stores go (kept)")
    parser.add_argument("--strong", action="store_true", help="64 x 108 features instead of the paper's 28 x 36")
    parser.add_argument("--skip-cae", action="store_true", help="extraction only")
    parser.add_argument("--repeats", type=int, default=1,
                        help="CAE epochs timed after the warm-up, the fastest reported (a busy machine varies)")
    parser.add_argument("--only", nargs="+", choices=MEASURES, default=None,
                        help="these measurements only; without extract-store the stores of an earlier run are reused")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    params = dict(n_mels=64, n_fft=4096, hop_length=2048) if args.strong else {}
    sizes = sorted(args.sizes)
    print(f"bench_scale: sizes {sizes}, clips in {workdir}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    files = [str(p) for p in _clips(workdir, sizes[-1])]
    rows = []
    for n in sizes:
        store_dir = workdir / f"store-{n}{'-strong' if args.strong else ''}"
        measures = [m for m in MEASURES if (args.only is None or m in args.only)
                    and not (args.skip_cae and m.startswith("cae"))]
        for suffix, built_by in (("", "extract-store"), ("-dask", "extract-dask")):
            if built_by in measures and (workdir / f"{store_dir.name}{suffix}").exists():
                import shutil

                shutil.rmtree(workdir / f"{store_dir.name}{suffix}")
        if "extract-store" not in measures and not (store_dir / "manifest.json").is_file():
            raise SystemExit(f"bench_scale: no store at {store_dir} to reuse; measure extract-store too")
        for what in measures:
            out = _child({"what": what, "files": files[:n], "params": params, "store": str(store_dir),
                          "repeats": args.repeats})
            per = out["seconds"] / n * (1 if what.startswith("extract") else 1000)
            rows.append({"N": n, "what": what, "per": per, "rss": out["peak_rss_mib"], "batches_per_s": out.get("batches_per_s")})
            rate = f", {out['batches_per_s']:7.0f} batches/s" if out.get("batches_per_s") else ""
            print(f"  N={n:6d} {what:15s} {per:9.4f} {'s/clip' if what.startswith('extract') else 's/1000 clips':12s} "
                  f"peak RSS {out['peak_rss_mib']:8.0f} MiB{rate}", flush=True)
    print("\nratios to the smallest N (time per clip, peak RSS):")
    for what in dict.fromkeys(r["what"] for r in rows):
        base = next(r for r in rows if r["what"] == what)
        line = ", ".join(f"N={r['N']}: time x{r['per'] / base['per']:.2f}, RSS x{r['rss'] / base['rss']:.2f}"
                         for r in rows if r["what"] == what)
        print(f"  {what:15s} {line}")
    largest = max(sizes)
    at = {r["what"]: r for r in rows if r["N"] == largest}
    print(f"\nat N={largest}, same run:")
    if {"extract-store", "extract-dask"} <= at.keys():
        print(f"  Dask LocalCluster / threads, extraction speed: x{at['extract-store']['per'] / at['extract-dask']['per']:.2f}")
    if {"read-store", "read-memory"} <= at.keys():
        print(f"  store / in-memory, batches read per second: "
              f"x{at['read-store']['batches_per_s'] / at['read-memory']['batches_per_s']:.2f}")
    if {"cae-store", "read-store"} <= at.keys():
        consumed = 1000 / 32 / at["cae-store"]["per"]
        print(f"  the CAE consumes {consumed:.0f} batches/s of 32; the store reads "
              f"{at['read-store']['batches_per_s']:.0f}/s (x{at['read-store']['batches_per_s'] / consumed:.1f})")
    # Linear projection from the largest N (the ratios above say whether cost is linear).
    clips = 250_000
    if "cae-store" in at:
        print(f"\nprojection for {clips} clips on this machine ({os.cpu_count()} cores): one CAE epoch "
              f"{at['cae-store']['per'] * clips / 1000 / 60:.0f} min")
    if "extract-store" in at:
        extract = at["extract-store"]["per"] * clips
        print(f"projection for {clips} clips on this machine ({os.cpu_count()} cores): extraction "
              f"{extract / 60:.0f} min (threads, store), disk {clips * _row_bytes(params) / 2**30:.1f} GiB of features")
        for workers in (16, 64):
            print(f"  on a Dask cluster of {workers} such cores (linear, files on shared storage): extraction "
                  f"{extract * os.cpu_count() / workers / 60:.1f} min")
    return 0


def _row_bytes(params: dict) -> int:
    """Bytes of one clip's float32 features (28 x 36, or 64 x 108 with --strong)."""
    from esc_lib.features import FeatureParams

    return int(np.prod(FeatureParams(**params).shape)) * 4


if __name__ == "__main__":
    raise SystemExit(main())
