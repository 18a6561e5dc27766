"""Study figures of ``streamer bench --only study``: many recordings, with and without Ray.

A study of ``count`` recordings (copies of a few distinct recordings of the synthetic
device, each its own file) replayed three ways into fresh folders: one after the
other in this process (``--sequential``), with Ray and one worker, with Ray and
``workers`` workers. Ray's start-up is timed on its own and left out of the wall
times; the overhead Ray adds per recording is (Ray with one worker - sequential) /
count: scheduling, serialising the results, a worker process's imports.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
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
    """Wall times of the study sequentially, with Ray and 1 worker, with ``workers``."""
    import ray

    from helo.streamer.study import Study

    config = SessionConfig(stdout=False, lsl=False)
    root = Path(tempfile.mkdtemp(prefix="helo-bench-study-"))
    out: dict = {"recordings": len(recordings)}
    started = time.perf_counter()
    results = Study(list(recordings), root / "sequential", config, use_ray=False).run()
    out["sequential_s"] = time.perf_counter() - started
    out["recording_s"] = sum(r.recording_s for r in results)
    for n in (1, workers):
        t0 = time.perf_counter()
        ray.init(num_cpus=n, include_dashboard=False, log_to_driver=False)
        out[f"ray_start_{n}_s"] = time.perf_counter() - t0
        try:
            t1 = time.perf_counter()
            Study(list(recordings), root / f"ray{n}", config, use_ray=True).run()
            out[f"ray_{n}_workers_s"] = time.perf_counter() - t1
        finally:
            ray.shutdown()
    out["speedup"] = out["sequential_s"] / out[f"ray_{workers}_workers_s"]
    out["ray_overhead_per_recording_s"] = (out["ray_1_workers_s"] - out["sequential_s"]) / len(
        recordings
    )
    shutil.rmtree(root, ignore_errors=True)
    return out
