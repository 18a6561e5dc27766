"""The window scheduler: every hop, one window per modality, all ending at one LSL time.

The same scheduler serves live sessions and replays; only the clock differs
(:mod:`streamer.clocks`). At each hop it waits for the clock to reach the window
end ``t_end``, then (bounded by ``max_wait_s``) for every stream to deliver its
samples up to ``t_end``, and cuts from each modality's ring buffer the samples
of ``(t_end - window_s, t_end]``, adapted to the model's input (its channels,
units and rate: :mod:`helo.models.features.adapt`, the code training uses too). A
modality with no stream, whose newest sample is older than ``stale_s``, or whose
window holds a glitch, is marked with the reason and left out (the model masks
it); nothing is ever filled in, except the model's missing EEG channels, which
are interpolated from the present ones when the session says so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from helo.models.features.adapt import InputAdapter
from helo.models.features.spec import FeatureSpec
from helo.streamer.buffers import ARRIVALS_KEPT, RingBuffer
from helo.streamer.clocks import Clock
from helo.streamer.hop_phase import Arrivals, HopHint, PhaseChoice, choose_phase, hop_hint

log = logging.getLogger(__name__)

MAX_WAIT_S = 0.3  # how long a window waits for the slowest stream (live)
FOLLOW_SHARE = 0.1  # live: a window may end this share of a hop past its place on the grid
STALE_S = 2.0  # a stream whose newest sample is older than this is masked
ALIGN_WAIT_S = 1.5  # how long a live session's first window waits to see the packets
EDGE_S = 0.001  # a followed end keeps this clear of a regular stream's next sample
SHIFTS_KEPT = 4096  # the followed ends' shifts kept for figures (the last 17 min at 0.25 s)


def follow_span(hop_s: float) -> float:
    """How far past its place on the hop's grid a live window may end
    (:meth:`WindowScheduler._followed_end`): a tenth of the hop, 25 ms at 0.25 s, more than
    the 20-ms packets amplifiers commonly send."""
    return FOLLOW_SHARE * hop_s


@dataclass(frozen=True)
class Feed:
    """Where a modality's samples come from: a buffer, and how its stream becomes the
    model's input (channels, units, rate: the same adapter training uses)."""

    buffer: RingBuffer
    adapter: InputAdapter

    @property
    def srate_hz(self) -> float:
        """Nominal rate of the stream; 0 for irregular streams."""
        return self.adapter.stream.srate_hz

    @property
    def stream_name(self) -> str:
        return self.adapter.stream.name


@dataclass
class WindowSet:
    """The windows of every modality for one hop (plain data handed to the worker)."""

    index: int
    t_end: float  # LSL time of the window end
    windows: dict[str, np.ndarray | None]  # name -> [T, C] in spec channel order, None if absent
    reasons: dict[str, str] = field(default_factory=dict)  # name -> why it is absent
    newest_sample: float | None = None  # newest timestamp inside any window (latency origin)
    cut_at: float = 0.0  # clock time the windows were cut
    cut_wall: float = 0.0  # time.perf_counter() when cut (the monitor's own compute time)
    interpolated: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> channels
    participant: str = ""  # whose windows (a group session)


class WindowScheduler:
    """Cuts :class:`WindowSet` s every ``hop_s`` from the feeds of the spec's modalities.

    A group session gives ``groups`` (participant -> feeds): every hop then cuts one
    window set per participant, all ending at the same time, and hands them on
    together (:meth:`hops`), so that one worker predicts the whole group in one batch.
    """

    def __init__(
        self,
        spec: FeatureSpec,
        feeds: Mapping[str, Feed],
        clock: Clock,
        *,
        hop_s: float | None = None,
        max_wait_s: float = MAX_WAIT_S,
        stale_s: float = STALE_S,
        start_s: float | None = None,
        ends: Sequence[float] | np.ndarray | None = None,
        groups: Mapping[str, Mapping[str, Feed]] | None = None,
        align: bool = True,
        follow: bool = True,
        participant_ends: Mapping[str, np.ndarray] | None = None,
    ):
        self.groups = {p: dict(f) for p, f in groups.items()} if groups else {"": dict(feeds)}
        for group in self.groups.values():
            unknown = sorted(set(group) - set(spec.names))
            if unknown:
                raise ValueError(f"feeds for modalities the spec does not have: {unknown}")
        self.spec = spec
        self.feeds = next(iter(self.groups.values()))  # the (first) participant's, for views
        self.clock = clock
        self.hop_s = float(hop_s or spec.hop_s)
        self.max_wait_s = max_wait_s
        self.stale_s = stale_s
        self._first_end = start_s
        self._ends = None if ends is None else [float(t) for t in ends]
        # a group replay whose live windows followed each participant's packets: each
        # one's own ends, hop by hop (``ends`` are each hop's latest, for the clock)
        self._own_ends = (
            {p: np.asarray(e, dtype=np.float64) for p, e in participant_ends.items()}
            if participant_ends
            else None
        )
        self._position = 0  # index into ``_ends``
        self._index = 0
        self._stop = threading.Event()
        self.align = align
        self.phase: PhaseChoice | None = None  # the live choice of where ends fall (None: none)
        self.phase_wait_s = 0.0  # how long the first window waited to see the packets
        self.hop_hint: HopHint | None = None  # a hop whose ends would all sit by a packet
        # live: how far past its place on the grid a window may end (0: exactly on it)
        self.follow_s = follow_span(self.hop_s) if follow else 0.0
        self.end_shifts: deque[float] = deque(maxlen=SHIFTS_KEPT)  # followed end - grid's

    @property
    def follows(self) -> bool:
        """Whether this session's windows end where the packets arrived
        (:meth:`_followed_end`): live, unless asked for ends exactly on the grid."""
        return self.follow_s > 0 and self.clock.waits_for_data and self._ends is None

    def stop(self) -> None:
        self._stop.set()
        self.clock.interrupt()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def first_end(self) -> float:
        """The first window end: the next multiple of the hop after the clock's now, or
        live, the next end on the phase where the devices' packets arrive soonest after
        it (:mod:`streamer.hop_phase`)."""
        if self._first_end is None:
            origin = 0.0
            if self.align and self.clock.waits_for_data:
                started = time.monotonic()
                self.phase = self._packet_phase()
                self.phase_wait_s = time.monotonic() - started
                origin = self.phase.phase_s if self.phase is not None else 0.0
            now = self.clock.now()
            self._first_end = origin + (np.floor((now - origin) / self.hop_s) + 1) * self.hop_s
            if self.follows:
                log.info(
                    "each window ends where the packets that completed it end, at most %.0f ms "
                    "past its place on the hop's grid (follow_ends = false: on the grid)",
                    self.follow_s * 1e3,
                )
        return self._first_end

    def _packet_phase(self) -> PhaseChoice | None:
        """The phase of the window ends chosen from the packets of every stream that
        sends any, once they cover four hops (the readers start with the session, so
        the first window waits for them, at most ``ALIGN_WAIT_S``; then two hops do).
        Streams that have sent nothing lately do not count; with none, the ends stay
        round."""
        feeds = [f for group in self.groups.values() for f in group.values()]
        deadline = time.monotonic() + ALIGN_WAIT_S
        choice = None
        while not self._stop.is_set():
            last = time.monotonic() >= deadline
            seen, starting = self._arrivals(feeds)
            if not seen and not starting:
                break  # every stream sends a sample at a time, or has gone quiet
            choice = choose_phase(seen, self.hop_s, min_hops=2 if last else 4)
            if choice is not None or last:
                break
            self._stop.wait(0.05)
        if choice is not None and choice.moved:
            log.info(
                "window ends put %.0f ms into the hop, where the devices' packets arrive: "
                "last packet's wait %.1f ms, %.1f ms on round ends (%d hops seen)",
                choice.phase_s * 1e3,
                choice.wait_s * 1e3,
                choice.round_wait_s * 1e3,
                choice.hops_seen,
            )
        if choice is not None and not self.follows:  # followed ends all sit by a packet
            self.hop_hint = hop_hint(seen, self.hop_s, choice)
        if self.hop_hint is not None:
            log.info(
                "with --hop %g every window end could sit next to the devices' packets: the "
                "slow hops wait %.1f ms for them, against %.1f ms at %g s, where some hops "
                "end between two packets",
                self.hop_hint.hop_s,
                self.hop_hint.wait_s * 1e3,
                self.hop_hint.session_wait_s * 1e3,
                self.hop_s,
            )
        return choice

    def _arrivals(self, feeds: list[Feed]) -> tuple[list[Arrivals], int]:
        """The packets each feed's stream sent lately, as :func:`choose_phase` takes them,
        and how many streams have sent fewer than three yet (the session just opened)."""
        seen, starting, now = [], 0, self.clock.now()
        for feed in feeds:
            newest, arrived = feed.buffer.arrivals()
            if len(newest) < 3:
                starting += 1
                continue
            if arrived[-1] < now - 0.5:
                continue  # nothing lately: it will not hold up a hop
            if len(newest) >= ARRIVALS_KEPT and newest[-1] - newest[0] < 3 * self.hop_s:
                continue  # packets every few ms: nothing to wait for
            period = 1.0 / feed.srate_hz if feed.srate_hz > 0 else 0.0
            seen.append(Arrivals(newest, arrived, period))
        return seen, starting

    def _end_of(self, participant: str, t_end: float) -> float:
        """Where ``participant``'s window of the hop ending at ``t_end`` ends: there; live,
        where their own packets end (:meth:`_followed_end`); in a group replay of such
        ends, at their own recorded end."""
        if self.follows:
            end = self._followed_end(t_end, self.groups[participant].values())
            self.end_shifts.append(end - t_end)
            return end
        if self._own_ends is None:
            return t_end
        return float(self._own_ends[participant][self._position])

    def _end_after(self, t_end: float) -> float | None:
        """The window end that follows ``t_end`` (None when given ends run out)."""
        if self._ends is not None:
            self._position += 1
            return self._ends[self._position] if self._position < len(self._ends) else None
        return t_end + self.hop_s

    def _end_from(self, target: float) -> float | None:
        """The first window end at or after ``target`` (where a seek lands), on the same
        grid of ends as before."""
        if self._ends is not None:
            self._position = int(np.searchsorted(self._ends, target - 1e-9))
            return self._ends[self._position] if self._position < len(self._ends) else None
        origin = self.first_end()
        steps = max(0.0, np.ceil((target - origin) / self.hop_s - 1e-9))
        return origin + steps * self.hop_s

    def windows(self) -> Iterator[WindowSet]:
        """Window sets one by one (in a group, each hop's participants in turn)."""
        for hop in self.hops():
            yield from hop

    def hops(self) -> Iterator[list[WindowSet]]:
        """Every hop's window sets (one per participant), until :meth:`stop` or the clock
        runs out. A clock that can seek (a replay in the GUI) moves the next window end
        to where it lands."""
        if self._ends is not None:
            t_end = self._ends[0] if self._ends else None
        else:
            t_end = self.first_end()
        while t_end is not None:
            if self._stop.is_set() or not self.clock.wait_until(t_end):
                return  # stopped, or the clock ended (end of a replay)
            target = self.clock.take_seek()
            if target is not None:
                t_end = self._end_from(target)
                continue
            index, cuts, deadline = self._index, [], t_end + self.max_wait_s
            for participant, feeds in self.groups.items():
                # each participant cut once their own streams are in: while the others'
                # packets are still coming (a group's 32 streams arrive over a few ms)
                self._wait_for_data(t_end, feeds.values(), deadline)
                if self._stop.is_set():
                    return
                cuts.append(self.cut(self._end_of(participant, t_end), participant, index))
            yield cuts
            self._index = index + 1
            t_end = self._end_after(t_end)

    def batch_hops(self, size: int, offset: int = 0) -> Iterator[list[list[WindowSet]]]:
        """A replay at full speed: the hops of one fixed batch at a time (those the
        pipeline batches :meth:`hops` into: ``size`` hops, the first batch closing when
        ``offset`` + hops is a multiple of ``size``), each modality cut once per batch
        from its buffer instead of once per window; a sample sits in 20 windows, and
        cutting them one by one cost more than their features (docs/scale.md)."""
        if self._ends is None or self.clock.waits_for_data:
            raise ValueError("batches are cut from a replay's given window ends")
        done = 0
        while self._position < len(self._ends) and not self._stop.is_set():
            take = size - (offset + done) % size
            ends = np.array(self._ends[self._position : self._position + take])
            if not self.clock.wait_until(float(ends[-1])):
                return  # stopped (the clock ends at the last window end)
            target = self.clock.take_seek()
            if target is not None:
                self._end_from(target)
                continue
            first, at = self._index, slice(self._position, self._position + len(ends))
            own = self._own_ends
            cuts = [
                self.cut_batch(ends if own is None else own[participant][at], participant, first)
                for participant in self.groups
            ]
            yield [[sets[k] for sets in cuts] for k in range(len(ends))]
            self._index += len(ends)
            self._position += len(ends)
            done += len(ends)

    def cut_batch(self, ends: np.ndarray, participant: str, first_index: int) -> list[WindowSet]:
        """The window sets of ``participant`` ending at ``ends`` (already in the buffers),
        numbered from ``first_index``: what :meth:`cut` gives window by window."""
        windows: list[dict[str, np.ndarray | None]] = [{} for _ in ends]
        reasons: list[dict[str, str]] = [{} for _ in ends]
        newest_in = np.full(len(ends), -np.inf)
        interpolated: dict[str, tuple[str, ...]] = {}
        for mod in self.spec.modalities:
            feed = self.groups[participant].get(mod.name)
            if feed is None:
                for k in range(len(ends)):
                    windows[k][mod.name], reasons[k][mod.name] = None, f"{mod.name}: no stream"
                continue
            times, samples = feed.buffer.contents(float(ends[-1]))
            count = np.searchsorted(times, ends, side="right")  # samples up to each end
            newest = (
                np.where(count > 0, times[np.maximum(count - 1, 0)], -np.inf)
                if len(times)
                else np.full(len(ends), -np.inf)
            )
            wanted = []
            for k, t_end in enumerate(ends.tolist()):
                windows[k][mod.name] = None
                if count[k] == 0:
                    reasons[k][mod.name] = f"{mod.name}: no data yet"
                elif newest[k] < t_end - self.stale_s:
                    age = t_end - newest[k]
                    reasons[k][mod.name] = f"{mod.name}: stale, newest sample {age:.1f} s old"
                else:
                    reasons[k][mod.name] = f"{mod.name}: no samples in window"
                    if newest[k] > feed.adapter.read_from(t_end):
                        newest_in[k] = max(newest_in[k], newest[k])
                    wanted.append(k)
            rows = np.array(wanted, dtype=int)
            for idx, window, reason in feed.adapter.windows(times, samples, ends[rows]):
                for j, k in enumerate(rows[idx].tolist()):
                    if window is None:
                        reasons[k][mod.name] = reason or f"{mod.name}: unusable window"
                    else:
                        windows[k][mod.name] = window[j]
                        del reasons[k][mod.name]
                        if feed.adapter.interpolated:
                            interpolated[mod.name] = feed.adapter.interpolated
        now, wall = self.clock.now(), time.perf_counter()
        return [
            WindowSet(
                first_index + k,
                float(t_end),
                windows[k],
                reasons[k],
                float(newest_in[k]) if np.isfinite(newest_in[k]) else None,
                now,
                wall,
                {n: c for n, c in interpolated.items() if windows[k].get(n) is not None},
                participant,
            )
            for k, t_end in enumerate(ends.tolist())
        ]

    def _ready(self, feed: Feed, t_end: float) -> bool:
        newest = feed.buffer.newest_time()
        if newest is None or newest < t_end - self.stale_s:
            return True  # nothing to wait for: it will be marked stale
        t, after = self._awaited(feed, t_end)
        return newest > t if after else newest >= t

    @staticmethod
    def _awaited(feed: Feed, t_end: float) -> tuple[float, bool]:
        """The sample time that completes ``feed``'s window ending at ``t_end``, and whether
        the newest sample must be strictly after it. Regular sampling: a sample less than a
        period before ``t_end`` means the next one falls after ``t_end``, so every sample
        of the window is in; irregular: a frame at or after ``t_end``."""
        if feed.srate_hz <= 0:
            return t_end, False
        return t_end - 1.0 / feed.srate_hz, True

    def _followed_end(self, t_end: float, feeds: Iterable[Feed]) -> float:
        """Where a participant's window due at ``t_end`` ends, once every one of their
        streams (``feeds``) has sent its samples up to ``t_end``: at the newest instant
        every one has sent, at most ``follow_s`` later. In a group each participant's
        windows follow their own devices' packets, which no other device's wait for.

        The packet that brings a stream's sample at ``t_end`` brings the samples after
        it too, up to the packet's end: with 20-ms packets and a 0.25-s hop, every other
        window end falls half a packet before one, and its window left out 10 ms of
        samples that had arrived by the time it was cut (the odd hops' latency, 10 ms
        above the even ones'). The window takes them in; the cut is not delayed.

        How far: a regular stream is complete up to its next sample, which has not come
        (the end keeps ``EDGE_S`` clear of it, half a period above 500 Hz, so that the
        replay's timestamps, pyxdf's de-jitter rather than ours, cannot let it in); an
        irregular stream up to its newest frame. A slow stream bounds the end by its
        own next sample whatever the others sent: no other stream's packets say when
        its next one comes. A stream that timed out leaves the end on the grid; one that
        is masked (stale) holds nothing up. The grid itself stays: the next end is the
        grid's next, so the hop is kept on average, the ends never drift from it, and a
        replay finds each end among the recorded predictions (:mod:`streamer.replay`).
        """
        end = t_end + self.follow_s
        for feed in feeds:
            newest = feed.buffer.newest_time()
            if newest is None or newest < t_end - self.stale_s:
                continue
            if not self._ready(feed, t_end):
                return t_end
            period = 1.0 / feed.srate_hz if feed.srate_hz > 0 else 0.0
            end = min(end, newest + period - min(0.5 * period, EDGE_S))
        return max(t_end, end)

    def _wait_for_data(self, t_end: float, feeds: Iterable[Feed], deadline: float) -> None:
        if not self.clock.waits_for_data:
            return  # a replay pushed everything up to t_end before the clock got there
        for feed in feeds:
            while not self._ready(feed, t_end) and not self._stop.is_set():
                left = deadline - self.clock.now()
                if left <= 0:
                    return
                t, after = self._awaited(feed, t_end)
                feed.buffer.wait_for(t, min(left, 0.05), after=after)

    def cut(self, t_end: float, participant: str = "", index: int | None = None) -> WindowSet:
        """The windows of ``participant`` ending at ``t_end`` (does not wait); the next
        index unless one is given (a hop's participants share theirs)."""
        feeds = self.groups[participant]
        windows: dict[str, np.ndarray | None] = {}
        reasons: dict[str, str] = {}
        newest_in = None
        interpolated: dict[str, tuple[str, ...]] = {}
        for mod in self.spec.modalities:
            feed = feeds.get(mod.name)
            if feed is None:
                windows[mod.name], reasons[mod.name] = None, f"{mod.name}: no stream"
                continue
            newest = feed.buffer.newest_time()
            if newest is None:
                windows[mod.name], reasons[mod.name] = None, f"{mod.name}: no data yet"
                continue
            if newest < t_end - self.stale_s:
                windows[mod.name] = None
                reasons[mod.name] = f"{mod.name}: stale, newest sample {t_end - newest:.1f} s old"
                continue
            times, samples = feed.buffer.read_span(feed.adapter.read_from(t_end), t_end)
            windows[mod.name], reasons[mod.name] = None, f"{mod.name}: no samples in window"
            for _, window, reason in feed.adapter.windows(times, samples, np.array([t_end])):
                if window is None:
                    reasons[mod.name] = reason or f"{mod.name}: unusable window"
                else:
                    windows[mod.name] = window[0]
                    del reasons[mod.name]
                    if feed.adapter.interpolated:
                        interpolated[mod.name] = feed.adapter.interpolated
            if len(times):
                newest = float(times[-1])
                newest_in = newest if newest_in is None else max(newest_in, newest)
        if index is None:
            index, self._index = self._index, self._index + 1
        return WindowSet(
            index,
            t_end,
            windows,
            reasons,
            newest_in,
            self.clock.now(),
            time.perf_counter(),
            interpolated,
            participant,
        )
