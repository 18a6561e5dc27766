"""Where a live session's window ends go: where the devices' packets arrive soonest
after them (streamer/hop_phase.py), judged on packets the choice never saw."""

from __future__ import annotations

import numpy as np
import pylsl
import pytest

from helo.models.features.adapt import AdaptOptions, InputAdapter
from helo.models.features.spec import FeatureSpec, ModalitySpec
from helo.models.streams import StreamDescription
from helo.streamer.buffers import RingBuffer
from helo.streamer.clocks import WallClock
from helo.streamer.hop_phase import Arrivals, choose_phase, hop_hint
from helo.streamer.scheduler import Feed, WindowScheduler

HOP_S = 0.25


def _packets(
    every_s: float,
    phase_s: float,
    srate_hz: float,
    *,
    start_s: float = 1000.0,
    seconds: float = 2.0,
    lag_s: float = 0.001,
    jitter_s: float = 0.0005,
    seed: int = 0,
) -> Arrivals:
    """A device sending what it has sampled every ``every_s`` (its newest sample is the
    last one due at the send), arriving ``lag_s`` later with some jitter."""
    rng = np.random.default_rng(seed)
    sent = start_s + phase_s + np.arange(0.0, seconds, every_s)
    newest = np.floor(sent * srate_hz) / srate_hz if srate_hz > 0 else sent
    arrived = sent + lag_s + rng.uniform(0.0, jitter_s, len(sent))
    return Arrivals(newest, arrived, 1.0 / srate_hz if srate_hz > 0 else 0.0)


def _waits(
    streams: list[Arrivals], phase_s: float, hops: int = 200, hop_s: float = HOP_S
) -> np.ndarray:
    """The wait for the slowest stream's last packet at each of ``hops`` window ends on
    ``phase_s``, in packets the choice did not see."""
    t0 = float(max(s.newest[0] for s in streams)) + 1.0
    ends = (np.ceil((t0 - phase_s) / hop_s) + np.arange(hops)) * hop_s + phase_s
    worst = np.zeros(hops)
    for s in streams:
        if s.period_s > 0:
            at = np.searchsorted(s.newest, ends - s.period_s, side="right")
        else:
            at = np.searchsorted(s.newest, ends, side="left")
        worst = np.maximum(worst, np.clip(s.arrived[at] - ends, 0.0, None))
    return worst


def _mean_wait(streams: list[Arrivals], phase_s: float) -> float:
    return float(_waits(streams, phase_s).mean())


@pytest.mark.parametrize(
    ("every_s", "srate_hz", "at_most_s"),
    [
        (0.03125, 256.0, 0.003),  # 8 samples at 256 Hz: 8 packets a hop, next to no wait
        (0.02, 256.0, 0.0065),  # 12.5 packets a hop: every other hop half a packet
        (0.02, 500.0, 0.0085),
        (0.04, 500.0, 0.019),  # a lab amplifier's 40-ms packets: 6.25 a hop
        (1 / 30, 0.0, 0.013),  # a camera's frames, 30 a second, irregular
    ],
)
def test_the_chosen_ends_wait_less_for_packets_not_yet_seen(every_s, srate_hz, at_most_s):
    chosen, round_ends = [], []
    for phase_s in np.linspace(0.0, every_s, 7, endpoint=False):  # when the device started
        for jitter_s in (0.0005, 0.003):
            seen = _packets(every_s, phase_s, srate_hz, jitter_s=jitter_s)
            later = _packets(every_s, phase_s, srate_hz, jitter_s=jitter_s, seconds=60, seed=9)
            choice = choose_phase([seen], HOP_S)
            assert choice is not None
            chosen.append(_mean_wait([later], choice.phase_s))
            round_ends.append(_mean_wait([later], 0.0))
            assert choice.wait_s == pytest.approx(chosen[-1], abs=every_s / 10)  # it holds later
    assert np.mean(chosen) <= at_most_s
    assert np.mean(chosen) < np.mean(round_ends) - 0.002
    # where round ends happened to be good, the choice is at most its guard worse
    assert max(np.array(chosen) - np.array(round_ends)) <= 0.0015


def test_with_several_devices_the_slowest_decides():
    def eeg(**kw):
        return _packets(0.02, 0.004, 256.0, **kw)

    def gsr(seed: int = 1, **kw):
        return _packets(0.03125, 0.017, 32.0, seed=seed + 1, **kw)

    choice = choose_phase([eeg(), gsr()], HOP_S)
    assert choice is not None
    future = [eeg(seconds=60.0, seed=9), gsr(seconds=60.0, seed=9)]
    waits = [_mean_wait(future, p) for p in np.arange(0.0, HOP_S, 0.001)]
    assert _mean_wait(future, choice.phase_s) <= np.percentile(waits, 10)


def test_round_ends_stay_when_nothing_is_gained_or_too_little_was_seen():
    # a 2-kHz stream sent a sample at a time: whatever the phase, nothing to wait for
    dense = _packets(1 / 2000, 0.0, 2000.0)
    choice = choose_phase([dense], HOP_S)
    assert choice is not None
    assert not choice.moved
    assert choice.phase_s == 0.0
    # under two hops of packets: no choice yet
    assert choose_phase([_packets(0.02, 0.004, 256.0, seconds=0.4)], HOP_S) is None
    assert choose_phase([], HOP_S) is None


@pytest.mark.parametrize("phase_s", [0.0, 0.004, 0.013])
def test_a_hop_of_whole_packets_is_suggested_where_half_the_hops_end_between_two(phase_s):
    """20-ms packets, hop 0.25 s: 12.5 packets a hop, so one phase cannot serve the even
    and the odd hops. 0.24 s is 12 packets: every end can sit next to one."""
    seen = _packets(0.02, phase_s, 256.0)
    later = _packets(0.02, phase_s, 256.0, seconds=60, seed=9)
    chosen = choose_phase([seen], HOP_S)
    assert chosen is not None
    hint = hop_hint([seen], HOP_S, chosen)
    assert hint is not None
    assert hint.hop_s == pytest.approx(0.24)  # the nearest first (0.26 is as good)
    assert hint.session_wait_s > chosen.wait_s  # the slow hops wait longer than the mean
    better = choose_phase([seen], hint.hop_s)
    assert better is not None
    # the slow hops (90th percentile) of packets not seen, at each hop's best phase
    at_hint = np.percentile(_waits([later], better.phase_s, hop_s=hint.hop_s), 90)
    at_session = np.percentile(_waits([later], chosen.phase_s), 90)
    assert at_hint == pytest.approx(hint.wait_s, abs=0.002)  # it holds for later packets
    assert at_session == pytest.approx(hint.session_wait_s, abs=0.002)
    assert at_hint < 0.5 * at_session


def test_no_hop_is_suggested_where_every_hop_is_whole_packets_already():
    seen = _packets(0.03125, 0.009, 256.0)  # 8 samples at 256 Hz: 8 packets a hop
    chosen = choose_phase([seen], HOP_S)
    assert chosen is not None
    assert hop_hint([seen], HOP_S, chosen) is None
    dense = _packets(1 / 2000, 0.0, 2000.0)  # a sample at a time: nothing to gain
    chosen = choose_phase([dense], HOP_S)
    assert chosen is not None
    assert hop_hint([dense], HOP_S, chosen) is None


def test_a_ring_buffer_keeps_the_arrival_of_its_last_writes_and_forgets_them_when_cleared():
    buffer = RingBuffer(100, 1)
    buffer.write(np.zeros((3, 1)), np.array([1.0, 1.1, 1.2]), arrived=1.25)
    buffer.write(np.zeros((1, 1)), np.array([1.3]))  # a replay's write: no arrival
    buffer.write(np.zeros((2, 1)), np.array([1.4, 1.5]), arrived=1.52)
    newest, arrived = buffer.arrivals()
    np.testing.assert_allclose(newest, [1.2, 1.5])
    np.testing.assert_allclose(arrived, [1.25, 1.52])
    buffer.clear()  # the stream's clock went back: old arrivals are on another time base
    assert len(buffer.arrivals()[0]) == 0


# ------------------------------------------------------------- the scheduler's choice


def _live_feed(name: str, packets: Arrivals | None) -> Feed:
    """A feed whose buffer got ``packets`` as a live reader would write them."""
    mod = ModalitySpec(name, "physiological", "gsr_stats", name.upper(), ("x",), 100.0, 2.0, (28,))
    buffer = RingBuffer(2000, 1)
    if packets is not None:
        for newest, arrived in zip(packets.newest, packets.arrived, strict=True):
            buffer.write(np.zeros((1, 1)), np.array([newest]), arrived=float(arrived))
    stream = StreamDescription(name, mod.stream_type, ("x",), 100.0)
    return Feed(buffer, InputAdapter(mod, stream, AdaptOptions(units={name: "uS"})))


def _live_scheduler(feeds: dict[str, Feed], follow: bool = True) -> WindowScheduler:
    mods = tuple(
        ModalitySpec(n, "physiological", "gsr_stats", n.upper(), ("x",), 100.0, 2.0, (28,))
        for n in feeds
    )
    spec = FeatureSpec(modalities=mods, labels=("calm", "tense"), hop_s=HOP_S)
    return WindowScheduler(spec, feeds, WallClock(), follow=follow)


def _until_now(every_s: float, phase_s: float, **kw) -> Arrivals:
    """Packets of a 100-Hz stream over the last 2 s, on this machine's LSL clock,
    ``phase_s`` after round window ends."""
    now = pylsl.local_clock()
    start = np.floor((now - 2.0) / HOP_S) * HOP_S
    return _packets(every_s, phase_s, 100.0, start_s=start, seconds=now - start, **kw)


def test_a_live_session_takes_its_phase_from_the_streams_that_send_packets():
    """One stream sends 20-ms packets, one has sent nothing yet (a camera still
    starting), one went quiet a second ago: the choice is made from the first at once,
    and the first window end is on the chosen phase, after now."""
    quiet = _until_now(0.02, 0.007)
    quiet = Arrivals(quiet.newest - 2.0, quiet.arrived - 2.0, quiet.period_s)
    feeds = {
        "gsr": _live_feed("gsr", _until_now(0.02, 0.011, lag_s=0.002)),
        "ppg": _live_feed("ppg", None),
        "eda": _live_feed("eda", quiet),
    }
    scheduler = _live_scheduler(feeds)
    now = pylsl.local_clock()
    first = scheduler.first_end()
    assert scheduler.phase is not None
    assert scheduler.phase.moved  # packets 11 ms after round ends: a full packet's wait
    assert scheduler.phase.wait_s < scheduler.phase.round_wait_s
    assert scheduler.phase_wait_s < 0.5  # the packets were there: no waiting for them
    assert now < first <= now + HOP_S + 0.5
    offset = (first - scheduler.phase.phase_s) / HOP_S
    assert offset == pytest.approx(round(offset), abs=1e-6)
    # its windows take in the packets that completed them: no other hop to suggest
    assert scheduler.follows
    assert scheduler.hop_hint is None
    on_grid = _live_scheduler(feeds, follow=False)  # windows exactly on the grid
    on_grid.first_end()
    assert on_grid.hop_hint is not None  # 20-ms packets: 12.5 a hop
    assert on_grid.hop_hint.hop_s == pytest.approx(0.24)


def test_streams_that_send_a_sample_at_a_time_or_went_quiet_leave_the_ends_round():
    dense = _packets(1 / 1000, 0.0, 1000.0, start_s=pylsl.local_clock() - 0.3, seconds=0.3)
    quiet = _until_now(0.02, 0.004)
    quiet = Arrivals(quiet.newest - 3.0, quiet.arrived - 3.0, quiet.period_s)
    scheduler = _live_scheduler({"gsr": _live_feed("gsr", dense), "ppg": _live_feed("ppg", quiet)})
    first = scheduler.first_end()
    assert scheduler.phase is None
    assert scheduler.phase_wait_s < 0.5
    assert first / HOP_S == pytest.approx(round(first / HOP_S), abs=1e-6)  # round ends
