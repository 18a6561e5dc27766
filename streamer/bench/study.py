"""Study figures of ``streamer bench --only study``: many recordings, with and without Ray.

A study of ``count`` recordings (copies of a few distinct recordings of the synthetic
device, each its own file) replayed four ways into fresh folders: one after the
other in this process with every core (``--sequential``) and with one thread (what a
Ray task gets: one CPU), with Ray and one worker, with Ray and ``workers`` workers.
Ray's start-up is timed on its own and left out of the wall times. Each Ray study
runs twice on the same instance: first its worker processes start (imports, the
first replay's one-off costs: ``ray_worker_start_s``, paid once per worker, whatever
the study's size), then the same study again on those workers. The overhead Ray adds
per recording is (the second run with one worker - sequential with one thread) /
count: scheduling, serialising the results. (Measured against the sequential run
with every core, it would also count the core a one-CPU task does not use; measured
from a first run, the worker's start spread over a 12-recording study.) The speed-up
is that of the second run.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from helo.streamer.config import SessionConfig


def make_study(folder: Path, sources: Sequence[Path], count: int) -> list[Path]:
    """``count`` recordings in ``folder``: the sources copied in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"sub-{i + 1:02d}.xdf"
        shutil.copy(sources[i % len(sources)], path)
        paths.append(path)
    return paths


def study_speed(recordings: Sequence[Path], workers: int = 2) -> dict:
    """Wall times of the study sequentially, with Ray and 1 worker, with ``workers``
    (each a first run and a second on the same workers)."""
    import ray

    from helo.streamer.study import Study

    config = SessionConfig(stdout=False, lsl=False)
    root = Path(tempfile.mkdtemp(prefix="helo-bench-study-"))
    out: dict = {"recordings": len(recordings)}
    started = time.perf_counter()
    results = Study(list(recordings), root / "sequential", config, use_ray=False).run()
    out["sequential_s"] = time.perf_counter() - started
    out["recording_s"] = sum(r.recording_s for r in results)
    started = time.perf_counter()
    one = replace(config, threads=1)
    Study(list(recordings), root / "sequential1", one, use_ray=False).run()
    out["sequential_1_thread_s"] = time.perf_counter() - started
    for n in (1, workers):
        t0 = time.perf_counter()
        ray.init(num_cpus=n, include_dashboard=False, log_to_driver=False)
        out[f"ray_start_{n}_s"] = time.perf_counter() - t0
        try:
            for run in ("", "_warm"):  # new worker processes, then the same ones again
                t1 = time.perf_counter()
                Study(list(recordings), root / f"ray{n}{run}", config, use_ray=True).run()
                out[f"ray_{n}_workers{run}_s"] = time.perf_counter() - t1
        finally:
            ray.shutdown()
    warm = out[f"ray_{workers}_workers_warm_s"]
    out["speedup"] = out["sequential_s"] / warm
    out["speedup_over_1_thread"] = out["sequential_1_thread_s"] / warm
    out["ray_worker_start_s"] = out["ray_1_workers_s"] - out["ray_1_workers_warm_s"]
    out["ray_overhead_per_recording_s"] = (
        out["ray_1_workers_warm_s"] - out["sequential_1_thread_s"]
    ) / len(recordings)
    shutil.rmtree(root, ignore_errors=True)
    return out
