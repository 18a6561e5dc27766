"""The inference worker: window sets in, predictions out, off the acquisition threads.

It runs on its own thread with a bounded queue in front. Live, a window set is
handled as soon as it arrives (one window: features, then one forward pass on one
thread, the fastest way for a single window). When windows pile up (a replay at
full speed, or a live worker that fell behind), it takes up to ``max_batch`` at
once: features are computed for the whole batch (vectorised per modality) and
the model runs them in one batched call (on CUDA when there is one). Readers are
never blocked: they write to ring buffers; only the scheduler waits for a place
in the queue.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

import numpy as np
import pylsl

from helo.models.features.extract import FeatureBatch, extract_modality
from helo.models.features.overlap import restack
from helo.models.features.participant import FeatureNormaliser, NormalisedBatch
from helo.models.inference import Predictor
from helo.models.personal_inputs import PersonalInputs
from helo.streamer.scheduler import WindowSet
from helo.streamer.window_log import WindowLog

log = logging.getLogger(__name__)

_DONE = object()


@dataclass
class FeaturedBatch:
    """A fixed batch whose raw features were computed before it was queued (a replay at
    full speed computes them in the scheduler's thread, while the worker runs the model
    on the batch before: the two cores work at once)."""

    window_sets: list[WindowSet]
    features: FeatureBatch


@dataclass
class PredictionRecord:
    """One prediction, as every sink receives it."""

    index: int
    t_end: float  # LSL time of the window end
    labels: tuple[str, ...]
    distribution: np.ndarray | None  # [K]; None when no modality was present
    present: tuple[str, ...]  # modalities the prediction used
    missing: dict[str, str] = field(default_factory=dict)  # modality -> why it is absent
    latency_ms: float | None = None  # newest sample in the window -> emitted (live)
    compute_ms: float = 0.0  # cut -> emitted, the monitor's own share
    interpolated: dict[str, tuple[str, ...]] = field(default_factory=dict)  # eeg -> channels
    calibrating: bool = False  # the participant's statistics (or baseline) are not settled
    participant: str = ""  # whose windows (a group session); "" in a one-person session

    @property
    def dominant(self) -> str | None:
        if self.distribution is None:
            return None
        return self.labels[int(np.argmax(self.distribution))]

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "t_end_lsl": float(self.t_end),  # exact: windows can be cut again at it
            "distribution": None
            if self.distribution is None
            else {
                k: round(float(v), 6) for k, v in zip(self.labels, self.distribution, strict=True)
            },
            "present": list(self.present),
            "missing": self.missing,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "compute_ms": round(self.compute_ms, 3),
            "interpolated": {k: list(v) for k, v in self.interpolated.items()},
            "calibrating": self.calibrating,
            "participant": self.participant,
        }


Subscriber = Callable[[PredictionRecord], None]


class Calibration(Protocol):
    """Baseline spans the session's label streams marked (the session recalibrates the
    participant they are for)."""

    def baseline_due(self, until: float, participant: str = "") -> float | None: ...

    def take_baselines(self, until: float, participant: str = "") -> None: ...


NOT_A_DISTRIBUTION = "the model's output was not a finite distribution"


def is_distribution(values: np.ndarray, atol: float = 1e-3) -> bool:
    """Finite, non-negative, summing to 1: what every sink may receive."""
    return bool(
        np.isfinite(values).all()
        and (values >= -1e-6).all()
        and abs(float(values.sum()) - 1.0) <= atol
    )


class InferenceWorker:
    """Consumes :class:`WindowSet` s, publishes :class:`PredictionRecord` s to subscribers."""

    def __init__(
        self,
        predictor: Predictor,
        subscribers: Sequence[Subscriber] = (),
        *,
        max_batch: int = 64,
        queue_size: int = 64,
        live: bool = True,
        normaliser: FeatureNormaliser | None = None,
        window_log: WindowLog | None = None,
        calibration: Calibration | None = None,
        personal: Mapping[str, PersonalInputs] | None = None,
    ):
        self.predictor = predictor
        self.spec = predictor.spec
        # The session's normalisation state: raw features -> model input, in window order.
        self.normaliser = normaliser or FeatureNormaliser(self.spec)
        self.window_log = window_log  # raw features kept for a personal model
        # baseline spans on the session's label stream, which recalibrate the normaliser
        # from the window where each takes effect
        self.calibration = calibration
        # a group member's personal model: their input calibration, on their rows
        self.personal = dict(personal or {})
        self.subscribers = list(subscribers)
        self.max_batch = max_batch
        self.live = live
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []
        self.subscriber_failures: dict[str, int] = {}  # subscriber -> records it failed on
        self.handled = 0
        self.batches = 0
        self.invalid_outputs = 0  # model outputs that were no finite distribution

    def start(self) -> InferenceWorker:
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)
        self._thread.start()
        return self

    def submit(
        self,
        window_set: WindowSet | list[WindowSet] | FeaturedBatch,
        timeout_s: float | None = None,
    ) -> None:
        """Queue a window set, or a list handled as one batch whatever the timing (replay:
        the same batches every run, hence the same numbers); blocks the caller (the
        scheduler) while the queue is full."""
        self._queue.put(window_set, timeout=timeout_s)

    def finish(self, timeout_s: float = 30.0) -> None:
        """Handle what is queued, then stop."""
        if self._thread is None:
            return
        self._queue.put(_DONE)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        held = None  # an item taken while draining that must start the next batch
        while True:
            item = held if held is not None else self._queue.get()
            held = None
            if item is _DONE:
                return
            features = None
            if isinstance(item, FeaturedBatch):
                batch, features = item.window_sets, item.features
            elif isinstance(item, list):  # a fixed batch (replay): handled as it is, always
                batch = item
            else:  # live: one window set, plus whatever else is already waiting
                batch = [cast(WindowSet, item)]
                while len(batch) < self.max_batch:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _DONE or isinstance(more, (list, FeaturedBatch)):
                        held = more
                        break
                    batch.append(more)
            try:
                self.handle(batch, features)
            except Exception as exc:  # keep the session alive, say what happened
                message = f"inference failed: {type(exc).__name__}: {exc}"
                log.exception(message)
                self.errors.append(message)

    def handle(self, batch: list[WindowSet], features: FeatureBatch | None = None) -> None:
        """Features, normalising, the model and the records of one batch, in the caller's
        thread (the worker's own loop calls it; a benchmark times it standalone)."""
        features = features if features is not None else self.features(batch)
        normalised = self._prepare(batch, features)
        features.values = normalised.values
        if self.personal:
            who = np.array([ws.participant for ws in batch])
            for participant, inputs in self.personal.items():
                rows = np.flatnonzero(who == participant)
                if len(rows):
                    inputs.apply(features.values, rows)
        predictor = self.predictor  # read once: a model switch lands between batches
        distributions = predictor.predict_features(features)
        now_lsl = pylsl.local_clock()
        now_wall = time.perf_counter()
        names = self.spec.names
        for i, window_set in enumerate(batch):
            present = tuple(n for m, n in enumerate(names) if features.present[i, m])
            missing = {
                n: (window_set.reasons.get(n) or features.reasons[n][i] or "absent")
                for m, n in enumerate(names)
                if not features.present[i, m]
            }
            dist = distributions[i] if present else None
            if dist is not None and not is_distribution(dist):
                present, dist = (), None
                missing = dict.fromkeys(names, NOT_A_DISTRIBUTION)
                self._count_invalid()
            latency = None
            if self.live and window_set.newest_sample is not None:
                latency = (now_lsl - window_set.newest_sample) * 1e3
            record = PredictionRecord(
                index=window_set.index,
                t_end=window_set.t_end,
                labels=self.spec.labels,
                distribution=dist,
                present=present,
                missing=missing,
                latency_ms=latency,
                compute_ms=(now_wall - window_set.cut_wall) * 1e3,
                interpolated={n: c for n, c in window_set.interpolated.items() if n in present},
                calibrating=bool(normalised.calibrating[i]),
                participant=window_set.participant,
            )
            self._deliver(record)
        self.handled += len(batch)
        self.batches += 1

    def _prepare(self, batch: list[WindowSet], features: FeatureBatch) -> NormalisedBatch:
        """Model input of a batch: each participant's windows normalised with their own
        state, in time order (a group's hop holds one window per participant), and
        logged for the participant's baselines (and a personal model) when the session
        keeps a log."""
        t_end = np.array([ws.t_end for ws in batch])
        who = [ws.participant for ws in batch]
        if len(set(who)) == 1:
            if self.window_log is not None:
                self.window_log.add(t_end, features.values, features.present, who[0])
            return self._normalise(t_end, features.values, features.present, who[0])
        out = {k: np.empty_like(v) for k, v in features.values.items()}
        calibrating = np.zeros(len(batch), dtype=bool)
        for participant in dict.fromkeys(who):
            rows = np.flatnonzero(np.array(who) == participant)
            values = {k: v[rows] for k, v in features.values.items()}
            present = features.present[rows]
            if self.window_log is not None:
                self.window_log.add(t_end[rows], values, present, participant)
            part = self._normalise(t_end[rows], values, present, participant)
            for k, v in part.values.items():
                out[k][rows] = v
            calibrating[rows] = part.calibrating
        return NormalisedBatch(out, calibrating)

    def _normalise(
        self,
        t_end: np.ndarray,
        values: dict[str, np.ndarray],
        present: np.ndarray,
        participant: str = "",
    ) -> NormalisedBatch:
        """Model input of one participant's windows, in window order; a baseline span (a
        rest marked on a label stream) recalibrates the participant from the first
        window ending at or after its end, whatever the batching (so replays are
        identical)."""
        calibration = self.calibration
        due = calibration.baseline_due(float(t_end[-1]), participant) if calibration else None
        if due is None or calibration is None:
            return self.normaliser.apply(t_end, values, present, participant)
        first = int(np.searchsorted(t_end, due - 1e-9))
        parts = []
        if first:
            head = {k: v[:first] for k, v in values.items()}
            parts.append(self.normaliser.apply(t_end[:first], head, present[:first], participant))
        calibration.take_baselines(float(t_end[first]), participant)
        tail = {k: v[first:] for k, v in values.items()}
        parts.append(self._normalise(t_end[first:], tail, present[first:], participant))
        return NormalisedBatch(
            {k: np.concatenate([p.values[k] for p in parts]) for k in values},
            np.concatenate([p.calibrating for p in parts]),
        )

    def _count_invalid(self) -> None:
        """A model output that is no finite distribution is never published: counted,
        said once, and the window goes out without a prediction."""
        self.invalid_outputs += 1
        if self.invalid_outputs == 1:
            message = f"{NOT_A_DISTRIBUTION}; such windows are published without a prediction"
            log.error("%s", message)
            self.errors.append(message)

    def _deliver(self, record: PredictionRecord) -> None:
        """Hand ``record`` to every subscriber, each on its own: one that raises (a full
        disk under the CSV file, a closed window) is counted and told once, and the
        others still get every record; it is tried again with the next one."""
        for subscriber in self.subscribers:
            try:
                subscriber(record)
            except Exception as exc:
                name = getattr(subscriber, "name", None) or type(subscriber).__name__
                count = self.subscriber_failures.get(name, 0)
                self.subscriber_failures[name] = count + 1
                if count == 0:
                    message = f"{name} failed: {type(exc).__name__}: {exc}; the other outputs go on"
                    log.error("%s", message)
                    self.errors.append(message)

    def features(self, batch: list[WindowSet]) -> FeatureBatch:
        """Raw features of every window of the batch, vectorised over windows of equal
        length (the normaliser turns them into model input, in window order)."""
        n = len(batch)
        values, reasons = {}, {}
        present = np.zeros((n, len(self.spec.modalities)), dtype=bool)
        for m, mod in enumerate(self.spec.modalities):
            values[mod.name] = np.full((n, *mod.feature_shape), np.nan, dtype=np.float32)
            reasons[mod.name] = [ws.reasons.get(mod.name) for ws in batch]
            by_length: dict[int, list[int]] = {}
            for i, ws in enumerate(batch):
                window = ws.windows.get(mod.name)
                if window is not None:
                    by_length.setdefault(len(window), []).append(i)
            groups = [part for same in by_length.values() for part in _per_participant(batch, same)]
            for rows in groups:
                stacked = restack([_window(batch[i], mod.name) for i in rows])
                vals, ok, why = extract_modality(mod, stacked, normalize=False)
                values[mod.name][rows] = vals
                present[rows, m] = ok
                for i, reason in zip(rows, why, strict=True):
                    if reason:
                        reasons[mod.name][i] = reason
        return FeatureBatch(values, present, reasons)


def _per_participant(batch: list[WindowSet], rows: list[int]) -> list[list[int]]:
    """``rows`` per participant when each has several (a group's replay batch: each
    participant's windows are one strip's views, restacked without a copy), else all
    together (a live hop: one window each, one extraction for the group)."""
    parts: dict[str, list[int]] = {}
    for i in rows:
        parts.setdefault(batch[i].participant, []).append(i)
    if len(parts) > 1 and all(len(part) > 1 for part in parts.values()):
        return list(parts.values())
    return [rows]


def _window(window_set: WindowSet, name: str) -> np.ndarray:
    window = window_set.windows[name]
    assert window is not None  # grouped above: only windows that exist
    return window
