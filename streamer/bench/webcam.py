"""Webcam figures: frames per second of the webcam device on one CPU core, and its
capture -> LSL latency when paced. Run as ``python -m helo.streamer.bench.webcam`` for
the pinned subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path


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
            "helo.streamer.bench.webcam",
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
    report: dict[str, object] = {}
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


if __name__ == "__main__":
    _webcam(float(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
