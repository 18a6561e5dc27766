"""The webcam device: a camera (or a video file) -> face features on LSL. No video is stored.

Two threads, so that neither a slow camera nor a slow frame stalls the rest:

- capture: reads frames from OpenCV (camera index or file path), stamps each with
  ``pylsl.local_clock()`` the moment it is read, and leaves it in a one-frame
  mailbox; a frame not yet taken when the next one comes is dropped and counted
  (never queued without bound). A video file is paced at its own frame rate
  (``realtime=False`` reads it as fast as the face model goes, for benchmarks);
- face: takes the newest frame, runs the MediaPipe Face Landmarker, and pushes
  one sample stamped with the capture time: the 52 blendshape scores (NaN when
  no face was found, never stale values), ``facePresent`` (1/0) and head yaw,
  pitch and roll (degrees).

The stream (type ``FaceBlendshapes``, nominal 30 Hz or the source's rate) says
``can_drop_samples`` in its description so that XDF readers keep the real frame
times instead of de-jittering them. Only features leave the device: frames are
never recorded or published, which matters to ethics boards. A preview (the
newest frame with its landmarks) is drawn only while someone asks for it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pylsl

if TYPE_CHECKING:  # OpenCV is imported when a camera is opened
    import cv2

from helo.devices.face_model import FaceLandmarker
from helo.models.errors import HeloError
from helo.models.features.face import FACE_STREAM_CHANNELS
from helo.models.streams import FACE_TYPE, declare_can_drop_samples, declare_channels

log = logging.getLogger(__name__)

PREVIEW_TIMEOUT_S = 2.0  # the preview stops being drawn when nobody asked for this long


class CameraError(HeloError):
    """The camera or video file cannot be opened or read."""


@dataclass
class WebcamStats:
    """Counters of the device (read with :meth:`WebcamDevice.stats`)."""

    captured: int = 0
    processed: int = 0
    dropped: int = 0
    no_face: int = 0
    process_ms: list[float] = field(default_factory=list)  # face model per frame
    latency_ms: list[float] = field(default_factory=list)  # capture -> LSL push
    ended: bool = False  # the video file is over

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {
            "captured": self.captured,
            "processed": self.processed,
            "dropped": self.dropped,
            "no_face": self.no_face,
        }
        for name, values in (("process", self.process_ms), ("latency", self.latency_ms)):
            if values:
                out[f"{name}_p50_ms"] = float(np.percentile(values, 50))
                out[f"{name}_p99_ms"] = float(np.percentile(values, 99))
        return out

    def describe(self) -> str:
        """One line for the end of a session."""
        s = self.summary()
        line = (
            f"{self.captured} frames captured, {self.processed} processed, "
            f"{self.dropped} dropped, {self.no_face} without a face"
        )
        if "process_p50_ms" in s:
            line += (
                f"; face model p50 {s['process_p50_ms']:.1f} ms, p99 {s['process_p99_ms']:.1f} ms"
            )
        return line


def face_stream_info(name: str, source_id: str, srate_hz: float) -> pylsl.StreamInfo:
    info = pylsl.StreamInfo(
        name, FACE_TYPE, len(FACE_STREAM_CHANNELS), srate_hz, pylsl.cf_float32, source_id
    )
    units = [
        "degrees" if label.startswith("head") else ("flag" if label == "facePresent" else "score")
        for label in FACE_STREAM_CHANNELS
    ]
    declare_channels(info, FACE_STREAM_CHANNELS, units=units)
    declare_can_drop_samples(info)
    model = info.desc().append_child("face_model")
    model.append_child_value("name", "MediaPipe Face Landmarker (blendshapes)")
    model.append_child_value("note", "features only; no video is stored or sent")
    return info


class WebcamDevice:
    """Face features of a camera (``source`` an int) or a video file (a path) on LSL."""

    def __init__(
        self,
        source: int | str | Path = 0,
        *,
        fps_cap: float | None = None,
        face_model: str | Path | None = None,
        name: str = "HeLo-webcam-face",
        source_id: str | None = None,
        realtime: bool = True,
        loop: bool = False,
        width: int | None = None,
        height: int | None = None,
        wait_for_reader: bool = False,
    ):
        self.source = source
        self.wait_for_reader = wait_for_reader
        self.fps_cap = fps_cap
        self.face_model = face_model
        self.name = name
        self.source_id = source_id or f"helo-webcam-{source}"
        self.realtime = realtime
        self.loop = loop
        self.size = (width, height)
        self._stats = WebcamStats()
        self._lock = threading.Lock()
        self._mailbox: tuple[np.ndarray, float] | None = None
        self._frame_ready = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._capture: cv2.VideoCapture | None = None
        self._is_file = False
        self._landmarker: FaceLandmarker | None = None
        self.outlet: pylsl.StreamOutlet | None = None
        self.srate_hz = 30.0
        self._preview_wanted_until = 0.0
        self._preview: np.ndarray | None = None
        self._idle = threading.Event()  # the face thread waits for a frame

    # ------------------------------------------------------------------ life cycle

    def open(self) -> WebcamDevice:
        """Open the source and the face model (one-line errors), create the outlet."""
        import cv2

        is_file = not isinstance(self.source, int)
        if not isinstance(self.source, int) and not Path(self.source).is_file():
            raise CameraError(f"{self.source}: no such video file")
        device = self.source if isinstance(self.source, int) else str(self.source)
        capture = cv2.VideoCapture(device)
        if not capture.isOpened():
            what = f"video file {self.source}" if is_file else f"camera {self.source}"
            raise CameraError(
                f"cannot open {what}"
                + ("" if is_file else " (is it connected, and not used by another program?)")
            )
        width, height = self.size
        if not is_file and width and height:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        fps = fps if 1.0 <= fps <= 240.0 else 30.0
        self.srate_hz = min(fps, self.fps_cap) if self.fps_cap else fps
        self._is_file = is_file
        self._capture = capture
        try:
            self._landmarker = FaceLandmarker(self.face_model)
        except HeloError:
            capture.release()
            raise
        self.outlet = pylsl.StreamOutlet(face_stream_info(self.name, self.source_id, self.srate_hz))
        return self

    def start(self) -> WebcamDevice:
        if self._capture is None:
            self.open()
        self._threads = [
            threading.Thread(target=self._capture_loop, name="webcam-capture", daemon=True),
            threading.Thread(target=self._face_loop, name="webcam-face", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("webcam device: %s at %.0f Hz -> LSL %r", self.source, self.srate_hz, self.name)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._frame_ready:
            self._frame_ready.notify_all()
        for thread in self._threads:
            thread.join(3.0)
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None
        self.outlet = None

    def __enter__(self) -> WebcamDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_until_done(self, timeout_s: float | None = None) -> bool:
        """For a video file read once: block until its last frame was processed."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._stop.is_set():
            with self._lock:
                done = self._stats.ended and self._mailbox is None
            if done and self._idle.is_set():
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    # ------------------------------------------------------------------ threads

    def _capture_loop(self) -> None:
        import cv2

        capture = self._capture
        assert capture is not None, "open() first"
        period = 1.0 / self.srate_hz
        next_due = time.perf_counter()
        skip_every = None
        if self._is_file and self.fps_cap:  # thin a faster file down to the cap
            native = capture.get(cv2.CAP_PROP_FPS) or self.srate_hz
            skip_every = max(1.0, native / self.srate_hz)
        index = 0.0
        if self._is_file and self.wait_for_reader:
            self._wait_for_reader()
        while not self._stop.is_set():
            ok, frame = capture.read()
            stamp = pylsl.local_clock()
            if not ok:
                if self._is_file and self.loop:
                    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    continue
                with self._frame_ready:
                    self._stats.ended = True
                    self._frame_ready.notify_all()
                if not self._is_file:
                    log.error("camera %s stopped delivering frames", self.source)
                return
            if skip_every is not None:
                index += 1.0
                if index % skip_every >= 1.0:
                    continue
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            with self._frame_ready:
                self._stats.captured += 1
                if self._mailbox is not None:
                    if self.realtime or not self._is_file:
                        self._stats.dropped += 1  # the face thread is behind: drop, count
                    else:  # a file read as fast as possible: wait instead of dropping
                        while self._mailbox is not None and not self._stop.is_set():
                            self._frame_ready.wait(0.05)
                self._mailbox = (rgb, stamp)
                self._frame_ready.notify_all()
            if self._is_file and self.realtime:
                next_due += period
                delay = next_due - time.perf_counter()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_due = time.perf_counter()

    def _wait_for_reader(self) -> None:
        """A video file stands in for a camera: its frames start when someone listens
        (a session still looking for its other streams would miss the beginning)."""
        outlet = self.outlet
        assert outlet is not None, "open() first"
        while not self._stop.is_set() and not outlet.wait_for_consumers(0.1):
            pass

    def _face_loop(self) -> None:
        landmarker, outlet = self._landmarker, self.outlet
        assert landmarker is not None, "open() first"
        assert outlet is not None, "open() first"
        while not self._stop.is_set():
            with self._frame_ready:
                while self._mailbox is None and not self._stop.is_set():
                    self._idle.set()
                    if self._stats.ended:
                        self._frame_ready.wait(0.05)
                        continue
                    self._frame_ready.wait(0.1)
                if self._stop.is_set() or self._mailbox is None:
                    return
                rgb, stamp = self._mailbox
                self._mailbox = None
                self._idle.clear()
                self._frame_ready.notify_all()
            want_preview = time.monotonic() < self._preview_wanted_until
            started = time.perf_counter()
            face = landmarker.process(rgb, int(stamp * 1000), landmarks=want_preview)
            done = time.perf_counter()
            outlet.push_sample(face.sample(), timestamp=stamp)
            pushed = pylsl.local_clock()
            with self._lock:
                stats = self._stats
                stats.processed += 1
                stats.no_face += not face.present
                stats.process_ms.append((done - started) * 1e3)
                stats.latency_ms.append((pushed - stamp) * 1e3)
                for values in (stats.process_ms, stats.latency_ms):
                    if len(values) > 10_000:
                        del values[:5_000]
            if want_preview:
                self._preview = draw_preview(rgb, face)

    # ------------------------------------------------------------------ outside view

    def stats(self) -> WebcamStats:
        with self._lock:
            s = self._stats
            return WebcamStats(
                s.captured,
                s.processed,
                s.dropped,
                s.no_face,
                list(s.process_ms),
                list(s.latency_ms),
                s.ended,
            )

    def preview(self) -> np.ndarray | None:
        """The newest frame with its landmarks (RGB), drawn only while this is being asked
        for (at least every ``PREVIEW_TIMEOUT_S``); None until one is ready."""
        self._preview_wanted_until = time.monotonic() + PREVIEW_TIMEOUT_S
        return self._preview


def draw_preview(rgb: np.ndarray, face) -> np.ndarray:
    """The frame with the landmarks as small dots (and a red border without a face)."""
    import cv2

    out = rgb.copy()
    if face.present and face.landmarks is not None:
        for x, y in face.landmarks.astype(int)[::2]:
            cv2.circle(out, (int(x), int(y)), 1, (0, 255, 0), -1)
    else:
        cv2.rectangle(out, (0, 0), (out.shape[1] - 1, out.shape[0] - 1), (255, 0, 0), 4)
    return out
