"""Where predictions go: the terminal, JSONL and CSV files, an LSL outlet.

Files are flushed after every line, so a crash loses at most the line being
written. The LSL outlet (type ``EmotionDistribution``, one float channel per
label, labels in the channel description) stamps each prediction with its
window-end LSL time, so LabRecorder records predictions on the same clock as the
raw data. Windows without any modality produce no prediction and no sample.

:func:`open_sinks` opens the outputs a :class:`~helo.streamer.config.SessionConfig`
asks for, the same for a live session, a replay and the desktop app.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import pylsl

from helo.models.errors import HeloError
from helo.models.streams import PREDICTION_TYPE, declare_channels
from helo.streamer.config import SessionConfig
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
        if record.distribution is None:
            why = "; ".join(record.missing.values())
            self.stream.write(f"t={record.t_end:.2f}  no prediction ({why})\n")
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
                f"t={record.t_end:.2f}  " + " | ".join(parts) + f"  [{mods}] {lat}{flag}\n"
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
    compute_ms, interpolated, calibrating`` per row (``eeg:O1 O2`` for interpolated
    channels; calibrating 1 while the participant's statistics settle)."""

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
                f"{record.t_end:.6f}",
                *dist,
                "+".join(record.present),
                "; ".join(record.missing.values()),
                latency,
                f"{record.compute_ms:.3f}",
                "; ".join(f"{m}:{' '.join(c)}" for m, c in record.interpolated.items()),
                int(record.calibrating),
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
    ):
        info = pylsl.StreamInfo(
            name, PREDICTION_TYPE, len(labels), 1.0 / hop_s, pylsl.cf_float32, source_id
        )
        declare_channels(info, labels, units="probability", kind="EmotionProbability")
        meta = info.desc().append_child("helo")
        meta.append_child_value("model", model_name)
        meta.append_child_value("hop_s", f"{hop_s:g}")
        meta.append_child_value("timestamp", "window end (LSL time)")
        self.info = info
        self.outlet = pylsl.StreamOutlet(info)

    def __call__(self, record: PredictionRecord) -> None:
        if record.distribution is not None:
            self.outlet.push_sample(
                record.distribution.astype(np.float32).tolist(), timestamp=record.t_end
            )

    def close(self) -> None:
        del self.outlet


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

    def __call__(self, record: PredictionRecord) -> None:
        self.predictions += record.distribution is not None
        self.without_prediction += record.distribution is None
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
    """Says in the terminal when the participant's calibration (warm-up or baseline)
    is over, once: a researcher sees from when the predictions are settled."""

    name = "calibration notice"

    def __init__(self, warmup_s: float):
        self.warmup_s = warmup_s
        self.started_at: float | None = None
        self.done = warmup_s <= 0

    def __call__(self, record: PredictionRecord) -> None:
        if self.done:
            return
        if self.started_at is None:
            self.started_at = record.t_end
        if not record.calibrating:
            self.done = True
            log.info(
                "calibration over after %.0f s: the participant's statistics are settled",
                record.t_end - self.started_at + 0.0,
            )


@dataclass
class Outputs:
    """The sinks a session opened, and its LSL outlet among them (None without one)."""

    sinks: list[Subscriber]
    lsl: LslSink | None = None


def open_sinks(
    config: SessionConfig,
    labels: tuple[str, ...],
    hop_s: float,
    *,
    model_name: str,
    lsl_source_id: str,
) -> Outputs:
    """The outputs ``config`` asks for: stdout, JSONL, CSV, the LSL outlet. A file that
    cannot be opened is a one-line error, and what was already opened is closed."""
    sinks: list[Subscriber] = []
    lsl = None
    try:
        if config.stdout:
            sinks.append(StdoutSink())
        if config.jsonl is not None:
            sinks.append(JsonlSink(config.jsonl))
        if config.csv is not None:
            sinks.append(CsvSink(config.csv, labels))
        if config.lsl:
            lsl = LslSink(
                labels, hop_s, name=config.lsl_name, source_id=lsl_source_id, model_name=model_name
            )
            sinks.append(lsl)
    except OSError as exc:
        close_quietly(sinks)
        raise HeloError(f"{exc.filename}: cannot open output ({exc.strerror})") from None
    return Outputs(sinks, lsl)


def close_quietly(sinks: Sequence[Subscriber]) -> None:
    """Close every sink that can be closed; one that fails does not keep the others open."""
    for sink in sinks:
        close = getattr(sink, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.exception("closing %s failed", type(sink).__name__)
