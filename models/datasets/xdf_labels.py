"""Labelled XDF recordings: how recordings made with this project become training data.

A recording is labelled by a marker stream of LSL type ``EmotionLabels`` (one
string channel, irregular rate) whose samples are JSON objects::

    {"distribution": {"happiness": 3, "surprise": 1}, "duration_s": 20.0,
     "offset_s": 0.0, "trial": "clip07", "subject": "P03"}

The sample says that ``distribution`` describes the span ``[ts + offset_s -
duration_s, ts + offset_s]``, where ``ts`` is the sample's own LSL timestamp.
Times are relative to the sample because pyxdf corrects timestamps for clock
offsets but cannot correct numbers written inside the JSON. Labels not
mentioned are 0, weights are normalised to sum 1, an unknown label is an error;
``offset_s`` (default 0), ``trial`` and ``subject`` are optional.

Windows end every ``hop_s`` inside each span, covering ``[t_end - window_s,
t_end]`` (the spec's longest window) entirely within the span, and get their
features from the same code live inference uses.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from helo.models.datasets.windows import (
    BaselineWindows,
    WindowDataset,
    features_from_recording,
    window_ends,
)
from helo.models.errors import DatasetError
from helo.models.features.adapt import AdaptOptions, InputAdapter
from helo.models.features.mapping import MappingError, StreamMapping, map_streams
from helo.models.features.spec import FeatureSpec
from helo.models.streams import LABELS_TYPE, StreamDescription
from helo.models.xdf import RecordedStream, read_recording

log = logging.getLogger(__name__)


_FIELDS = ("distribution", "duration_s", "offset_s", "trial", "subject", "baseline")
BASELINE_TRIAL = "baseline"  # a span with this trial name is a rest period too


@dataclass(frozen=True)
class LabelSpan:
    """One EmotionLabels sample, read; its timestamp places it (see :meth:`bounds_s`)."""

    distribution: np.ndarray  # [K], sums to 1, in the order of the labels it was read with
    duration_s: float
    offset_s: float = 0.0
    trial: str | None = None
    subject: str | None = None
    baseline: bool = False  # a rest period: seeds the participant's statistics, not trained on

    def bounds_s(self, timestamp_s: float) -> tuple[float, float]:
        """``(start, end)`` of the labelled span for a sample stamped ``timestamp_s``."""
        end = timestamp_s + self.offset_s
        return end - self.duration_s, end


# --------------------------------------------------------------------------- the JSON


def label_sample(
    distribution: Mapping[str, float] | None,
    duration_s: float,
    offset_s: float = 0.0,
    trial: str | None = None,
    subject: str | None = None,
    baseline: bool = False,
) -> str:
    """The JSON text of one EmotionLabels sample (what a label publisher pushes).

    The span it labels ends ``offset_s`` after the sample's timestamp and lasts
    ``duration_s``; push it when the span is over (``offset_s`` = 0) or say where
    it ended (e.g. ``offset_s`` = -2 for a span that ended 2 s before the push).
    ``baseline=True`` (no distribution needed) marks a rest period: it seeds the
    participant's normalisation statistics and is never trained on.
    Raises ``ValueError`` naming the argument that cannot make a valid sample.
    """
    if baseline and distribution is None:
        weights = None
    elif distribution is None:
        raise ValueError("distribution is required unless baseline=True")
    else:
        weights = _check_weights(distribution, ValueError)
    if not _is_number(duration_s) or not duration_s > 0:
        raise ValueError(f"duration_s must be a number > 0, got {duration_s!r}")
    if not _is_number(offset_s):
        raise ValueError(f"offset_s must be a finite number, got {offset_s!r}")
    sample: dict[str, Any] = {"duration_s": float(duration_s), "offset_s": float(offset_s)}
    if weights is not None:
        sample["distribution"] = weights
    if baseline:
        sample["baseline"] = True
    for name, value in (("trial", trial), ("subject", subject)):
        if value is not None:
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string or None, got {value!r}")
            sample[name] = value
    return json.dumps(sample, allow_nan=False)


def parse_label_sample(text: str, labels: Sequence[str]) -> LabelSpan:
    """Read one EmotionLabels sample against the model's ``labels`` (case-insensitive).

    Raises :class:`DatasetError` saying what is wrong with the sample; the
    loader adds the file and the sample number.
    """
    try:
        sample = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise DatasetError(f"not a JSON object ({exc})") from None
    if not isinstance(sample, dict):
        raise DatasetError(f"not a JSON object but {type(sample).__name__}")
    unknown = sorted(set(sample) - set(_FIELDS))
    if unknown:
        raise DatasetError(f"unknown field(s) {unknown}; the fields are {list(_FIELDS)}")
    baseline = sample.get("baseline", False)
    if not isinstance(baseline, bool):
        raise DatasetError(f"baseline must be true or false, got {baseline!r}")
    baseline = baseline or sample.get("trial") == BASELINE_TRIAL
    for key in ("duration_s",) if baseline else ("distribution", "duration_s"):
        if key not in sample:
            raise DatasetError(f"missing field {key!r}")
    if baseline and "distribution" not in sample:
        weights = dict.fromkeys(labels, 1.0)  # a rest has no label; never scored
    else:
        weights = _check_weights(sample["distribution"], DatasetError)
    duration_s, offset_s = sample["duration_s"], sample.get("offset_s", 0.0)
    if not _is_number(duration_s) or not duration_s > 0:
        raise DatasetError(f"duration_s must be a number > 0, got {duration_s!r}")
    if not _is_number(offset_s):
        raise DatasetError(f"offset_s must be a finite number, got {offset_s!r}")
    return LabelSpan(
        distribution=_as_vector(weights, labels),
        duration_s=float(duration_s),
        offset_s=float(offset_s),
        trial=_optional_name(sample, "trial"),
        subject=_optional_name(sample, "subject"),
        baseline=baseline,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_weights(distribution: Any, error: type[Exception]) -> dict[str, float]:
    if not isinstance(distribution, Mapping) or not distribution:
        raise error(
            f"distribution must be a non-empty object of label -> weight, got {distribution!r}"
        )
    weights = {}
    for label, weight in distribution.items():
        if not isinstance(label, str) or not _is_number(weight) or weight < 0:
            raise error(f"distribution: weight of {label!r} must be a number >= 0, got {weight!r}")
        weights[label] = float(weight)
    if not sum(weights.values()) > 0:
        raise error("distribution: the weights sum to 0; at least one must be > 0")
    return weights


def _as_vector(weights: Mapping[str, float], labels: Sequence[str]) -> np.ndarray:
    index = {label.lower(): k for k, label in enumerate(labels)}
    vector = np.zeros(len(labels), dtype=np.float64)
    for label, weight in weights.items():
        k = index.get(label.lower())
        if k is None:
            raise DatasetError(f"unknown label {label!r}; the model's labels are {list(labels)}")
        vector[k] += weight
    return vector / vector.sum()


def _optional_name(sample: Mapping[str, Any], key: str) -> str | None:
    value = sample.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise DatasetError(f"{key} must be a non-empty string, got {value!r}")
    return value


# --------------------------------------------------------------------------- the files


def load_labelled_xdf(
    paths: Sequence[str | Path] | str | Path,
    spec: FeatureSpec,
    hop_s: float = 1.0,
    subject: str | None = None,
    stream_overrides: Mapping[str, str] | None = None,
    inputs: AdaptOptions | None = None,
) -> WindowDataset:
    """Feature windows of labelled XDF recordings, one data set for all of them.

    Modalities are matched to streams as for a live session
    (:func:`models.features.mapping.map_streams`, ``stream_overrides`` maps a
    modality to a stream name, source_id or type). A modality without a stream is
    masked in every window (logged); a stream that exists but does not fit is an
    error. Subject: the label's, else ``subject``, else the file's stem. Trial:
    the label's, else ``"<stem>#<n>"`` (n-th label sample in time, from 1).
    """
    if not _is_number(hop_s) or not hop_s > 0:
        raise DatasetError(f"hop_s must be a number > 0, got {hop_s!r}")
    if isinstance(paths, str | Path):
        paths = [paths]
    if not paths:
        raise DatasetError("no XDF files given")
    parts = [
        _load_recording(Path(p), spec, float(hop_s), subject, stream_overrides, inputs)
        for p in paths
    ]
    dataset = WindowDataset.concat(parts, name="xdf")
    _warn_shared_trials(dataset)
    return dataset


@dataclass(frozen=True)
class _PlacedSpan:
    """A label span placed on the recording's clock (LSL seconds)."""

    number: int  # n-th label sample of the recording, from 1
    t_start: float
    t_end: float
    span: LabelSpan


def _load_recording(
    path: Path,
    spec: FeatureSpec,
    hop_s: float,
    subject: str | None,
    overrides: Mapping[str, str] | None,
    inputs: AdaptOptions | None = None,
) -> WindowDataset:
    streams = read_recording(path)
    start = _recording_start(streams)
    members = _participants(spec, streams)
    if members is None:
        return _load_person(path, streams, spec, hop_s, subject, overrides, inputs, start)
    # A group's recording: each participant is a subject, labelled by their own label
    # stream and the group's shared one (a label stream that names no participant).
    shared = [s for s in streams if _is_labels(s) and not s.description.participant]
    parts = []
    for participant, own in members.items():
        try:
            part = _load_person(
                path, own + shared, spec, hop_s, participant, overrides, inputs, start, shared
            )
        except DatasetError as exc:
            log.warning("%s: participant %s left out: %s", path, participant, exc)
            continue
        parts.append(part)
        named = ", ".join(dict.fromkeys(part.subjects.tolist()))
        log.info(
            "%s: participant %s is subject %s: %d labelled window(s)",
            path,
            participant,
            named,
            len(part),
        )
    if not parts:
        raise DatasetError(f"{path}: no participant of the group has labelled windows")
    return WindowDataset.concat(parts, name="xdf")


def _is_labels(stream: RecordedStream) -> bool:
    return stream.description.type.lower() == LABELS_TYPE.lower()


def _participants(
    spec: FeatureSpec, streams: list[RecordedStream]
) -> dict[str, list[RecordedStream]] | None:
    """A group recording's streams per participant (its data streams name two or more
    participants in their descriptions, as a group session records them); None for a
    recording of one person."""
    wanted = {m.stream_type.lower() for m in spec.modalities}
    named = {
        s.description.participant
        for s in streams
        if s.description.type.lower() in wanted and s.description.participant
    }
    if len(named) < 2:
        return None
    return {p: [s for s in streams if s.description.participant == p] for p in sorted(named)}


def _load_person(
    path: Path,
    streams: list[RecordedStream],
    spec: FeatureSpec,
    hop_s: float,
    subject: str | None,
    overrides: Mapping[str, str] | None,
    inputs: AdaptOptions | None,
    start: float,
    shared: Sequence[RecordedStream] | None = None,
) -> WindowDataset:
    """One person's labelled windows from ``streams``; in a group (``shared``: the
    group's label streams among them), the shared streams' spans are theirs too, but
    not their subject fields."""
    is_label = [_is_labels(s) for s in streams]
    data_streams = [s for s, label in zip(streams, is_label, strict=True) if not label]
    descriptions = [s.description for s in data_streams]
    if not any(is_label):
        found = "; ".join(s.description.describe() for s in streams) or "none"
        raise DatasetError(
            f"{path}: no {LABELS_TYPE} stream, so nothing labels this "
            f"recording (streams: {found}); see docs/datasets.md"
        )
    label_streams = [s for s, label in zip(streams, is_label, strict=True) if label]
    spans = _place_spans(path, label_streams, spec.labels, shared or ())
    mapping = _map(path, spec, descriptions, overrides, inputs)
    recorded = {
        name: _samples(path, data_streams[src.stream], name)
        for name, src in mapping.sources.items()
    }
    adapters = {name: src.adapter for name, src in mapping.sources.items()}
    labelled = [p for p in spans if not p.span.baseline]
    if not labelled:
        raise DatasetError(f"{path}: every {LABELS_TYPE} span is a baseline; nothing to train on")
    ends, span_of_window = _window_ends(path, labelled, spec.max_window_s, hop_s)
    values, present = features_from_recording(spec, recorded, ends, adapters=adapters)
    chosen = [labelled[i] for i in span_of_window]
    stem = path.stem
    person = subject or stem  # a span's subject: the label's, else this
    named = {p.span.subject for p in labelled if p.span.subject}
    if shared is not None and len(named) == 1:
        person = named.pop()  # a group's participant named by their own labels
    everyone = {p.span.subject or person for p in labelled}
    rest_subject = everyone.pop() if len(everyone) == 1 else person  # a rest without a name
    dataset = WindowDataset(
        spec=spec,
        values=values,
        present=present,
        targets=np.array([p.span.distribution for p in chosen]),
        subjects=np.array([p.span.subject or person for p in chosen]),
        trials=np.array([p.span.trial or f"{stem}#{p.number}" for p in chosen]),
        t_end_s=ends - start,
        name="xdf",
        baseline=_baseline_windows(spec, spans, recorded, adapters, hop_s, rest_subject, start),
    )
    return _drop_windows_without_data(path, dataset)


def _baseline_windows(
    spec: FeatureSpec,
    spans: list[_PlacedSpan],
    recorded: Mapping[str, tuple[np.ndarray, np.ndarray]],
    adapters: Mapping[str, InputAdapter],
    hop_s: float,
    subject: str,
    start: float,
) -> BaselineWindows | None:
    """Windows of the rest spans (``"baseline": true``), which seed the participant's
    normalisation statistics; None when the recording has none."""
    rest = [p for p in spans if p.span.baseline]
    ends = [window_ends(p.t_start, p.t_end, spec.max_window_s, hop_s) for p in rest]
    owners = [np.full(len(e), i) for i, e in enumerate(ends)]
    if not rest or not sum(len(e) for e in ends):
        return None
    all_ends, owner = np.concatenate(ends), np.concatenate(owners)
    values, present = features_from_recording(spec, recorded, all_ends, adapters=adapters)
    return BaselineWindows(
        values=values,
        present=present,
        subjects=np.array([rest[i].span.subject or subject for i in owner]),
        t_end_s=all_ends - start,
    )


def _place_spans(
    path: Path,
    label_streams: list[RecordedStream],
    labels: Sequence[str],
    shared: Sequence[RecordedStream] = (),
) -> list[_PlacedSpan]:
    samples: list[tuple[float, Any, bool]] = []  # (time, JSON, from a shared stream)
    for stream in label_streams:
        if stream.description.channel_format != "string":
            raise DatasetError(
                f"{path}: the {LABELS_TYPE} stream "
                f"{stream.description.name!r} must hold strings (JSON)"
            )
        times, texts = stream.times.tolist(), stream.samples[:, 0].tolist()
        is_shared = any(stream is other for other in shared)
        samples += [(t, text, is_shared) for t, text in zip(times, texts, strict=True)]
    if not samples:
        raise DatasetError(f"{path}: the {LABELS_TYPE} stream holds no labels")
    samples.sort(key=lambda pair: pair[0])
    placed = []
    for number, (timestamp, text, is_shared) in enumerate(samples, start=1):
        try:
            span = parse_label_sample(text, labels)
            if is_shared:  # everyone's span: whose it is, the participant's stream says
                span = dataclasses.replace(span, subject=None)
        except DatasetError as exc:
            raise DatasetError(
                f"{path}: {LABELS_TYPE} sample {number} of {len(samples)}: {exc}"
            ) from None
        t_start, t_end = span.bounds_s(float(timestamp))
        placed.append(_PlacedSpan(number, t_start, t_end, span))
    return placed


def _map(
    path: Path,
    spec: FeatureSpec,
    descriptions: list[StreamDescription],
    overrides: Mapping[str, str] | None,
    inputs: AdaptOptions | None,
) -> StreamMapping:
    mapping = map_streams(spec, descriptions, overrides, inputs)
    try:
        mapping.raise_for_errors(spec, descriptions, allow_missing=True)
    except MappingError as exc:
        raise DatasetError(f"{path}: {exc}") from None
    for name, why in mapping.missing.items():
        log.warning("%s: %s; modality %r is masked in every window", path, why, name)
    for line in mapping.header_lines(descriptions):
        log.info("%s: %s", path, line)
    return mapping


def _samples(path: Path, stream: RecordedStream, modality: str) -> tuple[np.ndarray, np.ndarray]:
    """``(times_s, samples [n, C])`` of one stream, all its channels (the adapter picks)."""
    if not stream.description.numeric:
        raise DatasetError(
            f"{path}: stream {stream.description.describe()} feeds {modality} but holds "
            "strings, not numbers"
        )
    return stream.times, stream.samples


def _window_ends(
    path: Path, spans: list[_PlacedSpan], window_s: float, hop_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Window ends of every span (LSL seconds) and the span each window belongs to."""
    ends, owner = [], []
    for i, placed in enumerate(spans):
        span_ends = window_ends(placed.t_start, placed.t_end, window_s, hop_s)
        ends.append(span_ends)
        owner.append(np.full(len(span_ends), i))
    all_ends = np.concatenate(ends)
    if len(all_ends) == 0:
        longest = max(p.span.duration_s for p in spans)
        raise DatasetError(
            f"{path}: no labelled span is long enough for one {window_s:g} s window "
            f"(the longest of {len(spans)} lasts {longest:g} s)"
        )
    return all_ends, np.concatenate(owner)


def _drop_windows_without_data(path: Path, dataset: WindowDataset) -> WindowDataset:
    """Windows where no modality has data teach nothing; none at all means the labels'
    times miss the recording (a wrong offset_s sign, or labels of another file)."""
    keep = dataset.present.any(axis=1)
    if not keep.any():
        raise DatasetError(
            f"{path}: no labelled window holds data of any modality; do the "
            "labels' times (timestamp + offset_s) fall inside the recording?"
        )
    if not keep.all():
        log.info("%s: %d labelled window(s) without data dropped", path, int((~keep).sum()))
    return dataset.subset(np.flatnonzero(keep))


def _recording_start(streams: list[RecordedStream]) -> float:
    """Earliest timestamp of the recording: window ends are given from there."""
    firsts = [float(s.times[0]) for s in streams if len(s.times)]
    return min(firsts) if firsts else 0.0


def _warn_shared_trials(dataset: WindowDataset) -> None:
    """Trial names should be unique across subjects (splits group by trial)."""
    pairs = set(zip(dataset.trials.tolist(), dataset.subjects.tolist(), strict=True))
    trials = [trial for trial, _ in pairs]
    shared = sorted({t for t in trials if trials.count(t) > 1})
    if shared:
        log.warning(
            "trial name(s) %s are used by several subjects; a trial-level split will "
            "keep them together",
            shared[:5],
        )
