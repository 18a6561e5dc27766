"""What the desktop app starts and stops: a live session or a replay, off the GUI thread.

The runtime knows nothing of Qt. A :class:`SessionRunner` runs one session (a
:class:`~helo.streamer.session.LiveSession` over started devices, or a
:class:`~helo.streamer.replay_session.ReplaySession`, the very objects the command
line runs) in a plain thread, hands each prediction to a callback (the GUI turns it
into a Qt signal), and exposes read-only views for drawing: the ring buffers of the
streams, their health, the true distribution when a source has one, and the
session's clock. A failure ends the thread and reaches ``on_error`` as one readable
line; nothing is raised into the GUI.
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

from helo.devices.start import DeviceOptions, StartedDevices, start_devices
from helo.devices.webcam import WebcamDevice
from helo.models.errors import HeloError
from helo.streamer.buffers import RingBuffer
from helo.streamer.config import ReplayOptions, SessionConfig
from helo.streamer.lsl_reader import StreamHealth
from helo.streamer.process import settled_heap
from helo.streamer.replay_session import ReplaySession
from helo.streamer.session import LiveSession, Session
from helo.streamer.worker import PredictionRecord

log = logging.getLogger(__name__)


@dataclass
class SourceChoice:
    """What the user picked in the source panel (or on the command line)."""

    kind: str = "synthetic"  # synthetic | lsl | webcam | xdf
    # live: what to start; in the app a video plays in a loop, as a camera never ends
    devices: DeviceOptions = field(default_factory=lambda: DeviceOptions(loop_video=True))
    replay: ReplayOptions | None = None  # xdf: the file and how it is played
    streams: dict[str, str] = field(default_factory=dict)  # modality -> stream picked


def devices_for(kind: str, options: DeviceOptions) -> DeviceOptions:
    """The producers a live source kind starts (the webcam keeps simulated physiology
    beside it when the options had the synthetic device too)."""
    if kind == "webcam":
        with_physiology = "synthetic" in options.devices
        devices = ("webcam", "synthetic") if with_physiology else ("webcam",)
    else:
        devices = (kind,)
    return dataclasses.replace(options, devices=devices)


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
        *,
        checkpoint: Path | None = None,
        record_dir: Path | None = None,
        on_prediction: Callable[[PredictionRecord], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        base_config: SessionConfig | None = None,
    ):
        """``base_config``: the settings of a ``streamer run|replay ... --gui`` (outputs,
        hop, stream overrides, ...); the window's model and recording choices win."""
        self.source = source
        base = base_config or SessionConfig()
        self.config = dataclasses.replace(
            base,
            checkpoint=checkpoint or base.checkpoint,
            streams={**base.streams, **source.streams},
            stdout=False,
            record=record_dir or base.record,
        )
        self._on_prediction = on_prediction or (lambda record: None)
        self._on_error = on_error or (lambda text: None)
        self._on_finished = on_finished or (lambda: None)
        self.labels: tuple[str, ...] = ()
        self.traces: list[Trace] = []
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.session: Session | None = None
        self.devices: StartedDevices | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> SessionRunner:
        self._thread = threading.Thread(target=self._main, name="helo-gui-session", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        if self.session is not None:
            self.session.stop()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def is_replay(self) -> bool:
        return self.source.kind == "xdf"

    @property
    def replay(self) -> ReplaySession | None:
        return self.session if isinstance(self.session, ReplaySession) else None

    @property
    def webcam(self) -> WebcamDevice | None:
        return self.devices.webcam if self.devices is not None else None

    def set_paused(self, paused: bool) -> None:
        if self.replay is not None:
            self.replay.set_paused(paused)

    def set_speed(self, speed: float | None) -> None:
        if self.source.replay is not None:
            self.source.replay.speed = speed
        if self.replay is not None:
            self.replay.set_speed(speed)

    def seek(self, seconds: float) -> None:
        """Replay: continue from ``seconds`` after the start of the recording."""
        if self.replay is not None:
            self.replay.seek(seconds)

    # ------------------------------------------------------------------ views

    def now(self) -> float:
        """The session's present in LSL time (the virtual time in a replay)."""
        return self.session.now() if self.session is not None else pylsl.local_clock()

    def position(self) -> tuple[float, float] | None:
        """Replay: (seconds played, seconds in all)."""
        return self.replay.position() if self.replay is not None else None

    def health(self) -> list[StreamHealth]:
        return self.session.health() if self.session is not None and self.ready.is_set() else []

    def truth(
        self, t_start: float, t_end: float, participant: str | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The true distribution over ``(t_start, t_end]``, when the source has one (a
        group: the participant's)."""
        if self.session is None:
            return None
        return self.session.truth(t_start, t_end, participant)

    # ------------------------------------------------------------------ thread

    def _main(self) -> None:
        try:
            self.session = self._session()
            if self._stop.is_set():
                return
            self.session.open()
            self.labels = self.session.spec.labels
            self.traces = _traces(self.session)
            self.ready.set()
            if not self._stop.is_set():
                with settled_heap():
                    self.session.run()
        except HeloError as exc:
            self._on_error(str(exc))
        except Exception as exc:  # a bug, not a user mistake: one line; -v for the traceback
            log.debug("session failed", exc_info=True)
            self._on_error(f"session failed: {type(exc).__name__}: {exc}")
        finally:
            self._close()
            self._on_finished()

    def _session(self) -> Session:
        src = self.source
        if src.kind == "xdf":
            if src.replay is None or src.replay.file == Path():
                raise HeloError("replay: choose an XDF file")
            return ReplaySession(self.config, src.replay, [self._on_prediction])
        self.devices = start_devices(devices_for(src.kind, src.devices))
        return LiveSession(self.config.with_devices(self.devices), [self._on_prediction])

    def _close(self) -> None:
        if self.session is not None:
            self.session.close()
        if self.devices is not None:
            self.devices.stop()


def _traces(session: Session) -> list[Trace]:
    return [
        Trace(
            modality,
            feed.stream_name,
            feed.buffer,
            list(session.descriptions[feed.stream_name].channels)
            if feed.stream_name in session.descriptions
            else [],
            feed.srate_hz,
        )
        for modality, feed in session.feeds.items()
    ]
