"""The synthetic device: simulated EEG, GSR, PPG and face streams on LSL, plus the truth.

It plays :class:`models.datasets.synthetic.SyntheticSession` in real time: every
``chunk_s`` it generates the samples due since the last push and pushes them with
their own timestamps (session start + sample time, in LSL time), as an amplifier
would. Besides the four data streams it publishes the true emotion distribution
(type ``EmotionTruth``, one channel per emotion, 10 Hz), so anyone, the GUI
included, can see the model follow it. Every stream has a ``source_id`` built from
``source_prefix``, so a restarted device is recognised by inlets and recovered.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

import numpy as np
import pylsl

from helo.models.datasets.synthetic import (
    EMOTIONS,
    SYNTHETIC_STREAMS,
    EmotionScript,
    SyntheticSession,
)
from helo.models.streams import (
    TRUTH_SOURCE_SUFFIX,
    TRUTH_TYPE,
    declare_can_drop_samples,
    declare_channels,
)

log = logging.getLogger(__name__)

TRUTH_RATE_HZ = 10.0
_FORMATS = {
    "eeg": pylsl.cf_float32,
    "gsr": pylsl.cf_float32,
    "ppg": pylsl.cf_float32,
    "face": pylsl.cf_float32,
}
_UNITS = {"eeg": "microvolts", "gsr": "microsiemens", "ppg": "au", "face": "score"}


def synthetic_stream_info(modality: str, source_prefix: str) -> pylsl.StreamInfo:
    spec = SYNTHETIC_STREAMS[modality]
    srate = spec.srate_hz
    info = pylsl.StreamInfo(
        f"HeLo-synthetic-{spec.stream_type}",
        spec.stream_type,
        len(spec.channels),
        srate,
        _FORMATS[modality],
        f"{source_prefix}-{modality}",
    )
    declare_channels(info, spec.channels, units=_UNITS[modality], kind=spec.stream_type)
    if modality == "face":
        # Frames can be dropped by a real camera: tell XDF readers not to de-jitter.
        declare_can_drop_samples(info)
    info.desc().append_child("acquisition").append_child_value("manufacturer", "HeLo synthetic")
    return info


def truth_stream_info(source_prefix: str, labels: tuple[str, ...] = EMOTIONS) -> pylsl.StreamInfo:
    info = pylsl.StreamInfo(
        "HeLo-synthetic-truth",
        TRUTH_TYPE,
        len(labels),
        TRUTH_RATE_HZ,
        pylsl.cf_float32,
        source_prefix + TRUTH_SOURCE_SUFFIX,
    )
    declare_channels(info, labels)
    return info


@dataclass(frozen=True)
class Fault:
    """A scripted sensor problem: ``kind`` "nan" (a burst of NaN samples) or "drop"
    (nothing is sent) on ``modality`` from ``start_s`` to ``end_s`` of session time."""

    modality: str
    kind: str
    start_s: float
    end_s: float

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``eeg:nan:10-12`` -> Fault("eeg", "nan", 10, 12)."""
        try:
            modality, kind, span = text.split(":")
            start, end = (float(v) for v in span.split("-"))
        except ValueError:
            raise ValueError(f"fault {text!r}: expected MODALITY:nan|drop:START-END") from None
        if kind not in ("nan", "drop") or not end > start:
            raise ValueError(f"fault {text!r}: kind must be nan or drop, and END > START")
        return cls(modality, kind, start, end)


class SyntheticDevice:
    """Publishes one simulated subject's streams on LSL from a thread.

    ``script`` (default: a repeating tour of every emotion and their mixtures)
    drives the felt distribution; ``modalities`` picks which streams exist.
    """

    def __init__(
        self,
        script: EmotionScript | None = None,
        *,
        subject: int = 100,  # not among the demo model's training subjects (0-15)
        seed: int = 0,
        modalities: tuple[str, ...] = ("eeg", "gsr", "ppg", "face"),
        source_prefix: str | None = None,
        chunk_s: float = 0.02,
        truth: bool = True,
        faults: tuple[Fault, ...] = (),
    ):
        self.script = script or EmotionScript.tour()
        self.session = SyntheticSession(
            self.script, subject=subject, seed=seed, modalities=modalities
        )
        self.modalities = modalities
        self.source_prefix = source_prefix or f"helo-synthetic-{os.getpid()}"
        self.chunk_s = chunk_s
        self.truth = truth
        self.faults = tuple(faults)
        self.t0: float | None = None  # LSL time of session time 0
        self._outlets: dict[str, pylsl.StreamOutlet] = {}
        self._truth_outlet: pylsl.StreamOutlet | None = None
        self._truth_next = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pushed: dict[str, int] = dict.fromkeys(modalities, 0)

    def infos(self) -> list[pylsl.StreamInfo]:
        return [synthetic_stream_info(m, self.source_prefix) for m in self.modalities]

    def start_outlets(self) -> SyntheticDevice:
        """Create the outlets and fix session time 0, without the pushing thread (a caller
        then drives :meth:`push_until`, e.g. faster than real time)."""
        for modality, info in zip(self.modalities, self.infos(), strict=True):
            self._outlets[modality] = pylsl.StreamOutlet(info, chunk_size=0, max_buffered=600)
        if self.truth:
            self._truth_outlet = pylsl.StreamOutlet(truth_stream_info(self.source_prefix))
        self.t0 = pylsl.local_clock()
        return self

    def start(self) -> SyntheticDevice:
        """Publish in real time from a thread."""
        self.start_outlets()
        self._thread = threading.Thread(target=self._run, name="synthetic-device", daemon=True)
        self._thread.start()
        log.info(
            "synthetic device: %s streams on LSL (source %s)",
            len(self._outlets),
            self.source_prefix,
        )
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self._outlets.clear()
        self._truth_outlet = None

    def __enter__(self) -> SyntheticDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def push_until(self, session_s: float) -> None:
        """Generate and push every sample due up to ``session_s`` seconds of session time."""
        assert self.t0 is not None
        for modality, outlet in self._outlets.items():
            times, samples = self.session.read(modality, session_s)
            times, samples = self._apply_faults(modality, times, samples)
            if len(times):
                outlet.push_chunk(samples.astype(np.float32), (self.t0 + times).tolist())
                self.pushed[modality] += len(times)
        if self._truth_outlet is not None:
            n_due = int(np.floor(session_s * TRUTH_RATE_HZ)) + 1
            if n_due > self._truth_next:
                times = np.arange(self._truth_next, n_due) / TRUTH_RATE_HZ
                truth = self.session.true_distribution(times).astype(np.float32)
                self._truth_outlet.push_chunk(truth, (self.t0 + times).tolist())
                self._truth_next = n_due

    def _apply_faults(
        self, modality: str, times: np.ndarray, samples: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        for fault in self.faults:
            if fault.modality != modality or not len(times):
                continue
            hit = (times >= fault.start_s) & (times < fault.end_s)
            if fault.kind == "nan":
                samples = samples.copy()
                samples[hit] = np.nan
            else:
                times, samples = times[~hit], samples[~hit]
        return times, samples

    def _run(self) -> None:
        assert self.t0 is not None
        next_push = time.perf_counter()
        while not self._stop.is_set():
            self.push_until(pylsl.local_clock() - self.t0)
            next_push += self.chunk_s
            delay = next_push - time.perf_counter()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_push = time.perf_counter()  # fell behind: do not try to catch up in bursts
