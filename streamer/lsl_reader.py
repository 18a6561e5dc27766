"""LSL inlets read by one thread each into a ring buffer, with the stream's health.

liblsl's ``proc_clocksync`` maps the sender's timestamps onto this machine's
``local_clock`` (clock offset correction); :class:`~streamer.dejitter.Dejitter`
smooths the timestamps of regular streams and, unlike liblsl's own de-jitter,
sees gaps and clock jumps and reports them. Irregular streams (nominal rate 0,
or a description that says ``can_drop_samples``, such as the webcam's face
features) are not de-jittered: their frame times are real. A sender whose clock
jumps (by more than a few seconds, forward or back: a known field problem, see
App-LabRecorder #129) is re-anchored onto this machine's clock within the chunk
that shows it, reported in the log and the health figures, and predictions go on;
a smaller step back restarts the stream's buffer.

Each reader pulls chunks straight into a preallocated array (``pull_chunk`` with
``dest_obj``), so a 64-channel 2 kHz stream costs no allocation per chunk. When an
outlet disappears the inlet recovers by itself when a stream with the same
``source_id`` comes back; the pause shows as a gap in the health figures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pylsl

from helo.models.streams import CHANNEL_FORMATS, CLOCK_JUMP_S, describe_lsl
from helo.streamer.buffers import RingBuffer
from helo.streamer.dejitter import Dejitter
from helo.streamer.scheduler import STALE_S

log = logging.getLogger(__name__)

BUFFER_S = 30.0  # seconds of samples a stream's ring buffer holds
# Rate assumed for sizing the buffer of an irregular stream (the face runs at ~30 Hz).
_IRREGULAR_RATE_HZ = 60.0


def full_info(info: pylsl.StreamInfo, timeout_s: float = 5.0) -> pylsl.StreamInfo:
    """The stream's complete header: a resolved info lacks the description (channel
    labels), which only an inlet receives."""
    inlet = pylsl.StreamInlet(info)
    try:
        return inlet.info(timeout=timeout_s)
    finally:
        inlet.close_stream()


FOREIGN_CLOCK_S = 60.0  # a first chunk this far from our clock: another time base


@dataclass
class StreamHealth:
    """A snapshot of how one stream is doing (all times in seconds)."""

    name: str
    type: str
    source_id: str
    n_channels: int
    nominal_srate_hz: float
    effective_srate_hz: float = 0.0
    received: int = 0
    gaps: int = 0
    gap_s: float = 0.0
    last_gap_s: float = 0.0
    backwards: int = 0
    overwritten: int = 0
    newest_age_s: float | None = None
    clock_offset_s: float | None = None
    drift_ms_per_min: float | None = None
    lost: int = 0
    errors: list[str] = field(default_factory=list)
    adapted: tuple[str, ...] = ()  # what the session adapts (rate, channels, units)
    clock_jumps: int = 0  # the sender's timestamps jumped; re-anchored
    last_clock_jump_s: float = 0.0

    def problems(self, stale_s: float = STALE_S) -> list[str]:
        """Readable problems, empty when all is well."""
        out = []
        if self.newest_age_s is None:
            out.append("no data yet")
        elif self.newest_age_s > stale_s:
            out.append(f"stale: newest sample {self.newest_age_s:.1f} s old")
        if (
            self.nominal_srate_hz > 0
            and self.received > self.nominal_srate_hz * 5
            and (abs(self.effective_srate_hz - self.nominal_srate_hz) > 0.1 * self.nominal_srate_hz)
        ):
            out.append(
                f"rate {self.effective_srate_hz:.1f} Hz (nominal {self.nominal_srate_hz:g} Hz)"
            )
        if self.gaps:
            out.append(f"{self.gaps} gap(s), {self.gap_s:.2f} s missing")
        if self.clock_jumps:
            out.append(
                f"clock jumped {self.clock_jumps} time(s), last {self.last_clock_jump_s:+.1f} s "
                "(re-anchored)"
            )
        if self.overwritten and self.lost:
            out.append(f"{self.lost} sample(s) lost")
        return out + self.errors[-1:]


class StreamReader:
    """Pulls one LSL stream into a :class:`RingBuffer` on its own thread."""

    def __init__(
        self,
        info: pylsl.StreamInfo,
        *,
        buffer_s: float = BUFFER_S,
        chunk_s: float = 0.05,
        max_buflen_s: int = 60,
    ):
        self.info = info
        self.description = describe_lsl(info)
        rate = info.nominal_srate() if info.nominal_srate() > 0 else _IRREGULAR_RATE_HZ
        self.n_channels = info.channel_count()
        dtype = CHANNEL_FORMATS.get(self.description.channel_format)
        if dtype is None:
            raise ValueError(
                f"stream {info.name()!r} holds strings; only numeric streams feed a model"
            )
        self.buffer = RingBuffer(
            max(16, int(np.ceil(buffer_s * rate))), self.n_channels, np.float32
        )
        self._chunk_max = max(16, int(np.ceil(chunk_s * rate * 4)))
        self._dest = np.zeros((self._chunk_max, self.n_channels), dtype=dtype)
        self._flags = pylsl.proc_clocksync
        self._dejitter = (
            None if self.description.real_timestamps else Dejitter(info.nominal_srate())
        )
        self._max_buflen_s = max_buflen_s
        self._chunk_timeout_s = chunk_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._inlet: pylsl.StreamInlet | None = None
        self._lock = threading.Lock()
        self._health = StreamHealth(
            info.name(), info.type(), info.source_id(), self.n_channels, float(info.nominal_srate())
        )
        self._offsets: deque[tuple[float, float]] = deque(maxlen=120)
        self._last_offset_check = 0.0
        self._newest: float | None = None
        self._anchor_s = 0.0  # added to the sender's timestamps since its clock jumped
        self._lag_s: float | None = None  # typical arrival - timestamp (transmission)
        self._last_raw: float | None = None
        self._period_s = 1.0 / info.nominal_srate() if info.nominal_srate() > 0 else 0.0

    # ----------------------------------------------------------------- life cycle

    def start(self) -> StreamReader:
        self._inlet = pylsl.StreamInlet(
            self.info, max_buflen=self._max_buflen_s, recover=True, processing_flags=self._flags
        )
        self._inlet.open_stream(timeout=5.0)
        self._thread = threading.Thread(
            target=self._run, name=f"lsl-{self.info.name()}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._inlet is not None:
            self._inlet.close_stream()
            self._inlet = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ----------------------------------------------------------------- the loop

    def _run(self) -> None:
        inlet = self._inlet
        assert inlet is not None
        while not self._stop.is_set():
            try:
                _, stamps = inlet.pull_chunk(
                    timeout=self._chunk_timeout_s,
                    max_samples=self._chunk_max,
                    dest_obj=self._dest,
                    min_samples=1,
                )
            except pylsl.LostError:
                self._note_error("stream lost; waiting for it to come back")
                time.sleep(0.5)
                continue
            except Exception as exc:
                self._note_error(f"{type(exc).__name__}: {exc}")
                time.sleep(0.2)
                continue
            n = len(stamps)
            now = pylsl.local_clock()
            if n:
                raw = self._reanchored(np.asarray(stamps, dtype=np.float64), now)
                times = self._timestamps(raw)
                self.buffer.write(self._dest[:n], times, arrived=now)
            self._update_health(n, now)

    def _reanchored(self, raw: np.ndarray, now: float) -> np.ndarray:
        """The sender's timestamps, moved back onto this machine's clock after a jump.

        A jump is when the timestamps step by more than ``CLOCK_JUMP_S`` *and* their
        distance to the arrival times changes by as much (a pause, or a burst of late
        samples, changes only one of the two). The samples after the step continue
        where the stream was (a clock jump is not a gap); the first chunk of a stream
        whose clock is far from ours (over a minute) is placed at its arrival."""
        anchored = raw + self._anchor_s
        lag = now - float(anchored[-1])
        if self._last_raw is None:
            if abs(lag) > FOREIGN_CLOCK_S:
                self._note_jump(-lag)
                self._anchor_s += lag
                anchored = raw + self._anchor_s
                lag = 0.0
        else:
            typical = self._lag_s if self._lag_s is not None else 0.0
            # the lag first: it is one subtraction, and the steps matter only when it moved
            if abs(lag - typical) > CLOCK_JUMP_S:
                steps = np.diff(raw, prepend=self._last_raw) - self._period_s
                breaks = np.flatnonzero(np.abs(steps) > CLOCK_JUMP_S)
                if len(breaks):
                    k = int(breaks[0])
                    jump = float(steps[k])
                    self._note_jump(jump)
                    self._anchor_s -= jump
                    anchored[k:] -= jump
                    lag = now - float(anchored[-1])
        self._lag_s = lag if self._lag_s is None else 0.9 * self._lag_s + 0.1 * lag
        self._last_raw = float(raw[-1])
        return anchored

    def _note_jump(self, jump_s: float) -> None:
        with self._lock:
            self._health.clock_jumps += 1
            self._health.last_clock_jump_s = jump_s
        log.warning(
            "%s: timestamps jumped %+.1f s (the sender's clock); re-anchored to this "
            "machine's clock, predictions go on",
            self.info.name(),
            jump_s,
        )

    def _timestamps(self, raw: np.ndarray) -> np.ndarray:
        """De-jittered timestamps; gaps and backward jumps go to the health figures."""
        if self._dejitter is not None:
            times, breaks = self._dejitter(raw)
        else:  # irregular: real frame times; a pause of over a second is a gap
            previous = self._newest if self._newest is not None else raw[0]
            steps = np.diff(np.concatenate([[previous], raw]))
            breaks = [float(x) for x in steps if x > 1.0 or x < 0]
            times = raw
        for jump in breaks:
            with self._lock:
                if jump > 0:
                    self._health.gaps += 1
                    self._health.gap_s += jump
                    self._health.last_gap_s = jump
                else:
                    self._health.backwards += 1
            if jump < 0:
                log.warning(
                    "%s: clock jumped back %.3f s; buffer restarted", self.info.name(), -jump
                )
                self.buffer.clear()
            else:
                log.info("%s: gap of %.3f s", self.info.name(), jump)
        if len(times):
            self._newest = float(times[-1])
        return times

    def _update_health(self, n: int, now: float) -> None:
        with self._lock:
            h = self._health
            h.received += n
        if now - self._last_offset_check > 5.0 and self._inlet is not None:
            self._last_offset_check = now
            try:
                offset = self._inlet.time_correction(timeout=1.0)
            except Exception:
                return
            self._offsets.append((now, offset))
            with self._lock:
                self._health.clock_offset_s = offset
                if len(self._offsets) > 1 and now - self._offsets[0][0] > 10.0:
                    (ta, oa), (tb, ob) = self._offsets[0], self._offsets[-1]
                    self._health.drift_ms_per_min = (ob - oa) / (tb - ta) * 60e3

    def _note_error(self, message: str) -> None:
        with self._lock:
            if not self._health.errors or self._health.errors[-1] != message:
                self._health.errors.append(message)
                del self._health.errors[:-5]
        log.warning("%s: %s", self.info.name(), message)

    def health(self) -> StreamHealth:
        """A copy of the current figures (safe to hand to another thread)."""
        with self._lock:
            h = StreamHealth(
                **{k: getattr(self._health, k) for k in self._health.__dataclass_fields__}
            )
            h.errors = list(self._health.errors)
        newest = self.buffer.newest_time()
        h.newest_age_s = None if newest is None else pylsl.local_clock() - newest
        h.overwritten = self.buffer.overwritten
        h.effective_srate_hz = self.buffer.rate_hz()
        h.lost = self.buffer.late_reads
        return h
