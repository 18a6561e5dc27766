"""A monitoring session: streams -> buffers -> scheduler -> worker -> sinks, assembled once.

:class:`Session` is the life cycle every session shares (open -> run -> stop ->
close), the outputs it opens and the views a display reads (feeds, stream headers,
health, the clock). Two kinds fill in where the samples come from:

- :class:`LiveSession` (here): LSL streams on the network, one reader thread per
  stream, the prediction outlet and an optional XDF recording;
- :class:`~helo.streamer.replay_session.ReplaySession`: an XDF file on a virtual clock.

The command line and the desktop app build sessions only through these classes. The
runtime knows nothing of Qt: the app subscribes to predictions like any sink.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pylsl

from helo.models.checkpoint import Checkpoint, load_checkpoint
from helo.models.errors import HeloError
from helo.models.features.mapping import MappingError, StreamMapping, map_streams
from helo.models.features.participant import FeatureNormaliser
from helo.models.features.spec import FeatureSpec, spec_difference
from helo.models.personal_inputs import PersonalInputs, load_personal_inputs
from helo.models.streams import (
    LABELS_TYPE,
    TRUTH_TYPE,
    StreamDescription,
    describe_lsl,
    is_data_type,
)
from helo.streamer.clocks import Clock, WallClock
from helo.streamer.config import SessionConfig
from helo.streamer.demo import default_checkpoint
from helo.streamer.group_streams import (
    ParticipantStreams,
    map_participants,
    unowned_label_streams,
)
from helo.streamer.grouping import GroupingError
from helo.streamer.label_reader import LabelReader, RecordedLabels
from helo.streamer.lsl_reader import StreamHealth, StreamReader, full_info
from helo.streamer.pipeline import Pipeline
from helo.streamer.recorder import Recorder, new_recording_path, resolve_by_source_id
from helo.streamer.scheduler import Feed, follow_span
from helo.streamer.sidecar import write_sidecar
from helo.streamer.sinks import (
    CalibrationNotice,
    GroupSummarySink,
    LatencyStats,
    LslSink,
    Outputs,
    close_quietly,
    open_sinks,
)
from helo.streamer.window_log import GROUP_MAX_WINDOWS, WindowLog
from helo.streamer.worker import Subscriber

log = logging.getLogger(__name__)


class Session:
    """What live sessions and replays share; subclasses implement :meth:`_open`."""

    def __init__(self, config: SessionConfig, subscribers: Sequence[Subscriber] = ()):
        self.config = config
        self.extra_subscribers = list(subscribers)
        self.latency = LatencyStats()
        self.checkpoint: Checkpoint | None = None
        self.clock: Clock | None = None
        self.feeds: dict[str, Feed] = {}  # modality -> where its samples are (for displays)
        self.descriptions: dict[str, StreamDescription] = {}  # stream name -> header
        self.missing: dict[str, str] = {}  # modality -> why no stream feeds it
        self.sinks: list[Subscriber] = []
        self.outputs: Outputs | None = None
        self.lsl_sink: LslSink | None = None
        self.pipeline: Pipeline | None = None
        self.normaliser: FeatureNormaliser | None = None  # the participant's running state
        self.window_log: WindowLog | None = None  # raw features, for a personal model
        self.label_reader: LabelReader | RecordedLabels | None = None  # the trials' labels
        # a group's label streams, per participant: their own and the group's shared one
        self.group_labels: dict[str, list[LabelReader | RecordedLabels]] = {}
        self.participants: list[str] = []  # a group session's members; [] for one person
        self.group_feeds: dict[str, dict[str, Feed]] = {}  # participant -> modality -> feed
        self.group_summary: GroupSummarySink | None = None
        self.personal: dict[str, PersonalInputs] = {}  # group members' personal models
        self._stop = threading.Event()

    # ------------------------------------------------------------------ life cycle

    def open(self) -> Session:
        """Everything up to the first window; on any failure, whatever was already
        started is stopped again before the error goes on."""
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def _open(self) -> None:
        raise NotImplementedError

    def run(self) -> int:
        """Predict until :meth:`stop`, the configured duration or the end of the source;
        returns the number of windows handled."""
        if self.pipeline is None:
            raise RuntimeError("open the session before running it")
        return self.pipeline.run(self._stop, self.config.duration_s)

    def stop(self) -> None:
        """Ask :meth:`run` to end (any thread)."""
        self._stop.set()
        if self.pipeline is not None:
            self.pipeline.stop()

    def close(self) -> None:
        """Stop, release the sources, flush and close every sink."""
        self.stop()
        self._close_sources()
        close_quietly(self.sinks)
        self.sinks = []
        if self.pipeline is not None:
            errors = self.pipeline.worker.errors
            if errors:
                log.error("errors during the session: %s", "; ".join(dict.fromkeys(errors)))

    def _close_sources(self) -> None:
        """Release what :meth:`_open` acquired (readers, recording, files)."""

    def __enter__(self) -> Session:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ views

    @property
    def spec(self) -> FeatureSpec:
        if self.checkpoint is None:
            raise RuntimeError("the session is not open")
        return self.checkpoint.spec

    @property
    def hop_s(self) -> float:
        return self.config.hop_s or self.spec.hop_s

    def now(self) -> float:
        """The session's present in LSL time (virtual in a replay)."""
        return self.clock.now() if self.clock is not None else pylsl.local_clock()

    def health(self) -> list[StreamHealth]:
        """Per stream: how it is doing, and what the session adapts of it."""
        return self._with_adaptation(self._stream_health())

    def _stream_health(self) -> list[StreamHealth]:
        return []

    def _with_adaptation(self, health: list[StreamHealth]) -> list[StreamHealth]:
        if self.pipeline is None:
            return health
        notes: dict[str, list[str]] = {}
        for group in self.pipeline.scheduler.groups.values():
            for name, feed in group.items():
                lines = feed.adapter.describe()
                notes.setdefault(feed.stream_name, []).extend(f"{name}: {line}" for line in lines)
        return [dataclasses.replace(h, adapted=tuple(notes.get(h.name, ()))) for h in health]

    def truth(
        self, t_start: float, t_end: float, participant: str | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The true distribution over ``(t_start, t_end]`` when the source has one (in a
        group, the participant's; default the first)."""
        return None

    # ------------------------------------------------------------------ assembly

    def _load_checkpoint(self) -> Checkpoint:
        path = self.config.checkpoint or default_checkpoint(self.config.baseline_s)
        self.checkpoint = load_checkpoint(path)
        return self.checkpoint

    def _assemble(
        self,
        feeds: Mapping[str, Feed],
        clock: Clock,
        *,
        lsl_source_id: str,
        ends: Sequence[float] | np.ndarray | None = None,
        batch: int = 1,
        batch_offset: int = 0,
        groups: Mapping[str, Mapping[str, Feed]] | None = None,
        participant_ends: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Outputs and pipeline over ``feeds`` (a group: ``groups``, participant ->
        feeds) and ``clock``: the one wiring place. ``participant_ends``: a group replay's
        own window ends per participant, beside the hops' ``ends``."""
        assert self.checkpoint is not None
        if groups:
            self.group_feeds = {p: dict(f) for p, f in groups.items()}
            self.participants = list(groups)
            feeds = next(iter(groups.values()), {})
            # a group logs windows for the baselines its label streams mark, if any
            has_labels = any(self.group_labels.values())
            self.window_log = WindowLog(self.spec, GROUP_MAX_WINDOWS) if has_labels else None
        self.feeds, self.clock = dict(feeds), clock
        normaliser = self.normaliser or self._new_normaliser()
        self.normaliser = normaliser
        self.personal = self._load_personal(self._personal_paths())
        model_name = Path(self.checkpoint.path or "model").stem
        # live: windows end where the packets were, up to a tenth of a hop past the grid
        follows = self.config.follow_ends and clock.waits_for_data and ends is None
        outputs = open_sinks(
            self.config,
            self.spec.labels,
            self.hop_s,
            model_name=model_name,
            lsl_source_id=lsl_source_id,
            participants=self.participants,
            model_names={p: f"{model_name} + {i.path.stem}" for p, i in self.personal.items()},
            follow_s=follow_span(self.hop_s) if follows else 0.0,
        )
        self.outputs = outputs
        self.sinks, self.lsl_sink, self.group_summary = outputs.sinks, outputs.lsl, outputs.group
        self.pipeline = Pipeline(
            self.checkpoint,
            feeds,
            clock,
            [
                *self.sinks,
                self.latency,
                CalibrationNotice(normaliser.warmup_s),
                *self.extra_subscribers,
            ],
            hop_s=self.hop_s,
            max_wait_s=self.config.max_wait_s,
            stale_s=self.config.stale_s,
            accelerator=self.config.accelerator,
            ends=ends,
            batch=batch,
            batch_offset=batch_offset,
            normaliser=normaliser,
            window_log=self.window_log,
            calibration=self,
            groups=self.group_feeds or None,
            threads=self.config.threads,
            personal=self.personal,
            align=self.config.align_ends,
            follow=follows,
            participant_ends=participant_ends,
        )

    def _personal_paths(self) -> dict[str, str]:
        """Group members' personal models: the session's settings say which."""
        return dict(self.config.personal)

    def _load_personal(self, paths: Mapping[str, str]) -> dict[str, PersonalInputs]:
        """Each named member's personal model, checked against the session's model; a
        one-line error for a model that cannot share the batch or an unknown member."""
        if not paths:
            return {}
        assert self.checkpoint is not None
        if not self.participants:
            raise HeloError(
                "--personal is a group session's (a model per member); for one person, "
                "run the personal model itself: --checkpoint PERSONAL.safetensors"
            )
        unknown = sorted(set(paths) - set(self.participants))
        if unknown:
            raise HeloError(
                f"--personal {', '.join(unknown)}: not in the group "
                f"({', '.join(self.participants)})"
            )
        found = {}
        for participant, path in paths.items():
            found[participant] = load_personal_inputs(Path(path).expanduser(), self.checkpoint)
            log.info(
                "%s: personal model %s (made for %s)",
                participant,
                path,
                found[participant].participant or "?",
            )
        return found

    def _label_sources(self, participant: str) -> list[LabelReader | RecordedLabels]:
        if participant or self.participants:
            return self.group_labels.get(participant, [])
        return [self.label_reader] if self.label_reader is not None else []

    def baseline_due(self, until: float, participant: str = "") -> float | None:
        """End of a baseline span on the participant's label streams not yet taken (by
        ``until``); none when the normaliser follows a live session's calibration (a
        replay with the recording's sidecar: the live session already recalibrated, when
        its label came)."""
        if self.normaliser is not None and self.normaliser.pinned:
            return None
        due = [r.baseline_due(until, participant) for r in self._label_sources(participant)]
        return min((d for d in due if d is not None), default=None)

    def take_baselines(self, until: float, participant: str = "") -> None:
        """A baseline span on a label stream (a rest the experimenter marked, pushed when
        it ended) becomes the participant's calibration once the windows have passed its
        end: the statistics are gathered again over the participant's logged windows
        inside it, and then stay. Live and replay alike (the replay reads the
        recording's label streams). In a group, a participant's own label stream marks
        their rest, the group's shared one everyone's."""
        if self.window_log is None or self.normaliser is None:
            return
        who = f"{participant}: " if participant else ""
        spans = [
            (end, start, reader.name)
            for reader in self._label_sources(participant)
            for start, end in reader.new_baselines(until, participant)
        ]
        for end, start, stream in sorted(spans):  # the latest rest is the one that stays
            first = start + self.spec.max_window_s
            t_end, values, present = self.window_log.snapshot(first, end, participant)
            if not len(t_end):
                log.warning(
                    "%sbaseline span of %.0f s on %s holds no whole window; ignored",
                    who,
                    end - start,
                    stream,
                )
                continue
            logged_from = self.window_log.first_end(participant)
            if self.window_log.dropped and logged_from and logged_from > first + self.hop_s:
                log.warning(
                    "%sbaseline span on %s began before the oldest window kept; "
                    "calibrating on its last %.0f s",
                    who,
                    stream,
                    end - logged_from,
                )
            covered = self.normaliser.recalibrate(t_end, values, present, participant)
            log.info(
                "%sbaseline span from %s: the statistics are now those of its %d window(s) "
                "(%.0f s)",
                who,
                stream,
                len(t_end),
                covered,
            )

    def switch_model(self, checkpoint: Checkpoint) -> None:
        """Go on with another model of the same inputs (a personal model made from this
        session): streams, normalisation state and outputs continue. A model of other
        inputs is refused with a line saying what differs."""
        if self.pipeline is None or self.checkpoint is None:
            raise HeloError("switch model: the session is not running")
        where = str(checkpoint.path or "the new model")
        why = spec_difference(self.spec, checkpoint.spec)
        if why:
            raise HeloError(f"{where}: cannot replace the session's model: {why}")
        self.pipeline.switch_model(checkpoint)
        self.checkpoint = checkpoint
        log.info("now predicting with %s", where)

    def _new_normaliser(self) -> FeatureNormaliser:
        """The participant's normalisation state for this session, said in one line."""
        normaliser = FeatureNormaliser(self.spec, baseline_s=self.config.baseline_s)
        if self.spec.per_participant and self.config.baseline_s > 0:
            log.info(
                "the model normalises to the participant: the first %.0f s are the baseline "
                "(the participant at rest)%s; predictions are flagged calibrating until %.0f s",
                self.config.baseline_s,
                ""
                if self.config.baseline_s >= normaliser.warmup_s
                else f", its statistics settle after {normaliser.warmup_s:.0f} s",
                normaliser.warmup_s,
            )
        elif self.spec.per_participant:
            log.warning(
                "the model normalises to the participant but the session has no baseline: "
                "the first %.0f s, whatever the participant does, become the reference; "
                "give a rest period with --baseline 60 (docs/model.md)",
                normaliser.warmup_s,
            )
        elif self.config.baseline_s > 0:
            log.info(
                "baseline: the first %.0f s are flagged calibrating (the model normalises "
                "to its training population, so the baseline seeds nothing)",
                self.config.baseline_s,
            )
        return normaliser

    def session_state(self) -> dict:
        """What a replay needs to continue as this session did (the recording's sidecar)."""
        assert self.checkpoint is not None
        model = self.checkpoint.path
        return {  # paths absolute: a replay may run from another folder
            "model": str(Path(model).resolve()) if model else "",
            "participants": self.participants,
            "normalisation": self.spec.normalisation,
            "baseline_s": self.config.baseline_s,
            "normaliser": self.normaliser.to_dict() if self.normaliser is not None else None,
            "personal": {p: str(inputs.path.resolve()) for p, inputs in self.personal.items()},
        }


class LiveSession(Session):
    """A live session over LSL streams on the network."""

    def __init__(self, config: SessionConfig, subscribers: Sequence[Subscriber] = ()):
        super().__init__(config, subscribers)
        self.readers: dict[int, StreamReader] = {}
        self.recorder: Recorder | None = None
        self._truth_reader: StreamReader | None = None
        self._truth_readers: dict[str, StreamReader] = {}  # a group's, per participant
        self._start_state: dict = {}

    def _open(self) -> None:
        if self.config.group:
            self._open_group()
            return
        config = self.config
        spec = self._load_checkpoint().spec
        infos, descriptions, mapping = self._find_streams(spec)
        feeds = {}
        for name, source in mapping.sources.items():
            if source.stream not in self.readers:
                self.readers[source.stream] = StreamReader(
                    infos[source.stream], buffer_s=config.buffer_s
                )
            feeds[name] = Feed(self.readers[source.stream].buffer, source.adapter)
        self.descriptions = {d.name: d for d in descriptions}
        self.window_log = WindowLog(spec)
        self._assemble(feeds, WallClock(), lsl_source_id=f"helo-predictions-{id(self):x}")
        for reader in self.readers.values():
            reader.start()
        truth = self._start_truth()
        labels = self._start_labels()
        if config.record is not None:
            self._start_recording([infos[i] for i in self.readers], [truth, labels])

    def _open_group(self) -> None:
        """A group: every participant's streams read, one scheduler hop and one model
        batch for everyone, an outlet per participant and the group summary."""
        config = self.config
        spec = self._load_checkpoint().spec
        infos, descriptions, found = self._find_group_streams(spec)
        groups: dict[str, dict[str, Feed]] = {}
        for participant, sources in found.sources.items():
            groups[participant] = {}
            for name, source in sources.items():
                if source.stream not in self.readers:
                    self.readers[source.stream] = StreamReader(
                        infos[source.stream], buffer_s=config.buffer_s
                    )
                groups[participant][name] = Feed(self.readers[source.stream].buffer, source.adapter)
        self.descriptions = {d.name: d for d in descriptions}
        self.missing = {
            f"{p}/{m}": why for p, missing in found.missing.items() for m, why in missing.items()
        }
        shared = self._start_group_labels(infos, descriptions, found)
        self._assemble({}, WallClock(), lsl_source_id=f"helo-{id(self):x}", groups=groups)
        for reader in self.readers.values():
            reader.start()
        for participant, index in found.truth.items():
            self._truth_readers[participant] = StreamReader(infos[index]).start()
        extra = [infos[i] for i in [*found.truth.values(), *found.labels.values()]]
        if shared is not None and shared.uid() not in {i.uid() for i in extra}:
            extra.append(shared)
        if config.record is not None:
            self._start_recording([infos[i] for i in self.readers], extra)

    def _start_group_labels(
        self,
        infos: list[pylsl.StreamInfo],
        descriptions: list[StreamDescription],
        found: ParticipantStreams,
    ) -> pylsl.StreamInfo | None:
        """Read each participant's own label stream and the group's shared one (the one
        the config names, else the only EmotionLabels stream that belongs to no
        participant: a stimulus PC's markers for everyone); their baseline spans
        recalibrate the participants they are for. Returns the shared stream."""
        labels = self.spec.labels
        for participant, index in found.labels.items():
            reader = LabelReader(infos[index], labels).start()
            self.group_labels.setdefault(participant, []).append(reader)
        owned = {i for members in found.grouping.members.values() for i in members}
        shared = None
        if self.config.labels_stream:
            shared = _resolve_named(self.config.labels_stream, "labels")
        else:
            unowned = unowned_label_streams(descriptions, owned)
            if len(unowned) == 1:
                shared = infos[unowned[0]]
            elif unowned:
                names = ", ".join(descriptions[i].name for i in unowned)
                log.warning(
                    "%d label streams belong to no participant (%s); none is taken as the "
                    "group's: name one with labels_stream in the config",
                    len(unowned),
                    names,
                )
        if shared is not None:
            reader = LabelReader(shared, labels).start()
            for participant in found.participants:
                self.group_labels.setdefault(participant, []).append(reader)
            log.info("group labels: %s (baseline spans on it calibrate everyone)", shared.name())
        return shared

    def _find_group_streams(
        self, spec: FeatureSpec
    ) -> tuple[list[pylsl.StreamInfo], list[StreamDescription], ParticipantStreams]:
        """Resolve until every participant asked for has every modality, or the timeout
        passes; then the table of who gets which streams, or a one-line error."""
        config = self.config
        deadline = time.monotonic() + config.resolve_timeout_s
        wanted = {m.stream_type.lower() for m in spec.modalities}
        wanted |= {TRUTH_TYPE.lower(), LABELS_TYPE.lower()}
        named = {v for entries in config.participants.values() for v in entries.values()}
        headers: dict[str, pylsl.StreamInfo] = {}
        seen: dict[str, pylsl.StreamInfo] = {}  # uid -> resolved info, kept across rounds
        while True:
            infos = []
            # A large group answers a resolve with dozens of datagrams, and some get lost:
            # a stream that answered once is kept, so every round can only add streams.
            seen.update((i.uid(), i) for i in pylsl.resolve_streams(wait_time=1.0))
            for info in seen.values():
                if info.type().lower() not in wanted and not named & {
                    info.name(),
                    info.source_id(),
                }:
                    continue
                if not _fetch_header(info, headers):
                    continue
                infos.append(info)
            descriptions = [describe_lsl(headers[i.uid()]) for i in infos]
            late = time.monotonic() > deadline
            try:
                found = map_participants(spec, descriptions, config)
            except GroupingError as exc:
                if late:
                    raise GroupingError(f"{exc} (waited {config.resolve_timeout_s:g} s)") from None
                continue
            if found.errors or found.complete or late:
                break
        found.raise_for_errors(spec, descriptions, allow_missing=config.allow_missing)
        for line in found.lines(descriptions):
            log.info("%s", line)
        return infos, descriptions, found

    def _find_streams(
        self, spec: FeatureSpec
    ) -> tuple[list[pylsl.StreamInfo], list[StreamDescription], StreamMapping]:
        """Resolve until every modality has a stream or the timeout passes."""
        config = self.config
        deadline = time.monotonic() + config.resolve_timeout_s
        wanted = {m.stream_type.lower() for m in spec.modalities}
        named = set(config.streams.values())
        headers: dict[str, pylsl.StreamInfo] = {}  # uid -> full header, fetched once
        while True:
            infos = []
            for info in pylsl.resolve_streams(wait_time=1.0):
                kind = info.type().lower()
                if not is_data_type(kind):
                    continue
                if kind not in wanted and not named & {info.name(), info.source_id(), kind}:
                    continue  # cannot feed this model: do not open it
                if not _fetch_header(info, headers):
                    continue
                infos.append(info)  # the resolved info: it knows where the stream is
            descriptions = [describe_lsl(headers[i.uid()]) for i in infos]
            mapping = map_streams(spec, descriptions, config.streams, config.inputs)
            if mapping.errors or not mapping.missing or time.monotonic() > deadline:
                break
        try:
            mapping.raise_for_errors(spec, descriptions, allow_missing=config.allow_missing)
        except MappingError as exc:
            waited = f" (waited {config.resolve_timeout_s:g} s)" if mapping.missing else ""
            raise MappingError(f"{exc}{waited}") from None
        self.missing = dict(mapping.missing)
        for why in mapping.missing.values():
            log.warning("%s: going on without it (the model masks it)", why)
        for line in mapping.header_lines(descriptions):
            log.info("%s", line)
        return infos, descriptions, mapping

    def _start_truth(self) -> pylsl.StreamInfo | None:
        """Read the stream of true distributions the config names, if any (for displays;
        recorded with the session)."""
        found = _resolve_named(self.config.truth_stream, "truth")
        if found is not None:
            self._truth_reader = StreamReader(found).start()
        return found

    def _start_labels(self) -> pylsl.StreamInfo | None:
        """Read the EmotionLabels stream the config names, if any: its trials make a
        personal model from the session (recorded with it)."""
        found = _resolve_named(self.config.labels_stream, "labels")
        if found is not None:
            self.label_reader = LabelReader(found, self.spec.labels).start()
        return found

    def _start_recording(
        self, data_infos: list[pylsl.StreamInfo], extra: Sequence[pylsl.StreamInfo | None]
    ) -> None:
        infos = list(data_infos) + [info for info in extra if info is not None]
        outlets = self.outputs.outlets if self.outputs is not None else []
        infos += [resolve_by_source_id(info.source_id()) for info in outlets]
        folder = self.config.record
        assert folder is not None
        path = folder if folder.suffix == ".xdf" else new_recording_path(folder)
        self.recorder = Recorder(path, infos).start()
        self._start_state = self.session_state()
        write_sidecar(path, {"start": self._start_state})

    def _close_sources(self) -> None:
        if self.recorder is not None:  # first, while every recorded outlet still exists
            self.recorder.stop()
            write_sidecar(
                self.recorder.path, {"start": self._start_state, "end": self.session_state()}
            )
        for reader in [*self.readers.values(), self._truth_reader, *self._truth_readers.values()]:
            if reader is not None and reader.running:
                reader.stop()
        label_readers = {id(r): r for rs in self.group_labels.values() for r in rs}
        for label_reader in [self.label_reader, *label_readers.values()]:
            if label_reader is not None:
                label_reader.stop()

    def _stream_health(self) -> list[StreamHealth]:
        return [reader.health() for reader in self.readers.values()]

    def truth(
        self, t_start: float, t_end: float, participant: str | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        reader = self._truth_reader
        if self.participants:
            reader = self._truth_readers.get(participant or self.participants[0])
        if reader is None:
            return None
        return reader.buffer.read_span(t_start, t_end)


def _fetch_header(info: pylsl.StreamInfo, headers: dict[str, pylsl.StreamInfo]) -> bool:
    """The stream's full header into ``headers`` (once per stream); False when it cannot
    be had: the stream vanished since it answered the resolve (a device stopping)."""
    if info.uid() in headers:
        return True
    try:
        headers[info.uid()] = full_info(info, timeout_s=2.0)
    except Exception:  # pylsl's TimeoutError, LostError
        log.debug("no header from %s; left out", info.name())
        return False
    return True


def _resolve_named(wanted: str | None, what: str) -> pylsl.StreamInfo | None:
    """The stream with this source_id (or else name), when one is wanted and found."""
    if not wanted:
        return None
    found = pylsl.resolve_byprop("source_id", wanted, 1, 5.0) or pylsl.resolve_byprop(
        "name", wanted, 1, 1.0
    )
    if not found:
        log.warning("%s stream %r not found; going on without it", what, wanted)
        return None
    return found[0]


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
