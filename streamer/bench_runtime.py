"""Runtime benchmarks: live latency, replay speed and memory, reader capacity vs mne-lsl.

Used by ``streamer bench``. Each function returns plain figures (a dict) and
prints nothing; the command formats them.

- live latency: the synthetic device (32-ch EEG 256 Hz, GSR 32 Hz, PPG 64 Hz, face
  30 Hz) and the monitor in one process, hop 0.25 s; latency = newest sample in
  the window -> prediction emitted, both on the LSL clock;
- replay: a recording of that device (made with LabRecorder at an accelerated
  pace) replayed at ``--speed max``: seconds of recording per second of wall
  time, and the process's resident memory along the way;
- readers: a subprocess publishes a 64-ch 2048 Hz stream plus GSR, PPG and face
  (channel 0 counts samples); our readers and mne-lsl's ``StreamLSL`` read the
  same streams at the same time, each in its own process; lost samples from the
  counters, CPU seconds per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from helo.streamer.tuning import rss_mb


def live_latency(
    seconds: float = 60.0,
    checkpoint: Path | None = None,
    webcam_video: Path | None = None,
    device_chunk_s: float = 0.02,
) -> dict:
    """Latency of a live session; with ``webcam_video``, the face comes from the webcam
    device reading that video (looped, at its frame rate) instead of the simulation.

    The synthetic device pushes every ``device_chunk_s``: a sample waits up to that
    long in the device before it is sent, and the latency (from the sample's own
    timestamp) includes that wait, as it would with an amplifier sending packets."""
    import contextlib

    from helo.devices.synthetic import SyntheticDevice
    from helo.streamer.config import SessionConfig
    from helo.streamer.session import LiveSession

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    modalities = ("eeg", "gsr", "ppg") if webcam_video else ("eeg", "gsr", "ppg", "face")
    camera = contextlib.nullcontext()
    if webcam_video is not None:
        from helo.devices.webcam import WebcamDevice

        camera = WebcamDevice(webcam_video, loop=True, source_id=f"{prefix}-face")
    device = SyntheticDevice(source_prefix=prefix, modalities=modalities, chunk_s=device_chunk_s)
    with camera, device:
        streams = {m: f"{prefix}-{m}" for m in ("eeg", "gsr", "ppg", "face")}
        config = SessionConfig(
            checkpoint=checkpoint,
            streams=streams,
            stdout=False,
            lsl=True,
            hop_s=0.25,
            duration_s=seconds + 5.0,
        )
        with LiveSession(config) as session:
            cpu0 = time.process_time()
            session.run()
            cpu = time.process_time() - cpu0
            summary = session.latency.summary()
            health = session.health()
    summary.update(
        {
            "seconds": seconds + 5.0,
            "device_chunk_s": device_chunk_s,
            "process_cpu_share": cpu / (seconds + 5.0),
            "streams": {
                h.name: {
                    "received": h.received,
                    "gaps": h.gaps,
                    "rate_hz": round(h.effective_srate_hz, 2),
                }
                for h in health
            },
        }
    )
    return summary


def webcam_speed(seconds: float = 20.0, core: int = 0) -> dict:
    """Frames per second of the webcam device on one CPU core (a subprocess pinned to
    ``core``) reading a 640x480 video of a real face as fast as it goes, and its
    capture -> LSL latency when paced at 30 frames per second."""
    import tempfile

    out = Path(tempfile.mkdtemp(prefix="helo-bench-")) / "webcam.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "helo.streamer.bench_runtime",
            "webcam",
            str(seconds),
            str(core),
            str(out),
        ],
        check=True,
        timeout=seconds * 3 + 120,
    )
    return json.loads(out.read_text())


def face_video(path: Path, n_frames: int = 300) -> Path:
    """A 640x480, 30 fps video of scikit-image's astronaut moving a little."""
    from helo.devices.face_video import face_image, write_video

    return write_video(path, face_image("astronaut"), n_frames=n_frames)


def _webcam(seconds: float, core: int, out: Path) -> None:
    import tempfile

    from helo.devices.webcam import WebcamDevice

    os.sched_setaffinity(0, {core})
    video = face_video(Path(tempfile.mkdtemp(prefix="helo-bench-")) / "face.avi")
    report = {}
    fast = WebcamDevice(video, realtime=False, loop=True, source_id=f"bench-{uuid.uuid4().hex}")
    with fast:
        time.sleep(2.0)  # warm up (model load, first detection)
        before = fast.stats().processed
        start = time.perf_counter()
        time.sleep(seconds)
        done = fast.stats().processed - before
        report["fps_one_core"] = done / (time.perf_counter() - start)
        report["fast"] = fast.stats().summary()
    paced = WebcamDevice(video, realtime=True, loop=True, source_id=f"bench-{uuid.uuid4().hex}")
    with paced:
        time.sleep(seconds)
        report["paced_30fps"] = paced.stats().summary()
    Path(out).write_text(json.dumps(report))


def gui_speed(seconds: float = 60.0) -> dict:
    """The desktop app with the synthetic device for ``seconds``, in its own process
    (offscreen unless a display is set): redraws per second, the longest gap between
    event-loop turns, and the session's latency meanwhile."""
    import tempfile

    out = Path(tempfile.mkdtemp(prefix="helo-bench-")) / "gui.json"
    env = dict(os.environ)
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    command = [sys.executable, "-m", "helo.streamer.cli", "gui", "--start", "--timeline", "60"]
    command += ["--quit-after", str(seconds), "--stats", str(out)]
    subprocess.run(
        command,
        check=True,
        timeout=seconds + 120,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return json.loads(out.read_text())


def make_recording(path: Path, minutes: float, speed: float = 20.0) -> Path:
    """Record ``minutes`` of the synthetic device with LabRecorder, pushed ``speed`` times
    faster than real time (timestamps keep the device's own pace)."""
    from helo.devices.synthetic import SyntheticDevice
    from helo.streamer.recorder import Recorder, resolve_by_source_id

    prefix = f"bench-rec-{uuid.uuid4().hex[:8]}"
    device = SyntheticDevice(source_prefix=prefix, chunk_s=0.05)
    device.start_outlets()
    infos = [resolve_by_source_id(f"{prefix}-{m}") for m in (*device.modalities, "truth")]
    recorder = Recorder(path, infos).start()
    time.sleep(2.0)  # LabRecorder subscribes
    total_s = minutes * 60.0
    step_s = 0.05 * speed
    wall0 = time.perf_counter()
    session_s = 0.0
    while session_s < total_s:
        session_s = min(total_s, session_s + step_s)
        device.push_until(session_s)
        ahead = session_s / speed - (time.perf_counter() - wall0)
        if ahead > 0:
            time.sleep(ahead)
    recorder.stop(drain_s=3.0)
    device.stop()
    return path


def replay_speed(path: Path, checkpoint: Path | None = None) -> dict:
    from helo.models.checkpoint import load_checkpoint
    from helo.streamer.clocks import ReplayClock
    from helo.streamer.demo import DEMO_CHECKPOINT
    from helo.streamer.pipeline import Pipeline
    from helo.streamer.replay import ReplaySource
    from helo.streamer.replay_session import REPLAY_BATCH
    from helo.streamer.sinks import LatencyStats

    rss = [rss_mb()]
    ckpt = load_checkpoint(checkpoint or DEMO_CHECKPOINT)
    load0 = time.perf_counter()
    source = ReplaySource(path, ckpt.spec)
    load_s = time.perf_counter() - load0
    rss.append(rss_mb())
    hop = ckpt.spec.hop_s
    ends = source.grid_ends(hop)
    stats = LatencyStats()
    samples_rss: list[float] = []

    def watch(record) -> None:
        if record.index % 2000 == 0:
            samples_rss.append(rss_mb())

    clock = ReplayClock(float(ends[0]) - hop, float(ends[-1]), source.push_until, None)
    pipeline = Pipeline(
        ckpt, source.feeds, clock, [stats, watch], hop_s=hop, ends=ends, batch=REPLAY_BATCH
    )
    started = time.perf_counter()
    count = pipeline.run(threading.Event())
    seconds = time.perf_counter() - started
    span = float(ends[-1] - ends[0]) + hop
    return {
        "file": str(path),
        "recording_s": span,
        "windows": count,
        "predictions": stats.predictions,
        "wall_s": seconds,
        "load_s": load_s,
        "x_real_time": span / seconds,
        "windows_per_s": count / seconds,
        "rss_mb_before_load": rss[0],
        "rss_mb_after_load": rss[1],
        "rss_mb_during": samples_rss,
    }


def _reader_process(kind: str, prefix: str, seconds: float, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "helo.streamer.bench_runtime",
            "read",
            kind,
            prefix,
            str(seconds),
            str(out),
        ]
    )


def reader_capacity(
    seconds: float = 60.0, channels: int = 64, srate_hz: float = 2048.0, workdir: Path | None = None
) -> dict:
    """Our readers and mne-lsl's, side by side on the same high-rate streams."""
    import tempfile

    workdir = Path(workdir or tempfile.mkdtemp(prefix="helo-bench-"))
    prefix = f"bench-cap-{uuid.uuid4().hex[:8]}"
    publisher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "helo.streamer.bench_runtime",
            "publish",
            prefix,
            str(seconds + 8.0),
            str(channels),
            str(srate_hz),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert publisher.stdout.readline().strip() == "ready"
        ours = _reader_process("helo", prefix, seconds, workdir / "helo.json")
        theirs = _reader_process("mne-lsl", prefix, seconds, workdir / "mne.json")
        ours.wait(timeout=seconds + 120)
        theirs.wait(timeout=seconds + 120)
    finally:
        publisher.kill()
        publisher.wait()
    result = {
        "helo": json.loads((workdir / "helo.json").read_text()),
        "mne_lsl": json.loads((workdir / "mne.json").read_text()),
        "seconds": seconds,
        "eeg": f"{channels} ch x {srate_hz:g} Hz",
    }
    cpu_ours = result["helo"]["cpu_s"]
    cpu_theirs = result["mne_lsl"]["cpu_s"]
    result["cpu_ratio_helo_over_mne_lsl"] = cpu_ours / cpu_theirs if cpu_theirs else None
    return result


# ----------------------------------------------------------------------------- subprocesses


def _publish(prefix: str, seconds: float, channels: int, srate_hz: float) -> None:
    """High-rate EEG plus the synthetic GSR/PPG/face rates; channel 0 counts samples."""
    import pylsl

    specs = {
        "eeg": ("EEG", channels, srate_hz),
        "gsr": ("GSR", 1, 32.0),
        "ppg": ("PPG", 1, 64.0),
        "face": ("FaceBlendshapes", 56, 30.0),
    }
    outlets = {}
    for name, (kind, n, rate) in specs.items():
        info = pylsl.StreamInfo(
            f"{prefix}-{name}", kind, n, rate, pylsl.cf_float32, f"{prefix}-{name}"
        )
        outlets[name] = (pylsl.StreamOutlet(info, chunk_size=0, max_buffered=60), n, rate)
    print("ready", flush=True)
    t0 = pylsl.local_clock()
    sent = dict.fromkeys(specs, 0)
    while pylsl.local_clock() - t0 < seconds:
        now = pylsl.local_clock() - t0
        for name, (outlet, n, rate) in outlets.items():
            due = int(now * rate)
            if due > sent[name]:
                data = np.zeros((due - sent[name], n), dtype=np.float32)
                data[:, 0] = np.arange(sent[name], due)
                outlet.push_chunk(data, (t0 + np.arange(sent[name], due) / rate).tolist())
                sent[name] = due
        time.sleep(0.01)


def _read(kind: str, prefix: str, seconds: float, out: Path) -> None:
    import pylsl

    names = [f"{prefix}-{m}" for m in ("eeg", "gsr", "ppg", "face")]
    infos = [pylsl.resolve_byprop("source_id", n, timeout=10.0)[0] for n in names]
    counters: dict[str, list[float]] = {n: [] for n in names}
    cpu0 = time.process_time()
    if kind == "helo":  # ours: pull into ring buffers, read what is new every second
        from helo.streamer.lsl_reader import StreamReader

        readers = {
            n: StreamReader(i, buffer_s=30.0).start() for n, i in zip(names, infos, strict=True)
        }
        last = dict.fromkeys(names, -np.inf)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            time.sleep(1.0)
            for n, reader in readers.items():
                times, data = reader.buffer.read_span(last[n], np.inf)
                if len(times):
                    counters[n].extend(data[:, 0].tolist())
                    last[n] = times[-1]
        for reader in readers.values():
            reader.stop()
    else:
        from mne_lsl.stream import StreamLSL

        streams = {n: StreamLSL(bufsize=30.0, source_id=n).connect() for n in names}
        last = dict.fromkeys(names, -np.inf)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            time.sleep(1.0)
            for n, stream in streams.items():
                data, stamps = stream.get_data(winsize=5.0)  # overlapping: keep what is new
                fresh = (stamps > last[n]) & (stamps > 0)  # 0: not yet filled
                if fresh.any():
                    counters[n].extend(data[0, fresh].tolist())
                    last[n] = stamps[fresh][-1]
        for stream in streams.values():
            stream.disconnect()
    cpu = time.process_time() - cpu0
    report = {"cpu_s": cpu, "cpu_share": cpu / seconds}
    for n, values in counters.items():
        values = np.asarray(values)
        steps = np.diff(values) if len(values) > 1 else np.array([])
        report[n.rsplit("-", 1)[1]] = {
            "received": len(values),
            "lost": int(np.clip(steps - 1, 0, None).sum()) if len(steps) else 0,
            "repeated": int((steps < 1).sum()) if len(steps) else 0,
        }
    Path(out).write_text(json.dumps(report))


if __name__ == "__main__":
    if sys.argv[1] == "publish":
        _publish(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    elif sys.argv[1] == "read":
        _read(sys.argv[2], sys.argv[3], float(sys.argv[4]), Path(sys.argv[5]))
    elif sys.argv[1] == "webcam":
        _webcam(float(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
