"""A synthetic group: N simulated participants on LSL, one shared stimulus timeline.

An audience or hyperscanning study shows everyone the same stimuli, and everyone
feels them a little differently and a little earlier or later. :class:`SyntheticGroup`
plays that: participant ``P01``..``PNN`` is subject ``100 + i`` with its own seed,
follows the shared script (by default the tour, after ``rest_s`` of rest) with each
segment's target mixed with its own seeded Dirichlet draw (``deviation``, 0.2) and
each onset shifted by its own seeded jitter (up to ``onset_jitter_s``, 1.5 s), and
publishes its own EEG, GSR, PPG, face, truth and labels streams. Every stream carries
its participant in the description and at the end of its name
(``HeLo-synthetic-EEG-P01``), which is how a group session tells them apart.

Cost. One thread pushes the whole group: a thread per participant would only add
switching, since generation holds the GIL. Generating costs mostly scipy's per-call
overhead (five band filters for the EEG, about half of it), not samples, so it falls
with the chunk. One participant's four streams plus truth and labels, generated and
pushed in real time, took 20-24 ms of CPU per second of session with 20 ms chunks
(the lone device's default), 10-12 ms with 50 ms chunks and 6-7 ms with 100 ms
chunks (``time.thread_time`` over 20 s of session time, 2-core machine). A running
group of 16, whole process with liblsl's threads (``time.process_time`` over 10 s),
took 40 % of one core with 20 ms chunks, 22 % with 50 ms and 13 % with 100 ms. The
group pushes every 50 ms by default: 16 participants fit beside inference, and a
sample waits at most 50 ms to be pushed, well inside a 0.25 s hop (the demo's). A
participant's signals do not depend on the chunk (the generators carry their filter
states; equal to 1e-9), so they are those of a lone device with the same subject,
seed and script.
"""

from __future__ import annotations

import logging
import os
import threading

import numpy as np
import pylsl

from helo.devices.synthetic import Fault, StreamStyle, SyntheticDevice, push_in_real_time
from helo.models.datasets.synthetic import EmotionScript
from helo.models.streams import LABELS_SOURCE_SUFFIX, TRUTH_SOURCE_SUFFIX

log = logging.getLogger(__name__)

MAX_PARTICIPANTS = 99  # names are zero-padded to two digits: P01..P99
FIRST_SUBJECT = 100  # participant i is subject 100 + i: none of the demo model's (0-15)


def participant_name(index: int) -> str:
    """``1`` -> ``"P01"``: the name of the ``index``-th participant (1-based)."""
    return f"P{index:02d}"


def individual_script(
    shared: EmotionScript,
    rng: np.random.Generator,
    *,
    deviation: float = 0.2,
    onset_jitter_s: float = 1.5,
) -> EmotionScript:
    """One participant's version of ``shared``: each segment's target is
    ``(1 - deviation) * target + deviation * Dirichlet(1, ..., 1)`` and each onset moves
    by up to ``± onset_jitter_s`` seconds (uniform), drawn from ``rng``.

    The jitter is capped at a quarter of the shortest segment, so onsets stay in order,
    and no onset moves before the end of the rest (nor before its shared onset, for a
    script whose first segment starts within the rest): the rest is everyone's.
    """
    if not 0.0 <= deviation <= 1.0:
        raise ValueError(f"deviation must be between 0 and 1, got {deviation}")
    if onset_jitter_s < 0.0:
        raise ValueError(f"onset_jitter_s must be >= 0, got {onset_jitter_s}")
    starts = np.asarray(shared.starts_s, dtype=np.float64)
    n_segments, n_labels = shared.targets.shape
    own = rng.dirichlet(np.ones(n_labels), size=n_segments)
    targets = (1.0 - deviation) * shared.targets + deviation * own
    gaps = np.diff(starts)
    jitter_s = min(onset_jitter_s, 0.25 * float(gaps.min())) if len(gaps) else onset_jitter_s
    moved = starts + rng.uniform(-jitter_s, jitter_s, size=n_segments)
    moved = np.maximum(moved, np.minimum(starts, shared.rest_s))
    return EmotionScript(
        starts_s=moved,
        targets=targets / targets.sum(axis=1, keepdims=True),
        tau_s=shared.tau_s,
        initial=shared.initial,
        rest_s=shared.rest_s,
    )


class SyntheticGroup:
    """``n_participants`` simulated participants, each a :class:`SyntheticDevice`,
    pushed in real time by one thread.

    ``devices`` maps each participant ("P01", ...) to its device (its ``script``,
    ``subject``, ``session``). ``faults`` and ``style`` apply to every participant.
    All share session time 0, so the shared script's onsets are simultaneous in LSL
    time, give or take each participant's jitter.
    """

    def __init__(
        self,
        n_participants: int,
        *,
        script: EmotionScript | None = None,
        rest_s: float = 0.0,
        seed: int = 0,
        modalities: tuple[str, ...] = ("eeg", "gsr", "ppg", "face"),
        source_prefix: str | None = None,
        chunk_s: float = 0.05,
        deviation: float = 0.2,
        onset_jitter_s: float = 1.5,
        faults: tuple[Fault, ...] = (),
        style: StreamStyle | None = None,
        truth: bool = True,
        labels: bool = True,
    ):
        if not 1 <= n_participants <= MAX_PARTICIPANTS:
            raise ValueError(
                f"n_participants must be between 1 and {MAX_PARTICIPANTS}, got {n_participants}"
            )
        if chunk_s <= 0.0:
            raise ValueError(f"chunk_s must be > 0 seconds, got {chunk_s}")
        self.script = script or EmotionScript.tour(rest_s=rest_s)
        self.source_prefix = source_prefix or f"helo-synthetic-{os.getpid()}"
        self.chunk_s = chunk_s
        self.devices: dict[str, SyntheticDevice] = {}
        for i in range(1, n_participants + 1):
            name = participant_name(i)
            rng = np.random.default_rng([seed, i, 4099])  # this participant's deviations
            self.devices[name] = SyntheticDevice(
                individual_script(
                    self.script, rng, deviation=deviation, onset_jitter_s=onset_jitter_s
                ),
                subject=FIRST_SUBJECT + i,
                seed=seed + i,
                modalities=modalities,
                source_prefix=f"{self.source_prefix}-{name}",
                chunk_s=chunk_s,
                truth=truth,
                faults=faults,
                style=style,
                labels=labels,
                participant=name,
            )
        self.t0: float | None = None  # LSL time of everyone's session time 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def participants(self) -> dict[str, dict[str, str]]:
        """Participant -> stream -> source_id: each simulated modality, and ``"truth"``
        and ``"labels"`` when the group publishes them."""
        out: dict[str, dict[str, str]] = {}
        for name, device in self.devices.items():
            streams = {m: f"{device.source_prefix}-{m}" for m in device.modalities}
            if device.truth:
                streams["truth"] = device.source_prefix + TRUTH_SOURCE_SUFFIX
            if device.labels:
                streams["labels"] = device.source_prefix + LABELS_SOURCE_SUFFIX
            out[name] = streams
        return out

    def start_outlets(self) -> SyntheticGroup:
        """Create every participant's outlets and fix one session time 0 for all, without
        the pushing thread (a caller then drives :meth:`push_until`)."""
        for device in self.devices.values():
            device.start_outlets()
        self.t0 = pylsl.local_clock()
        for device in self.devices.values():
            device.t0 = self.t0  # one stimulus timeline: the same time 0 for everyone
        return self

    def push_until(self, session_s: float) -> None:
        """Generate and push every participant's samples due up to ``session_s``."""
        for device in self.devices.values():
            device.push_until(session_s)

    def start(self) -> SyntheticGroup:
        """Publish in real time from one thread."""
        self.start_outlets()
        self._thread = threading.Thread(target=self._run, name="synthetic-group", daemon=True)
        self._thread.start()
        log.info(
            "synthetic group: %d participants on LSL (sources %s-P01...)",
            len(self.devices),
            self.source_prefix,
        )
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        for device in self.devices.values():
            device.stop()

    def __enter__(self) -> SyntheticGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        assert self.t0 is not None
        push_in_real_time(self.push_until, self.t0, self.chunk_s, self._stop)
