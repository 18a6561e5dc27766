"""A replay session: an XDF recording through the very pipeline of a live session.

The recording's samples go into ring buffers as a :class:`~helo.streamer.clocks.ReplayClock`
advances (:class:`~helo.streamer.replay.ReplaySource`); the scheduler, worker and sinks
are the live ones. What a replay adds, and the command line and the desktop app share:

- window ends every hop: on the live session's grid for a recording of one (those
  are its windows), else from the first full window; or at the predictions recorded
  in the file (``times="recorded"``: a recorded live session checked window by window);
- a span (``start``/``end``, seconds into the recording or LSL times), giving the same
  predictions as the same span of a full replay;
- the pace: as fast as possible (``speed=None``, fixed batches, so two replays are
  identical) or N times real time, with pause, seek and re-publishing on LSL.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from helo.models.checkpoint import Checkpoint, load_checkpoint
from helo.models.errors import HeloError
from helo.models.features.participant import FeatureNormaliser
from helo.models.features.spec import FeatureSpec
from helo.models.streams import LABELS_TYPE, TRUTH_TYPE
from helo.models.xdf import RecordedStream, read_recording
from helo.streamer.clocks import ReplayClock
from helo.streamer.config import ReplayOptions, SessionConfig
from helo.streamer.demo import default_checkpoint
from helo.streamer.group_streams import unowned_label_streams
from helo.streamer.grouping import GroupingError, group_streams, participant_overrides
from helo.streamer.label_reader import LabelReader, RecordedLabels
from helo.streamer.lsl_reader import StreamHealth
from helo.streamer.replay import ReplayGroup, ReplaySource, live_hop
from helo.streamer.scheduler import STALE_S
from helo.streamer.session import Session
from helo.streamer.sidecar import read_sidecar
from helo.streamer.window_log import WindowLog
from helo.streamer.worker import Subscriber

log = logging.getLogger(__name__)

REPLAY_BATCH = 128  # windows per batch at full speed: fixed, so every replay is identical
# (128: 5 % faster than 64 on a 2-hour recording, 317x vs 303x real time; docs/scale.md)


class ReplaySession(Session):
    """A recording replayed with the settings of ``config`` (model, hop, streams,
    outputs) and ``options`` (file, pace, span)."""

    def __init__(
        self,
        config: SessionConfig,
        options: ReplayOptions,
        subscribers: Sequence[Subscriber] = (),
    ):
        super().__init__(config, subscribers)
        self.options = options
        self.source: ReplaySource | ReplayGroup | None = None
        self.replay_clock: ReplayClock | None = None
        self.ends = np.empty(0)  # window ends of this replay (LSL seconds)
        self.group: ReplayGroup | None = None  # a group recording's participants
        self._sidecar_data: dict | None = None
        self._live_hop_s: float | None = None  # the recorded live session's hop

    @property
    def hop_s(self) -> float:
        """The hop asked for; else, for a recording of a live session, that session's (on
        another hop its windows would not be the session's); else the model's."""
        return self.config.hop_s or self._live_hop_s or self.spec.hop_s

    def _open(self) -> None:
        spec = self._load_checkpoint().spec
        streams = read_recording(self.options.file)
        self._live_hop_s = live_hop(streams)
        if self.config.hop_s is None and self._live_hop_s not in (None, spec.hop_s):
            log.info(
                "replaying on the recorded live session's hop, %g s (--hop to choose another)",
                self._live_hop_s,
            )
        # the buffers hold a batch of windows (cut at once) and the stale age
        history_s = 5.0 + STALE_S + REPLAY_BATCH * self.hop_s
        members = self._group_members(spec, streams)
        source: ReplaySource | ReplayGroup
        if members is not None:
            source = ReplayGroup(
                self.options.file,
                spec,
                members,
                streams,
                overrides={
                    p: participant_overrides(self.config.participants, p, spec.names)
                    for p in members
                },
                allow_missing=self.config.allow_missing,
                inputs=self.config.inputs,
                history_s=history_s,
            )
            self.group = source
        else:
            source = ReplaySource(
                self.options.file,
                spec,
                overrides=self.config.streams,
                allow_missing=self.config.allow_missing,
                inputs=self.config.inputs,
                streams=streams,
                history_s=history_s,
            )
        self.source = source
        self.descriptions = {s.description.name: s.description for s in source.streams}
        self.missing = dict(source.missing)
        hop = self.hop_s
        all_ends, first = self._window_ends(source, hop)
        # a group whose live windows followed each one's packets: each participant's own
        # ends; the clock goes to each hop's latest, so every one's samples are pushed
        own = source.participant_ends(hop, all_ends) if isinstance(source, ReplayGroup) else None
        hop_ends = np.max(list(own.values()), axis=0) if own else all_ends
        self.ends = hop_ends[first:]
        if members is not None:
            self.group_labels = self._recorded_group_labels(spec, streams, members)
        else:
            labels = [s for s in source.streams if _is_label_stream(s)]
            if labels:
                self.label_reader = RecordedLabels(labels[0], spec.labels)
        earlier = {p: e[:first] for p, e in own.items()} if own else all_ends[:first]
        self.normaliser = self._replay_normaliser(source, earlier)
        self.window_log = WindowLog(spec)
        speed = self.options.speed
        source.seek(float(self.ends[0]))  # from the samples the first window needs
        clock = ReplayClock(
            float(self.ends[0]) - hop,
            float(self.ends[-1]),
            source.push_until,
            speed=speed,
            on_seek=source.seek,
        )
        self.replay_clock = clock
        if self.options.republish:
            source.republish(speed)
        self._assemble(
            source.feeds if isinstance(source, ReplaySource) else {},
            clock,
            lsl_source_id="helo-replay-predictions",
            ends=self.ends,
            participant_ends={p: e[first:] for p, e in own.items()} if own else None,
            batch=REPLAY_BATCH if speed is None else 1,
            batch_offset=first,
            groups=self.group.groups if self.group is not None else None,
        )

    def _group_members(
        self, spec: FeatureSpec, streams: list[RecordedStream]
    ) -> dict[str, list[int]] | None:
        """The recording's participants (indices into ``streams``) when it is a group's:
        the session says so (``--participants``), or its data streams name two or more
        participants (a recorded group session); None for one person."""
        wanted = {m.stream_type.lower() for m in spec.modalities}
        kept = [
            i
            for i, s in enumerate(streams)
            if (s.description.numeric and s.description.type.lower() in wanted)
            or s.description.type.lower() in (TRUTH_TYPE.lower(), LABELS_TYPE.lower())
        ]
        descriptions = [streams[i].description for i in kept]
        named = {d.participant for d in descriptions if d.type.lower() in wanted} - {""}
        if not self.config.group and len(named) < 2:
            return None
        try:
            grouping = group_streams(
                descriptions,
                rule=self.config.grouping_rule,
                selection=self.config.selection,
                configured=self.config.participants,
                wanted_types=wanted,
            )
        except GroupingError as exc:
            raise GroupingError(f"{self.options.file}: {exc}") from None
        for line in grouping.table(descriptions):
            log.info("%s", line)
        return {p: [kept[i] for i in idx] for p, idx in grouping.members.items()}

    def _sidecar(self) -> dict:
        """The recording's sidecar (the live session's model and state), read once."""
        if self._sidecar_data is None:
            self._sidecar_data = read_sidecar(self.options.file) or {}
        return self._sidecar_data

    def _load_checkpoint(self) -> Checkpoint:
        """The settings' model; without one, the model the live session ran (its
        sidecar says which), else the demo model for the session's baseline: a replay
        of a ``--baseline 60`` session runs the participant model, as the session did."""
        if self.config.checkpoint is not None:
            return super()._load_checkpoint()
        start = self._sidecar().get("start") or {}
        live = Path(start.get("model") or "")
        if start.get("model") and live.is_file():
            log.info("%s: replayed with the live session's model %s", self.options.file, live)
            path = live
        else:
            path = default_checkpoint(self.config.baseline_s or float(start.get("baseline_s") or 0))
        self.checkpoint = load_checkpoint(path)
        return self.checkpoint

    def _personal_paths(self) -> dict[str, str]:
        """The members' personal models: the settings' when they name any, else those
        the live session ran (its sidecar), where the files are still here."""
        if self.config.personal:
            return dict(self.config.personal)
        start = self._sidecar().get("start") or {}
        found = {}
        for participant, path in (start.get("personal") or {}).items():
            if participant not in self.participants:
                continue  # not replayed (a selection)
            if Path(path).expanduser().exists():
                found[participant] = path
            else:
                log.warning(
                    "%s: %s's personal model %s (the live session's) is not here; %s is "
                    "replayed with the group's model",
                    self.options.file,
                    participant,
                    path,
                    participant,
                )
        return found

    def _recorded_group_labels(
        self, spec: FeatureSpec, streams: list[RecordedStream], members: dict[str, list[int]]
    ) -> dict[str, list[LabelReader | RecordedLabels]]:
        """Each participant's recorded label stream and the group's shared one (named by
        the config, else the only one that belongs to no participant), as the live
        session read them."""
        found: dict[str, list[LabelReader | RecordedLabels]] = {}
        for participant, indices in members.items():
            own = [streams[i] for i in indices if _is_label_stream(streams[i])]
            found[participant] = [RecordedLabels(own[0], spec.labels)] if own else []
        wanted = self.config.labels_stream
        if wanted:
            candidates = [
                s for s in streams if wanted in (s.description.name, s.description.source_id)
            ]
        else:
            owned = {i for indices in members.values() for i in indices}
            unowned = unowned_label_streams([s.description for s in streams], owned)
            candidates = [streams[i] for i in unowned]
        candidates = [s for s in candidates if _is_label_stream(s)]
        if len(candidates) == 1:
            shared = RecordedLabels(candidates[0], spec.labels)
            for readers in found.values():
                readers.append(shared)
        return found

    def _replay_normaliser(
        self, source: ReplaySource | ReplayGroup, earlier: np.ndarray | Mapping[str, np.ndarray]
    ) -> FeatureNormaliser:
        """The normalisation state the replay starts from: the live session's (from the
        recording's sidecar) when there is one, brought forward over the windows before
        ``--from`` (``earlier``: their ends, or each participant's), so that a span
        replays as it does in a full replay."""
        sidecar = self._sidecar()
        start, end = sidecar.get("start") or {}, sidecar.get("end") or {}
        baseline = self.config.baseline_s or float(start.get("baseline_s") or 0.0)
        normaliser = FeatureNormaliser(self.spec, baseline_s=baseline)
        state = start.get("normaliser")
        if state and start.get("normalisation") == self.spec.normalisation:
            normaliser.load(state)
            if end.get("normaliser") and end.get("normalisation") == self.spec.normalisation:
                normaliser.pin(end["normaliser"])
            log.info("%s: normalisation state of the live session loaded", self.options.file)
        sources = source.sources if isinstance(source, ReplayGroup) else {"": source}
        before = {p: earlier[p] if isinstance(earlier, Mapping) else earlier for p in sources}
        hops = next(iter(before.values()))  # the hops' ends (a participant's, within ms)
        if len(hops) and (self.spec.per_participant or baseline > 0):
            rests = {
                p: []
                if normaliser.pinned
                else sorted(
                    (span for r in self._label_sources(p) for span in r.new_baselines(hops[-1], p)),
                    key=lambda span: span[1],
                )
                for p in sources
            }
            if not self.spec.per_participant or self.spec.participant_norm.freeze:
                # settled statistics stop moving: only the calibration's windows matter
                # (twice its length, for windows without data that count nothing), and
                # those of baseline spans the label streams marked
                ends = [end for spans in rests.values() for _, end in spans]
                last = max([hops[0] + 2 * normaliser.warmup_s, *ends])
                before = {p: e[hops <= last] for p, e in before.items()}
            for participant, own in sources.items():
                mine = before[participant]
                values, present = own.raw_features(mine)
                normaliser.apply(mine, values, present, participant)
                for start, end in rests[participant]:  # as the session did when each arrived
                    inside = (mine >= start + self.spec.max_window_s) & (mine <= end)
                    if inside.any():
                        part = {k: v[inside] for k, v in values.items()}
                        normaliser.recalibrate(mine[inside], part, present[inside], participant)
        return normaliser

    def _window_ends(
        self, source: ReplaySource | ReplayGroup, hop_s: float
    ) -> tuple[np.ndarray, int]:
        """Every window end up to ``--to``, and the index of the first to replay (``--from``)."""
        path = self.options.file
        if self.options.times == "recorded":
            recorded = source.recorded_prediction_times()
            if recorded is None:
                raise HeloError(
                    f"{path}: --times recorded, but the file holds no EmotionDistribution "
                    "predictions"
                )
            ends = recorded[recorded >= source.start_s + self.spec.max_window_s]
        else:
            ends = source.grid_ends(hop_s)
        start, end = self.options.start, self.options.end
        low = start.resolve(source.start_s) if start is not None else -np.inf
        high = end.resolve(source.start_s) if end is not None else np.inf
        keep = np.flatnonzero((ends >= low - 1e-9) & (ends <= high + 1e-9))
        if not len(keep):
            raise HeloError(
                f"{path}: no window ends between --from and --to; the recording's windows end "
                f"from {ends[0] - source.start_s:.2f} to {ends[-1] - source.start_s:.2f} s "
                f"(LSL {ends[0]:.3f} to {ends[-1]:.3f})"
                if len(ends)
                else f"{path}: no window to replay"
            )
        return ends[: keep[-1] + 1], int(keep[0])

    # ------------------------------------------------------------------ controls

    def set_speed(self, speed: float | None) -> None:
        """Change the pace (times real time; None: as fast as possible)."""
        if self.replay_clock is not None:
            self.replay_clock.set_speed(speed)

    def set_paused(self, paused: bool) -> None:
        if self.replay_clock is not None:
            (self.replay_clock.paused.set if paused else self.replay_clock.paused.clear)()

    def seek(self, seconds: float) -> None:
        """Continue from ``seconds`` after the start of the recording."""
        if self.replay_clock is not None and self.source is not None:
            self.replay_clock.seek(self.source.start_s + seconds)

    def position(self) -> tuple[float, float]:
        """(seconds played, seconds in all), from the start of the recording."""
        if self.replay_clock is None or self.source is None:
            return 0.0, 0.0
        start = self.source.start_s
        return self.replay_clock.now() - start, self.source.end_s - start

    def played_s(self, count: int) -> float:
        """Seconds of recording covered by the first ``count`` windows."""
        if not count:
            return 0.0
        return float(self.ends[min(count, len(self.ends)) - 1] - self.ends[0]) + self.hop_s

    # ------------------------------------------------------------------ views

    def _stream_health(self) -> list[StreamHealth]:
        return self.source.health(self.now()) if self.source is not None else []

    def truth(
        self, t_start: float, t_end: float, participant: str | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        if self.source is None:
            return None
        streams = self.source.streams
        if self.group is not None:
            streams = self.group.sources[participant or self.participants[0]].streams
        for stream in streams:
            if stream.description.type.lower() == TRUTH_TYPE.lower() and len(stream.times):
                keep = (stream.times > t_start) & (stream.times <= t_end)
                return stream.times[keep], stream.samples[keep]
        return None

    def _close_sources(self) -> None:
        if self.source is not None:
            self.source.close()


def _is_label_stream(stream: RecordedStream) -> bool:
    """An EmotionLabels stream of JSON strings (the only kind a label reader reads)."""
    description = stream.description
    return (
        description.type.lower() == LABELS_TYPE.lower() and description.channel_format == "string"
    )
