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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pylsl

from helo.models.datasets.synthetic import (
    EMOTIONS,
    SYNTHETIC_STREAMS,
    EmotionScript,
    SyntheticSession,
)
from helo.models.datasets.xdf_labels import label_sample
from helo.models.streams import (
    LABELS_SOURCE_SUFFIX,
    LABELS_TYPE,
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


LABEL_STYLES = ("model", "prefixed", "old", "biosemi", "none")
EEG_SCALE = {"microvolts": 1.0, "volts": 1e-6, "millivolts": 1e-3, "": 1.0}  # from µV


@dataclass(frozen=True)
class StreamStyle:
    """How a lab's own devices would send the simulated signals: another EEG rate,
    other labels, electrodes missing or added, other units, another camera rate. The
    default is our own shape. ``streamer run --device synthetic --style
    eeg_rate=500,eeg_labels=prefixed,eeg_missing=O1+Fz,eeg_unit=V,gsr_unit=kOhm``."""

    eeg_rate_hz: float | None = None
    eeg_labels: str = "model"  # model | prefixed (EEG Fp1-Ref) | old (T3..T6) | biosemi | none
    eeg_missing: tuple[str, ...] = ()  # electrodes the cap lacks
    eeg_extra: int = 0  # more electrodes than the model uses (10-05 names)
    eeg_unit: str = "microvolts"  # microvolts | volts | millivolts | "" (none declared)
    gsr_unit: str = "microsiemens"  # microsiemens | kiloohms | ""
    face_rate_hz: float | None = None

    def __post_init__(self) -> None:
        if self.eeg_labels not in LABEL_STYLES:
            raise ValueError(f"eeg_labels must be one of {LABEL_STYLES}")
        if self.eeg_unit not in EEG_SCALE:
            raise ValueError(f"eeg_unit must be one of {sorted(EEG_SCALE)}")
        if self.gsr_unit not in ("microsiemens", "kiloohms", ""):
            raise ValueError("gsr_unit must be microsiemens, kiloohms or empty")
        if self.eeg_rate_hz is not None and self.eeg_rate_hz < 100.0:
            raise ValueError("eeg_rate must be 100 Hz or more: the simulated EEG reaches 49 Hz")
        if self.face_rate_hz is not None and not 1.0 <= self.face_rate_hz <= 240.0:
            raise ValueError("face_rate must be between 1 and 240 frames per second")
        unknown = sorted(set(self.eeg_missing) - set(SYNTHETIC_STREAMS["eeg"].channels))
        if unknown:
            raise ValueError(f"eeg_missing: {unknown} are not electrodes of the model")

    @classmethod
    def parse(cls, text: str) -> StreamStyle:
        """``eeg_rate=500,eeg_labels=old,eeg_missing=O1+Fz,eeg_unit=V,face_rate=24``."""
        names = {"eeg_rate": "eeg_rate_hz", "face_rate": "face_rate_hz"}
        units = {"V": "volts", "mV": "millivolts", "uV": "microvolts", "kOhm": "kiloohms"}
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            key = names.get(key.strip(), key.strip())
            if not sep or key not in cls.__dataclass_fields__:
                raise ValueError(
                    f"{item!r}: expected KEY=VALUE, KEY one of "
                    "eeg_rate, eeg_labels, eeg_missing, eeg_extra, eeg_unit, "
                    "gsr_unit, face_rate"
                )
            value = value.strip()
            if key in ("eeg_rate_hz", "face_rate_hz"):
                values[key] = float(value)
            elif key == "eeg_extra":
                values[key] = int(value)
            elif key == "eeg_missing":
                values[key] = tuple(v for v in value.split("+") if v)
            else:
                values[key] = units.get(value, value)
        return cls(**values)

    def rates_hz(self) -> dict[str, float]:
        rates = {"eeg": self.eeg_rate_hz, "face": self.face_rate_hz}
        return {m: r for m, r in rates.items() if r}

    def eeg_channels(self) -> tuple[list[int], tuple[str, ...]]:
        """Which simulated electrodes are sent (indices) and their labels, extras last."""
        channels = SYNTHETIC_STREAMS["eeg"].channels
        kept = [i for i, c in enumerate(channels) if c not in self.eeg_missing]
        labels = [self._label(channels[i], i) for i in kept]
        extras = [c for c in _EXTRA_ELECTRODES if c not in channels][: self.eeg_extra]
        labels += [self._label(c, len(channels) + k) for k, c in enumerate(extras)]
        return kept, tuple(labels)

    def _label(self, name: str, position: int) -> str:
        if self.eeg_labels == "prefixed":
            return f"EEG {name}-Ref"
        if self.eeg_labels == "old":
            return {"T7": "T3", "T8": "T4", "P7": "T5", "P8": "T6"}.get(name, name).upper()
        if self.eeg_labels == "biosemi":
            return f"{'ABCDEFGH'[position // 32]}{position % 32 + 1}"
        return "" if self.eeg_labels == "none" else name

    def eeg_samples(self, samples: np.ndarray) -> np.ndarray:
        """The simulated µV samples as this cap sends them (electrodes, extras, unit)."""
        kept, labels = self.eeg_channels()
        out = samples[:, kept]
        n_extra = len(labels) - len(kept)
        if n_extra:  # extra electrodes: mixtures of their neighbours, as real ones are
            mix = np.resize(np.arange(samples.shape[1]), (n_extra, 2))
            out = np.concatenate([out, samples[:, mix].mean(axis=2)], axis=1)
        return out * EEG_SCALE[self.eeg_unit]

    def gsr_samples(self, samples: np.ndarray) -> np.ndarray:
        """Skin conductance (µS) as this device sends it: a resistance in kΩ if asked."""
        return 1000.0 / np.maximum(samples, 1e-3) if self.gsr_unit == "kiloohms" else samples

    def as_sent(self, modality: str, samples: np.ndarray) -> np.ndarray:
        if modality == "eeg":
            return self.eeg_samples(samples)
        if modality == "gsr":
            return self.gsr_samples(samples)
        return samples


# Electrodes a 64-channel cap has beyond the model's 32 (standard 10-05 names).
_EXTRA_ELECTRODES = (
    "AF7",
    "AF8",
    "F1",
    "F2",
    "F5",
    "F6",
    "FT7",
    "FT8",
    "FC3",
    "FC4",
    "C1",
    "C2",
    "C5",
    "C6",
    "TP7",
    "TP8",
    "CP3",
    "CP4",
    "P1",
    "P2",
    "P5",
    "P6",
    "PO7",
    "PO8",
    "P9",
    "P10",
    "Iz",
    "POz",
    "CPz",
    "FCz",
    "AFz",
    "Fpz",
    "FT9",
    "FT10",
    "TP9",
    "TP10",
)


def _named(base: str, participant: str) -> str:
    """A stream name with its participant last (``HeLo-synthetic-EEG-P01``), so that a
    group's streams are told apart by name too; unchanged without a participant."""
    return f"{base}-{participant}" if participant else base


def _declare_participant(info: pylsl.StreamInfo, participant: str) -> pylsl.StreamInfo:
    """Write whose body the stream measures into its description (``participant``), the
    field a group session groups streams by."""
    if participant:
        info.desc().append_child_value("participant", participant)
    return info


def synthetic_stream_info(
    modality: str,
    source_prefix: str,
    style: StreamStyle | None = None,
    *,
    participant: str = "",
) -> pylsl.StreamInfo:
    spec = SYNTHETIC_STREAMS[modality]
    style = style or StreamStyle()
    srate = style.rates_hz().get(modality, spec.srate_hz)
    channels, unit = tuple(spec.channels), _UNITS[modality]
    if modality == "eeg":
        channels, unit = style.eeg_channels()[1], style.eeg_unit
    elif modality == "gsr":
        unit = style.gsr_unit
    info = pylsl.StreamInfo(
        _named(f"HeLo-synthetic-{spec.stream_type}", participant),
        spec.stream_type,
        len(channels),
        srate,
        _FORMATS[modality],
        f"{source_prefix}-{modality}",
    )
    if not (modality == "eeg" and style.eeg_labels == "none"):  # "none": a bare amplifier
        declare_channels(info, channels, units=unit, kind=spec.stream_type)
    if modality == "face":
        # Frames can be dropped by a real camera: tell XDF readers not to de-jitter.
        declare_can_drop_samples(info)
    info.desc().append_child("acquisition").append_child_value("manufacturer", "HeLo synthetic")
    return _declare_participant(info, participant)


def labels_stream_info(source_prefix: str, *, participant: str = "") -> pylsl.StreamInfo:
    """The device's EmotionLabels stream: one JSON label per scripted trial, pushed when
    it ends (a rest as a baseline span), as a lab's stimulus software would, so that a
    recording of the device is training data for ``streamer adapt``."""
    info = pylsl.StreamInfo(
        _named("HeLo-synthetic-labels", participant),
        LABELS_TYPE,
        1,
        pylsl.IRREGULAR_RATE,
        pylsl.cf_string,
        source_prefix + LABELS_SOURCE_SUFFIX,
    )
    return _declare_participant(info, participant)


def truth_stream_info(
    source_prefix: str, labels: tuple[str, ...] = EMOTIONS, *, participant: str = ""
) -> pylsl.StreamInfo:
    info = pylsl.StreamInfo(
        _named("HeLo-synthetic-truth", participant),
        TRUTH_TYPE,
        len(labels),
        TRUTH_RATE_HZ,
        pylsl.cf_float32,
        source_prefix + TRUTH_SOURCE_SUFFIX,
    )
    declare_channels(info, labels)
    return _declare_participant(info, participant)


@dataclass(frozen=True)
class Fault:
    """A scripted sensor problem on ``modality`` from ``start_s`` to ``end_s`` of session
    time: ``kind`` "nan" (a burst of NaN samples), "glitch" (samples of 1e30, a sensor
    gone mad), "drop" (nothing is sent), or "jump" (timestamps off by ``offset_s``, an
    amplifier whose clock jumped; ``eeg:jump+3600:20`` from 20 s on)."""

    modality: str
    kind: str
    start_s: float
    end_s: float = np.inf
    offset_s: float = 0.0

    KINDS = ("nan", "glitch", "drop", "jump")
    GLITCH_VALUE = 1e30

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``eeg:nan:10-12`` -> Fault("eeg", "nan", 10, 12); ``eeg:jump-3600:20``."""
        usage = (
            f"fault {text!r}: expected MODALITY:nan|glitch|drop:START-END or MODALITY:jump±S:START"
        )
        try:
            modality, kind, span = text.split(":")
            if kind.startswith("jump"):
                return cls(modality, "jump", float(span), np.inf, float(kind[4:]))
            start, end = (float(v) for v in span.split("-"))
        except ValueError:
            raise ValueError(usage) from None
        if kind not in cls.KINDS or not end > start:
            raise ValueError(f"{usage}; END > START")
        return cls(modality, kind, start, end)


class SyntheticDevice:
    """Publishes one simulated subject's streams on LSL from a thread.

    ``script`` (default: a repeating tour of every emotion and their mixtures)
    drives the felt distribution; ``modalities`` picks which streams exist.
    ``participant`` (e.g. "P01", for a member of a
    :class:`~helo.devices.synthetic_group.SyntheticGroup`) ends every stream name and is
    written into every stream's description; "" keeps the names of a lone device.
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
        style: StreamStyle | None = None,
        labels: bool = True,
        rest_s: float = 0.0,
        participant: str = "",
    ):
        self.script = script or EmotionScript.tour(rest_s=rest_s)
        self.style = style or StreamStyle()
        self.session = SyntheticSession(
            self.script,
            subject=subject,
            seed=seed,
            modalities=modalities,
            rates_hz=self.style.rates_hz(),
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
        self.labels = labels
        self._labels_outlet: pylsl.StreamOutlet | None = None
        self._labels_next = 0  # the next scripted span to label
        self._spans: list[tuple[float, float, str]] | None = None
        self.subject = subject
        self.participant = participant
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pushed: dict[str, int] = dict.fromkeys(modalities, 0)

    def infos(self) -> list[pylsl.StreamInfo]:
        return [
            synthetic_stream_info(m, self.source_prefix, self.style, participant=self.participant)
            for m in self.modalities
        ]

    def start_outlets(self) -> SyntheticDevice:
        """Create the outlets and fix session time 0, without the pushing thread (a caller
        then drives :meth:`push_until`, e.g. faster than real time)."""
        for modality, info in zip(self.modalities, self.infos(), strict=True):
            self._outlets[modality] = pylsl.StreamOutlet(info, chunk_size=0, max_buffered=600)
        if self.truth:
            info = truth_stream_info(self.source_prefix, participant=self.participant)
            self._truth_outlet = pylsl.StreamOutlet(info)
        if self.labels:
            info = labels_stream_info(self.source_prefix, participant=self.participant)
            self._labels_outlet = pylsl.StreamOutlet(info)
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
        self._labels_outlet = None

    def __enter__(self) -> SyntheticDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def push_until(self, session_s: float) -> None:
        """Generate and push every sample due up to ``session_s`` seconds of session time."""
        assert self.t0 is not None
        for modality, outlet in self._outlets.items():
            times, samples = self.session.read(modality, session_s)
            samples = self.style.as_sent(modality, samples)
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
        if self._labels_outlet is not None:
            self._push_labels(session_s)

    def label_spans(self) -> list[tuple[float, float, str]]:
        """``(start_s, end_s, label JSON)`` of every scripted span: the rest (a baseline)
        and each trial but the last, which has no end."""
        script = self.script
        spans = []
        if script.rest_s > 0:
            spans.append((0.0, script.rest_s, label_sample(None, script.rest_s, baseline=True)))
        for i in range(len(script.starts_s) - 1):
            start, end = float(script.starts_s[i]), float(script.starts_s[i + 1])
            dist = script.mean_over(start, end)
            text = label_sample(
                dict(zip(EMOTIONS[: len(dist)], dist.tolist(), strict=True)),
                end - start,
                trial=f"sim{self.subject}-T{i:02d}",
                subject=f"sim{self.subject}",
            )
            spans.append((start, end, text))
        return spans

    def _push_labels(self, session_s: float) -> None:
        assert self.t0 is not None
        assert self._labels_outlet is not None
        if self._spans is None:
            self._spans = self.label_spans()
        spans = self._spans
        while self._labels_next < len(spans) and spans[self._labels_next][1] <= session_s:
            _, end, text = spans[self._labels_next]
            self._labels_outlet.push_sample([text], self.t0 + end)
            self._labels_next += 1

    def _apply_faults(
        self, modality: str, times: np.ndarray, samples: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        for fault in self.faults:
            if fault.modality != modality or not len(times):
                continue
            hit = (times >= fault.start_s) & (times < fault.end_s)
            if fault.kind in ("nan", "glitch"):
                samples = samples.copy()
                samples[hit] = np.nan if fault.kind == "nan" else Fault.GLITCH_VALUE
            elif fault.kind == "jump":
                times = np.where(hit, times + fault.offset_s, times)
            else:
                times, samples = times[~hit], samples[~hit]
        return times, samples

    def _run(self) -> None:
        assert self.t0 is not None
        push_in_real_time(self.push_until, self.t0, self.chunk_s, self._stop)


def push_in_real_time(
    push_until: Callable[[float], None], t0: float, chunk_s: float, stop: threading.Event
) -> None:
    """Every ``chunk_s``, push what is due by now (session time from ``t0``, LSL clock)
    until ``stop``; a pusher that fell behind goes on from now instead of catching up in
    bursts (an amplifier does not send faster after a hiccup)."""
    next_push = time.perf_counter()
    while not stop.is_set():
        push_until(pylsl.local_clock() - t0)
        next_push += chunk_s
        delay = next_push - time.perf_counter()
        if delay > 0:
            stop.wait(delay)
        else:
            next_push = time.perf_counter()
