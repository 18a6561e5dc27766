"""Group figures of ``streamer bench --only group``: one monitor for N participants.

The simulated group runs in its own process (in a lab each participant's amplifier
and camera are other machines; here they share the two cores, so the figures are
pessimistic), pushing every ``device_chunk_s`` like an amplifier sending packets.
The monitor follows all N with one scheduler hop and one batched model call per hop.
Per participant count: latency (newest sample in the window -> prediction emitted,
LSL clock) p50/p99 after the windows are full, the monitor process's CPU (share of
one core, and per participant), its own compute per hop (the last participant's
windows cut -> the predictions emitted) beside the same hop's work standalone (the
host's speed of the day), the CPU of the LSL reader threads, and whether it kept up
(hops handled vs hops due).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_DEVICE_CODE = (
    "import sys, time\n"
    "from helo.devices.synthetic_group import SyntheticGroup\n"
    "g = SyntheticGroup(int(sys.argv[1]), source_prefix=sys.argv[2], "
    "chunk_s=float(sys.argv[3]), labels=False).start()\n"
    "print('ready', flush=True)\n"
    "cpu = time.process_time(); time.sleep(float(sys.argv[4]))\n"
    "print('cpu', (time.process_time() - cpu) / float(sys.argv[4]), flush=True)\n"
    "g.stop()\n"
)


def group_latency(
    participants: Sequence[int] = (1, 4, 8, 16),
    seconds: float = 30.0,
    checkpoint: Path | None = None,
    device_chunk_s: float = 0.02,
    warmup_s: float = 6.0,
) -> dict:
    """The figures above for each participant count, one after the other."""
    return {
        str(n): one_group(n, seconds, checkpoint, device_chunk_s, warmup_s) for n in participants
    }


def grid_speed(participants: int, seconds: float) -> dict:
    """The app's participant grid (``helo.ui.group_bench``) in its own process, offscreen
    unless a display is set: redraws per second and the longest event-loop stall."""
    env = dict(os.environ)
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    command = [sys.executable, "-m", "helo.ui.group_bench", str(participants), str(seconds)]
    done = subprocess.run(
        command, check=True, timeout=seconds + 120, env=env, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_group(
    n: int,
    seconds: float,
    checkpoint: Path | None,
    device_chunk_s: float,
    warmup_s: float,
    align: bool = True,
    hop_s: float = 0.25,
    follow: bool = True,
) -> dict:
    """One participant count's figures (see the module docstring)."""
    from helo.devices.synthetic_group import participant_name
    from helo.models.checkpoint import load_checkpoint
    from helo.streamer.bench.compute import hop_compute
    from helo.streamer.config import SessionConfig
    from helo.streamer.demo import default_checkpoint
    from helo.streamer.process import settled_heap
    from helo.streamer.session import LiveSession
    from helo.streamer.sinks import MemorySink

    standalone = hop_compute(load_checkpoint(checkpoint or default_checkpoint()), n)
    prefix = f"bench-grp-{uuid.uuid4().hex[:6]}"
    total_s = seconds + warmup_s
    arguments = [str(n), prefix, str(device_chunk_s), str(total_s + 30)]
    device = subprocess.Popen(
        [sys.executable, "-c", _DEVICE_CODE, *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert device.stdout is not None
        if device.stdout.readline().strip() != "ready":
            raise RuntimeError("the simulated group did not start")
        names = [participant_name(i + 1) for i in range(n)]
        tables = {p: {m: f"{prefix}-{p}-{m}" for m in ("eeg", "gsr", "ppg", "face")} for p in names}
        memory = MemorySink()
        config = SessionConfig(
            checkpoint=checkpoint,
            participants=tables,
            participants_select=str(n),
            participants_by="config",
            stdout=False,
            lsl=True,
            hop_s=hop_s,
            duration_s=total_s,
            align_ends=align,
            follow_ends=follow,
        )
        with LiveSession(config, [memory]) as session, settled_heap():
            cpu0, wall0 = time.process_time(), time.perf_counter()
            readers0 = _threads_cpu_s("lsl-")
            count = session.run()
            readers = _threads_cpu_s("lsl-")
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            worker = session.pipeline.worker if session.pipeline else None
            ends = ends_figures(session)
            # hops are due from the first window on, after it waited to see the packets
            waited = session.pipeline.scheduler.phase_wait_s if session.pipeline else 0.0
    finally:
        _stop(device)
    out = {
        "participants": n,
        "seconds": round(wall, 1),
        "hops_handled": count // max(n, 1),
        "hops_due": int((wall - waited) / hop_s),
        "hop_s": hop_s,
        "process_cpu_share": round(cpu / wall, 3),
        "cpu_share_per_participant": round(cpu / wall / n, 4),
        "model_batches": worker.batches if worker else 0,
        "standalone_hop_p50_ms": round(standalone["p50_ms"], 2),
        "device_chunk_s": device_chunk_s,
        **ends,
    }
    if readers0:
        spent = sum(readers[t] - readers0[t] for t in readers0 if t in readers)
        out["reader_cpu_share"] = round(spent / wall, 3)
    return {**out, **_latency_figures(memory.records, n, warmup_s, out)}


def _stop(device: subprocess.Popen) -> None:
    """End the simulated group's process (killed if it does not end within 10 s)."""
    device.terminate()
    try:
        device.wait(10)
    except subprocess.TimeoutExpired:
        device.kill()


def _threads_cpu_s(prefix: str) -> dict[int, float]:
    """CPU seconds so far of this process's threads named ``prefix...``, by native id, from
    /proc (Linux; empty elsewhere). Per thread, because the process's total hides which
    of its 30-60 threads spends it: the readers took more than the inference."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out = {}
    for thread in threading.enumerate():
        if not thread.name.startswith(prefix) or thread.native_id is None:
            continue
        try:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the name: state is field 3
        out[thread.native_id] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


def ends_figures(session: object) -> dict:
    """Where a live session put its window ends (:mod:`helo.streamer.hop_phase`), if it
    moved them off round multiples of the hop."""
    pipeline = getattr(session, "pipeline", None)
    if pipeline is None:
        return {}
    phase, hint = pipeline.scheduler.phase, pipeline.scheduler.hop_hint
    out = {}
    if phase is not None and phase.moved:
        out = {
            "ends_phase_ms": round(phase.phase_s * 1e3, 1),
            "ends_wait_ms": round(phase.wait_s * 1e3, 2),
            "round_ends_wait_ms": round(phase.round_wait_s * 1e3, 2),
        }
    shifts = np.array(pipeline.scheduler.end_shifts)
    if shifts.size:  # the windows took in the packets that completed them
        out.update(
            ends_followed_p50_ms=round(float(np.percentile(shifts, 50)) * 1e3, 1),
            ends_followed_max_ms=round(float(shifts.max()) * 1e3, 1),
        )
    if hint is not None:  # a hop whose every end could sit next to a packet
        out.update(
            hint_hop_s=hint.hop_s,
            hint_wait_ms=round(hint.wait_s * 1e3, 2),
            hint_session_wait_ms=round(hint.session_wait_s * 1e3, 2),
        )
    return out


def _latency_figures(records: list, n: int, warmup_s: float, out: dict) -> dict:
    """Latency and compute percentiles of the records after the warm-up; kept up?"""
    first = records[0].t_end if records else 0.0
    steady = [r for r in records if r.t_end >= first + warmup_s]
    timed = [r for r in steady if r.latency_ms is not None]
    latency = np.array([r.latency_ms for r in timed])
    # newest sample -> windows cut: the wait for the devices' packets, before any compute
    waited = np.array([r.latency_ms - r.compute_ms for r in timed])
    # from the hop's last cut (each participant is cut once their streams are in, so the
    # first ones' time includes waiting for the others' packets) to its predictions
    per_hop: dict[int, float] = {}
    for r in steady:
        per_hop[r.index] = min(per_hop.get(r.index, np.inf), r.compute_ms)
    compute = np.array(list(per_hop.values()))
    behind = latency.size > 0 and np.percentile(latency, 99) >= 250
    figures: dict = {
        "predictions": sum(r.distribution is not None for r in steady),
        "windows": len(steady),
        "kept_up": bool(out["hops_handled"] >= 0.95 * out["hops_due"] and not behind),
    }
    if latency.size:
        figures.update(
            latency_p50_ms=round(float(np.percentile(latency, 50)), 1),
            latency_p99_ms=round(float(np.percentile(latency, 99)), 1),
            latency_max_ms=round(float(latency.max()), 1),
            waited_p50_ms=round(float(np.percentile(waited, 50)), 1),
            waited_p99_ms=round(float(np.percentile(waited, 99)), 1),
        )
    if compute.size:
        figures.update(
            compute_per_hop_p50_ms=round(float(np.percentile(compute, 50)), 2),
            compute_per_hop_p99_ms=round(float(np.percentile(compute, 99)), 2),
            compute_per_participant_p50_ms=round(float(np.percentile(compute, 50)) / n, 2),
        )
    return figures
