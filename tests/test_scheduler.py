"""The window scheduler on a clock the test drives: waiting for late samples (bounded),
masking stale streams, ends on the hop grid, or following the packets."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from helo.models.features.adapt import AdaptOptions, InputAdapter
from helo.models.features.spec import FeatureSpec, ModalitySpec
from helo.models.streams import StreamDescription
from helo.streamer.buffers import RingBuffer
from helo.streamer.scheduler import Feed, WindowScheduler

RATE_HZ = 100.0


class SteppingClock:
    """A clock whose time moves ``step_s`` each time it is read: waiting costs clock time
    as it would live, without the test depending on how fast the machine is."""

    waits_for_data = True

    def __init__(self, t0: float, step_s: float = 0.01):
        self.t, self.step_s = t0, step_s
        self.interrupted = False

    def now(self) -> float:
        self.t += self.step_s
        return self.t

    def wait_until(self, t: float) -> bool:
        self.t = max(self.t, t)
        return not self.interrupted

    def interrupt(self) -> None:
        self.interrupted = True

    def seek(self, t: float) -> None:
        raise ValueError("no seeking here")

    def take_seek(self) -> float | None:
        return None


def _spec() -> FeatureSpec:
    mods = tuple(
        ModalitySpec(name, "physiological", "gsr_stats", name.upper(), ("x",), RATE_HZ, 2.0, (28,))
        for name in ("gsr", "ppg")
    )
    return FeatureSpec(modalities=mods, labels=("calm", "tense"), hop_s=0.5)


def _buffer(until_s: float) -> RingBuffer:
    buffer = RingBuffer(2000, 1)
    _write(buffer, 0.0, until_s)
    return buffer


def _write(buffer: RingBuffer, from_s: float, until_s: float) -> None:
    times = np.arange(round(from_s * RATE_HZ), round(until_s * RATE_HZ) + 1) / RATE_HZ
    times = times[times > from_s] if from_s > 0 else times
    buffer.write(times[:, None].astype(np.float32), times)


def _feed(buffer: RingBuffer, name: str) -> Feed:
    mod = _spec().modality(name)
    stream = StreamDescription(name, mod.stream_type, ("x",), RATE_HZ)
    return Feed(buffer, InputAdapter(mod, stream, AdaptOptions(units={name: "uS"})))


def _scheduler(feeds, clock, **kwargs) -> WindowScheduler:
    # the test's writes carry no arrival times: ends stay round, without waiting to see
    # packets (tests/test_hop_phase.py has the live choice), and on the grid unless a test
    # follows the packets
    return WindowScheduler(_spec(), feeds, clock, **{"align": False, "follow": False, **kwargs})


def test_window_ends_are_on_the_hop_grid_after_now():
    clock = SteppingClock(10.13)
    feeds = {m: _feed(_buffer(20.0), m) for m in ("gsr", "ppg")}
    windows = _scheduler(feeds, clock, hop_s=0.25).windows()
    ends = [next(windows).t_end for _ in range(4)]
    np.testing.assert_allclose(ends, [10.25, 10.5, 10.75, 11.0])


def test_a_late_stream_is_waited_for_and_its_window_is_whole():
    late = RingBuffer(2000, 1)
    _write(late, 0.0, 4.5)  # the last half second arrives later
    feeds = {"gsr": _feed(_buffer(6.0), "gsr"), "ppg": _feed(late, "ppg")}
    clock = SteppingClock(4.9)
    threading.Timer(0.2, lambda: _write(late, 4.5, 6.0)).start()
    window = next(_scheduler(feeds, clock, max_wait_s=5.0).windows())
    assert window.t_end == 5.0
    assert len(window.windows["ppg"]) == 200  # (3, 5] s at 100 Hz: nothing missing
    assert clock.t < 5.0 + 5.0  # it stopped waiting when the samples came


def test_the_wait_is_bounded_when_samples_never_come():
    stuck = RingBuffer(2000, 1)
    _write(stuck, 0.0, 4.5)
    feeds = {"gsr": _feed(_buffer(6.0), "gsr"), "ppg": _feed(stuck, "ppg")}
    clock = SteppingClock(4.9)
    window = next(_scheduler(feeds, clock, max_wait_s=0.2).windows())
    assert clock.t >= 5.0 + 0.2  # waited its max_wait_s of clock time, no more
    assert clock.t < 5.0 + 0.5
    assert len(window.windows["ppg"]) == 150  # cut with what there was
    assert window.reasons == {}


def test_a_stale_stream_is_masked_with_the_reason_and_not_waited_for():
    feeds = {"gsr": _feed(_buffer(6.0), "gsr"), "ppg": _feed(_buffer(2.0), "ppg")}
    clock = SteppingClock(5.9)
    window = next(_scheduler(feeds, clock, max_wait_s=5.0, stale_s=1.5).windows())
    assert window.windows["ppg"] is None
    assert window.reasons["ppg"] == "ppg: stale, newest sample 4.0 s old"
    assert window.windows["gsr"] is not None
    assert clock.t < 6.0 + 0.5  # no waiting for a stream that went quiet


@pytest.mark.parametrize(("feeds", "reason"), [({}, "no stream"), (None, "no data yet")])
def test_a_modality_without_data_is_named(feeds, reason):
    if feeds is None:
        feeds = {"ppg": _feed(RingBuffer(10, 1), "ppg")}
    feeds = {"gsr": _feed(_buffer(6.0), "gsr"), **feeds}
    window = next(_scheduler(feeds, SteppingClock(4.9), max_wait_s=0.1).windows())
    assert window.windows["ppg"] is None
    assert window.reasons["ppg"] == f"ppg: {reason}"


def test_a_window_takes_in_the_packet_that_completed_it():
    """The packet that brought the sample at the grid's end brought 20 ms after it: the
    window ends at the newest instant both streams have sent (up to the next sample of
    the stream that sent less, a millisecond clear of it), not delayed; the next end is
    the grid's next."""
    late = RingBuffer(2000, 1)
    _write(late, 0.0, 4.99)
    gsr = _buffer(5.01)
    feeds = {"gsr": _feed(gsr, "gsr"), "ppg": _feed(late, "ppg")}
    clock = SteppingClock(4.9, step_s=0.001)
    threading.Timer(0.2, lambda: _write(late, 4.99, 5.02)).start()
    scheduler = _scheduler(feeds, clock, max_wait_s=5.0, follow=True)
    assert scheduler.follow_s == pytest.approx(0.05)  # a tenth of the spec's 0.5-s hop
    windows = scheduler.windows()
    window = next(windows)
    assert window.t_end == pytest.approx(5.019)  # gsr's newest (5.01) + 10 ms - 1 ms
    assert window.windows["ppg"] is not None
    assert len(window.windows["ppg"]) == 200
    assert window.newest_sample == pytest.approx(5.01)
    _write(gsr, 5.01, 6.0)
    _write(late, 5.02, 6.0)
    assert next(windows).t_end == pytest.approx(5.55)  # 5.5 + at most a tenth of a hop
    assert list(scheduler.end_shifts) == pytest.approx([0.019, 0.05])


def test_a_followed_end_stays_on_the_grid_when_a_stream_times_out_and_skips_stale_ones():
    stuck = RingBuffer(2000, 1)
    _write(stuck, 0.0, 4.5)
    feeds = {"gsr": _feed(_buffer(6.0), "gsr"), "ppg": _feed(stuck, "ppg")}
    window = next(_scheduler(feeds, SteppingClock(4.9), max_wait_s=0.2, follow=True).windows())
    assert window.t_end == 5.0  # the ppg never came: the grid's end, as without following
    feeds = {"gsr": _feed(_buffer(5.02), "gsr"), "ppg": _feed(_buffer(2.0), "ppg")}
    clock = SteppingClock(4.99, step_s=0.001)
    window = next(_scheduler(feeds, clock, stale_s=1.5, follow=True).windows())
    assert window.t_end == pytest.approx(5.029)  # the quiet ppg holds nothing up
    assert window.windows["ppg"] is None


def test_a_replay_clock_never_follows():
    class ReplayLike(SteppingClock):
        waits_for_data = False

    feeds = {m: _feed(_buffer(20.0), m) for m in ("gsr", "ppg")}
    scheduler = _scheduler(feeds, ReplayLike(10.13), hop_s=0.25, follow=True)
    assert not scheduler.follows
    windows = scheduler.windows()
    assert [next(windows).t_end for _ in range(2)] == [10.25, 10.5]
