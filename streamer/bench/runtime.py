"""Runtime figures of ``streamer bench``: live latency, replay speed and memory, the app.

- live latency: the synthetic device (32-ch EEG 256 Hz, GSR 32 Hz, PPG 64 Hz, face
  30 Hz) and the monitor in one process, hop 0.25 s; latency = newest sample in
  the window -> prediction emitted, both on the LSL clock;
- replay: a recording of that device (made with LabRecorder at an accelerated
  pace) replayed at ``--speed max``: seconds of recording per second of wall
  time, and the process's resident memory along the way;
- the app: redraws per second and the longest stall of the event loop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from helo.devices.synthetic import StreamStyle
from helo.streamer.bench.group import ends_figures
from helo.streamer.process import anon_mb, rss_mb, settled_heap


def live_latency(
    seconds: float = 60.0,
    checkpoint: Path | None = None,
    webcam_video: Path | None = None,
    device_chunk_s: float = 0.02,
    style: StreamStyle | None = None,
    align: bool = True,
    follow: bool = True,
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
    camera: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if webcam_video is not None:
        from helo.devices.webcam import WebcamDevice

        camera = WebcamDevice(webcam_video, loop=True, source_id=f"{prefix}-face")
    device = SyntheticDevice(
        source_prefix=prefix, modalities=modalities, chunk_s=device_chunk_s, style=style
    )
    with camera, device:
        streams = {m: f"{prefix}-{m}" for m in ("eeg", "gsr", "ppg", "face")}
        config = SessionConfig(
            checkpoint=checkpoint,
            streams=streams,
            stdout=False,
            lsl=True,
            hop_s=0.25,
            duration_s=seconds + 5.0,
            align_ends=align,
            follow_ends=follow,
        )
        with LiveSession(config) as session, settled_heap():
            cpu0 = time.process_time()
            session.run()
            cpu = time.process_time() - cpu0
            summary: dict[str, object] = {**session.latency.summary(), **ends_figures(session)}
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
    """A replay at full speed through :class:`ReplaySession`, as ``streamer replay`` runs
    it; memory (resident, and anonymous: the heap without mapped file pages) sampled
    every 2,000 windows."""
    from helo.streamer.config import ReplayOptions, SessionConfig
    from helo.streamer.replay_session import ReplaySession

    rss, anon = [rss_mb()], [anon_mb()]
    samples_rss: list[float] = []
    samples_anon: list[float] = []

    def watch(record) -> None:
        if record.index % 2000 == 0:
            samples_rss.append(rss_mb())
            samples_anon.append(anon_mb())

    config = SessionConfig(checkpoint=checkpoint, stdout=False, lsl=False)
    session = ReplaySession(config, ReplayOptions(path), [watch])
    load0 = time.perf_counter()
    with session:
        load_s = time.perf_counter() - load0
        rss.append(rss_mb())
        anon.append(anon_mb())
        started = time.perf_counter()
        count = session.run()
        seconds = time.perf_counter() - started
    span = session.played_s(count)
    return {
        "file": str(path),
        "recording_s": span,
        "windows": count,
        "predictions": session.latency.predictions,
        "wall_s": seconds,
        "load_s": load_s,
        "x_real_time": span / seconds,
        "windows_per_s": count / seconds,
        "rss_mb_before_load": rss[0],
        "rss_mb_after_load": rss[1],
        "rss_mb_during": samples_rss,
        "anon_mb_before_load": anon[0],
        "anon_mb_after_load": anon[1],
        "anon_mb_during": samples_anon,
    }
