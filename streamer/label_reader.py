"""The session's EmotionLabels stream: labelled trials as they end, for a personal model.

A lab's stimulus software (or the synthetic device) pushes one JSON label per trial
when it is over (:mod:`helo.models.datasets.xdf_labels` has the format). A live
session reads them as they come, so that after a few labelled trials the app can
make a personal model from the session itself (:mod:`helo.streamer.personal_session`).
"""

from __future__ import annotations

import logging
import threading

import pylsl

from helo.models.datasets.xdf_labels import LabelSpan, parse_label_sample
from helo.models.errors import DatasetError
from helo.models.xdf import RecordedStream

log = logging.getLogger(__name__)


def _pending(
    reader: LabelReader | RecordedLabels,
    spans: list[tuple[float, float, LabelSpan]],
    until: float,
    participant: str,
) -> list[tuple[float, float]]:
    """``(start, end)`` of the baseline spans ended by ``until`` that ``participant`` has
    not taken yet (a group's shared label stream is taken by each participant)."""
    ended = [(a, b) for a, b, span in spans if span.baseline and b <= until]
    return ended[reader._baselines_taken.get(participant, 0) :]


def _due(
    reader: LabelReader | RecordedLabels,
    spans: list[tuple[float, float, LabelSpan]],
    until: float,
    participant: str,
) -> float | None:
    pending = _pending(reader, spans, until, participant)
    return min(end for _, end in pending) if pending else None


def _take_baselines(
    reader: LabelReader | RecordedLabels,
    spans: list[tuple[float, float, LabelSpan]],
    until: float,
    participant: str,
) -> list[tuple[float, float]]:
    fresh = _pending(reader, spans, until, participant)
    reader._baselines_taken[participant] = reader._baselines_taken.get(participant, 0) + len(fresh)
    return fresh


class RecordedLabels:
    """The label stream of a recording, read the way :class:`LabelReader` reads a live
    one: a replay sees a label once virtual time has passed its end."""

    def __init__(self, stream: RecordedStream, labels: tuple[str, ...]):
        self._spans: list[tuple[float, float, LabelSpan]] = []
        self._baselines_taken: dict[str, int] = {}  # participant -> spans handed over
        self.name = stream.description.name
        for stamp, text in zip(stream.times.tolist(), stream.samples[:, 0].tolist(), strict=True):
            try:
                span = parse_label_sample(str(text), labels)
            except DatasetError as exc:
                log.warning("%s: label refused: %s", stream.description.name, exc)
                continue
            start, end = span.bounds_s(stamp)
            self._spans.append((start, end, span))

    def spans(self) -> list[tuple[float, float, LabelSpan]]:
        return list(self._spans)

    def new_baselines(self, until: float, participant: str = "") -> list[tuple[float, float]]:
        return _take_baselines(self, self._spans, until, participant)

    def baseline_due(self, until: float, participant: str = "") -> float | None:
        return _due(self, self._spans, until, participant)

    def stop(self) -> None:
        """Nothing to stop: the labels were read with the file."""


class LabelReader:
    """Pulls the label strings of one stream on its own thread; :meth:`spans` reads them."""

    def __init__(self, info: pylsl.StreamInfo, labels: tuple[str, ...]):
        self.info = info
        self.labels = labels
        self._inlet: pylsl.StreamInlet | None = None
        self._spans: list[tuple[float, float, LabelSpan]] = []
        self._baselines_taken: dict[str, int] = {}  # participant -> spans handed over
        self.name = info.name()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refused = 0

    def start(self) -> LabelReader:
        self._inlet = pylsl.StreamInlet(
            self.info, max_buflen=3600, recover=True, processing_flags=pylsl.proc_clocksync
        )
        self._inlet.open_stream(timeout=5.0)
        self._thread = threading.Thread(target=self._run, name="lsl-labels", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self._inlet is not None:
            self._inlet.close_stream()
            self._inlet = None

    def spans(self) -> list[tuple[float, float, LabelSpan]]:
        """``(start, end, label)`` of every label so far, in LSL time."""
        with self._lock:
            return list(self._spans)

    def new_baselines(self, until: float, participant: str = "") -> list[tuple[float, float]]:
        """``(start, end)`` of the baseline spans that arrived since ``participant``'s
        last call and ended by ``until`` (the newest window end)."""
        with self._lock:
            return _take_baselines(self, self._spans, until, participant)

    def baseline_due(self, until: float, participant: str = "") -> float | None:
        """End of the first baseline span ``participant`` has not taken that ended by
        ``until``."""
        with self._lock:
            return _due(self, self._spans, until, participant)

    def _run(self) -> None:
        inlet = self._inlet
        assert inlet is not None
        while not self._stop.is_set():
            try:
                sample, stamp = inlet.pull_sample(timeout=0.2)
            except pylsl.LostError:
                self._stop.wait(0.5)
                continue
            if sample is None or stamp is None:
                continue
            try:
                span = parse_label_sample(str(sample[0]), self.labels)
            except DatasetError as exc:
                self.refused += 1
                log.warning("%s: label refused: %s", self.info.name(), exc)
                continue
            start, end = span.bounds_s(stamp)
            with self._lock:
                self._spans.append((start, end, span))
