"""The group benchmark's own measuring: the standalone hop it compares a live run with,
and the per-thread CPU that told the readers' share from the inference's."""

from __future__ import annotations

import threading
import time

import numpy as np

from helo.models.checkpoint import load_checkpoint
from helo.streamer.bench.compute import hop_compute
from helo.streamer.bench.group import _threads_cpu_s
from helo.streamer.demo import default_checkpoint


def test_the_standalone_hop_runs_the_workers_whole_path_for_every_participant():
    figures = hop_compute(load_checkpoint(default_checkpoint()), participants=3, repeats=3)
    assert figures["n"] == 3
    assert np.isfinite(figures["p50_ms"])
    assert figures["p50_ms"] > 0


def test_per_thread_cpu_counts_the_named_threads_only():
    """(Linux: the figures come from /proc, as on the machines the benchmark runs on.)"""
    done = threading.Event()

    def spin() -> None:
        while time.thread_time() < 0.2:  # 0.2 s of CPU, however busy the machine is
            pass
        done.wait(30)

    busy = threading.Thread(target=spin, name="lsl-busy", daemon=True)
    idle = threading.Thread(target=done.wait, args=(30,), name="lsl-idle", daemon=True)
    other = threading.Thread(target=spin, name="other-busy", daemon=True)
    for thread in (busy, idle, other):
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            spent = _threads_cpu_s("lsl-")
            if spent.get(busy.native_id, 0.0) >= 0.15:
                break
            time.sleep(0.05)
        assert {busy.native_id, idle.native_id} <= set(spent)  # (and any reader left running)
        assert other.native_id not in spent
        assert spent[busy.native_id] >= 0.15
        assert spent[idle.native_id] < 0.1
    finally:
        done.set()
