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
the slowest stream's packet arrives soonest after them (:func:`choose_phase`). The
grid keeps one phase for the session (its ends are still ``first + k * hop``), so a
replay of the recording, which anchors on the first recorded end, cuts the same
windows. A device whose clock drifts against this machine's (a crystal 20 ppm off
moves 20-ms packets by a whole packet in about 17 minutes) slides back to the
average wait over time; it is never worse than not choosing.
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
    streams = [s for s in streams if len(s.newest) > 2]
    if not streams or hop_s <= 0:
        return None
    # from the third packet on: a stream's first pulls bring what queued while it opened
    lo = max(float(s.newest[2]) + max(s.period_s, 0.0) for s in streams)
    hi = min(float(s.newest[-1]) for s in streams)
    if hi - lo < min_hops * hop_s:
        return None
    phases = np.arange(0.0, hop_s, STEP_S)
    first = np.ceil((lo - phases) / hop_s)  # the first grid end at or after lo, per phase
    ends = (first[:, None] + np.arange(int(np.floor((hi - lo) / hop_s)) + 1)) * hop_s
    ends = ends + phases[:, None]  # [phases, hops]
    valid = ends <= hi
    worst = np.zeros(ends.shape)
    for s in streams:
        if s.period_s > 0:
            at = np.searchsorted(s.newest, ends - s.period_s, side="right")
        else:
            at = np.searchsorted(s.newest, ends, side="left")
        ready = s.arrived[np.minimum(at, len(s.arrived) - 1)]
        worst = np.maximum(worst, np.clip(ready - ends, 0.0, None))
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
