"""Where within the hop a live session's windows end: just before the devices' packets go.

A window can be cut only once its last sample has arrived, and devices send their
samples in packets (every 20 ms, 40 ms, 8 samples...): the sample at a window end
waits in the device until its packet leaves. With window ends on round multiples of
the hop, that wait is wherever the packets happen to fall: between nothing and a
whole packet, the same for the whole session, decided by when each device started.
In the group benchmark (20-ms packets, hop 0.25 s: 12.5 packets a hop, so the hops
alternate between two waits) it was 0-20 ms of a 50-ms budget, run to run.

So before its first window a live session looks at the packets that have arrived
(:class:`Arrivals`, kept by each stream's ring buffer) and puts its window ends where
the slowest stream's packet arrives soonest after them (:func:`choose_phase`). The grid
keeps one phase for the session (its ends are ``first + k * hop``, each window then
taking in the packet that completed it, up to a tenth of a hop later), and a replay of
the recording cuts at the recorded ends. A device whose clock drifts against this
machine's (a crystal 20 ppm off moves 20-ms packets by a whole packet in about 17
minutes) slides back to the average wait over time; it is never worse than not choosing.

One phase cannot serve every hop when a hop is not a whole number of packets: at 0.25 s
and 20-ms packets the even hops' ends sit next to a packet and the odd ones' half a
packet from it (measured, 8 participants: the wait for the packets p50 11.5 against
23.2 ms). A live window therefore takes in the packet that completed it
(:meth:`~helo.streamer.scheduler.WindowScheduler._followed_end`); a session whose
windows end exactly on the grid (``follow_ends = false``) is told instead of a hop near
its own where every end can sit next to a packet (:func:`hop_hint`, ``--hop``). Measured
at 8 participants, four runs each: at 0.24 s the wait for the packets p50 9.8-11.3 ms
against 13.2-14.8 ms at 0.25 s; latency p99 42.1, 42.3, 53.5, 48.5 ms against 48.6,
55.4, 45.9, 47.0 ms (the tail has other causes too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STEP_S = 0.001  # resolution of the phases tried
GUARD_S = 0.001  # a phase's cost is its worst within this later: ends off a packet's edge
MIN_GAIN_S = 0.001  # a phase must save this much mean wait to be taken over round ends


@dataclass(frozen=True)
class Arrivals:
    """One stream's observed packets: the newest sample time of each and when it arrived
    (both on this machine's LSL clock)."""

    newest: np.ndarray
    arrived: np.ndarray
    period_s: float  # the sample period; 0 for an irregular stream (frames)


def hop_waits(
    streams: Sequence[Arrivals], hop_s: float, phases: np.ndarray, min_hops: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """For window ends on each of ``phases`` every ``hop_s``, over the packets observed:
    the slowest stream's wait at each end ``[phases, hops]`` and which ends the
    observations cover; None when they cover fewer than ``min_hops`` hops (see
    :func:`choose_phase` for the rule)."""
    streams = [s for s in streams if len(s.newest) > 2]
    if not streams or hop_s <= 0:
        return None
    # from the third packet on: a stream's first pulls bring what queued while it opened
    lo = max(float(s.newest[2]) + max(s.period_s, 0.0) for s in streams)
    hi = min(float(s.newest[-1]) for s in streams)
    if hi - lo < min_hops * hop_s:
        return None
    first = np.ceil((lo - phases) / hop_s)  # the first grid end at or after lo, per phase
    ends = (first[:, None] + np.arange(int(np.floor((hi - lo) / hop_s)) + 1)) * hop_s
    ends = ends + phases[:, None]  # [phases, hops]
    worst = np.zeros(ends.shape)
    for s in streams:
        if s.period_s > 0:
            at = np.searchsorted(s.newest, ends - s.period_s, side="right")
        else:
            at = np.searchsorted(s.newest, ends, side="left")
        ready = s.arrived[np.minimum(at, len(s.arrived) - 1)]
        worst = np.maximum(worst, np.clip(ready - ends, 0.0, None))
    return worst, ends <= hi


@dataclass(frozen=True)
class PhaseChoice:
    """The phase chosen for the window ends (``phase_s + k * hop``) and the mean wait
    for the slowest stream's last packet there, against round ends (phase 0), as seen
    in the packets observed."""

    phase_s: float
    wait_s: float
    round_wait_s: float
    hops_seen: int

    @property
    def moved(self) -> bool:
        return self.phase_s != 0.0


def choose_phase(
    streams: Sequence[Arrivals], hop_s: float, *, min_hops: int = 4
) -> PhaseChoice | None:
    """The phase of window ends that makes the observed packets' mean wait least, or
    None when the observations do not cover ``min_hops`` hops for every stream.

    A window ending at ``T`` is complete when a regular stream has a sample after
    ``T - period`` (the next one falls after ``T``) and an irregular stream a frame at
    or after ``T`` (the scheduler's rule); its wait is the arrival of the first packet
    that brings it, less ``T``, never below zero (the clock reaches ``T`` first). A
    phase's cost is the slowest stream's wait averaged over the observed hops, and the
    worst of that within ``GUARD_S`` later: the wait falls as the end nears the next
    packet's last sample and jumps by a whole packet past it, so the end keeps a
    millisecond from that edge."""
    phases = np.arange(0.0, hop_s, STEP_S) if hop_s > 0 else np.empty(0)
    waits = hop_waits(streams, hop_s, phases, min_hops)
    if waits is None:
        return None
    worst, valid = waits
    cost = np.where(valid, worst, 0.0).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
    ahead = round(GUARD_S / STEP_S)
    guarded = np.max([np.roll(cost, -k) for k in range(ahead + 1)], axis=0)
    best = int(np.argmin(guarded))
    if guarded[0] - guarded[best] < MIN_GAIN_S:
        best = 0
    return PhaseChoice(
        phase_s=float(phases[best]),
        wait_s=float(cost[best]),
        round_wait_s=float(cost[0]),
        hops_seen=int(valid[best].sum()),
    )


HINT_STEP_S = 0.01  # hops suggested instead: on this grid, within two steps of the session's
HINT_GAIN_S = 0.002  # and only where the slow hops' wait falls by this much
HINT_RATIO = 0.7  # and to at most this share of the session's
SLOW_HOPS = 90  # percentile of the hops' waits that stands for the slow ones


@dataclass(frozen=True)
class HopHint:
    """A hop near the session's where the observed packets would keep the slow hops'
    wait shorter: the 90th percentile of the hops' waits at each hop's best phase."""

    hop_s: float
    wait_s: float
    session_wait_s: float


def slow_wait(streams: Sequence[Arrivals], hop_s: float, phase_s: float) -> float | None:
    """The 90th percentile of the observed hops' waits for ends on ``phase_s``: the odd
    hops, where a hop is not a whole number of packets (the mean hides them: half of
    the hops wait half a packet longer, and the p99 latency is theirs)."""
    waits = hop_waits(streams, hop_s, np.array([phase_s]), min_hops=2)
    if waits is None or not waits[1][0].any():
        return None
    worst, valid = waits
    return float(np.percentile(worst[0][valid[0]], SLOW_HOPS))


def hop_hint(streams: Sequence[Arrivals], hop_s: float, chosen: PhaseChoice) -> HopHint | None:
    """The hop within two ``HINT_STEP_S`` of ``hop_s`` (the nearest first) whose best
    phase keeps the slow hops' wait (:func:`slow_wait`) clearly shorter than ``chosen``
    does at ``hop_s``; None when none does (the hop is a whole number of packets
    already, or the devices' packets keep no rhythm)."""
    session = slow_wait(streams, hop_s, chosen.phase_s)
    if session is None:
        return None
    best: HopHint | None = None
    for steps in (-1, 1, -2, 2):
        hop = round(hop_s + steps * HINT_STEP_S, 6)
        choice = choose_phase(streams, hop, min_hops=2) if hop > 0 else None
        wait = slow_wait(streams, hop, choice.phase_s) if choice is not None else None
        if wait is None:
            continue
        clearly_less = session - wait >= HINT_GAIN_S and wait <= HINT_RATIO * session
        if clearly_less and (best is None or wait < best.wait_s - HINT_GAIN_S):
            best = HopHint(hop, wait, session)
    return best
