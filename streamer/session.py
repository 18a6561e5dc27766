"""A monitoring session: streams -> buffers -> scheduler -> worker -> sinks.

:class:`Pipeline` is the part live sessions and replays share: given feeds (ring
buffers with their channel selection) and a clock, it cuts windows every hop and
hands them to the inference worker, whose predictions go to the sinks.
:class:`LiveSession` adds the live part: finding the LSL streams the model needs
(a one-line error listing needs and findings when they do not fit), one reader
thread per stream, the LSL prediction outlet and the optional XDF recording.
The runtime knows nothing of Qt: the GUI subscribes to predictions like any sink.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pylsl

from helo.models.checkpoint import Checkpoint, load_checkpoint
from helo.models.features.mapping import MappingError, map_streams
from helo.models.inference import Predictor
from helo.models.streams import StreamDescription, describe_lsl, is_data_type
from helo.models.training import resolve_device
from helo.streamer.clocks import Clock, WallClock
from helo.streamer.config import SessionConfig
from helo.streamer.demo import DEMO_CHECKPOINT
from helo.streamer.lsl_reader import StreamHealth, StreamReader, full_info
from helo.streamer.recorder import Recorder, new_recording_path, resolve_by_source_id
from helo.streamer.scheduler import Feed, WindowScheduler
from helo.streamer.sinks import CsvSink, JsonlSink, LslSink, StdoutSink
from helo.streamer.tuning import tune_allocator
from helo.streamer.worker import InferenceWorker, PredictionRecord, Subscriber

log = logging.getLogger(__name__)


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


def close_quietly(sinks: Sequence[Subscriber]) -> None:
    for sink in sinks:
        close = getattr(sink, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.exception("closing %s failed", type(sink).__name__)


class Pipeline:
    """Scheduler + inference worker over given feeds and clock."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        feeds: Mapping[str, Feed],
        clock: Clock,
        subscribers: Sequence[Subscriber],
        hop_s: float | None = None,
        max_wait_s: float = 0.3,
        stale_s: float = 2.0,
        accelerator: str = "auto",
        ends: Sequence[float] | None = None,
        start_s: float | None = None,
        batch: int = 1,
    ):
        tune_allocator()
        device = resolve_device(accelerator)
        self.checkpoint = checkpoint
        self.predictor = Predictor(checkpoint, device=device)
        self.scheduler = WindowScheduler(
            checkpoint.spec, feeds, clock, hop_s, max_wait_s, stale_s, start_s=start_s, ends=ends
        )
        self.batch = batch
        self.worker = InferenceWorker(
            self.predictor, subscribers, live=clock.waits_for_data, max_batch=max(64, batch)
        )

    def run(self, stop: threading.Event, duration_s: float | None = None) -> int:
        """Cut and predict until ``stop`` is set, ``duration_s`` of clock time passed, or
        the clock ends; returns the number of window sets handled."""
        self.worker.start()
        started = None
        pending = []
        count = 0
        try:
            for window_set in self.scheduler.windows():
                started = window_set.t_end if started is None else started
                pending.append(window_set)
                if len(pending) >= self.batch:
                    self.worker.submit(pending if self.batch > 1 else pending[0])
                    pending = []
                count += 1
                if stop.is_set() or (
                    duration_s is not None and window_set.t_end - started >= duration_s
                ):
                    break
        finally:
            if pending:
                self.worker.submit(pending)
            self.scheduler.stop()
            self.worker.finish()
            self.predictor.close()
        return count

    def stop(self) -> None:
        self.scheduler.stop()


class LiveSession:
    """A live session over LSL streams on the network."""

    def __init__(
        self,
        config: SessionConfig,
        subscribers: Sequence[Subscriber] = (),
        extra_record: Sequence[str] = (),
    ):
        self.config = config
        self.extra_subscribers = list(subscribers)
        self.extra_record = list(extra_record)  # source_ids recorded besides the model's
        self.latency = LatencyStats()
        self.readers: dict[int, StreamReader] = {}
        self.feeds: dict[str, Feed] = {}  # modality -> where its samples are (for displays)
        self.descriptions: dict[str, StreamDescription] = {}  # stream name -> header
        self.sinks: list[Subscriber] = []
        self.recorder: Recorder | None = None
        self.pipeline: Pipeline | None = None
        self.checkpoint: Checkpoint | None = None
        self._stop = threading.Event()
        self.missing: dict[str, str] = {}

    # ------------------------------------------------------------------ set up

    def open(self) -> LiveSession:
        """Find the streams, start reading, open the outputs (and the recording); on any
        failure, whatever was already started is stopped again before the error goes on."""
        try:
            return self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> LiveSession:
        config = self.config
        self.checkpoint = load_checkpoint(config.checkpoint or DEMO_CHECKPOINT)
        spec = self.checkpoint.spec
        infos, descriptions, mapping = self._find_streams()
        feeds = {}
        for name, source in mapping.sources.items():
            if source.stream not in self.readers:
                self.readers[source.stream] = StreamReader(infos[source.stream], config.buffer_s)
            reader = self.readers[source.stream]
            feeds[name] = Feed(
                reader.buffer,
                source.channel_index,
                descriptions[source.stream].srate_hz,
                descriptions[source.stream].name,
            )
        self.feeds = feeds
        self.descriptions = {d.name: d for d in descriptions}
        hop_s = config.hop_s or spec.hop_s
        self.sinks = self._open_sinks(hop_s)
        subscribers = [*self.sinks, self.latency, *self.extra_subscribers]
        self.pipeline = Pipeline(
            self.checkpoint,
            feeds,
            WallClock(),
            subscribers,
            hop_s,
            config.max_wait_s,
            config.stale_s,
            config.accelerator,
        )
        for reader in self.readers.values():
            reader.start()
        if config.record is not None:
            self._start_recording([infos[i] for i in self.readers])
        return self

    def _find_streams(self) -> tuple[list[pylsl.StreamInfo], list[StreamDescription], object]:
        """Resolve until every modality has a stream or the timeout passes."""
        assert self.checkpoint is not None
        spec = self.checkpoint.spec
        deadline = time.monotonic() + self.config.resolve_timeout_s
        wanted = {m.stream_type.lower() for m in spec.modalities}
        named = set(self.config.streams.values())
        headers: dict[str, pylsl.StreamInfo] = {}  # uid -> full header, fetched once
        while True:
            infos = []
            for info in pylsl.resolve_streams(wait_time=1.0):
                kind = info.type().lower()
                if not is_data_type(kind):
                    continue
                if kind not in wanted and not named & {info.name(), info.source_id(), kind}:
                    continue  # cannot feed this model: do not open it
                if info.uid() not in headers:
                    headers[info.uid()] = full_info(info)
                infos.append(info)  # the resolved info: it knows where the stream is
            descriptions = [describe_lsl(headers[i.uid()]) for i in infos]
            mapping = map_streams(spec, descriptions, self.config.streams)
            if mapping.errors or not mapping.missing or time.monotonic() > deadline:
                break
        try:
            mapping.raise_for_errors(spec, descriptions, allow_missing=self.config.allow_missing)
        except MappingError as exc:
            waited = f" (waited {self.config.resolve_timeout_s:g} s)" if mapping.missing else ""
            raise MappingError(f"{exc}{waited}") from None
        self.missing = dict(mapping.missing)
        for why in mapping.missing.values():
            log.warning("%s: going on without it (the model masks it)", why)
        for name, source in mapping.sources.items():
            log.info("%s <- %s", name, descriptions[source.stream].describe())
        return infos, descriptions, mapping

    def _open_sinks(self, hop_s: float) -> list[Subscriber]:
        config, labels = self.config, self.checkpoint.spec.labels  # type: ignore[union-attr]
        sinks: list[Subscriber] = []
        try:
            if config.stdout:
                sinks.append(StdoutSink())
            if config.jsonl is not None:
                sinks.append(JsonlSink(config.jsonl))
            if config.csv is not None:
                sinks.append(CsvSink(config.csv, labels))
            if config.lsl:
                name = Path(self.checkpoint.path or "model").stem  # type: ignore[union-attr]
                self.lsl_sink = LslSink(
                    labels,
                    hop_s,
                    config.lsl_name,
                    source_id=f"helo-predictions-{id(self):x}",
                    model_name=name,
                )
                sinks.append(self.lsl_sink)
        except OSError as exc:
            close_quietly(sinks)
            raise MappingError(f"{exc.filename}: cannot open output ({exc.strerror})") from None
        return sinks

    def _start_recording(self, data_infos: list[pylsl.StreamInfo]) -> None:
        infos = list(data_infos)
        source_ids = list(self.extra_record)
        if self.config.lsl:
            source_ids.append(self.lsl_sink.info.source_id())
        infos += [resolve_by_source_id(s) for s in source_ids]
        folder = self.config.record
        path = folder if folder.suffix == ".xdf" else new_recording_path(folder)  # type: ignore[union-attr]
        self.recorder = Recorder(path, infos).start()

    # ------------------------------------------------------------------ running

    def run(self) -> int:
        """Monitor until :meth:`stop` (or Ctrl-C) or the configured duration."""
        assert self.pipeline is not None
        return self.pipeline.run(self._stop, self.config.duration_s)

    def stop(self) -> None:
        self._stop.set()
        if self.pipeline is not None:
            self.pipeline.stop()

    def close(self) -> None:
        """Stop reading, flush every sink, complete the recording."""
        self.stop()
        if self.recorder is not None:  # first, while every recorded outlet still exists
            self.recorder.stop()
        for reader in self.readers.values():
            if reader.running:
                reader.stop()
        close_quietly(self.sinks)
        self.sinks = []
        if self.pipeline is not None and self.pipeline.worker.errors:
            log.error(
                "inference errors during the session: %s",
                "; ".join(dict.fromkeys(self.pipeline.worker.errors)),
            )

    def health(self) -> list[StreamHealth]:
        return [reader.health() for reader in self.readers.values()]

    def __enter__(self) -> LiveSession:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_until_signal(session_run: Callable[[], int], stop: Callable[[], None]) -> int:
    """Run ``session_run`` with SIGTERM mapped to ``stop`` (Ctrl-C already is)."""
    import signal

    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: object) -> None:
        log.info("SIGTERM: stopping")
        stop()

    try:
        signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread (tests): no signal handling there
        return session_run()
    try:
        return session_run()
    finally:
        signal.signal(signal.SIGTERM, previous)
