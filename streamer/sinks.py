"""Where predictions go: the terminal, JSONL and CSV files, an LSL outlet.

Files are flushed after every line, so a crash loses at most the line being
written. The LSL outlet (type ``EmotionDistribution``, one float channel per
label, labels in the channel description) stamps each prediction with its
window-end LSL time, so LabRecorder records predictions on the same clock as the
raw data. Windows without any modality produce no prediction and no sample.

A group session opens one outlet per participant (its name and source_id end with
the participant, its description carries it) and a group summary outlet beside
them (:class:`GroupSummarySink`); files hold everyone, with a participant column.

:func:`open_sinks` opens the outputs a :class:`~helo.streamer.config.SessionConfig`
asks for, the same for a live session, a replay and the desktop app.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import pylsl

from helo.models.errors import HeloError
from helo.models.streams import (
    ENDS_FOLLOW_FIELD,
    GROUP_TYPE,
    PREDICTION_TYPE,
    declare_can_drop_samples,
    declare_channels,
)
from helo.streamer.config import SessionConfig
from helo.streamer.group import GroupState, group_state
from helo.streamer.worker import PredictionRecord, Subscriber

log = logging.getLogger(__name__)


class StdoutSink:
    """A compact live line per prediction: time, top emotions as bars, modalities, latency."""

    def __init__(self, stream: TextIO | None = None, top: int = 3):
        self._stream = stream  # None: whatever sys.stdout is at the time of writing
        self.top = top

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    def __call__(self, record: PredictionRecord) -> None:
        who = f"{record.participant:>4s} " if record.participant else ""
        if record.distribution is None:
            why = "; ".join(record.missing.values())
            self.stream.write(f"{who}t={record.t_end:.2f}  no prediction ({why})\n")
        else:
            order = np.argsort(record.distribution)[::-1][: self.top]
            parts = [
                f"{record.labels[k]:>9s} {record.distribution[k]:.2f} "
                f"{_bar(record.distribution[k])}"
                for k in order
            ]
            mods = ",".join(record.present)
            lat = (
                f"{record.latency_ms:5.1f} ms"
                if record.latency_ms is not None
                else (f"{record.compute_ms:5.1f} ms compute")
            )
            flag = "  (calibrating)" if record.calibrating else ""
            self.stream.write(
                f"{who}t={record.t_end:.2f}  " + " | ".join(parts) + f"  [{mods}] {lat}{flag}\n"
            )
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


def _bar(value: float, width: int = 10) -> str:
    full = round(float(value) * width)
    return "#" * full + "." * (width - full)


class JsonlSink:
    """One JSON object per line (see :meth:`PredictionRecord.to_dict`)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def __call__(self, record: PredictionRecord) -> None:
        self._file.write(json.dumps(record.to_dict()) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class CsvSink:
    """``index, t_end_lsl, <one column per label>, present, missing, latency_ms,
    compute_ms, interpolated, calibrating, participant`` per row (``eeg:O1 O2`` for
    interpolated channels; calibrating 1 while the participant's statistics settle;
    participant empty in a one-person session)."""

    def __init__(self, path: str | Path, labels: tuple[str, ...]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = self.path.open("a", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file)
        self.labels = labels
        if new:
            self._writer.writerow(
                [
                    "index",
                    "t_end_lsl",
                    *labels,
                    "present",
                    "missing",
                    "latency_ms",
                    "compute_ms",
                    "interpolated",
                    "calibrating",
                    "participant",
                ]
            )
            self._file.flush()

    def __call__(self, record: PredictionRecord) -> None:
        dist = (
            [f"{v:.6f}" for v in record.distribution]
            if record.distribution is not None
            else [""] * len(self.labels)
        )
        latency = "" if record.latency_ms is None else f"{record.latency_ms:.3f}"
        self._writer.writerow(
            [
                record.index,
                repr(float(record.t_end)),  # exact: windows can be cut again at it
                *dist,
                "+".join(record.present),
                "; ".join(record.missing.values()),
                latency,
                f"{record.compute_ms:.3f}",
                "; ".join(f"{m}:{' '.join(c)}" for m, c in record.interpolated.items()),
                int(record.calibrating),
                record.participant,
            ]
        )
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class LslSink:
    """An LSL outlet of the predictions, one channel per emotion label."""

    def __init__(
        self,
        labels: tuple[str, ...],
        hop_s: float,
        *,
        name: str = "HeLo",
        source_id: str = "helo-predictions",
        model_name: str = "",
        participant: str | None = None,
        follow_s: float = 0.0,
    ):
        """``participant``: publish only that participant's predictions (a group
        session's outlet of one member); None: every record. ``follow_s``: how far
        past the hop's grid the live session's windows may end (0: on it)."""
        info = pylsl.StreamInfo(
            name, PREDICTION_TYPE, len(labels), 1.0 / hop_s, pylsl.cf_float32, source_id
        )
        declare_channels(info, labels, units="probability", kind="EmotionProbability")
        if participant:
            info.desc().append_child_value("participant", participant)
        self.participant = participant
        meta = info.desc().append_child("helo")
        meta.append_child_value("model", model_name)
        meta.append_child_value("hop_s", f"{hop_s:g}")
        meta.append_child_value("timestamp", "window end (LSL time)")
        declare_window_ends(info, meta, follow_s)
        self.info = info
        self.outlet = pylsl.StreamOutlet(info)

    def __call__(self, record: PredictionRecord) -> None:
        if self.participant is not None and record.participant != self.participant:
            return
        if record.distribution is not None:
            self.outlet.push_sample(
                record.distribution.astype(np.float32).tolist(), timestamp=record.t_end
            )

    def close(self) -> None:
        del self.outlet


def declare_window_ends(info: pylsl.StreamInfo, meta: pylsl.XMLElement, follow_s: float) -> None:
    """Say how the predictions' timestamps (window ends) fall: on the hop's grid, or
    (``follow_s`` > 0) up to ``follow_s`` after it, where the packets were. Followed ends
    are real instants, not a regular rate's: the stream then declares
    ``can_drop_samples``, so that reading the recording does not de-jitter them onto a
    grid (and a replay finds the live session's windows, :func:`streamer.replay.followed_ends`)."""
    meta.append_child_value(ENDS_FOLLOW_FIELD, repr(float(follow_s)))
    if follow_s > 0:
        declare_can_drop_samples(info)


class GroupSummarySink:
    """The group at every hop: the mean distribution of the participants with a
    prediction, their agreement (mean pairwise Jensen-Shannon similarity,
    :mod:`helo.streamer.group`) and the share predicted, on an LSL outlet of type
    ``EmotionGroupSummary`` (channels: the labels, ``agreement``, ``share_predicted``).

    A hop's records arrive together (one batch); the state is made when every
    participant's record of that window is in, or when a later window's arrives. A hop
    with fewer than two predictions has no agreement and publishes no sample (never a
    made-up value); :attr:`latest` keeps the last state for displays.
    """

    name = "group summary"

    def __init__(
        self,
        participants: Sequence[str],
        labels: tuple[str, ...],
        hop_s: float,
        *,
        name: str = "HeLo-group",
        source_id: str = "helo-group",
        lsl: bool = True,
        follow_s: float = 0.0,
    ):
        self.participants = list(participants)
        self.labels = labels
        self.latest: GroupState | None = None
        self.published = 0
        self._index: int | None = None
        self._pending: dict[str, np.ndarray | None] = {}
        self._t_end = 0.0
        self.info: pylsl.StreamInfo | None = None
        self.outlet: pylsl.StreamOutlet | None = None
        if lsl:
            info = pylsl.StreamInfo(
                name, GROUP_TYPE, len(labels) + 2, 1.0 / hop_s, pylsl.cf_float32, source_id
            )
            declare_channels(info, [*labels, "agreement", "share_predicted"], units="probability")
            info.desc().append_child_value("participants", ",".join(self.participants))
            declare_window_ends(info, info.desc().append_child("helo"), follow_s)
            self.info, self.outlet = info, pylsl.StreamOutlet(info)

    def __call__(self, record: PredictionRecord) -> None:
        if self._index is not None and record.index != self._index:
            self._flush()
        self._index, self._t_end = record.index, record.t_end
        self._pending[record.participant] = record.distribution
        if len(self._pending) == len(self.participants):
            self._flush()

    def _flush(self) -> None:
        distributions = [self._pending.get(p) for p in self.participants]
        state = group_state(self._t_end, distributions, len(self.participants))
        self.latest = state
        self._pending, self._index = {}, None
        if self.outlet is not None and state.mean is not None and state.agreement is not None:
            sample = [*state.mean.tolist(), state.agreement, state.predicted / state.participants]
            self.outlet.push_sample(np.asarray(sample, np.float32).tolist(), state.t_end)
            self.published += 1

    def close(self) -> None:
        if self._pending:
            self._flush()
        self.outlet = None


class MemorySink:
    """Keeps every record (tests, benchmarks, the GUI's history)."""

    def __init__(self) -> None:
        self.records: list[PredictionRecord] = []

    def __call__(self, record: PredictionRecord) -> None:
        self.records.append(record)

    def close(self) -> None:
        pass


def read_jsonl(path: str | Path) -> list[dict]:
    """Predictions written by :class:`JsonlSink`."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@dataclass
class LatencyStats:
    """Collects prediction latencies (a subscriber) and reports percentiles."""

    latencies_ms: list[float] = field(default_factory=list)
    compute_ms: list[float] = field(default_factory=list)
    predictions: int = 0
    without_prediction: int = 0
    # a group's participant -> (predictions, windows)
    by_participant: dict[str, tuple[int, int]] = field(default_factory=dict)

    def __call__(self, record: PredictionRecord) -> None:
        self.predictions += record.distribution is not None
        self.without_prediction += record.distribution is None
        if record.participant:
            done, seen = self.by_participant.get(record.participant, (0, 0))
            self.by_participant[record.participant] = (
                done + (record.distribution is not None),
                seen + 1,
            )
        if record.latency_ms is not None:
            self.latencies_ms.append(record.latency_ms)
        self.compute_ms.append(record.compute_ms)

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {
            "predictions": self.predictions,
            "without_prediction": self.without_prediction,
        }
        for name, values in (("latency", self.latencies_ms), ("compute", self.compute_ms)):
            if values:
                out[f"{name}_p50_ms"] = float(np.percentile(values, 50))
                out[f"{name}_p99_ms"] = float(np.percentile(values, 99))
                out[f"{name}_max_ms"] = float(np.max(values))
        return out


class CalibrationNotice:
    """Says in the terminal when a participant's calibration (warm-up or baseline)
    is over, once per participant: a researcher sees from when the predictions are
    settled."""

    name = "calibration notice"

    def __init__(self, warmup_s: float):
        self.warmup_s = warmup_s
        self.started_at: dict[str, float] = {}
        self.settled: set[str] = set()

    @property
    def done(self) -> bool:
        return self.warmup_s <= 0 or (
            bool(self.started_at) and self.settled >= set(self.started_at)
        )

    def __call__(self, record: PredictionRecord) -> None:
        who = record.participant
        if self.warmup_s <= 0 or who in self.settled:
            return
        started = self.started_at.setdefault(who, record.t_end)
        if not record.calibrating:
            self.settled.add(who)
            log.info(
                "%scalibration over after %.0f s: the participant's statistics are settled",
                f"{who}: " if who else "",
                record.t_end - started + 0.0,
            )


@dataclass
class Outputs:
    """The sinks a session opened, and its LSL outlet among them (None without one)."""

    sinks: list[Subscriber]
    lsl: LslSink | None = None
    lsl_by_participant: dict[str, LslSink] = field(default_factory=dict)
    group: GroupSummarySink | None = None

    @property
    def outlets(self) -> list[pylsl.StreamInfo]:
        """Every outlet the session opened (what a recording of it holds)."""
        found = [s.info for s in (self.lsl, *self.lsl_by_participant.values()) if s is not None]
        return found + ([self.group.info] if self.group and self.group.info else [])


def open_sinks(
    config: SessionConfig,
    labels: tuple[str, ...],
    hop_s: float,
    *,
    model_name: str,
    lsl_source_id: str,
    participants: Sequence[str] = (),
    model_names: Mapping[str, str] | None = None,
    follow_s: float = 0.0,
) -> Outputs:
    """The outputs ``config`` asks for: stdout, JSONL, CSV, the LSL outlet (a group:
    one per participant and the group summary). A file that cannot be opened is a
    one-line error, and what was already opened is closed. ``follow_s``: how far past
    the hop's grid the windows may end (the outlets say so)."""
    sinks: list[Subscriber] = []
    lsl = None
    if participants:
        names = {p: (model_names or {}).get(p, model_name) for p in participants}
        return _open_group_sinks(config, labels, hop_s, model_name, lsl_source_id, names, follow_s)
    try:
        if config.stdout:
            sinks.append(StdoutSink())
        if config.jsonl is not None:
            sinks.append(JsonlSink(config.jsonl))
        if config.csv is not None:
            sinks.append(CsvSink(config.csv, labels))
        if config.lsl:
            lsl = LslSink(
                labels,
                hop_s,
                name=config.lsl_name,
                source_id=lsl_source_id,
                model_name=model_name,
                follow_s=follow_s,
            )
            sinks.append(lsl)
    except OSError as exc:
        close_quietly(sinks)
        raise HeloError(f"{exc.filename}: cannot open output ({exc.strerror})") from None
    return Outputs(sinks, lsl)


def _open_group_sinks(
    config: SessionConfig,
    labels: tuple[str, ...],
    hop_s: float,
    model_name: str,
    lsl_source_id: str,
    participants: Mapping[str, str],
    follow_s: float,
) -> Outputs:
    """A group's outputs: the files and terminal for everyone, an outlet per participant
    (``<lsl_name>-P01``, source_id ``<id>-P01``; ``participants``: each one's model name)
    and the group summary outlet."""
    alone = open_sinks(
        dataclasses.replace(config, lsl=False),
        labels,
        hop_s,
        model_name=model_name,
        lsl_source_id=lsl_source_id,
    )
    outputs = Outputs(alone.sinks)
    try:
        if config.lsl:
            for p in participants:
                sink = LslSink(
                    labels,
                    hop_s,
                    name=f"{config.lsl_name}-{p}",
                    source_id=f"{lsl_source_id}-{p}",
                    model_name=participants[p],
                    participant=p,
                    follow_s=follow_s,
                )
                outputs.lsl_by_participant[p] = sink
                outputs.sinks.append(sink)
        outputs.group = GroupSummarySink(
            list(participants),
            labels,
            hop_s,
            name=f"{config.lsl_name}-group",
            source_id=f"{lsl_source_id}-group",
            lsl=config.lsl,
            follow_s=follow_s,
        )
        outputs.sinks.append(outputs.group)
    except BaseException:
        close_quietly(outputs.sinks)
        raise
    return outputs


def close_quietly(sinks: Sequence[Subscriber]) -> None:
    """Close every sink that can be closed; one that fails does not keep the others open."""
    for sink in sinks:
        close = getattr(sink, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.exception("closing %s failed", type(sink).__name__)
