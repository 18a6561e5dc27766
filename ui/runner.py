"""What the desktop app starts and stops: a live session or a replay, off the GUI thread.

The runtime knows nothing of Qt. A :class:`SessionRunner` runs one session in a
plain thread, hands each prediction to a callback (the GUI turns it into a Qt
signal), and exposes read-only views for drawing: the ring buffers of the
streams, their health, the true distribution when a source publishes one, and
the session's clock. A failure ends the thread and reaches ``on_error`` as one
readable line; nothing is raised into the GUI.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pylsl

from helo.models.errors import HeloError
from helo.streamer.buffers import RingBuffer
from helo.streamer.clocks import ReplayClock
from helo.streamer.config import SessionConfig
from helo.streamer.lsl_reader import StreamHealth, StreamReader
from helo.streamer.worker import PredictionRecord

log = logging.getLogger("ui.runner")

SOURCES = ("synthetic", "lsl", "webcam", "xdf")


@dataclass
class SourceChoice:
    """What the user picked in the source panel (or on the command line)."""

    kind: str = "synthetic"  # synthetic | lsl | webcam | xdf
    xdf: Path | None = None
    speed: float | None = 1.0  # replay: x real time, None = as fast as possible
    camera: int = 0
    video: str | None = None
    loop_video: bool = True
    with_synthetic_physiology: bool = True  # webcam: simulate EEG/GSR/PPG beside it
    streams: dict[str, str] = field(default_factory=dict)  # modality -> stream override
    faults: list[str] = field(default_factory=list)  # synthetic device: "eeg:nan:20-22", ...


@dataclass
class Trace:
    """A stream the GUI can draw: its buffer and channel names."""

    modality: str
    name: str
    buffer: RingBuffer
    channels: list[str]
    srate_hz: float


class SessionRunner:
    """One session (live or replay) in a background thread."""

    def __init__(
        self,
        source: SourceChoice,
        checkpoint: Path | None = None,
        record_dir: Path | None = None,
        on_prediction: Callable[[PredictionRecord], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        base_config: SessionConfig | None = None,
    ):
        """``base_config``: the settings of a ``streamer run ... --gui`` (outputs, hop,
        stream overrides, ...); the window's model and recording choices win over it."""
        self.source = source
        self.base_config = base_config
        self.checkpoint = checkpoint
        self.record_dir = record_dir
        self._on_prediction = on_prediction or (lambda record: None)
        self._on_error = on_error or (lambda text: None)
        self._on_finished = on_finished or (lambda: None)
        self.labels: tuple[str, ...] = ()
        self.traces: list[Trace] = []
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session = None  # LiveSession
        self._pipeline = None  # replay Pipeline
        self._clock: ReplayClock | None = None
        self._replay = None  # ReplaySource
        self._devices: list = []
        self._truth_reader: StreamReader | None = None
        self._truth_recorded: tuple[np.ndarray, np.ndarray] | None = None
        self.webcam = None

    # ------------------------------------------------------------------ control

    def start(self) -> SessionRunner:
        self._thread = threading.Thread(target=self._main, name="helo-gui-session", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        if self._session is not None:
            self._session.stop()
        if self._pipeline is not None:
            self._pipeline.stop()
        if self._clock is not None:
            self._clock.interrupt()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def is_replay(self) -> bool:
        return self.source.kind == "xdf"

    def set_paused(self, paused: bool) -> None:
        if self._clock is not None:
            (self._clock.paused.set if paused else self._clock.paused.clear)()

    def set_speed(self, speed: float | None) -> None:
        self.source.speed = speed
        if self._clock is not None:
            self._clock.set_speed(speed)

    def seek(self, seconds: float) -> None:
        """Replay: continue from ``seconds`` after the start of the recording."""
        if self._clock is not None:
            self._clock.seek(self._clock.start + seconds)

    # ------------------------------------------------------------------ views

    def now(self) -> float:
        """The session's present in LSL time (the virtual time in a replay)."""
        if self._clock is not None:
            return self._clock.now()
        return pylsl.local_clock()

    def position(self) -> tuple[float, float] | None:
        """Replay: (seconds played, seconds in all)."""
        if self._clock is None:
            return None
        return self._clock.now() - self._clock.start, self._clock.end - self._clock.start

    def health(self) -> list[StreamHealth]:
        if self._session is not None:
            return self._session.health()
        return []

    def truth(self, t_start: float, t_end: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The true distribution over ``(t_start, t_end]``, when the source publishes it."""
        if self._truth_reader is not None:
            return self._truth_reader.buffer.read_span(t_start, t_end)
        if self._truth_recorded is not None:
            times, values = self._truth_recorded
            keep = (times > t_start) & (times <= t_end)
            return times[keep], values[keep]
        return None

    # ------------------------------------------------------------------ thread

    def _main(self) -> None:
        try:
            if self.is_replay:
                self._run_replay()
            else:
                self._run_live()
        except HeloError as exc:
            self._on_error(str(exc))
        except Exception as exc:  # a bug, not a user mistake: one line; -v for the traceback
            log.debug("session failed", exc_info=True)
            self._on_error(f"session failed: {type(exc).__name__}: {exc}")
        finally:
            self._close()
            self._on_finished()

    def _run_live(self) -> None:
        import argparse

        from helo.streamer.commands.run import start_devices
        from helo.streamer.session import LiveSession

        src = self.source
        devices = {
            "synthetic": ["synthetic"],
            "lsl": ["lsl"],
            "webcam": ["webcam", "synthetic"] if src.with_synthetic_physiology else ["webcam"],
        }[src.kind]
        base = self.base_config or SessionConfig()
        config = dataclasses.replace(
            base,
            checkpoint=self.checkpoint or base.checkpoint,
            streams={**base.streams, **src.streams},
            stdout=False,
            record=self.record_dir or base.record,
        )
        args = argparse.Namespace(
            video=src.video,
            camera=src.camera,
            fps_cap=None,
            face_model=None,
            loop_video=src.loop_video,
            fault=list(src.faults),
        )
        extra = start_devices(args, devices, config, self._devices)
        self.webcam = next((d for d in self._devices if hasattr(d, "preview")), None)
        if self._stop.is_set():
            return
        self._session = LiveSession(config, [self._on_prediction], extra).open()
        self.labels = self._session.checkpoint.spec.labels
        channels = {n: list(d.channels) for n, d in self._session.descriptions.items()}
        self.traces = [
            Trace(
                m, feed.stream_name, feed.buffer, channels.get(feed.stream_name, []), feed.srate_hz
            )
            for m, feed in self._session.feeds.items()
        ]
        truth_id = next((s for s in extra if s.endswith("-truth")), None)
        if truth_id is not None:
            infos = pylsl.resolve_byprop("source_id", truth_id, 1, 5.0)
            if infos:
                self._truth_reader = StreamReader(infos[0]).start()
        self.ready.set()
        if not self._stop.is_set():
            self._session.run()

    def _run_replay(self) -> None:
        from helo.models.checkpoint import load_checkpoint
        from helo.streamer.demo import DEMO_CHECKPOINT
        from helo.streamer.replay import ReplaySource
        from helo.streamer.session import Pipeline

        src = self.source
        if src.xdf is None:
            raise HeloError("replay: choose an XDF file")
        ckpt = load_checkpoint(self.checkpoint or DEMO_CHECKPOINT)
        self.labels = ckpt.spec.labels
        self._replay = ReplaySource(src.xdf, ckpt.spec, src.streams)
        hop = ckpt.spec.hop_s
        ends = self._replay.grid_ends(hop)
        self._clock = ReplayClock(
            float(ends[0]) - hop,
            float(ends[-1]),
            self._replay.push_until,
            src.speed,
            on_seek=self._replay.seek,
        )
        for stream in self._replay.streams:
            if stream.description.type.lower() == "emotiontruth" and len(stream.times):
                self._truth_recorded = (stream.times, stream.samples)
        self.traces = [
            Trace(m, feed.stream_name, feed.buffer, self._replay_channels(feed), feed.srate_hz)
            for m, feed in self._replay.feeds.items()
        ]
        self._pipeline = Pipeline(
            ckpt, self._replay.feeds, self._clock, [self._on_prediction], hop, ends=ends, batch=1
        )
        self.ready.set()
        if not self._stop.is_set():
            self._pipeline.run(self._stop)

    def _replay_channels(self, feed) -> list[str]:
        for stream in self._replay.streams:
            if stream.description.name == feed.stream_name:
                return list(stream.description.channels)
        return []

    def _close(self) -> None:
        if self._truth_reader is not None:
            self._truth_reader.stop()
        if self._session is not None:
            self._session.close()
        for device in self._devices:
            try:
                device.stop()
            except Exception:  # stopping one must not keep the others running
                log.exception("stopping %s", device)
        self._devices.clear()
